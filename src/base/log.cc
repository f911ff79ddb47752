// SPDX-License-Identifier: Apache-2.0
#include <atomic>
#include <cctype>
#include <optional>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>

#include "absl/synchronization/mutex.h"
#include "src/base/escape.h"
#include "zrpc/log.h"

namespace zrpc {
namespace {

LogLevel LevelFromEnv() {
  const char* env = std::getenv("ZRPC_LOG_LEVEL");
  if (env == nullptr || *env == '\0') return LogLevel::kInfo;
  std::optional<LogLevel> level = ParseLogLevel(env);
  if (!level) {
    std::fprintf(stderr,
                 "zrpc WARNING: ZRPC_LOG_LEVEL=\"%s\" is not debug, info, warning (warn) or "
                 "error; using info\n",
                 internal::EscapeForTerminal(env).c_str());
    return LogLevel::kInfo;
  }
  return *level;
}

std::atomic<int>& Level() {
  static std::atomic<int> level(static_cast<int>(LevelFromEnv()));
  return level;
}

struct SinkHolder {
  absl::Mutex mu;
  std::shared_ptr<LogSink> sink ABSL_GUARDED_BY(mu);
};

SinkHolder& Holder() {
  static SinkHolder* holder = new SinkHolder;  // never destroyed: logging works during exit
  return *holder;
}

}  // namespace

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
  auto next = sink ? std::make_shared<LogSink>(std::move(sink)) : nullptr;
  SinkHolder& h = Holder();
  absl::MutexLock lock(&h.mu);
  h.sink = std::move(next);
}

void SetLogLevel(LogLevel level) { Level().store(static_cast<int>(level)); }
LogLevel GetLogLevel() { return static_cast<LogLevel>(Level().load(std::memory_order_relaxed)); }

void Log(LogLevel level, std::string_view line) {
  if (static_cast<int>(level) < Level().load(std::memory_order_relaxed)) return;
  // One event is one line, whatever bytes from the wire or a registry a caller formatted in.
  std::string escaped;
  if (!internal::IsTerminalSafe(line)) {
    escaped = internal::EscapeForTerminal(line);
    line = escaped;
  }
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
  std::string text = "zrpc ";
  text.append(LogLevelName(level));
  text.append(": ");
  text.append(line);
  text.push_back('\n');
  std::fwrite(text.data(), 1, text.size(), stderr);
}

}  // namespace zrpc
