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
#include <fstream>
#include <sstream>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "matchmaker/identity.h"
#include "matchmaker/memory.h"
#include "matchmaker/process.h"
#include "matchmaker/registration_json.h"
#include "matchmaker/watch.h"
#include "src/base/log_internal.h"
#include "zrpc/value.h"

namespace zrpc::internal {
namespace {

// How long a directory listing is trusted while the directory itself is unchanged: bounds how
// long a process that died stays in rotation.
constexpr absl::Duration kCacheTtl = absl::Milliseconds(250);

std::atomic<int> instance_counter{0};

absl::Status Errno(std::string_view what, const std::string& path) {
  return absl::UnavailableError(absl::StrCat("local matchmaker: ", absl::string_view(what.data(), what.size()),
                                             " ", path, ": ", std::strerror(errno)));
}

std::string DefaultDir() {
  if (const char* xdg = std::getenv("XDG_RUNTIME_DIR"); xdg != nullptr && *xdg == '/') {
    return absl::StrCat(xdg, "/zrpc");
  }
  return absl::StrCat("/tmp/zrpc-", getuid());
}

absl::Status MakeDirs(const std::string& dir) {
  for (size_t pos = 1; pos <= dir.size(); ++pos) {
    if (pos != dir.size() && dir[pos] != '/') continue;
    std::string part = dir.substr(0, pos);
    if (mkdir(part.c_str(), 0700) != 0 && errno != EEXIST) return Errno("cannot create", part);
  }
  struct stat st;
  if (stat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) return Errno("not a directory:", dir);
  return absl::OkStatus();
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

absl::StatusOr<std::unique_ptr<Matchmaker>> LocalMatchmaker::Create(std::string dir) {
  if (dir.empty()) dir = DefaultDir();
  while (dir.size() > 1 && dir.back() == '/') dir.pop_back();
  if (absl::Status s = MakeDirs(dir); !s.ok()) return s;
  return std::unique_ptr<Matchmaker>(new LocalMatchmaker(std::move(dir)));
}

LocalMatchmaker::LocalMatchmaker(std::string dir)
    : dir_(std::move(dir)),
      own_file_(absl::StrCat(dir_, "/", getpid(), "-", instance_counter.fetch_add(1), ".json")) {}

LocalMatchmaker::~LocalMatchmaker() { unlink(own_file_.c_str()); }

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
  const std::string tmp = own_file_ + ".tmp";
  int fd = open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return Errno("cannot write", tmp);
  const bool written = write(fd, text->data(), text->size()) == static_cast<ssize_t>(text->size());
  close(fd);
  if (!written || rename(tmp.c_str(), own_file_.c_str()) != 0) {
    unlink(tmp.c_str());
    return Errno("cannot write", own_file_);
  }
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
  // Liveness is the process itself; only restore the file if someone removed it.
  absl::MutexLock lock(&mu_);
  if (own_.empty() || access(own_file_.c_str(), F_OK) == 0) return absl::OkStatus();
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
    if (!absl::EndsWith(name, ".json")) continue;
    const std::string path = absl::StrCat(dir_, "/", name);
    std::ifstream in(path);
    std::stringstream buf;
    buf << in.rdbuf();
    absl::StatusOr<RegistryFile> file = ParseRegistryFile(buf.str());
    if (!file.ok()) continue;  // being replaced, or not ours
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
