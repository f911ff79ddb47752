// SPDX-License-Identifier: Apache-2.0
// Fault behaviour of the client engine against real service processes (DESIGN §3): fail fast,
// fail over, eject and re-probe, nothing leaked. The fast subset of bench/'s fault matrix.
#include <dirent.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>

#include <atomic>
#include <fstream>
#include <set>
#include <thread>

#include "absl/synchronization/notification.h"
#include "testing/harness.h"
#include "testing/redis_server.h"
#include "unit/test_util.h"

namespace zrpc::testing {
namespace {

int OpenFds() {
  int n = 0;
  if (DIR* d = opendir("/proc/self/fd")) {
    while (readdir(d) != nullptr) ++n;
    closedir(d);
  }
  return n;
}

// A loopback TCP port nothing listens on: testing/redis_server.h's FreePort.
int ClosedPort() { return FreePort(); }

class FaultTest : public IntegrationTest {
 protected:
  std::string WhoAmI(Transport& client, std::string_view topic = "compute",
                     absl::Status* error = nullptr) {
    absl::StatusOr<Value> r =
        client.Call(Context(), topic, Msg("whoami"), {.timeout = absl::Seconds(5)});
    if (!r.ok()) {
      if (error != nullptr) *error = r.status();
      return "";
    }
    return r->AsString();
  }
};

TEST_F(FaultTest, ACallToAKilledInstanceEndsWithPeerLostAtOnceNotAtItsDeadline) {
  ChildProcess& b = StartService("b");
  StartService("a");
  auto client = Client();
  absl::Status result;
  absl::Time ended;
  std::thread caller([&] {
    result = client->Call(Context(), "compute.b", Msg("sleep", {{"ms", 5000}}),
                          {.timeout = absl::Seconds(20)})
                 .status();
    ended = absl::Now();
  });
  absl::SleepFor(absl::Milliseconds(300));
  const absl::Time killed = absl::Now();
  b.Kill();
  caller.join();
  EXPECT_TRUE(IsErrorKind(result, ErrorKind::kPeerLost)) << result;
  // The connection's death is seen at once; 3 beats of 200 ms are the outer bound.
  EXPECT_LT(ended - killed, absl::Milliseconds(700));
  // The topic keeps working on the other instance.
  for (int i = 0; i < 10; ++i) EXPECT_EQ(WhoAmI(*client), "a");
}

TEST_F(FaultTest, CastsAfterAnInstanceIsKilledReachTheLiveOneAndACastToItFailsFast) {
  ChildProcess& b = StartService("b");
  StartService("a");
  auto client = Client();
  // Both instances get a cast (round-robin), so the client holds a connection to each.
  for (int i = 0; i < 2; ++i) {
    ZRPC_ASSERT_OK(client->Cast(Context(), "compute", Msg("note", {{"kind", "warm"}})));
  }
  b.Kill();
  // The client learns of the death (a call to b ends in PeerLost and takes b out of rotation).
  absl::Status call = client->Call(Context(), "compute.b", Msg("whoami"),
                                   {.timeout = absl::Seconds(5)}).status();
  EXPECT_TRUE(IsErrorKind(call, ErrorKind::kPeerLost)) << call;
  // A cast to b alone has nowhere to go: PeerLost, well before the cast timeout, not a hang.
  const absl::Time start = absl::Now();
  absl::Status direct = client->Cast(Context(), "compute.b", Msg("note", {{"kind", "lost"}}));
  EXPECT_TRUE(IsErrorKind(direct, ErrorKind::kPeerLost)) << direct;
  EXPECT_LT(absl::Now() - start, absl::Milliseconds(1500));
  // Casts to the topic all reach the live instance.
  for (int i = 0; i < 10; ++i) {
    ZRPC_ASSERT_OK(client->Cast(Context(), "compute", Msg("note", {{"kind", "after"}})));
  }
  EXPECT_TRUE(Eventually([&] {
    absl::StatusOr<Value> stats = client->Call(Context(), "compute.a", Msg("stats"));
    const Value* notes = stats.ok() ? stats->Find("notes") : nullptr;
    const Value* after = notes != nullptr ? notes->Find("after") : nullptr;
    return after != nullptr && after->is_int() && after->AsInt() == 10;
  }));
}

TEST_F(FaultTest, AStoppedInstanceIsEjectedAfterOneCallAndProbedBackAfterItResumes) {
  StartService("a");
  ChildProcess& b = StartService("b");
  StartService("c");
  auto client = Client();
  std::set<std::string> seen;
  std::string order;
  for (int i = 0; i < 9; ++i) {
    absl::Status error;
    const std::string who = WhoAmI(*client, "compute", &error);
    seen.insert(who);
    order += (who.empty() ? error.ToString() : who) + " ";
  }
  ASSERT_EQ(seen.size(), 3u) << order;
  b.Signal(SIGSTOP);
  ASSERT_TRUE(WaitStopped(b.pid()));
  int lost = 0, ok = 0;
  absl::Duration slowest;
  for (int i = 0; i < 30; ++i) {
    absl::Status error;
    const absl::Time start = absl::Now();
    const std::string who = WhoAmI(*client, "compute", &error);
    slowest = std::max(slowest, absl::Now() - start);
    EXPECT_NE(who, "b");
    if (who.empty()) {
      EXPECT_TRUE(IsErrorKind(error, ErrorKind::kPeerLost)) << error;
      ++lost;
    } else {
      ++ok;
    }
  }
  // One call found the hung instance (3 silent beats of 200 ms); then it was out of rotation.
  EXPECT_LE(lost, 1);
  EXPECT_GE(ok, 29);
  EXPECT_LT(slowest, absl::Milliseconds(1500));
  b.Signal(SIGCONT);
  // Re-probed: back in rotation within about a second of answering.
  EXPECT_TRUE(Eventually([&] { return WhoAmI(*client) == "b"; }, absl::Seconds(4)));
}

TEST_F(FaultTest, ANewConnectionToAStoppedInstanceFailsOverAfterTheConnectTimeout) {
  StartService("a");
  ChildProcess& b = StartService("b");
  StartService("c");
  b.Signal(SIGSTOP);
  ASSERT_TRUE(WaitStopped(b.pid()));
  // A fresh client: its first connection to b is accepted by b's kernel, but the handshake
  // never completes. Nothing was queued, so the call moves on (connect_timeout is 500 ms here).
  auto client = Client();
  for (int i = 0; i < 9; ++i) {
    const absl::Time start = absl::Now();
    absl::Status error;
    const std::string who = WhoAmI(*client, "compute", &error);
    EXPECT_TRUE(who == "a" || who == "c") << who << " " << error;
    EXPECT_LT(absl::Now() - start, absl::Milliseconds(1500));
  }
  b.Signal(SIGCONT);
}

TEST_F(FaultTest, EveryCallPathFailsOverFromARegistrationThatCannotBeReached) {
  StartService("live");
  // A registration whose endpoint nobody listens on, owned by this (live) process.
  absl::StatusOr<std::unique_ptr<Matchmaker>> mm = CreateMatchmaker(matchmaker_);
  ZRPC_ASSERT_OK(mm);
  Registration ghost{.topic = "compute", .host = "ghost",
                     .endpoint = absl::StrCat("tcp://127.0.0.1:", ClosedPort())};
  ZRPC_ASSERT_OK((*mm)->Register(ghost));
  for (int round = 0; round < 3; ++round) {
    auto client = Client();  // fresh: the ghost is not ejected yet
    absl::Status error;
    EXPECT_EQ(WhoAmI(*client, "compute", &error), "live") << error;
    auto fresh = Client();
    absl::StatusOr<std::unique_ptr<ReplyStream>> stream =
        fresh->MultiCall(Context(), "compute", Msg("count", {{"n", 2}}));
    ZRPC_ASSERT_OK(stream);
    ZRPC_ASSERT_OK((*stream)->Next());
    auto batch = Client();
    std::vector<Message> msgs(6, Msg("whoami"));
    for (const absl::StatusOr<Value>& r : batch->CallMany(Context(), "compute", msgs)) {
      ZRPC_ASSERT_OK(r);
      EXPECT_EQ(r->AsString(), "live");
    }
    auto async = Client();
    absl::Notification done;
    absl::StatusOr<Value> async_result;
    async->CallAsync(Context(), "compute", Msg("whoami"), [&](absl::StatusOr<Value> r) {
      async_result = std::move(r);
      done.Notify();
    });
    ASSERT_TRUE(done.WaitForNotificationWithTimeout(absl::Seconds(10)));
    ZRPC_ASSERT_OK(async_result);
    auto caster = Client();
    for (int i = 0; i < 4; ++i) ZRPC_ASSERT_OK(caster->Cast(Context(), "compute", Msg("note", {{"kind", "x"}})));
  }
}

TEST_F(FaultTest, CallManyWhoseServiceDiesMidBatchGivesEveryCallAnOutcome) {
  ChildProcess& only = StartService("only");
  auto client = Client();
  std::vector<Message> msgs(3000, Msg("sleep", {{"ms", 1}}));
  std::thread killer([&] {
    absl::SleepFor(absl::Milliseconds(150));
    only.Kill();
  });
  const absl::Time start = absl::Now();
  std::vector<absl::StatusOr<Value>> results =
      client->CallMany(Context(), "compute", msgs, {.timeout = absl::Seconds(30), .window = 64});
  killer.join();
  EXPECT_LT(absl::Now() - start, absl::Seconds(10));
  int ok = 0, lost = 0, other = 0;
  for (const auto& r : results) {
    if (r.ok()) {
      ++ok;
    } else if (IsErrorKind(r.status(), ErrorKind::kPeerLost) ||
               IsErrorKind(r.status(), ErrorKind::kNoConsumer)) {
      ++lost;
    } else {
      ++other;
      ADD_FAILURE() << r.status();
    }
  }
  EXPECT_GT(ok, 0);
  EXPECT_GT(lost, 0);
  EXPECT_EQ(other, 0);
}

TEST_F(FaultTest, AnInstanceRestartedOnTheSameEndpointIsBackWithinASecond) {
  const int port = ClosedPort();
  ChildProcess* s = &StartService("phoenix", {"--port", std::to_string(port)});
  auto client = Client();
  ASSERT_EQ(WhoAmI(*client), "phoenix");
  s->Kill();
  absl::Status error;
  EXPECT_EQ(WhoAmI(*client, "compute", &error), "");
  StartService("phoenix", {"--port", std::to_string(port)});
  const absl::Time ready = absl::Now();
  EXPECT_TRUE(Eventually([&] { return WhoAmI(*client) == "phoenix"; }, absl::Seconds(5)));
  EXPECT_LT(absl::Now() - ready, absl::Milliseconds(1500));
}

TEST_F(FaultTest, FreshProcessesStartRoundRobinAtARandomInstance) {
  StartService("a");
  StartService("b");
  StartService("c");
  std::set<std::string> first_picks;
  for (int i = 0; i < 12; ++i) {
    auto client = Client();
    first_picks.insert(WhoAmI(*client));
  }
  EXPECT_GE(first_picks.size(), 2u);
}

TEST_F(FaultTest, SocketsToEndpointsThatLeftAreClosed) {
  auto client = Client();
  StartService("warmup").Kill();
  services_.clear();
  const int before = OpenFds();
  for (int cycle = 0; cycle < 8; ++cycle) {
    ChildProcess& s = StartService(absl::StrCat("gen", cycle));
    for (int i = 0; i < 3; ++i) EXPECT_FALSE(WhoAmI(*client).empty());
    absl::Notification async_done;
    client->CallAsync(Context(), "compute", Msg("whoami"), [&](absl::StatusOr<Value> r) {
      EXPECT_TRUE(r.ok()) << r.status();
      async_done.Notify();
    });
    EXPECT_TRUE(async_done.WaitForNotificationWithTimeout(absl::Seconds(10)));
    s.Kill();
    services_.clear();
    (void)WhoAmI(*client);  // learns that it is gone
  }
  // The client drops what belonged to endpoints that left (checked about once a second).
  EXPECT_TRUE(Eventually([&] { return OpenFds() <= before + 4; }, absl::Seconds(5)))
      << "fds before " << before << ", now " << OpenFds();
}

TEST_F(FaultTest, StreamsNotifiersAndListenersThatOutliveTheirTransportFailCleanly) {
  StartService("s");
  auto client = Client();
  absl::StatusOr<std::unique_ptr<ReplyStream>> stream =
      client->MultiCall(Context(), "compute", Msg("count", {{"n", 1000}, {"delay_ms", 20}}));
  ZRPC_ASSERT_OK(stream);
  ZRPC_ASSERT_OK((*stream)->Next());
  absl::StatusOr<std::unique_ptr<Notifier>> notifier = Notifier::Create(*client, "pub");
  ZRPC_ASSERT_OK(notifier);
  absl::StatusOr<std::unique_ptr<NotificationListener>> listener =
      NotificationListener::Create(*client, {"notifications"}, [](const Notification&) {});
  ZRPC_ASSERT_OK(listener);
  const absl::Time start = absl::Now();
  client.reset();  // the Transport goes first
  EXPECT_LT(absl::Now() - start, absl::Seconds(3));
  absl::StatusOr<std::optional<Value>> next = (*stream)->Next();
  while (next.ok() && next->has_value()) next = (*stream)->Next();  // values already received
  EXPECT_TRUE(IsErrorKind(next.status(), ErrorKind::kTransportClosed)) << next.status();
  EXPECT_TRUE(IsErrorKind((*notifier)->Notify(Context(), "e", Priority::kInfo, Value(1)),
                          ErrorKind::kTransportClosed));
  stream->reset();
  notifier->reset();
  listener->reset();
}

// A registry that also answers with entries an attacker or a broken writer could have planted.
class PoisonedMatchmaker : public Matchmaker {
 public:
  explicit PoisonedMatchmaker(std::unique_ptr<Matchmaker> real) : real_(std::move(real)) {}
  absl::Status Register(const Registration& r) override { return real_->Register(r); }
  absl::Status Unregister(const Registration& r) override { return real_->Unregister(r); }
  absl::Status Heartbeat() override { return real_->Heartbeat(); }
  absl::StatusOr<std::vector<Registration>> Resolve(std::string_view exchange,
                                                    std::string_view key) override {
    absl::StatusOr<std::vector<Registration>> regs = real_->Resolve(exchange, key);
    if (!regs.ok()) return regs;
    std::vector<Registration> out;
    out.push_back({.topic = std::string(key), .host = "evil", .endpoint = "tcp://a b:1\nX"});
    out.push_back({.topic = "other", .host = "evil", .endpoint = "tcp://127.0.0.1:1"});
    out.push_back({.topic = std::string(key), .host = "bad\x1b[2J", .endpoint = "tcp://127.0.0.1:1"});
    out.insert(out.end(), regs->begin(), regs->end());
    return out;
  }
  absl::StatusOr<std::vector<Registration>> List(std::string_view exchange) override {
    return real_->List(exchange);
  }
  absl::StatusOr<std::unique_ptr<WatchHandle>> Watch(std::function<void()> f) override {
    return real_->Watch(std::move(f));
  }
  std::string url() const override { return "poisoned+" + real_->url(); }

