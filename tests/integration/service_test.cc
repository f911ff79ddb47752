// SPDX-License-Identifier: Apache-2.0
// Services inside the test process (each Transport with its own sockets on loopback), for what
// needs a look inside: pools, logs, cancellation, close.
#include <arpa/inet.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <stdlib.h>
#include <unistd.h>

#include <cstring>

#include <sys/wait.h>

#include <atomic>
#include <fstream>
#include <functional>
#include <iostream>
#include <map>
#include <set>
#include <thread>
#include <zmq.hpp>

#include "zrpc/version.h"
#include "absl/strings/match.h"

#include "src/codec/wire.h"
#include "testing/harness.h"
#include "testing/log_capture.h"
#include "unit/test_util.h"

namespace zrpc::testing {
namespace {

using ::testing::HasSubstr;


// One in-process service instance counting what each of its consumers handled.
// Members are destroyed bottom-up: the connection and transport stop before the dispatcher goes.
struct Instance {
  Dispatcher dispatcher;
  std::atomic<int> handled{0};
  std::unique_ptr<Transport> transport;
  std::unique_ptr<Connection> connection;
};

// A service whose one method, "block", sleeps `ms` and counts how often it started.
// Members are destroyed bottom-up: the connection and transport stop before the dispatcher goes.
struct BlockingServer {
  std::atomic<int> ran{0};
  Dispatcher dispatcher;
  std::unique_ptr<Transport> transport;
  std::unique_ptr<Connection> connection;
};

class ServiceTest : public IntegrationTest {
 protected:
  // Starts a BlockingServer consuming `topic` with `options`.
  std::unique_ptr<BlockingServer> StartBlockingServer(const std::string& topic,
                                                      TransportOptions options) {
    auto b = std::make_unique<BlockingServer>();
    std::atomic<int>* ran = &b->ran;
    EXPECT_TRUE(b->dispatcher
                    .Add(Endpoint{}.Method("block", {"ms"},
                                           [ran](int64_t ms) {
                                             ++*ran;
                                             absl::SleepFor(absl::Milliseconds(ms));
                                             return true;
                                           }))
                    .ok());
    b->transport = Client(std::move(options));
    b->connection = *b->transport->CreateConnection();
    EXPECT_TRUE(b->connection->CreateConsumer(topic, b->dispatcher).ok());
    EXPECT_TRUE(b->connection->ConsumeInThread().ok());
    return b;
  }

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
  auto blocking = StartBlockingServer("slow", o);
  Connection* conn = blocking->connection.get();
  auto client = Client();
  absl::Status result;
  std::thread caller([&] { result = client->Call(Context(), "slow", Msg("block", {{"ms", 1500}})).status(); });
  EXPECT_TRUE(Eventually([&] { return blocking->ran == 1; }));  // the handler is running
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
  // The cast runs on a pool thread: it may finish after the call's reply.
  EXPECT_TRUE(Eventually([&] { return inst->handled == 2; })) << inst->handled;
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
  EXPECT_EQ(health->Find("version")->AsString(), ZRPC_VERSION_STRING);
  EXPECT_GE(health->Find("uptime_s")->AsInt(), 0);
  absl::Time started;
  std::string err;
  ASSERT_TRUE(absl::ParseTime("%Y-%m-%dT%H:%M:%E*SZ", health->Find("started")->AsString(),
                              &started, &err))
      << err;
  EXPECT_LE(started, absl::Now());
  EXPECT_GT(started, absl::Now() - absl::Hours(1));  // this test process started it
  absl::StatusOr<Value> d = client->Call(Context(), "svc", Introspection("describe"));
  ZRPC_ASSERT_OK(d);
  EXPECT_EQ(d->Find("topics")->AsArray().size(), 2u);
  const Value& ep = d->Find("endpoints")->AsArray().at(0);
  EXPECT_EQ(ep.Find("version")->AsString(), "1.0");
  EXPECT_EQ(*ep.Find("methods"), Value(Array{"block", "forever (stream)", "hit"}));
  // Typed methods describe their arguments and result; the others only their name.
  absl::StatusOr<Value> block = ParseJson(
      R"({"name":"block","args":[{"name":"ms","type":"integer"}],"returns":"boolean","stream":false})");
  EXPECT_EQ(*ep.Find("signatures"),
            Value(Array{*block, Value(Object{{"name", "forever"}, {"stream", true}}),
                        Value(Object{{"name", "hit"}, {"stream", false}})}));
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

namespace zrpc::testing {
namespace {

TEST_F(ServiceTest, CloseRacingARunningHandlerSendsExactlyOneFinalReply) {
  TransportOptions o = ClientOptions("racy");
  o.close_timeout = absl::Milliseconds(50);
  auto blocking = StartBlockingServer("racy", o);
  Transport* server = blocking->transport.get();
  Connection* conn = blocking->connection.get();
  RawDealer raw(server->endpoint());
  raw.Send("zrpc1 call openstack racy m1",
           Envelope({{"method", "block"}, {"args", Object{{"ms", 300}}}, {"_msg_id", "m1"}}));
  EXPECT_TRUE(Eventually([&] { return blocking->ran == 1; }));  // the handler is running
  conn->Close();  // fails the running call, then the handler finishes
  absl::StatusOr<Reply> first = DecodeReply(raw.Receive());
  ZRPC_ASSERT_OK(first);
  ASSERT_TRUE(first->failure.has_value());
  EXPECT_TRUE(IsErrorKind(DeserializeRemoteException(*first->failure), ErrorKind::kTransportClosed));
  // The handler's own result comes after Close answered: it must not be sent.
  EXPECT_EQ(raw.Receive(absl::Milliseconds(600)), "");
}

TEST_F(ServiceTest, TheInFlightLimitAnswersResourceExhausted) {
  TransportOptions o = ClientOptions("limited");
  o.max_in_flight_per_peer = 2;
  auto blocking = StartBlockingServer("limited", o);
  Transport* server = blocking->transport.get();
  RawDealer raw(server->endpoint());
  for (const char* id : {"m1", "m2", "m3"}) {
    raw.Send(absl::StrCat("zrpc1 call openstack limited ", id),
             Envelope({{"method", "block"}, {"args", Object{{"ms", 300}}}, {"_msg_id", id}}));
  }
  // The third is refused at once, with a retryable error; the first two complete.
  absl::StatusOr<Reply> refused = DecodeReply(raw.Receive(absl::Milliseconds(250)));
  ZRPC_ASSERT_OK(refused);
  EXPECT_EQ(refused->msg_id, "m3");
  ASSERT_TRUE(refused->failure.has_value());
  EXPECT_EQ(DeserializeRemoteException(*refused->failure).code(), absl::StatusCode::kResourceExhausted);
  int ok = 0;
  for (int i = 0; i < 2; ++i) {
    absl::StatusOr<Reply> r = DecodeReply(raw.Receive());
    if (r.ok() && !r->failure) ++ok;
  }
  EXPECT_EQ(ok, 2);
}

TEST_F(ServiceTest, AQueuedRequestWhoseDeadlinePassedIsNotRun) {
  TransportOptions o = ClientOptions("queued");
  o.thread_pool_size = 1;
  auto blocking = StartBlockingServer("queued", o);
  Transport* server = blocking->transport.get();
  RawDealer raw(server->endpoint());
  raw.Send("zrpc1 call openstack queued m1",
           Envelope({{"method", "block"}, {"args", Object{{"ms", 400}}}, {"_msg_id", "m1"}}));
  raw.Send("zrpc1 call openstack queued m2",
           Envelope({{"method", "block"}, {"args", Object{{"ms", 1}}}, {"_msg_id", "m2"}, {"_timeout", 100}}));
  std::map<std::string, Reply> replies;
  for (int i = 0; i < 2; ++i) {
    absl::StatusOr<Reply> r = DecodeReply(raw.Receive());
    ZRPC_ASSERT_OK(r);
    replies[r->msg_id] = *r;
  }
  ASSERT_TRUE(replies["m2"].failure.has_value());
  EXPECT_TRUE(IsErrorKind(DeserializeRemoteException(*replies["m2"].failure), ErrorKind::kTimeout));
  EXPECT_FALSE(replies["m1"].failure.has_value());
  EXPECT_EQ(blocking->ran.load(), 1);
}

TEST_F(ServiceTest, AStreamCutByItsDeadlineEndsWithTimeout) {
  auto inst = MakeInstance("cut");
  ZRPC_ASSERT_OK(inst->connection->CreateConsumer("cut", inst->dispatcher));
  ZRPC_ASSERT_OK(inst->connection->ConsumeInThread());
  auto client = Client();
  absl::StatusOr<std::unique_ptr<ReplyStream>> stream =
      client->MultiCall(Context(), "cut", Msg("forever"), {.timeout = absl::Milliseconds(300)});
  ZRPC_ASSERT_OK(stream);
  absl::Status end;
  int values = 0;
  while (true) {
    absl::StatusOr<std::optional<Value>> v = (*stream)->Next();
    if (!v.ok()) {
      end = v.status();
      break;
    }
    if (!v->has_value()) break;  // a clean end would be wrong here
    ++values;
  }
  EXPECT_GT(values, 0);
  EXPECT_TRUE(IsErrorKind(end, ErrorKind::kTimeout)) << end;
  // The service also ends it as a Timeout (seen by a raw client that keeps listening).
  RawDealer raw(inst->transport->endpoint());
  raw.Send("zrpc1 multicall openstack cut s1",
           Envelope({{"method", "forever"}, {"_msg_id", "s1"}, {"_timeout", 150}}));
  absl::StatusOr<Reply> last;
  for (int i = 0; i < 1000; ++i) {
    last = DecodeReply(raw.Receive());
    if (!last.ok() || last->ending) break;
  }
  ZRPC_ASSERT_OK(last);
  ASSERT_TRUE(last->failure.has_value());
  EXPECT_TRUE(IsErrorKind(DeserializeRemoteException(*last->failure), ErrorKind::kTimeout));
}

TEST_F(ServiceTest, HeaderWordsAreValidatedBeforeUseAndTheServiceLivesOn) {
  LogCapture logs;
  auto inst = MakeInstance("words");
  ZRPC_ASSERT_OK(inst->connection->CreateConsumer("words", inst->dispatcher));
  ZRPC_ASSERT_OK(inst->connection->ConsumeInThread());
  RawDealer raw(inst->transport->endpoint());
  const std::string body = Envelope({{"method", "hit"}, {"_msg_id", "x"}});
  // A msg_id that is not printable ASCII (once an abort), one that is too long, a bad target,
  // and a request without a body frame.
  raw.Send("zrpc1 call openstack words \xff\xfe", body);
  raw.Send("zrpc1 call openstack words " + std::string(129, 'a'), body);
  raw.Send("zrpc1 call openstack wo/rds m1", body);
  raw.Send("zrpc1 call openstack words m2", "");
  absl::StatusOr<Reply> empty = DecodeReply(raw.Receive());
  ZRPC_ASSERT_OK(empty);
  EXPECT_EQ(empty->msg_id, "m2");
  ASSERT_TRUE(empty->failure.has_value());  // "invalid JSON: empty text"
  raw.Send("zrpc1 call openstack words m3", Envelope({{"method", "hit"}, {"_msg_id", "m3"}}));
  absl::StatusOr<Reply> ok = DecodeReply(raw.Receive());
  ZRPC_ASSERT_OK(ok);
  EXPECT_EQ(ok->msg_id, "m3");
  EXPECT_FALSE(ok->failure.has_value());
  EXPECT_TRUE(logs.Contains("msg_id must be printable ASCII"));
  EXPECT_TRUE(logs.Contains("msg_id must be 1..128 bytes"));
  EXPECT_EQ(inst->handled, 1);
}

long RssKb() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6));
  }
  return -1;
}

// Speaks ZMTP 3.0 by hand over TCP, as an attacker would: greeting, READY as an XSUB, then one
// frame of `size` bytes (a subscription), without libzmq's own bookkeeping on this side.
bool SendRawSubscription(const std::string& endpoint, size_t size) {
  const size_t colon = endpoint.rfind(':');
  const int port = std::stoi(endpoint.substr(colon + 1));
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0) return false;
  std::string out(64, '\0');
  out[0] = '\xff';
  out[9] = '\x7f';
  out[10] = 3;  // version 3.0
  std::memcpy(&out[12], "NULL", 4);
  const std::string ready = std::string("\x05READY") + "\x0bSocket-Type" + std::string("\0\0\0\x04", 4) + "XSUB";
  out += std::string(1, '\x04') + std::string(1, static_cast<char>(ready.size())) + ready;
  out += '\x02';  // a long message frame
  for (int i = 7; i >= 0; --i) out += static_cast<char>((static_cast<uint64_t>(size) >> (8 * i)) & 0xff);
  std::string body(size, 'x');
  body[0] = 1;  // subscribe
  out += body;
  size_t sent = 0;
  while (sent < out.size()) {
    const ssize_t n = send(fd, out.data() + sent, out.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) break;  // the service cut us off: expected
    sent += static_cast<size_t>(n);
  }
  // Read what the service sent (its greeting) before closing: closing with unread data would
  // reset the connection before the service read our frame.
  shutdown(fd, SHUT_WR);
  timeval tv{2, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  char buf[4096];
  while (recv(fd, buf, sizeof(buf), 0) > 0) {
  }
  close(fd);
  return true;
}

TEST_F(ServiceTest, AHugeSubscriptionFrameIsRefusedWithoutGrowingTheService) {
  auto inst = MakeInstance("subs");
  ZRPC_ASSERT_OK(inst->connection->CreateConsumer("subs", inst->dispatcher));
  ZRPC_ASSERT_OK(inst->connection->ConsumeInThread());
  const long before = RssKb();
  ASSERT_TRUE(SendRawSubscription(inst->transport->pub_endpoint(), 8 << 20));
  // Without the limit, the service's I/O thread builds an 8M-node trie within about a second.
  absl::SleepFor(absl::Milliseconds(1500));
  // Without the XPUB's size limit each frame grew the subscription trie by hundreds of MB.
  EXPECT_LT(RssKb() - before, 48 * 1024) << "RSS grew from " << before << " kB";
  auto client = Client();
  ZRPC_ASSERT_OK(client->Call(Context(), "subs", Msg("hit")));
}


TEST_F(ServiceTest, ASecondSigtermDuringCloseIsHeldAndTheServiceExitsCleanly) {
  ChildProcess& svc = StartService("node1");
  auto client = Client();
  // A running handler makes Close() wait for it (close_timeout): the window for a second signal.
  std::thread caller([&] {
    (void)client->Call(Context(), "compute", Msg("sleep", {{"ms", 1500}}));
  });
  // Wait until the service holds the call (its load counts it), not a fixed time.
  auto monitor = Client();
  ASSERT_TRUE(Eventually([&] {
    absl::StatusOr<Value> health = monitor->Call(Context(), "compute", Introspection("health"));
    const Value* load = health.ok() ? health->Find("load") : nullptr;
    const Value* queued = load != nullptr ? load->Find("queued_requests") : nullptr;
    return queued != nullptr && queued->is_int() && queued->AsInt() >= 1;
  }));
  svc.Signal(SIGTERM);
  absl::SleepFor(absl::Milliseconds(100));
  svc.Signal(SIGTERM);  // used to kill it mid-Close, leaving its registration behind
  const int status = svc.Reap(15000);
  caller.join();
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "status " << status;
  absl::StatusOr<std::unique_ptr<Matchmaker>> mm = CreateMatchmaker(matchmaker_);
  ZRPC_ASSERT_OK(mm);
  absl::StatusOr<std::vector<Registration>> left = (*mm)->List("");
  ZRPC_ASSERT_OK(left);
  EXPECT_TRUE(left->empty()) << left->size() << " registrations left behind";
}

TEST_F(ServiceTest, BindingEveryInterfaceAdvertisesAnAddressOfThisMachine) {
  TransportOptions options = ClientOptions("wide");
  options.bind_address = "0.0.0.0";
  options.insecure = true;
  auto server = StartBlockingServer("wide", options);
  const std::string endpoint = server->transport->endpoint();
  // An address of one of this machine's interfaces that are up, never the host name or the
  // wildcard. (No traffic is sent to it: tests talk over loopback only.)
  ASSERT_TRUE(absl::StartsWith(endpoint, "tcp://")) << endpoint;
  const std::string address = endpoint.substr(6, endpoint.rfind(':') - 6);
  EXPECT_NE(address, "0.0.0.0");
  std::set<std::string> mine = {"127.0.0.1"};
  struct ifaddrs* list = nullptr;
  ASSERT_EQ(getifaddrs(&list), 0);
  for (struct ifaddrs* i = list; i != nullptr; i = i->ifa_next) {
    char text[INET6_ADDRSTRLEN] = {};
    if (i->ifa_addr == nullptr || (i->ifa_flags & IFF_UP) == 0) continue;
    if (i->ifa_addr->sa_family == AF_INET) {
      inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in*>(i->ifa_addr)->sin_addr, text, sizeof(text));
    } else if (i->ifa_addr->sa_family == AF_INET6) {
      inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6*>(i->ifa_addr)->sin6_addr, text, sizeof(text));
    }
    if (text[0] != '\0') mine.insert(std::string("[") + text + "]"), mine.insert(text);
  }
  freeifaddrs(list);
  EXPECT_TRUE(mine.contains(address)) << endpoint;
}

