#include "matchmaker/memory.h"

#include <algorithm>
#include <tuple>

namespace zrpc::internal {

std::vector<Registration> Select(const std::vector<Registration>& all, std::string_view exchange,
                                 std::string_view key) {
  const bool fanout = key.substr(0, 7) == "fanout~";
  const std::string_view topic = fanout ? key.substr(7) : key;
  std::vector<Registration> out;
  for (const Registration& r : all) {
    if (r.exchange == exchange && r.fanout == fanout && r.topic == topic) out.push_back(r);
  }
  std::sort(out.begin(), out.end(), [](const Registration& a, const Registration& b) {
    return std::tie(a.host, a.endpoint, a.topic, a.pool) < std::tie(b.host, b.endpoint, b.topic, b.pool);
  });
  return out;
}

absl::Status MemoryMatchmaker::Register(const Registration& r) {
  {
    absl::MutexLock lock(&mu_);
    if (std::find(all_.begin(), all_.end(), r) != all_.end()) return absl::OkStatus();
    all_.push_back(r);
  }
  watchers_.Notify();
  return absl::OkStatus();
}

absl::Status MemoryMatchmaker::Unregister(const Registration& r) {
  {
    absl::MutexLock lock(&mu_);
    auto it = std::find(all_.begin(), all_.end(), r);
    if (it == all_.end()) return absl::OkStatus();
    all_.erase(it);
  }
  watchers_.Notify();
  return absl::OkStatus();
}

absl::StatusOr<std::vector<Registration>> MemoryMatchmaker::Resolve(std::string_view exchange,
                                                                    std::string_view key) {
  absl::MutexLock lock(&mu_);
  return Select(all_, exchange, key);
}

absl::StatusOr<std::vector<Registration>> MemoryMatchmaker::List(std::string_view exchange) {
  absl::MutexLock lock(&mu_);
  std::vector<Registration> out;
  for (const Registration& r : all_) {
    if (exchange.empty() || r.exchange == exchange) out.push_back(r);
  }
  return out;
}

absl::StatusOr<std::unique_ptr<WatchHandle>> MemoryMatchmaker::Watch(std::function<void()> on_change) {
  return watchers_.Add(std::move(on_change));
}

}  // namespace zrpc::internal
