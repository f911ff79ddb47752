// SPDX-License-Identifier: Apache-2.0
#include "zrpc/version.h"

#include "absl/strings/str_cat.h"

namespace zrpc {
namespace {

constexpr size_t kMaxDigits = 9;  // fits uint32 with room to spare

absl::Status Malformed(std::string_view text) {
  return absl::InvalidArgumentError(
      absl::StrCat("invalid RPC version \"", absl::string_view(text.data(), text.size()),
                   "\": expected MAJOR.MINOR or MAJOR.MINOR.REVISION (decimal numbers)"));
}

}  // namespace

absl::StatusOr<Version> ParseVersion(std::string_view text) {
  uint32_t parts[3] = {0, 0, 0};
  int count = 0;
  size_t i = 0;
  while (true) {
    if (count == 3) return Malformed(text);
    size_t start = i;
    uint32_t n = 0;
    while (i < text.size() && text[i] >= '0' && text[i] <= '9') {
      n = n * 10 + static_cast<uint32_t>(text[i] - '0');
      ++i;
      if (i - start > kMaxDigits) return Malformed(text);
    }
    if (i == start) return Malformed(text);
    parts[count++] = n;
    if (i == text.size()) break;
    if (text[i] != '.') return Malformed(text);
    ++i;
  }
  if (count < 2) return Malformed(text);
  return Version{parts[0], parts[1], parts[2], count == 3};
}

absl::StatusOr<bool> VersionIsCompatible(std::string_view implemented, std::string_view requested) {
  absl::StatusOr<Version> imp = ParseVersion(implemented);
  if (!imp.ok()) return imp.status();
  absl::StatusOr<Version> req = ParseVersion(requested);
  if (!req.ok()) return req.status();
  if (imp->major != req->major) return false;
  if (req->minor != imp->minor) return req->minor < imp->minor;
  return req->revision <= imp->revision;
}

}  // namespace zrpc