TEST_F(ServiceTest, BindingEveryInterfaceWithAnAdvertisedAddressServesThere) {
  TransportOptions options = ClientOptions("wide2");
  options.bind_address = "0.0.0.0";
  options.advertise_address = "127.0.0.1";
  options.insecure = true;
  auto server = StartBlockingServer("wide2", options);
  EXPECT_TRUE(absl::StartsWith(server->transport->endpoint(), "tcp://127.0.0.1:"));
  auto client = Client();
  ZRPC_EXPECT_OK(client->Call(Context(), "wide2", Msg("block", {{"ms", 0}})));
}

TEST_F(ServiceTest, ABindErrorNamesTheEndpoint) {
  auto first = StartBlockingServer("first", ClientOptions("first"));
  const std::string taken = first->transport->endpoint();
  TransportOptions options = ClientOptions("second");
  options.port = std::stoi(taken.substr(taken.rfind(':') + 1));
  auto second = Client(options);
  absl::StatusOr<std::unique_ptr<Connection>> c = second->CreateConnection();
  ZRPC_ASSERT_OK(c);
  Dispatcher d;
  ZRPC_ASSERT_OK((*c)->CreateConsumer("second", d));
  const absl::Status s = (*c)->ConsumeInThread();  // binds
  EXPECT_FALSE(s.ok());
  EXPECT_THAT(std::string(s.message()), ::testing::HasSubstr(taken));
  EXPECT_THAT(std::string(s.message()), ::testing::HasSubstr("another process listens there"));
}

