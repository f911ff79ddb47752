// SPDX-License-Identifier: Apache-2.0
#include "security/keyring.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "base/log_internal.h"
#include "base/secure_fs.h"
#include "security/limits.h"

namespace zrpc::internal {
namespace {

// How often FindKey/FindIdentity look at the file (a stat; the file is read only when it changed).
constexpr absl::Duration kReloadCheckInterval = absl::Seconds(1);

// What identifies the contents read: a changed stamp means the file must be read again. The
// change time is there because an editor may keep the inode, size and (within a second on some
// file systems) the modification time.
std::string StampOf(const struct stat& st) {
  return absl::StrFormat("%d:%d:%d:%d.%09d:%d.%09d", st.st_dev, st.st_ino, st.st_size,
                         st.st_mtim.tv_sec, st.st_mtim.tv_nsec, st.st_ctim.tv_sec,
                         st.st_ctim.tv_nsec);
}

struct Contents {
  std::string stamp;
  std::vector<AuthorizedKey> keys;
};

// Reads and parses the authorized_keys file: a regular file of the effective user or root that
// nobody else may write (as ssh requires), at most kMaxAuthorizedKeysBytes. A link given as the
// path is followed (the path is configured by the administrator).
absl::StatusOr<Contents> ReadAuthorizedKeys(const std::string& path) {
  struct stat st;
  if (stat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) {
      return absl::NotFoundError(absl::StrCat(
          "authorized_keys file ", path,
          " does not exist; create it from the peers' NAME.pub files (cat *.pub > ", path, ")"));
    }
    return absl::UnavailableError(
        absl::StrCat("cannot check authorized_keys file ", path, ": ", strerror(errno)));
  }
  if (S_ISREG(st.st_mode) && (st.st_mode & 022) != 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("authorized_keys file ", path, " may be written by others (mode ",
                     absl::StrFormat("%04o", st.st_mode & 07777),
                     "), who could then admit their own keys: run chmod go-w ", path));
  }
  // Who may write the directory may replace the file (rename over it), so the directory holding
  // it (and, for a link, the one holding its target) must be as private as the file: owned by
  // the effective user or root, writable by nobody else. A sticky directory such as /tmp is
  // refused too: a keys file has no business among other users' files.
  std::vector<uid_t> owners = {geteuid()};
  if (geteuid() != 0) owners.push_back(0);
  const auto dir_of = [](const std::string& file) {
    const size_t slash = file.rfind('/');
    if (slash == std::string::npos) return std::string(".");
    return slash == 0 ? std::string("/") : file.substr(0, slash);
  };
  std::vector<std::string> dirs = {dir_of(path)};
  if (char* resolved = realpath(path.c_str(), nullptr); resolved != nullptr) {
    const std::string target_dir = dir_of(resolved);
    free(resolved);
    char* given = realpath(dirs[0].c_str(), nullptr);
    if (given == nullptr || target_dir != given) dirs.push_back(target_dir);
    free(given);
  }
  for (const std::string& dir : dirs) {
    struct stat ds;
    if (stat(dir.c_str(), &ds) != 0) {
      return absl::UnavailableError(absl::StrCat("cannot check the directory ", dir,
                                                 " of authorized_keys file ", path, ": ",
                                                 strerror(errno)));
    }
    const bool trusted_owner = ds.st_uid == geteuid() || ds.st_uid == 0;
    if (trusted_owner && (ds.st_mode & 022) == 0) continue;
    return absl::FailedPreconditionError(absl::StrCat(
        "authorized_keys file ", path, ": its directory ", dir, " is owned by uid ", ds.st_uid,
        ds.st_uid == 0 ? " (root)" : (ds.st_uid == geteuid() ? " (you)" : ""), " with mode ",
        absl::StrFormat("%04o", ds.st_mode & 07777),
        "; whoever else may write it can replace the file and admit their own keys: ",
        trusted_owner ? absl::StrCat("run chmod go-w ", dir)
                      : absl::StrCat("chown it to ",
                                     geteuid() == 0 ? std::string("root")
                                                    : absl::StrCat("uid ", geteuid(), " or root"),
                                     " and chmod go-w ", dir),
        ", or keep the file in a directory only you (or root) may write"));
  }
  absl::StatusOr<std::string> text =
      ReadUntrustedFile(path, kMaxAuthorizedKeysBytes, {.uids = owners}, FinalLink::kFollow);
  if (!text.ok()) {
    return absl::Status(text.status().code(),
                        absl::StrCat("authorized_keys file: ", text.status().message()));
  }
  absl::StatusOr<std::vector<AuthorizedKey>> keys = ParseAuthorizedKeys(*text, path);
  if (!keys.ok()) return keys.status();
  return Contents{StampOf(st), *std::move(keys)};
}

}  // namespace

