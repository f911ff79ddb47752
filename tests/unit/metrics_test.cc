// SPDX-License-Identifier: Apache-2.0
// zrpc's metrics core (src/metrics): what the handles record appears in the Prometheus text with
// the right labels and exact values; labels stay bounded; promtool accepts the exposition; the
// HTTP endpoint serves it and refuses every interface without insecure.
#include "src/metrics/metrics.h"

#include <arpa/inet.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <stdio.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <memory>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "prometheus/counter.h"
#include "prometheus/family.h"
#include "prometheus/registry.h"
#include "tests/unit/test_util.h"
#include "zrpc/errors.h"
#include "zrpc/metrics.h"

namespace zrpc::internal {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

// The value of the sample line that starts with `series` (name and labels, as exposed), or -1.
double Sample(const std::string& text, const std::string& series) {
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    if (absl::StartsWith(line, series + " ")) {
      double v = -1;
      if (!absl::SimpleAtod(line.substr(series.size() + 1), &v)) return -2;
      return v;
    }
  }
  return -1;
}

// Sample lines (not comments) whose name starts with `prefix`.
std::vector<std::string> Lines(const std::string& text, absl::string_view prefix) {
  std::vector<std::string> out;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    if (absl::StartsWith(line, prefix)) out.emplace_back(line);
  }
  return out;
}

