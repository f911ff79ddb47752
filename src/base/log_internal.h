// SPDX-License-Identifier: Apache-2.0
// ZRPC_LOG(level, format, args...): formats only when the level is enabled.
#ifndef ZRPC_SRC_BASE_LOG_INTERNAL_H_
#define ZRPC_SRC_BASE_LOG_INTERNAL_H_

#include "absl/strings/str_format.h"
#include "zrpc/log.h"

#define ZRPC_LOG(level, ...)                                                  \
  do {                                                                        \
    if (static_cast<int>(::zrpc::LogLevel::level) >=                          \
        static_cast<int>(::zrpc::GetLogLevel())) {                            \
      ::zrpc::Log(::zrpc::LogLevel::level, absl::StrFormat(__VA_ARGS__));     \
    }                                                                         \
  } while (0)

#endif  // ZRPC_SRC_BASE_LOG_INTERNAL_H_
