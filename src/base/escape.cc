// SPDX-License-Identifier: Apache-2.0
#include "src/base/escape.h"

#include <cstdint>

namespace zrpc::internal {
namespace {

constexpr char kHex[] = "0123456789abcdef";
constexpr char kUpperHex[] = "0123456789ABCDEF";

// The valid, non-control UTF-8 sequence starting at s[i]: its length (0 when it is not one) and
// code point.
struct Sequence {
  size_t len = 0;
  char32_t cp = 0;
};

Sequence PrintableSequence(std::string_view s, size_t i) {
  const auto b = [&](size_t k) { return static_cast<uint8_t>(s[k]); };
  const uint8_t c = b(i);
  if (c >= 0x20 && c < 0x7f) return {1, c};
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
    return {};  // ASCII control, DEL, a stray continuation byte, or never valid
  }
  if (i + len > s.size()) return {};
  for (size_t k = 1; k < len; ++k) {
    if ((b(i + k) & 0xc0) != 0x80) return {};
    cp = (cp << 6) | (b(i + k) & 0x3f);
  }
  if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10ffff))) return {};
  if (cp >= 0xd800 && cp <= 0xdfff) return {};  // surrogates
  if (cp >= 0x80 && cp <= 0x9f) return {};      // C1 controls
  return {len, cp};
}

}  // namespace

bool IsInvisibleFormatChar(char32_t cp) {
  return cp == 0x061c || cp == 0x180e || (cp >= 0x200b && cp <= 0x200f) ||
         (cp >= 0x2028 && cp <= 0x202e) || (cp >= 0x2060 && cp <= 0x206f) || cp == 0xfeff ||
         (cp >= 0xfff9 && cp <= 0xfffb);
}

bool IsTerminalSafe(std::string_view s) {
  for (size_t i = 0; i < s.size();) {
    if (s[i] == '\\') return false;
    const Sequence seq = PrintableSequence(s, i);
    if (seq.len == 0 || IsInvisibleFormatChar(seq.cp)) return false;
    i += seq.len;
  }
  return true;
}

size_t AppendEscaped(std::string* out, std::string_view s, size_t limit, std::string_view extra) {
  size_t i = 0;
  while (i < s.size()) {
    const Sequence seq = PrintableSequence(s, i);
    char unit[12];  // the longest escape: \u{XXXX} (format characters are all in the BMP)
    size_t n = 0;
    size_t consumed = 1;
    if (s[i] == '\\') {
      unit[n++] = '\\';
      unit[n++] = '\\';
    } else if (seq.len > 0 && IsInvisibleFormatChar(seq.cp)) {
      unit[n++] = '\\';
      unit[n++] = 'u';
      unit[n++] = '{';
      for (int shift = 12; shift >= 0; shift -= 4) unit[n++] = kUpperHex[(seq.cp >> shift) & 0xf];
      unit[n++] = '}';
      consumed = seq.len;
    } else if (seq.len > 0 && (seq.len > 1 || extra.find(s[i]) == std::string_view::npos)) {
      n = 0;
      consumed = seq.len;
    } else {
      const auto c = static_cast<uint8_t>(s[i]);
      unit[n++] = '\\';
      unit[n++] = 'x';
      unit[n++] = kHex[c >> 4];
      unit[n++] = kHex[c & 0xf];
    }
    const size_t written = n > 0 ? n : consumed;
    if (out->size() + written > limit) break;
    if (n > 0) {
      out->append(unit, n);
    } else {
      out->append(s.substr(i, consumed));
    }
    i += consumed;
  }
  return i;
}

std::string BoundedEcho(std::string_view s, size_t max) {
  if (s.size() <= max) return std::string(s);
  size_t cut = max;
  // Back to the start of a UTF-8 sequence (continuation bytes are 10xxxxxx).
  while (cut > 0 && (static_cast<unsigned char>(s[cut]) & 0xC0) == 0x80) --cut;
  return std::string(s.substr(0, cut)) + "...";
}

std::string EscapeForTerminal(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  AppendEscaped(&out, s, std::string::npos);
  return out;
}

}  // namespace zrpc::internal
