// SPDX-License-Identifier: Apache-2.0
#include "src/base/secure_fs.h"

#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace zrpc::internal {
namespace {

std::string ErrnoText() { return std::strerror(errno); }

// "uid 1001 (mallory)", or "uid 1001" when it has no name.
std::string DescribeUid(uid_t uid) {
  struct passwd pw;
  struct passwd* found = nullptr;
  char buf[1024];
  if (getpwuid_r(uid, &pw, buf, sizeof(buf), &found) == 0 && found != nullptr) {
    return absl::StrCat("uid ", uid, " (", found->pw_name, ")");
  }
  return absl::StrCat("uid ", uid);
}

std::string Octal(mode_t mode) { return absl::StrFormat("%04o", mode & 07777); }

std::string TypeName(mode_t mode) {
  if (S_ISFIFO(mode)) return "a FIFO";
  if (S_ISCHR(mode)) return "a character device";
  if (S_ISBLK(mode)) return "a block device";
  if (S_ISDIR(mode)) return "a directory";
  if (S_ISSOCK(mode)) return "a socket";
  if (S_ISLNK(mode)) return "a symbolic link";
  if (S_ISREG(mode)) return "a regular file";
  return "a file of unknown type";
}

std::string ParentOf(const std::string& path) {
  const size_t slash = path.rfind('/');
  return slash == 0 || slash == std::string::npos ? "/" : path.substr(0, slash);
}

std::string RandomHex() {
  uint64_t r = 0;
  if (getrandom(&r, sizeof(r), GRND_NONBLOCK) != sizeof(r)) {
    // No entropy yet (early boot): unpredictability only spares a retry; O_EXCL is the guard.
    static std::atomic<uint64_t> counter{0};
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    r = (static_cast<uint64_t>(getpid()) << 40) ^ static_cast<uint64_t>(ts.tv_nsec) ^
        (counter.fetch_add(1) << 20);
  }
  return absl::StrFormat("%016x", r);
}

// The rules for the directory itself (not its parents).
absl::Status CheckDirItself(const std::string& path, const struct stat& st, const DirPolicy& p,
                            const std::string& who, const std::string& hint) {
  const uid_t me = geteuid();
  if (S_ISLNK(st.st_mode)) {
    char target[4096];
    const ssize_t n = readlink(path.c_str(), target, sizeof(target) - 1);
    const std::string to = n > 0 ? absl::StrCat(" (to ", std::string(target, n), ")") : "";
    return absl::FailedPreconditionError(absl::StrCat(
        who, ": ", path, " is a symbolic link", to,
        ", not a directory: zrpc does not follow links here, as another user may have planted "
        "it; remove it (rm ",
        path, ")", hint));
  }
  if (!S_ISDIR(st.st_mode)) {
    return absl::FailedPreconditionError(absl::StrCat(who, ": ", path, " is ", TypeName(st.st_mode),
                                                      ", not a directory; remove it", hint));
  }
  if (p.shared_group) {
    if (st.st_uid != me && st.st_uid != 0) {
      return absl::FailedPreconditionError(
          absl::StrCat(who, ": shared directory ", path, " is owned by ", DescribeUid(st.st_uid),
                       ", not you (", DescribeUid(me),
                       ") or root: another user may have created it; have "
                       "root or yourself create it (install -d -m 2770 -g ",
                       p.shared_group_name, " ", path, ")", hint));
    }
    if (st.st_gid != *p.shared_group) {
      return absl::FailedPreconditionError(
          absl::StrCat(who, ": shared directory ", path, " belongs to gid ", st.st_gid,
                       ", not group ", p.shared_group_name, " (gid ", *p.shared_group,
                       "); fix it with chgrp ", p.shared_group_name, " ", path, hint));
    }
    if (st.st_mode & S_IWOTH) {
      return absl::FailedPreconditionError(absl::StrCat(
          who, ": shared directory ", path, " can be written by every user (mode ",
          Octal(st.st_mode), "); only its group may write it: chmod o-w ", path, hint));
    }
    return absl::OkStatus();
  }
  if (st.st_uid != me) {
    return absl::FailedPreconditionError(
        absl::StrCat(who, ": ", path, " is owned by ", DescribeUid(st.st_uid), ", not you (",
                     DescribeUid(me), "): another user may have created it; remove it", hint));
  }
  if (st.st_mode & (S_IWGRP | S_IWOTH)) {
    return absl::FailedPreconditionError(absl::StrCat(
        who, ": ", path, " can be written by ", (st.st_mode & S_IWOTH) ? "every user" : "its group",
        " (mode ", Octal(st.st_mode), "), so others could register in your place: chmod 700 ", path,
        hint));
  }
  return absl::OkStatus();
}

// No directory above `path` may be replaced by a user other than root and you: each one is owned
// by one of them, and group/other write needs the sticky bit (as /tmp has).
absl::Status CheckParents(const std::string& path, const std::string& who,
                          const std::string& hint) {
  const uid_t me = geteuid();
  // A link on the way must be yours or root's: its owner could point it elsewhere later.
  for (size_t pos = 1; pos < path.size(); ++pos) {
    if (path[pos] != '/') continue;
    const std::string part = path.substr(0, pos);
    struct stat st;
    if (lstat(part.c_str(), &st) == 0 && S_ISLNK(st.st_mode) && st.st_uid != 0 && st.st_uid != me) {
      return absl::FailedPreconditionError(
          absl::StrCat(who, ": ", part, " on the way to ", path, " is a symbolic link owned by ",
                       DescribeUid(st.st_uid), ", who could point it elsewhere", hint));
    }
  }
  char* real = realpath(ParentOf(path).c_str(), nullptr);
  if (real == nullptr) {
    return absl::UnavailableError(
        absl::StrCat(who, ": cannot resolve the directory above ", path, ": ", ErrnoText()));
  }
  std::string dir = real;
  std::free(real);
  while (true) {
    struct stat st;
    if (lstat(dir.c_str(), &st) != 0) {
      return absl::UnavailableError(absl::StrCat(who, ": cannot check ", dir, ": ", ErrnoText()));
    }
    if (st.st_uid != 0 && st.st_uid != me) {
      return absl::FailedPreconditionError(absl::StrCat(
          who, ": ", dir, " (above ", path, ") is owned by ", DescribeUid(st.st_uid),
          ", who could replace what is inside; use a directory whose parents belong to you or "
          "root",
          hint));
    }
    if ((st.st_mode & (S_IWGRP | S_IWOTH)) && !(st.st_mode & S_ISVTX)) {
      return absl::FailedPreconditionError(absl::StrCat(
          who, ": ", dir, " (above ", path, ") can be written by ",
          (st.st_mode & S_IWOTH) ? "every user" : "its group", " (mode ", Octal(st.st_mode),
          ") without the sticky bit, so another user could rename ", path,
          " away and put theirs in its place: chmod go-w ", dir, " (or chmod +t ", dir, ")", hint));
    }
    if (dir == "/") break;
    dir = ParentOf(dir);
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status EnsurePrivateDir(std::string path, const DirPolicy& policy) {
  const std::string who = policy.what.empty() ? "zrpc" : policy.what;
  const std::string hint = policy.fix_hint.empty() ? "" : absl::StrCat(", ", policy.fix_hint);
  if (path.empty() || path[0] != '/') {
    return absl::InvalidArgumentError(
        absl::StrCat(who, ": the directory \"", path, "\" must be an absolute path"));
  }
  while (path.size() > 1 && path.back() == '/') path.pop_back();
  const mode_t last_mode =
      policy.create_mode != 0 ? policy.create_mode : (policy.shared_group ? 02770 : 0700);
  for (size_t pos = 1; pos <= path.size(); ++pos) {
    if (pos != path.size() && path[pos] != '/') continue;
    if (path[pos - 1] == '/') continue;  // "//"
    const std::string part = path.substr(0, pos);
    const bool last = pos == path.size();
    if (mkdir(part.c_str(), 0700) == 0) {
      if (!last) continue;
      // Group first: chown may clear the setgid bit that chmod then sets.
      if ((policy.shared_group &&
           chown(part.c_str(), static_cast<uid_t>(-1), *policy.shared_group) != 0) ||
          chmod(part.c_str(), last_mode) != 0) {
        return absl::UnavailableError(
            absl::StrCat(who, ": cannot set the group and mode of ", part, ": ", ErrnoText()));
      }
      continue;
    }
    const int err = errno;
    struct stat st;
    if (err == EEXIST || stat(part.c_str(), &st) == 0) continue;
    return absl::UnavailableError(absl::StrCat(who, ": cannot create ", part, ": ",
                                               std::strerror(err), "; create ", path,
                                               " yourself (mkdir -p -m 700 ", path, ")", hint));
  }
  struct stat st;
  if (lstat(path.c_str(), &st) != 0) {
    return absl::UnavailableError(absl::StrCat(who, ": cannot check ", path, ": ", ErrnoText()));
  }
  if (absl::Status s = CheckDirItself(path, st, policy, who, hint); !s.ok()) return s;
  return CheckParents(path, who, hint);
}

absl::StatusOr<gid_t> LookupGroup(std::string_view name) {
  struct group gr;
  struct group* found = nullptr;
  char buf[4096];
  const std::string n(name);
  if (getgrnam_r(n.c_str(), &gr, buf, sizeof(buf), &found) == 0 && found != nullptr) {
    return found->gr_gid;
  }
  uint32_t gid = 0;
  if (absl::SimpleAtoi(absl::string_view(n), &gid)) return static_cast<gid_t>(gid);
  return absl::NotFoundError(absl::StrCat("group \"", n, "\" does not exist (see getent group)"));
}

std::string DefaultRuntimeDir() {
  const uid_t me = geteuid();
  if (me == 0) return "/run/zrpc";
  if (const char* xdg = std::getenv("XDG_RUNTIME_DIR"); xdg != nullptr && *xdg == '/') {
    return absl::StrCat(xdg, "/zrpc");
  }
  return absl::StrCat("/tmp/zrpc-", me);
}

absl::StatusOr<FileId> WriteFileAtomically(const std::string& dir, std::string_view name,
                                           std::string_view bytes,
                                           const AtomicWriteOptions& options) {
  const std::string path = absl::StrCat(dir, "/", absl::string_view(name.data(), name.size()));
  std::string tmp;
  int fd = -1;
  for (int attempt = 0; attempt < 4 && fd < 0; ++attempt) {
    tmp = absl::StrCat(path, ".", RandomHex(), ".tmp");
    fd = open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0 && errno != EEXIST) break;
  }
  if (fd < 0) return absl::UnavailableError(absl::StrCat("cannot create ", tmp, ": ", ErrnoText()));
  auto fail = [&](absl::string_view what) {
    const std::string why = ErrnoText();
    close(fd);
    unlink(tmp.c_str());
    return absl::UnavailableError(absl::StrCat("cannot ", what, " ", path, ": ", why));
  };
  if (options.group && fchown(fd, static_cast<uid_t>(-1), *options.group) != 0) {
    return fail("set the group of");
  }
  if (fchmod(fd, options.mode) != 0) return fail("set the mode of");
  for (size_t done = 0; done < bytes.size();) {
    const ssize_t n = write(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return fail("write");
    done += static_cast<size_t>(n);
  }
  if (options.fsync && fsync(fd) != 0) return fail("sync");
  struct stat st;
  if (fstat(fd, &st) != 0) return fail("check");
  if (rename(tmp.c_str(), path.c_str()) != 0) return fail("rename into place");
  close(fd);
  return FileId{st.st_dev, st.st_ino};
}

bool SameFile(const std::string& path, const FileId& id) {
  struct stat st;
  return lstat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode) && st.st_dev == id.dev &&
         st.st_ino == id.ino;
}

bool TrustedOwners::Accepts(uid_t uid, gid_t gid) const {
  if (uids.empty() && !group) return true;
  if (group && gid == *group) return true;
  for (uid_t u : uids) {
    if (u == uid) return true;
  }
  return false;
}

absl::StatusOr<std::string> ReadUntrustedFile(const std::string& path, size_t max_bytes,
                                              const TrustedOwners& owners, FinalLink links) {
  const int fd = open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY |
                                        (links == FinalLink::kRefuse ? O_NOFOLLOW : 0));
  if (fd < 0) {
    if (errno == ENOENT) return absl::NotFoundError(absl::StrCat(path, " does not exist"));
    if (errno == ELOOP) {
      return absl::FailedPreconditionError(
          absl::StrCat(path, " is a symbolic link; zrpc does not follow links here"));
    }
    return absl::UnavailableError(absl::StrCat("cannot open ", path, ": ", ErrnoText()));
  }
  struct Closer {
    int fd;
    ~Closer() { close(fd); }
  } closer{fd};
  struct stat st;
  if (fstat(fd, &st) != 0) {
    return absl::UnavailableError(absl::StrCat("cannot check ", path, ": ", ErrnoText()));
  }
  if (!S_ISREG(st.st_mode)) {
    return absl::FailedPreconditionError(
        absl::StrCat(path, " is ", TypeName(st.st_mode), ", not a regular file"));
  }
  if (!owners.Accepts(st.st_uid, st.st_gid)) {
    std::string trusted;
    for (uid_t u : owners.uids)
      absl::StrAppend(&trusted, trusted.empty() ? "" : " or ", DescribeUid(u));
    if (owners.group) {
      absl::StrAppend(&trusted, trusted.empty() ? "" : " or ", "gid ", *owners.group);
    }
    return absl::FailedPreconditionError(
        absl::StrCat(path, " is owned by ", DescribeUid(st.st_uid), ", not ", trusted));
  }
  if (static_cast<uint64_t>(st.st_size) > max_bytes) {
    return absl::FailedPreconditionError(
        absl::StrCat(path, " is ", st.st_size, " bytes long; at most ", max_bytes, " are read"));
  }
  // One byte more than expected: a file that grows past the limit while read is noticed.
  std::string out(std::min<size_t>(max_bytes, static_cast<size_t>(st.st_size)) + 1, '\0');
  size_t got = 0;
  while (true) {
    if (got == out.size()) {
      if (out.size() > max_bytes) break;
      out.resize(std::min(out.size() * 2, max_bytes + 1));
    }
    const ssize_t n = read(fd, out.data() + got, out.size() - got);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return absl::UnavailableError(absl::StrCat("cannot read ", path, ": ", ErrnoText()));
    if (n == 0) break;
    got += static_cast<size_t>(n);
  }
  if (got > max_bytes) {
    return absl::FailedPreconditionError(
        absl::StrCat(path, " grew past ", max_bytes, " bytes while it was read"));
  }
  out.resize(got);
  return out;
}

std::string IpcPath(std::string_view endpoint) {
  constexpr std::string_view kIpc = "ipc://";
  if (endpoint.substr(0, kIpc.size()) != kIpc) return "";
  std::string_view path = endpoint.substr(kIpc.size());
  if (path.empty() || path[0] == '@') return "";  // abstract namespace: no file
  return std::string(path);
}

absl::Status SetSocketMode(const std::string& path, mode_t mode, std::optional<gid_t> group) {
  if (group && chown(path.c_str(), static_cast<uid_t>(-1), *group) != 0) {
    return absl::UnavailableError(
        absl::StrCat("cannot give socket ", path, " group ", *group, ": ", ErrnoText()));
  }
  if (chmod(path.c_str(), mode) != 0) {
    return absl::UnavailableError(absl::StrCat("cannot set the mode of socket ", path, " to ",
                                               Octal(mode), ": ", ErrnoText()));
  }
  return absl::OkStatus();
}

}  // namespace zrpc::internal
