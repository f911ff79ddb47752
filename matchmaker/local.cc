// SPDX-License-Identifier: Apache-2.0
#include "matchmaker/local.h"

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <thread>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "matchmaker/identity.h"
#include "matchmaker/memory.h"
#include "matchmaker/process.h"
#include "matchmaker/registration_json.h"
#include "matchmaker/watch.h"
#include "src/base/log_internal.h"
#include "src/base/secure_fs.h"
#include "zrpc/value.h"

namespace zrpc::internal {
namespace {

// How long a directory listing is trusted while the directory itself is unchanged: bounds how
// long a process that died stays in rotation.
constexpr absl::Duration kCacheTtl = absl::Milliseconds(250);
// A registry file holds one process's registrations: far below this.
constexpr size_t kMaxRegistryFileBytes = 1 << 20;
// Skipped files remembered so each is logged once; forgotten (and logged again) past this.
constexpr size_t kMaxReported = 4096;

std::atomic<int> instance_counter{0};

absl::Status Errno(std::string_view what, const std::string& path) {
  return absl::UnavailableError(absl::StrCat("local matchmaker: ", absl::string_view(what.data(), what.size()),
                                             " ", path, ": ", std::strerror(errno)));
}

// "<pid>-<n>.json", the only names zrpc gives registry files.
bool IsRegistryFileName(absl::string_view name) {
  if (!absl::ConsumeSuffix(&name, ".json")) return false;
  const size_t dash = name.find('-');
  if (dash == 0 || dash == absl::string_view::npos || dash + 1 == name.size()) return false;
  for (size_t i = 0; i < name.size(); ++i) {
    if (i != dash && !absl::ascii_isdigit(static_cast<unsigned char>(name[i]))) return false;
  }
  return name.size() <= 32;
}

TrustedOwners ReaderTrust(uid_t dir_owner, std::optional<gid_t> group) {
  TrustedOwners t{.uids = {dir_owner}, .group = group};
  if (geteuid() != dir_owner) t.uids.push_back(geteuid());
  return t;
}

int64_t DirMtimeNs(const std::string& dir) {
  struct stat st;
  if (stat(dir.c_str(), &st) != 0) return -1;
  return static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec;
}

}  // namespace

absl::StatusOr<RegistryFile> ParseRegistryFile(std::string_view text) {
  absl::StatusOr<Value> file = ParseJson(text);
  if (!file.ok()) return file.status();
  const Value* pid = file->Find("pid");
  const Value* start = file->Find("start");
  const Value* regs = file->Find("registrations");
  if (!pid || !pid->is_int() || pid->AsInt() < 1 || pid->AsInt() > INT32_MAX) {
    return absl::InvalidArgumentError("registry file needs \"pid\", a process id");
  }
  if (!regs || !regs->is_array()) {
    return absl::InvalidArgumentError("registry file needs a \"registrations\" array");
  }
  RegistryFile out;
  out.pid = static_cast<pid_t>(pid->AsInt());
  out.start = start && start->is_int() ? static_cast<uint64_t>(start->AsInt()) : 0;
  for (const Value& rv : regs->AsArray()) {
    absl::StatusOr<Registration> r = RegistrationFromValue(rv);
    if (r.ok()) out.registrations.push_back(*std::move(r));
  }
  return out;
}

absl::StatusOr<std::unique_ptr<Matchmaker>> LocalMatchmaker::Create(std::string dir,
                                                                    std::string group) {
  const bool is_default = dir.empty();
  if (is_default) dir = DefaultRuntimeDir();
  while (dir.size() > 1 && dir.back() == '/') dir.pop_back();
  DirPolicy policy{.what = "local matchmaker",
                   .fix_hint = !is_default ? "or use another directory (local:///a/directory/"
                                             "of/yours, or local:///dir?group=NAME for one "
                                             "shared by a group)"
                               : geteuid() == 0 ? "or use the matchmaker URL local:///a/directory"
                                                  "/of/yours"
                                                : "or use a directory of yours: set "
                                                  "XDG_RUNTIME_DIR, or the matchmaker URL "
                                                  "local:///a/directory/of/yours"};
  std::optional<gid_t> gid;
  if (!group.empty()) {
    absl::StatusOr<gid_t> g = LookupGroup(group);
    if (!g.ok()) {
      return absl::NotFoundError(absl::StrCat("local matchmaker: ", g.status().message()));
    }
    gid = *g;
    policy.shared_group = gid;
    policy.shared_group_name = group;
  }
  if (absl::Status s = EnsurePrivateDir(dir, policy); !s.ok()) return s;
  struct stat st;
  if (lstat(dir.c_str(), &st) != 0) return Errno("cannot check", dir);
  return std::unique_ptr<Matchmaker>(
      new LocalMatchmaker(std::move(dir), std::move(group), gid, st.st_uid));
}

LocalMatchmaker::LocalMatchmaker(std::string dir, std::string group_name,
                                 std::optional<gid_t> group, uid_t dir_owner)
    : dir_(std::move(dir)),
      group_name_(std::move(group_name)),
      group_(group),
      readers_trust_(ReaderTrust(dir_owner, group)),
      own_name_(absl::StrCat(getpid(), "-", instance_counter.fetch_add(1), ".json")),
      own_file_(absl::StrCat(dir_, "/", own_name_)) {}

LocalMatchmaker::~LocalMatchmaker() { unlink(own_file_.c_str()); }

std::string LocalMatchmaker::url() const {
  return group_name_.empty() ? "local://" + dir_
                             : absl::StrCat("local://", dir_, "?group=", group_name_);
}

absl::Status LocalMatchmaker::WriteOwnFile() {
  if (own_.empty()) {
    if (unlink(own_file_.c_str()) != 0 && errno != ENOENT) return Errno("cannot remove", own_file_);
    return absl::OkStatus();
  }
  Array regs;
  for (const Registration& r : own_) regs.push_back(RegistrationToValue(r));
  const pid_t pid = getpid();
  absl::StatusOr<std::string> text = ToJson(Value(Object{
      {"pid", static_cast<int64_t>(pid)},
      {"start", static_cast<int64_t>(ProcessStartTime(pid))},
      {"registrations", std::move(regs)}}));
  if (!text.ok()) return text.status();
  // A shared directory's readers are the group's members.
  absl::StatusOr<FileId> id = WriteFileAtomically(
      dir_, own_name_, *text, {.mode = static_cast<mode_t>(group_ ? 0640 : 0600), .group = group_});
  if (!id.ok()) {
    return absl::UnavailableError(absl::StrCat("local matchmaker: ", id.status().message()));
  }
  own_id_ = *id;
  return absl::OkStatus();
}

absl::Status LocalMatchmaker::Register(const Registration& r) {
  if (absl::Status s = ValidateRegistration(r); !s.ok()) return s;
  absl::MutexLock lock(&mu_);
  if (std::find(own_.begin(), own_.end(), r) == own_.end()) own_.push_back(r);
  return WriteOwnFile();
}

absl::Status LocalMatchmaker::Unregister(const Registration& r) {
  absl::MutexLock lock(&mu_);
  auto it = std::find(own_.begin(), own_.end(), r);
  if (it == own_.end()) return absl::OkStatus();
  own_.erase(it);
  return WriteOwnFile();
}

absl::Status LocalMatchmaker::Heartbeat() {
  // Liveness is the process itself; only restore the file if it was removed or replaced.
  absl::MutexLock lock(&mu_);
  if (own_.empty() || SameFile(own_file_, own_id_)) return absl::OkStatus();
  ZRPC_LOG(kWarning, "local matchmaker: %s was removed or replaced; writing it again", own_file_);
  return WriteOwnFile();
}

absl::StatusOr<std::shared_ptr<const std::vector<Registration>>> LocalMatchmaker::Snapshot() {
  const int64_t mtime = DirMtimeNs(dir_);
  {
    absl::MutexLock lock(&cache_mu_);
    if (cache_ && mtime == cache_dir_mtime_ns_ && absl::Now() - cache_time_ < kCacheTtl) {
      return cache_;
    }
  }
  DIR* d = opendir(dir_.c_str());
  if (d == nullptr) return Errno("cannot list", dir_);
  auto all = std::make_shared<std::vector<Registration>>();
  while (dirent* e = readdir(d)) {
    absl::string_view name(e->d_name);
    // Not a registry: "." and "..", files being written ("*.tmp"), sockets, ...
    if (!absl::EndsWith(name, ".json")) continue;
    if (!IsRegistryFileName(name)) {
      ReportSkipped(name, e->d_ino, "is not named as zrpc names registry files (<pid>-<n>.json)");
      continue;
    }
    const std::string path = absl::StrCat(dir_, "/", name);
    absl::StatusOr<std::string> text =
        ReadUntrustedFile(path, kMaxRegistryFileBytes, readers_trust_);
    if (!text.ok()) {
      if (!absl::IsNotFound(text.status())) ReportSkipped(name, e->d_ino, text.status().message());
      continue;  // removed since listed: its process exited
    }
    absl::StatusOr<RegistryFile> file = ParseRegistryFile(*text);
    if (!file.ok()) {
      ReportSkipped(name, e->d_ino, absl::StrCat("is not a registry file: ", file.status().message()));
      continue;
    }
    if (!ProcessAlive(file->pid, file->start)) {
      ZRPC_LOG(kInfo, "local matchmaker: removing registrations of exited process %d (%s)",
               static_cast<int>(file->pid), path);
      unlink(path.c_str());
      continue;
    }
    for (Registration& r : file->registrations) all->push_back(std::move(r));
  }
  closedir(d);
  SortRegistrations(all.get());
  absl::MutexLock lock(&cache_mu_);
  cache_ = all;
  cache_time_ = absl::Now();
  cache_dir_mtime_ns_ = mtime;
  return cache_;
}

void LocalMatchmaker::ReportSkipped(absl::string_view name, ino_t ino, absl::string_view why) {
  {
    absl::MutexLock lock(&cache_mu_);
    if (reported_.size() >= kMaxReported) reported_.clear();
    if (!reported_.insert(absl::StrCat(name, "/", ino)).second) return;
  }
  // `why` names the path when it comes from ReadUntrustedFile.
  const std::string path = absl::StrCat(dir_, "/", name);
  if (absl::StrContains(why, path)) {
    ZRPC_LOG(kWarning, "local matchmaker: skipping a registry file: %s", why);
  } else {
    ZRPC_LOG(kWarning, "local matchmaker: skipping %s: it %s", path, why);
  }
}

absl::StatusOr<std::vector<Registration>> LocalMatchmaker::Resolve(std::string_view exchange,
                                                                   std::string_view key) {
  absl::StatusOr<std::shared_ptr<const std::vector<Registration>>> all = Snapshot();
  if (!all.ok()) return all.status();
  return Select(**all, exchange, key);
}

absl::StatusOr<std::vector<Registration>> LocalMatchmaker::List(std::string_view exchange) {
  absl::StatusOr<std::shared_ptr<const std::vector<Registration>>> all = Snapshot();
  if (!all.ok()) return all.status();
  std::vector<Registration> out;
  for (const Registration& r : **all) {
    if (exchange.empty() || r.exchange == exchange) out.push_back(r);
  }
  return out;
}

absl::StatusOr<std::unique_ptr<WatchHandle>> LocalMatchmaker::Watch(std::function<void()> on_change) {
  return WatchDirectory(dir_, std::move(on_change));
}

}  // namespace zrpc::internal
