// SPDX-License-Identifier: Apache-2.0
// Registrations anyone may write cannot freeze or break clients: endpoints are addresses (a
// host name would be resolved, blocking, on a client's I/O thread), the heartbeat a registration
// announces is clamped, copies of one instance are one route, and a Redis index full of junk ids
// still answers at once. Real services (zrpc-service), real registries (local:// files, a
// redis-server, a ring file).
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <iostream>
#include <map>
#include <set>

#include "absl/strings/match.h"
#include "matchmaker/redis.h"
#include "matchmaker/redis_connection.h"
#include "matchmaker/registration_json.h"
#include "testing/harness.h"
#include "testing/log_capture.h"
#include "testing/redis_server.h"
#include "unit/test_util.h"

namespace zrpc::testing {
namespace {

using ::testing::HasSubstr;

constexpr char kSlowName[] = "zrpc-slow-dns.invalid";

// Prints a measured figure (and records it in the test's XML output).
void Figure(const std::string& what, absl::Duration d) {
  std::cout << "[ FIGURE   ] " << what << ": " << absl::FormatDuration(d) << std::endl;
  ::testing::Test::RecordProperty(what, std::to_string(absl::ToInt64Milliseconds(d)));
}

void WriteFile(const std::string& path, const std::string& text) {
  const std::string tmp = path + ".tmp";
  std::ofstream(tmp) << text;
  chmod(tmp.c_str(), 0600);
  std::rename(tmp.c_str(), path.c_str());
}

class RegistrationHygieneTest : public IntegrationTest {
 protected:
  // Writes `regs` into this test's local:// directory as a registry file of this (live) process,
  // unchecked, as anyone who can write there could.
  void Plant(const std::vector<Registration>& regs) {
    Array list;
    for (const Registration& r : regs) list.push_back(internal::RegistrationToValue(r));
    const std::string text = ToJson(Value(Object{{"pid", static_cast<int64_t>(getpid())},
                                                 {"start", int64_t{0}},
                                                 {"registrations", std::move(list)}}))
                                 .value();
    WriteFile(absl::StrCat(registry_, "/", getpid(), "-", 900000 + planted_++, ".json"), text);
  }
  // The registration of the service `host` for "compute", as the registry lists it.
  Registration Genuine(const std::string& host) {
    absl::StatusOr<std::unique_ptr<Matchmaker>> mm = CreateMatchmaker(matchmaker_);
    EXPECT_TRUE(mm.ok()) << mm.status();
    if (!mm.ok()) return {};
    absl::StatusOr<std::vector<Registration>> regs = (*mm)->Resolve("openstack", "compute");
    EXPECT_TRUE(regs.ok()) << regs.status();
    if (!regs.ok()) return {};
    for (const Registration& r : *regs) {
      if (r.host == host) return r;
    }
    ADD_FAILURE() << "no registration of " << host;
    return {};
  }
  // Makes `n` calls of `method` to "compute" with a deadline of `timeout` each; returns how many
  // succeeded, and the hosts that answered in `who`, the longest call in `longest`.
  int Calls(Transport& client, int n, const Message& m, absl::Duration timeout,
            std::set<std::string>* who = nullptr, absl::Duration* longest = nullptr) {
    int ok = 0;
    for (int i = 0; i < n; ++i) {
      const absl::Time start = absl::Now();
      absl::StatusOr<Value> v = client.Call(Context(), "compute", m, {.timeout = timeout});
      const absl::Duration took = absl::Now() - start;
      if (longest != nullptr) *longest = std::max(*longest, took);
      EXPECT_TRUE(v.ok()) << "call " << i << ": " << v.status();
      if (!v.ok()) continue;
      ++ok;
      if (who != nullptr && v->is_string()) who->insert(v->AsString());
    }
    return ok;
  }

  // How many registrations of "compute" the client's matchmaker lists.
  static size_t Listed(Transport& client) {
    absl::StatusOr<std::vector<Registration>> r = client.matchmaker().Resolve("openstack", "compute");
    return r.ok() ? r->size() : 0;
  }

