// SPDX-License-Identifier: Apache-2.0
// The cost of recording one request in zrpc's metrics (issue 19: at most 50 ns), through the
// handles the server and client keep, beside prometheus-cpp's own Histogram and Family::Add for
// comparison (why the hot path does not use them). Latencies cycle through 64 values spread over
// the buckets, so the bucket search is not a single predicted branch. Threads:2 records from two
// threads into the same handle (contended cache lines: the worst case of one hot method).
//
//   build/bench/zrpc_metrics_benchmark --benchmark_min_time=0.5
#include <benchmark/benchmark.h>

#include <array>
#include <cmath>

#include "metrics/metrics.h"
#include "prometheus/counter.h"
#include "prometheus/family.h"
#include "prometheus/histogram.h"
#include "prometheus/registry.h"

namespace zrpc::internal {
namespace {

// 64 latencies from 3 µs to ~30 ms, log-spaced.
std::array<double, 64> Latencies() {
  std::array<double, 64> out{};
  for (std::size_t i = 0; i < out.size(); ++i)
    out[i] = 3e-6 * std::pow(1.155, static_cast<double>(i));
  return out;
}

Metrics& Shared() {
  static Metrics* metrics = new Metrics();
  return *metrics;
}

// A service's request: started, then handled with its queue and handler times.
void BM_RecordServerRequest(benchmark::State& state) {
  ServerMethodStats* stats = Shared().ServerMethod("compute", "add", RequestKind::kCall, true);
  const auto latencies = Latencies();
  std::size_t i = 0;
  for (auto _ : state) {
    const double t = latencies[i++ & 63];
    stats->RecordStarted();
    stats->RecordHandled(MetricCode::Ok(), t * 0.1, t);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_RecordServerRequest)->Threads(1)->Threads(2);

// The same with the request and reply sizes.
void BM_RecordServerRequestWithSizes(benchmark::State& state) {
  ServerMethodStats* stats = Shared().ServerMethod("compute", "mul", RequestKind::kCall, true);
  const auto latencies = Latencies();
  std::size_t i = 0;
  for (auto _ : state) {
    const double t = latencies[i++ & 63];
    stats->RecordStarted();
    stats->RecordHandled(MetricCode::Ok(), t * 0.1, t);
    stats->RecordSizes(static_cast<std::uint64_t>(t * 1e8), 200);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_RecordServerRequestWithSizes);

// A client's call: one attempt, then the call.
void BM_RecordClientCall(benchmark::State& state) {
  ClientMethodStats* stats = Shared().ClientMethod("compute", "add", RequestKind::kCall);
  const auto latencies = Latencies();
  std::size_t i = 0;
  for (auto _ : state) {
    const double t = latencies[i++ & 63];
    stats->RecordAttempt(AttemptOutcome::kOk, t);
    stats->RecordCall(MetricCode::Ok(), t);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_RecordClientCall)->Threads(1)->Threads(2);

// Looking a handle up (what a caller that does not keep its handle would pay per request).
void BM_LookupServerMethod(benchmark::State& state) {
  Metrics& metrics = Shared();
  for (auto _ : state) {
    benchmark::DoNotOptimize(metrics.ServerMethod("compute", "add", RequestKind::kCall, true));
  }
}
BENCHMARK(BM_LookupServerMethod);

// For comparison: a request recorded with prometheus-cpp's own types (two Histogram::Observe,
// each under a mutex, and a Counter, an atomic double).
void BM_PrometheusCppRequest(benchmark::State& state) {
  static auto* registry = new prometheus::Registry();
  static const prometheus::Histogram::BucketBoundaries bounds(kLatencyBucketsSeconds.begin(),
                                                              kLatencyBucketsSeconds.end());
  static auto& handled = prometheus::BuildCounter().Name("c_total").Register(*registry).Add({});
  static auto& family = prometheus::BuildHistogram().Name("h").Register(*registry);
  static auto& queue = family.Add({{"h", "queue"}}, bounds);
  static auto& handler = family.Add({{"h", "handler"}}, bounds);
  const auto latencies = Latencies();
  std::size_t i = 0;
  for (auto _ : state) {
    const double t = latencies[i++ & 63];
    handled.Increment();
    queue.Observe(t * 0.1);
    handler.Observe(t);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_PrometheusCppRequest)->Threads(1)->Threads(2);

// For comparison: prometheus-cpp's Family::Add per request (a lock and a map of label maps).
void BM_PrometheusCppFamilyAdd(benchmark::State& state) {
  static auto* registry = new prometheus::Registry();
  static auto& family = prometheus::BuildCounter().Name("f_total").Register(*registry);
  for (auto _ : state) {
    family.Add({{"topic", "compute"}, {"method", "add"}, {"kind", "call"}, {"code", "OK"}})
        .Increment();
  }
}
BENCHMARK(BM_PrometheusCppFamilyAdd);

}  // namespace
}  // namespace zrpc::internal

BENCHMARK_MAIN();
