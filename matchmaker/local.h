// SPDX-License-Identifier: Apache-2.0
// local:// — the embedded matchmaker: no server, a directory shared by the processes of one
// machine. Each matchmaker instance owns one file, "<pid>-<n>.json", holding its process's
// start time and registrations; readers ignore (and remove) files of processes that are gone.
#ifndef ZRPC_MATCHMAKER_LOCAL_H_
#define ZRPC_MATCHMAKER_LOCAL_H_

#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "zrpc/matchmaker.h"

namespace zrpc::internal {

// One registry file as its readers parse it (pure, so the registry fuzz target runs it): the
// owner's process id and start time (0: unknown) and its well-formed registrations (malformed
// entries are skipped). INVALID_ARGUMENT when the text is not a registry file: not JSON, no
// "pid" in 1..2^31-1, or no "registrations" array.
struct RegistryFile {
  pid_t pid = 0;
  uint64_t start = 0;
  std::vector<Registration> registrations;
};
absl::StatusOr<RegistryFile> ParseRegistryFile(std::string_view text);

class LocalMatchmaker : public Matchmaker {
 public:
  // `dir` "" = the default ($XDG_RUNTIME_DIR/zrpc, else /tmp/zrpc-<uid>). Creates it (0700).
  static absl::StatusOr<std::unique_ptr<Matchmaker>> Create(std::string dir);
  ~LocalMatchmaker() override;

  absl::Status Register(const Registration& r) override;
  absl::Status Unregister(const Registration& r) override;
  absl::Status Heartbeat() override;
  absl::StatusOr<std::vector<Registration>> Resolve(std::string_view exchange,
                                                    std::string_view key) override;
  absl::StatusOr<std::vector<Registration>> List(std::string_view exchange) override;
  absl::StatusOr<std::unique_ptr<WatchHandle>> Watch(std::function<void()> on_change) override;
  std::string url() const override { return "local://" + dir_; }

 private:
  explicit LocalMatchmaker(std::string dir);
  absl::Status WriteOwnFile() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Every live registration in the directory, from the cache when it is fresh.
  absl::StatusOr<std::shared_ptr<const std::vector<Registration>>> Snapshot();

  const std::string dir_;
  const std::string own_file_;
  absl::Mutex mu_;
  std::vector<Registration> own_ ABSL_GUARDED_BY(mu_);

  absl::Mutex cache_mu_;
  std::shared_ptr<const std::vector<Registration>> cache_ ABSL_GUARDED_BY(cache_mu_);
  absl::Time cache_time_ ABSL_GUARDED_BY(cache_mu_);
  int64_t cache_dir_mtime_ns_ ABSL_GUARDED_BY(cache_mu_) = -1;
};

}  // namespace zrpc::internal

#endif  // ZRPC_MATCHMAKER_LOCAL_H_
