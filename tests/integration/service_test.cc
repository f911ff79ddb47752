// Services inside the test process (each Transport with its own sockets on loopback), for what
// needs a look inside: pools, logs, cancellation, close.
#include <signal.h>

#include <atomic>
#include <thread>
#include <zmq.hpp>

#include "src/wire.h"
#include "testing/harness.h"
#include "unit/test_util.h"

namespace zrpc::testing {
namespace {

using ::testing::HasSubstr;

// Captures zrpc's log lines while alive.
class LogCapture {
 public:
  LogCapture() {
    SetLogSink([this](LogLevel, std::string_view line) {
      absl::MutexLock lock(&mu_);
      lines_.emplace_back(line);
    });
  }
  ~LogCapture() { SetLogSink(nullptr); }
  bool Contains(std::string_view text) {
    absl::MutexLock lock(&mu_);
    for (const std::string& l : lines_) {
      if (l.find(text) != std::string::npos) return true;
    }
    return false;
  }

 private:
  absl::Mutex mu_;
  std::vector<std::string> lines_ ABSL_GUARDED_BY(mu_);
};

// One in-process service instance counting what each of its consumers handled.
// Members are destroyed bottom-up: the connection and transport stop before the dispatcher goes.
struct Instance {
  Dispatcher dispatcher;
  std::atomic<int> handled{0};
  std::unique_ptr<Transport> transport;
  std::unique_ptr<Connection> connection;
};

class ServiceTest : public IntegrationTest {
 protected:
  std::unique_ptr<Instance> MakeInstance(const std::string& host, bool inline_handlers = false) {
    auto inst = std::make_unique<Instance>();
    Instance* raw = inst.get();
    EXPECT_TRUE(raw->dispatcher
                    .Add(Endpoint{.inline_handlers = inline_handlers}
                             .Method("hit",
                                     [raw, host](CallContext&, const Object&) -> absl::StatusOr<Value> {
                                       raw->handled++;
                                       return Value(host);
                                     })
                             .Stream("forever",
                                     [raw](CallContext& ctx, const Object&, StreamWriter& out) {
                                       for (int i = 0; out.Write(i); ++i) {
                                         absl::SleepFor(absl::Milliseconds(10));
                                       }
                                       raw->handled++;  // counts streams that saw the stop
                                       return absl::OkStatus();
                                     })
                             .Method("block", {"ms"},
                                     [](int64_t ms) {
                                       absl::SleepFor(absl::Milliseconds(ms));
                                       return true;
                                     }))
                    .ok());
    inst->transport = Client(ClientOptions(host));
    absl::StatusOr<std::unique_ptr<Connection>> c = inst->transport->CreateConnection();
    EXPECT_TRUE(c.ok());
    inst->connection = *std::move(c);
    return inst;
  }
};

TEST_F(ServiceTest, EachPoolGetsEveryCastOnceAndCallsGoToPlainConsumers) {
  auto plain = MakeInstance("plain");
  ZRPC_ASSERT_OK(plain->connection->CreateConsumer("work", plain->dispatcher));
  ZRPC_ASSERT_OK(plain->connection->ConsumeInThread());
  std::vector<std::unique_ptr<Instance>> members;
  for (const char* pool : {"audit", "billing"}) {
    for (int i = 0; i < 2; ++i) {
      auto m = MakeInstance(std::string(pool) + std::to_string(i));
      ZRPC_ASSERT_OK(m->connection->CreateWorker("work", m->dispatcher, pool));
      ZRPC_ASSERT_OK(m->connection->ConsumeInThread());
      members.push_back(std::move(m));
    }
  }
  auto client = Client();
  constexpr int kCasts = 10;
  for (int i = 0; i < kCasts; ++i) ZRPC_ASSERT_OK(client->Cast(Context(), "work", Msg("hit")));
  auto total = [&](int first) { return members[first]->handled + members[first + 1]->handled; };
  EXPECT_TRUE(Eventually([&] { return plain->handled == kCasts && total(0) == kCasts && total(2) == kCasts; }));
  absl::SleepFor(absl::Milliseconds(200));
  EXPECT_EQ(plain->handled, kCasts);
  EXPECT_EQ(total(0), kCasts);  // pool "audit": each cast once, shared by its members
  EXPECT_EQ(total(2), kCasts);  // pool "billing"
  EXPECT_EQ(members[0]->handled, kCasts / 2);  // round-robin inside the pool
  // A call goes to the plain consumer only: one answer.
  absl::StatusOr<Value> who = client->Call(Context(), "work", Msg("hit"));
  ZRPC_ASSERT_OK(who);
  EXPECT_EQ(who->AsString(), "plain");
  EXPECT_EQ(total(0), kCasts);
}

TEST_F(ServiceTest, CallsGoToAPoolMemberWhenThereIsNoPlainConsumer) {
  auto m = MakeInstance("worker");
  ZRPC_ASSERT_OK(m->connection->CreateWorker("jobs", m->dispatcher, "p"));
  ZRPC_ASSERT_OK(m->connection->ConsumeInThread());
  auto client = Client();
  absl::StatusOr<Value> r = client->Call(Context(), "jobs", Msg("hit"));
  ZRPC_ASSERT_OK(r);
  EXPECT_EQ(r->AsString(), "worker");
}

TEST_F(ServiceTest, JoinConsumerPoolDeliversRawMessagesOncePerPool) {
  auto a = MakeInstance("a");
  auto b = MakeInstance("b");
  std::atomic<int> got_a{0}, got_b{0};
  std::string seen_method;
  absl::Mutex mu;
  ZRPC_ASSERT_OK(a->connection->JoinConsumerPool(
      [&](const Message& m) {
        absl::MutexLock lock(&mu);
        seen_method = m.method;
        got_a++;
      },
      "listeners", "events"));
  ZRPC_ASSERT_OK(b->connection->JoinConsumerPool([&](const Message&) { got_b++; }, "listeners",
                                                 "events"));
  ZRPC_ASSERT_OK(a->connection->ConsumeInThread());
  ZRPC_ASSERT_OK(b->connection->ConsumeInThread());
  auto client = Client();
  for (int i = 0; i < 4; ++i) ZRPC_ASSERT_OK(client->Cast(Context(), "events", Msg("created")));
  EXPECT_TRUE(Eventually([&] { return got_a + got_b == 4; }));
  absl::SleepFor(absl::Milliseconds(100));
  EXPECT_EQ(got_a + got_b, 4);
  EXPECT_EQ(got_a, 2);
  absl::MutexLock lock(&mu);
  EXPECT_EQ(seen_method, "created");
}

TEST_F(ServiceTest, InlineHandlersServeCalls) {
  auto inst = MakeInstance("fast", /*inline_handlers=*/true);
  ZRPC_ASSERT_OK(inst->connection->CreateConsumer("fast", inst->dispatcher));
  ZRPC_ASSERT_OK(inst->connection->ConsumeInThread());
  auto client = Client();
  for (int i = 0; i < 20; ++i) ZRPC_ASSERT_OK(client->Call(Context(), "fast", Msg("hit")));
  EXPECT_EQ(inst->handled, 20);
}

TEST_F(ServiceTest, DestroyingAStreamStopsTheHandler) {
  auto inst = MakeInstance("streamer");
  ZRPC_ASSERT_OK(inst->connection->CreateConsumer("s", inst->dispatcher));
  ZRPC_ASSERT_OK(inst->connection->ConsumeInThread());
  auto client = Client();
  {
    absl::StatusOr<std::unique_ptr<ReplyStream>> stream = client->MultiCall(Context(), "s", Msg("forever"));
    ZRPC_ASSERT_OK(stream);
    for (int i = 0; i < 3; ++i) ZRPC_ASSERT_OK((*stream)->Next());
  }  // destroyed: a cancel frame goes to the server
  EXPECT_TRUE(Eventually([&] { return inst->handled == 1; }, absl::Seconds(5)));
}

TEST_F(ServiceTest, ClosingAConnectionUnregistersItsConsumers) {
  auto inst = MakeInstance("closing");
  ZRPC_ASSERT_OK(inst->connection->CreateConsumer("svc", inst->dispatcher));
  ZRPC_ASSERT_OK(inst->connection->ConsumeInThread());
  auto client = Client();
  ZRPC_ASSERT_OK(client->Call(Context(), "svc", Msg("hit")));
  inst->connection->Close();
  EXPECT_TRUE(Eventually([&] {
    return IsErrorKind(client->Call(Context(), "svc", Msg("hit")).status(), ErrorKind::kNoConsumer);
  }));
  inst->connection->Close();  // idempotent
  EXPECT_TRUE(IsErrorKind(inst->connection->CreateConsumer("other", inst->dispatcher),
                          ErrorKind::kInvalidRpcConnectionReuse));
}

TEST_F(ServiceTest, CloseFailsHandlersThatOutliveTheBound) {
  TransportOptions o = ClientOptions("slow");
  o.close_timeout = absl::Milliseconds(200);
  Dispatcher d;
  ZRPC_ASSERT_OK(d.Add(Endpoint{}.Method("block", {"ms"}, [](int64_t ms) {
    absl::SleepFor(absl::Milliseconds(ms));
    return true;
  })));
  auto server = Client(o);
  auto conn = *server->CreateConnection();
  ZRPC_ASSERT_OK(conn->CreateConsumer("slow", d));
  ZRPC_ASSERT_OK(conn->ConsumeInThread());
  auto client = Client();
  absl::Status result;
  std::thread caller([&] { result = client->Call(Context(), "slow", Msg("block", {{"ms", 1500}})).status(); });
  absl::SleepFor(absl::Milliseconds(200));
  const absl::Time start = absl::Now();
  conn->Close();
  EXPECT_LT(absl::Now() - start, absl::Seconds(1));
  caller.join();
  EXPECT_TRUE(IsErrorKind(result, ErrorKind::kTransportClosed)) << result;
}

// Sends raw frames to a service: what a client in another language would do (docs/PROTOCOL.md).
class RawDealer {
 public:
  explicit RawDealer(const std::string& endpoint) : socket_(ctx_, zmq::socket_type::dealer) {
    socket_.set(zmq::sockopt::linger, 0);
    socket_.connect(endpoint);
  }
  void Send(const std::string& header, const std::string& body) {
    socket_.send(zmq::buffer(header), zmq::send_flags::sndmore);
    socket_.send(zmq::buffer(body), zmq::send_flags::none);
  }
  // The next reply's body, or "" after `timeout`.
  std::string Receive(absl::Duration timeout = absl::Seconds(5)) {
    socket_.set(zmq::sockopt::rcvtimeo, static_cast<int>(absl::ToInt64Milliseconds(timeout)));
    while (true) {
      zmq::message_t header, body;
      if (!socket_.recv(header)) return "";
      if (!header.more() || !socket_.recv(body)) return "";
      if (header.to_string().find(" beat ") != std::string::npos) continue;
      return body.to_string();
    }
  }

