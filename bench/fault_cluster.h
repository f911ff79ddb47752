// SPDX-License-Identifier: Apache-2.0
// The processes of one zrpc-faults scenario: three zrpc-service instances, and the matchmaker's
// own processes (a zrpc-matchmaker sidecar, a redis-server, both or neither), all on 127.0.0.1
// or ipc:// in a private directory. The cluster starts and stops only its own children, by PID.
#ifndef ZRPC_BENCH_FAULT_CLUSTER_H_
#define ZRPC_BENCH_FAULT_CLUSTER_H_

#include <sys/types.h>

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "testing/child_process.h"
#include "testing/redis_server.h"

namespace zrpc::faults {

// The four matchmaker set-ups the tool exercises.
enum class MatchmakerKind { kLocal, kSidecar, kRedis, kSidecarRedis };
inline constexpr MatchmakerKind kAllMatchmakers[] = {
    MatchmakerKind::kLocal, MatchmakerKind::kSidecar, MatchmakerKind::kRedis,
    MatchmakerKind::kSidecarRedis};
// "local", "sidecar", "redis", "sidecar-redis".
std::string_view MatchmakerName(MatchmakerKind kind);
bool UsesRedis(MatchmakerKind kind);
bool UsesSidecar(MatchmakerKind kind);

// Where the programs the cluster starts are.
struct Binaries {
  std::string service;  // zrpc-service
  std::string sidecar;  // zrpc-matchmaker
  std::string redis;    // redis-server
};

// Open file descriptors (/proc/PID/fd) and resident memory (VmRSS of /proc/PID/status); -1 when
// the process is gone.
struct ProcStats {
  int fds = -1;
  long rss_kb = -1;
};
ProcStats ReadProcStats(pid_t pid);
// The sum over `pids` (processes that are gone count nothing).
ProcStats SumProcStats(const std::vector<pid_t>& pids);

// Redis settings of the redis matchmakers: registrations live 5 s and are refreshed every second,
// like the sidecar's default TTL and the services' heartbeat.
inline constexpr char kRedisQuery[] = "ttl=5&heartbeat=1";

// Thread-compatible.
class Cluster {
 public:
  // `dir` is a private, short directory (ipc:// paths) that the caller removes afterwards. With
  // `child_stderr` set, the children's stderr goes to that file instead of this process's.
  Cluster(MatchmakerKind kind, Binaries binaries, std::string dir, std::string child_stderr);
  Cluster(const Cluster&) = delete;
  Cluster& operator=(const Cluster&) = delete;
  ~Cluster();  // stops every child it started (SIGCONT first, then SIGTERM, then SIGKILL)

  // Starts the matchmaker's processes and `instances` services (hosts node1..nodeN, each on a
  // port of its own), and waits until the matchmaker lists all of them. Bounded (~20 s).
  absl::Status Start(int instances);

  // The matchmaker URL services and clients use.
  const std::string& url() const { return url_; }
  MatchmakerKind kind() const { return kind_; }

  int instances() const { return static_cast<int>(services_.size()); }
  // "node<i+1>".
  static std::string Host(int i);
  pid_t ServicePid(int i) const;
  std::vector<pid_t> ServicePids() const;
  // Sends `sig` to service `i` (SIGSTOP, SIGCONT, SIGTERM, SIGKILL).
  void SignalService(int i, int sig);
  // kill -9 and reap.
  void KillService(int i);
  // Waits up to `timeout` for service `i` to exit; false (and SIGKILL) when it did not.
  bool ReapService(int i, absl::Duration timeout);
  // Starts service `i` again (it must have exited), on its old port or a new ephemeral one, and
  // waits for its READY line (it is registered then). Bounded (15 s).
  absl::Status RestartService(int i, bool same_port);

  // The sidecar (sidecar kinds) and redis-server (redis kinds).
  pid_t SidecarPid() const;
  void KillSidecar();
  absl::Status RestartSidecar();
  void KillRedis();
  absl::Status RestartRedis();  // on the same port, empty (no persistence)

  // How many `compute` registrations a fresh matchmaker client sees now (-1: it cannot ask).
  int VisibleInstances() const;

 private:
  absl::Status StartService(int i, int port);
  absl::Status StartSidecar();
  testing::StartOptions ChildOptions() const;

  const MatchmakerKind kind_;
  const Binaries binaries_;
  const std::string dir_;
  const std::string child_stderr_;
  std::string url_;
  std::string sidecar_endpoint_;
  testing::RedisServer redis_;
  std::unique_ptr<testing::ChildProcess> sidecar_;
  std::vector<std::unique_ptr<testing::ChildProcess>> services_;
  std::vector<int> ports_;
};

}  // namespace zrpc::faults

#endif  // ZRPC_BENCH_FAULT_CLUSTER_H_
