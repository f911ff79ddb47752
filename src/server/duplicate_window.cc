// SPDX-License-Identifier: Apache-2.0
#include "server/duplicate_window.h"

#include "absl/hash/hash.h"
#include "absl/strings/string_view.h"

namespace zrpc::internal {

bool DuplicateWindow::Seen(std::string_view id) {
  const uint64_t h = absl::HashOf(absl::string_view(id.data(), id.size()));
  if (!ids_.insert(h).second) return true;
  order_.push_back(h);
  if (order_.size() > size_) {
    ids_.erase(order_.front());
    order_.pop_front();
  }
  return false;
}

}  // namespace zrpc::internal
