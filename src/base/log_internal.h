// SPDX-License-Identifier: Apache-2.0
// ZRPC_LOG(level, format, args...): formats only when the level is enabled.
// ZRPC_LOG_FIELDS(level, message, {"key", value}, ...): a message with key=value fields.
//
// Each call site is rate-limited on its own (LogSite): at most kLogLinesPerSecond lines a second
// (kErrorLinesPerSecond for errors, no limit for debug lines, which an operator turns on to see
// everything); the lines beyond are counted and summed up in one line ("N more lines like this
// suppressed in the last second (file.cc:123)") at the level of the lines suppressed, once that
// second is over: written by the site's next line, or by a background thread if the site went
// quiet, or at exit. Every line is escaped (src/base/escape.h) and cut at kMaxLogLineBytes.
#ifndef ZRPC_SRC_BASE_LOG_INTERNAL_H_
#define ZRPC_SRC_BASE_LOG_INTERNAL_H_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>

#include "absl/strings/str_format.h"
#include "zrpc/log.h"

namespace zrpc::internal {

// Called once a process starts serving (a service binds, the sidecar starts): unless a level
// was chosen (ZRPC_LOG_LEVEL, SetLogLevel), INFO lines are written from now on (zrpc/log.h).
void NoteServing();

// The default sink's line: "<RFC 3339 UTC time> zrpc[<pid>:<tid>] <LEVEL>: <line>".
std::string FormatLogLine(LogLevel level, std::string_view line);

// Lines one source (a ZRPC_LOG call site, a caller of zrpc::Log) may write each second.
inline constexpr uint32_t kLogLinesPerSecond = 20;
inline constexpr uint32_t kErrorLinesPerSecond = 100;
// A line (the message with its fields, escaped) longer than this is cut, and ends with
// "...[N bytes cut]" (N: bytes of the message and fields not shown, before escaping).
inline constexpr size_t kMaxLogLineBytes = 8192;

// One source of log lines and its count for the current second. Constant-initialized, so a
// function-local static one costs no guard; never destroyed while the process logs (a static of
// the call site, or an entry of log.cc's table of callers). Thread-safe: atomics only.
struct LogSite {
  constexpr LogSite(const char* file_name, int line_number) : file(file_name), line(line_number) {}
  const char* const file;  // nullptr for a caller of zrpc::Log
  const int line;
  std::atomic<int64_t> second{-1};  // the second counted (coarse monotonic clock)
  std::atomic<uint32_t> lines{0};   // lines asked for in `second`
  std::atomic<uint32_t> suppressed{0};
  std::atomic<int> suppressed_level{0};  // the highest level suppressed so far
  std::atomic<bool> queued{false};       // on the background thread's list
  std::atomic<uintptr_t> caller{0};      // which caller of zrpc::Log (log.cc's table)
};

// Counts a line of `site` at `level`: true when it may be written, false when it is suppressed
// (counted for the summary). Writes the summary of the site's previous second first, when due.
bool AdmitLogLine(LogSite& site, LogLevel level);
// Writes a line (escaped and cut, not rate-limited) whatever the level (callers check it).
void EmitLogLine(LogLevel level, std::string_view line);
void EmitLogLine(LogLevel level, std::string_view line, std::initializer_list<LogField> fields);

}  // namespace zrpc::internal

#define ZRPC_LOG(level, ...)                                                          \
  do {                                                                                \
    if (static_cast<int>(::zrpc::LogLevel::level) >=                                  \
        static_cast<int>(::zrpc::GetLogLevel())) {                                    \
      static constinit ::zrpc::internal::LogSite zrpc_log_site(__FILE__, __LINE__);   \
      if (::zrpc::internal::AdmitLogLine(zrpc_log_site, ::zrpc::LogLevel::level)) {   \
        ::zrpc::internal::EmitLogLine(::zrpc::LogLevel::level,                        \
                                      absl::StrFormat(__VA_ARGS__));                  \
      }                                                                               \
    }                                                                                 \
  } while (0)

// The fields follow the message (braces do not protect commas in macro arguments):
//   ZRPC_LOG_FIELDS(kDebug, "call answered", {"msg_id", id}, {"outcome", "ok"});
#define ZRPC_LOG_FIELDS(level, message, ...)                                          \
  do {                                                                                \
    if (static_cast<int>(::zrpc::LogLevel::level) >=                                  \
        static_cast<int>(::zrpc::GetLogLevel())) {                                    \
      static constinit ::zrpc::internal::LogSite zrpc_log_site(__FILE__, __LINE__);   \
      if (::zrpc::internal::AdmitLogLine(zrpc_log_site, ::zrpc::LogLevel::level)) {   \
        ::zrpc::internal::EmitLogLine(::zrpc::LogLevel::level, message, {__VA_ARGS__}); \
      }                                                                               \
    }                                                                                 \
  } while (0)

#endif  // ZRPC_SRC_BASE_LOG_INTERNAL_H_