// --- zrpc::Service, typed calls, casts to one server, remote error args --------------------------

// A Service instance on its own transport that counts the "note" requests each topic got.
struct HelperInstance {
  absl::Mutex mu;
  std::map<std::string, int> notes ABSL_GUARDED_BY(mu);
  std::unique_ptr<Transport> transport;
  std::unique_ptr<Service> service;

  int Notes(const std::string& topic) {
    absl::MutexLock lock(&mu);
    return notes[topic];
  }
};

class ServiceHelperTest : public ServiceTest {
 protected:
  // Creates (not starts) a Service for `topic` on host `host`, version 1.3, with typed "add",
  // "hello" (returns a string) and "note" (counts per arriving topic and fanout).
  std::unique_ptr<HelperInstance> MakeHelper(const std::string& host, const std::string& topic,
                                             std::function<absl::Status(Service&)> init = nullptr) {
    auto h = std::make_unique<HelperInstance>();
    HelperInstance* raw = h.get();
    h->transport = Client(ClientOptions(host));
    Endpoint ep{.version = "1.3"};
    ep.Method("add", {"a", "b"}, [](int64_t a, int64_t b) { return a + b; })
        .Method("hello", {}, [] { return std::string("hi"); })
        .Method("note", {"kind"}, [raw](CallContext& ctx, std::string kind) {
          absl::MutexLock lock(&raw->mu);
          raw->notes[kind + "@" + ctx.topic()]++;
        });
    absl::StatusOr<std::unique_ptr<Service>> svc = Service::Create(
        *h->transport, {.topic = topic, .initialize = std::move(init)}, {std::move(ep)});
    EXPECT_TRUE(svc.ok()) << svc.status();
    if (svc.ok()) h->service = *std::move(svc);
    return h;
  }
};

