// SPDX-License-Identifier: Apache-2.0
#include "bench/fault_load.h"

#include <unistd.h>

#include <cstdio>
#include <thread>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "zrpc/errors.h"

namespace zrpc::faults {
namespace {

constexpr std::string_view kOutcomeNames[kOutcomeCount] = {
    "ok",     "Timeout", "PeerLost",  "NoConsumer", "RESOURCE_EXHAUSTED",
    "Closed", "other",   "no-outcome"};

std::atomic<int> left_behind{0};

}  // namespace

bool SleepUntil(absl::Time until, const std::atomic<bool>& stop) {
  while (!stop.load()) {
    const absl::Duration left = until - absl::Now();
    if (left <= absl::ZeroDuration()) return true;
    absl::SleepFor(std::min(left, absl::Milliseconds(20)));
  }
  return false;
}

std::string_view OutcomeName(Outcome o) { return kOutcomeNames[static_cast<int>(o)]; }

std::optional<Outcome> OutcomeFromName(std::string_view name) {
  for (int i = 0; i < kOutcomeCount; ++i) {
    if (kOutcomeNames[i] == name) return static_cast<Outcome>(i);
  }
  return std::nullopt;
}

CallRecord MakeRecord(absl::Time start, absl::Time end, absl::Duration timeout,
                      const absl::StatusOr<Value>& result) {
  CallRecord r{.start = start, .end = end};
  if (result.ok()) {
    r.outcome = Outcome::kOk;
    if (result->is_string()) r.host = result->AsString();
  } else {
    const absl::Status& s = result.status();
    r.host = GetErrorField(s, "host");
    const std::optional<ErrorKind> kind = GetErrorKind(s);
    if (kind == ErrorKind::kTimeout) {
      r.outcome = Outcome::kTimeout;
    } else if (kind == ErrorKind::kPeerLost) {
      r.outcome = Outcome::kPeerLost;
    } else if (kind == ErrorKind::kNoConsumer) {
      r.outcome = Outcome::kNoConsumer;
    } else if (kind == ErrorKind::kTransportClosed) {
      r.outcome = Outcome::kClosed;
    } else if (s.code() == absl::StatusCode::kResourceExhausted) {
      r.outcome = Outcome::kResourceExhausted;
    } else {
      r.outcome = Outcome::kOther;
      r.detail = absl::StatusCodeToString(s.code());
      if (kind) r.detail = absl::StrCat(std::string(ErrorKindName(*kind)), "/", r.detail);
    }
  }
  // However it ended, an answer later than deadline + 5 s is no answer.
  if (end - start > timeout + kOutcomeGrace) r.outcome = Outcome::kNoOutcome;
  return r;
}

std::string FormatRecordLine(const CallRecord& r) {
  const int64_t end = r.end == absl::InfiniteFuture() ? 0 : absl::ToUnixMicros(r.end);
  return absl::StrCat("C ", absl::ToUnixMicros(r.start), " ", end, " ",
                      std::string(OutcomeName(r.outcome)), " ", r.host.empty() ? "-" : r.host, " ",
                      r.detail.empty() ? "-" : r.detail);
}

std::optional<CallRecord> ParseRecordLine(std::string_view line) {
  std::vector<std::string> f = absl::StrSplit(absl::string_view(line.data(), line.size()), ' ');
  int64_t start = 0, end = 0;
  if (f.size() != 6 || f[0] != "C" || !absl::SimpleAtoi(f[1], &start) ||
      !absl::SimpleAtoi(f[2], &end)) {
    return std::nullopt;
  }
  const std::optional<Outcome> outcome = OutcomeFromName(f[3]);
  if (!outcome) return std::nullopt;
  return CallRecord{.start = absl::FromUnixMicros(start),
                    .end = end == 0 ? absl::InfiniteFuture() : absl::FromUnixMicros(end),
                    .outcome = *outcome,
                    .host = f[4] == "-" ? "" : f[4],
                    .detail = f[5] == "-" ? "" : f[5]};
}

int LeftBehind() { return left_behind.load(); }
void NoteLeftBehind() { left_behind.fetch_add(1); }

bool RunBounded(std::function<void()> fn, absl::Duration bound) {
  auto done = std::make_shared<absl::Notification>();
  std::thread t([fn = std::move(fn), done] {
    fn();
    done->Notify();
  });
  if (done->WaitForNotificationWithTimeout(bound)) {
    t.join();
    return true;
  }
  t.detach();
  NoteLeftBehind();
  return false;
}

// Everything the client threads touch; shared with them, so that a thread left behind in a call
// keeps it alive.
struct Load::Shared {
  explicit Shared(int threads)
      : in_flight_since(new std::atomic<int64_t>[threads]), done(new std::atomic<bool>[threads]) {
    for (int i = 0; i < threads; ++i) {
      in_flight_since[i] = 0;
      done[i] = false;
    }
  }
  std::shared_ptr<Transport> transport;
  std::function<void(const CallRecord&)> on_record;
  std::atomic<bool> stop{false};
  // Per thread: when its current call started (unix ns; 0 = between calls), and whether it ended.
  std::unique_ptr<std::atomic<int64_t>[]> in_flight_since;
  std::unique_ptr<std::atomic<bool>[]> done;
  std::vector<std::thread> threads;
  absl::Mutex mu;
  std::vector<CallRecord> records ABSL_GUARDED_BY(mu);
  bool closed ABSL_GUARDED_BY(mu) = false;  // Finish has returned: later records are dropped
};

namespace {

void RunClientThread(std::shared_ptr<Load::Shared> shared, const LoadSpec spec, int index) {
  const absl::Duration period =
      spec.rate > 0 ? absl::Seconds(1.0 / spec.rate) : absl::ZeroDuration();
  // Threads start spread over one period, so that calls do not come in bursts of `threads`.
  absl::Time next = absl::Now() + period * index / std::max(spec.threads, 1);
  while (!shared->stop.load()) {
    if (period > absl::ZeroDuration()) {
      if (!SleepUntil(next, shared->stop)) break;
      // Behind schedule (a slow call): skip the missed slots rather than catch up in a burst.
      next = std::max(next + period, absl::Now());
    }
    Message m{.method = spec.method};
    if (spec.method == "sleep") m.args = Object{{"ms", spec.sleep_ms}};
    const absl::Time start = absl::Now();
    shared->in_flight_since[index] = absl::ToUnixNanos(start);
    absl::StatusOr<Value> result =
        shared->transport->Call(Context(), spec.topic, std::move(m), {.timeout = spec.timeout});
    const absl::Time end = absl::Now();
    shared->in_flight_since[index] = 0;
    const CallRecord record = MakeRecord(start, end, spec.timeout, result);
    absl::MutexLock lock(&shared->mu);
    if (shared->closed) continue;
    // A soak client streams its records to the parent instead of keeping them, so that its RSS
    // (which the soak reports) is zrpc's, not this tool's.
    if (shared->on_record) {
      shared->on_record(record);
    } else {
      shared->records.push_back(record);
    }
  }
  shared->done[index] = true;
}

}  // namespace

std::unique_ptr<Load> Load::Start(std::shared_ptr<Transport> transport, LoadSpec spec,
                                  std::function<void(const CallRecord&)> on_record) {
  auto shared = std::make_shared<Shared>(spec.threads);
  shared->transport = std::move(transport);
  shared->on_record = std::move(on_record);
  for (int i = 0; i < spec.threads; ++i) {
    shared->threads.emplace_back(RunClientThread, shared, spec, i);
  }
  return std::unique_ptr<Load>(new Load(std::move(shared), std::move(spec)));
}

Load::~Load() {
  if (!finished_) Finish(FinishBound());
}

void Load::Stop() { shared_->stop = true; }

int Load::Overdue() const {
  const int64_t now = absl::ToUnixNanos(absl::Now());
  const int64_t limit = absl::ToInt64Nanoseconds(spec_.timeout + kOutcomeGrace);
  int n = 0;
  for (int i = 0; i < spec_.threads; ++i) {
    const int64_t since = shared_->in_flight_since[i];
    if (since != 0 && now - since > limit) ++n;
  }
  return n;
}

std::vector<CallRecord> Load::Finish(absl::Duration bound) {
  Stop();
  const absl::Time until = absl::Now() + bound;
  auto all_done = [&] {
    for (int i = 0; i < spec_.threads; ++i) {
      if (!shared_->done[i]) return false;
    }
    return true;
  };
  while (!all_done() && absl::Now() < until) absl::SleepFor(absl::Milliseconds(10));
  absl::MutexLock lock(&shared_->mu);
  for (int i = 0; i < spec_.threads; ++i) {
    if (shared_->done[i]) {
      shared_->threads[i].join();
      continue;
    }
    // Still inside a call after every deadline + 5 s had passed: no outcome. Left behind.
    const int64_t since = shared_->in_flight_since[i];
    if (since != 0) {
      shared_->records.push_back(CallRecord{.start = absl::FromUnixNanos(since),
                                            .end = absl::InfiniteFuture(),
                                            .outcome = Outcome::kNoOutcome});
    }
    shared_->threads[i].detach();
    NoteLeftBehind();
  }
  shared_->closed = true;
  finished_ = true;
  return shared_->records;
}

int RunClientProcess(const std::string& url, const LoadSpec& spec, absl::Duration duration,
                     const std::atomic<bool>& stop) {
  auto print = [](const std::string& line) {
    std::fwrite(line.data(), 1, line.size(), stdout);
    std::fputc('\n', stdout);
    std::fflush(stdout);
  };
  TransportOptions options;
  options.host = "faults-client-" + std::to_string(getpid());
  options.matchmaker = url;
  absl::StatusOr<std::unique_ptr<Transport>> created = Transport::Create(std::move(options));
  if (!created.ok()) {
    print(absl::StrCat("ERROR ", created.status().ToString()));
    return 1;
  }
  std::shared_ptr<Transport> transport = *std::move(created);
  print("READY");
  int calls = 0;
  auto load = Load::Start(transport, spec, [&](const CallRecord& r) {
    ++calls;  // under the load's lock
    print(FormatRecordLine(r));
  });
  SleepUntil(absl::Now() + duration, stop);
  int stuck = 0;
  for (const CallRecord& r : load->Finish(load->FinishBound())) {
    if (r.end != absl::InfiniteFuture()) continue;
    ++stuck;
    print(FormatRecordLine(r));
  }
  print(absl::StrCat("DONE calls=", calls + stuck, " no_outcome_in_flight=", stuck));
  load.reset();
  RunBounded([transport] { transport->Close(); }, absl::Seconds(15));
  return 0;
}

}  // namespace zrpc::faults
