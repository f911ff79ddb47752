// SPDX-License-Identifier: Apache-2.0
// Lock-free exact histograms and counters for zrpc's per-request metrics.
//
// prometheus-cpp's Histogram::Observe takes a mutex and its Counter is an atomic double updated
// by compare-and-swap: two histograms and a counter per request cost ~100 ns. These cells are
// plain relaxed fetch_adds on integers (nanoseconds, bytes), so recording a request costs a few
// uncontended atomic adds; they are read (and turned into seconds) only when scraped.
//
// Exact: every observation is counted in exactly one bucket and its value added to an integer
// sum, so nothing is approximated. A scrape that runs while requests are recorded may see a
// bucket's count before the sum that goes with it (no lock ties them): the +Inf bucket and the
// count are always equal (both are derived from the same bucket reads), the sum may be ahead or
// behind by the observations in flight.
#ifndef ZRPC_METRICS_HISTOGRAM_H_
#define ZRPC_METRICS_HISTOGRAM_H_

#include <sched.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <vector>

namespace zrpc::internal {

// gRFC A66's latency buckets (seconds), with 1, 2, 5 and 25 µs added: a local call takes tens of
// µs and A66 starts at 10 µs. The one home of the list (include/zrpc/metrics.h quotes it).
// prometheus-cpp 1.0.1 prints 16 significant digits, so 0.0006 (whose nearest double lies just
// below it) is exposed as le="0.0005999999999999999"; the other bounds print as written.
inline constexpr std::array<double, 45> kLatencyBucketsSeconds = {
    0,      0.000001, 0.000002, 0.000005, 0.00001, 0.000025, 0.00005, 0.0001, 0.0003,
    0.0006, 0.0008,   0.001,    0.002,    0.003,   0.004,    0.005,   0.006,  0.008,
    0.01,   0.013,    0.016,    0.02,     0.025,   0.03,     0.04,    0.05,   0.065,
    0.08,   0.1,      0.13,     0.16,     0.2,     0.25,     0.3,     0.4,    0.5,
    0.65,   0.8,      1,        2,        5,       10,       20,      50,     100};
// gRFC A66's size buckets (bytes).
inline constexpr std::array<double, 14> kSizeBucketsBytes = {
    0,       1024,    2048,     4096,     16384,     65536,      262144,
    1048576, 4194304, 16777216, 67108864, 268435456, 1073741824, 4294967296};

// Observations are integers in `kScale` units of the exposed value: nanoseconds for seconds
// (kScale 1e9), bytes for bytes (kScale 1).
template <std::size_t N>
struct IntegerBounds {
  std::array<std::uint64_t, N> bounds;  // compared against observations
  std::array<double, N> exposed;        // the `le` values a scrape shows
  double scale;
};
template <std::size_t N>
constexpr IntegerBounds<N> ScaleBounds(const std::array<double, N>& exposed, double scale) {
  IntegerBounds<N> out{{}, exposed, scale};
  for (std::size_t i = 0; i < N; ++i)
    out.bounds[i] = static_cast<std::uint64_t>(exposed[i] * scale + 0.5);
  return out;
}
inline constexpr IntegerBounds<45> kLatencyBoundsNanos = ScaleBounds(kLatencyBucketsSeconds, 1e9);
inline constexpr IntegerBounds<14> kSizeBoundsBytes = ScaleBounds(kSizeBucketsBytes, 1.0);

// Seconds as whole nanoseconds: negative and NaN count as 0, anything past ~584 years saturates.
inline std::uint64_t SecondsToNanos(double seconds) {
  if (!(seconds > 0)) return 0;
  if (seconds >= 1.8e10) return UINT64_MAX / 2;
  return static_cast<std::uint64_t>(seconds * 1e9 + 0.5);
}

// Handles keep kStripes copies of their cells, each on its own cache lines, and a thread records
// into the stripe of the CPU it runs on: two workers recording the same method at the same time
// run on different CPUs, so they do not fight over one line (a contended atomic add costs ~100
// ns against ~5). Per CPU rather than per thread: threads come and go (a round-robin per-thread
// stripe put a new thread on a busy one a quarter of the time), CPUs do not. sched_getcpu is a
// vDSO call (a few ns); a thread moved between the call and the add only costs a shared line.
// A scrape sums the stripes.
inline constexpr std::size_t kStripes = 4;
inline std::size_t ThisThreadStripe() {
  const int cpu = sched_getcpu();
  return cpu < 0 ? 0 : static_cast<std::size_t>(cpu) % kStripes;
}

// A monotonic counter. Thread-safe.
class CounterCell {
 public:
  void Add(std::uint64_t n = 1) { value_.fetch_add(n, std::memory_order_relaxed); }
  std::uint64_t Read() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<std::uint64_t> value_{0};
};

// A gauge (signed: a Dec racing ahead of its Inc may dip below 0 for a moment). Thread-safe.
class GaugeCell {
 public:
  void Set(std::int64_t v) { value_.store(v, std::memory_order_relaxed); }
  void Add(std::int64_t d) { value_.fetch_add(d, std::memory_order_relaxed); }
  void Inc() { Add(1); }
  void Dec() { Add(-1); }
  std::int64_t Read() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<std::int64_t> value_{0};
};

// What a scrape reads of a histogram: per-bucket (not cumulative) counts, the last one being
// +Inf, and the sum in integer units.
struct HistogramSnapshot {
  std::vector<std::uint64_t> counts;
  std::uint64_t sum = 0;
};

// A fixed-bucket histogram of integer observations. Bucket i counts values <= bounds[i] (and
// > bounds[i-1]), as Prometheus's `le` means; the last cell is +Inf. Thread-safe.
template <std::size_t N, const IntegerBounds<N>& kBounds>
class ExactHistogram {
 public:
  void Observe(std::uint64_t value) {
    const auto& b = kBounds.bounds;
    const std::size_t i =
        static_cast<std::size_t>(std::lower_bound(b.begin(), b.end(), value) - b.begin());
    counts_[i].fetch_add(1, std::memory_order_relaxed);
    sum_.fetch_add(value, std::memory_order_relaxed);
  }
  // Adds this histogram's counts and sum to `s` (to sum stripes).
  void ReadInto(HistogramSnapshot& s) const {
    s.counts.resize(N + 1);
    for (std::size_t i = 0; i <= N; ++i) s.counts[i] += counts_[i].load(std::memory_order_relaxed);
    s.sum += sum_.load(std::memory_order_relaxed);
  }
  static constexpr const IntegerBounds<N>& bounds() { return kBounds; }

 private:
  std::array<std::atomic<std::uint64_t>, N + 1> counts_{};
  std::atomic<std::uint64_t> sum_{0};
};

using LatencyHistogram = ExactHistogram<45, kLatencyBoundsNanos>;
using SizeHistogram = ExactHistogram<14, kSizeBoundsBytes>;

}  // namespace zrpc::internal

#endif  // ZRPC_METRICS_HISTOGRAM_H_
