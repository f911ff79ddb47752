// SPDX-License-Identifier: Apache-2.0
// A client's per-attempt and health metrics (issue 19) against real service processes: attempts
// by outcome when an instance is SIGKILLed (failed over, or lost with a call on it), ejections,
// probes, the instances gauge, matchmaker lookups; each reconciled with what the application
// saw and with the number of calls it made, and the text accepted by promtool.
#include <map>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "integration/metrics_scrape.h"
#include "testing/harness.h"
#include "testing/redis_server.h"
#include "unit/test_util.h"
#include "zrpc/metrics.h"

namespace zrpc::testing {
namespace {

// A loopback TCP port nothing listens on: testing/redis_server.h's FreePort.
int ClosedPort() { return FreePort(); }

// The `code` label of a call's outcome as the application saw it.
std::string CodeOf(const absl::Status& s) {
  if (s.ok()) return "OK";
  const std::optional<ErrorKind> kind = GetErrorKind(s);
  return std::string(ErrorKindName(kind ? *kind : ErrorKind::kRemoteError));
}

using Labels = std::vector<std::pair<std::string, std::string>>;

// A sample's value, 0 when absent (MetricSample says -1).
double Value0(const std::string& text, std::string_view name, const Labels& labels) {
  return std::max(0.0, MetricSample(text, name, labels));
}

class ClientMetricsTest : public IntegrationTest {
 protected:
  // Calls `method` on `topic` and tallies what the application saw, by code.
  absl::StatusOr<Value> Call(Transport& client, const std::string& topic, Message m,
                             absl::Duration timeout = absl::Seconds(5)) {
    absl::StatusOr<Value> r = client.Call(Context(), topic, std::move(m), {.timeout = timeout});
    ++made_;
    ++seen_[CodeOf(r.status())];
    return r;
  }

  // Registers, as this (live) process, a copy of `host`'s registration of `topic`: the registry
  // keeps listing the instance after it is killed, as a Redis registry does until its TTL.
  void KeepListed(const std::string& topic, const std::string& host) {
    absl::StatusOr<std::unique_ptr<Matchmaker>> mm = CreateMatchmaker(matchmaker_);
    ASSERT_TRUE(mm.ok()) << mm.status();
    absl::StatusOr<std::vector<Registration>> regs =
        (*mm)->Resolve(std::string(kDefaultExchange), topic);
    ASSERT_TRUE(regs.ok()) << regs.status();
    bool found = false;
    for (const Registration& r : *regs) {
      if (r.host != host) continue;
      ZRPC_ASSERT_OK((*mm)->Register(r));
      found = true;
    }
    ASSERT_TRUE(found) << host << " has no registration of " << topic;
    keepers_.push_back(*std::move(mm));
  }

  // For every (topic, method, kind) of `text`'s attempts: the attempts that are not failed_over
  // (one per call that sent) and the attempt-duration count (one per attempt) agree with the
  // attempt counters.
  static void ExpectAttemptsConsistent(const std::string& text, const Labels& labels) {
    const double attempts = Value0(text, kMetricClientAttempts, labels);
    const double durations =
        Value0(text, std::string(kMetricClientAttemptDuration) + "_count", labels);
    EXPECT_EQ(attempts, durations) << "every attempt observed once in the histogram";
  }

