// SPDX-License-Identifier: Apache-2.0
// The zrpc-matchmaker sidecar's metrics (issue 19): a real sidecar started with
// --metrics-listen, used by real services, clients and raw protocol requests, scraped over HTTP
// and checked by promtool: requests by operation and result, the registrations it holds, its
// watchers (connections to its PUB) and its round trips to a real redis-server.
#include <sys/wait.h>

#include <fstream>
#include <memory>
#include <string>
#include <vector>
#include <zmq.hpp>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "integration/metrics_scrape.h"
#include "matchmaker/registration_json.h"
#include "matchmaker/sidecar/protocol.h"
#include "testing/harness.h"
#include "testing/redis_server.h"
#include "unit/test_util.h"
#include "zrpc/metrics.h"

namespace zrpc::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

// Talks the sidecar protocol directly (matchmaker/sidecar/protocol.h), as one connection.
class RawSidecar {
 public:
  explicit RawSidecar(const std::string& url) : socket_(ctx_, zmq::socket_type::dealer) {
    socket_.set(zmq::sockopt::linger, 0);
    socket_.set(zmq::sockopt::rcvtimeo, 5000);
    socket_.connect(url);
  }
  // The result of one request; DEADLINE_EXCEEDED when no answer came within 5 s.
  absl::StatusOr<Value> Request(std::string_view op, Object body) {
    const uint64_t id = next_id_++;
    const std::string json = ToJson(Value(std::move(body))).value();
    socket_.send(zmq::buffer(internal::sidecar::RequestHeader(op, id)), zmq::send_flags::sndmore);
    socket_.send(zmq::buffer(json), zmq::send_flags::none);
    zmq::message_t header, reply;
    while (socket_.recv(header) && header.more() && socket_.recv(reply)) {
      if (header.to_string() != internal::sidecar::ReplyHeader(std::to_string(id))) continue;
      return internal::sidecar::DecodeReply(reply.to_string_view()).result;
    }
    return absl::DeadlineExceededError("the sidecar did not answer within 5 s");
  }
  absl::Status Register(const Registration& r) {
    Object body = {{"client", "raw"}, {"registration", internal::RegistrationToValue(r)}};
    return Request(internal::sidecar::kRegister, std::move(body)).status();
  }
  absl::Status Unregister(const Registration& r) {
    Object body = {{"client", "raw"}, {"registration", internal::RegistrationToValue(r)}};
    return Request(internal::sidecar::kUnregister, std::move(body)).status();
  }
  // How many registrations the sidecar lists in `exchange` (-1 on failure).
  int64_t Listed(const std::string& exchange) {
    absl::StatusOr<Value> v = Request(internal::sidecar::kList, Object{{"exchange", exchange}});
    if (!v.ok() || v->Find("registrations") == nullptr) return -1;
    return static_cast<int64_t>(v->Find("registrations")->AsArray().size());
  }

 private:
  zmq::context_t ctx_{1};
  zmq::socket_t socket_;
  uint64_t next_id_ = 0;
};

Registration Reg(const std::string& topic, int port) {
  Registration r;
  r.exchange = "metrics-test";
  r.topic = topic;
  r.host = "raw";
  r.endpoint = absl::StrCat("tcp://127.0.0.1:", port);
  return r;
}

class SidecarMetricsTest : public IntegrationTest {
 protected:
  void SetUp() override {
    IntegrationTest::SetUp();
    ASSERT_TRUE(std::ifstream("/usr/bin/promtool").good()) << "promtool is missing (setup.sh)";
    matchmaker_ = "ipc://" + registry_ + "/mm.sock";
  }
  void TearDown() override {
    IntegrationTest::TearDown();
    sidecar_.reset();
  }

  // Starts zrpc-matchmaker with --metrics-listen 127.0.0.1:0 and `extra`; reads the port it
  // prints ("METRICS port N", before READY) and its PUB endpoint.
  void StartSidecar(std::vector<std::string> extra = {}) {
    sidecar_ = std::make_unique<ChildProcess>();
    std::vector<std::string> argv = {ZRPC_MATCHMAKER_BINARY, "--endpoint", matchmaker_,
                                     "--metrics-listen", "127.0.0.1:0"};
    argv.insert(argv.end(), extra.begin(), extra.end());
    ASSERT_TRUE(sidecar_->Start(argv));
    std::string line;
    ASSERT_TRUE(sidecar_->ReadLine(&line, 10000)) << "the sidecar printed nothing";
    ASSERT_TRUE(absl::StartsWith(line, "METRICS port ")) << line;
    ASSERT_TRUE(absl::SimpleAtoi(line.substr(13), &port_)) << line;
    ASSERT_TRUE(sidecar_->ReadLine(&line, 10000));
    const std::vector<std::string> words = absl::StrSplit(line, ' ');
    ASSERT_EQ(words.size(), 3u) << line;
    ASSERT_EQ(words[0], "READY") << line;
    pub_ = words[2];
  }

