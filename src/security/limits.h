// SPDX-License-Identifier: Apache-2.0
// The size limits of zrpc's security files: one home for each (README "Security and limits").
#ifndef ZRPC_SRC_SECURITY_LIMITS_H_
#define ZRPC_SRC_SECURITY_LIMITS_H_

#include <cstddef>

namespace zrpc::internal {

// A NAME.key file (two lines of about 52 bytes, comments allowed).
inline constexpr size_t kMaxKeyFileBytes = 4 << 10;
// An authorized_keys file.
inline constexpr size_t kMaxAuthorizedKeysBytes = 1 << 20;
inline constexpr size_t kMaxAuthorizedKeysLines = 10'000;

}  // namespace zrpc::internal

#endif  // ZRPC_SRC_SECURITY_LIMITS_H_
