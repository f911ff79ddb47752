// SPDX-License-Identifier: Apache-2.0
// An in-process matchmaker: the sidecar's standalone backend. Registrations live until
// unregistered (the sidecar expires the ones whose services stop heartbeating). Indexed by the
// key clients resolve, so every operation costs O(1) or the size of its answer.
#ifndef ZRPC_MATCHMAKER_MEMORY_H_
#define ZRPC_MATCHMAKER_MEMORY_H_

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/synchronization/mutex.h"
#include "matchmaker/identity.h"
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
  using Set = absl::flat_hash_set<Registration, RegistrationHash>;
  absl::Mutex mu_;
  // "exchange|key" → the registrations Resolve(exchange, key) answers.
  absl::flat_hash_map<std::string, Set> by_key_ ABSL_GUARDED_BY(mu_);
  WatcherList watchers_;
};

// Keeps only the registrations of `all` that `key` resolves to in `exchange`, sorted (for the
// backends that hold every registration in one list).
std::vector<Registration> Select(const std::vector<Registration>& all, std::string_view exchange,
                                 std::string_view key);

}  // namespace zrpc::internal

#endif  // ZRPC_MATCHMAKER_MEMORY_H_