// Runs `promtool check metrics` on `text`; returns its exit status and output.
std::pair<int, std::string> Promtool(const std::string& text) {
  char path[] = "/tmp/zrpc-metrics-XXXXXX";
  const int fd = mkstemp(path);
  if (fd < 0) return {-1, "mkstemp failed"};
  close(fd);
  std::ofstream(path) << text;
  FILE* p = popen(absl::StrCat("/usr/bin/promtool check metrics < ", path, " 2>&1").c_str(), "r");
  std::string out;
  char buf[4096];
  size_t n;
  while (p && (n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  const int status = p ? pclose(p) : -1;
  unlink(path);
  return {status == -1 ? -1 : WEXITSTATUS(status), out};
}

TEST(MetricsTest, ServerHandleRecordsStartedHandledAndExactHistograms) {
  Metrics metrics;
  ServerMethodStats* add = metrics.ServerMethod("compute", "add", RequestKind::kCall, true);
  EXPECT_EQ(add, metrics.ServerMethod("compute", "add", RequestKind::kCall, true));
  for (int i = 0; i < 3; ++i) add->RecordStarted();
  add->RecordHandled(MetricCode::Ok(), 0.000020, 0.0015);
  add->RecordHandled(MetricCode::Ok(), 0.000020, 0.001);  // on a bound: in le="0.001"
  add->RecordHandled(MetricCode::Of(ErrorKind::kTimeout), 0.5, 2.5);
  add->RecordSizes(100, 5000);

  const std::string text = metrics.Text();
  const std::string labels = R"(topic="compute",method="add",kind="call")";
  EXPECT_EQ(Sample(text, "zrpc_server_requests_started_total{" + labels + "}"), 3) << text;
  EXPECT_EQ(Sample(text, "zrpc_server_requests_handled_total{" + labels + R"(,code="OK"})"), 2);
  EXPECT_EQ(Sample(text, "zrpc_server_requests_handled_total{" + labels + R"(,code="Timeout"})"),
            1);
  // Codes never seen are not exposed.
  EXPECT_THAT(text, Not(HasSubstr(R"(code="PeerLost")")));
  const std::string handler = "zrpc_server_handler_duration_seconds";
  EXPECT_EQ(Sample(text, handler + "_bucket{" + labels + R"(,le="0.0008"})"), 0);
  EXPECT_EQ(Sample(text, handler + "_bucket{" + labels + R"(,le="0.001"})"), 1);
  EXPECT_EQ(Sample(text, handler + "_bucket{" + labels + R"(,le="0.002"})"), 2);
  EXPECT_EQ(Sample(text, handler + "_bucket{" + labels + R"(,le="2"})"), 2);
  EXPECT_EQ(Sample(text, handler + "_bucket{" + labels + R"(,le="5"})"), 3);
  EXPECT_EQ(Sample(text, handler + "_bucket{" + labels + R"(,le="+Inf"})"), 3);
  EXPECT_EQ(Sample(text, handler + "_count{" + labels + "}"), 3);
  EXPECT_DOUBLE_EQ(Sample(text, handler + "_sum{" + labels + "}"), 0.0015 + 0.001 + 2.5);
  const std::string queue = "zrpc_server_queue_duration_seconds";
  // 20 µs: above the added 10 µs bucket, inside the added 25 µs one.
  EXPECT_EQ(Sample(text, queue + "_bucket{" + labels + R"(,le="1e-05"})"), 0) << text;
  EXPECT_EQ(Sample(text, queue + "_bucket{" + labels + R"(,le="2.5e-05"})"), 2);
  EXPECT_EQ(Sample(text, "zrpc_server_response_size_bytes_bucket{" + labels + R"(,le="4096"})"), 0);
  EXPECT_EQ(Sample(text, "zrpc_server_response_size_bytes_bucket{" + labels + R"(,le="16384"})"),
            1);
  EXPECT_EQ(Sample(text, "zrpc_server_request_size_bytes_sum{" + labels + "}"), 100);
}

TEST(MetricsTest, ClientHandleRecordsCallsAttemptsAndTopicFigures) {
  Metrics metrics;
  ClientMethodStats* get = metrics.ClientMethod("store", "get", RequestKind::kMulticall);
  get->RecordAttempt(AttemptOutcome::kFailedOver, 0.01);
  get->RecordAttempt(AttemptOutcome::kOk, 0.002);
  get->RecordCall(MetricCode::Ok(), 0.012);
  get->RecordCall(MetricCode::Of(NoConsumerError("store")), 0.0001);
  TopicStats* topic = metrics.Topic("store");
  topic->RecordEjection();
  topic->RecordProbe(false);
  topic->SetInstances(2, 1);
  metrics.RecordRefused("store", RefusalReason::kNotAuthorized);
  metrics.RecordRefused("store", RefusalReason::kNotAuthorized);
  metrics.RecordMatchmakerLookup(LookupResult::kNotFound, 0.003);

  const std::string text = metrics.Text();
  const std::string labels = R"(topic="store",method="get",kind="multicall")";
  EXPECT_EQ(Sample(text, "zrpc_client_calls_total{" + labels + R"(,code="OK"})"), 1) << text;
  EXPECT_EQ(Sample(text, "zrpc_client_calls_total{" + labels + R"(,code="NoConsumer"})"), 1);
  EXPECT_EQ(Sample(text, "zrpc_client_attempts_total{" + labels + R"(,outcome="ok"})"), 1);
  EXPECT_EQ(Sample(text, "zrpc_client_attempts_total{" + labels + R"(,outcome="failed_over"})"), 1);
  EXPECT_EQ(Sample(text, "zrpc_client_call_duration_seconds_count{" + labels + "}"), 2);
  EXPECT_DOUBLE_EQ(Sample(text, "zrpc_client_attempt_duration_seconds_sum{" + labels + "}"), 0.012);
  EXPECT_EQ(Sample(text, R"(zrpc_client_ejections_total{topic="store"})"), 1);
  EXPECT_EQ(Sample(text, R"(zrpc_client_probes_total{topic="store",result="error"})"), 1);
  EXPECT_EQ(Sample(text, R"(zrpc_client_instances{topic="store",state="healthy"})"), 2);
  EXPECT_EQ(Sample(text, R"(zrpc_client_instances{topic="store",state="ejected"})"), 1);
  EXPECT_EQ(
      Sample(text, R"(zrpc_server_requests_refused_total{topic="store",reason="not_authorized"})"),
      2);
  EXPECT_EQ(Sample(text, R"(zrpc_client_matchmaker_lookups_total{result="not_found"})"), 1);
  EXPECT_EQ(Sample(text, "zrpc_client_matchmaker_lookup_duration_seconds_count"), 1);
}

TEST(MetricsTest, EveryErrorKindHasItsOwnCode) {
  std::set<std::string> names;
  for (std::size_t i = 0; i < kErrorKindCount; ++i) {
    const auto kind = static_cast<ErrorKind>(i);
    const MetricCode code = MetricCode::Of(kind);
    EXPECT_EQ(code.name(), ErrorKindName(kind));
    EXPECT_EQ(ErrorKindFromName(code.name()), kind);
    names.insert(std::string(code.name()));
  }
  EXPECT_EQ(names.size(), kErrorKindCount);
  EXPECT_EQ(MetricCode::Of(absl::OkStatus()).name(), "OK");
  EXPECT_EQ(MetricCode::Of(TimeoutError("t", "m", "")).name(), "Timeout");
  EXPECT_EQ(MetricCode::Of(NotAuthorizedError("id", "m")).name(), "NotAuthorized");
  // A status zrpc did not classify reaches the caller as a RemoteError.
  EXPECT_EQ(MetricCode::Of(absl::InvalidArgumentError("x")).name(), "RemoteError");
}

TEST(MetricsTest, UnregisteredMethodsAreRecordedAsOther) {
  Metrics metrics;
  ServerMethodStats* a = metrics.ServerMethod("compute", "no_such_a", RequestKind::kCall, false);
  ServerMethodStats* b = metrics.ServerMethod("compute", "no_such_b", RequestKind::kCall, false);
  EXPECT_EQ(a, b);
  EXPECT_EQ(a->labels().method, "other");
  a->RecordStarted();
  b->RecordStarted();
  const std::string text = metrics.Text();
  EXPECT_EQ(
      Sample(text,
             R"(zrpc_server_requests_started_total{topic="compute",method="other",kind="call"})"),
      2);
  EXPECT_THAT(text, Not(HasSubstr("no_such")));
}

TEST(MetricsTest, TenThousandDistinctTopicsAndMethodsKeepTheSeriesBounded) {
  Metrics metrics;  // the defaults: 1,000 topics, 1,000 method handles per side
  for (int i = 0; i < 10000; ++i) {
    const std::string topic = absl::StrCat("topic", i);
    const std::string method = absl::StrCat("method", i);
    metrics.ServerMethod(topic, method, RequestKind::kCall, true)->RecordStarted();
    metrics.ServerMethod("compute", method, RequestKind::kCall, false)->RecordStarted();
    metrics.ClientMethod(topic, method, RequestKind::kCast)->RecordCall(MetricCode::Ok(), 0.001);
    metrics.RecordRefused(topic, RefusalReason::kBadHeader);
  }
  const std::string text = metrics.Text();
  std::set<std::string> topics;
  for (const std::string& line : Lines(text, "zrpc_")) {
    const size_t at = line.find("topic=\"");
    if (at != std::string::npos) topics.insert(line.substr(at, line.find('"', at + 7) - at));
  }
  EXPECT_LE(topics.size(), 1001u);  // 1,000 topics and "other"
  EXPECT_TRUE(topics.count("topic=\"other")) << "topics past the bound are \"other\"";
  // 1,000 handles, then one ("other", "other") per kind; + compute/other.
  EXPECT_LE(Lines(text, "zrpc_server_requests_started_total{").size(), 1002u);
  EXPECT_LE(Lines(text, "zrpc_client_calls_total{").size(), 1001u);
  EXPECT_LE(Lines(text, "zrpc_server_requests_refused_total{").size(), 1001u);
  // Every request is still counted, under "other" past the bounds.
  double started = 0;
  for (const std::string& line : Lines(text, "zrpc_server_requests_started_total{")) {
    started += Sample(line, line.substr(0, line.rfind(' ')));
  }
  EXPECT_EQ(started, 20000);
  EXPECT_EQ(
      Sample(text,
             R"(zrpc_server_requests_started_total{topic="compute",method="other",kind="call"})"),
      10000);
  EXPECT_LT(text.size(), 30u << 20);
}

TEST(MetricsTest, SmallBoundsSendLaterTopicsAndPairsToOther) {
  Metrics metrics({.max_topics = 2, .max_method_series = 3});
  EXPECT_EQ(metrics.ClientMethod("a", "m", RequestKind::kCall)->labels().topic, "a");
  EXPECT_EQ(metrics.ClientMethod("b", "m", RequestKind::kCall)->labels().topic, "b");
  ClientMethodStats* c = metrics.ClientMethod("c", "m", RequestKind::kCall);
  EXPECT_EQ(c->labels().topic, "other");
  EXPECT_EQ(c->labels().method, "m");
  ClientMethodStats* past = metrics.ClientMethod("a", "n", RequestKind::kCall);
  EXPECT_EQ(past->labels().topic, "other");
  EXPECT_EQ(past->labels().method, "other");
  EXPECT_EQ(past, metrics.ClientMethod("b", "z", RequestKind::kCall));
  EXPECT_EQ(metrics.ClientMethod("a", "m", RequestKind::kCall)->labels().topic, "a");
}

TEST(MetricsTest, LabelValuesAreEscapedByTheSerializerOrBoundedToOther) {
  Metrics metrics;
  metrics.ServerMethod("we\"ird\\to\npic", "m", RequestKind::kCast, true)->RecordStarted();
  metrics.ServerMethod(std::string("bad\xff", 4), "m", RequestKind::kCast, true)->RecordStarted();
  metrics.ServerMethod(std::string(200, 'x'), "m", RequestKind::kCast, true)->RecordStarted();
  const std::string text = metrics.Text();
  EXPECT_THAT(text, HasSubstr(R"(topic="we\"ird\\to\npic")")) << text;
  EXPECT_THAT(text, Not(HasSubstr("bad")));
  EXPECT_THAT(text, Not(HasSubstr(std::string(129, 'x'))));
  EXPECT_EQ(
      Sample(text, R"(zrpc_server_requests_started_total{topic="other",method="m",kind="cast"})"),
      2);
  const auto [status, out] = Promtool(text);
  EXPECT_EQ(status, 0) << out;
}

TEST(MetricsTest, ConcurrentRecordsAreCountedExactly) {
  Metrics metrics;
  ServerMethodStats* s = metrics.ServerMethod("compute", "add", RequestKind::kCall, true);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([s] {
      for (int i = 0; i < 25000; ++i) s->RecordHandled(MetricCode::Ok(), 0.000001, 0.000003);
    });
  }
  for (auto& t : threads) t.join();
  const std::string text = metrics.Text();
  const std::string labels = R"(topic="compute",method="add",kind="call")";
  EXPECT_EQ(Sample(text, "zrpc_server_requests_handled_total{" + labels + R"(,code="OK"})"),
            100000);
  EXPECT_EQ(
      Sample(text, "zrpc_server_handler_duration_seconds_bucket{" + labels + R"(,le="5e-06"})"),
      100000);
  EXPECT_DOUBLE_EQ(Sample(text, "zrpc_server_handler_duration_seconds_sum{" + labels + "}"), 0.3);
}

// Everything a Transport and a sidecar record, with attached application metrics.
TEST(MetricsTest, PromtoolAcceptsEveryExposition) {
  ASSERT_EQ(access("/usr/bin/promtool", X_OK), 0)
      << "promtool is missing: tools/setup.sh installs Debian's prometheus package";
  Metrics metrics;
  for (RequestKind kind : {RequestKind::kCall, RequestKind::kMulticall, RequestKind::kCast,
                           RequestKind::kFanout, RequestKind::kNotifyPool}) {
    ServerMethodStats* s = metrics.ServerMethod("compute", "add", kind, true);
    s->RecordStarted();
    s->RecordHandled(MetricCode::Of(ErrorKind::kRemoteError), 0.0001, 0.02);
    s->RecordSizes(10, 2000000);
    ClientMethodStats* c = metrics.ClientMethod("compute", "add", kind);
    c->RecordCall(MetricCode::Ok(), 0.03);
    c->RecordAttempt(AttemptOutcome::kPeerLost, 0.5);
    c->RecordSizes(10, 20);
  }
  for (std::size_t r = 0; r < kRefusalReasonCount; ++r) {
    metrics.RecordRefused("compute", static_cast<RefusalReason>(r));
  }
  TopicStats* t = metrics.Topic("compute");
  t->RecordCallBeat();
  t->RecordNotificationPublished();
  t->RecordNotificationDropped();
  t->RecordProbe(true);
  metrics.in_flight().Inc();
  metrics.queued_bytes().Add(4096);
  metrics.connections().Set(3);
  metrics.RecordMatchmakerLookup(LookupResult::kOk, 0.0002);
  auto app = std::make_shared<prometheus::Registry>();
  prometheus::BuildCounter()
      .Name("app_jobs_total")
      .Help("Jobs.")
      .Register(*app)
      .Add({})
      .Increment();
  metrics.Attach(app);
  prometheus::BuildCounter()
      .Name("app_own_total")
      .Help("Own.")
      .Register(*metrics.registry())
      .Add({})
      .Increment(2);

  const std::string text = metrics.Text();
  EXPECT_EQ(Sample(text, "app_jobs_total"), 1) << text;
  EXPECT_EQ(Sample(text, "app_own_total"), 2);
  EXPECT_EQ(Sample(text, "zrpc_server_in_flight_requests"), 1);
  EXPECT_EQ(Sample(text, "zrpc_server_queued_bytes"), 4096);
  EXPECT_EQ(Sample(text, R"(zrpc_notifications_dropped_total{topic="compute"})"), 1);
  auto [status, out] = Promtool(text);
  EXPECT_EQ(status, 0) << out << "\n" << text;

  app.reset();  // an attached registry that is gone is no longer exposed
  EXPECT_THAT(metrics.Text(), Not(HasSubstr("app_jobs_total")));

  Metrics sidecar({.sidecar = true});
  sidecar.SetSidecarRegistrations(12);
  sidecar.SetSidecarWatchers(4);
  sidecar.RecordSidecarRequest("register", SidecarResult::kOk);
  sidecar.RecordSidecarRequest("lookup", SidecarResult::kRefused);
  sidecar.RecordRedisRoundTrip(true);
  const std::string sidecar_text = sidecar.Text();
  EXPECT_EQ(Sample(sidecar_text, "zrpc_sidecar_registrations"), 12) << sidecar_text;
  EXPECT_EQ(
      Sample(sidecar_text, R"(zrpc_sidecar_requests_total{operation="lookup",result="refused"})"),
      1);
  EXPECT_THAT(sidecar_text, Not(HasSubstr("zrpc_server_in_flight_requests")));
  std::tie(status, out) = Promtool(sidecar_text);
  EXPECT_EQ(status, 0) << out << "\n" << sidecar_text;
  // promtool does fail on a bad exposition (so the checks above can fail).
  EXPECT_NE(Promtool("# TYPE x counter\nx{a=\"b} 1\n").first, 0);
}

// A raw HTTP/1.0 GET of `path` on 127.0.0.1:`port`; the whole response, or "" on failure.
std::string HttpGet(int port, const std::string& path) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return "";
  timeval tv{.tv_sec = 5, .tv_usec = 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  std::string response;
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0) {
    const std::string request = "GET " + path + " HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n";
    if (send(fd, request.data(), request.size(), 0) == static_cast<ssize_t>(request.size())) {
      char buf[4096];
      ssize_t n;
      while ((n = recv(fd, buf, sizeof buf, 0)) > 0) response.append(buf, n);
    }
  }
  close(fd);
  return response;
}

TEST(MetricsTest, ListenServesMetricsOverHttp) {
  Metrics metrics;
  EXPECT_EQ(metrics.listening_port(), 0);
  ZRPC_ASSERT_OK(metrics.Listen("127.0.0.1:0", /*insecure=*/false));
  const int port = metrics.listening_port();
  ASSERT_GT(port, 0);
  metrics.ServerMethod("compute", "add", RequestKind::kCall, true)->RecordStarted();
  const std::string response = HttpGet(port, "/metrics");
  EXPECT_THAT(response, HasSubstr("200 OK"));
  EXPECT_THAT(
      response,
      HasSubstr(
          R"(zrpc_server_requests_started_total{topic="compute",method="add",kind="call"} 1)"));
  EXPECT_THAT(HttpGet(port, "/other"), Not(HasSubstr("zrpc_")));
  ZRPC_EXPECT_ERROR(metrics.Listen("127.0.0.1:0", false), absl::StatusCode::kFailedPrecondition,
                    "already listening");
  // The same port again: the error names the address.
  Metrics second;
  const std::string taken = absl::StrCat("127.0.0.1:", port);
  ZRPC_EXPECT_ERROR(second.Listen(taken, false), absl::StatusCode::kUnavailable, taken);
  EXPECT_EQ(second.listening_port(), 0);
}

TEST(MetricsTest, ListenRefusesEveryInterfaceWithoutInsecure) {
  Metrics metrics;
  for (const char* address : {"0.0.0.0:0", "*:9464", "[::]:9464"}) {
    ZRPC_EXPECT_ERROR(metrics.Listen(address, false), absl::StatusCode::kInvalidArgument,
                      "every interface");
  }
  EXPECT_EQ(metrics.listening_port(), 0);
  // With insecure the address is accepted (checked without binding every interface here).
  EXPECT_EQ(MetricsListenPorts("0.0.0.0:9464", true).value_or(""), "0.0.0.0:9464");
  EXPECT_EQ(MetricsListenPorts("*:9464", true).value_or(""), "0.0.0.0:9464");
  EXPECT_EQ(MetricsListenPorts("[::1]:0", false).value_or(""), "[::1]:0");
  EXPECT_EQ(MetricsListenPorts("127.0.0.1:9464", false).value_or(""), "127.0.0.1:9464");
}

TEST(MetricsTest, ListenRefusesMalformedAddresses) {
  Metrics metrics;
  for (const char* address : {"localhost:9464", "127.0.0.1", "127.0.0.1:70000", ":9464",
                              "127.0.0.1:-1", "127.0.0.1:", "9464", "[::1:9464", "1.2.3:9464"}) {
    ZRPC_EXPECT_ERROR(metrics.Listen(address, true), absl::StatusCode::kInvalidArgument,
                      "metrics address");
  }
}

}  // namespace
}  // namespace zrpc::internal
