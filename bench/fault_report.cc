// SPDX-License-Identifier: Apache-2.0
#include "bench/fault_report.h"

#include <algorithm>
#include <array>
#include <iostream>
#include <map>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "zrpc/value.h"

namespace zrpc::faults {
namespace {

bool IsError(const CallRecord& c) { return c.outcome != Outcome::kOk; }

// A call that went to `host`: it answered, or the call failed naming it or naming nobody, or it
// stalled (took longer than `stall`: it waited for the faulty instance — a connect timeout
// before another instance answered, silence before PeerLost). A NoConsumer or TransportClosed
// call was never sent to any instance.
bool RoutedTo(const CallRecord& c, const std::string& host, absl::Duration stall) {
  if (c.outcome == Outcome::kNoConsumer || c.outcome == Outcome::kClosed) return false;
  if (c.end - c.start > stall) return true;
  if (c.outcome == Outcome::kOk) return c.host == host;
  return c.host == host || c.host.empty();
}

absl::Time FirstFault(const ScenarioResult& r) {
  return r.events.empty() ? r.end : r.events.front().fault;
}

double OkPerSecond(const std::vector<CallRecord>& records, absl::Time from, absl::Time to) {
  if (to <= from) return 0;
  int64_t ok = 0;
  for (const CallRecord& c : records) {
    if (c.outcome == Outcome::kOk && c.end >= from && c.end < to) ++ok;
  }
  return ok / absl::ToDoubleSeconds(to - from);
}

std::string Seconds(absl::Duration d) {
  return absl::StrFormat("%.2f s", absl::ToDoubleSeconds(d));
}

// One figure per fault: the value itself for one fault; median and maximum for many.
std::string Figure(const std::vector<std::optional<absl::Duration>>& values, const char* none) {
  std::vector<absl::Duration> have;
  for (const auto& v : values) {
    if (v) have.push_back(*v);
  }
  if (values.size() == 1) return have.empty() ? none : Seconds(have[0]);
  if (have.empty()) return absl::StrCat(none, " (", values.size(), " faults)");
  std::sort(have.begin(), have.end());
  return absl::StrFormat("med %.2f / max %.2f s (%d of %d faults)",
                         absl::ToDoubleSeconds(have[have.size() / 2]),
                         absl::ToDoubleSeconds(have.back()), have.size(), values.size());
}

std::string OutFigure(const ScenarioResult& r, const std::vector<EventMetrics>& m) {
  if (m.empty() || r.events[0].host.empty()) return "-";
  std::vector<std::optional<absl::Duration>> out;
  int never = 0;
  for (const EventMetrics& e : m) {
    out.push_back(e.never_out ? std::nullopt : e.out);
    never += e.never_out;
  }
  if (m.size() == 1 && never) {
    return absl::StrCat("never (", Seconds(r.events[0].recover - r.events[0].fault), ")");
  }
  std::string s = Figure(out, "never");
  if (m.size() > 1 && never) absl::StrAppend(&s, ", never in ", never);
  return s;
}

std::string StatsCell(const ProcStats& a, const ProcStats& b, bool rss) {
  auto one = [rss](const ProcStats& p) -> std::string {
    if (rss) return p.rss_kb < 0 ? "-" : absl::StrFormat("%.0f", p.rss_kb / 1024.0);
    return p.fds < 0 ? "-" : std::to_string(p.fds);
  };
  if (one(a) == "-" && one(b) == "-") return "-";
  return one(a) + "→" + one(b);
}

Value StatsJson(const ProcStats& p) { return Object{{"fds", p.fds}, {"rss_kb", p.rss_kb}}; }

Value DurationsJson(const std::vector<EventMetrics>& m,
                    std::optional<absl::Duration> EventMetrics::*field) {
  Array out;
  for (const EventMetrics& e : m) {
    const auto& v = e.*field;
    if (v) {
      out.emplace_back(absl::ToDoubleSeconds(*v));
    } else {
      out.emplace_back();
    }
  }
  return out;
}

}  // namespace

absl::Duration StallThreshold(const ScenarioResult& r) {
  absl::Duration slowest;
  for (const CallRecord& c : r.records) {
    if (c.outcome == Outcome::kOk && c.end >= r.before && c.end < FirstFault(r)) {
      slowest = std::max(slowest, c.end - c.start);
    }
  }
  return slowest + absl::Seconds(1);
}

std::vector<EventMetrics> MeasureEvents(const ScenarioResult& r) {
  const absl::Duration stall = StallThreshold(r);
  std::vector<EventMetrics> out;
  for (size_t i = 0; i < r.events.size(); ++i) {
    const FaultEvent& e = r.events[i];
    const absl::Time horizon = i + 1 < r.events.size() ? r.events[i + 1].fault : r.end;
    EventMetrics m;
    std::optional<absl::Time> last_routed, first_back;
    for (const CallRecord& c : r.records) {
      if (IsError(c) && c.end >= e.fault && c.end < horizon && c.end != absl::InfiniteFuture()) {
        if (!m.first_error || c.end - e.fault < *m.first_error) m.first_error = c.end - e.fault;
      }
      if (e.host.empty()) continue;
      if (c.start >= e.fault && c.start < e.recover && RoutedTo(c, e.host, stall)) {
        if (!last_routed || c.start > *last_routed) last_routed = c.start;
      }
      if (c.outcome == Outcome::kOk && c.host == e.host && c.start >= e.recover &&
          c.end < horizon) {
        if (!first_back || c.end < *first_back) first_back = c.end;
      }
    }
    if (!e.host.empty()) {
      m.out = last_routed ? *last_routed - e.fault : absl::ZeroDuration();
      m.never_out = last_routed && e.recover - e.fault > absl::Seconds(2) &&
                    *last_routed >= e.recover - absl::Seconds(1);
      if (first_back) m.back = *first_back - e.recover;
    }
    out.push_back(m);
  }
  return out;
}

void PrintHeader(bool json) {
  if (json) return;
  std::cout
      << "| matchmaker | scenario | calls | no outcome | ok | Timeout | PeerLost | NoConsumer "
         "| RESOURCE_EXHAUSTED | Closed | other | fault → 1st error | out of rotation "
         "| back after restart | ok/s before / during / after | fds client / services / "
         "sidecar | RSS MiB client / services / sidecar | notes |\n"
      << "|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|---|---|---|---|---|---|---|\n"
      << std::flush;
}

void PrintRow(const ScenarioResult& r, bool json) {
  std::array<int64_t, kOutcomeCount> counts{};
  std::array<absl::Duration, kOutcomeCount> slowest{};
  std::map<std::string, int64_t> other;
  for (const CallRecord& c : r.records) {
    const int i = static_cast<int>(c.outcome);
    ++counts[i];
    if (c.end != absl::InfiniteFuture()) slowest[i] = std::max(slowest[i], c.end - c.start);
    if (c.outcome == Outcome::kOther) ++other[c.detail];
  }
  std::vector<std::string> notes = r.notes;
  // How long the failed calls waited for their error: at once, or until a deadline.
  std::vector<std::string> waits;
  if (counts[0] > 0) notes.push_back("slowest ok: " + Seconds(slowest[0]));
  if (!r.events.empty()) {
    const absl::Duration stall = StallThreshold(r);
    int stalled = 0;
    for (const CallRecord& c : r.records) {
      stalled += c.start >= r.events.front().fault && c.start < r.events.back().recover &&
                 c.end - c.start > stall;
    }
    if (stalled > 0) notes.push_back(absl::StrCat(stalled, " calls stalled > ", Seconds(stall)));
  }
  for (int i = 1; i < kOutcomeCount; ++i) {
    if (counts[i] == 0 || static_cast<Outcome>(i) == Outcome::kNoOutcome) continue;
    waits.push_back(
        absl::StrCat(std::string(OutcomeName(static_cast<Outcome>(i))), " ", Seconds(slowest[i])));
  }
  if (!waits.empty()) notes.push_back("slowest error: " + absl::StrJoin(waits, ", "));
  if (!other.empty()) {
    std::vector<std::string> parts;
    for (const auto& [what, n] : other) parts.push_back(absl::StrCat(what, "×", n));
    notes.push_back("other: " + absl::StrJoin(parts, ", "));
  }
  if (r.error == "interrupted") {
    notes.insert(notes.begin(), "INTERRUPTED (partial figures)");
  } else if (!r.error.empty()) {
    notes.insert(notes.begin(), "NOT RUN: " + r.error);
  }
  const std::vector<EventMetrics> m = MeasureEvents(r);
  const absl::Time first_fault = FirstFault(r);
  const absl::Time last_recover = r.events.empty() ? r.end : r.events.back().recover;
  const double before = OkPerSecond(r.records, r.before, first_fault);
  const double during = OkPerSecond(r.records, first_fault, last_recover);
  const double after = OkPerSecond(r.records, last_recover, r.end);
  auto count = [&](Outcome o) { return counts[static_cast<int>(o)]; };

  if (json) {
    Object errors;
    for (int i = 0; i < kOutcomeCount; ++i)
      errors.Set(std::string(OutcomeName(static_cast<Outcome>(i))), counts[i]);
    Object other_json;
    for (const auto& [what, n] : other) other_json.Set(what, n);
    Array notes_json(notes.begin(), notes.end());
    Value row =
        Object{{"matchmaker", r.matchmaker},
               {"scenario", r.scenario},
               {"calls", static_cast<int64_t>(r.records.size())},
               {"outcomes", std::move(errors)},
               {"other", std::move(other_json)},
               {"fault_to_first_error_s", DurationsJson(m, &EventMetrics::first_error)},
               {"out_of_rotation_s", DurationsJson(m, &EventMetrics::out)},
               {"never_out_of_rotation",
                [&] {
                  Array a;
                  for (const EventMetrics& e : m) a.emplace_back(e.never_out);
                  return Value(std::move(a));
                }()},
               {"back_after_restart_s", DurationsJson(m, &EventMetrics::back)},
               {"ok_per_s", Object{{"before", before}, {"during", during}, {"after", after}}},
               {"start", Object{{"client", StatsJson(r.at_start.client)},
                                {"services", StatsJson(r.at_start.services)},
                                {"sidecar", StatsJson(r.at_start.sidecar)}}},
               {"end", Object{{"client", StatsJson(r.at_end.client)},
                              {"services", StatsJson(r.at_end.services)},
                              {"sidecar", StatsJson(r.at_end.sidecar)}}},
               {"notes", Value(std::move(notes_json))},
               {"error", r.error}};
    std::cout << ToJson(row).value_or("{}") << std::endl;
    return;
  }
  std::vector<std::optional<absl::Duration>> first, back;
  for (const EventMetrics& e : m) {
    first.push_back(e.first_error);
    back.push_back(e.back);
  }
  const bool has_instance = !r.events.empty() && !r.events[0].host.empty();
  std::cout << absl::StrFormat(
                   "| %s | %s | %d | %d | %d | %d | %d | %d | %d | %d | %d | %s | %s | %s | "
                   "%.0f / %.0f / %.0f | %s / %s / %s | %s / %s / %s | %s |",
                   r.matchmaker, r.scenario, r.records.size(), count(Outcome::kNoOutcome),
                   count(Outcome::kOk), count(Outcome::kTimeout), count(Outcome::kPeerLost),
                   count(Outcome::kNoConsumer), count(Outcome::kResourceExhausted),
                   count(Outcome::kClosed), count(Outcome::kOther),
                   r.events.empty() ? "-" : Figure(first, "none"), OutFigure(r, m),
                   has_instance ? Figure(back, "never") : "-", before, during, after,
                   StatsCell(r.at_start.client, r.at_end.client, false),
                   StatsCell(r.at_start.services, r.at_end.services, false),
                   StatsCell(r.at_start.sidecar, r.at_end.sidecar, false),
                   StatsCell(r.at_start.client, r.at_end.client, true),
                   StatsCell(r.at_start.services, r.at_end.services, true),
                   StatsCell(r.at_start.sidecar, r.at_end.sidecar, true),
                   absl::StrJoin(notes, "; "))
            << std::endl;
}

}  // namespace zrpc::faults
