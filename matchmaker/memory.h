// An in-process matchmaker: the sidecar's standalone backend. Registrations live until
// unregistered (the sidecar expires the ones whose services stop heartbeating).
#ifndef ZRPC_MATCHMAKER_MEMORY_H_
#define ZRPC_MATCHMAKER_MEMORY_H_

#include <functional>
#include <memory>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "matchmaker/watchers.h"
#include "zrpc/matchmaker.h"

namespace zrpc::internal {

class MemoryMatchmaker : public Matchmaker {
 public:
  absl::Status Register(const Registration& r) override;
  absl::Status Unregister(const Registration& r) override;
  absl::Status Heartbeat() override { return absl::OkStatus(); }
  absl::StatusOr<std::vector<Registration>> Resolve(std::string_view exchange,
                                                    std::string_view key) override;
  absl::StatusOr<std::vector<Registration>> List(std::string_view exchange) override;
  absl::StatusOr<std::unique_ptr<WatchHandle>> Watch(std::function<void()> on_change) override;
  std::string url() const override { return "memory"; }

 private:
  absl::Mutex mu_;
  std::vector<Registration> all_ ABSL_GUARDED_BY(mu_);
  WatcherList watchers_;
};

// Keeps only the registrations of `all` that `key` resolves to in `exchange` (shared by the
// backends that hold registrations in memory).
std::vector<Registration> Select(const std::vector<Registration>& all, std::string_view exchange,
                                 std::string_view key);

}  // namespace zrpc::internal

#endif  // ZRPC_MATCHMAKER_MEMORY_H_