TEST_F(ServiceHelperTest, StartCreatesTheThreeStandardConsumersAfterTheInitializeHook) {
  auto client = Client();
  bool hook_ran = false;
  absl::Status call_during_hook;
  auto h = MakeHelper("node1", "helper", [&](Service& service) -> absl::Status {
    hook_ran = true;
    // The hook runs before the service registers: nobody serves the topic yet.
    call_during_hook = client->Call(Context(), "helper", Msg("hello", {}, "1.3")).status();
    // ... and may add consumers of its own.
    return service.connection()->CreateConsumer("helper-extra", service.dispatcher());
  });
  ZRPC_ASSERT_OK(h->service->Start());
  EXPECT_TRUE(hook_ran);
  EXPECT_TRUE(IsErrorKind(call_during_hook, ErrorKind::kNoConsumer)) << call_during_hook;
  EXPECT_EQ(h->service->host(), "node1");

  RpcProxy proxy(*client, "helper", "1.3");
  for (const char* topic : {"helper", "helper.node1", "helper-extra"}) {
    absl::StatusOr<int64_t> sum = proxy.Call<int64_t>(Context(), "add", {{"a", 1}, {"b", 2}},
                                                      {.topic = topic});
    ZRPC_ASSERT_OK(sum);
    EXPECT_EQ(*sum, 3) << topic;
  }
  ZRPC_ASSERT_OK(proxy.FanoutCast(Context(), proxy.MakeMsg("note", {{"kind", "fanout"}})));
  EXPECT_TRUE(Eventually([&] { return h->Notes("fanout@helper") == 1; }));
  ZRPC_EXPECT_ERROR(h->service->Start(), absl::StatusCode::kFailedPrecondition, "already started");

  h->service->Stop();
  h->service->Stop();  // idempotent
  EXPECT_EQ(h->service->connection(), nullptr);
  EXPECT_TRUE(Eventually([&] {
    return IsErrorKind(proxy.Call<int64_t>(Context(), "add", {{"a", 1}, {"b", 2}}).status(),
                       ErrorKind::kNoConsumer);
  }));
  // A stopped service starts again.
  ZRPC_ASSERT_OK(h->service->Start());
  EXPECT_TRUE(Eventually([&] { return proxy.Call<int64_t>(Context(), "add", {{"a", 2}, {"b", 2}}).ok(); }));
}

