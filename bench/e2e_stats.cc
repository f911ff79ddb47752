// SPDX-License-Identifier: Apache-2.0
#include "bench/e2e_stats.h"

#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <iostream>

namespace zrpc::bench {

double Percentile(std::vector<double>& values, double q) {
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  const size_t rank = static_cast<size_t>(std::ceil(q * static_cast<double>(values.size())));
  return values[std::min(values.size() - 1, rank == 0 ? 0 : rank - 1)];
}

double CpuSeconds(pid_t pid) {
  clockid_t clock;
  timespec ts;
  if (clock_getcpuclockid(pid, &clock) != 0 || clock_gettime(clock, &ts) != 0) return -1;
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

CpuMeter::CpuMeter(pid_t server)
    : server_(server), client0_(CpuSeconds(getpid())), server0_(CpuSeconds(server)) {}

void CpuMeter::Stop(int64_t calls, Sample* sample) const {
  if (calls <= 0) return;
  const double client1 = CpuSeconds(getpid()), server1 = CpuSeconds(server_);
  if (client0_ >= 0 && client1 >= 0) sample->cpu_client_us = (client1 - client0_) * 1e6 / calls;
  if (server0_ >= 0 && server1 >= 0) sample->cpu_server_us = (server1 - server0_) * 1e6 / calls;
}

namespace {

// The median of the non-negative values of `field` over `rounds`; -1 when there are none.
double MedianOf(const std::vector<Sample>& rounds, double Sample::*field) {
  std::vector<double> v;
  for (const Sample& s : rounds) {
    if (s.*field >= 0) v.push_back(s.*field);
  }
  if (v.empty()) return -1;
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 == 1 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

// Two decimals are plenty for microseconds and rates, and keep the lines short.
Value Rounded(double v) { return Value(std::round(v * 100) / 100); }

}  // namespace

Sample Figures::Median() const {
  Sample m;
  for (double Sample::*field :
       {&Sample::p50_us, &Sample::p99_us, &Sample::p999_us, &Sample::rate, &Sample::cpu_client_us,
        &Sample::cpu_server_us, &Sample::offered_rate}) {
    m.*field = MedianOf(rounds_, field);
  }
  for (const Sample& s : rounds_) m.errors += s.errors;
  return m;
}

JsonLines::JsonLines(const std::string& path) : path_(path) {
  if (!path_.empty()) out_.open(path_, std::ios::out | std::ios::trunc);
}

void JsonLines::Write(Object fields, const Sample& sample, const std::string& rate_key,
                      int rounds) {
  if (path_.empty()) return;
  const std::pair<const char*, double> figures[] = {{"p50_us", sample.p50_us},
                                                    {"p99_us", sample.p99_us},
                                                    {"p999_us", sample.p999_us},
                                                    {"offered_rps", sample.offered_rate},
                                                    {rate_key.c_str(), sample.rate},
                                                    {"cpu_client_us", sample.cpu_client_us},
                                                    {"cpu_server_us", sample.cpu_server_us}};
  for (const auto& [key, value] : figures) {
    if (value >= 0 && std::isfinite(value)) fields.Set(key, Rounded(value));
  }
  fields.Set("errors", Value(sample.errors));
  fields.Set("rounds", Value(rounds));
  absl::StatusOr<std::string> line = ToJson(Value(std::move(fields)));
  if (!line.ok()) {
    std::cerr << "cannot write a JSON line: " << line.status() << "\n";
    return;
  }
  out_ << *line << "\n" << std::flush;
}

}  // namespace zrpc::bench