  int planted_ = 0;
};

TEST_F(RegistrationHygieneTest, ARegistrationNamingASlowHostIsSkippedAndCallsStayFast) {
  StartService("good");
  Registration bad = Genuine("good");
  bad.host = "a-slow";  // listed first
  bad.endpoint = absl::StrCat("tcp://", kSlowName, ":5555");
  bad.pub_endpoint = absl::StrCat("tcp://", kSlowName, ":5556");
  Plant({bad});
  LogCapture log;
  auto client = Client();
  ASSERT_NE(client, nullptr);
  absl::Duration longest;
  std::set<std::string> who;
  EXPECT_EQ(Calls(*client, 20, Msg("whoami"), absl::Seconds(5), &who, &longest), 20);
  EXPECT_EQ(who, std::set<std::string>{"good"});
  EXPECT_LT(longest, absl::Seconds(1));  // each well before its 5 s deadline
  Figure("longest of 20 calls beside a registration naming a host", longest);
  EXPECT_TRUE(log.Contains("names a host, not an address")) << "the registration was not skipped";
  // The command line, a fresh process, likewise.
  ChildProcess cli;
  ASSERT_TRUE(cli.Start({ZRPC_CLI_BINARY, "call", "--matchmaker", matchmaker_, "compute", "whoami",
                         "--timeout", "5"},
                        {.capture_stderr = true}));
  const absl::Time start = absl::Now();
  const std::string out = cli.ReadAll(15000);
  const int status = cli.Reap(15000);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status << ": " << out;
  EXPECT_THAT(out, HasSubstr("good"));
  EXPECT_LT(absl::Now() - start, absl::Seconds(5));
}

TEST_F(RegistrationHygieneTest, ACopyAnnouncing1msHeartbeatsDoesNotFail30msCallsWithPeerLost) {
  StartService("good");
  Registration copy = Genuine("good");
  copy.host = "a-copy";  // listed first: the one a client keeps for the instance
  copy.heartbeat_ms = 1;
  Plant({copy});
  auto client = Client();
  ASSERT_NE(client, nullptr);
  ASSERT_TRUE(Eventually([&] {
    return Listed(*client) == 2;
  }));
  std::set<std::string> who;
  EXPECT_EQ(Calls(*client, 20, Msg("sleep", {{"ms", 30}}), absl::Seconds(5), &who), 20);
  EXPECT_EQ(who, std::set<std::string>{"good"});
}

TEST_F(RegistrationHygieneTest, AThousandCopiesOfAnInstanceLeaveEveryInstanceInRotation) {
  StartService("node-a");
  StartService("node-b");
  Registration a = Genuine("node-a");
  std::vector<Registration> copies;
  for (int i = 0; i < 1024; ++i) {
    Registration copy = a;
    copy.host = absl::StrCat("a-copy-", 1000 + i);  // all listed before node-a and node-b
    copy.heartbeat_ms = 1;
    copies.push_back(std::move(copy));
  }
  Plant(copies);
  LogCapture log;
  auto client = Client();
  ASSERT_NE(client, nullptr);
  ASSERT_TRUE(Eventually([&] {
    return Listed(*client) == 1026;
  }));
  std::set<std::string> who;
  EXPECT_EQ(Calls(*client, 20, Msg("sleep", {{"ms", 30}}), absl::Seconds(5), &who), 20);
  EXPECT_EQ(who, (std::set<std::string>{"node-a", "node-b"}));
  EXPECT_TRUE(log.Contains("1024 registrations for")) << "copies not collapsed";
}

TEST_F(RegistrationHygieneTest, ServicesBoundOrAdvertisedByNameRegisterAnAddress) {
  StartService("by-bind", {"--bind", "localhost"});
  StartService("by-nic", {"--bind", "lo"});  // an interface: libzmq binds its address
  StartService("by-advertise", {"--advertise", "localhost"});
  for (const char* host : {"by-bind", "by-nic", "by-advertise"}) {
    const Registration r = Genuine(host);
    EXPECT_TRUE(absl::StartsWith(r.endpoint, "tcp://127.0.0.1:") ||
                absl::StartsWith(r.endpoint, "tcp://[::1]:"))
        << r.endpoint;
    ZRPC_EXPECT_OK(ValidateRegistration(r));
  }
  auto client = Client();
  ASSERT_NE(client, nullptr);
  std::set<std::string> who;
  EXPECT_EQ(Calls(*client, 9, Msg("whoami"), absl::Seconds(5), &who), 9);
  EXPECT_EQ(who, (std::set<std::string>{"by-bind", "by-nic", "by-advertise"}));
  // A name that does not resolve is a clear error at start, not a registration.
  ChildProcess bad;
  ASSERT_TRUE(bad.Start({ZRPC_SERVICE_BINARY, "--host", "bad", "--matchmaker", matchmaker_,
                         "--advertise", kSlowName},
                        {.capture_stderr = true}));
  const std::string out = bad.ReadAll(20000);
  const int status = bad.Reap(20000);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) != 0) << status << ": " << out;
  EXPECT_THAT(out, HasSubstr("advertise_address"));
  EXPECT_THAT(out, HasSubstr(kSlowName));
  EXPECT_THAT(out, HasSubstr("set an IP address"));
}