TEST_F(ServiceHelperTest, AFailingInitializeHookStopsStartAndRunReturnsOne) {
  auto h = MakeHelper("node2", "hooked", [](Service&) {
    return absl::FailedPreconditionError("config missing: set FOO");
  });
  ZRPC_EXPECT_ERROR(h->service->Start(), absl::StatusCode::kFailedPrecondition, "config missing");
  EXPECT_EQ(h->service->connection(), nullptr);
  auto client = Client();
  EXPECT_TRUE(IsErrorKind(client->Call(Context(), "hooked", Msg("hello", {}, "1.3")).status(),
                          ErrorKind::kNoConsumer));
  LogCapture logs;
  EXPECT_EQ(h->service->Run(), 1);  // fails at Start: never waits for a signal
  EXPECT_TRUE(logs.Contains("cannot start service \"hooked\": FAILED_PRECONDITION: config missing"));
  ZRPC_EXPECT_ERROR(Service::Create(*client, {.topic = ""}, std::vector<Endpoint>{}),
                    absl::StatusCode::kInvalidArgument, "topic is empty");
  ZRPC_EXPECT_ERROR(Service::Create(*client, {.topic = "a b"}, std::vector<Endpoint>{}),
                    absl::StatusCode::kInvalidArgument, "topic");
}