  std::string Scrape() { return ScrapeMetrics(port_); }
  double Requests(const std::string& text, const std::string& op, const std::string& result) {
    return MetricSample(text, kMetricSidecarRequests, {{"operation", op}, {"result", result}});
  }
  // Polls /metrics until `metric` (no labels) reads `want`; the last value read.
  double AwaitGauge(std::string_view metric, double want) {
    double got = -1;
    Eventually([&] {
      got = MetricSample(Scrape(), metric, {});
      return got == want;
    });
    return got;
  }

  std::unique_ptr<ChildProcess> sidecar_;
  int port_ = 0;
  std::string pub_;
};

TEST_F(SidecarMetricsTest, CountsEveryRequestByOperationAndResultAndTheRegistrationsItHolds) {
  StartSidecar({"--ttl", "60"});  // the raw registrations are not refreshed
  ASSERT_GT(port_, 0);
  RawSidecar a(matchmaker_), b(matchmaker_);
  for (int i = 0; i < 3; ++i) ZRPC_ASSERT_OK(a.Register(Reg(absl::StrCat("t", i), 10000 + i)));
  // An invalid registration (a host name, not an address) is an error ...
  Registration bad = Reg("t9", 10009);
  bad.endpoint = "tcp://some.host:1";
  EXPECT_EQ(a.Register(bad).code(), absl::StatusCode::kInvalidArgument);
  // ... withdrawing another connection's registration is refused, and it stays ...
  EXPECT_EQ(b.Unregister(Reg("t0", 10000)).code(), absl::StatusCode::kPermissionDenied);
  // ... and an operation the protocol does not have is an error, under "other" (a peer's name
  // never makes a series of its own).
  EXPECT_EQ(a.Request("no-such-op", Object{}).status().code(), absl::StatusCode::kInvalidArgument);
  for (int i = 0; i < 4; ++i) {
    ZRPC_ASSERT_OK(a.Request(internal::sidecar::kResolve,
                             Object{{"exchange", "metrics-test"}, {"key", "t1"}}));
  }
  EXPECT_EQ(AwaitGauge(kMetricSidecarRegistrations, 3), 3);
  std::string text = Scrape();
  EXPECT_EQ(PromtoolCheckMetrics(text), "");
  EXPECT_EQ(Requests(text, "register", "ok"), 3);
  EXPECT_EQ(Requests(text, "register", "error"), 1);
  EXPECT_EQ(Requests(text, "register", "refused"), 0);
  EXPECT_EQ(Requests(text, "unregister", "refused"), 1);
  EXPECT_EQ(Requests(text, "unregister", "ok"), 0);
  EXPECT_EQ(Requests(text, "other", "error"), 1);
  EXPECT_EQ(Requests(text, "resolve", "ok"), 4);
  EXPECT_EQ(MetricSample(text, kMetricSidecarRequests, {{"operation", "no-such-op"}}), -1);
  EXPECT_EQ(MetricSample(text, kMetricSidecarRedisRoundTrips, {}), 0);  // memory backend

  // A real service registers through it and a real client resolves through it.
  StartService("node1");
  TransportOptions o = ClientOptions();
  auto client = Client(o);
  ASSERT_NE(client, nullptr);
  absl::StatusOr<Value> who = client->Call(Context(), "compute", Msg("whoami"));
  ZRPC_ASSERT_OK(who);
  EXPECT_EQ(who->AsString(), "node1");
  const int64_t service_regs = a.Listed(std::string(kDefaultExchange));
  ASSERT_GT(service_regs, 0);
  EXPECT_EQ(AwaitGauge(kMetricSidecarRegistrations, 3 + service_regs), 3 + service_regs);
  text = Scrape();
  EXPECT_EQ(PromtoolCheckMetrics(text), "");
  EXPECT_GE(Requests(text, "resolve", "ok"), 5) << "the client's lookup";
  EXPECT_GE(Requests(text, "hello", "ok"), 2) << "the service's and the client's";
  EXPECT_GE(Requests(text, "register", "ok") + Requests(text, "heartbeat", "ok"), 4)
      << "the service's registrations";
  EXPECT_EQ(Requests(text, "list", "ok"), 1);
  // The service stops: its registrations leave, and the gauge says so.
  services_.clear();
  EXPECT_EQ(AwaitGauge(kMetricSidecarRegistrations, 3), 3);
}

