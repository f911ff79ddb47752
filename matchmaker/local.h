// SPDX-License-Identifier: Apache-2.0
// local:// — the embedded matchmaker: no server, a directory shared by the processes of one
// machine. Each matchmaker instance owns one file, "<pid>-<n>.json", holding its process's
// start time and registrations; readers ignore (and remove) files of processes that are gone.
//
//   local://                       the default directory: /run/zrpc for root, else
//                                  $XDG_RUNTIME_DIR/zrpc, else /tmp/zrpc-<uid> (last resort)
//   local:///path/dir              a directory of yours
//   local:///path/dir?group=NAME   a directory shared by the members of group NAME
//
// The directory is created (0700; 02770 and the group for a shared one) and checked at Create
// (src/base/secure_fs.h): a real directory owned by you that only you may write — or, with
// ?group=, owned by you or root, of that group, not writable by others — under parents that no
// other user can replace. Anything else is refused with an error saying how to fix it: another
// user who created the directory first could otherwise answer your calls. Own files are written
// atomically (O_EXCL|O_NOFOLLOW, then renamed) and rewritten on Heartbeat when replaced or
// removed. Readers take only files named "<pid>-<n>.json" that are regular files (symlinks and
// FIFOs are not opened) of at most 1 MiB, owned by the directory's owner or you (or of the
// shared group); each file skipped is logged once.
#ifndef ZRPC_MATCHMAKER_LOCAL_H_
#define ZRPC_MATCHMAKER_LOCAL_H_

#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "src/base/secure_fs.h"
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
  // `dir` "" = the default (above). `group` "" = a private directory, else the group sharing it.
  // FAILED_PRECONDITION when the directory is not safe to use (the message says why and how to
  // fix it); NOT_FOUND for an unknown group; UNAVAILABLE when it cannot be created.
  static absl::StatusOr<std::unique_ptr<Matchmaker>> Create(std::string dir,
                                                            std::string group = "");
  ~LocalMatchmaker() override;

  absl::Status Register(const Registration& r) override;
  absl::Status Unregister(const Registration& r) override;
  absl::Status Heartbeat() override;
  absl::StatusOr<std::vector<Registration>> Resolve(std::string_view exchange,
                                                    std::string_view key) override;
  absl::StatusOr<std::vector<Registration>> List(std::string_view exchange) override;
  absl::StatusOr<std::unique_ptr<WatchHandle>> Watch(std::function<void()> on_change) override;
  std::string url() const override;

 private:
  LocalMatchmaker(std::string dir, std::string group_name, std::optional<gid_t> group,
                  uid_t dir_owner);
  absl::Status WriteOwnFile() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Every live registration in the directory, from the cache when it is fresh.
  absl::StatusOr<std::shared_ptr<const std::vector<Registration>>> Snapshot();
  // Logs that a file was skipped, once per file (name and inode).
  void ReportSkipped(absl::string_view name, ino_t ino, absl::string_view why);

  const std::string dir_;
  const std::string group_name_;
  const std::optional<gid_t> group_;
  const TrustedOwners readers_trust_;  // whose files are read
  const std::string own_name_;
  const std::string own_file_;
  absl::Mutex mu_;
  std::vector<Registration> own_ ABSL_GUARDED_BY(mu_);
  FileId own_id_ ABSL_GUARDED_BY(mu_);  // the file last written at own_file_

  absl::Mutex cache_mu_;
  std::shared_ptr<const std::vector<Registration>> cache_ ABSL_GUARDED_BY(cache_mu_);
  absl::Time cache_time_ ABSL_GUARDED_BY(cache_mu_);
  int64_t cache_dir_mtime_ns_ ABSL_GUARDED_BY(cache_mu_) = -1;
  absl::flat_hash_set<std::string> reported_ ABSL_GUARDED_BY(cache_mu_);
};

}  // namespace zrpc::internal

#endif  // ZRPC_MATCHMAKER_LOCAL_H_
