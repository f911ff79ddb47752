// SPDX-License-Identifier: Apache-2.0
// Metrics across processes (issue 19): a zrpc-service with --metrics-listen, scraped over HTTP
// and through `_zrpc.metrics`, checked by promtool, and reconciled with what the client saw.
// Helpers: metrics_scrape.h (scrape, samples, promtool), testing/redis_server.h (FreePort).

#include <fstream>
#include <set>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "metrics_scrape.h"
#include "testing/harness.h"
#include "testing/redis_server.h"
#include "unit/test_util.h"

namespace zrpc::testing {
namespace {

using ::testing::HasSubstr;

class MetricsTest : public IntegrationTest {
 protected:
  std::string ServiceMetrics(Transport& client, const std::string& host) {
    Message m = Msg("metrics");
    m.ns = "_zrpc";
    absl::StatusOr<Value> text = client.Call(Context(), "compute." + host, m);
    EXPECT_TRUE(text.ok()) << text.status();
    return text.ok() && text->is_string() ? text->AsString() : "";
  }
};

TEST_F(MetricsTest, AServiceIsScrapedOverHttpAndItsCountsMatchWhatItsClientSaw) {
  ASSERT_TRUE(std::ifstream("/usr/bin/promtool").good()) << "promtool is missing (setup.sh)";
  const int port = FreePort();
  ASSERT_GT(port, 0);
  StartService("node1", {"--metrics-listen", absl::StrCat("127.0.0.1:", port)});
  auto client = Client();
  // A mix of outcomes, as the application sees them.
  int ok = 0, remote = 0, no_method = 0, casts = 0;
  for (int i = 0; i < 7; ++i) {
    ZRPC_ASSERT_OK(client->Call(Context(), "compute", Msg("add", {{"a", i}, {"b", 1}})));
    ++ok;
  }
  for (int i = 0; i < 3; ++i) {
    absl::Status s = client->Call(Context(), "compute", Msg("fail", {{"message", "no"}})).status();
    EXPECT_EQ(GetErrorKind(s), ErrorKind::kRemoteError) << s;
    ++remote;
  }
  for (int i = 0; i < 2; ++i) {
    absl::Status s = client->Call(Context(), "compute", Msg("nosuch")).status();
    EXPECT_EQ(GetErrorKind(s), ErrorKind::kNoSuchMethod) << s;
    ++no_method;
  }
  for (int i = 0; i < 4; ++i) {
    ZRPC_ASSERT_OK(client->Cast(Context(), "compute", Msg("note", {{"kind", "m"}})));
    ++casts;
  }
  // The casts have run once `stats` (after them on the same worker queue) counts them.
  ASSERT_TRUE(Eventually([&] {
    absl::StatusOr<Value> stats = client->Call(Context(), "compute", Msg("stats"));
    return stats.ok() && stats->Find("notes")->Find("m") != nullptr &&
           stats->Find("notes")->Find("m")->AsInt() == casts;
  }));
  const std::string scraped = ScrapeMetrics(port);
  ASSERT_FALSE(scraped.empty()) << "nothing at http://127.0.0.1:" << port << "/metrics";
  EXPECT_EQ(PromtoolCheckMetrics(scraped), "");
  const std::string text = ServiceMetrics(*client, "node1");
  EXPECT_EQ(PromtoolCheckMetrics(text), "");
  // The service's counts: every request it received, once, by method and code.
  const auto handled = [&](const std::string& method, const std::string& code) {
    return MetricSample(text, "zrpc_server_requests_handled_total",
                  {{"topic", "compute"}, {"method", method}, {"code", code}});
  };
  EXPECT_EQ(handled("add", "OK"), ok);
  EXPECT_EQ(handled("fail", "RemoteError"), remote);
  EXPECT_EQ(handled("other", "NoSuchMethod"), no_method);
  EXPECT_EQ(MetricSample(text, "zrpc_server_requests_handled_total",
                   {{"method", "note"}, {"kind", "cast"}, {"code", "OK"}}),
            casts);
  EXPECT_EQ(MetricSample(text, "zrpc_server_requests_started_total", {{"method", "add"}}), ok);
  EXPECT_EQ(MetricSample(text, "zrpc_server_handler_duration_seconds_count", {{"method", "add"}}), ok);
  // The same over HTTP (scraped a moment earlier: at least as many).
  EXPECT_EQ(MetricSample(scraped, "zrpc_server_requests_handled_total",
                   {{"method", "add"}, {"code", "OK"}}),
            ok);
  // The client's own counts (this process): what its application saw, by code.
  const std::string mine = client->MetricsText();
  EXPECT_EQ(PromtoolCheckMetrics(mine), "");
  const auto calls = [&](const std::string& method, const std::string& code) {
    return MetricSample(mine, "zrpc_client_calls_total",
                  {{"topic", "compute"}, {"method", method}, {"code", code}});
  };
  EXPECT_EQ(calls("add", "OK"), ok);
  EXPECT_EQ(calls("fail", "RemoteError"), remote);
  EXPECT_EQ(calls("nosuch", "NoSuchMethod"), no_method);
  EXPECT_EQ(MetricSample(mine, "zrpc_client_calls_total", {{"method", "note"}, {"kind", "cast"}}),
            casts);
}

TEST_F(MetricsTest, RefusalsAreCountedByReasonAndNothingRan) {
  StartService("node1", {"--max-in-flight-per-peer", "1", "--threads", "2"});
  auto client = Client();
  // One slow call holds this caller's only slot; the next is refused by admission. The slow one
  // is running before the other is sent (else the other could take the slot first).
  std::thread slow([&] {
    (void)client->Call(Context(), "compute", Msg("sleep", {{"ms", 1500}}));
  });
  Message health = Msg("health");
  health.ns = "_zrpc";  // answered on the I/O thread: not subject to admission
  const bool running = Eventually([&] {
    absl::StatusOr<Value> h = client->Call(Context(), "compute.node1", health);
    return h.ok() && h->Find("load")->Find("queued_requests")->AsInt() == 1;
  });
  absl::Status refused;
  if (running) {
    refused = client->Call(Context(), "compute", Msg("add", {{"a", 1}, {"b", 2}})).status();
  }
  slow.join();
  ASSERT_TRUE(running) << "the slow call never ran";
  EXPECT_EQ(refused.code(), absl::StatusCode::kResourceExhausted) << refused;
  const std::string text = ServiceMetrics(*client, "node1");
  EXPECT_GE(MetricSample(text, "zrpc_server_requests_refused_total",
                   {{"topic", "compute"}, {"reason", "admission"}}),
            1);
  EXPECT_EQ(PromtoolCheckMetrics(text), "");
}

TEST_F(MetricsTest, TenThousandUnknownMethodsKeepTheLabelsBounded) {
  StartService("node1");
  auto client = Client();
  std::vector<Message> messages;
  for (int i = 0; i < 10000; ++i) messages.push_back(Msg(absl::StrCat("unknown", i)));
  std::vector<absl::StatusOr<Value>> results =
      client->CallMany(Context(), "compute.node1", std::move(messages), {.window = 64});
  for (const absl::StatusOr<Value>& r : results) {
    ASSERT_EQ(GetErrorKind(r.status()), ErrorKind::kNoSuchMethod) << r.status();
  }
  const std::string text = ServiceMetrics(*client, "node1");
  // Every one counted, under "other": one series, not 10,000.
  EXPECT_EQ(MetricSample(text, "zrpc_server_requests_handled_total",
                   {{"method", "other"}, {"code", "NoSuchMethod"}}),
            10000);
  size_t series = 0;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    series += absl::StartsWith(line, "zrpc_server_requests_handled_total{");
  }
  EXPECT_LT(series, 20u);
  // The client records the methods it called, bounded by its own limit (1,000 series, then
  // "other").
  const std::string mine = client->MetricsText();
  std::set<std::string> client_methods;
  for (absl::string_view line : absl::StrSplit(mine, '\n')) {
    if (!absl::StartsWith(line, "zrpc_client_calls_total{")) continue;
    const size_t at = line.find("method=\"");
    if (at != absl::string_view::npos) {
      client_methods.insert(std::string(line.substr(at, line.find('"', at + 8) - at)));
    }
  }
  EXPECT_LE(client_methods.size(), 1001u);
  EXPECT_TRUE(client_methods.contains("method=\"other")) << "no overflow series";
  EXPECT_EQ(MetricSample(mine, "zrpc_client_calls_total", {{"code", "NoSuchMethod"}}), 10000);
}

}  // namespace
}  // namespace zrpc::testing