 private:
  std::unique_ptr<Matchmaker> real_;
};

TEST_F(FaultTest, BadRegistrationsAreSkippedWithALogLineAndTheLookupGoesOn) {
  std::vector<std::string> lines;
  absl::Mutex mu;
  SetLogSink([&](LogLevel, std::string_view line) {
    absl::MutexLock lock(&mu);
    lines.emplace_back(line);
  });
  StartService("good");
  absl::StatusOr<std::unique_ptr<Matchmaker>> real = CreateMatchmaker(matchmaker_);
  ZRPC_ASSERT_OK(real);
  TransportOptions o = ClientOptions();
  o.matchmaker_instance = std::make_shared<PoisonedMatchmaker>(*std::move(real));
  auto client = Client(o);
  for (int i = 0; i < 6; ++i) EXPECT_EQ(WhoAmI(*client), "good");
  SetLogSink(nullptr);
  absl::MutexLock lock(&mu);
  bool logged = false;
  for (const std::string& l : lines) {
    if (l.find("skipped 3 of 4 registrations") != std::string::npos) logged = true;
    EXPECT_EQ(l.find('\x1b'), std::string::npos) << "raw control byte in a log line";
  }
  EXPECT_TRUE(logged);
}

TEST_F(FaultTest, ADirectTopicOfAnotherHostCannotBeConsumed) {
  auto server = Client(ClientOptions("node1"));
  Dispatcher d;
  auto conn = *server->CreateConnection();
  absl::Status s = conn->CreateConsumer("compute.node2", d);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s;
  EXPECT_THAT(std::string(s.message()), ::testing::HasSubstr("compute.node1"));
  ZRPC_ASSERT_OK(conn->CreateConsumer("compute.node1", d));
}

TEST_F(FaultTest, BindingEveryInterfaceNeedsTheInsecureOption) {
  for (const char* any : {"0.0.0.0", "*", "::"}) {
    TransportOptions o = ClientOptions("open");
    o.bind_address = any;
    absl::StatusOr<std::unique_ptr<Transport>> t = Transport::Create(o);
    ASSERT_FALSE(t.ok()) << any;
    EXPECT_EQ(t.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(std::string(t.status().message()), ::testing::HasSubstr("insecure"));
  }
  TransportOptions o = ClientOptions("open");
  o.bind_address = "0.0.0.0";
  o.insecure = true;
  ZRPC_ASSERT_OK(Transport::Create(o));
}

}  // namespace
}  // namespace zrpc::testing
