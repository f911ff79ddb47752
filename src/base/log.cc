// SPDX-License-Identifier: Apache-2.0
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <optional>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "src/base/escape.h"
#include "src/base/log_internal.h"
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

// A field's value as one token: escaped like the line, '"' as \x22, quoted when it holds a
// space or '=' or is empty.
void AppendField(std::string* out, const LogField& field) {
  out->push_back(' ');
  for (char c : field.key) {
    const bool ok = std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.' || c == '-';
    out->push_back(ok ? c : '_');
  }
  out->push_back('=');
  std::string value = internal::EscapeForTerminal(field.value);
  std::string quoted;
  bool needs_quotes = value.empty();
  for (char c : value) {
    if (c == '"') {
      quoted.append("\\x22");
      continue;
    }
    if (c == ' ' || c == '=') needs_quotes = true;
    quoted.push_back(c);
  }
  if (needs_quotes) out->push_back('"');
  out->append(quoted);
  if (needs_quotes) out->push_back('"');
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
  // One event is one line, whatever bytes from the wire or a registry a caller formatted in.
  std::string escaped;
  if (!internal::IsTerminalSafe(line)) {
    escaped = internal::EscapeForTerminal(line);
    line = escaped;
  }
  Emit(level, line);
}

void Log(LogLevel level, std::string_view line, std::initializer_list<LogField> fields) {
  if (static_cast<int>(level) < static_cast<int>(GetLogLevel())) return;
  std::string text =
      internal::IsTerminalSafe(line) ? std::string(line) : internal::EscapeForTerminal(line);
  for (const LogField& field : fields) AppendField(&text, field);
  Emit(level, text);
}

}  // namespace zrpc
