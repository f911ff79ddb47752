// SPDX-License-Identifier: Apache-2.0
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "src/base/escape.h"
#include "src/base/log_internal.h"
#include "src/base/thread.h"
#include "zrpc/log.h"

namespace zrpc {
namespace {

// Which level applies (zrpc/log.h): one chosen (ZRPC_LOG_LEVEL, SetLogLevel), else INFO once
// the process serves or a sink is installed, else WARNING. `effective` is what the hot path
// reads; the rest changes rarely, under `mu`.
struct LevelState {
  absl::Mutex mu;
  std::optional<LogLevel> chosen ABSL_GUARDED_BY(mu);
  bool serving ABSL_GUARDED_BY(mu) = false;
  bool custom_sink ABSL_GUARDED_BY(mu) = false;
  std::atomic<int> effective{static_cast<int>(LogLevel::kWarning)};

  void Update() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    const LogLevel level =
        chosen ? *chosen : (serving || custom_sink ? LogLevel::kInfo : LogLevel::kWarning);
    effective.store(static_cast<int>(level));
  }
};

std::optional<LogLevel> LevelFromEnv() {
  const char* env = std::getenv("ZRPC_LOG_LEVEL");
  if (env == nullptr || *env == '\0') return std::nullopt;
  std::optional<LogLevel> level = ParseLogLevel(env);
  if (!level) {
    std::fputs(internal::FormatLogLine(
                   LogLevel::kWarning,
                   absl::StrCat("ZRPC_LOG_LEVEL=\"", internal::EscapeForTerminal(env),
                                "\" is not debug, info, warning (warn) or error; ignored"))
                   .c_str(),
               stderr);
  }
  return level;
}

LevelState& Levels() {
  static LevelState* state = [] {
    auto* s = new LevelState;  // never destroyed: logging works during exit
    absl::MutexLock lock(&s->mu);
    s->chosen = LevelFromEnv();
    s->Update();
    return s;
  }();
  return *state;
}

struct SinkHolder {
  absl::Mutex mu;
  std::shared_ptr<LogSink> sink ABSL_GUARDED_BY(mu);
};

SinkHolder& Holder() {
  static SinkHolder* holder = new SinkHolder;  // never destroyed: logging works during exit
  return *holder;
}

// The kernel's id of the calling thread (short, and what top -H and /proc show).
long ThreadId() {
  thread_local const long tid = syscall(SYS_gettid);
  return tid;
}

// A line as the sink gets it: escaped, and cut at kMaxLogLineBytes with the count of what was
// cut. Once something is cut, everything after it is only counted, so the line is a prefix.
class LineBuilder {
 public:
  // Text from anywhere (escaped), each byte of `extra` as \xNN too.
  void Escaped(std::string_view s, std::string_view extra = {}) {
    if (cut_ == 0) {
      cut_ += s.size() - internal::AppendEscaped(&text_, s, kBudget, extra);
    } else {
      cut_ += s.size();
    }
  }
  // Text that is printable already (a field's key, '=', '"').
  void Plain(std::string_view s) {
    if (cut_ == 0 && text_.size() + s.size() <= kBudget) {
      text_.append(s);
    } else {
      cut_ += s.size();
    }
  }
  std::string Finish() && {
    if (cut_ > 0) absl::StrAppend(&text_, "...[", cut_, " bytes cut]");
    return std::move(text_);
  }

