// SPDX-License-Identifier: Apache-2.0
// The sidecar's registration table on a fake clock: ownership, TTL expiry, exited processes,
// change notices, and costs that stay linear in the registrations a request carries.
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "base/address.h"
#include "client/routes.h"
#include "matchmaker/memory.h"
#include "matchmaker/process.h"
#include "matchmaker/registration_json.h"
#include "matchmaker/sidecar/protocol.h"
#include "matchmaker/sidecar/registry.h"
#include "matchmaker/sidecar/server.h"
#include "test_util.h"
#include "testing/child_process.h"

namespace zrpc::internal::sidecar {
namespace {

const absl::Time kT0 = absl::FromUnixSeconds(1000000);
constexpr absl::Duration kTtl = absl::Seconds(5);

Registration Reg(const std::string& topic, const std::string& host = "h") {
  return Registration{.topic = topic, .host = host, .endpoint = "tcp://127.0.0.1:1"};
}

class RegistryTest : public ::testing::Test {
 protected:
  size_t Resolved(const std::string& key) { return backend_.Resolve("openstack", key)->size(); }

  MemoryMatchmaker backend_;
  Registry registry_{&backend_, nullptr, kTtl};
  Changes changed_;
};

TEST_F(RegistryTest, AddsOnceAndAnnouncesEachChangedKey) {
  ZRPC_ASSERT_OK(
      registry_.Add({.connection = "a"}, {Reg("compute"), Reg("compute.h")}, kT0, &changed_));
  ZRPC_ASSERT_OK(registry_.Add({.connection = "a"}, {Reg("compute")}, kT0, &changed_));  // known
  EXPECT_EQ(registry_.size(), 2u);
  EXPECT_EQ(Resolved("compute"), 1u);
  std::vector<std::string> keys = changed_.Take();
  std::sort(keys.begin(), keys.end());
  EXPECT_EQ(keys, (std::vector<std::string>{"compute", "compute.h"}));
  EXPECT_TRUE(changed_.empty());
}

TEST_F(RegistryTest, ManyChangesAreAnnouncedAsOneStar) {
  std::vector<Registration> many;
  for (int i = 0; i < 1000; ++i) many.push_back(Reg("t" + std::to_string(i)));
  ZRPC_ASSERT_OK(registry_.Add({.connection = "a"}, many, kT0, &changed_));
  EXPECT_EQ(changed_.Take(), std::vector<std::string>{std::string(kAnyKey)});
}

TEST_F(RegistryTest, SilentClientsExpireAfterTheTtlOthersStay) {
  ZRPC_ASSERT_OK(registry_.Add({.connection = "a"}, {Reg("compute", "a")}, kT0, &changed_));
  ZRPC_ASSERT_OK(registry_.Add({.connection = "b"}, {Reg("compute", "b")}, kT0, &changed_));
  registry_.Touch({.connection = "b"}, kT0 + absl::Seconds(4));
  registry_.Expire(kT0 + kTtl, &changed_);
  EXPECT_EQ(Resolved("compute"), 2u);  // not yet: the ttl has not passed
  (void)changed_.Take();
  registry_.Expire(kT0 + kTtl + absl::Milliseconds(1), &changed_);
  EXPECT_EQ(Resolved("compute"), 1u);
  EXPECT_EQ(backend_.Resolve("openstack", "compute")->front().host, "b");
  EXPECT_EQ(changed_.Take(), std::vector<std::string>{"compute"});
}

TEST_F(RegistryTest, ARegistrationTakenOverByAnotherClientSurvivesItsFormerOwner) {
  ZRPC_ASSERT_OK(registry_.Add({.connection = "old"}, {Reg("compute")}, kT0, &changed_));
  ZRPC_ASSERT_OK(
      registry_.Add({.connection = "new"}, {Reg("compute")}, kT0 + absl::Seconds(3), &changed_));
  registry_.Expire(kT0 + absl::Seconds(6), &changed_);  // "old" expires
  EXPECT_EQ(Resolved("compute"), 1u);
  registry_.Expire(kT0 + absl::Seconds(9), &changed_);  // "new" too
  EXPECT_EQ(Resolved("compute"), 0u);
}

TEST_F(RegistryTest, RegistrationsOfAnExitedLocalProcessAreDroppedOthersAreNot) {
  zrpc::testing::ChildProcess child;
  ASSERT_TRUE(child.Start({"/bin/sleep", "30"}));
  const pid_t pid = child.pid();
  ASSERT_NE(ProcessStartTime(pid), 0u);
  const Owner local{.connection = "local", .pid = pid, .start = ProcessStartTime(pid)};
  // Claims the same pid with another start time: not trusted, the TTL applies.
  const Owner stranger{.connection = "stranger", .pid = pid, .start = ProcessStartTime(pid) + 1};
  ZRPC_ASSERT_OK(registry_.Add(local, {Reg("compute", "local")}, kT0, &changed_));
  ZRPC_ASSERT_OK(registry_.Add(stranger, {Reg("compute", "stranger")}, kT0, &changed_));
  registry_.DropExited(&changed_);
  EXPECT_EQ(Resolved("compute"), 2u);  // alive
  child.Kill();
  registry_.DropExited(&changed_);
  std::vector<Registration> left = *backend_.Resolve("openstack", "compute");
  ASSERT_EQ(left.size(), 1u);
  EXPECT_EQ(left[0].host, "stranger");
}

TEST_F(RegistryTest, OnlyTheConnectionThatRegisteredSomethingMayWithdrawIt) {
  ZRPC_ASSERT_OK(registry_.Add({.connection = "a"}, {Reg("compute")}, kT0, &changed_));
  (void)changed_.Take();
  const absl::Status s = registry_.Remove({.connection = "b"}, Reg("compute"), &changed_);
  EXPECT_EQ(s.code(), absl::StatusCode::kPermissionDenied) << s;
  EXPECT_NE(std::string(s.message()).find("only the connection that registered"), std::string::npos)
      << s;
  EXPECT_EQ(registry_.size(), 1u);
  EXPECT_EQ(Resolved("compute"), 1u);
  EXPECT_TRUE(changed_.empty());
  ZRPC_ASSERT_OK(registry_.Remove({.connection = "a"}, Reg("compute"), &changed_));
  ZRPC_ASSERT_OK(registry_.Remove({.connection = "a"}, Reg("compute"), &changed_));  // unknown: OK
  EXPECT_EQ(registry_.size(), 0u);
  EXPECT_EQ(Resolved("compute"), 0u);
  EXPECT_EQ(changed_.Take(), std::vector<std::string>{"compute"});
  registry_.Expire(kT0 + absl::Hours(1), &changed_);  // nothing left to drop
}

TEST_F(RegistryTest, ARegistrationOfTwoConnectionsStaysUntilBothLetGo) {
  ZRPC_ASSERT_OK(registry_.Add({.connection = "a"}, {Reg("compute")}, kT0, &changed_));
  ZRPC_ASSERT_OK(registry_.Add({.connection = "b"}, {Reg("compute")}, kT0, &changed_));
  ZRPC_ASSERT_OK(registry_.Remove({.connection = "a"}, Reg("compute"), &changed_));
  EXPECT_EQ(Resolved("compute"), 1u);  // "b" still holds it
  EXPECT_EQ(registry_.Remove({.connection = "a"}, Reg("compute"), &changed_).code(),
            absl::StatusCode::kPermissionDenied);  // no longer a's
  ZRPC_ASSERT_OK(registry_.Remove({.connection = "b"}, Reg("compute"), &changed_));
  EXPECT_EQ(Resolved("compute"), 0u);
}

TEST(RegistryLimitsTest, RequestsBeyondEachLimitAreRefusedAndHoldNothingNew) {
  MemoryMatchmaker backend;
  Registry registry(&backend, nullptr, kTtl, {.per_request = 3, .per_client = 4, .total = 5});
  Changes changed;
  // Per request.
  absl::Status s = registry.Add({.connection = "a"}, {Reg("t1"), Reg("t2"), Reg("t3"), Reg("t4")},
                                kT0, &changed);
  EXPECT_EQ(s.code(), absl::StatusCode::kResourceExhausted) << s;
  EXPECT_NE(std::string(s.message()).find("at most 3 per request"), std::string::npos) << s;
  EXPECT_EQ(registry.size(), 0u);
  // Per connection: 3 + 2 new > 4; what it holds already does not count again.
  ZRPC_ASSERT_OK(
      registry.Add({.connection = "a"}, {Reg("t1"), Reg("t2"), Reg("t3")}, kT0, &changed));
  s = registry.Add({.connection = "a"}, {Reg("t1"), Reg("t4"), Reg("t5")}, kT0, &changed);
  EXPECT_EQ(s.code(), absl::StatusCode::kResourceExhausted) << s;
  EXPECT_NE(std::string(s.message()).find("at most 4 per caller"), std::string::npos) << s;
  EXPECT_EQ(registry.size(), 3u);
  ZRPC_ASSERT_OK(registry.Add({.connection = "a"}, {Reg("t1"), Reg("t4")}, kT0, &changed));
  // In all: 4 held, "b" brings 2 new > 5.
  s = registry.Add({.connection = "b"}, {Reg("u1"), Reg("u2")}, kT0, &changed);
  EXPECT_EQ(s.code(), absl::StatusCode::kResourceExhausted) << s;
  EXPECT_EQ(registry.size(), 4u);
  EXPECT_EQ(backend.List("")->size(), 4u);
  // Withdrawing makes room again.
  ZRPC_ASSERT_OK(registry.Remove({.connection = "a"}, Reg("t4"), &changed));
  ZRPC_ASSERT_OK(registry.Add({.connection = "b"}, {Reg("u1"), Reg("u2")}, kT0, &changed));
  EXPECT_EQ(registry.size(), 5u);
}

// Issue 18: with keys a connection names any number of clients; the share is its identity's.
TEST(RegistryLimitsTest, OneCallersClientsShareItsSlotsWhateverTheyCallThemselves) {
  MemoryMatchmaker backend;
  Registry registry(&backend, nullptr, kTtl, {.per_request = 10, .per_client = 4, .total = 100});
  Changes changed;
  const Owner a1{.connection = "key:5:alice/c1", .client = "c1", .principal = "key:5:alice"};
  const Owner a2{.connection = "key:5:alice/c2", .client = "c2", .principal = "key:5:alice"};
  const Owner bob{.connection = "key:3:bob/c1", .client = "c1", .principal = "key:3:bob"};
  ZRPC_ASSERT_OK(registry.Add(a1, {Reg("t1"), Reg("t2"), Reg("t3")}, kT0, &changed));
  absl::Status s = registry.Add(a2, {Reg("u1"), Reg("u2")}, kT0, &changed);
  EXPECT_EQ(s.code(), absl::StatusCode::kResourceExhausted) << s;
  ZRPC_ASSERT_OK(registry.Add(a2, {Reg("u1")}, kT0, &changed));
  ZRPC_ASSERT_OK(registry.Add(bob, {Reg("v1"), Reg("v2"), Reg("v3"), Reg("v4")}, kT0, &changed));
  // A withdrawal or an expiry gives the share back.
  ZRPC_ASSERT_OK(registry.Remove(a1, Reg("t1"), &changed));
  ZRPC_ASSERT_OK(registry.Add(a2, {Reg("u2")}, kT0, &changed));
  registry.Expire(kT0 + kTtl + absl::Seconds(1), &changed);
  EXPECT_EQ(registry.size(), 0u);
  ZRPC_ASSERT_OK(registry.Add(a2, {Reg("w1"), Reg("w2"), Reg("w3"), Reg("w4")},
                              kT0 + kTtl + absl::Seconds(1), &changed));
}

TEST(RegistryLinearTest, HeartbeatsOf20000RegistrationsTakeLinearTime) {
  // Quadratic work (a scan of the table per registration) takes minutes at this size; linear
  // work takes milliseconds. The bound is generous so that a loaded machine does not fail it.
  MemoryMatchmaker backend;
  Registry registry(&backend, nullptr, kTtl);
  Changes changed;
  constexpr int kCount = 20000;
  std::vector<Registration> others, mine;
  for (int i = 0; i < kCount; ++i) {
    others.push_back(Reg("other-" + std::to_string(i)));
    mine.push_back(Reg("mine-" + std::to_string(i)));
  }
  const absl::Time t0 = absl::Now();
  ZRPC_ASSERT_OK(registry.Add({.connection = "others"}, others, kT0, &changed));
  for (int beat = 0; beat < 5; ++beat) {  // the first adds, the others refresh
    ZRPC_ASSERT_OK(registry.Add({.connection = "mine"}, mine, kT0 + absl::Seconds(beat), &changed));
  }
  registry.Expire(kT0 + absl::Seconds(4) + kTtl, &changed);  // "others" expire, in one pass
  const absl::Duration took = absl::Now() - t0;
  EXPECT_EQ(registry.size(), static_cast<size_t>(kCount));
  EXPECT_EQ(backend.Resolve("openstack", "mine-19999")->size(), 1u);
  EXPECT_EQ(backend.Resolve("openstack", "other-19999")->size(), 0u);
  EXPECT_LT(took, absl::Seconds(2));
}

TEST(RegistrationRulesTest, NamesEndpointsAndPoolsAreCheckedAndShownEscaped) {
  ZRPC_EXPECT_OK(ValidateRegistration(Reg("compute")));
  Registration bad_host = Reg("compute", "h\nforged log line");
  absl::Status s = ValidateRegistration(bad_host);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(std::string(s.message()).find('\n'), std::string::npos) << s;
  EXPECT_NE(std::string(s.message()).find("host"), std::string::npos) << s;
  for (const char* e : {"tcp://a b:1", "tcp://h:1\nX", "tcp://h", "tcp://h:0", "tcp://h:70000",
                        "inproc://x", "ipc://", ""}) {
    Registration r = Reg("compute");
    r.endpoint = e;
    s = ValidateRegistration(r);
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << e;
    EXPECT_EQ(std::string(s.message()).find('\n'), std::string::npos) << s;
  }
  Registration pool = Reg("compute");
  pool.pool = "a~b";
  EXPECT_EQ(ValidateRegistration(pool).code(), absl::StatusCode::kInvalidArgument);
  pool.pool = "workers";
  ZRPC_EXPECT_OK(ValidateRegistration(pool));
  pool.fanout = true;
  EXPECT_EQ(ValidateRegistration(pool).code(), absl::StatusCode::kInvalidArgument);
  Registration pub = Reg("compute");
  pub.pub_endpoint = "tcp://\x1b[2J:1";
  EXPECT_EQ(ValidateRegistration(pub).code(), absl::StatusCode::kInvalidArgument);
}

TEST(RegistrationRulesTest, AcceptedFormsRoundTripAndBadListsAreRefused) {
  Registration r = Reg("compute");
  r.accepts = {std::string(kBareMessageForm), "later.form-2_x"};
  absl::StatusOr<Registration> back = RegistrationFromValue(RegistrationToValue(r));
  ZRPC_ASSERT_OK(back);
  EXPECT_EQ(back->accepts, r.accepts);
  // Absent: none (older services); not part of the identity.
  Value v = RegistrationToValue(Reg("compute"));
  EXPECT_EQ(v.Find("accepts"), nullptr);
  back = RegistrationFromValue(v);
  ZRPC_ASSERT_OK(back);
  EXPECT_TRUE(back->accepts.empty());
  EXPECT_EQ(*back, r);
  for (Value bad : {Value("message"), Value(Array{1}), Value(Array{""}), Value(Array{"Message"}),
                    Value(Array{"a b"}), Value(Array{std::string(33, 'a')}),
                    Value(Array{"a", "b", "c", "d", "e", "f", "g", "h", "i"})}) {
    Value reg = RegistrationToValue(Reg("compute"));
    reg.MutableObject().Set("accepts", bad);
    absl::StatusOr<Registration> refused = RegistrationFromValue(reg);
    EXPECT_EQ(refused.status().code(), absl::StatusCode::kInvalidArgument) << *ToJson(bad);
    EXPECT_NE(std::string(refused.status().message()).find("accepts"), std::string::npos);
  }
}

TEST(RegistrationRulesTest, EndpointsAreAddressesAndHostNamesAreRefusedSayingSo) {
  for (const char* e : {"tcp://10.0.0.5:41234", "tcp://127.0.0.1:1", "tcp://[::1]:5555",
                        "tcp://[fd00::5]:41234", "ipc:///run/zrpc/x.router", "ipc://@abstract"}) {
    Registration r = Reg("compute");
    r.endpoint = e;
    r.pub_endpoint = e;
    EXPECT_TRUE(ValidateRegistration(r).ok()) << e << ": " << ValidateRegistration(r);
    EXPECT_TRUE(IsValidEndpoint(e)) << e;
  }
  // A name would be resolved by every client that connects, blocking its I/O thread.
  for (const char* e : {"tcp://zrpc-slow-dns.invalid:5555", "tcp://localhost:1", "tcp://node1:9501",
                        "tcp://1.2.3:1", "tcp://010.0.0.256:1", "tcp://::1:5555",
                        "tcp://[fe80::1%eth0]:1", "tcp://[node1]:1", "tcp://*:1",
                        "tcp://127.0.0.1;10.0.0.1:1"}) {
    Registration r = Reg("compute");
    r.endpoint = e;
    absl::Status s = ValidateRegistration(r);
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << e;
    EXPECT_EQ(std::string(s.message()).rfind("endpoint \"", 0), 0u) << s;
    EXPECT_FALSE(IsValidEndpoint(e)) << e;
    Registration pub = Reg("compute");
    pub.pub_endpoint = e;
    s = ValidateRegistration(pub);
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << e;
    EXPECT_EQ(std::string(s.message()).rfind("pub_endpoint \"", 0), 0u) << s;
  }
  Registration named = Reg("compute");
  named.endpoint = "tcp://zrpc-slow-dns.invalid:5555";
  const std::string why(ValidateRegistration(named).message());
  EXPECT_NE(why.find("names a host, not an address"), std::string::npos) << why;
  EXPECT_NE(why.find("advertise"), std::string::npos) << why;
}

TEST(RegistrationRulesTest, OnlyOwnConfigurationIsResolvedAndWithinItsBound) {
  const absl::Time start = absl::Now();
  std::vector<absl::StatusOr<std::string>> got = ResolveHosts(
      {"localhost", "10.1.2.3", "::1", "[fd00::5]", "zrpc-slow-dns.invalid"}, absl::Seconds(3));
  EXPECT_LT(absl::Now() - start, absl::Seconds(5));
  ASSERT_EQ(got.size(), 5u);
  ZRPC_ASSERT_OK(got[0]);
  EXPECT_TRUE(*got[0] == "127.0.0.1" || *got[0] == "[::1]") << *got[0];
  EXPECT_EQ(got[1].value_or(""), "10.1.2.3");
  EXPECT_EQ(got[2].value_or(""), "[::1]");
  EXPECT_EQ(got[3].value_or(""), "[fd00::5]");
  EXPECT_FALSE(got[4].ok());
  EXPECT_NE(std::string(got[4].status().message()).find("zrpc-slow-dns.invalid"),
            std::string::npos);
  for (const auto& a : got) {
    if (a.ok()) {
      EXPECT_TRUE(IsNumericHost(*a)) << *a;
    }
  }
}

// A registry that answers what the test planted, unchecked (as a hostile one would).
class PlantedMatchmaker : public MemoryMatchmaker {
 public:
  absl::StatusOr<std::vector<Registration>> Resolve(std::string_view, std::string_view) override {
    return planted;
  }
  std::vector<Registration> planted;
};

std::shared_ptr<const Candidates> Routes(PlantedMatchmaker& mm, const std::string& key = "compute") {
  RouteTable table(mm, absl::Milliseconds(500));
  absl::StatusOr<std::shared_ptr<const Candidates>> c = table.Resolve("openstack", key);
  EXPECT_TRUE(c.ok()) << c.status();
  return c.ok() ? *c : std::make_shared<Candidates>();
}

TEST(RegistrationRulesTest, AnnouncedHeartbeatsAreClampedToTheRangeServicesMayAnnounce) {
  PlantedMatchmaker mm;
  for (int64_t ms : {int64_t{1}, int64_t{0}, int64_t{250}, int64_t{3600000}}) {
    Registration r = Reg("compute", "h" + std::to_string(ms));
    r.endpoint = "tcp://127.0.0.1:" + std::to_string(1000 + mm.planted.size());
    r.heartbeat_ms = ms;
    mm.planted.push_back(r);
  }
  std::shared_ptr<const Candidates> c = Routes(mm);
  ASSERT_EQ(c->plain.routes.size(), 4u);
  std::map<std::string, absl::Duration> beat;
  for (const Route& r : c->plain.routes) beat[r.host] = r.beat;
  EXPECT_EQ(beat["h1"], kMinCallHeartbeatInterval);
  EXPECT_EQ(beat["h0"], absl::Milliseconds(500));  // none announced: the caller's own
  EXPECT_EQ(beat["h250"], absl::Milliseconds(250));
  EXPECT_EQ(beat["h3600000"], kMaxCallHeartbeatInterval);
  // Services may announce only what clients keep.
  TransportOptions o;
  o.host = "t";
  o.matchmaker = "local:///nonexistent-zrpc-dir-never-created";  // refused before it is made
  for (absl::Duration d : {absl::Milliseconds(1), absl::Minutes(2)}) {
    o.call_heartbeat_interval = d;
    absl::Status s = Transport::Create(o).status();
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s;
    EXPECT_NE(std::string(s.message()).find("call_heartbeat_interval"), std::string::npos) << s;
  }
}

TEST(RegistrationRulesTest, CopiesOfAnInstanceAreOneRouteWithTheLongestBeat) {
  PlantedMatchmaker mm;
  Registration real = Reg("compute", "node-a");
  real.heartbeat_ms = 200;
  real.accepts = {std::string(kBareMessageForm)};
  Registration copy = real;  // listed first, announcing 1 ms, without the bare form
  copy.host = "a-copy";
  copy.heartbeat_ms = 1;
  copy.accepts.clear();
  Registration pooled = real;  // a pool member at the same endpoint is another consumer
  pooled.pool = "workers";
  mm.planted = {copy, real, pooled};
  std::shared_ptr<const Candidates> c = Routes(mm);
  ASSERT_EQ(c->plain.routes.size(), 1u);
  EXPECT_EQ(c->plain.routes[0].host, "a-copy");  // the first seen
  EXPECT_EQ(c->plain.routes[0].beat, absl::Milliseconds(200));
  EXPECT_FALSE(c->plain.routes[0].accepts_bare);
  ASSERT_EQ(c->pools.size(), 1u);
  EXPECT_EQ(c->pools[0].routes.size(), 1u);
}

TEST(RegistrationRulesTest, ThousandsOfCopiesCannotCrowdOutTheRealInstances) {
  PlantedMatchmaker mm;
  Registration a = Reg("compute", "node-a");
  a.endpoint = "tcp://127.0.0.1:1001";
  for (int i = 0; i < 5000; ++i) {
    Registration copy = a;
    copy.host = absl::StrCat("a-copy-", i);
    copy.heartbeat_ms = 1;
    mm.planted.push_back(copy);
  }
  mm.planted.push_back(a);
  Registration b = Reg("compute", "node-b");
  b.endpoint = "tcp://127.0.0.1:1002";
  mm.planted.push_back(b);
  std::shared_ptr<const Candidates> c = Routes(mm);
  ASSERT_EQ(c->plain.routes.size(), 2u);
  EXPECT_EQ(c->plain.routes[0].endpoint, a.endpoint);
  EXPECT_EQ(c->plain.routes[1].endpoint, b.endpoint);
  EXPECT_EQ(c->plain.routes[0].beat, absl::Milliseconds(500));  // the real one's (the default)
  // Distinct instances are still capped.
  mm.planted.clear();
  for (size_t i = 0; i < RouteTable::kMaxRoutesPerKey + 10; ++i) {
    Registration r = Reg("compute", absl::StrCat("n", i));
    r.endpoint = absl::StrCat("ipc:///tmp/zrpc-never/", i);
    mm.planted.push_back(r);
  }
  EXPECT_EQ(Routes(mm)->plain.routes.size(), RouteTable::kMaxRoutesPerKey);
}

TEST(RedactUrlTest, PasswordsAreMaskedAndTheRestIsKept) {
  EXPECT_EQ(RedactUrl("redis://:s3cret@10.0.0.9:6379/2?ttl=6"),
            "redis://:***@10.0.0.9:6379/2?ttl=6");
  EXPECT_EQ(RedactUrl("redis://app:s3/c@et@h:1/0"), "redis://app:***@h:1/0");
  EXPECT_EQ(RedactUrl("redis://s3cret@h:1"), "redis://***@h:1");
  EXPECT_EQ(RedactUrl("redis://h:1/0?password_file=/etc/pw"),
            "redis://h:1/0?password_file=/etc/pw");
  EXPECT_EQ(RedactUrl("ipc:///run/zrpc/mm.sock"), "ipc:///run/zrpc/mm.sock");
  EXPECT_EQ(RedactUrl("local://"), "local://");
}

// Registers into a memory backend, counting round trips; fails when told to.
class CountingBulk : public BulkRegistrar {
 public:
  explicit CountingBulk(Matchmaker* backend) : backend_(backend) {}
  absl::Status RegisterAll(const std::vector<Registration>& regs) override {
    ++calls;
    if (fail) return absl::UnavailableError("backend down");
    for (const Registration& r : regs) (void)backend_->Register(r);
    return absl::OkStatus();
  }
  int calls = 0;
  bool fail = false;

