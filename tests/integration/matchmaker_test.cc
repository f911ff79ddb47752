// SPDX-License-Identifier: Apache-2.0
// Every matchmaker backend behind real services (zrpc-service processes) and real servers
// (redis-server), including faults.
#include <sys/stat.h>

#include <atomic>
#include <fstream>
#include <iostream>
#include <set>
#include <thread>
#include <zmq.hpp>

#include "matchmaker/redis.h"
#include "matchmaker/redis_connection.h"
#include "matchmaker/registration_json.h"
#include "matchmaker/sidecar/protocol.h"
#include "testing/harness.h"
#include "testing/log_capture.h"
#include "testing/redis_server.h"
#include "unit/test_util.h"

namespace zrpc::testing {
namespace {

using ::testing::HasSubstr;

std::string Who(Transport& t, const std::string& topic) {
  absl::StatusOr<Value> v = t.Call(Context(), topic, IntegrationTest::Msg("whoami"));
  return v.ok() && v->is_string() ? v->AsString() : std::string(v.status().message());
}

int64_t Notes(Transport& t, const std::string& host, const std::string& kind) {
  absl::StatusOr<Value> s = t.Call(Context(), "compute." + host, IntegrationTest::Msg("stats"));
  if (!s.ok()) return -1;
  const Value* n = s->Find("notes")->Find(kind);
  return n && n->is_int() ? n->AsInt() : 0;
}

void WriteFile(const std::string& path, const std::string& text) {
  const std::string tmp = path + ".tmp";
  std::ofstream(tmp) << text;
  std::rename(tmp.c_str(), path.c_str());
}

// Starts a zrpc-matchmaker sidecar; READY once it prints its endpoints.
std::unique_ptr<ChildProcess> StartSidecar(const std::string& endpoint,
                                           std::vector<std::string> extra = {}) {
  auto p = std::make_unique<ChildProcess>();
  std::vector<std::string> argv = {ZRPC_MATCHMAKER_BINARY, "--endpoint", endpoint};
  argv.insert(argv.end(), extra.begin(), extra.end());
  EXPECT_FALSE(p->StartAndWaitForLine(argv, "READY ", 10000).empty()) << "sidecar did not start";
  return p;
}

// Prints a measured figure (and records it in the test's XML output).
void Figure(const std::string& what, absl::Duration d) {
  std::cout << "[ FIGURE   ] " << what << ": " << absl::FormatDuration(d) << std::endl;
  ::testing::Test::RecordProperty(what, std::to_string(absl::ToInt64Milliseconds(d)));
}

// Talks the sidecar protocol directly (matchmaker/sidecar/protocol.h): requests of any size, and
// how long the sidecar takes to answer them.
class RawSidecarClient {
 public:
  explicit RawSidecarClient(const std::string& url) : socket_(ctx_, zmq::socket_type::dealer) {
    socket_.set(zmq::sockopt::linger, 0);
    socket_.connect(url);
  }
  // The result of one request whose body is the JSON text `body`; DEADLINE_EXCEEDED after 5 s.
  absl::StatusOr<Value> Request(std::string_view op, const std::string& body) {
    const uint64_t id = next_id_++;
    socket_.send(zmq::buffer(internal::sidecar::RequestHeader(op, id)), zmq::send_flags::sndmore);
    socket_.send(zmq::buffer(body), zmq::send_flags::none);
    socket_.set(zmq::sockopt::rcvtimeo, 5000);
    zmq::message_t header, reply;
    while (socket_.recv(header) && header.more() && socket_.recv(reply)) {
      if (header.to_string() != internal::sidecar::ReplyHeader(std::to_string(id))) continue;
      return internal::sidecar::DecodeReply(reply.to_string_view()).result;
    }
    return absl::DeadlineExceededError("the sidecar did not answer within 5 s");
  }
  absl::StatusOr<Value> Request(std::string_view op, Object body) {
    return Request(op, ToJson(Value(std::move(body))).value());
  }

 private:
  zmq::context_t ctx_{1};
  zmq::socket_t socket_;
  uint64_t next_id_ = 0;
};

// Change notices from a sidecar's PUB.
class ChangeListener {
 public:
  explicit ChangeListener(const std::string& pub) : socket_(ctx_, zmq::socket_type::sub) {
    socket_.set(zmq::sockopt::linger, 0);
    socket_.set(zmq::sockopt::subscribe, "");
    socket_.connect(pub);
  }
  // True when a notice for `key` (or for every key) arrives within `timeout`.
  bool WaitFor(const std::string& key, absl::Duration timeout) {
    const absl::Time until = absl::Now() + timeout;
    for (absl::Duration left = timeout; left > absl::ZeroDuration(); left = until - absl::Now()) {
      socket_.set(zmq::sockopt::rcvtimeo,
                  static_cast<int>(std::max<int64_t>(1, absl::ToInt64Milliseconds(left))));
      zmq::message_t m;
      if (!socket_.recv(m)) break;
      if (m.to_string() == internal::sidecar::ChangeNotice(key) ||
          m.to_string() == internal::sidecar::ChangeNotice(internal::sidecar::kAnyKey)) {
        return true;
      }
    }
    return false;
  }
  void Drain() {
    zmq::message_t m;
    while (socket_.recv(m, zmq::recv_flags::dontwait)) {
    }
  }

 private:
  zmq::context_t ctx_{1};
  zmq::socket_t socket_;
};

// The same behaviour through every backend: round-robin, direct, fanout, unknown topic.
class BackendTest : public IntegrationTest, public ::testing::WithParamInterface<std::string> {
 protected:
  void SetUp() override {
    IntegrationTest::SetUp();
    const std::string backend = GetParam();
    std::map<std::string, std::vector<std::string>> extra;
    if (backend == "redis") {
      ASSERT_TRUE(redis_.Start());
      matchmaker_ = redis_.Url();
    } else if (backend == "ring") {
      // The ring lists each host with the port it will listen on.
      std::string endpoints;
      for (const char* h : {"node1", "node2", "node3"}) {
        const int port = FreePort();
        extra[h] = {"--port", std::to_string(port)};
        if (!endpoints.empty()) endpoints += ",";
        endpoints += "\"" + std::string(h) + "\": \"tcp://127.0.0.1:" + std::to_string(port) + "\"";
      }
      ring_ = registry_ + "/ring.json";
      WriteFile(ring_, "{\"compute\": [\"node1\", \"node2\", \"node3\"], \"_endpoints\": {" +
                           endpoints + "}}");
      matchmaker_ = "ring://" + ring_;
    } else if (backend == "sidecar") {
      matchmaker_ = "ipc://" + registry_ + "/mm.sock";
      sidecar_ = StartSidecar(matchmaker_);
    }
    for (const char* h : {"node1", "node2", "node3"}) StartService(h, extra[h]);
    client_ = Client();
    // Registrations through a server can take a heartbeat to show everywhere.
    ASSERT_TRUE(Eventually([&] {
      absl::StatusOr<std::vector<Registration>> r = client_->matchmaker().Resolve("openstack", "compute");
      return r.ok() && r->size() == 3;
    }));
  }