 private:
  // Room for the longest marker, "...[18446744073709551615 bytes cut]".
  static constexpr size_t kBudget = internal::kMaxLogLineBytes - 40;
  std::string text_;
  size_t cut_ = 0;
};

// A field's value as one token: escaped like the line, '"' as \x22, quoted when it holds a
// space or '=' or is empty.
void AppendField(LineBuilder* out, const LogField& field) {
  std::string key = " ";
  for (char c : field.key) {
    const bool ok = std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.' || c == '-';
    key.push_back(ok ? c : '_');
  }
  key.push_back('=');
  out->Plain(key);
  const std::string_view value = field.value;
  const bool needs_quotes = value.empty() || value.find_first_of(" =") != std::string_view::npos;
  if (needs_quotes) out->Plain("\"");
  out->Escaped(value, "\"");
  if (needs_quotes) out->Plain("\"");
}

// Hands a line that is already one line of printable text to the sink (or stderr).
void Emit(LogLevel level, std::string_view line) {
  std::shared_ptr<LogSink> sink;
  {
    SinkHolder& h = Holder();
    absl::MutexLock lock(&h.mu);
    sink = h.sink;
  }
  if (sink) {
    (*sink)(level, line);
    return;
  }
  const std::string text = internal::FormatLogLine(level, line);
  std::fwrite(text.data(), 1, text.size(), stderr);
}

// The second a line is counted in: CLOCK_MONOTONIC_COARSE (a few nanoseconds through the
// vDSO; its resolution of a few milliseconds is plenty for one-second windows).
int64_t CoarseSecond() {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
  return ts.tv_sec;
}

// "server_engine.cc:519" for a call site, for the summary line.
std::string SiteName(const internal::LogSite& site) {
  if (site.file == nullptr) return "a caller of zrpc::Log";
  std::string_view file = site.file;
  if (size_t slash = file.rfind('/'); slash != std::string_view::npos) file.remove_prefix(slash + 1);
  return absl::StrCat(absl::string_view(file.data(), file.size()), ":", site.line);
}

// Writes the summary of the lines `site` suppressed, if any (whoever takes the count writes it,
// so it is written once).
void Summarize(internal::LogSite& site) {
  const uint32_t n = site.suppressed.exchange(0);
  if (n == 0) return;
  // The highest level the site ever had suppressed (a call site has one level).
  const auto level = static_cast<LogLevel>(site.suppressed_level.load());
  // Not rate-limited and whatever the level is now: the count must not be lost.
  internal::EmitLogLine(level, absl::StrCat(n, n == 1 ? " more line" : " more lines",
                                            " like this suppressed in the last second (",
                                            SiteName(site), ")"));
}

class SummaryWriter;
SummaryWriter& Summaries();

// Writes the summaries of sites that went quiet after suppressing lines (a busy site writes its
// own when its next second starts). Its thread starts with the first suppressed line, and then
// wakes only when a site queues itself.
class SummaryWriter {
 public:
  void Queue(internal::LogSite* site) {
    if (site->queued.exchange(true)) return;
    absl::MutexLock lock(&mu_);
    pending_.push_back(site);
    if (!started_) {
      started_ = true;
      internal::StartThread([this] { Run(); }).detach();  // lives as long as the process
      // A process that exits within the second still writes its counts.
      std::atexit([] { Summaries().Flush(); });
    }
  }

  // Writes every pending summary now.
  void Flush() {
    std::vector<internal::LogSite*> sites;
    {
      absl::MutexLock lock(&mu_);
      sites.swap(pending_);
    }
    for (internal::LogSite* site : sites) {
      site->queued.store(false);
      Summarize(*site);
    }
  }