TEST_F(RegistrationHygieneTest, RingHostNamesAreResolvedWhenReadOrTheFileIsRefused) {
  const int port = FreePort();
  const std::string ring = registry_ + "/ring.json";
  WriteFile(ring, absl::StrCat(R"({"compute": ["localhost"], "_port": )", port, "}"));
  matchmaker_ = "ring://" + ring;
  StartService("localhost", {"--port", std::to_string(port)});
  absl::StatusOr<std::unique_ptr<Matchmaker>> mm = CreateMatchmaker(matchmaker_);
  ZRPC_ASSERT_OK(mm);
  absl::StatusOr<std::vector<Registration>> regs = (*mm)->Resolve("openstack", "compute");
  ZRPC_ASSERT_OK(regs);
  ASSERT_EQ(regs->size(), 1u);
  EXPECT_TRUE((*regs)[0].endpoint == absl::StrCat("tcp://127.0.0.1:", port) ||
              (*regs)[0].endpoint == absl::StrCat("tcp://[::1]:", port))
      << (*regs)[0].endpoint;
  auto client = Client();
  ASSERT_NE(client, nullptr);
  EXPECT_EQ(Calls(*client, 3, Msg("whoami"), absl::Seconds(5)), 3);
  // A host that does not resolve: refused at once, naming it and the fix.
  const std::string bad = registry_ + "/bad-ring.json";
  WriteFile(bad, absl::StrCat(R"({"compute": ["node1", ")", kSlowName, R"("], "_endpoints": )",
                              R"({"node1": "tcp://127.0.0.1:9501"}})"));
  const absl::Time start = absl::Now();
  absl::Status s = CreateMatchmaker("ring://" + bad).status();
  EXPECT_LT(absl::Now() - start, absl::Seconds(4));
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s;
  EXPECT_THAT(std::string(s.message()), HasSubstr(kSlowName));
  EXPECT_THAT(std::string(s.message()), HasSubstr("_endpoints"));
  EXPECT_THAT(std::string(s.message()), HasSubstr(bad));
}

class RedisHygieneTest : public RegistrationHygieneTest {
 protected:
  void SetUp() override {
    RegistrationHygieneTest::SetUp();
    ASSERT_TRUE(redis_.Start());
    matchmaker_ = redis_.Url();
  }
  RedisServer redis_;
};

TEST_F(RedisHygieneTest, AnIndexOf100000JunkIdsStillAnswersWithTheLiveInstanceAtOnce) {
  StartService("good");
  absl::StatusOr<internal::RedisAddress> address = internal::ParseRedisUrl(redis_.Url());
  ZRPC_ASSERT_OK(address);
  internal::RedisConnection conn(*address);
  constexpr int kJunk = 100000;
  std::vector<internal::RedisConnection::Command> sadds;
  for (int i = 0; i < kJunk; i += 10000) {
    internal::RedisConnection::Command sadd = {"SADD", "zrpc:idx:openstack|compute"};
    for (int j = i; j < i + 10000; ++j) sadd.push_back(absl::StrCat("junk-", j));
    sadds.push_back(std::move(sadd));
  }
  ZRPC_ASSERT_OK(conn.Run(sadds));
  // A fresh lookup finds the live instance among the junk (and prunes the junk).
  absl::StatusOr<std::unique_ptr<Matchmaker>> mm = CreateMatchmaker(matchmaker_);
  ZRPC_ASSERT_OK(mm);
  absl::Time start = absl::Now();
  absl::StatusOr<std::vector<Registration>> regs = (*mm)->Resolve("openstack", "compute");
  Figure("lookup among 100,000 junk ids", absl::Now() - start);
  ZRPC_ASSERT_OK(regs);
  ASSERT_EQ(regs->size(), 1u);
  EXPECT_EQ((*regs)[0].host, "good");
  absl::StatusOr<std::vector<internal::RedisConnection::Reply>> left =
      conn.Run({{"SCARD", "zrpc:idx:openstack|compute"}});
  ZRPC_ASSERT_OK(left);
  EXPECT_EQ((*left)[0].integer, 1);
  // Again, through a client's first calls: never NoConsumer.
  ZRPC_ASSERT_OK(conn.Run(sadds));
  auto client = Client();
  ASSERT_NE(client, nullptr);
  start = absl::Now();
  EXPECT_EQ(Calls(*client, 20, Msg("whoami"), absl::Seconds(10)), 20);
  Figure("20 calls, the first among 100,000 junk ids", absl::Now() - start);
}

}  // namespace
}  // namespace zrpc::testing