  RedisServer redis_;
  std::unique_ptr<ChildProcess> sidecar_;
  std::string ring_;
  std::unique_ptr<Transport> client_;
};

TEST_P(BackendTest, BareTopicGoesRoundRobin) {
  std::map<std::string, int> seen;
  for (int i = 0; i < 6; ++i) seen[Who(*client_, "compute")]++;
  EXPECT_EQ(seen, (std::map<std::string, int>{{"node1", 2}, {"node2", 2}, {"node3", 2}}));
}

TEST_P(BackendTest, DirectTopicGoesToThatHost) {
  for (int i = 0; i < 3; ++i) EXPECT_EQ(Who(*client_, "compute.node3"), "node3");
}

TEST_P(BackendTest, FanoutReachesEveryHost) {
  ZRPC_ASSERT_OK(client_->FanoutCast(Context(), "compute", Msg("note", {{"kind", "f"}})));
  for (const char* h : {"node1", "node2", "node3"}) {
    EXPECT_TRUE(Eventually([&] { return Notes(*client_, h, "f") == 1; })) << h;
  }
}

TEST_P(BackendTest, UnknownTopicIsAClearError) {
  absl::Status s = client_->Call(Context(), "storage", Msg("whoami")).status();
  EXPECT_TRUE(IsErrorKind(s, ErrorKind::kNoConsumer)) << s;
  if (GetParam() == "ring") {
    EXPECT_THAT(std::string(s.message()), HasSubstr(ring_));
  }
  EXPECT_TRUE(IsErrorKind(client_->Call(Context(), "compute.node9", Msg("whoami")).status(),
                          ErrorKind::kNoConsumer));
}

INSTANTIATE_TEST_SUITE_P(Backends, BackendTest,
                         ::testing::Values("local", "ring", "redis", "sidecar"),
                         [](const auto& info) { return info.param; });

class RedisFaultTest : public IntegrationTest {
 protected:
  void SetUp() override {
    IntegrationTest::SetUp();
    ASSERT_TRUE(redis_.Start());
    matchmaker_ = redis_.Url();
  }
  RedisServer redis_;
};

TEST_F(RedisFaultTest, AKilledServiceLeavesRotationWithinTheDefaultTtl) {
  matchmaker_ = redis_.Url("");  // the defaults: ttl 6 s, heartbeat 2 s
  StartService("node1");
  ChildProcess& doomed = StartService("node2");
  auto client = Client();
  auto hosts = [&] {
    std::set<std::string> out;
    absl::StatusOr<std::vector<Registration>> r = client->matchmaker().Resolve("openstack", "compute");
    if (r.ok()) {
      for (const Registration& reg : *r) out.insert(reg.host);
    }
    return out;
  };
  ASSERT_TRUE(Eventually([&] { return hosts().size() == 2; }));
  const absl::Time killed = absl::Now();
  doomed.Kill();
  EXPECT_TRUE(Eventually([&] { return hosts() == std::set<std::string>{"node1"}; }, absl::Seconds(15)));
  const absl::Duration gone = absl::Now() - killed;
  Figure("killed service gone from Redis's answers after", gone);
  EXPECT_LT(gone, absl::Seconds(10));
  for (int i = 0; i < 4; ++i) EXPECT_EQ(Who(*client, "compute"), "node1");
}

TEST_F(RedisFaultTest, RedisRestartedEmptyHasEveryRegistrationBackWithinASecond) {
  // Default settings: a heartbeat comes every 2 s, so only re-registering on reconnecting is
  // fast enough.
  matchmaker_ = redis_.Url("");
  StartService("node1");
  absl::StatusOr<std::unique_ptr<Matchmaker>> mm = CreateMatchmaker(matchmaker_);
  ZRPC_ASSERT_OK(mm);
  const Registration mine{.topic = "mine", .host = "h", .endpoint = "tcp://127.0.0.1:1"};
  ZRPC_ASSERT_OK((*mm)->Register(mine));
  absl::StatusOr<std::unique_ptr<Matchmaker>> observer = CreateMatchmaker(matchmaker_);
  ZRPC_ASSERT_OK(observer);
  auto both_registered = [&] {
    absl::StatusOr<std::vector<Registration>> service = (*observer)->Resolve("openstack", "compute");
    absl::StatusOr<std::vector<Registration>> ours = (*observer)->Resolve("openstack", "mine");
    return service.ok() && service->size() == 1 && ours.ok() && ours->size() == 1;
  };
  ASSERT_TRUE(Eventually(both_registered));
  EXPECT_EQ((*mm)->LastReconnect(), absl::InfinitePast());

  redis_.Kill();  // kill -9: every registration is lost with it
  const absl::Time killed = absl::Now();
  ASSERT_TRUE(redis_.Start());  // the same port, empty
  const absl::Time answering = absl::Now();
  EXPECT_TRUE(Eventually(both_registered, absl::Seconds(10)));
  const absl::Duration back = absl::Now() - answering;
  Figure("registrations back after Redis answered again", back);
  EXPECT_LT(back, absl::Seconds(1));
  EXPECT_GT((*mm)->LastReconnect(), killed);
  EXPECT_LT((*mm)->LastReconnect(), absl::Now());
}

TEST_F(RedisFaultTest, RedisKilledAndRestartedServicesComeBack) {
  StartService("node1");
  StartService("node2");
  auto client = Client();
  ASSERT_TRUE(Eventually([&] { return Who(*client, "compute.node2") == "node2"; }));
  EXPECT_EQ(Who(*client, "compute"), Who(*client, "compute") == "node1" ? "node2" : "node1");
  redis_.Kill();
  // The client keeps serving from what it knew.
  for (int i = 0; i < 4; ++i) {
    const std::string who = Who(*client, "compute");
    EXPECT_TRUE(who == "node1" || who == "node2") << who;
  }
  // A new client cannot resolve anything yet, and says why.
  auto newcomer = Client();
  absl::Status s = newcomer->Call(Context(), "compute", Msg("whoami")).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kUnavailable) << s;
  EXPECT_THAT(std::string(s.message()), HasSubstr("redis"));
  // Redis comes back empty; the services re-register with their next heartbeats.
  ASSERT_TRUE(redis_.Start());
  EXPECT_TRUE(Eventually([&] {
    absl::StatusOr<std::vector<Registration>> r = newcomer->matchmaker().Resolve("openstack", "compute");
    return r.ok() && r->size() == 2;
  }, absl::Seconds(15)));
  EXPECT_TRUE(Eventually([&] { return Who(*newcomer, "compute.node1") == "node1"; }));
}

TEST_F(RedisFaultTest, PasswordAndDatabaseComeFromTheUrl) {
  RedisServer secured;
  ASSERT_TRUE(secured.Start("s3cret"));
  matchmaker_ = secured.Url("ttl=2&heartbeat=0.3", /*db=*/3);
  StartService("node1");
  auto client = Client();
  EXPECT_EQ(Who(*client, "compute"), "node1");
  // Database 0 of the same server holds nothing of it.
  absl::StatusOr<std::unique_ptr<Matchmaker>> db0 = CreateMatchmaker(secured.Url("", 0));
  ZRPC_ASSERT_OK(db0);
  absl::StatusOr<std::vector<Registration>> none = (*db0)->Resolve("openstack", "compute");
  ZRPC_ASSERT_OK(none);
  EXPECT_TRUE(none->empty());
  // A wrong password is a clear error.
  absl::StatusOr<std::unique_ptr<Matchmaker>> wrong = CreateMatchmaker(
      "redis://:nope@127.0.0.1:" + std::to_string(secured.port()) + "/3");
  ZRPC_ASSERT_OK(wrong);
  absl::Status s = (*wrong)->Resolve("openstack", "compute").status();
  EXPECT_EQ(s.code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(std::string(s.message()), HasSubstr("AUTH"));
}

TEST_F(RedisFaultTest, TopicAndDirectTopicKeysNeverClash) {
  // The seed's WRONGTYPE bug: "compute" and "compute.host" as different key types.
  absl::StatusOr<std::unique_ptr<Matchmaker>> mm = CreateMatchmaker(redis_.Url());
  ZRPC_ASSERT_OK(mm);
  for (const Registration& r :
       {Registration{.topic = "compute", .host = "h", .endpoint = "tcp://127.0.0.1:1"},
        Registration{.topic = "compute.h", .host = "h", .endpoint = "tcp://127.0.0.1:1"},
        Registration{.topic = "compute", .host = "h", .endpoint = "tcp://127.0.0.1:1", .fanout = true}}) {
    ZRPC_ASSERT_OK((*mm)->Register(r));
  }
  for (const char* key : {"compute", "compute.h", "fanout~compute"}) {
    absl::StatusOr<std::vector<Registration>> got = (*mm)->Resolve("openstack", key);
    ZRPC_ASSERT_OK(got);
    EXPECT_EQ(got->size(), 1u) << key;
  }
  ZRPC_ASSERT_OK((*mm)->Unregister(Registration{.topic = "compute", .host = "h", .endpoint = "tcp://127.0.0.1:1"}));
  EXPECT_TRUE((*mm)->Resolve("openstack", "compute")->empty());
  EXPECT_EQ((*mm)->List("openstack")->size(), 2u);
}

TEST_F(RedisFaultTest, RedisDownAtStartIsRetriedNotFatal) {
  redis_.Kill();
  absl::StatusOr<std::unique_ptr<Matchmaker>> mm = CreateMatchmaker(redis_.Url());
  ZRPC_ASSERT_OK(mm);  // not fatal
  EXPECT_EQ((*mm)->Register(Registration{.topic = "t", .host = "h", .endpoint = "tcp://127.0.0.1:1"}).code(),
            absl::StatusCode::kUnavailable);
  ASSERT_TRUE(redis_.Start());
  EXPECT_TRUE(Eventually([&] { return (*mm)->Heartbeat().ok(); }));
  EXPECT_EQ((*mm)->Resolve("openstack", "t")->size(), 1u);  // re-registered by the heartbeat
}

class SidecarTest : public IntegrationTest {
 protected:
  // Members outlive TearDown, which stops the services first.
  RedisServer redis_;
  std::unique_ptr<ChildProcess> sidecar_, sidecar_b_;
  std::set<std::string> Hosts(Transport& t) {
    std::set<std::string> out;
    absl::StatusOr<std::vector<Registration>> r = t.matchmaker().Resolve("openstack", "compute");
    if (r.ok()) {
      for (const Registration& reg : *r) out.insert(reg.host);
    }
    return out;
  }
  // The hosts of "compute" as the sidecar holds them now (List is never cached).
  static std::set<std::string> ListedHosts(Matchmaker& mm) {
    std::set<std::string> out;
    absl::StatusOr<std::vector<Registration>> r = mm.List("openstack");
    if (r.ok()) {
      for (const Registration& reg : *r) {
        if (reg.Key() == "compute") out.insert(reg.host);
      }
    }
    return out;
  }
  static std::set<std::string> ListedHosts(Transport& t) { return ListedHosts(t.matchmaker()); }
};

TEST_F(SidecarTest, KilledAndRestartedSidecarGetsEveryServiceBack) {
  matchmaker_ = "ipc://" + registry_ + "/mm.sock";
  sidecar_ = StartSidecar(matchmaker_);
  StartService("node1");
  StartService("node2");
  auto client = Client();
  ASSERT_TRUE(Eventually([&] { return Hosts(*client).size() == 2; }));
  sidecar_->Kill();
  // Clients keep serving from their cache while the sidecar is away.
  for (int i = 0; i < 4; ++i) {
    const std::string who = Who(*client, "compute");
    EXPECT_TRUE(who == "node1" || who == "node2") << who;
  }
  // The outage outlasts a heartbeat's timeout (1 s): the services must find the sidecar back.
  absl::SleepFor(absl::Milliseconds(1500));
  sidecar_ = StartSidecar(matchmaker_);  // empty: it knows nobody
  const absl::Time restarted = absl::Now();
  auto newcomer = Client();
  EXPECT_TRUE(Eventually([&] { return ListedHosts(*newcomer).size() == 2; }, absl::Seconds(10)));
  const absl::Duration refilled = absl::Now() - restarted;
  Figure("sidecar back after an outage: services registered again after", refilled);
  EXPECT_LT(refilled, absl::Seconds(1));
  EXPECT_EQ(Who(*newcomer, "compute.node2"), "node2");
}

TEST_F(SidecarTest, RestartedMemorySidecarNeitherStrandsRunningClientsNorLosesServices) {
  matchmaker_ = "ipc://" + registry_ + "/mm.sock";
  sidecar_ = StartSidecar(matchmaker_);
  StartService("node1");
  StartService("node2");
  auto client = Client();
  ASSERT_TRUE(Eventually([&] { return Hosts(*client).size() == 2; }));
  // A running client keeps resolving through the restart; the longest run of empty answers counts.
  std::atomic<bool> stop{false};
  absl::Duration longest_empty;
  std::thread resolver([&] {
    absl::Time empty_since = absl::InfiniteFuture();
    while (!stop) {
      absl::StatusOr<std::vector<Registration>> r =
          client->matchmaker().Resolve("openstack", "compute");
      const absl::Time now = absl::Now();
      if (r.ok() && r->empty()) {
        empty_since = std::min(empty_since, now);
        longest_empty = std::max(longest_empty, now - empty_since);
      } else {
        empty_since = absl::InfiniteFuture();
      }
      absl::SleepFor(absl::Milliseconds(5));  // the client's call rate, not a wait
    }
  });
  sidecar_->Kill();
  const absl::Time killed = absl::Now();
  sidecar_ = StartSidecar(matchmaker_);  // at once, empty
  const absl::Time restarted = absl::Now();
  absl::StatusOr<std::unique_ptr<Matchmaker>> fresh = CreateMatchmaker(matchmaker_);
  ZRPC_ASSERT_OK(fresh);
  EXPECT_TRUE(Eventually([&] { return ListedHosts(**fresh).size() == 2; }, absl::Seconds(10)));
  const absl::Duration refilled = absl::Now() - restarted;
  EXPECT_TRUE(Eventually([&] { return Hosts(*client).size() == 2; }));
  stop = true;
  resolver.join();
  Figure("restarted sidecar: services registered again after", refilled);
  Figure("restarted sidecar: longest run of empty answers to a running client", longest_empty);
  EXPECT_LT(refilled, absl::Seconds(1));
  EXPECT_LT(longest_empty, absl::Milliseconds(1500));
  // It noticed the new sidecar (when its subscription reconnected, or in an answer).
  EXPECT_TRUE(
      Eventually([&] { return client->matchmaker().LastReconnect() > killed; }, absl::Seconds(1)));
}

TEST_F(SidecarTest, AKilledServiceLeavesResolveWithinASecond) {
  matchmaker_ = "ipc://" + registry_ + "/mm.sock";
  sidecar_ = StartSidecar(matchmaker_);  // ttl 5 s: the TTL alone would take 5 s
  ChangeListener changes(matchmaker_ + ".pub");
  StartService("node1");
  ChildProcess& doomed = StartService("node2");
  auto client = Client();
  ASSERT_TRUE(Eventually([&] { return Hosts(*client).size() == 2; }));
  ASSERT_TRUE(changes.WaitFor("compute", absl::Seconds(5)));  // subscribed: it heard the services
  changes.Drain();
  const absl::Time killed = absl::Now();
  doomed.Kill();
  EXPECT_TRUE(changes.WaitFor("compute", absl::Seconds(1)));
  Figure("killed service: change notice on the sidecar's PUB after", absl::Now() - killed);
  // The client's answer for "compute" was cached for 5 s: only the notice can make this quick.
  EXPECT_TRUE(Eventually([&] { return Hosts(*client) == std::set<std::string>{"node1"}; },
                         absl::Seconds(1)));
  const absl::Duration gone = absl::Now() - killed;
  Figure("killed service gone from the sidecar's answers after", gone);
  EXPECT_LT(gone, absl::Seconds(1));
  for (int i = 0; i < 4; ++i) EXPECT_EQ(Who(*client, "compute"), "node1");
}

TEST_F(SidecarTest, AStoppedServiceExpiresAfterTheTtlAndReturnsWhenResumed) {
  matchmaker_ = "ipc://" + registry_ + "/mm.sock";
  sidecar_ = StartSidecar(matchmaker_, {"--ttl", "1"});
  StartService("node1");
  ChildProcess& frozen = StartService("node2");
  auto client = Client();
  ASSERT_TRUE(Eventually([&] { return Hosts(*client).size() == 2; }));
  // Alive but silent (its connection stays open): only the TTL can take it out.
  frozen.Signal(SIGSTOP);
  const absl::Time stopped = absl::Now();
  EXPECT_TRUE(Eventually([&] { return Hosts(*client) == std::set<std::string>{"node1"}; }));
  const absl::Duration expired = absl::Now() - stopped;
  frozen.Signal(SIGCONT);
  EXPECT_GT(expired, absl::Milliseconds(500));  // not dropped as if it had exited
  EXPECT_LT(expired, absl::Seconds(3));         // ttl 1 s, swept every 100 ms
  // Its next heartbeat carries every registration: it is back.
  EXPECT_TRUE(Eventually([&] { return Hosts(*client).size() == 2; }, absl::Seconds(5)));
}

TEST_F(SidecarTest, AHeartbeatOf20000RegistrationsIsAnsweredWithinASecond) {
  matchmaker_ = "ipc://" + registry_ + "/mm.sock";
  sidecar_ = StartSidecar(matchmaker_);
  StartService("node1");
  auto client = Client();
  ASSERT_TRUE(Eventually([&] { return Hosts(*client).size() == 1; }));
  std::vector<Registration> many;
  for (int i = 0; i < 20000; ++i) {
    many.push_back(Registration{.topic = "bulk-" + std::to_string(i),
                                .host = "h" + std::to_string(i % 100),
                                .endpoint = "tcp://10.0." + std::to_string(i / 250) + "." +
                                            std::to_string(i % 250) + ":9000"});
  }
  const std::string beat =
      ToJson(Value(Object{{"client", "bulk"},
                          {"registrations", internal::sidecar::RegistrationsToValue(many)}}))
          .value();
  // Another client keeps asking while the sidecar takes the beat in.
  std::atomic<bool> stop{false};
  std::atomic<int> answers{0};
  absl::Duration slowest;
  std::thread asker([&] {
    RawSidecarClient other(matchmaker_);
    while (!stop) {
      const absl::Time t0 = absl::Now();
      absl::StatusOr<Value> r = other.Request(
          internal::sidecar::kResolve, Object{{"exchange", "openstack"}, {"key", "compute"}});
      slowest = std::max(slowest, absl::Now() - t0);
      if (r.ok()) ++answers;
    }
  });
  RawSidecarClient bulk(matchmaker_);
  absl::Time t0 = absl::Now();
  absl::StatusOr<Value> first = bulk.Request(internal::sidecar::kHeartbeat, beat);
  const absl::Duration first_beat = absl::Now() - t0;
  t0 = absl::Now();
  absl::StatusOr<Value> again = bulk.Request(internal::sidecar::kHeartbeat, beat);
  const absl::Duration known_beat = absl::Now() - t0;
  const int answers_before = answers;
  EXPECT_TRUE(Eventually([&] { return answers > answers_before; }));  // still answering
  stop = true;
  asker.join();
  ZRPC_EXPECT_OK(first);
  ZRPC_EXPECT_OK(again);
  Figure("heartbeat of 20,000 new registrations answered after", first_beat);
  Figure("heartbeat of 20,000 known registrations answered after", known_beat);
  Figure("slowest other request meanwhile", slowest);
  EXPECT_LT(first_beat, absl::Seconds(1));
  EXPECT_LT(known_beat, absl::Seconds(1));
  EXPECT_LT(slowest, absl::Seconds(1));
  absl::StatusOr<Value> last = bulk.Request(
      internal::sidecar::kResolve, Object{{"exchange", "openstack"}, {"key", "bulk-19999"}});
  ZRPC_ASSERT_OK(last);
  EXPECT_EQ(last->Find("registrations")->AsArray().size(), 1u);
  EXPECT_EQ(Who(*client, "compute"), "node1");
}

TEST_F(SidecarTest, ClientsHearOfNewServicesWithoutPolling) {
  matchmaker_ = "ipc://" + registry_ + "/mm.sock";
  sidecar_ = StartSidecar(matchmaker_);
  StartService("node1");
  auto client = Client();
  ASSERT_EQ(Hosts(*client), std::set<std::string>{"node1"});  // now cached for 5 s
  StartService("node2");
  const absl::Time started = absl::Now();
  EXPECT_TRUE(Eventually([&] { return Hosts(*client).size() == 2; }));
  EXPECT_LT(absl::Now() - started, absl::Seconds(2));  // the change notice, not the 5 s cache expiry
}

TEST_F(SidecarTest, TwoSidecarsSharingOneRedisResolveEachOthersServices) {
  RedisServer& redis = redis_;
  ASSERT_TRUE(redis.Start());
  const std::string a = "ipc://" + registry_ + "/a.sock", b = "ipc://" + registry_ + "/b.sock";
  sidecar_ = StartSidecar(a, {"--backend", redis.Url()});
  sidecar_b_ = StartSidecar(b, {"--backend", redis.Url()});
  matchmaker_ = a;
  StartService("a");
  matchmaker_ = b;
  StartService("b");
  auto client_a = Client();  // uses sidecar b (matchmaker_), and a second one uses a
  TransportOptions on_a = ClientOptions("client-a");
  on_a.matchmaker = a;
  auto client_b = Client(on_a);
  for (Transport* t : {client_a.get(), client_b.get()}) {
    EXPECT_TRUE(Eventually([&] { return Hosts(*t) == std::set<std::string>{"a", "b"}; }));
    EXPECT_EQ(Who(*t, "compute.a"), "a");
    EXPECT_EQ(Who(*t, "compute.b"), "b");
  }
}

TEST_F(SidecarTest, SidecarOverARedisThatRestartedEmptyHasItsServicesBackWithinASecond) {
  ASSERT_TRUE(redis_.Start());
  matchmaker_ = "ipc://" + registry_ + "/mm.sock";
  sidecar_ = StartSidecar(matchmaker_, {"--backend", redis_.Url("")});  // Redis's defaults
  StartService("node1");
  auto client = Client();
  ASSERT_TRUE(Eventually([&] { return ListedHosts(*client) == std::set<std::string>{"node1"}; }));
  redis_.Kill();
  ASSERT_TRUE(redis_.Start());  // the same port, empty
  const absl::Time answering = absl::Now();
  EXPECT_TRUE(Eventually([&] { return ListedHosts(*client) == std::set<std::string>{"node1"}; }));
  const absl::Duration back = absl::Now() - answering;
  Figure("sidecar over a restarted Redis: services back after", back);
  EXPECT_LT(back, absl::Seconds(1));
  EXPECT_EQ(Who(*client, "compute"), "node1");
}

TEST_F(SidecarTest, StopsCleanlyOnSigtermAndExplainsItsFlags) {
  sidecar_ = StartSidecar("ipc://" + registry_ + "/mm.sock");
  sidecar_->Signal(SIGTERM);
  const int status = sidecar_->Reap(5000);
  ASSERT_NE(status, -1) << "still running 5 s after SIGTERM";
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
  ChildProcess help;
  ASSERT_TRUE(help.Start({ZRPC_MATCHMAKER_BINARY, "--help"}));
  EXPECT_FALSE(help.WaitForLine("usage: zrpc-matchmaker", 5000).empty());
  EXPECT_EQ(WEXITSTATUS(help.Reap(5000)), 0);
  ChildProcess bad;
  ASSERT_TRUE(bad.Start({ZRPC_MATCHMAKER_BINARY, "--backend", "zk://nowhere",
                         "--endpoint", "ipc://" + registry_ + "/bad.sock"}));
  EXPECT_EQ(WEXITSTATUS(bad.Reap(5000)), 1);
}

class RingTest : public IntegrationTest {};

TEST_F(RingTest, EditsToTheRingFileTakeEffectWhileRunning) {
  const int p1 = FreePort(), p2 = FreePort();
  const std::string ring = registry_ + "/ring.json";
  const std::string endpoints = "\"_endpoints\": {\"node1\": \"tcp://127.0.0.1:" + std::to_string(p1) +
                                "\", \"node2\": \"tcp://127.0.0.1:" + std::to_string(p2) + "\"}";
  WriteFile(ring, "{\"compute\": [\"node1\"], " + endpoints + "}");
  matchmaker_ = "ring://" + ring;
  StartService("node1", {"--port", std::to_string(p1)});
  StartService("node2", {"--port", std::to_string(p2)});
  auto client = Client();
  for (int i = 0; i < 3; ++i) EXPECT_EQ(Who(*client, "compute"), "node1");
  WriteFile(ring, "{\"compute\": [\"node1\", \"node2\"], " + endpoints + "}");
  EXPECT_TRUE(Eventually([&] { return Who(*client, "compute.node2") == "node2"; }));
  // The plain topic's cached routes refresh too (a watch notice, or their TTL under load).
  std::set<std::string> seen;
  EXPECT_TRUE(Eventually([&] {
    seen.insert(Who(*client, "compute"));
    return seen == std::set<std::string>{"node1", "node2"};
  })) << seen.size();
  // A broken edit keeps the last good ring.
  WriteFile(ring, "{broken");
  absl::SleepFor(absl::Milliseconds(300));
  EXPECT_EQ(Who(*client, "compute.node2"), "node2");
}

TEST_F(RingTest, BadRingFilesAreClearErrorsAtStart) {
  const std::string dir = registry_;
  struct Case {
    std::string name, text, expect;
  } cases[] = {
      {"empty.json", "", "is empty"},
      {"invalid.json", "{\"compute\": [", "invalid JSON"},
      {"array.json", "[\"compute\"]", "must be a JSON object"},
      {"dup.json", "{\"compute\": [\"a\", \"b\", \"a\"]}", "listed twice"},
      {"nohosts.json", "{\"compute\": []}", "non-empty list"},
      {"badhost.json", "{\"compute\": [\"a/b\"]}", "not allowed"},
      {"dotted.json", "{\"compute.x\": [\"a\"]}", "bare topic"},
      {"badep.json", "{\"compute\": [\"a\"], \"_endpoints\": {\"a\": 5}}", "endpoint of \"a\""},
      {"notopics.json", "{\"_port\": 9000}", "lists no topics"},
  };
  for (const Case& c : cases) {
    WriteFile(dir + "/" + c.name, c.text);
    absl::Status s = CreateMatchmaker("ring://" + dir + "/" + c.name).status();
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << c.name << ": " << s;
    EXPECT_THAT(std::string(s.message()), HasSubstr(c.expect)) << c.name;
    EXPECT_THAT(std::string(s.message()), HasSubstr(dir + "/" + c.name));
  }
  absl::Status missing = CreateMatchmaker("ring://" + dir + "/missing.json").status();
  EXPECT_EQ(missing.code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(missing.message()), HasSubstr("missing.json"));
}

TEST(MatchmakerFactoryTest, BadUrlsNameTheSchemes) {
  for (const char* url : {"http://x", "redis:/nope", "ring://relative.json", "local://relative",
                          "redis://127.0.0.1:99999", "redis://h?ttl=1&heartbeat=2", "zk://x"}) {
    absl::Status s = CreateMatchmaker(url).status();
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << url << s;
  }
  EXPECT_THAT(std::string(CreateMatchmaker("zk://x").status().message()),
              HasSubstr("local://"));
}


TEST_F(SidecarTest, OnlyTheConnectionThatRegisteredSomethingMayUnregisterIt) {
  matchmaker_ = "ipc://" + registry_ + "/mm.sock";
  sidecar_ = StartSidecar(matchmaker_);
  absl::StatusOr<std::unique_ptr<Matchmaker>> owner = CreateMatchmaker(matchmaker_);
  absl::StatusOr<std::unique_ptr<Matchmaker>> other = CreateMatchmaker(matchmaker_);
  ZRPC_ASSERT_OK(owner);
  ZRPC_ASSERT_OK(other);
  const Registration r{.topic = "compute", .host = "victim", .endpoint = "tcp://127.0.0.1:1"};
  ZRPC_ASSERT_OK((*owner)->Register(r));
  const absl::Status s = (*other)->Unregister(r);
  EXPECT_EQ(s.code(), absl::StatusCode::kPermissionDenied) << s;
  EXPECT_THAT(std::string(s.message()), HasSubstr("only the connection that registered"));
  EXPECT_EQ(ListedHosts(**other), std::set<std::string>{"victim"});  // still there
  // A raw peer naming the owner's "client" is no better: ownership is the connection's.
  RawSidecarClient raw(matchmaker_);
  absl::StatusOr<Value> forged =
      raw.Request(internal::sidecar::kUnregister,
                  Object{{"client", "anyone"}, {"registration", internal::RegistrationToValue(r)}});
  EXPECT_EQ(forged.status().code(), absl::StatusCode::kPermissionDenied) << forged.status();
  EXPECT_EQ(ListedHosts(**other), std::set<std::string>{"victim"});
  ZRPC_ASSERT_OK((*owner)->Unregister(r));
  EXPECT_TRUE(ListedHosts(**other).empty());
}

TEST_F(SidecarTest, AClientThatReconnectedStillOwnsItsRegistrations) {
  matchmaker_ = "ipc://" + registry_ + "/mm.sock";
  sidecar_ = StartSidecar(matchmaker_);
  absl::StatusOr<std::unique_ptr<Matchmaker>> owner = CreateMatchmaker(matchmaker_);
  ZRPC_ASSERT_OK(owner);
  const Registration r{.topic = "compute", .host = "mine", .endpoint = "tcp://127.0.0.1:1"};
  ZRPC_ASSERT_OK((*owner)->Register(r));
  // A request the frozen sidecar does not answer makes the client drop its socket and make a
  // new one once the sidecar is back: the same owner, with the same routing id.
  sidecar_->Signal(SIGSTOP);
  ASSERT_TRUE(WaitStopped(sidecar_->pid()));
  EXPECT_EQ((*owner)->List("").status().code(), absl::StatusCode::kUnavailable);
  sidecar_->Signal(SIGCONT);
  ASSERT_TRUE(Eventually([&] { return (*owner)->List("").ok(); }, absl::Seconds(10)));
  EXPECT_EQ(ListedHosts(**owner), std::set<std::string>{"mine"});
  ZRPC_ASSERT_OK((*owner)->Unregister(r));
  EXPECT_TRUE(ListedHosts(**owner).empty());
}

TEST_F(SidecarTest, InvalidRegistrationsAreRefusedByNameAndTheValidOnesOfTheRequestKept) {
  matchmaker_ = "ipc://" + registry_ + "/mm.sock";
  sidecar_ = StartSidecar(matchmaker_);
  RawSidecarClient raw(matchmaker_);
  const Registration good{.topic = "compute", .host = "good", .endpoint = "tcp://127.0.0.1:1"};
  Registration forged_host = good;
  forged_host.host = "h\nINFO forged line";
  Registration bad_endpoint = good;
  bad_endpoint.endpoint = "tcp://a b:1";
  // One registration: refused, saying what is wrong, escaped.
  absl::StatusOr<Value> one = raw.Request(
      internal::sidecar::kRegister,
      Object{{"client", "c"}, {"registration", internal::RegistrationToValue(forged_host)}});
  EXPECT_EQ(one.status().code(), absl::StatusCode::kInvalidArgument) << one.status();
  EXPECT_THAT(std::string(one.status().message()), HasSubstr("host"));
  EXPECT_EQ(std::string(one.status().message()).find('\n'), std::string::npos);
  // A heartbeat: the valid one is kept, the others named.
  absl::StatusOr<Value> beat = raw.Request(
      internal::sidecar::kHeartbeat,
      Object{{"client", "c"},
             {"registrations",
              internal::sidecar::RegistrationsToValue({forged_host, good, bad_endpoint})}});
  EXPECT_EQ(beat.status().code(), absl::StatusCode::kInvalidArgument) << beat.status();
  EXPECT_THAT(std::string(beat.status().message()), HasSubstr("2 of 3 registrations refused"));
  EXPECT_THAT(std::string(beat.status().message()), HasSubstr("#0: host"));
  EXPECT_THAT(std::string(beat.status().message()), HasSubstr("#2: endpoint"));
  EXPECT_EQ(std::string(beat.status().message()).find('\n'), std::string::npos);
  absl::StatusOr<std::unique_ptr<Matchmaker>> mm = CreateMatchmaker(matchmaker_);
  ZRPC_ASSERT_OK(mm);
  EXPECT_EQ(ListedHosts(**mm), std::set<std::string>{"good"});
}

TEST_F(SidecarTest, OversizedRequestsAreRefusedWithAClearErrorAndTheSidecarGoesOn) {
  matchmaker_ = "ipc://" + registry_ + "/mm.sock";
  sidecar_ = StartSidecar(matchmaker_);
  RawSidecarClient raw(matchmaker_);
  // More bytes than the sidecar takes (but within what its socket lets through to answer).
  const std::string huge =
      "{\"pad\":\"" + std::string(internal::sidecar::kMaxRequestBytes, 'x') + "\"}";
  absl::StatusOr<Value> big = raw.Request(internal::sidecar::kHeartbeat, huge);
  EXPECT_EQ(big.status().code(), absl::StatusCode::kResourceExhausted) << big.status();
  EXPECT_THAT(std::string(big.status().message()), HasSubstr("at most"));
  // More registrations in one request than it takes.
  std::vector<Registration> many;
  for (int i = 0; i < 20001; ++i) {
    many.push_back(Registration{
        .topic = "t" + std::to_string(i), .host = "h", .endpoint = "tcp://127.0.0.1:1"});
  }
  absl::StatusOr<Value> too_many = raw.Request(
      internal::sidecar::kHeartbeat,
      Object{{"client", "c"}, {"registrations", internal::sidecar::RegistrationsToValue(many)}});
  EXPECT_EQ(too_many.status().code(), absl::StatusCode::kResourceExhausted) << too_many.status();
  EXPECT_THAT(std::string(too_many.status().message()), HasSubstr("per request"));
  // Nothing of it is held, and the sidecar still answers.
  absl::StatusOr<Value> listed = raw.Request(internal::sidecar::kList, Object{{"exchange", ""}});
  ZRPC_ASSERT_OK(listed);
  EXPECT_TRUE(listed->Find("registrations")->AsArray().empty());
}

TEST_F(RedisFaultTest, AWrongTypedIndexKeyIsAnErrorLoggedOnceNeverNoConsumer) {
  absl::StatusOr<std::unique_ptr<Matchmaker>> mm = CreateMatchmaker(redis_.Url());
  ZRPC_ASSERT_OK(mm);
  {
    absl::StatusOr<internal::RedisAddress> a = internal::ParseRedisUrl(redis_.Url());
    ZRPC_ASSERT_OK(a);
    internal::RedisConnection conn(*a);
    ZRPC_ASSERT_OK(conn.Run({{"SET", "zrpc:idx:openstack|compute", "not a set"}}));
  }
  LogCapture log;
  for (int i = 0; i < 3; ++i) {
    absl::StatusOr<std::vector<Registration>> got = (*mm)->Resolve("openstack", "compute");
    ASSERT_FALSE(got.ok()) << "a wrong-typed index answered " << got->size() << " registrations";
    EXPECT_EQ(got.status().code(), absl::StatusCode::kInternal) << got.status();
    EXPECT_THAT(std::string(got.status().message()), HasSubstr("WRONGTYPE"));
  }
  EXPECT_EQ(log.Count("WRONGTYPE"), 1);
  // Other topics are unaffected.
  ZRPC_ASSERT_OK((*mm)->Resolve("openstack", "other"));
}

TEST_F(RedisFaultTest, MalformedStoredRegistrationsAreSkippedWithOneLogLine) {
  absl::StatusOr<std::unique_ptr<Matchmaker>> mm = CreateMatchmaker(redis_.Url());
  ZRPC_ASSERT_OK(mm);
  const Registration good{.topic = "compute", .host = "h", .endpoint = "tcp://127.0.0.1:1"};
  ZRPC_ASSERT_OK((*mm)->Register(good));
  {
    absl::StatusOr<internal::RedisAddress> a = internal::ParseRedisUrl(redis_.Url());
    ZRPC_ASSERT_OK(a);
    internal::RedisConnection conn(*a);
    ZRPC_ASSERT_OK(conn.Run({{"SET", "zrpc:reg:planted", "{\"topic\": 7}"},
                             {"SADD", "zrpc:idx:openstack|compute", "planted"}}));
  }
  LogCapture log;
  for (int i = 0; i < 3; ++i) {
    absl::StatusOr<std::vector<Registration>> got = (*mm)->Resolve("openstack", "compute");
    ZRPC_ASSERT_OK(got);
    ASSERT_EQ(got->size(), 1u);
    EXPECT_EQ(got->front().host, "h");
  }
  EXPECT_EQ(log.Count("zrpc:reg:planted"), 1);
}

TEST_F(RedisFaultTest, AHugeIndexIsReadOnlyUpToItsCapWithOneLogLine) {
  absl::StatusOr<std::unique_ptr<Matchmaker>> mm = CreateMatchmaker(redis_.Url());
  ZRPC_ASSERT_OK(mm);
  absl::StatusOr<internal::RedisAddress> a = internal::ParseRedisUrl(redis_.Url());
  ZRPC_ASSERT_OK(a);
  internal::RedisConnection conn(*a);
  constexpr size_t kPlanted = internal::RedisMatchmaker::kMaxIdsScanned + 904;
  internal::RedisConnection::Command sadd = {"SADD", "zrpc:idx:openstack|compute"};
  for (size_t i = 0; i < kPlanted; ++i) sadd.push_back("bogus-" + std::to_string(i));
  ZRPC_ASSERT_OK(conn.Run({sadd}));
  LogCapture log;
  // Ids without a registration behind them: read (at most the cap per lookup), found expired,
  // pruned.
  absl::StatusOr<std::vector<Registration>> got = (*mm)->Resolve("openstack", "compute");
  ZRPC_ASSERT_OK(got);
  EXPECT_TRUE(got->empty());
  absl::StatusOr<std::vector<internal::RedisConnection::Reply>> left =
      conn.Run({{"SCARD", "zrpc:idx:openstack|compute"}});
  ZRPC_ASSERT_OK(left);
  EXPECT_EQ((*left)[0].integer, 904);
  EXPECT_EQ(log.Count("only those are read"), 1);
  ZRPC_ASSERT_OK((*mm)->Resolve("openstack", "compute"));  // the rest, under the cap
  left = conn.Run({{"SCARD", "zrpc:idx:openstack|compute"}});
  ZRPC_ASSERT_OK(left);
  EXPECT_EQ((*left)[0].integer, 0);
  EXPECT_EQ(log.Count("only those are read"), 1);
}

TEST_F(RedisFaultTest, ThePasswordComesFromAPrivateFileOrTheEnvironmentAndIsNeverShown) {
  RedisServer secured;
  ASSERT_TRUE(secured.Start("s3cret-pw"));
  const std::string base = "redis://127.0.0.1:" + std::to_string(secured.port()) + "/0";
  const std::string file = registry_ + "/redis.pw";
  WriteFile(file, "s3cret-pw\n");
  ASSERT_EQ(chmod(file.c_str(), 0644), 0);
  // Readable by others: refused, saying how to fix it.
  absl::StatusOr<std::unique_ptr<Matchmaker>> open_file =
      CreateMatchmaker(base + "?password_file=" + file);
  EXPECT_EQ(open_file.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(open_file.status().message()), HasSubstr("chmod 600"));
  ASSERT_EQ(chmod(file.c_str(), 0600), 0);
  LogCapture log;
  absl::StatusOr<std::unique_ptr<Matchmaker>> from_file =
      CreateMatchmaker(base + "?password_file=" + file);
  ZRPC_ASSERT_OK(from_file);
  const Registration r{.topic = "compute", .host = "h", .endpoint = "tcp://127.0.0.1:1"};
  ZRPC_ASSERT_OK((*from_file)->Register(r));
  // The environment, when the URL has no password.
  ASSERT_EQ(setenv("ZRPC_REDIS_PASSWORD", "s3cret-pw", 1), 0);
  absl::StatusOr<std::unique_ptr<Matchmaker>> from_env = CreateMatchmaker(base);
  unsetenv("ZRPC_REDIS_PASSWORD");
  ZRPC_ASSERT_OK(from_env);
  absl::StatusOr<std::vector<Registration>> got = (*from_env)->Resolve("openstack", "compute");
  ZRPC_ASSERT_OK(got);
  EXPECT_EQ(got->size(), 1u);
  // A password in the URL still works, and is masked wherever the URL is shown.
  absl::StatusOr<std::unique_ptr<Matchmaker>> in_url =
      CreateMatchmaker("redis://:s3cret-pw@127.0.0.1:" + std::to_string(secured.port()) + "/0");
  ZRPC_ASSERT_OK(in_url);
  ZRPC_ASSERT_OK((*in_url)->Register(r));
  EXPECT_EQ((*in_url)->url(), "redis://:***@127.0.0.1:" + std::to_string(secured.port()) + "/0");
  absl::StatusOr<std::unique_ptr<Matchmaker>> bad =
      CreateMatchmaker("redis://:s3cret-pw@127.0.0.1:99999/0");
  EXPECT_FALSE(bad.ok());
  EXPECT_EQ(std::string(bad.status().message()).find("s3cret"), std::string::npos) << bad.status();
  EXPECT_EQ(log.Count("s3cret"), 0);
}

}  // namespace
}  // namespace zrpc::testing