 private:
  zmq::context_t ctx_;
  zmq::socket_t socket_;
};

std::string Envelope(const Object& message) { return *SerializeMsg(Value(message)); }

TEST_F(ServiceTest, DuplicateCastsAreDroppedWithALogLine) {
  LogCapture logs;
  auto inst = MakeInstance("dup");
  ZRPC_ASSERT_OK(inst->connection->CreateConsumer("dup", inst->dispatcher));
  ZRPC_ASSERT_OK(inst->connection->ConsumeInThread());
  RawDealer raw(inst->transport->endpoint());
  const std::string body = Envelope({{"method", "hit"}, {"args", Object{}}, {"_unique_id", "u-1"}});
  raw.Send("zrpc1 cast openstack dup -", body);
  raw.Send("zrpc1 cast openstack dup -", body);
  raw.Send("zrpc1 call openstack dup m1",
           Envelope({{"method", "hit"}, {"_msg_id", "m1"}, {"_unique_id", "u-2"}}));
  EXPECT_FALSE(raw.Receive().empty());
  EXPECT_TRUE(Eventually([&] { return logs.Contains("Found duplicate message(u-1). Skipping it."); }));
  EXPECT_EQ(inst->handled, 2);
}

TEST_F(ServiceTest, RequestsWhoseDeadlineHasPassedAreNotStarted) {
  auto inst = MakeInstance("late");
  ZRPC_ASSERT_OK(inst->connection->CreateConsumer("late", inst->dispatcher));
  ZRPC_ASSERT_OK(inst->connection->ConsumeInThread());
  RawDealer raw(inst->transport->endpoint());
  raw.Send("zrpc1 call openstack late m1",
           Envelope({{"method", "hit"}, {"_msg_id", "m1"}, {"_timeout", 0}}));
  raw.Send("zrpc1 call openstack late m2",
           Envelope({{"method", "hit"}, {"_msg_id", "m2"}, {"_timeout", 5000}}));
  absl::StatusOr<Reply> reply = DecodeReply(raw.Receive());
  ZRPC_ASSERT_OK(reply);
  EXPECT_EQ(reply->msg_id, "m2");
  EXPECT_EQ(inst->handled, 1);
}

TEST_F(ServiceTest, MalformedInputGetsAClearErrorAndTheServiceLivesOn) {
  LogCapture logs;
  auto inst = MakeInstance("robust");
  ZRPC_ASSERT_OK(inst->connection->CreateConsumer("robust", inst->dispatcher));
  ZRPC_ASSERT_OK(inst->connection->ConsumeInThread());
  RawDealer raw(inst->transport->endpoint());
  auto failure_of = [&](const std::string& header, const std::string& body) -> absl::Status {
    raw.Send(header, body);
    absl::StatusOr<Reply> reply = DecodeReply(raw.Receive());
    if (!reply.ok()) return reply.status();
    if (!reply->failure) return absl::OkStatus();
    return DeserializeRemoteException(*reply->failure);
  };
  EXPECT_EQ(failure_of("zrpc1 call openstack robust m1", "{not json").code(),
            absl::StatusCode::kInvalidArgument);
  absl::Status envelope = failure_of("zrpc1 call openstack robust m2",
                                     R"({"oslo.version":"8675309.0","oslo.message":"{}"})");
  EXPECT_TRUE(IsErrorKind(envelope, ErrorKind::kUnsupportedRpcEnvelopeVersion)) << envelope;
  EXPECT_THAT(failure_of("zrpc1 call openstack robust m3", Envelope({{"method", "hit"}, {"args", Array{}}}))
                  .message(),
              HasSubstr("\"args\" must be an object"));
  EXPECT_TRUE(IsErrorKind(failure_of("zrpc1 call openstack nobody m4", Envelope({{"method", "hit"}})),
                          ErrorKind::kNoConsumer));
  // Bad headers and frame counts are dropped with a log line; the service still answers.
  raw.Send("garbage", "x");
  raw.Send("zrpc2 call openstack robust m5", "{}");
  EXPECT_TRUE(Eventually([&] { return logs.Contains("bad header"); }));
  ZRPC_EXPECT_OK(failure_of("zrpc1 call openstack robust m6", Envelope({{"method", "hit"}})));
}

TEST_F(ServiceTest, OversizedFramesAreDroppedSafely) {
  auto inst = MakeInstance("big");
  ZRPC_ASSERT_OK(inst->connection->CreateConsumer("big", inst->dispatcher));
  ZRPC_ASSERT_OK(inst->connection->ConsumeInThread());
  {
    RawDealer raw(inst->transport->endpoint());
    // Over the limit but under libzmq's guard: zrpc answers RESOURCE_EXHAUSTED.
    raw.Send("zrpc1 call openstack big m1", std::string((4 << 20) + 100, ' '));
    absl::StatusOr<Reply> reply = DecodeReply(raw.Receive());
    ZRPC_ASSERT_OK(reply);
    ASSERT_TRUE(reply->failure.has_value());
    EXPECT_EQ(DeserializeRemoteException(*reply->failure).code(), absl::StatusCode::kResourceExhausted);
    // Far over: libzmq drops the connection; nothing reaches the service.
    raw.Send("zrpc1 call openstack big m2", std::string(6 << 20, ' '));
    EXPECT_EQ(raw.Receive(absl::Milliseconds(500)), "");
  }
  auto client = Client();
  ZRPC_EXPECT_OK(client->Call(Context(), "big", Msg("hit")));
}

Message Introspection(std::string method) {
  Message m;
  m.method = std::move(method);
  m.ns = std::string(kReservedNamespace);
  return m;
}

TEST_F(ServiceTest, ReservedNamespaceAnswersPingHealthAndDescribe) {
  auto inst = MakeInstance("intro");
  ZRPC_ASSERT_OK(inst->connection->CreateConsumer("svc", inst->dispatcher));
  ZRPC_ASSERT_OK(inst->connection->CreateConsumer("svc", inst->dispatcher, {.fanout = true}));
  ZRPC_ASSERT_OK(inst->connection->ConsumeInThread());
  auto client = Client();
  absl::StatusOr<Value> ping = client->Call(Context(), "svc", Introspection("ping"));
  ZRPC_ASSERT_OK(ping);
  EXPECT_TRUE(ping->Find("pong")->AsBool());
  EXPECT_EQ(ping->Find("host")->AsString(), "intro");
  absl::StatusOr<Value> health = client->Call(Context(), "svc", Introspection("health"));
  ZRPC_ASSERT_OK(health);
  EXPECT_EQ(health->Find("status")->AsString(), "serving");
  absl::StatusOr<Value> d = client->Call(Context(), "svc", Introspection("describe"));
  ZRPC_ASSERT_OK(d);
  EXPECT_EQ(d->Find("topics")->AsArray().size(), 2u);
  const Value& ep = d->Find("endpoints")->AsArray().at(0);
  EXPECT_EQ(ep.Find("version")->AsString(), "1.0");
  EXPECT_EQ(*ep.Find("methods"), Value(Array{"block", "forever (stream)", "hit"}));
  EXPECT_TRUE(IsErrorKind(client->Call(Context(), "svc", Introspection("nosuch")).status(),
                          ErrorKind::kNoSuchMethod));
}

TEST_F(ServiceTest, HealthIsNotServingWhileClosingDrains) {
  auto inst = MakeInstance("draining");
  ZRPC_ASSERT_OK(inst->connection->CreateConsumer("drain", inst->dispatcher));
  ZRPC_ASSERT_OK(inst->connection->ConsumeInThread());
  auto client = Client();
  std::thread slow([&] { (void)client->Call(Context(), "drain", Msg("block", {{"ms", 800}})); });
  absl::SleepFor(absl::Milliseconds(150));
  std::thread closer([&] { inst->connection->Close(); });
  absl::SleepFor(absl::Milliseconds(150));
  // Still reachable (the client's cached route), but draining.
  RawDealer raw(inst->transport->endpoint());
  raw.Send("zrpc1 call openstack drain h1",
           *SerializeMsg(Value(Object{{"method", "health"}, {"namespace", "_zrpc"}, {"_msg_id", "h1"}})));
  absl::StatusOr<Reply> health = DecodeReply(raw.Receive());
  ZRPC_ASSERT_OK(health);
  EXPECT_EQ(health->result.Find("status")->AsString(), "not_serving");
  raw.Send("zrpc1 call openstack drain h2",
           *SerializeMsg(Value(Object{{"method", "hit"}, {"_msg_id", "h2"}})));
  absl::StatusOr<Reply> refused = DecodeReply(raw.Receive());
  ZRPC_ASSERT_OK(refused);
  ASSERT_TRUE(refused->failure.has_value());
  EXPECT_EQ(DeserializeRemoteException(*refused->failure).code(), absl::StatusCode::kUnavailable);
  slow.join();
  closer.join();
}

TEST_F(ServiceTest, ExpectedErrorsReachTheCallerWithoutServerErrorLogs) {
  LogCapture logs;
  Dispatcher d;
  ZRPC_ASSERT_OK(d.Add(Endpoint{}
                           .Method("expected",
                                   [](CallContext&, const Object&) -> absl::StatusOr<Value> {
                                     return MarkExpected(absl::NotFoundError("no such instance"));
                                   })
                           .Method("unexpected",
                                   [](CallContext&, const Object&) -> absl::StatusOr<Value> {
                                     return absl::InternalError("disk on fire");
                                   })));
  auto server = Client(ClientOptions("expecting"));
  auto conn = *server->CreateConnection();
  ZRPC_ASSERT_OK(conn->CreateConsumer("exp", d));
  ZRPC_ASSERT_OK(conn->ConsumeInThread());
  auto client = Client();
  absl::Status e = client->Call(Context(), "exp", Msg("expected")).status();
  EXPECT_EQ(e.code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(e.message()), HasSubstr("no such instance"));
  absl::Status u = client->Call(Context(), "exp", Msg("unexpected")).status();
  EXPECT_EQ(u.code(), absl::StatusCode::kInternal);
  EXPECT_TRUE(Eventually([&] { return logs.Contains("disk on fire"); }));
  EXPECT_FALSE(logs.Contains("no such instance"));  // the expected one was not logged
}

TEST_F(ServiceTest, LocalMatchmakerIgnoresProcessesThatDied) {
  ChildProcess& service = StartService("doomed");
  auto client = Client();
  ZRPC_ASSERT_OK(client->Call(Context(), "compute", Msg("whoami")));
  service.Kill();
  EXPECT_TRUE(Eventually([&] {
    absl::StatusOr<std::vector<Registration>> regs = client->matchmaker().Resolve("openstack", "compute");
    return regs.ok() && regs->empty();
  }, absl::Seconds(3)));
  EXPECT_TRUE(IsErrorKind(client->Call(Context(), "compute", Msg("whoami")).status(), ErrorKind::kNoConsumer));
}

TEST_F(ServiceTest, TwoServicesOfOneTopicOnOneMachineAreBothUsed) {
  auto a = MakeInstance("same-host");
  auto b = MakeInstance("same-host");
  for (Instance* i : {a.get(), b.get()}) {
    ZRPC_ASSERT_OK(i->connection->CreateConsumer("dual", i->dispatcher));
    ZRPC_ASSERT_OK(i->connection->ConsumeInThread());
  }
  auto client = Client();
  for (int i = 0; i < 10; ++i) ZRPC_ASSERT_OK(client->Call(Context(), "dual", Msg("hit")));
  EXPECT_EQ(a->handled, 5);
  EXPECT_EQ(b->handled, 5);
}

}  // namespace
}  // namespace zrpc::testing
