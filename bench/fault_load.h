// SPDX-License-Identifier: Apache-2.0
// Load for zrpc-faults: client threads calling the reference service through zrpc's public API,
// one record per call, and the line format that client processes (`zrpc-faults --client`) use to
// hand their records to the parent.
//
// Every wait is bounded: a call that has not returned by its deadline + 5 s is recorded as
// "no outcome", and a thread stuck in such a call is left behind (detached, holding shared
// ownership of what it uses) instead of hanging the tool.
#ifndef ZRPC_BENCH_FAULT_LOAD_H_
#define ZRPC_BENCH_FAULT_LOAD_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "zrpc/transport.h"

namespace zrpc::faults {

// How a call ended, by zrpc error kind or status code.
enum class Outcome {
  kOk,
  kTimeout,            // zrpc Timeout (DEADLINE_EXCEEDED)
  kPeerLost,           // zrpc PeerLost (UNAVAILABLE)
  kNoConsumer,         // zrpc NoConsumer (NOT_FOUND)
  kResourceExhausted,  // RESOURCE_EXHAUSTED
  kClosed,             // zrpc TransportClosed (CANCELLED)
  kOther,              // anything else (its status code is kept)
  kNoOutcome,          // not returned by its deadline + 5 s
};
inline constexpr int kOutcomeCount = 8;
// "ok", "Timeout", "PeerLost", "NoConsumer", "RESOURCE_EXHAUSTED", "Closed", "other", "no-outcome".
std::string_view OutcomeName(Outcome o);
std::optional<Outcome> OutcomeFromName(std::string_view name);

// A call's result must arrive within its deadline plus this, or it counts as "no outcome".
inline constexpr absl::Duration kOutcomeGrace = absl::Seconds(5);

struct CallRecord {
  absl::Time start;
  absl::Time end;  // InfiniteFuture while (or when) it never returned
  Outcome outcome = Outcome::kOk;
  std::string host;    // who answered (ok), or the host a PeerLost names; "" when unknown
  std::string detail;  // for kOther: the status code's name
};

// Classifies a finished call that started at `start`, took until `end` and had `timeout`.
CallRecord MakeRecord(absl::Time start, absl::Time end, absl::Duration timeout,
                      const absl::StatusOr<Value>& result);

// One line per record: "C <start_us> <end_us> <outcome> <host|-> <detail|->" (unix µs; end 0
// for no outcome); parsed back by ParseRecordLine (nullopt for other lines).
std::string FormatRecordLine(const CallRecord& r);
std::optional<CallRecord> ParseRecordLine(std::string_view line);

// What every client thread calls.
struct LoadSpec {
  std::string topic = "compute";
  // "whoami" (returns the host) or "sleep" (a long call: waits `sleep_ms`, returns the host).
  std::string method = "whoami";
  int64_t sleep_ms = 0;
  int threads = 4;
  // Calls per second per thread; 0 = back to back (one call in flight per thread).
  double rate = 50;
  absl::Duration timeout = absl::Seconds(5);
};

// Client threads of this process. Thread-safe.
class Load {
 public:
  // Starts `spec.threads` threads calling through `transport` (kept alive while any thread runs).
  // `on_record`, if set, runs on the calling thread after each call (under a lock).
  static std::unique_ptr<Load> Start(std::shared_ptr<Transport> transport, LoadSpec spec,
                                     std::function<void(const CallRecord&)> on_record = {});
  Load(const Load&) = delete;
  Load& operator=(const Load&) = delete;
  ~Load();  // Finish(deadline + 5 s + 1 s) if not done yet

  // Asks the threads to stop after their current call. Does not block.
  void Stop();
  // Stops the threads and waits up to `bound` for them. A thread still in a call then is left
  // behind (see the file comment), and its call is recorded as no outcome when it has run longer
  // than deadline + 5 s by then (else as whatever it returns later, if it returns in `bound`).
  // Returns every record so far.
  std::vector<CallRecord> Finish(absl::Duration bound);
  // A bound for Finish that lets every call in flight reach its deadline + 5 s.
  absl::Duration FinishBound() const { return spec_.timeout + kOutcomeGrace + absl::Seconds(1); }
  // Calls in flight right now that have passed their deadline + 5 s.
  int Overdue() const;

  struct Shared;

 private:
  Load(std::shared_ptr<Shared> shared, LoadSpec spec)
      : shared_(std::move(shared)), spec_(std::move(spec)) {}
  std::shared_ptr<Shared> shared_;
  const LoadSpec spec_;
  bool finished_ = false;
};

// Threads left behind (stuck in a call or a Close) by this process; nonzero means the process
// must leave with _exit, since those threads may still touch zrpc's globals.
int LeftBehind();
void NoteLeftBehind();

// Sleeps until `until` in short slices; false when `stop` was set first.
bool SleepUntil(absl::Time until, const std::atomic<bool>& stop);

// Runs `fn` on a thread and waits up to `bound`. False when it had not returned by then (the
// thread is left behind; `fn` must own what it uses).
bool RunBounded(std::function<void()> fn, absl::Duration bound);

// The record lines a client process prints for `--client`: runs `spec` against `url` for
// `duration` (or until `stop` is set), printing each record as it completes, then
// "DONE calls=N" and returns its exit code.
int RunClientProcess(const std::string& url, const LoadSpec& spec, absl::Duration duration,
                     const std::atomic<bool>& stop);

}  // namespace zrpc::faults

#endif  // ZRPC_BENCH_FAULT_LOAD_H_
