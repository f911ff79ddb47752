// SPDX-License-Identifier: Apache-2.0
// CurveZMQ across processes (issue 10): services in child processes with keys, clients in the
// test process, real sockets.
#include <stdlib.h>

#include <atomic>
#include <filesystem>
#include <fstream>

#include "absl/strings/str_join.h"
#include "security/zap_handler.h"
#include "testing/harness.h"
#include "testing/log_capture.h"
#include "transport_core.h"
#include "unit/test_util.h"
#include "zrpc/security.h"

namespace zrpc::testing {
namespace {

using ::testing::HasSubstr;

class SecurityTest : public IntegrationTest {
 protected:
  void SetUp() override {
    IntegrationTest::SetUp();
    keys_ = registry_ + "-keys";
    std::filesystem::create_directory(keys_);
    for (const char* name : {"svc", "alice", "bob", "mallory", "impostor"}) {
      absl::StatusOr<CurveKeyPair> k = GenerateCurveKeyPair();
      ASSERT_TRUE(k.ok()) << k.status();
      ZRPC_ASSERT_OK(WriteCurveKeyPair(keys_, name, *k));
      pub_[name] = k->public_key;
    }
    // Who the service admits, and whom the clients trust: mallory and impostor are strangers.
    WriteAuthorized("authorized", {{"svc", "services"}, {"alice", "ops"}, {"bob", ""}});
  }
  void TearDown() override {
    IntegrationTest::TearDown();
    std::error_code ec;
    std::filesystem::remove_all(keys_, ec);
  }

  void WriteAuthorized(const std::string& file,
                       std::vector<std::pair<std::string, std::string>> entries) {
    std::ofstream out(keys_ + "/" + file);
    out << "# identity key groups\n";
    for (const auto& [who, groups] : entries) out << who << " " << pub_[who] << " " << groups << "\n";
    // The roles: the service serves and publishes, alice and bob may listen.
    out << "@services serve=* publish=*\n@ops listen=notifications\n";
  }

  std::vector<std::string> ServiceKeys(const std::string& authorized = "authorized") {
    return {"--key-file", keys_ + "/svc.key", "--authorized-keys", keys_ + "/" + authorized};
  }

  TransportOptions As(const std::string& who, const std::string& authorized = "authorized") {
    TransportOptions o = ClientOptions(who);
    o.security = SecurityOptions{.key_file = keys_ + "/" + who + ".key",
                                 .authorized_keys_file = keys_ + "/" + authorized};
    return o;
  }

