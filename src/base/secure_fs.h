// SPDX-License-Identifier: Apache-2.0
// Runtime directories and files that another local user cannot hijack, checked as ssh and tmux
// check theirs. Every zrpc directory that holds registries or sockets goes through
// EnsurePrivateDir; zrpc's own files are written with WriteFileAtomically; files another process
// may have put there are read with ReadUntrustedFile.
//
//   absl::Status s = EnsurePrivateDir("/run/user/1000/zrpc", {.what = "local matchmaker"});
//   absl::StatusOr<FileId> id = WriteFileAtomically(dir, "123-0.json", text, {.mode = 0600});
//   absl::StatusOr<std::string> text = ReadUntrustedFile(path, 1 << 20, {.uids = {geteuid()}});
//
// All functions are thread-safe (they keep no state) and block on the file system only.
#ifndef ZRPC_SRC_BASE_SECURE_FS_H_
#define ZRPC_SRC_BASE_SECURE_FS_H_

#include <sys/stat.h>
#include <sys/types.h>

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace zrpc::internal {

// Which directories EnsurePrivateDir accepts, and how errors are worded.
struct DirPolicy {
  // Who asks, the first words of every error: "local matchmaker", "service ipc_dir", ...
  std::string what;
  // How the user can choose another directory, appended to errors about the directory itself,
  // e.g. "or use local:///a/directory/of/yours".
  std::string fix_hint;
  // A shared group directory, when configured: owned by the effective user or root, of this
  // group, group write (and setgid) allowed, no write for others. Unset: a private directory,
  // owned by the effective user, writable by nobody else.
  std::optional<gid_t> shared_group;
  // The group's name, for messages.
  std::string shared_group_name;
  // Mode of the last directory when zrpc creates it (the ones above it get 0700). With a shared
  // group it also gets that group; 0 = 0700, or 02770 with a shared group.
  mode_t create_mode = 0;
};

// Creates `path` (absolute) and its missing parents (0700; the last one `policy.create_mode`),
// then checks without following links that the last one is a real directory (not a symlink),
// owned by the effective user, that neither group nor others may write (or, with
// `policy.shared_group`, the shared-group rule above), and that no directory above it may be
// written by a user other than root and you without the sticky bit (else that user could rename
// it away and put theirs in its place). FAILED_PRECONDITION saying what is wrong and how to fix
// it; INVALID_ARGUMENT for a relative path; UNAVAILABLE when a directory cannot be created.
absl::Status EnsurePrivateDir(std::string path, const DirPolicy& policy);

// The group of that name (or number). NOT_FOUND naming it otherwise.
absl::StatusOr<gid_t> LookupGroup(std::string_view name);

// zrpc's runtime directory: /run/zrpc for root, else $XDG_RUNTIME_DIR/zrpc, and
// /tmp/zrpc-<uid> only when $XDG_RUNTIME_DIR is unset (cron jobs, some services).
std::string DefaultRuntimeDir();

// Which file a path named when it was written: compare with SameFile to notice replacement.
struct FileId {
  dev_t dev = 0;
  ino_t ino = 0;
};

struct AtomicWriteOptions {
  // The file's mode, set exactly (the umask does not apply).
  mode_t mode = 0600;
  // When set, the file is given this group (you must be a member).
  std::optional<gid_t> group;
  // fsync the data before the rename (survives a crash of the machine, not only of the process).
  bool fsync = false;
};

// Writes `bytes` to `dir`/`name` atomically: into a new "<name>.<random>.tmp" created with
// O_CREAT|O_EXCL|O_NOFOLLOW (never through a planted file or symlink), then renamed over `name`
// (which replaces a link there instead of following it). Returns the identity of the file
// written. UNAVAILABLE with the path and errno text on failure (nothing is left behind).
absl::StatusOr<FileId> WriteFileAtomically(const std::string& dir, std::string_view name,
                                           std::string_view bytes,
                                           const AtomicWriteOptions& options = {});

// True when `path` (not followed if a link) is the regular file `id`.
bool SameFile(const std::string& path, const FileId& id);

// Whose files ReadUntrustedFile accepts.
struct TrustedOwners {
  // Owners accepted; empty = any owner.
  std::vector<uid_t> uids;
  // Files of this group are accepted whatever their owner (a shared group directory).
  std::optional<gid_t> group;
  bool Accepts(uid_t uid, gid_t gid) const;
};

// Whether ReadUntrustedFile follows a symbolic link at the path itself.
enum class FinalLink {
  kRefuse,  // for files found in a directory others may write (a link would be a plant)
  kFollow,  // for a path an administrator configured (e.g. a ring file mounted as a link)
};

// Reads a file another process may have planted: opened with O_NONBLOCK (a FIFO does not block)
// and, by default, O_NOFOLLOW (a symlink is refused); then it must be a regular file of a trusted
// owner of at most `max_bytes`, and at most that many bytes are read. NOT_FOUND when it does not
// exist; FAILED_PRECONDITION saying why it was refused (a link, a FIFO, a device, another owner,
// too large); UNAVAILABLE for other read errors.
absl::StatusOr<std::string> ReadUntrustedFile(const std::string& path, size_t max_bytes,
                                              const TrustedOwners& owners = {},
                                              FinalLink links = FinalLink::kRefuse);

// For ipc:// endpoints: the socket's path ("" for other transports and abstract sockets).
std::string IpcPath(std::string_view endpoint);

// Gives a socket file just bound its mode (and group, when set), so what clients may connect does
// not depend on the umask. UNAVAILABLE naming the path on failure.
absl::Status SetSocketMode(const std::string& path, mode_t mode, std::optional<gid_t> group = {});

}  // namespace zrpc::internal

#endif  // ZRPC_SRC_BASE_SECURE_FS_H_
