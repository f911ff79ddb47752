// SPDX-License-Identifier: Apache-2.0
// The client engine's pure parts on an injected clock: the call monitor, instance health, route
// ordering, and the beat header.
#include <gtest/gtest.h>

#include <set>

#include "client/call_monitor.h"
#include "client/health.h"
#include "client/routes.h"
#include "codec/wire.h"
#include "zrpc/errors.h"

namespace zrpc::internal {
namespace {

const absl::Time kT0 = absl::FromUnixSeconds(1000);

CallMonitor::Call MakeCall(uint64_t token, std::string endpoint, absl::Duration deadline_in,
                           absl::Duration beat = absl::Milliseconds(100)) {
  CallMonitor::Call c;
  c.token = token;
  c.endpoint = std::move(endpoint);
  c.host = "h";
  c.topic = "t";
  c.method = "m";
  c.deadline = kT0 + deadline_in;
  c.beat = beat;
  return c;
}

TEST(CallMonitorTest, SilenceOfThreeOfTheServicesBeatsIsPeerLost) {
  CallMonitor m;
  m.Add("a", MakeCall(1, "e1", absl::Seconds(60), absl::Milliseconds(100)), kT0);
  EXPECT_EQ(m.NextWake(), kT0 + absl::Milliseconds(300));
  EXPECT_TRUE(m.Expire(kT0 + absl::Milliseconds(299)).empty());
  std::vector<CallMonitor::Ended> ended = m.Expire(kT0 + absl::Milliseconds(300));
  ASSERT_EQ(ended.size(), 1u);
  EXPECT_TRUE(IsErrorKind(ended[0].status, ErrorKind::kPeerLost));
  EXPECT_EQ(ended[0].call.token, 1u);
  EXPECT_TRUE(m.empty());
}

TEST(CallMonitorTest, BeatsKeepACallAliveAndMayAnnounceALongerInterval) {
  CallMonitor m;
  m.Add("a", MakeCall(1, "e1", absl::Seconds(60)), kT0);
  ASSERT_NE(m.Heard("a", "e1", kT0 + absl::Milliseconds(250)), nullptr);
  EXPECT_TRUE(m.Expire(kT0 + absl::Milliseconds(500)).empty());
  // The service says its interval is 1 s: silence is judged by that.
  ASSERT_NE(m.Heard("a", "e1", kT0 + absl::Milliseconds(500), 1000), nullptr);
  EXPECT_TRUE(m.Expire(kT0 + absl::Milliseconds(3400)).empty());
  EXPECT_EQ(m.Expire(kT0 + absl::Milliseconds(3500)).size(), 1u);
}

TEST(CallMonitorTest, TheDeadlineEndsACallWithTimeoutEvenWhileBeatsArrive) {
  CallMonitor m;
  m.Add("a", MakeCall(7, "e1", absl::Milliseconds(250)), kT0);
  m.Heard("a", "e1", kT0 + absl::Milliseconds(200));
  std::vector<CallMonitor::Ended> ended = m.Expire(kT0 + absl::Milliseconds(250));
  ASSERT_EQ(ended.size(), 1u);
  EXPECT_TRUE(IsErrorKind(ended[0].status, ErrorKind::kTimeout));
}

TEST(CallMonitorTest, FramesForUnknownCallsOrFromAnotherPeerAreNotMatched) {
  CallMonitor m;
  m.Add("a", MakeCall(1, "e1", absl::Seconds(1)), kT0);
  EXPECT_EQ(m.Heard("b", "e1", kT0), nullptr);
  EXPECT_EQ(m.Heard("a", "e2", kT0), nullptr);  // same id, other instance: not our reply
  m.Remove("a");
  EXPECT_EQ(m.Heard("a", "e1", kT0), nullptr);  // late: the call is over
}

TEST(CallMonitorTest, LosingAnEndpointEndsOnlyItsCallsWithPeerLost) {
  CallMonitor m;
  m.Add("a", MakeCall(1, "e1", absl::Seconds(1)), kT0);
  m.Add("b", MakeCall(2, "e2", absl::Seconds(1)), kT0);
  m.Add("c", MakeCall(3, "e1", absl::Seconds(1)), kT0);
  std::vector<CallMonitor::Ended> ended = m.LoseEndpoint("e1");
  ASSERT_EQ(ended.size(), 2u);
  for (const auto& e : ended) EXPECT_TRUE(IsErrorKind(e.status, ErrorKind::kPeerLost));
  EXPECT_EQ(m.size(), 1u);
  EXPECT_TRUE(m.HasCallsOn("e2"));
  EXPECT_FALSE(m.HasCallsOn("e1"));
}

TEST(InstanceHealthTest, EjectedInstancesAreProbedWithBackoffCappedAtOneSecond) {
  InstanceHealth h;
  EXPECT_FALSE(h.IsEjected("e1"));
  h.Eject({"e1", "h1", "x", "t", absl::Seconds(1)}, kT0);
  EXPECT_TRUE(h.IsEjected("e1"));
  EXPECT_EQ(h.ejected(), 1u);
  EXPECT_TRUE(h.DueProbes(kT0 + absl::Milliseconds(99)).empty());
  std::vector<absl::Duration> gaps;
  absl::Time t = kT0;
  for (int i = 0; i < 6; ++i) {
    const absl::Time next = h.NextProbe();
    gaps.push_back(next - t);
    t = next;
    ASSERT_EQ(h.DueProbes(t).size(), 1u);
  }
  EXPECT_EQ(gaps[0], absl::Milliseconds(100));
  EXPECT_EQ(gaps[1], absl::Milliseconds(200));
  EXPECT_EQ(gaps[5], absl::Seconds(1));
  h.Restore("e1");
  EXPECT_FALSE(h.IsEjected("e1"));
  EXPECT_EQ(h.NextProbe(), absl::InfiniteFuture());
}

TEST(InstanceHealthTest, RetainForgetsEndpointsThatLeftTheMatchmaker) {
  InstanceHealth h;
  h.Eject({"e1", "h1", "x", "t", absl::Seconds(1)}, kT0);
  h.Eject({"e2", "h2", "x", "t", absl::Seconds(1)}, kT0);
  h.Retain({"e2"});
  EXPECT_FALSE(h.IsEjected("e1"));
  EXPECT_TRUE(h.IsEjected("e2"));
  EXPECT_EQ(h.ejected(), 1u);
}

TEST(RouteListTest, OrderPutsEjectedInstancesLastAndRotates) {
  std::atomic<uint64_t> next{0};
  RouteList list{{Route{"e1", "t", "a", "x", absl::Seconds(1)},
                  Route{"e2", "t", "b", "x", absl::Seconds(1)},
                  Route{"e3", "t", "c", "x", absl::Seconds(1)}},
                 &next};
  InstanceHealth h;
  std::vector<const Route*> order;
  std::multiset<std::string> firsts;
  for (int i = 0; i < 6; ++i) {
    list.Order(h, &order);
    ASSERT_EQ(order.size(), 3u);
    firsts.insert(order[0]->host);
  }
  EXPECT_EQ(firsts.count("a"), 2u);
  EXPECT_EQ(firsts.count("b"), 2u);
  h.Eject({"e2", "b", "x", "t", absl::Seconds(1)}, kT0);
  for (int i = 0; i < 6; ++i) {
    list.Order(h, &order);
    ASSERT_EQ(order.size(), 3u);
    EXPECT_NE(order[0]->host, "b");
    EXPECT_NE(order[1]->host, "b");
    EXPECT_EQ(order[2]->host, "b");  // still tried, as a last resort
  }
}

TEST(WireTest, BeatsMayAnnounceTheServicesInterval) {
  const std::string frame = BeatHeader("abc", 250);  // the header views into it
  absl::StatusOr<Header> h = ParseHeader(frame);
  ASSERT_TRUE(h.ok()) << h.status();
  EXPECT_EQ(h->kind, FrameKind::kBeat);
  EXPECT_EQ(h->msg_id, "abc");
  EXPECT_EQ(h->beat_ms, 250);
  absl::StatusOr<Header> plain = ParseHeader("zrpc1 beat abc");
  ASSERT_TRUE(plain.ok());
  EXPECT_EQ(plain->beat_ms, 0);
  EXPECT_FALSE(ParseHeader("zrpc1 beat abc x1").ok());
  EXPECT_FALSE(ParseHeader("zrpc1 beat abc 1234567890").ok());
  EXPECT_FALSE(ParseHeader("zrpc1 reply abc 100").ok());  // only beats carry an interval
}

TEST(WireTest, ACastWithoutAnIdSpellsItDashNotAnEmptyWord) {
  absl::StatusOr<Header> dash = ParseHeader("zrpc1 cast openstack compute -");
  ASSERT_TRUE(dash.ok()) << dash.status();
  EXPECT_TRUE(dash->msg_id.empty());
  // Found by the header fuzz target: a trailing space was taken as a cast with no id.
  absl::StatusOr<Header> empty = ParseHeader("zrpc1 cast openstack compute ");
  ASSERT_FALSE(empty.ok());
  EXPECT_EQ(empty.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_FALSE(ParseHeader("zrpc1 call openstack compute ").ok());
}

}  // namespace
}  // namespace zrpc::internal
