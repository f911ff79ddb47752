// SPDX-License-Identifier: Apache-2.0
// zrpc/version.h — RPC API versions "X.Y" or "X.Y.Z" and the seed's compatibility rule.
//
//   absl::StatusOr<bool> ok = zrpc::VersionIsCompatible("1.24", "1.23.1");  // true
//
// A service implementing `implemented` can serve a request for `requested` when the majors are
// equal and the requested minor is not higher; when the minors are equal, the requested revision
// (third part, 0 when missing) must not be higher. Thread-safe.
#ifndef ZRPC_VERSION_H_
#define ZRPC_VERSION_H_

// zrpc's own release (semantic versioning; the library's SONAME is libzrpc.so.MAJOR). The one
// place it is written: CMakeLists.txt reads it from here.
#define ZRPC_VERSION_MAJOR 0
#define ZRPC_VERSION_MINOR 1
#define ZRPC_VERSION_PATCH 0
#define ZRPC_VERSION_STRING "0.1.0"

#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace zrpc {

// A parsed version. `revision` is 0 when the text had only two parts.
struct Version {
  uint32_t major = 0;
  uint32_t minor = 0;
  uint32_t revision = 0;
  bool has_revision = false;
};

// Parses "X.Y" or "X.Y.Z": each part decimal digits only, at most 9 digits. Anything else
// ("", "abc", "1", "1.-1", " 1.0", "1.2.3.4", "1.99999999999") is INVALID_ARGUMENT naming it.
absl::StatusOr<Version> ParseVersion(std::string_view text);

// The seed's version_is_compatible(imp_version, version). INVALID_ARGUMENT when either is
// malformed.
absl::StatusOr<bool> VersionIsCompatible(std::string_view implemented, std::string_view requested);

}  // namespace zrpc

#endif  // ZRPC_VERSION_H_
