// SPDX-License-Identifier: Apache-2.0
#include "bench/fault_cluster.h"

#include <dirent.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "zrpc/matchmaker.h"

namespace zrpc::faults {

std::string_view MatchmakerName(MatchmakerKind kind) {
  switch (kind) {
    case MatchmakerKind::kLocal:
      return "local";
    case MatchmakerKind::kSidecar:
      return "sidecar";
    case MatchmakerKind::kRedis:
      return "redis";
    case MatchmakerKind::kSidecarRedis:
      return "sidecar-redis";
  }
  return "?";
}
bool UsesRedis(MatchmakerKind kind) {
  return kind == MatchmakerKind::kRedis || kind == MatchmakerKind::kSidecarRedis;
}
bool UsesSidecar(MatchmakerKind kind) {
  return kind == MatchmakerKind::kSidecar || kind == MatchmakerKind::kSidecarRedis;
}

ProcStats ReadProcStats(pid_t pid) {
  ProcStats stats;
  if (pid <= 0) return stats;
  const std::string proc = "/proc/" + std::to_string(pid);
  if (DIR* d = opendir((proc + "/fd").c_str())) {
    stats.fds = 0;
    while (const dirent* e = readdir(d)) {
      if (e->d_name[0] != '.') ++stats.fds;
    }
    closedir(d);
    if (pid == getpid()) --stats.fds;  // the descriptor opendir held on our own fd directory
  }
  std::ifstream status(proc + "/status");
  for (std::string line; std::getline(status, line);) {
    if (line.rfind("VmRSS:", 0) == 0) stats.rss_kb = std::strtol(line.c_str() + 6, nullptr, 10);
  }
  return stats;
}

ProcStats SumProcStats(const std::vector<pid_t>& pids) {
  ProcStats sum;
  for (pid_t pid : pids) {
    const ProcStats one = ReadProcStats(pid);
    if (one.fds >= 0) sum.fds = std::max(sum.fds, 0) + one.fds;
    if (one.rss_kb >= 0) sum.rss_kb = std::max(sum.rss_kb, 0L) + one.rss_kb;
  }
  return sum;
}

Cluster::Cluster(MatchmakerKind kind, Binaries binaries, std::string dir, std::string child_stderr)
    : kind_(kind),
      binaries_(std::move(binaries)),
      dir_(std::move(dir)),
      child_stderr_(std::move(child_stderr)),
      redis_(binaries_.redis) {}

Cluster::~Cluster() {
  // A stopped (SIGSTOP) child would sit out SIGTERM's grace period.
  for (auto& s : services_) s->Signal(SIGCONT);
  services_.clear();
  sidecar_.reset();
  redis_.Stop();
}

std::string Cluster::Host(int i) { return "node" + std::to_string(i + 1); }

testing::StartOptions Cluster::ChildOptions() const {
  return testing::StartOptions{.stderr_path = child_stderr_};
}

absl::Status Cluster::Start(int instances) {
  if (UsesRedis(kind_) && !redis_.Start())
    return absl::UnavailableError("redis-server did not start");
  const std::string redis_url = UsesRedis(kind_) ? redis_.Url(kRedisQuery) : "";
  if (UsesSidecar(kind_)) {
    sidecar_endpoint_ = "ipc://" + dir_ + "/mm.sock";
    if (absl::Status s = StartSidecar(); !s.ok()) return s;
    url_ = sidecar_endpoint_;
  } else if (UsesRedis(kind_)) {
    url_ = redis_url;
  } else {
    url_ = "local://" + dir_ + "/registry";
  }
  for (int i = 0; i < instances; ++i) {
    services_.push_back(std::make_unique<testing::ChildProcess>());
    ports_.push_back(testing::FreePort());
    if (absl::Status s = StartService(i, ports_[i]); !s.ok()) return s;
  }
  // Registrations through a sidecar or Redis can take a heartbeat to show everywhere.
  const absl::Time until = absl::Now() + absl::Seconds(20);
  while (VisibleInstances() != instances) {
    if (absl::Now() > until) return absl::DeadlineExceededError("services not registered in 20 s");
    absl::SleepFor(absl::Milliseconds(50));
  }
  return absl::OkStatus();
}

absl::Status Cluster::StartService(int i, int port) {
  std::vector<std::string> argv = {binaries_.service, "--host", Host(i), "--matchmaker", url_,
                                   "--topic",         "compute"};
  if (port > 0) argv.insert(argv.end(), {"--port", std::to_string(port)});
  if (services_[i]->StartAndWaitForLine(argv, "READY ", 15000, ChildOptions()).empty()) {
    return absl::UnavailableError(Host(i) + " (" + binaries_.service + ") did not start in 15 s");
  }
  return absl::OkStatus();
}

absl::Status Cluster::StartSidecar() {
  std::vector<std::string> argv = {binaries_.sidecar, "--endpoint", sidecar_endpoint_};
  if (UsesRedis(kind_)) argv.insert(argv.end(), {"--backend", redis_.Url(kRedisQuery)});
  sidecar_ = std::make_unique<testing::ChildProcess>();
  if (sidecar_->StartAndWaitForLine(argv, "READY ", 10000, ChildOptions()).empty()) {
    return absl::UnavailableError("zrpc-matchmaker did not start in 10 s");
  }
  return absl::OkStatus();
}

pid_t Cluster::ServicePid(int i) const { return services_[i]->pid(); }
std::vector<pid_t> Cluster::ServicePids() const {
  std::vector<pid_t> pids;
  for (const auto& s : services_) pids.push_back(s->pid());
  return pids;
}
void Cluster::SignalService(int i, int sig) { services_[i]->Signal(sig); }
void Cluster::KillService(int i) { services_[i]->Kill(); }

bool Cluster::ReapService(int i, absl::Duration timeout) {
  if (services_[i]->Reap(static_cast<int>(absl::ToInt64Milliseconds(timeout))) != -1) return true;
  services_[i]->Kill();
  return false;
}

absl::Status Cluster::RestartService(int i, bool same_port) {
  services_[i]->Kill();  // no-op when it has exited already
  return StartService(i, same_port ? ports_[i] : 0);
}

pid_t Cluster::SidecarPid() const { return sidecar_ ? sidecar_->pid() : -1; }
void Cluster::KillSidecar() {
  if (sidecar_) sidecar_->Kill();
}
absl::Status Cluster::RestartSidecar() {
  if (!UsesSidecar(kind_)) return absl::FailedPreconditionError("no sidecar");
  sidecar_->Kill();
  return StartSidecar();
}

void Cluster::KillRedis() { redis_.Kill(); }
absl::Status Cluster::RestartRedis() {
  if (!UsesRedis(kind_)) return absl::FailedPreconditionError("no redis-server");
  redis_.Kill();
  return redis_.Start() ? absl::OkStatus() : absl::UnavailableError("redis-server did not restart");
}

int Cluster::VisibleInstances() const {
  absl::StatusOr<std::unique_ptr<Matchmaker>> mm = CreateMatchmaker(url_);
  if (!mm.ok()) return -1;
  absl::StatusOr<std::vector<Registration>> r = (*mm)->Resolve(kDefaultExchange, "compute");
  return r.ok() ? static_cast<int>(r->size()) : -1;
}

}  // namespace zrpc::faults
