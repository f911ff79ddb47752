// SPDX-License-Identifier: Apache-2.0
// What zrpc-faults measured in one scenario, and how it prints it: one table row (Markdown) or
// one JSON object per scenario.
#ifndef ZRPC_BENCH_FAULT_REPORT_H_
#define ZRPC_BENCH_FAULT_REPORT_H_

#include <optional>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "bench/fault_cluster.h"
#include "bench/fault_load.h"

namespace zrpc::faults {

// One fault: when it was made, when it was undone (restart READY, SIGCONT, new client), and the
// instance it hit ("" when it hit no instance: a matchmaker process, the client). Faults of one
// scenario are in time order and do not overlap.
struct FaultEvent {
  absl::Time fault;
  absl::Time recover;
  std::string host;
};

// fds and RSS of the long-lived processes (clients summed, services summed).
struct Snapshot {
  ProcStats client, services, sidecar;
};

struct ScenarioResult {
  std::string matchmaker, scenario;
  std::vector<CallRecord> records;
  std::vector<FaultEvent> events;
  // ok/s before = [before, first fault), during = [first fault, last recover), after = [last
  // recover, end).
  absl::Time before, end;
  Snapshot at_start, at_end;
  std::vector<std::string> notes;
  std::string error;  // the scenario could not be run (set-up failed); nothing else is valid
};

// How long a call must take to count as stalled: 1 s more than the slowest success before the
// first fault.
absl::Duration StallThreshold(const ScenarioResult& r);

// Per-fault figures, measured from the call records. A fault's horizon is the next fault (or the
// end of the scenario).
struct EventMetrics {
  // fault → the first call that ended in an error.
  std::optional<absl::Duration> first_error;
  // fault → the start of the last call routed to the faulty instance before `recover`: answered
  // by it, failed naming it or naming no host, or stalled (1 s slower than any call before the
  // first fault: it waited for the instance before failing or going elsewhere). Zero when none.
  std::optional<absl::Duration> out;
  // Calls still went to it in the last second before `recover`: it never left rotation.
  bool never_out = false;
  // recover → the first call the instance answered again.
  std::optional<absl::Duration> back;
};
std::vector<EventMetrics> MeasureEvents(const ScenarioResult& r);

// Prints the table's header (nothing for JSON).
void PrintHeader(bool json);
void PrintRow(const ScenarioResult& r, bool json);

}  // namespace zrpc::faults

#endif  // ZRPC_BENCH_FAULT_REPORT_H_
