// SPDX-License-Identifier: Apache-2.0
#include "matchmaker/memory.h"

#include "absl/strings/str_cat.h"

namespace zrpc::internal {
namespace {

std::string IndexKey(std::string_view exchange, std::string_view key) {
  return absl::StrCat(absl::string_view(exchange.data(), exchange.size()), "|",
                      absl::string_view(key.data(), key.size()));
}

}  // namespace

std::vector<Registration> Select(const std::vector<Registration>& all, std::string_view exchange,
                                 std::string_view key) {
  std::vector<Registration> out;
  for (const Registration& r : all) {
    if (r.exchange == exchange && r.Key() == key) out.push_back(r);
  }
  SortRegistrations(&out);
  return out;
}

absl::Status MemoryMatchmaker::Register(const Registration& r) {
  {
    absl::MutexLock lock(&mu_);
    if (!by_key_[IndexKey(r.exchange, r.Key())].insert(r).second) return absl::OkStatus();
  }
  watchers_.Notify();
  return absl::OkStatus();
}

absl::Status MemoryMatchmaker::Unregister(const Registration& r) {
  {
    absl::MutexLock lock(&mu_);
    auto it = by_key_.find(IndexKey(r.exchange, r.Key()));
    if (it == by_key_.end() || it->second.erase(r) == 0) return absl::OkStatus();
    if (it->second.empty()) by_key_.erase(it);
  }
  watchers_.Notify();
  return absl::OkStatus();
}

absl::StatusOr<std::vector<Registration>> MemoryMatchmaker::Resolve(std::string_view exchange,
                                                                    std::string_view key) {
  std::vector<Registration> out;
  {
    absl::MutexLock lock(&mu_);
    auto it = by_key_.find(IndexKey(exchange, key));
    if (it != by_key_.end()) out.assign(it->second.begin(), it->second.end());
  }
  SortRegistrations(&out);
  return out;
}

absl::StatusOr<std::vector<Registration>> MemoryMatchmaker::List(std::string_view exchange) {
  std::vector<Registration> out;
  {
    absl::MutexLock lock(&mu_);
    for (const auto& [key, regs] : by_key_) {
      for (const Registration& r : regs) {
        if (exchange.empty() || r.exchange == exchange) out.push_back(r);
      }
    }
  }
  SortRegistrations(&out);
  return out;
}

absl::StatusOr<std::unique_ptr<WatchHandle>> MemoryMatchmaker::Watch(
    std::function<void()> on_change) {
  return watchers_.Add(std::move(on_change));
}

}  // namespace zrpc::internal
