// SPDX-License-Identifier: Apache-2.0
// Text safe for a log line or a terminal: bytes from a peer, a registry or a file may hold
// newlines (forged log lines), terminal escape sequences or invalid UTF-8.
#ifndef ZRPC_SRC_BASE_ESCAPE_H_
#define ZRPC_SRC_BASE_ESCAPE_H_

#include <string>
#include <string_view>

namespace zrpc::internal {

// `s` with every control byte (C0, DEL, and the C1 range U+0080..U+009F) and every byte that is
// not part of a valid UTF-8 sequence written as \xNN, and backslash as \\ so the result reads
// back unambiguously. Printable ASCII and valid UTF-8 pass unchanged.
std::string EscapeForTerminal(std::string_view s);

// True when EscapeForTerminal(s) would return `s` unchanged.
bool IsTerminalSafe(std::string_view s);

}  // namespace zrpc::internal

#endif  // ZRPC_SRC_BASE_ESCAPE_H_
