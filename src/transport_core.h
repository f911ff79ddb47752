// SPDX-License-Identifier: Apache-2.0
// The internal core of a Transport, shared (std::shared_ptr) by the public facades and by
// everything that outlives a call into them: connections, reply streams, notifiers and
// listeners. It owns the context, the worker pool, the server's I/O loop, the client engine and
// the matchmaker, and this process's registrations (it heartbeats them). Whoever holds it may
// use it after Transport::Close: operations then fail with TransportClosed instead of touching
// freed memory. Thread-safe.
#ifndef ZRPC_SRC_TRANSPORT_CORE_H_
#define ZRPC_SRC_TRANSPORT_CORE_H_

#include <memory>
#include <string>
#include <thread>

#include <zmq.hpp>

#include "absl/container/flat_hash_set.h"
#include "absl/synchronization/mutex.h"
#include "client/client_core.h"
#include "server/server_engine.h"
#include "zmq/reactor.h"
#include "server/worker_pool.h"
#include "zrpc/transport.h"

#include "security/keyring.h"
#include "security/zap_handler.h"

namespace zrpc::internal {

class ConnectionImpl;

class TransportCore {
 public:
  // Validates `options`, connects the matchmaker, starts the threads.
  static absl::StatusOr<std::shared_ptr<TransportCore>> Create(TransportOptions options);
  ~TransportCore();  // closes, then terminates the context
  TransportCore(const TransportCore&) = delete;
  TransportCore& operator=(const TransportCore&) = delete;

  // Closes the connections, stops the threads, shuts the context down (blocked calls return
  // TransportClosed). Idempotent.
  void Close();
  bool closed();

  const TransportOptions& options() const { return options_; }
  // This process's keys and the keys it admits and trusts; null without CURVE.
  const std::shared_ptr<Keyring>& keyring() const { return keyring_; }
  // Its ZAP handler (null without CURVE).
  ZapHandler* zap() { return zap_.get(); }
  Matchmaker& matchmaker() { return *matchmaker_; }
  Reactor& reactor() { return reactor_; }
  ServerEngine& server() { return server_; }
  ClientCore& client() { return client_; }
  Metrics& metrics() { return metrics_; }

  // Registers `r` with the matchmaker and keeps it alive with heartbeats; Unregister withdraws.
  absl::Status Register(const Registration& r);
  void Unregister(const Registration& r);

  // Connections tell the core they exist, so Close can close them first.
  void AddConnection(ConnectionImpl* c);
  void ForgetConnection(ConnectionImpl* c);

 private:
  TransportCore(TransportOptions options, std::shared_ptr<Keyring> keyring);
  absl::Status Init();
  void HeartbeatLoop();

  TransportOptions options_;
  std::shared_ptr<Keyring> keyring_;
  zmq::context_t ctx_;
  // Started before any socket binds (fail closed); stops with the context.
  std::unique_ptr<ZapHandler> zap_;
  WorkerPool workers_;
  Reactor reactor_;
  // Before the engines, which record into it; after them in destruction.
  Metrics metrics_;
  ServerEngine server_;
  ClientCore client_;
  std::shared_ptr<Matchmaker> matchmaker_;
  std::unique_ptr<WatchHandle> watch_;

  absl::Mutex mu_;
  bool closed_ ABSL_GUARDED_BY(mu_) = false;
  absl::flat_hash_set<ConnectionImpl*> connections_ ABSL_GUARDED_BY(mu_);
  int registrations_ ABSL_GUARDED_BY(mu_) = 0;
  std::thread heartbeat_thread_;
};

}  // namespace zrpc::internal

#endif  // ZRPC_SRC_TRANSPORT_CORE_H_