 private:
  void Run() {
    while (true) {
      {
        absl::MutexLock lock(&mu_);
        mu_.Await(absl::Condition(
            +[](std::vector<internal::LogSite*>* p) { return !p->empty(); }, &pending_));
      }
      // Until the second the sites count in is over (and the coarse clock has seen it). The
      // sites stay in `pending_` meanwhile, so that Flush at exit finds them.
      struct timespec ts;
      clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
      absl::SleepFor(absl::Nanoseconds(1'000'000'000 - ts.tv_nsec) + absl::Milliseconds(20));
      std::vector<internal::LogSite*> sites;
      {
        absl::MutexLock lock(&mu_);
        sites.swap(pending_);
      }
      const int64_t now = CoarseSecond();
      std::vector<internal::LogSite*> still_busy;
      for (internal::LogSite* site : sites) {
        if (site->second.load() >= now) {
          still_busy.push_back(site);  // suppressing in this second too
          continue;
        }
        site->queued.store(false);
        Summarize(*site);
        // A line suppressed meanwhile found `queued` still set: look again next second.
        if (site->suppressed.load() > 0) Queue(site);
      }
      if (!still_busy.empty()) {
        absl::MutexLock lock(&mu_);
        pending_.insert(pending_.end(), still_busy.begin(), still_busy.end());
      }
    }
  }

  absl::Mutex mu_;
  std::vector<internal::LogSite*> pending_ ABSL_GUARDED_BY(mu_);
  bool started_ ABSL_GUARDED_BY(mu_) = false;
};

SummaryWriter& Summaries() {
  static SummaryWriter* writer = new SummaryWriter;  // never destroyed: its thread uses it
  return *writer;
}

// The sources of zrpc::Log lines: one site per caller (by return address), in a fixed table;
// callers beyond it share the last entry.
constexpr size_t kCallerSites = 128;
struct CallerTable {
  internal::LogSite sites[kCallerSites] = {
#define ZRPC_SITE4 {nullptr, 0}, {nullptr, 0}, {nullptr, 0}, {nullptr, 0}
#define ZRPC_SITE16 ZRPC_SITE4, ZRPC_SITE4, ZRPC_SITE4, ZRPC_SITE4
      ZRPC_SITE16, ZRPC_SITE16, ZRPC_SITE16, ZRPC_SITE16,
      ZRPC_SITE16, ZRPC_SITE16, ZRPC_SITE16, ZRPC_SITE16,
#undef ZRPC_SITE16
#undef ZRPC_SITE4
  };
};
constinit CallerTable caller_table;

internal::LogSite& CallerSite(void* return_address) {
  const auto key = reinterpret_cast<uintptr_t>(return_address);
  const size_t start = (key >> 4) * 0x9e3779b97f4a7c15ULL >> 57;  // 7 bits: 0..127
  for (size_t probe = 0; probe < 8; ++probe) {
    internal::LogSite& site = caller_table.sites[(start + probe) % (kCallerSites - 1)];
    uintptr_t owner = site.caller.load(std::memory_order_relaxed);
    if (owner == key) return site;
    if (owner == 0 && site.caller.compare_exchange_strong(owner, key)) return site;
    if (owner == key) return site;  // another thread claimed it for the same caller
  }
  return caller_table.sites[kCallerSites - 1];
}

}  // namespace

namespace internal {

void NoteServing() {
  LevelState& s = Levels();
  absl::MutexLock lock(&s.mu);
  s.serving = true;
  s.Update();
}

std::string FormatLogLine(LogLevel level, std::string_view line) {
  static const absl::TimeZone* utc = new absl::TimeZone(absl::UTCTimeZone());
  const std::string_view name = LogLevelName(level);
  return absl::StrCat(absl::FormatTime("%Y-%m-%dT%H:%M:%E6SZ", absl::Now(), *utc), " zrpc[",
                      getpid(), ":", ThreadId(), "] ", absl::string_view(name.data(), name.size()),
                      ": ", absl::string_view(line.data(), line.size()), "\n");
}

void EmitLogLine(LogLevel level, std::string_view line) {
  // One event is one line, whatever bytes from the wire or a registry a caller formatted in.
  if (line.size() <= kMaxLogLineBytes && IsTerminalSafe(line)) {
    Emit(level, line);
    return;
  }
  LineBuilder text;
  text.Escaped(line);
  Emit(level, std::move(text).Finish());
}

void EmitLogLine(LogLevel level, std::string_view line, std::initializer_list<LogField> fields) {
  LineBuilder text;
  text.Escaped(line);
  for (const LogField& field : fields) AppendField(&text, field);
  Emit(level, std::move(text).Finish());
}

bool AdmitLogLine(LogSite& site, LogLevel level) {
  const int64_t now = CoarseSecond();
  int64_t counted = site.second.load(std::memory_order_relaxed);
  if (counted != now && site.second.compare_exchange_strong(counted, now)) {
    // This thread opens the site's new second: it sums up the last one. (A line counted by
    // another thread in between lands in either second; the total stays right.)
    site.lines.store(0, std::memory_order_relaxed);
    Summarize(site);
  }
  if (level == LogLevel::kDebug) return true;
  const uint32_t limit = level == LogLevel::kError ? kErrorLinesPerSecond : kLogLinesPerSecond;
  if (site.lines.fetch_add(1, std::memory_order_relaxed) < limit) return true;
  int seen = site.suppressed_level.load(std::memory_order_relaxed);
  while (seen < static_cast<int>(level) &&
         !site.suppressed_level.compare_exchange_weak(seen, static_cast<int>(level))) {
  }
  if (site.suppressed.fetch_add(1) == 0) Summaries().Queue(&site);
  return false;
}

}  // namespace internal

std::optional<LogLevel> ParseLogLevel(std::string_view name) {
  std::string lower(name);
  for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (lower == "debug") return LogLevel::kDebug;
  if (lower == "info") return LogLevel::kInfo;
  if (lower == "warning" || lower == "warn") return LogLevel::kWarning;
  if (lower == "error") return LogLevel::kError;
  return std::nullopt;
}

std::string_view LogLevelName(LogLevel level) {
  switch (level) {
    case LogLevel::kDebug: return "DEBUG";
    case LogLevel::kInfo: return "INFO";
    case LogLevel::kWarning: return "WARNING";
    case LogLevel::kError: return "ERROR";
  }
  return "?";
}

void SetLogSink(LogSink sink) {
  const bool custom = static_cast<bool>(sink);
  auto next = custom ? std::make_shared<LogSink>(std::move(sink)) : nullptr;
  {
    SinkHolder& h = Holder();
    absl::MutexLock lock(&h.mu);
    h.sink = std::move(next);
  }
  LevelState& s = Levels();
  absl::MutexLock lock(&s.mu);
  s.custom_sink = custom;
  s.Update();
}

void SetLogLevel(LogLevel level) {
  LevelState& s = Levels();
  absl::MutexLock lock(&s.mu);
  s.chosen = level;
  s.Update();
}

LogLevel GetLogLevel() {
  return static_cast<LogLevel>(Levels().effective.load(std::memory_order_relaxed));
}

void Log(LogLevel level, std::string_view line) {
  if (static_cast<int>(level) < static_cast<int>(GetLogLevel())) return;
  if (!internal::AdmitLogLine(CallerSite(__builtin_return_address(0)), level)) return;
  internal::EmitLogLine(level, line);
}

void Log(LogLevel level, std::string_view line, std::initializer_list<LogField> fields) {
  if (static_cast<int>(level) < static_cast<int>(GetLogLevel())) return;
  if (!internal::AdmitLogLine(CallerSite(__builtin_return_address(0)), level)) return;
  internal::EmitLogLine(level, line, fields);
}

}  // namespace zrpc