absl::StatusOr<std::shared_ptr<Keyring>> Keyring::Load(const SecurityOptions& options) {
  if (!options.enabled()) {
    return absl::InvalidArgumentError(
        "security is not configured: set SecurityOptions.key_file to a NAME.key made by `zrpc "
        "keygen NAME`");
  }
  if (options.authorized_keys_file.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "SecurityOptions.key_file is set but authorized_keys_file is empty: set it to a file of "
        "`IDENTITY PUBLIC-KEY` lines (the peers' NAME.pub files) naming who may connect and which "
        "services are trusted"));
  }
  absl::StatusOr<CurveKeyPair> own = ReadCurveKeyFile(options.key_file);
  if (!own.ok()) return own.status();
  absl::StatusOr<Contents> contents = ReadAuthorizedKeys(options.authorized_keys_file);
  if (!contents.ok()) return contents.status();
  std::shared_ptr<Keyring> keyring(new Keyring(*std::move(own), options.authorized_keys_file));
  absl::MutexLock lock(&keyring->mu_);
  keyring->stamp_ = contents->stamp;
  keyring->checked_ = absl::Now();
  keyring->Install(std::move(contents->keys));
  return keyring;
}

std::shared_ptr<const AuthorizedKey> Keyring::FindKey(std::string_view public_key) {
  MaybeReload();
  absl::MutexLock lock(&mu_);
  auto it = by_key_.find(absl::string_view(public_key.data(), public_key.size()));
  if (it == by_key_.end()) return nullptr;
  return it->second;
}

std::shared_ptr<const AuthorizedKey> Keyring::FindIdentity(std::string_view identity) {
  MaybeReload();
  absl::MutexLock lock(&mu_);
  auto id = key_of_identity_.find(absl::string_view(identity.data(), identity.size()));
  if (id == key_of_identity_.end()) return nullptr;
  auto it = by_key_.find(id->second);
  if (it == by_key_.end()) return nullptr;
  return it->second;
}

void Keyring::MaybeReload() {
  {
    absl::MutexLock lock(&mu_);
    const absl::Time now = absl::Now();
    if (now - checked_ < kReloadCheckInterval) return;
    checked_ = now;  // one caller a second reads the file; the others keep using what is loaded
    struct stat st;
    if (stat(path_.c_str(), &st) == 0 && StampOf(st) == stamp_) return;
  }
  // Read outside the lock: lookups go on with the current keys meanwhile.
  absl::StatusOr<Contents> contents = ReadAuthorizedKeys(path_);
  absl::MutexLock lock(&mu_);
  if (!contents.ok()) {
    const std::string error(contents.status().message());
    if (error != last_error_) {
      ZRPC_LOG(kError, "keeping the %d keys last read from %s: %s", by_key_.size(), path_, error);
      last_error_ = error;
    }
    return;
  }
  last_error_.clear();
  const size_t before = by_key_.size();
  stamp_ = contents->stamp;
  Install(std::move(contents->keys));
  ZRPC_LOG(kInfo, "re-read %s: %d keys (were %d)", path_, by_key_.size(), before);
}

void Keyring::Install(std::vector<AuthorizedKey> keys) {
  by_key_.clear();
  key_of_identity_.clear();
  for (AuthorizedKey& k : keys) {
    key_of_identity_[k.identity] = k.public_key;
    std::string key = k.public_key;
    by_key_.emplace(std::move(key), std::make_shared<const AuthorizedKey>(std::move(k)));
  }
}

}  // namespace zrpc::internal