  std::string keys_;
  std::map<std::string, std::string> pub_;
};

TEST_F(SecurityTest, AnAuthorizedClientIsServedAndHandlersSeeItsIdentity) {
  StartService("node1", ServiceKeys());
  auto alice = Client(As("alice"));
  absl::StatusOr<Value> who = alice->Call(Context(), "compute", Msg("caller"));
  ZRPC_ASSERT_OK(who);
  EXPECT_EQ(who->AsString(), "alice");
  absl::StatusOr<Value> sum = alice->Call(Context(), "compute", Msg("add", {{"a", 2}, {"b", 40}}));
  ZRPC_ASSERT_OK(sum);
  EXPECT_EQ(sum->AsInt(), 42);
}

TEST_F(SecurityTest, UnauthorizedMethodsAreRefusedAndNothingRuns) {
  StartService("node1", [&] {
    std::vector<std::string> a = ServiceKeys();
    a.insert(a.end(), {"--restrict", "note=bob;sleep=ops"});
    return a;
  }());
  auto alice = Client(As("alice"));
  auto bob = Client(As("bob"));
  absl::Status refused = alice->Call(Context(), "compute", Msg("note", {{"kind", "x"}})).status();
  EXPECT_EQ(GetErrorKind(refused), ErrorKind::kNotAuthorized) << refused;
  EXPECT_THAT(refused.message(), HasSubstr("Caller \"alice\" is not authorized to call note"));
  ZRPC_EXPECT_OK(bob->Call(Context(), "compute", Msg("note", {{"kind", "x"}})));
  // Only bob's note ran.
  absl::StatusOr<Value> stats = bob->Call(Context(), "compute", Msg("stats"));
  ZRPC_ASSERT_OK(stats);
  EXPECT_EQ(stats->Find("notes")->Find("x")->AsInt(), 1);
  // A group: alice is in ops, bob is not.
  ZRPC_EXPECT_OK(alice->Call(Context(), "compute", Msg("sleep", {{"ms", 1}})));
  EXPECT_EQ(GetErrorKind(bob->Call(Context(), "compute", Msg("sleep", {{"ms", 1}})).status()),
            ErrorKind::kNotAuthorized);
  // Introspection stays open to every authenticated peer.
  Message ping = Msg("ping");
  ping.ns = "_zrpc";
  ZRPC_EXPECT_OK(bob->Call(Context(), "compute", ping));
}

TEST_F(SecurityTest, AnUnknownKeyIsRefusedFastWithAClearError) {
  StartService("node1", ServiceKeys());
  // mallory trusts the service, but the service does not know mallory.
  WriteAuthorized("mallory-trusts", {{"svc", "services"}});
  auto mallory = Client(As("mallory", "mallory-trusts"));
  const absl::Time start = absl::Now();
  absl::Status s = mallory->Call(Context(), "compute", Msg("whoami"), {.timeout = absl::Seconds(20)}).status();
  EXPECT_EQ(GetErrorKind(s), ErrorKind::kPeerLost) << s;
  EXPECT_THAT(s.message(), HasSubstr("authentication"));
  EXPECT_LT(absl::Now() - start, absl::Seconds(5));  // never the 20 s deadline
}

TEST_F(SecurityTest, AClientWithoutKeysCannotCallAKeyedService) {
  StartService("node1", ServiceKeys());
  auto plain = Client();
  absl::Status s = plain->Call(Context(), "compute", Msg("whoami"), {.timeout = absl::Seconds(20)}).status();
  EXPECT_FALSE(s.ok());
  EXPECT_NE(GetErrorKind(s), ErrorKind::kTimeout) << s;
}

TEST_F(SecurityTest, UntrustedRegistrationsAreNeverUsed) {
  StartService("node1", ServiceKeys());
  // A client that does not trust the service's key skips its registration.
  WriteAuthorized("no-svc", {{"alice", ""}});
  auto alice = Client(As("alice", "no-svc"));
  absl::Status s = alice->Call(Context(), "compute", Msg("whoami")).status();
  EXPECT_EQ(GetErrorKind(s), ErrorKind::kNoConsumer) << s;
}

TEST_F(SecurityTest, AForgedRegistrationCannotRedirectCalls) {
  StartService("node1", ServiceKeys());
  // An impostor registers its own endpoint under the real service's public key: it cannot
  // complete the handshake (it lacks the secret key), so clients fail over to the real one.
  auto impostor_transport = Client(As("impostor", "authorized"));
  absl::StatusOr<std::unique_ptr<Matchmaker>> mm = CreateMatchmaker(matchmaker_);
  ZRPC_ASSERT_OK(mm);
  zmq::context_t ctx;
  zmq::socket_t fake(ctx, zmq::socket_type::router);
  fake.bind("tcp://127.0.0.1:*");
  const std::string fake_ep = fake.get(zmq::sockopt::last_endpoint);
  ZRPC_ASSERT_OK((*mm)->Register(Registration{.topic = "compute", .host = "evil", .endpoint = fake_ep,
                                              .public_key = pub_["svc"]}));
  auto alice = Client(As("alice"));
  for (int i = 0; i < 6; ++i) {
    absl::StatusOr<Value> who = alice->Call(Context(), "compute", Msg("whoami"), {.timeout = absl::Seconds(10)});
    ZRPC_ASSERT_OK(who);
    EXPECT_EQ(who->AsString(), "node1");
  }
}

TEST_F(SecurityTest, AServiceWhoseAuthenticationStoppedRefusesToServe) {
  // In this process, so that the test can stop the ZAP thread as a crash would.
  TransportOptions o = As("svc");
  o.host = "inproc-svc";
  auto server = Client(o);
  Dispatcher d;
  ZRPC_ASSERT_OK(d.Add(Endpoint{.version = "1.0"}.Method("hi", {}, [] { return std::string("hi"); })));
  absl::StatusOr<std::unique_ptr<Connection>> conn = server->CreateConnection();
  ZRPC_ASSERT_OK(conn);
  ZRPC_ASSERT_OK((*conn)->CreateConsumer("greeter", d));
  ZRPC_ASSERT_OK((*conn)->ConsumeInThread());
  auto alice = Client(As("alice"));
  absl::StatusOr<Value> hi = alice->Call(Context(), "greeter", Msg("hi"));
  ZRPC_ASSERT_OK(hi);
  std::shared_ptr<internal::TransportCore> core = server->core_for_internal_use();
  ASSERT_NE(core, nullptr);
  ASSERT_NE(core->zap(), nullptr);
  core->zap()->StopForTesting();
  absl::Status s = alice->Call(Context(), "greeter", Msg("hi"), {.timeout = absl::Seconds(5)}).status();
  EXPECT_FALSE(s.ok());
  EXPECT_THAT(s.message(), HasSubstr("refuses to serve")) << s;
}

TEST_F(SecurityTest, KeysLetAServiceBindEveryInterfaceWithoutInsecure) {
  TransportOptions o = As("svc");
  o.host = "wide";
  o.bind_address = "0.0.0.0";
  auto wide = Client(o);
  ASSERT_NE(wide, nullptr);
  TransportOptions plain = ClientOptions("wide-plain");
  plain.bind_address = "0.0.0.0";
  EXPECT_FALSE(Transport::Create(plain).ok());
}


TEST_F(SecurityTest, NotificationsReachOnlyAuthorizedListeners) {
  StartService("node1", ServiceKeys());
  // Both listeners trust the service; the service admits alice, not mallory.
  WriteAuthorized("mallory-trusts", {{"svc", "services"}});
  auto alice = Client(As("alice"));
  auto mallory = Client(As("mallory", "mallory-trusts"));
  std::atomic<int> alice_got{0}, mallory_got{0};
  auto alice_listens = NotificationListener::Create(*alice, {"notifications.info"},
                                                    [&](const Notification&) { ++alice_got; });
  ZRPC_ASSERT_OK(alice_listens);
  auto mallory_listens = NotificationListener::Create(*mallory, {"notifications.info"},
                                                      [&](const Notification&) { ++mallory_got; });
  ZRPC_ASSERT_OK(mallory_listens);
  // Publish until alice hears one (a subscription takes a moment to reach the publisher).
  ASSERT_TRUE(Eventually([&] {
    (void)alice->Call(Context(), "compute",
                      Msg("emit", {{"event_type", "x.created"}, {"priority", "info"}, {"payload", 1}}));
    return alice_got.load() > 0;
  }));
  for (int i = 0; i < 5; ++i) {
    ZRPC_EXPECT_OK(alice->Call(Context(), "compute",
                               Msg("emit", {{"event_type", "x.created"}, {"priority", "info"}, {"payload", i}})));
  }
  ASSERT_TRUE(Eventually([&] { return alice_got.load() >= 6; }));
  absl::SleepFor(absl::Milliseconds(300));
  EXPECT_EQ(mallory_got.load(), 0);
}

TEST_F(SecurityTest, AnAdmittedCallerCannotServeATopicItHasNoRoleFor) {
  StartService("node1", ServiceKeys());
  // bob is admitted (he may call) but has no serve role: his fake instances, with his own key and
  // valid handshakes, register for "compute", "compute.bobnode" and (named like the genuine one)
  // "compute.node1".
  const std::vector<std::string> bob_keys = {"--key-file", keys_ + "/bob.key", "--authorized-keys",
                                             keys_ + "/authorized"};
  StartService("bobnode", bob_keys);
  StartService("node1", bob_keys);
  auto alice = Client(As("alice"));
  LogCapture log;
  for (int i = 0; i < 20; ++i) {
    absl::StatusOr<Value> who = alice->Call(Context(), "compute", Msg("whoami"));
    ZRPC_ASSERT_OK(who);
    EXPECT_EQ(who->AsString(), "node1");  // never bob's "bobnode"
  }
  // bob's direct topics are never used: his own is not served at all, and "compute.node1" has
  // the genuine instance only.
  EXPECT_EQ(GetErrorKind(alice->Call(Context(), "compute.bobnode", Msg("whoami")).status()),
            ErrorKind::kNoConsumer);
  for (int i = 0; i < 10; ++i) {
    ZRPC_EXPECT_OK(alice->Call(Context(), "compute.node1", Msg("caller")));
  }
  const std::string lines = absl::StrJoin(log.Lines(), "\n");
  EXPECT_THAT(lines, HasSubstr("skipped 1 of 2 registrations for openstack compute.node1"));
  EXPECT_THAT(lines, HasSubstr("(identity bob) may not serve"));
}

TEST_F(SecurityTest, ARemovedKeyLosesItsOpenConnectionWithinASecond) {
  StartService("node1", ServiceKeys());
  // alice trusts the service from a file of her own; the service's file is the one edited.
  WriteAuthorized("alice-trusts", {{"svc", "services"}});
  auto alice = Client(As("alice", "alice-trusts"));
  ZRPC_ASSERT_OK(alice->Call(Context(), "compute", Msg("caller")));
  WriteAuthorized("authorized", {{"svc", "services"}, {"bob", ""}});
  // The same client, the same connection: refused within the re-read interval (1 s).
  absl::Status last;
  const absl::Time start = absl::Now();
  ASSERT_TRUE(Eventually(
      [&] {
        last = alice->Call(Context(), "compute", Msg("caller")).status();
        return !last.ok();
      },
      absl::Seconds(5)));
  EXPECT_LT(absl::Now() - start, absl::Seconds(3));
  EXPECT_EQ(last.code(), absl::StatusCode::kPermissionDenied) << last;
  EXPECT_THAT(std::string(last.message()), HasSubstr("no longer in its authorized_keys"));
  // And it stays refused: nothing more runs for that key.
  for (int i = 0; i < 5; ++i) {
    EXPECT_EQ(alice->Call(Context(), "compute", Msg("caller")).status().code(),
              absl::StatusCode::kPermissionDenied);
  }
}

TEST_F(SecurityTest, ARotatedIdentityLosesItsOldGroupOnItsOpenConnection) {
  StartService("node1", [&] {
    std::vector<std::string> a = ServiceKeys();
    a.insert(a.end(), {"--restrict", "sleep=ops"});
    return a;
  }());
  WriteAuthorized("alice-trusts", {{"svc", "services"}});
  auto alice = Client(As("alice", "alice-trusts"));
  ZRPC_ASSERT_OK(alice->Call(Context(), "compute", Msg("sleep", {{"ms", 1}})));
  // alice leaves ops: her next calls to sleep are refused though her connection stays open.
  WriteAuthorized("authorized", {{"svc", "services"}, {"alice", ""}, {"bob", ""}});
  absl::Status last;
  ASSERT_TRUE(Eventually(
      [&] {
        last = alice->Call(Context(), "compute", Msg("sleep", {{"ms", 1}})).status();
        return !last.ok();
      },
      absl::Seconds(5)));
  EXPECT_EQ(GetErrorKind(last), ErrorKind::kNotAuthorized) << last;
  ZRPC_EXPECT_OK(alice->Call(Context(), "compute", Msg("caller")));  // calling is still hers
}

TEST_F(SecurityTest, ListenersTrustOnlyPublishersWithThePublishRole) {
  // bob runs an instance (a publisher of "notifications" too) with his key: he may neither serve
  // nor publish. alice listens; only the genuine service's events reach her.
  WriteAuthorized("authorized",
                  {{"svc", "services"}, {"alice", "ops"}, {"bob", "bobs"}});
  {
    std::ofstream out(keys_ + "/authorized", std::ios::app);
    out << "@bobs serve=compute.bob\n";  // a role, but neither compute nor publishing
  }
  StartService("node1", ServiceKeys());
  StartService("bob", {"--key-file", keys_ + "/bob.key", "--authorized-keys",
                       keys_ + "/authorized"});
  auto alice = Client(As("alice"));
  auto bob = Client(As("bob"));
  std::atomic<int> from_node1{0}, from_bob{0};
  auto listens = NotificationListener::Create(*alice, {"notifications.info"},
                                              [&](const Notification& n) {
                                                if (n.publisher_id.find("bob") != std::string::npos)
                                                  ++from_bob;
                                                else
                                                  ++from_node1;
                                              });
  ZRPC_ASSERT_OK(listens);
  ASSERT_TRUE(Eventually([&] {
    (void)alice->Call(Context(), "compute.node1",
                      Msg("emit", {{"event_type", "x"}, {"priority", "info"}, {"payload", 1}}));
    (void)bob->Call(Context(), "compute.bob",
                    Msg("emit", {{"event_type", "x"}, {"priority", "info"}, {"payload", 1}}));
    return from_node1.load() > 0;
  }));
  for (int i = 0; i < 5; ++i) {
    ZRPC_EXPECT_OK(bob->Call(Context(), "compute.bob",
                             Msg("emit", {{"event_type", "x"}, {"priority", "info"}, {"payload", i}})));
  }
  absl::SleepFor(absl::Milliseconds(300));  // no event can be awaited for one that must not come
  EXPECT_EQ(from_bob.load(), 0);
}

TEST_F(SecurityTest, AKeyWithoutTheListenRoleHearsNoNotification) {
  StartService("node1", ServiceKeys());
  auto alice = Client(As("alice"));  // ops: listen=notifications
  auto bob = Client(As("bob"));      // admitted, no listen role
  std::atomic<int> alice_got{0}, bob_got{0};
  auto alice_listens = NotificationListener::Create(*alice, {"notifications.info"},
                                                    [&](const Notification&) { ++alice_got; });
  auto bob_listens = NotificationListener::Create(*bob, {"notifications.info"},
                                                  [&](const Notification&) { ++bob_got; });
  ZRPC_ASSERT_OK(alice_listens);
  ZRPC_ASSERT_OK(bob_listens);
  ASSERT_TRUE(Eventually([&] {
    (void)alice->Call(Context(), "compute",
                      Msg("emit", {{"event_type", "x"}, {"priority", "info"}, {"payload", 1}}));
    return alice_got.load() > 0;
  }));
  for (int i = 0; i < 5; ++i) {
    ZRPC_EXPECT_OK(alice->Call(
        Context(), "compute", Msg("emit", {{"event_type", "x"}, {"priority", "info"}, {"payload", i}})));
  }
  ASSERT_TRUE(Eventually([&] { return alice_got.load() >= 6; }));
  absl::SleepFor(absl::Milliseconds(300));
  EXPECT_EQ(bob_got.load(), 0);
}

TEST_F(SecurityTest, TheCommandLineTakesKeysFromFlagsAndTheEnvironment) {
  StartService("node1", ServiceKeys());
  ChildProcess flags;
  ASSERT_TRUE(flags.Start({ZRPC_CLI_BINARY, "call", "compute", "caller", "--matchmaker", matchmaker_,
                           "--key-file", keys_ + "/alice.key", "--authorized-keys", keys_ + "/authorized"},
                          {.capture_stderr = true}));
  EXPECT_EQ(flags.ReadAll(20000), "\"alice\"\n");
  flags.Reap(20000);
  setenv("ZRPC_KEY_FILE", (keys_ + "/bob.key").c_str(), 1);
  setenv("ZRPC_AUTHORIZED_KEYS", (keys_ + "/authorized").c_str(), 1);
  ChildProcess env;
  ASSERT_TRUE(env.Start({ZRPC_CLI_BINARY, "call", "compute", "caller", "--matchmaker", matchmaker_},
                        {.capture_stderr = true}));
  const std::string out = env.ReadAll(20000);
  env.Reap(20000);
  unsetenv("ZRPC_KEY_FILE");
  unsetenv("ZRPC_AUTHORIZED_KEYS");
  EXPECT_EQ(out, "\"bob\"\n");
}


TEST_F(SecurityTest, DuringAMigrationKeyedAndPlainClientsAreServedEachOnTheirOwnEndpoint) {
  std::vector<std::string> args = ServiceKeys();
  args.push_back("--also-plain");
  StartService("node1", args);
  StartService("node2", ServiceKeys());  // already migrated: keyed only
  auto alice = Client(As("alice"));
  auto plain = Client();
  for (int i = 0; i < 6; ++i) {
    absl::StatusOr<Value> keyed = alice->Call(Context(), "compute", Msg("caller"));
    ZRPC_ASSERT_OK(keyed);
    EXPECT_EQ(keyed->AsString(), "alice");  // always over CurveZMQ
    absl::StatusOr<Value> who = plain->Call(Context(), "compute", Msg("whoami"));
    ZRPC_ASSERT_OK(who);
    EXPECT_EQ(who->AsString(), "node1");  // only node1 still serves plain clients
  }
  // A plain client reaching only keyed instances is told why.
  absl::Status s = plain->Call(Context(), "compute.node2", Msg("whoami")).status();
  EXPECT_EQ(GetErrorKind(s), ErrorKind::kNoConsumer) << s;
}


TEST_F(SecurityTest, CastToServerReachesAKeyedServiceWithTheKeyOfItsRegistration) {
  StartService("node1", ServiceKeys());
  const std::string endpoint = endpoints_["node1"];
  auto alice = Client(As("alice"));
  RpcProxy proxy(*alice, "compute", "1.0");
  ZRPC_ASSERT_OK(proxy.CastToServer(Context(), endpoint, proxy.MakeMsg("note", {{"kind", "direct"}})));
  ZRPC_ASSERT_OK(proxy.FanoutCastToServer(Context(), endpoint, proxy.MakeMsg("note", {{"kind", "direct"}})));
  EXPECT_TRUE(Eventually([&] {
    absl::StatusOr<Value> stats = alice->Call(Context(), "compute", Msg("stats"));
    const Value* notes = stats.ok() ? stats->Find("notes") : nullptr;
    const Value* direct = notes != nullptr ? notes->Find("direct") : nullptr;
    return direct != nullptr && direct->AsInt() == 2;
  }));
  // An endpoint no trusted registration has: its key is unknown, a clear error at once.
  const absl::Status unknown =
      proxy.CastToServer(Context(), "tcp://127.0.0.1:1", proxy.MakeMsg("note", {{"kind", "x"}}));
  EXPECT_EQ(unknown.code(), absl::StatusCode::kFailedPrecondition) << unknown;
  EXPECT_THAT(std::string(unknown.message()), ::testing::HasSubstr("its key is unknown"));
}

}  // namespace
}  // namespace zrpc::testing