TEST_F(ServiceHelperTest, TypedCallsConvertTheResultOrNameTheMismatch) {
  auto h = MakeHelper("node3", "typed");
  ZRPC_ASSERT_OK(h->service->Start());
  auto client = Client();
  RpcProxy proxy(*client, "typed", "1.3");
  absl::StatusOr<std::string> hi = proxy.Call<std::string>(Context(), "hello");
  ZRPC_ASSERT_OK(hi);
  EXPECT_EQ(*hi, "hi");
  absl::StatusOr<Value> any = proxy.Call(Context(), "add", {{"a", 2}, {"b", 3}});
  ZRPC_ASSERT_OK(any);
  EXPECT_EQ(*any, Value(5));
  absl::StatusOr<double> as_double = proxy.Call<double>(Context(), proxy.MakeMsg("add", {{"a", 1}, {"b", 1}}));
  ZRPC_ASSERT_OK(as_double);
  EXPECT_EQ(*as_double, 2.0);

  absl::StatusOr<int64_t> wrong = proxy.Call<int64_t>(Context(), "hello");
  EXPECT_EQ(wrong.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(wrong.status().message(), "result of hello: expected integer, got string");
  EXPECT_EQ(proxy.Call<std::vector<int>>(Context(), "add", {{"a", 1}, {"b", 1}}).status().message(),
            "result of add: expected array of integer, got integer");
  // Errors of the call itself come through unchanged.
  absl::StatusOr<int64_t> bad_arg = proxy.Call<int64_t>(Context(), "add", {{"a", "1"}, {"b", 1}});
  EXPECT_THAT(std::string(bad_arg.status().message()),
              HasSubstr("argument \"a\" of method \"add\": expected integer, got string"));
  // A wrong version names what is served; a wrong namespace says so.
  absl::Status version = proxy.Call<int64_t>(Context(), "add", {}, {.version = "2.1"}).status();
  EXPECT_TRUE(IsErrorKind(version, ErrorKind::kUnsupportedRpcVersion)) << version;
  EXPECT_THAT(std::string(version.message()), HasSubstr("serves namespace \"\" at 1.3."));
  RpcProxy spaced(*client, "typed", "1.3", {.ns = "admin"});
  absl::Status ns = spaced.Call<int64_t>(Context(), "add").status();
  EXPECT_TRUE(IsErrorKind(ns, ErrorKind::kNoSuchMethod)) << ns;
  EXPECT_THAT(std::string(ns.message()), HasSubstr("namespace \"admin\" is not served here"));
}

TEST_F(ServiceHelperTest, CastToServerReachesOnlyTheGivenEndpointWithTheProxysVersion) {
  auto a = MakeHelper("hosta", "direct");
  auto b = MakeHelper("hostb", "direct");
  ZRPC_ASSERT_OK(a->service->Start());
  ZRPC_ASSERT_OK(b->service->Start());
  auto client = Client();
  RpcProxy proxy(*client, "direct", "1.2");
  const std::string b_endpoint = b->transport->endpoint();
  ASSERT_FALSE(b_endpoint.empty());
  for (int i = 0; i < 4; ++i) {
    ZRPC_ASSERT_OK(proxy.CastToServer(Context(), b_endpoint, proxy.MakeMsg("note", {{"kind", "direct"}})));
  }
  ZRPC_ASSERT_OK(proxy.FanoutCastToServer(Context(), a->transport->endpoint(),
                                          proxy.MakeMsg("note", {{"kind", "fan"}})));
  EXPECT_TRUE(Eventually([&] { return b->Notes("direct@direct") == 4 && a->Notes("fan@direct") == 1; }));
  EXPECT_EQ(a->Notes("direct@direct"), 0);  // never sent to the other instance
  EXPECT_EQ(b->Notes("fan@direct"), 0);
  // The proxy's version travels (a version the service does not serve is dropped there, so use
  // the cap, checked before sending).
  RpcProxy capped(*client, "direct", "1.3", {.version_cap = "1.2"});
  EXPECT_TRUE(IsErrorKind(capped.CastToServer(Context(), b_endpoint, capped.MakeMsg("note", {{"kind", "x"}})),
                          ErrorKind::kRpcVersionCapError));
  EXPECT_TRUE(IsErrorKind(
      capped.FanoutCastToServer(Context(), b_endpoint, capped.MakeMsg("note", {{"kind", "x"}})),
      ErrorKind::kRpcVersionCapError));
  RpcProxy detached("direct", "1.3");
  ZRPC_EXPECT_ERROR(detached.CastToServer(Context(), b_endpoint, detached.MakeMsg("note")),
                    absl::StatusCode::kFailedPrecondition, "without a transport");
}

TEST_F(ServiceHelperTest, RemoteErrorArgsAndKwargsSurviveAHandlerPassingTheErrorOn) {
  // back: fails with args and kwargs; front: calls back and returns its error as it is.
  auto back_transport = Client(ClientOptions("back"));
  auto back = Service::Create(*back_transport, {.topic = "back"},
                              {Endpoint{}.Method("charge", {}, []() -> absl::Status {
                                return WithErrorArgs(absl::ResourceExhaustedError("over quota"),
                                                     Array{"acct-7"}, {{"limit", 10}});
                              })});
  ZRPC_ASSERT_OK(back);
  ZRPC_ASSERT_OK((*back)->Start());
  auto front_transport = Client(ClientOptions("front"));
  Transport* ft = front_transport.get();
  auto front = Service::Create(
      *front_transport, {.topic = "front"},
      {Endpoint{}.Method("charge", {}, [ft](CallContext& ctx) -> absl::Status {
        return ft->Call(ctx.context(), "back", Msg("charge")).status();
      })});
  ZRPC_ASSERT_OK(front);
  ZRPC_ASSERT_OK((*front)->Start());
  auto client = Client();
  absl::Status s = client->Call(Context(), "front", Msg("charge")).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kResourceExhausted) << s;
  EXPECT_EQ(RemoteErrorArgs(s), Value(Array{"acct-7"}));
  EXPECT_EQ(RemoteErrorKwargs(s).Find("limit")->AsInt(), 10);
  EXPECT_EQ(FormatError(s), "RESOURCE_EXHAUSTED: over quota");
}

