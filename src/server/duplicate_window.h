// SPDX-License-Identifier: Apache-2.0
// The duplicate window (DESIGN §3): each consumer remembers the last `size` message unique ids
// and drops repeats (the seed's DuplicateMessageError). Thread-compatible (the I/O thread's).
#ifndef ZRPC_SRC_SERVER_DUPLICATE_WINDOW_H_
#define ZRPC_SRC_SERVER_DUPLICATE_WINDOW_H_

#include <cstdint>
#include <deque>
#include <string_view>

#include "absl/container/flat_hash_set.h"

namespace zrpc::internal {

// Remembers the last `size` unique ids (at least 16) by a 64-bit hash: a false repeat needs a
// collision among the window's ids, about size^2 / 2^64.
class DuplicateWindow {
 public:
  explicit DuplicateWindow(int size) : size_(size < 16 ? 16 : size) { ids_.reserve(size_); }
  // True when `id` was seen within the window (a repeat); remembers it otherwise.
  bool Seen(std::string_view id);

 private:
  size_t size_;
  std::deque<uint64_t> order_;
  absl::flat_hash_set<uint64_t> ids_;
};

}  // namespace zrpc::internal

#endif  // ZRPC_SRC_SERVER_DUPLICATE_WINDOW_H_