TEST_F(SidecarMetricsTest, ItsWatchersAreTheConnectionsToItsPub) {
  StartSidecar();
  EXPECT_EQ(AwaitGauge(kMetricSidecarWatchers, 0), 0);
  // A client watches once it has asked the sidecar anything (hello tells it the PUB).
  auto client = Client();
  ASSERT_NE(client, nullptr);
  ZRPC_ASSERT_OK(client->matchmaker().Resolve(std::string(kDefaultExchange), "compute"));
  EXPECT_EQ(AwaitGauge(kMetricSidecarWatchers, 1), 1);
  {
    zmq::context_t ctx(1);
    zmq::socket_t sub(ctx, zmq::socket_type::sub);
    sub.set(zmq::sockopt::linger, 0);
    sub.set(zmq::sockopt::subscribe, "");
    sub.connect(pub_);
    EXPECT_EQ(AwaitGauge(kMetricSidecarWatchers, 2), 2);
  }
  EXPECT_EQ(AwaitGauge(kMetricSidecarWatchers, 1), 1);
  client.reset();
  EXPECT_EQ(AwaitGauge(kMetricSidecarWatchers, 0), 0);
  EXPECT_EQ(PromtoolCheckMetrics(Scrape()), "");
}

TEST_F(SidecarMetricsTest, CountsItsRoundTripsToRedisAndThoseThatFailed) {
  RedisServer redis;
  ASSERT_TRUE(redis.Start());
  StartSidecar({"--backend", redis.Url()});
  RawSidecar a(matchmaker_);
  ZRPC_ASSERT_OK(a.Register(Reg("t0", 10000)));
  ZRPC_ASSERT_OK(
      a.Request(internal::sidecar::kResolve, Object{{"exchange", "metrics-test"}, {"key", "t0"}}));
  std::string text = Scrape();
  EXPECT_GE(MetricSample(text, kMetricSidecarRedisRoundTrips, {{"result", "ok"}}), 2);
  EXPECT_EQ(MetricSample(text, kMetricSidecarRedisRoundTrips, {{"result", "error"}}), 0);
  // Redis goes away: the sidecar's requests fail, and so do its round trips.
  redis.Kill();
  absl::Status failed;
  ASSERT_TRUE(Eventually([&] {
    failed = a.Register(Reg("t1", 10001));
    return !failed.ok();
  }));
  EXPECT_EQ(failed.code(), absl::StatusCode::kUnavailable) << failed;
  text = Scrape();
  EXPECT_GE(MetricSample(text, kMetricSidecarRedisRoundTrips, {{"result", "error"}}), 1);
  EXPECT_GE(Requests(text, "register", "error"), 1);
  EXPECT_EQ(PromtoolCheckMetrics(text), "");
}

TEST_F(SidecarMetricsTest, ServesMetricsOnEveryInterfaceOnlyWithInsecureAndPrintsNothingWithout) {
  {
    ChildProcess p;
    ASSERT_TRUE(p.Start(
        {ZRPC_MATCHMAKER_BINARY, "--endpoint", matchmaker_, "--metrics-listen", "0.0.0.0:0"},
        {.capture_stderr = true}));
    const std::string out = p.ReadAll(10000);
    const int status = p.Reap(10000);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) != 0) << status;
    EXPECT_THAT(out, HasSubstr("every interface")) << out;
    EXPECT_THAT(out, Not(HasSubstr("READY"))) << out;
  }
  {
    ChildProcess p;
    ASSERT_TRUE(p.Start({ZRPC_MATCHMAKER_BINARY, "--endpoint", matchmaker_, "--metrics-listen",
                         "0.0.0.0:0", "--insecure"}));
    std::string line;
    ASSERT_TRUE(p.ReadLine(&line, 10000));
    EXPECT_TRUE(absl::StartsWith(line, "METRICS port ")) << line;
    int port = 0;
    ASSERT_TRUE(absl::SimpleAtoi(line.substr(13), &port)) << line;
    EXPECT_FALSE(p.WaitForLine("READY ", 10000).empty());
    EXPECT_THAT(ScrapeMetrics(port), HasSubstr(std::string(kMetricSidecarRegistrations)));
  }
  // Without the flag, stdout is as it was: READY first.
  ChildProcess p;
  ASSERT_TRUE(p.Start({ZRPC_MATCHMAKER_BINARY, "--endpoint", matchmaker_}));
  std::string line;
  ASSERT_TRUE(p.ReadLine(&line, 10000));
  EXPECT_TRUE(absl::StartsWith(line, "READY ")) << line;
}

}  // namespace
}  // namespace zrpc::testing
