// SPDX-License-Identifier: Apache-2.0
// A process's CURVE identity and the keys it admits and trusts: its key pair and its
// authorized_keys file, re-read when the file changes. Shared by the ZAP handler (who may
// connect), the client routes (which service keys to trust) and the dispatcher (groups).
#ifndef ZRPC_SRC_SECURITY_KEYRING_H_
#define ZRPC_SRC_SECURITY_KEYRING_H_

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "zrpc/security.h"

namespace zrpc::internal {

// Thread-safe.
class Keyring {
 public:
  // Reads the key file and the authorized_keys file (both must be valid: the error names the
  // file and line). `options.enabled()` must be true.
  static absl::StatusOr<std::shared_ptr<Keyring>> Load(const SecurityOptions& options);

  const CurveKeyPair& own() const { return own_; }

  // The current entry of `public_key` (Z85), or null when it is not authorized (never listed, or
  // removed since: revocation takes effect on the next look-up). Re-reads the file first when it
  // changed (at most once a second); a file that became invalid keeps the last good contents
  // (logged once). The entry stays valid as long as it is held.
  std::shared_ptr<const AuthorizedKey> FindKey(std::string_view public_key);
  // The current entry of `identity`, or null.
  std::shared_ptr<const AuthorizedKey> FindIdentity(std::string_view identity);

 private:
  Keyring(CurveKeyPair own, std::string path) : own_(std::move(own)), path_(std::move(path)) {}
  void MaybeReload() ABSL_LOCKS_EXCLUDED(mu_);
  // Replaces the keys looked up.
  void Install(std::vector<AuthorizedKey> keys) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const CurveKeyPair own_;
  const std::string path_;
  absl::Mutex mu_;
  absl::flat_hash_map<std::string, std::shared_ptr<const AuthorizedKey>> by_key_
      ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string, std::string> key_of_identity_ ABSL_GUARDED_BY(mu_);
  absl::Time checked_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
  std::string stamp_ ABSL_GUARDED_BY(mu_);       // dev/inode/size/mtime/ctime of what was read
  std::string last_error_ ABSL_GUARDED_BY(mu_);  // why the last re-read failed (logged once)
};

}  // namespace zrpc::internal

#endif  // ZRPC_SRC_SECURITY_KEYRING_H_