// Service::Run in a process of its own: serves until SIGTERM, then unregisters and exits 0.
// The child is this test binary, re-run with only the test below and ZRPC_TEST_RUN_SERVICE set
// to the matchmaker URL.
TEST(ServiceRunChild, ServesUntilSignalled) {
  const char* matchmaker = getenv("ZRPC_TEST_RUN_SERVICE");
  // Not a test of its own (CTest does not list it): run alone, it fails rather than skip.
  ASSERT_NE(matchmaker, nullptr) << "runs only as ServiceHelperTest's child process";
  BlockShutdownSignals();
  auto transport = Transport::Create({.host = "runner", .matchmaker = matchmaker,
                                      .call_heartbeat_interval = absl::Milliseconds(200)});
  if (!transport.ok()) _exit(3);
  auto service = Service::Create(
      **transport, {.topic = "runner", .initialize = [](Service&) {
                      std::cout << "INITIALIZED" << std::endl;
                      return absl::OkStatus();
                    }},
      {Endpoint{}.Method("add", {"a", "b"}, [](int64_t a, int64_t b) { return a + b; })});
  if (!service.ok()) _exit(4);
  const int rc = (*service)->Run();
  std::cout << "STOPPED " << rc << std::endl;
  service->reset();
  (*transport)->Close();
  _exit(rc);
}

