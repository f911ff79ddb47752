// SPDX-License-Identifier: Apache-2.0
// The client side of a Transport: every call path (Call, MultiCall, CallMany, CallAsync, the
// casts) over one engine — RouteTable (where), InstanceHealth (who is in rotation), SocketPool
// (DEALERs) and CallSession (send with failover, the call monitor). A maintenance thread probes
// ejected instances and frees what belongs to endpoints that left the matchmaker; an async
// thread runs CallAsync's session. Thread-safe.
#ifndef ZRPC_SRC_CLIENT_CLIENT_CORE_H_
#define ZRPC_SRC_CLIENT_CLIENT_CORE_H_

#include <atomic>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <zmq.hpp>

#include "metrics/metrics.h"
#include "absl/synchronization/mutex.h"
#include "client/call_session.h"
#include "client/health.h"
#include "client/routes.h"
#include "client/socket_pool.h"
#include "server/worker_pool.h"
#include "zrpc/matchmaker.h"
#include "zrpc/transport.h"

namespace zrpc::internal {

class ClientCore {
 public:
  // `keyring`: this process's CURVE keys and trusted keys (null: plain).
  // `metrics` (outlives it): where calls and casts are counted, as the application saw them.
  ClientCore(zmq::context_t& ctx, const TransportOptions& options, WorkerPool& workers,
             Metrics& metrics, std::shared_ptr<Keyring> keyring = nullptr);
  ~ClientCore();
  ClientCore(const ClientCore&) = delete;
  ClientCore& operator=(const ClientCore&) = delete;

  // Starts resolving through `matchmaker` (which must outlive this) and the maintenance thread.
  void Start(Matchmaker& matchmaker);
  // Stops the threads and fails what CallAsync still waits for (TransportClosed); call before
  // the context is shut down. Idempotent.
  void Stop();
  // After the context was shut down: closes the sockets.
  void Shutdown() { sockets_.Shutdown(); }

  absl::StatusOr<Value> Call(const Context& context, std::string_view topic, Message message,
                             const CallOptions& options);
  // The stream keeps `keep_alive` (the transport's core) until it is destroyed, so it may
  // outlive the Transport (it then fails with TransportClosed).
  absl::StatusOr<std::unique_ptr<ReplyStream>> MultiCall(const Context& context,
                                                         std::string_view topic, Message message,
                                                         const CallOptions& options,
                                                         std::shared_ptr<void> keep_alive);
  void CallAsync(const Context& context, std::string_view topic, Message message,
                 std::function<void(absl::StatusOr<Value>)> done, const CallOptions& options);
  std::vector<absl::StatusOr<Value>> CallMany(const Context& context, std::string_view topic,
                                              std::vector<Message> messages,
                                              const CallManyOptions& options);
  absl::Status Cast(const Context& context, std::string_view topic, Message message,
                    const CastOptions& options);
  absl::Status FanoutCast(const Context& context, std::string_view topic, Message message,
                          const CastOptions& options);
  absl::Status CastToServer(const Context& context, std::string_view endpoint,
                            std::string_view topic, Message message, const CastOptions& options,
                            bool fanout);

  RouteTable& routes() { return *routes_; }
  InstanceHealth& health() { return health_; }
  SocketPool& sockets() { return sockets_; }
  ClientEnv env() { return ClientEnv{options_, sockets_, health_, routes_.get()}; }

 private:
  // The metrics handle of (topic, method, kind), from a per-thread cache (no lock once seen).
  ClientMethodStats* StatsFor(std::string_view topic, std::string_view method, RequestKind kind);
  struct Prepared;
  struct Outgoing;
  // A call or multicall ready to start: encoded, resolved, its candidates in order; its
  // attempts are counted under `stats` (looked up once by the caller).
  absl::StatusOr<Outgoing> PrepareCall(const Context& context, std::string_view topic,
                                       Message& message, std::string_view exchange,
                                       absl::Duration timeout, FrameKind kind, uint64_t token,
                                       ClientMethodStats* stats);
  // Starts `out` on `session`; when every candidate proved unreachable, asks the matchmaker
  // again and tries what it answers (NoConsumer when nobody is left).
  absl::Status Start(CallSession& session, Outgoing& out);
  absl::StatusOr<Prepared> Prepare(const Context& context, std::string_view topic,
                                   Message& message, std::string_view exchange, bool is_call,
                                   absl::Duration timeout);
  // `stats`: where its attempts are counted (null: not counted).
  absl::Status CastTo(const RouteList& list, const Prepared& p, std::string_view key,
                      std::string_view topic, ClientMethodStats* stats);
  void MaintenanceLoop();
  void Probe(absl::Time now);
  void AsyncLoop();
  void Complete(std::function<void(absl::StatusOr<Value>)> done, absl::StatusOr<Value> result);

  const TransportOptions& options_;
  WorkerPool& workers_;
  Metrics& metrics_;
  const uint64_t metrics_id_;  // tells this core's entries apart in the per-thread cache
  const std::shared_ptr<Keyring> keyring_;
  SocketPool sockets_;
  InstanceHealth health_;
  std::unique_ptr<RouteTable> routes_;
  std::atomic<bool> stopped_{false};

  absl::Mutex mu_;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  bool refresh_wanted_ ABSL_GUARDED_BY(mu_) = false;  // the route table has stale keys
  std::thread maintenance_;

  // CallAsync: requests queued for the async thread, which owns their session.
  struct AsyncRequest;
  absl::Mutex async_mu_;
  std::deque<std::unique_ptr<AsyncRequest>> async_queue_ ABSL_GUARDED_BY(async_mu_);
  bool async_stop_ ABSL_GUARDED_BY(async_mu_) = false;
  int async_wake_fd_ = -1;
  std::thread async_thread_;
  std::once_flag async_started_;
};

}  // namespace zrpc::internal

#endif  // ZRPC_SRC_CLIENT_CLIENT_CORE_H_
