// SPDX-License-Identifier: Apache-2.0
// zrpc/log.h — where zrpc's log lines go, and at which level.
//
// zrpc writes one line per event (never whole payloads above kDebug) to a sink. The default sink
// writes to stderr, one line per event:
//
//   2026-11-30T17:36:12.048213Z zrpc[4242:4250] INFO: service compute listening host=n5
//   ^ RFC 3339 UTC, microseconds  ^pid ^thread   ^level ^message        ^key=value fields
//
// The thread is the kernel's thread id (as `top -H` and /proc/PID/task show it). Field values
// that hold a space or '=' (or are empty) are written in double quotes; a '"' inside is \x22.
// Install your own sink to route lines elsewhere or capture them in tests (it gets the level
// and the message with its fields, without the time/pid/thread prefix):
//
//   zrpc::SetLogSink([](zrpc::LogLevel level, std::string_view line) { my_log(level, line); });
//   zrpc::SetLogLevel(zrpc::LogLevel::kWarning);  // drop debug and info lines
//
// Default level: kInfo in processes that serve (a zrpc service, the matchmaker sidecar) and
// whenever a sink is installed; kWarning in client-only processes writing to stderr, so that a
// program that merely calls services sees only what needs attention. ZRPC_LOG_LEVEL or
// SetLogLevel override both.
//
// Every line reaches the sink as one line of printable text: control bytes (C0, DEL, C1),
// invalid UTF-8 and backslashes in it are written as \xNN and \\, and the invisible Unicode
// format, bidi and separator characters (U+061C, U+180E, U+200B..U+200F, U+2028..U+202E,
// U+2060..U+206F, U+FEFF, U+FFF9..U+FFFB) as \u{XXXX}; other UTF-8 (accents, CJK) is kept.
// Bytes from a peer or a registry cannot forge lines, reorder what a terminal shows, or send
// terminal escapes. A line longer than 8 KiB once escaped is cut and ends with
// "...[N bytes cut]" (N: bytes of the message and fields not shown).
//
// Lines are rate-limited per source: each zrpc call site, and each caller of Log() (by the code
// address it is called from, so a loop that logs is one source whatever its text), writes at
// most 20 lines a second (errors: 100; debug lines are not limited). The lines beyond are
// counted and summed up in one line at their level once that second is over (or at exit), e.g.
// "37 more lines like this suppressed in the last second (a caller of zrpc::Log)".
//
// Thread-safe: the sink may be called from any zrpc thread at once, and must be thread-safe.
#ifndef ZRPC_LOG_H_
#define ZRPC_LOG_H_

#include <functional>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>

namespace zrpc {

enum class LogLevel { kDebug = 0, kInfo = 1, kWarning = 2, kError = 3 };

// "DEBUG", "INFO", "WARNING", "ERROR".
std::string_view LogLevelName(LogLevel level);
// The level named `name` in any case: "debug", "info", "warning" or "warn", "error".
std::optional<LogLevel> ParseLogLevel(std::string_view name);

// Receives each log line (no trailing newline).
using LogSink = std::function<void(LogLevel level, std::string_view line)>;

// Replaces the sink; nullptr restores the default (stderr). Lines being written while the sink
// changes go to the old or the new sink.
void SetLogSink(LogSink sink);
// Lines below `level` are dropped before they are formatted; this overrides the default and
// ZRPC_LOG_LEVEL. Default: the level named by the environment variable ZRPC_LOG_LEVEL (debug,
// info, warning or warn, error; any case; an unknown value is reported on stderr and ignored),
// else kInfo for serving processes or with a sink installed, else kWarning (see above).
void SetLogLevel(LogLevel level);
LogLevel GetLogLevel();

// One `key=value` field of a log line, e.g. {"msg_id", id}.
struct LogField {
  std::string_view key;
  std::string value;
};

// Writes one line at `level` (for services that want their lines in the same place): escaped,
// cut and rate-limited per caller as described above. Does not block beyond the sink.
void Log(LogLevel level, std::string_view line);
// The same, followed by " key=value" for each field, e.g.
//   zrpc::Log(zrpc::LogLevel::kInfo, "order placed", {{"order", id}, {"items", "3"}});
void Log(LogLevel level, std::string_view line, std::initializer_list<LogField> fields);

}  // namespace zrpc

#endif  // ZRPC_LOG_H_