TEST_F(ServiceHelperTest, RunServesInItsOwnProcessUntilSigtermThenExitsZero) {
  ChildProcess child;
  setenv("ZRPC_TEST_RUN_SERVICE", matchmaker_.c_str(), 1);
  const std::string line = child.StartAndWaitForLine(
      {"/proc/self/exe", "--gtest_filter=ServiceRunChild.ServesUntilSignalled"}, "INITIALIZED",
      15000);
  unsetenv("ZRPC_TEST_RUN_SERVICE");
  ASSERT_FALSE(line.empty()) << "the child service did not start";
  auto client = Client();
  RpcProxy proxy(*client, "runner", "1.0");
  EXPECT_TRUE(Eventually([&] { return proxy.Call<int64_t>(Context(), "add", {{"a", 40}, {"b", 2}}).ok(); }));
  absl::StatusOr<int64_t> sum = proxy.Call<int64_t>(Context(), "add", {{"a", 40}, {"b", 2}},
                                                    {.topic = "runner.runner"});
  ZRPC_ASSERT_OK(sum);
  EXPECT_EQ(*sum, 42);
  child.Signal(SIGTERM);
  EXPECT_FALSE(child.WaitForLine("STOPPED 0", 10000).empty());
  const int status = child.Reap(10000);
  ASSERT_TRUE(WIFEXITED(status)) << status;
  EXPECT_EQ(WEXITSTATUS(status), 0);
  // Nobody serves the topic any more.
  EXPECT_TRUE(IsErrorKind(proxy.Call<int64_t>(Context(), "add", {{"a", 1}, {"b", 1}}).status(),
                          ErrorKind::kNoConsumer));
}

}  // namespace
}  // namespace zrpc::testing