 private:
  Matchmaker* backend_;
};

TEST(RegistryBulkTest, NewRegistrationsGoToTheBackendInOneRoundTrip) {
  MemoryMatchmaker backend;
  CountingBulk bulk(&backend);
  Registry registry(&backend, &bulk, kTtl);
  Changes changed;
  std::vector<Registration> many;
  for (int i = 0; i < 100; ++i) many.push_back(Reg("t" + std::to_string(i)));
  ZRPC_ASSERT_OK(registry.Add({.connection = "a"}, many, kT0, &changed));
  ZRPC_ASSERT_OK(registry.Add({.connection = "a"}, many, kT0, &changed));  // all known: no trip
  EXPECT_EQ(bulk.calls, 1);
  EXPECT_EQ(backend.List("")->size(), 100u);
  // What the backend refused is not held, so the next beat tries again.
  bulk.fail = true;
  many.push_back(Reg("u1"));
  many.push_back(Reg("u2"));
  EXPECT_EQ(registry.Add({.connection = "a"}, many, kT0, &changed).code(),
            absl::StatusCode::kUnavailable);
  EXPECT_EQ(registry.size(), 100u);
  bulk.fail = false;
  ZRPC_ASSERT_OK(registry.Add({.connection = "a"}, many, kT0, &changed));
  EXPECT_EQ(registry.size(), 102u);
  EXPECT_EQ(bulk.calls, 3);
}

// Found while writing the sidecar fuzz target: code 0 made an error reply an OK status, which
// absl's StatusOr refuses with an abort.
TEST(SidecarProtocolTest, AnErrorReplyWithANonCanonicalCodeIsAnInternalError) {
  for (const char* code : {"0", "-1", "17", "99999", "\"3\"", "null"}) {
    SCOPED_TRACE(code);
    Reply r = DecodeReply(absl::StrCat(R"({"ok": false, "error": {"code": )", code,
                                       R"(, "message": "m"}, "boot": "b"})"));
    ASSERT_FALSE(r.result.ok());
    EXPECT_EQ(r.result.status().code(), absl::StatusCode::kInternal);
    EXPECT_EQ(r.boot, "b");
  }
  Reply r = DecodeReply(R"({"ok": false, "error": {"code": 3, "message": "m"}, "boot": "b"})");
  EXPECT_EQ(r.result.status().code(), absl::StatusCode::kInvalidArgument);
}

// Found by the sidecar fuzz target: an op of invalid UTF-8 became an INTERNAL error whose
// message was lost, because the error could not be written as JSON.
TEST(SidecarProtocolTest, AnUnknownOperationOfInvalidUtf8IsAnsweredAsInvalidArgument) {
  absl::StatusOr<std::unique_ptr<SidecarServer>> server =
      SidecarServer::Create({.endpoints = {"inproc://zrpc-unit-sidecar"},
                             .pub = "inproc://zrpc-unit-sidecar-pub"});
  ASSERT_TRUE(server.ok()) << server.status();
  absl::StatusOr<Value> answer = (*server)->Handle("reg\xff\xfeister", "{}", "peer");
  ASSERT_FALSE(answer.ok());
  Reply back = DecodeReply(EncodeReply(answer, (*server)->boot_id()));
  ASSERT_FALSE(back.result.ok());
  EXPECT_EQ(back.result.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(back.result.status().message().find("unknown operation"), std::string::npos);
}

}  // namespace
}  // namespace zrpc::internal::sidecar