  int made_ = 0;
  std::map<std::string, int> seen_;  // by code
  std::vector<std::unique_ptr<Matchmaker>> keepers_;
};

TEST_F(ClientMetricsTest, AKilledInstanceIsFailedOverEjectedProbedAndEveryAttemptReconciles) {
  StartService("a");
  ChildProcess& b = StartService("b");
  KeepListed("compute", "b");
  auto client = Client();
  // Both instances answer (round-robin), so the client holds a connection to each.
  std::set<std::string> answered;
  for (int i = 0; i < 20 && answered.size() < 2; ++i) {
    absl::StatusOr<Value> r = Call(*client, "compute", Msg("whoami"));
    ASSERT_TRUE(r.ok()) << r.status();
    answered.insert(r->AsString());
  }
  ASSERT_EQ(answered.size(), 2u);
  b.Kill();
  // The next calls that pick b find it gone and go on to a; then b is out of rotation.
  for (int i = 0; i < 20; ++i) {
    absl::StatusOr<Value> r = Call(*client, "compute", Msg("whoami"));
    if (r.ok()) {
      EXPECT_EQ(r->AsString(), "a");
    }
  }
  EXPECT_GE(seen_["OK"], 19) << "at most one call may have been sent to b before it was seen";
  // A topic nobody serves: a lookup that finds nothing.
  absl::Status none = Call(*client, "nobody", Msg("whoami")).status();
  EXPECT_TRUE(IsErrorKind(none, ErrorKind::kNoConsumer)) << none;

  std::string text = client->MetricsText();
  EXPECT_EQ(PromtoolCheckMetrics(text), "");
  const Labels whoami = {{"topic", "compute"}, {"method", "whoami"}, {"kind", "call"}};
  const auto attempts = [&](const std::string& outcome) {
    Labels l = whoami;
    l.emplace_back("outcome", outcome);
    return Value0(text, kMetricClientAttempts, l);
  };
  const auto calls = [&](const std::string& code) {
    Labels l = whoami;
    l.emplace_back("code", code);
    return Value0(text, kMetricClientCalls, l);
  };
  const int to_compute = made_ - 1;  // all but the call to "nobody"
  // The kill showed: b was failed over (or, had a call been sent before the loss was seen,
  // lost with it).
  EXPECT_GE(attempts("failed_over") + attempts("peer_lost"), 1);
  // Each call that sent has exactly one attempt that is not failed_over: its reply, or its end.
  const double all = Value0(text, kMetricClientAttempts, whoami);
  EXPECT_EQ(all - attempts("failed_over"), to_compute);
  EXPECT_EQ(attempts("ok"), seen_["OK"]);
  EXPECT_EQ(attempts("peer_lost"), seen_["PeerLost"]);
  EXPECT_EQ(attempts("timeout") + attempts("send_failed") + attempts("cancelled"), 0);
  // And the application's view, by code.
  EXPECT_EQ(calls("OK"), seen_["OK"]);
  EXPECT_EQ(calls("PeerLost"), seen_["PeerLost"]);
  EXPECT_EQ(Value0(text, kMetricClientCalls, whoami), to_compute);
  ExpectAttemptsConsistent(text, whoami);
  // A call that never got to an instance has no attempt.
  EXPECT_EQ(Value0(text, kMetricClientAttempts, {{"topic", "nobody"}}), 0);
  // b left rotation once.
  EXPECT_EQ(Value0(text, kMetricClientEjections, {{"topic", "compute"}}), 1);
  // The registry still lists b: one healthy instance, one ejected; b's probes fail.
  EXPECT_TRUE(Eventually([&] {
    text = client->MetricsText();
    return MetricSample(text, kMetricClientInstances,
                        {{"topic", "compute"}, {"state", "healthy"}}) == 1 &&
           MetricSample(text, kMetricClientInstances,
                        {{"topic", "compute"}, {"state", "ejected"}}) == 1 &&
           MetricSample(text, kMetricClientProbes, {{"topic", "compute"}, {"result", "error"}}) >=
               1;
  })) << text;
  EXPECT_EQ(Value0(text, kMetricClientProbes, {{"topic", "compute"}, {"result", "ok"}}), 0);
  // Lookups: "compute" found, "nobody" not; each observed in the latency histogram.
  EXPECT_GE(Value0(text, kMetricClientMatchmakerLookups, {{"result", "ok"}}), 1);
  EXPECT_GE(Value0(text, kMetricClientMatchmakerLookups, {{"result", "not_found"}}), 1);
  EXPECT_EQ(Value0(text, kMetricClientMatchmakerLookups, {}),
            Value0(text, std::string(kMetricClientMatchmakerLookupDuration) + "_count", {}));
  EXPECT_EQ(PromtoolCheckMetrics(text), "");
}

TEST_F(ClientMetricsTest, ACallOnAnInstanceKilledUnderItIsOnePeerLostAttempt) {
  StartService("a");
  ChildProcess& b = StartService("b");
  auto client = Client();
  // Round-robin alternates between the two: after an answer from a, the next call goes to b.
  bool after_a = false;
  for (int i = 0; i < 4 && !after_a; ++i) {
    absl::StatusOr<Value> r = Call(*client, "compute", Msg("whoami"));
    ASSERT_TRUE(r.ok()) << r.status();
    after_a = r->AsString() == "a";
  }
  ASSERT_TRUE(after_a);
  absl::Status slow;
  std::thread caller([&] {
    slow = client
               ->Call(Context(), "compute", Msg("sleep", {{"ms", 5000}}),
                      {.timeout = absl::Seconds(20)})
               .status();
  });
  // b runs it (its own metrics say so), then dies under it.
  Message metrics = Msg("metrics");
  metrics.ns = "_zrpc";
  const bool running = Eventually([&] {
    absl::StatusOr<Value> t = client->Call(Context(), "compute.b", metrics);
    return t.ok() && t->is_string() &&
           MetricSample(t->AsString(), kMetricServerRequestsStarted, {{"method", "sleep"}}) == 1;
  });
  b.Kill();
  caller.join();
  ASSERT_TRUE(running) << "the call did not reach b";
  EXPECT_TRUE(IsErrorKind(slow, ErrorKind::kPeerLost)) << slow;
  // The topic goes on on a.
  for (int i = 0; i < 5; ++i) ZRPC_EXPECT_OK(Call(*client, "compute", Msg("whoami")));

  const std::string text = client->MetricsText();
  const Labels sleep = {{"topic", "compute"}, {"method", "sleep"}, {"kind", "call"}};
  const auto with = [](Labels l, std::string k, std::string v) {
    l.emplace_back(std::move(k), std::move(v));
    return l;
  };
  EXPECT_EQ(Value0(text, kMetricClientAttempts, sleep), 1);
  EXPECT_EQ(Value0(text, kMetricClientAttempts, with(sleep, "outcome", "peer_lost")), 1);
  EXPECT_EQ(Value0(text, kMetricClientCalls, with(sleep, "code", "PeerLost")), 1);
  // Its attempt lasted until the kill, not a beat-less deadline.
  EXPECT_EQ(Value0(text, std::string(kMetricClientAttemptDuration) + "_count", sleep), 1);
  EXPECT_LT(Value0(text, std::string(kMetricClientAttemptDuration) + "_sum", sleep), 10);
  const Labels whoami = {{"topic", "compute"}, {"method", "whoami"}};
  EXPECT_EQ(Value0(text, kMetricClientAttempts, with(whoami, "outcome", "ok")), seen_["OK"]);
  EXPECT_EQ(Value0(text, kMetricClientEjections, {{"topic", "compute"}}), 1);
  EXPECT_EQ(PromtoolCheckMetrics(text), "");
}

TEST_F(ClientMetricsTest, EveryCallPathCountsOneAttemptPerCallBesidesItsFailovers) {
  StartService("live");
  // A registration of "compute" nobody listens at, and a topic with only such an instance.
  absl::StatusOr<std::unique_ptr<Matchmaker>> mm = CreateMatchmaker(matchmaker_);
  ZRPC_ASSERT_OK(mm);
  ZRPC_ASSERT_OK((*mm)->Register({.topic = "compute",
                                  .host = "ghost",
                                  .endpoint = absl::StrCat("tcp://127.0.0.1:", ClosedPort())}));
  ZRPC_ASSERT_OK((*mm)->Register({.topic = "lost",
                                  .host = "ghost2",
                                  .endpoint = absl::StrCat("tcp://127.0.0.1:", ClosedPort())}));
  auto client = Client();
  // CallMany: round-robin gives the ghost one of the first two calls, which fails over.
  std::vector<Message> batch(6, Msg("whoami"));
  for (const absl::StatusOr<Value>& r : client->CallMany(Context(), "compute", batch)) {
    ZRPC_EXPECT_OK(r);
  }
  for (int i = 0; i < 3; ++i) ZRPC_EXPECT_OK(client->Call(Context(), "compute", Msg("whoami")));
  for (int i = 0; i < 2; ++i) {
    absl::Notification done;
    absl::StatusOr<Value> result;
    client->CallAsync(Context(), "compute", Msg("whoami"), [&](absl::StatusOr<Value> r) {
      result = std::move(r);
      done.Notify();
    });
    ASSERT_TRUE(done.WaitForNotificationWithTimeout(absl::Seconds(10)));
    ZRPC_EXPECT_OK(result);
  }
  {
    absl::StatusOr<std::unique_ptr<ReplyStream>> stream =
        client->MultiCall(Context(), "compute", Msg("count", {{"n", 2}}));
    ZRPC_ASSERT_OK(stream);
    while (true) {
      absl::StatusOr<std::optional<Value>> v = (*stream)->Next();
      ZRPC_ASSERT_OK(v);
      if (!v->has_value()) break;
    }
  }
  for (int i = 0; i < 3; ++i) {
    ZRPC_EXPECT_OK(client->Cast(Context(), "compute", Msg("note", {{"kind", "m"}})));
  }
  // A multicall whose only instance cannot be reached: counted as its caller saw it.
  absl::StatusOr<std::unique_ptr<ReplyStream>> lost =
      client->MultiCall(Context(), "lost", Msg("count", {{"n", 2}}));
  EXPECT_TRUE(IsErrorKind(lost.status(), ErrorKind::kPeerLost)) << lost.status();

  const std::string text = client->MetricsText();
  EXPECT_EQ(PromtoolCheckMetrics(text), "");
  struct Path {
    std::string method, kind;
    int calls;
  };
  for (const Path& p : {Path{"whoami", "call", 6 + 3 + 2}, Path{"count", "multicall", 1},
                        Path{"note", "cast", 3}}) {
    SCOPED_TRACE(p.method);
    const Labels l = {{"topic", "compute"}, {"method", p.method}, {"kind", p.kind}};
    Labels failed_over = l, ok = l;
    failed_over.emplace_back("outcome", "failed_over");
    ok.emplace_back("outcome", "ok");
    EXPECT_EQ(
        Value0(text, kMetricClientAttempts, l) - Value0(text, kMetricClientAttempts, failed_over),
        p.calls);
    EXPECT_EQ(Value0(text, kMetricClientAttempts, ok), p.calls);
    ExpectAttemptsConsistent(text, l);
  }
  EXPECT_GE(Value0(text, kMetricClientAttempts, {{"topic", "compute"}, {"outcome", "failed_over"}}),
            1);
  // The ghost left rotation once, whichever path found it.
  EXPECT_EQ(Value0(text, kMetricClientEjections, {{"topic", "compute"}}), 1);
  // "lost": its one instance tried, then tried again on the matchmaker's fresh answer; the last
  // try ends as the call did, and the call counts PeerLost (not a dropped stream's Cancelled).
  const Labels lost_labels = {{"topic", "lost"}, {"method", "count"}, {"kind", "multicall"}};
  EXPECT_EQ(Value0(text, kMetricClientAttempts, {{"topic", "lost"}, {"outcome", "peer_lost"}}), 1);
  EXPECT_EQ(
      Value0(text, kMetricClientAttempts, lost_labels) -
          Value0(text, kMetricClientAttempts, {{"topic", "lost"}, {"outcome", "failed_over"}}),
      1);
  EXPECT_EQ(Value0(text, kMetricClientCalls, {{"topic", "lost"}, {"code", "PeerLost"}}), 1);
  EXPECT_EQ(Value0(text, kMetricClientCalls, {{"topic", "lost"}}), 1);
}

}  // namespace
}  // namespace zrpc::testing
