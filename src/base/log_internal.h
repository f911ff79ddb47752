// SPDX-License-Identifier: Apache-2.0
// ZRPC_LOG(level, format, args...): formats only when the level is enabled.
// ZRPC_LOG_FIELDS(level, message, {"key", value}, ...): a message with key=value fields.
#ifndef ZRPC_SRC_BASE_LOG_INTERNAL_H_
#define ZRPC_SRC_BASE_LOG_INTERNAL_H_

#include <string>

#include "absl/strings/str_format.h"
#include "zrpc/log.h"

namespace zrpc::internal {

// Called once a process starts serving (a service binds, the sidecar starts): unless a level
// was chosen (ZRPC_LOG_LEVEL, SetLogLevel), INFO lines are written from now on (zrpc/log.h).
void NoteServing();

// The default sink's line: "<RFC 3339 UTC time> zrpc[<pid>:<tid>] <LEVEL>: <line>".
std::string FormatLogLine(LogLevel level, std::string_view line);

}  // namespace zrpc::internal

#define ZRPC_LOG(level, ...)                                                  \
  do {                                                                        \
    if (static_cast<int>(::zrpc::LogLevel::level) >=                          \
        static_cast<int>(::zrpc::GetLogLevel())) {                            \
      ::zrpc::Log(::zrpc::LogLevel::level, absl::StrFormat(__VA_ARGS__));     \
    }                                                                         \
  } while (0)

// The fields follow the message (braces do not protect commas in macro arguments):
//   ZRPC_LOG_FIELDS(kDebug, "call answered", {"msg_id", id}, {"outcome", "ok"});
#define ZRPC_LOG_FIELDS(level, message, ...)                                \
  do {                                                                      \
    if (static_cast<int>(::zrpc::LogLevel::level) >=                        \
        static_cast<int>(::zrpc::GetLogLevel())) {                          \
      ::zrpc::Log(::zrpc::LogLevel::level, message, {__VA_ARGS__});         \
    }                                                                       \
  } while (0)

#endif  // ZRPC_SRC_BASE_LOG_INTERNAL_H_
