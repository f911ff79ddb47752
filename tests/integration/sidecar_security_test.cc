// SPDX-License-Identifier: Apache-2.0
// The zrpc-matchmaker sidecar with CurveZMQ (issue 10 items 2, 3, 5, 7): a keyed sidecar in a
// child process, keyed services and clients; who may register, unregister and resolve.
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <set>
#include <thread>

#include "matchmaker/sidecar/server.h"
#include "testing/harness.h"
#include "unit/test_util.h"
#include "zrpc/security.h"

namespace zrpc::testing {
namespace {

using ::testing::HasSubstr;

class SidecarSecurityTest : public IntegrationTest {
 protected:
  void SetUp() override {
    IntegrationTest::SetUp();
    keys_ = registry_ + "/keys";
    std::filesystem::create_directory(keys_);
    for (const char* name : {"mm", "svc", "alice", "bob", "carol", "mallory", "impostor"}) {
      absl::StatusOr<CurveKeyPair> k = GenerateCurveKeyPair();
      ASSERT_TRUE(k.ok()) << k.status();
      ZRPC_ASSERT_OK(WriteCurveKeyPair(keys_, name, *k));
      pub_[name] = k->public_key;
    }
    // The sidecar, the service and the clients all admit and trust these; mallory and impostor
    // are strangers.
    // alice and bob may serve "compute" (the tests register for them by hand); carol is admitted
    // with no role at all.
    WriteAuthorized("authorized", {{"mm", ""},
                                   {"svc", "services"},
                                   {"alice", "testers"},
                                   {"bob", "testers"},
                                   {"carol", ""}});
    endpoint_ = "ipc://" + registry_ + "/mm.sock";
    matchmaker_ = endpoint_ + "?key=" + pub_["mm"];
  }
  void TearDown() override {
    IntegrationTest::TearDown();  // services first, then the sidecar
    sidecar_.reset();
  }

  void WriteAuthorized(const std::string& file,
                       std::vector<std::pair<std::string, std::string>> entries) {
    std::ofstream out(keys_ + "/" + file);
    for (const auto& [who, groups] : entries)
      out << who << " " << pub_[who] << " " << groups << "\n";
    out << "@services serve=* publish=*\n@testers serve=compute\n";
  }
  std::vector<std::string> Keys(const std::string& who) {
    return {"--key-file", keys_ + "/" + who + ".key", "--authorized-keys", keys_ + "/authorized"};
  }
  SecurityOptions SecurityOf(const std::string& who, const std::string& authorized = "authorized") {
    return SecurityOptions{.key_file = keys_ + "/" + who + ".key",
                           .authorized_keys_file = keys_ + "/" + authorized};
  }
  TransportOptions As(const std::string& who, const std::string& authorized = "authorized") {
    TransportOptions o = ClientOptions(who);
    o.security = SecurityOf(who, authorized);
    return o;
  }
  void StartSidecar(std::vector<std::string> extra = {}) {
    sidecar_ = std::make_unique<ChildProcess>();
    std::vector<std::string> argv = {ZRPC_MATCHMAKER_BINARY, "--endpoint", endpoint_};
    std::vector<std::string> keys = Keys("mm");
    argv.insert(argv.end(), keys.begin(), keys.end());
    argv.insert(argv.end(), extra.begin(), extra.end());
    ASSERT_FALSE(sidecar_->StartAndWaitForLine(argv, "READY ", 10000).empty())
        << "sidecar did not start";
  }
  static std::set<std::string> ListedHosts(Matchmaker& mm) {
    std::set<std::string> out;
    absl::StatusOr<std::vector<Registration>> r = mm.List("openstack");
    if (r.ok()) {
      for (const Registration& reg : *r) out.insert(reg.host);
    }
    return out;
  }

