// SPDX-License-Identifier: Apache-2.0
// zrpc-e2e-bench's arithmetic and records: percentiles, medians over rounds, CPU time of a
// process, the figures one round yields, and the JSON lines the tool writes with --json.
//
//   zrpc::bench::Figures lat;
//   for (int r = 0; r < rounds; ++r) lat.Add(OneRound());  // each round: a Sample
//   zrpc::bench::Sample median = lat.Median();            // per field, over the rounds
#ifndef ZRPC_BENCH_E2E_STATS_H_
#define ZRPC_BENCH_E2E_STATS_H_

#include <sys/types.h>

#include <cstdint>
#include <fstream>
#include <string>
#include <vector>

#include "zrpc/value.h"

namespace zrpc::bench {

// The `q` quantile (0..1, nearest rank) of `values`, which it sorts; 0 when empty.
double Percentile(std::vector<double>& values, double q);

// CPU seconds used so far by process `pid` (all its threads, including ended ones), from the
// process's CPU-time clock (nanosecond resolution; /proc/PID/stat ticks are 10 ms, too coarse
// for a round). -1 when the process is gone.
double CpuSeconds(pid_t pid);

// What one round of one measurement yields. Fields a measurement does not fill stay negative
// and are left out of medians, tables and JSON.
struct Sample {
  double p50_us = -1, p99_us = -1, p999_us = -1;  // latency
  double rate = -1;                               // calls or messages per second
  double cpu_client_us = -1, cpu_server_us = -1;  // CPU per call (or message), each process
  double offered_rate = -1;                       // open loop: the schedule's rate
  int64_t errors = 0;                             // failed or lost calls (summed over rounds)
};

// CPU per call of the client (this process) and a server process, over one measurement:
// construct before it, Stop after it.
class CpuMeter {
 public:
  explicit CpuMeter(pid_t server);
  // Fills `sample`'s cpu_client_us and cpu_server_us for `calls` calls (or messages).
  void Stop(int64_t calls, Sample* sample) const;

 private:
  pid_t server_;
  double client0_, server0_;
};

// The rounds of one figure; Median() is the per-field median over them.
class Figures {
 public:
  void Add(const Sample& sample) { rounds_.push_back(sample); }
  Sample Median() const;
  int rounds() const { return static_cast<int>(rounds_.size()); }

 private:
  std::vector<Sample> rounds_;
};

// One JSON object per line (--json FILE); disabled when constructed with an empty path.
// Lines carry "bench", "impl", "transport", "payload", "window" where it applies, the
// figures of a Sample (p50_us, p99_us, p999_us, rps or msg_s, cpu_client_us, cpu_server_us,
// errors) and "rounds".
class JsonLines {
 public:
  explicit JsonLines(const std::string& path);
  bool ok() const { return path_.empty() || out_.good(); }
  bool enabled() const { return !path_.empty(); }
  // `fields` first (in order), then the sample's figures: the rate as "rps" (calls) or "msg_s"
  // (casts) per `rate_key`, and "rounds".
  void Write(Object fields, const Sample& sample, const std::string& rate_key, int rounds);

 private:
  std::string path_;
  std::ofstream out_;
};

}  // namespace zrpc::bench

#endif  // ZRPC_BENCH_E2E_STATS_H_
