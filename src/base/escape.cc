// SPDX-License-Identifier: Apache-2.0
#include "src/base/escape.h"

#include <cstdint>

namespace zrpc::internal {
namespace {

// Length of the valid, printable UTF-8 sequence starting at s[i] (0 when it is not one).
size_t PrintableSequence(std::string_view s, size_t i) {
  const auto b = [&](size_t k) { return static_cast<uint8_t>(s[k]); };
  const uint8_t c = b(i);
  if (c >= 0x20 && c < 0x7f) return 1;
  size_t len;
  uint32_t cp;
  if (c >= 0xc2 && c <= 0xdf) {
    len = 2;
    cp = c & 0x1f;
  } else if (c >= 0xe0 && c <= 0xef) {
    len = 3;
    cp = c & 0x0f;
  } else if (c >= 0xf0 && c <= 0xf4) {
    len = 4;
    cp = c & 0x07;
  } else {
    return 0;  // ASCII control, DEL, a stray continuation byte, or never valid
  }
  if (i + len > s.size()) return 0;
  for (size_t k = 1; k < len; ++k) {
    if ((b(i + k) & 0xc0) != 0x80) return 0;
    cp = (cp << 6) | (b(i + k) & 0x3f);
  }
  if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10ffff))) return 0;
  if (cp >= 0xd800 && cp <= 0xdfff) return 0;  // surrogates
  if (cp >= 0x80 && cp <= 0x9f) return 0;      // C1 controls
  return len;
}

}  // namespace

bool IsTerminalSafe(std::string_view s) {
  for (size_t i = 0; i < s.size();) {
    if (s[i] == '\\') return false;
    const size_t n = PrintableSequence(s, i);
    if (n == 0) return false;
    i += n;
  }
  return true;
}

std::string EscapeForTerminal(std::string_view s) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size();) {
    if (s[i] == '\\') {
      out.append("\\\\");
      ++i;
      continue;
    }
    const size_t n = PrintableSequence(s, i);
    if (n > 0) {
      out.append(s.substr(i, n));
      i += n;
      continue;
    }
    const auto c = static_cast<uint8_t>(s[i++]);
    out.append("\\x");
    out.push_back(kHex[c >> 4]);
    out.push_back(kHex[c & 0xf]);
  }
  return out;
}

}  // namespace zrpc::internal