  std::string keys_, endpoint_;
  std::map<std::string, std::string> pub_;
  std::unique_ptr<ChildProcess> sidecar_;
};

TEST_F(SidecarSecurityTest, AKeyedServiceAndClientWorkThroughAKeyedSidecar) {
  StartSidecar();
  StartService("node1", Keys("svc"));
  auto alice = Client(As("alice"));
  ASSERT_NE(alice, nullptr);
  absl::StatusOr<Value> who = alice->Call(Context(), "compute", Msg("caller"));
  ZRPC_ASSERT_OK(who);
  EXPECT_EQ(who->AsString(), "alice");
  EXPECT_EQ(ListedHosts(alice->matchmaker()), std::set<std::string>{"node1"});
}

TEST_F(SidecarSecurityTest, AnUnauthorizedKeyCannotResolveOrRegisterAndLearnsWhyFast) {
  StartSidecar();
  StartService("node1", Keys("svc"));
  // mallory pins the right sidecar key and trusts the service, but nobody admits mallory.
  WriteAuthorized("mallory-trusts", {{"mm", ""}, {"svc", "services"}});
  auto mallory = Client(As("mallory", "mallory-trusts"));
  ASSERT_NE(mallory, nullptr);
  const absl::Time start = absl::Now();
  absl::Status resolve = mallory->matchmaker().Resolve("openstack", "compute").status();
  EXPECT_EQ(resolve.code(), absl::StatusCode::kUnauthenticated) << resolve;
  EXPECT_THAT(std::string(resolve.message()), HasSubstr("refused this process's CurveZMQ key"));
  const Registration r{.topic = "compute", .host = "evil", .endpoint = "tcp://127.0.0.1:1"};
  absl::Status reg = mallory->matchmaker().Register(r);
  EXPECT_EQ(reg.code(), absl::StatusCode::kUnauthenticated) << reg;
  EXPECT_LT(absl::Now() - start, absl::Seconds(1));  // not a request timeout
  // Nothing of mallory's reached the sidecar.
  auto alice = Client(As("alice"));
  EXPECT_EQ(ListedHosts(alice->matchmaker()), std::set<std::string>{"node1"});
}

TEST_F(SidecarSecurityTest, AnAdmittedIdentityWithoutAServeRoleCannotRegister) {
  StartSidecar();
  auto carol = Client(As("carol"));
  ASSERT_NE(carol, nullptr);
  // carol may connect and resolve, but no role lets her serve anything.
  ZRPC_EXPECT_OK(carol->matchmaker().List("openstack"));
  for (const char* topic : {"compute", "compute.node1", "publisher~notifications"}) {
    const Registration r{.topic = topic, .host = "node1", .endpoint = "tcp://127.0.0.1:1"};
    const absl::Status s = carol->matchmaker().Register(r);
    EXPECT_EQ(s.code(), absl::StatusCode::kPermissionDenied) << topic << ": " << s;
    EXPECT_THAT(std::string(s.message()), HasSubstr("may not serve")) << s;
  }
  // alice's role covers "compute" but not another topic or a direct topic.
  auto alice = Client(As("alice"));
  EXPECT_EQ(alice->matchmaker()
                .Register({.topic = "scheduler", .host = "a", .endpoint = "tcp://127.0.0.1:1"})
                .code(),
            absl::StatusCode::kPermissionDenied);
  ZRPC_EXPECT_OK(alice->matchmaker().Register(
      {.topic = "compute", .host = "a", .endpoint = "tcp://127.0.0.1:1"}));
  EXPECT_EQ(ListedHosts(carol->matchmaker()), std::set<std::string>{"a"});
}

TEST_F(SidecarSecurityTest, ARevokedKeyLosesItsOpenConnectionToTheSidecar) {
  StartSidecar();
  WriteAuthorized("alice-trusts", {{"mm", ""}});
  auto alice = Client(As("alice", "alice-trusts"));
  ASSERT_NE(alice, nullptr);
  const Registration r{.topic = "compute", .host = "a", .endpoint = "tcp://127.0.0.1:1"};
  ZRPC_ASSERT_OK(alice->matchmaker().Register(r));
  // alice's line goes from the sidecar's file: her open connection loses its power within the
  // re-read interval (a second), without reconnecting.
  WriteAuthorized("authorized", {{"mm", ""}, {"svc", "services"}, {"bob", "testers"}});
  const Registration r2{.topic = "compute", .host = "a2", .endpoint = "tcp://127.0.0.1:2"};
  absl::Status last;
  EXPECT_TRUE(Eventually(
      [&] {
        last = alice->matchmaker().Register(r2);
        return last.code() == absl::StatusCode::kPermissionDenied;
      },
      absl::Seconds(5)))
      << last;
  EXPECT_THAT(std::string(last.message()), HasSubstr("no longer"));
}

TEST_F(SidecarSecurityTest, AnotherIdentityCannotUnregisterAndTheRegistrationStays) {
  StartSidecar();
  auto alice = Client(As("alice"));
  auto bob = Client(As("bob"));
  ASSERT_NE(alice, nullptr);
  ASSERT_NE(bob, nullptr);
  const Registration r{.topic = "compute", .host = "alices", .endpoint = "tcp://127.0.0.1:1"};
  ZRPC_ASSERT_OK(alice->matchmaker().Register(r));
  const absl::Status s = bob->matchmaker().Unregister(r);
  EXPECT_EQ(s.code(), absl::StatusCode::kPermissionDenied) << s;
  EXPECT_EQ(ListedHosts(bob->matchmaker()), std::set<std::string>{"alices"});  // resolve is open
  ZRPC_ASSERT_OK(alice->matchmaker().Unregister(r));
  EXPECT_TRUE(ListedHosts(bob->matchmaker()).empty());
}

TEST_F(SidecarSecurityTest, AClientThatReconnectedStillOwnsItsRegistrations) {
  StartSidecar();
  auto alice = Client(As("alice"));
  auto bob = Client(As("bob"));
  const Registration r{.topic = "compute", .host = "mine", .endpoint = "tcp://127.0.0.1:1"};
  ZRPC_ASSERT_OK(alice->matchmaker().Register(r));
  // An unanswered request makes the client drop its socket and connect a new one: a new
  // connection, the same identity and client.
  sidecar_->Signal(SIGSTOP);
  ASSERT_TRUE(WaitStopped(sidecar_->pid()));
  EXPECT_EQ(alice->matchmaker().List("").status().code(), absl::StatusCode::kUnavailable);
  sidecar_->Signal(SIGCONT);
  ASSERT_TRUE(Eventually([&] { return alice->matchmaker().List("").ok(); }, absl::Seconds(10)));
  EXPECT_EQ(ListedHosts(alice->matchmaker()), std::set<std::string>{"mine"});
  EXPECT_EQ(bob->matchmaker().Unregister(r).code(), absl::StatusCode::kPermissionDenied);
  ZRPC_ASSERT_OK(alice->matchmaker().Unregister(r));  // still the owner
  EXPECT_TRUE(ListedHosts(alice->matchmaker()).empty());
}

TEST_F(SidecarSecurityTest, AClientPinnedToTheWrongSidecarKeyFailsFastAndClearly) {
  StartSidecar();
  TransportOptions o = As("alice");
  o.matchmaker = endpoint_ + "?key=" + pub_["impostor"];
  auto alice = Client(o);
  ASSERT_NE(alice, nullptr);
  const absl::Time start = absl::Now();
  absl::Status s = alice->matchmaker().List("openstack").status();
  EXPECT_EQ(s.code(), absl::StatusCode::kUnauthenticated) << s;
  EXPECT_THAT(std::string(s.message()), HasSubstr(KeyFingerprint(pub_["impostor"])));
  EXPECT_THAT(std::string(s.message()), HasSubstr("does not hold the pinned public key"));
  EXPECT_LT(absl::Now() - start, absl::Seconds(1));
}

TEST_F(SidecarSecurityTest, KeysAndAPinnedSidecarKeyGoTogether) {
  // A pinned key without keys of our own, and keys without a pinned key: clear errors at Create.
  TransportOptions plain = ClientOptions("plain");
  absl::Status s = Transport::Create(plain).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s;
  EXPECT_THAT(std::string(s.message()), HasSubstr("this process has no keys"));
  TransportOptions unpinned = As("alice");
  unpinned.matchmaker = endpoint_;
  s = Transport::Create(unpinned).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s;
  EXPECT_THAT(std::string(s.message()), HasSubstr("does not pin the sidecar's public key"));
  // The key may come from the sidecar's NAME.pub instead.
  StartSidecar();
  // A process without keys (nor a pinned key) learns at once that the sidecar wants them.
  TransportOptions keyless = ClientOptions("plain");
  keyless.matchmaker = endpoint_;
  auto plain_client = Client(keyless);
  ASSERT_NE(plain_client, nullptr);
  const absl::Time start = absl::Now();
  s = plain_client->matchmaker().List("openstack").status();
  EXPECT_EQ(s.code(), absl::StatusCode::kUnauthenticated) << s;
  EXPECT_THAT(std::string(s.message()), HasSubstr("probably runs with CurveZMQ keys"));
  EXPECT_LT(absl::Now() - start, absl::Seconds(1));
  TransportOptions from_file = As("alice");
  from_file.matchmaker = endpoint_ + "?key_file=" + keys_ + "/mm.pub";
  auto alice = Client(from_file);
  ASSERT_NE(alice, nullptr);
  ZRPC_EXPECT_OK(alice->matchmaker().List("openstack").status());
  TransportOptions bad = As("alice");
  bad.matchmaker = endpoint_ + "?key=short";
  EXPECT_EQ(Transport::Create(bad).status().code(), absl::StatusCode::kInvalidArgument);
}

// Whoever may write the pinned key file chooses which sidecar the process trusts: a file others
// may write, or of another owner, is refused at start with the fix.
TEST_F(SidecarSecurityTest, APinnedKeyFileOthersMayWriteIsRefusedWithTheFix) {
  const std::string loose = keys_ + "/loose.pub";
  std::filesystem::copy_file(keys_ + "/mm.pub", loose);
  TransportOptions o = As("alice");
  o.matchmaker = endpoint_ + "?key_file=" + loose;
  for (mode_t mode : {0666, 0620, 0602}) {
    ASSERT_EQ(chmod(loose.c_str(), mode), 0);
    char octal[8];
    snprintf(octal, sizeof octal, "%04o", mode);
    const absl::Status s = Transport::Create(o).status();
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s;
    EXPECT_THAT(std::string(s.message()),
                HasSubstr("the sidecar's key file " + loose + " may be written by others"));
    EXPECT_THAT(std::string(s.message()), HasSubstr(std::string("mode ") + octal));
    EXPECT_THAT(std::string(s.message()), HasSubstr("run chmod go-w " + loose));
  }
  ASSERT_EQ(chmod(loose.c_str(), 0644), 0);
  if (geteuid() == 0) {  // only root can give a file away
    ASSERT_EQ(chown(loose.c_str(), 65534, 65534), 0);
    const absl::Status s = Transport::Create(o).status();
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s;
    EXPECT_THAT(std::string(s.message()), HasSubstr(loose + " is owned by uid 65534"));
    EXPECT_THAT(std::string(s.message()), HasSubstr("chown $(id -u) " + loose));
  }
}

TEST_F(SidecarSecurityTest, OnlyRegistrarsMayRegisterButEveryoneMayResolve) {
  StartSidecar({"--registrars", "services"});
  StartService("node1", Keys("svc"));  // svc is in the group: it registered
  auto alice = Client(As("alice"));
  const Registration r{.topic = "compute", .host = "alices", .endpoint = "tcp://127.0.0.1:1"};
  const absl::Status s = alice->matchmaker().Register(r);
  EXPECT_EQ(s.code(), absl::StatusCode::kPermissionDenied) << s;
  EXPECT_THAT(std::string(s.message()), HasSubstr("only services may"));
  EXPECT_EQ(ListedHosts(alice->matchmaker()), std::set<std::string>{"node1"});
  ZRPC_EXPECT_OK(alice->Call(Context(), "compute", Msg("caller")).status());
}

TEST_F(SidecarSecurityTest, KeysLetTheSidecarListenOnEveryInterfaceWithoutInsecure) {
  StartSidecar({"--tcp", "tcp://0.0.0.0:*"});
  EXPECT_TRUE(sidecar_->running());  // READY: bound, not refused
}

// In this process, not a child: the ZAP handler is stopped as a crash of its thread would.
TEST_F(SidecarSecurityTest, ASidecarWhoseAuthenticationStoppedRefusesEveryRequest) {
  absl::StatusOr<std::unique_ptr<internal::sidecar::SidecarServer>> server =
      internal::sidecar::SidecarServer::Create(
          {.endpoints = {endpoint_}, .security = SecurityOf("mm")});
  ZRPC_ASSERT_OK(server);
  std::thread serving([&] { (*server)->Run(); });
  auto alice = Client(As("alice"));
  ASSERT_NE(alice, nullptr);
  const Registration r{.topic = "compute", .host = "alices", .endpoint = "tcp://127.0.0.1:1"};
  ZRPC_EXPECT_OK(alice->matchmaker().Register(r));
  (*server)->zap_for_testing()->StopForTesting();
  absl::Status s = alice->matchmaker().List("openstack").status();
  EXPECT_EQ(s.code(), absl::StatusCode::kUnavailable) << s;
  EXPECT_THAT(std::string(s.message()), HasSubstr("authentication (ZAP) handler stopped"));
  alice.reset();
  (*server)->Stop();
  serving.join();
}

}  // namespace
}  // namespace zrpc::testing
