// SPDX-License-Identifier: Apache-2.0
// Text safe for a log line or a terminal: bytes from a peer, a registry or a file may hold
// newlines (forged log lines), terminal escape sequences or invalid UTF-8.
#ifndef ZRPC_SRC_BASE_ESCAPE_H_
#define ZRPC_SRC_BASE_ESCAPE_H_

#include <string>
#include <string_view>

namespace zrpc::internal {

// `s` with every control byte (C0, DEL, and the C1 range U+0080..U+009F) and every byte that is
// not part of a valid UTF-8 sequence written as \xNN, every Unicode format, bidi and line
// separator character (IsInvisibleFormatChar) written as \u{XXXX}, and backslash as \\ so the
// result reads back unambiguously. Printable ASCII and other valid UTF-8 (accents, CJK, emoji)
// pass unchanged.
std::string EscapeForTerminal(std::string_view s);

// True when EscapeForTerminal(s) would return `s` unchanged.
bool IsTerminalSafe(std::string_view s);

// True for the code points that are invisible or reorder the text around them, and so could
// make a line read as something else: U+061C, U+180E, U+200B..U+200F, U+2028..U+202E,
// U+2060..U+206F, U+FEFF, U+FFF9..U+FFFB.
bool IsInvisibleFormatChar(char32_t cp);

// Appends EscapeForTerminal(s) to `*out`, each byte of `extra` written as \xNN too (a log
// field's '"'), stopping before the escape of a character would take `out` past `limit` bytes
// (an escape or a UTF-8 sequence is never split). Returns how many bytes of `s` were consumed:
// s.size() unless it stopped.
size_t AppendEscaped(std::string* out, std::string_view s, size_t limit,
                     std::string_view extra = {});

// The most of a peer's bytes (a method, a topic, an argument name, a key) an error text quotes.
inline constexpr size_t kMaxEchoBytes = 128;
// `s` as an error answer may quote it: whole when it has at most `max` bytes, else its first
// bytes (never splitting a UTF-8 sequence) and "...". So that no answer grows with what a peer
// sent (a refusal that quoted a 4 MiB method name several times was 8 times the request).
std::string BoundedEcho(std::string_view s, size_t max = kMaxEchoBytes);

}  // namespace zrpc::internal

#endif  // ZRPC_SRC_BASE_ESCAPE_H_
