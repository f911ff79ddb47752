// SPDX-License-Identifier: Apache-2.0
// zrpc/log.h — where zrpc's log lines go.
//
// zrpc writes one line per event (never whole payloads above kDebug) to a sink. The default sink
// writes "zrpc <LEVEL>: <text>" to stderr. Install your own to route lines elsewhere or capture
// them in tests:
//
//   zrpc::SetLogSink([](zrpc::LogLevel level, std::string_view line) { my_log(level, line); });
//   zrpc::SetLogLevel(zrpc::LogLevel::kWarning);  // drop debug and info lines
//
// Every line reaches the sink as one line of printable text: control bytes, invalid UTF-8 and
// backslashes in it are written as \xNN and \\ (bytes from a peer or a registry cannot forge
// lines or send terminal escapes).
//
// Thread-safe: the sink may be called from any zrpc thread at once, and must be thread-safe.
#ifndef ZRPC_LOG_H_
#define ZRPC_LOG_H_

#include <functional>
#include <optional>
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
// Lines below `level` are dropped before they are formatted. Default: kInfo, or the level named
// by the environment variable ZRPC_LOG_LEVEL (debug, info, warning or warn, error; any case; an
// unknown value is reported on stderr and means info).
void SetLogLevel(LogLevel level);
LogLevel GetLogLevel();

// Writes one line at `level` (for services that want their lines in the same place).
void Log(LogLevel level, std::string_view line);

}  // namespace zrpc

#endif  // ZRPC_LOG_H_
