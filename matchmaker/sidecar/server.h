// SPDX-License-Identifier: Apache-2.0
// The zrpc-matchmaker sidecar: serves the protocol of matchmaker/sidecar/protocol.h to the
// services and clients of its host, over a backend (memory, ring:// or redis://).
//
//   absl::StatusOr<std::unique_ptr<SidecarServer>> server =
//       SidecarServer::Create({.endpoints = {"ipc:///run/zrpc/mm.sock"}});
//   std::thread t([&] { (*server)->Run(); });
//   ...
//   (*server)->Stop();
//   t.join();
//
// It answers lookups from its backend, publishes every change on its PUB, and takes a dead
// service out of rotation: at once when a connection closes and the process that owned
// registrations has exited (services of this machine), else when its client has not been heard
// from for the TTL (clients over tcp:// from other hosts).
//
// With keys (Options::security, DESIGN §6) its ROUTER and PUB are CurveZMQ servers: a ZAP handler
// started before they bind admits only the keys of its authorized_keys, registrations belong to
// the caller's identity (see Owner::connection) and, with Options::registrars, only those
// identities may register. If the handler stops, every request is refused and nothing is
// published (fail closed).
//
// Metrics (include/zrpc/metrics.h, "Sidecar"): it counts every request it answers by operation
// (hello, register, unregister, heartbeat, resolve, list; any other name is "other") and result
// (ok; refused: PERMISSION_DENIED, UNAUTHENTICATED or RESOURCE_EXHAUSTED; error: any other
// failure), the registrations it holds, its watchers and, over redis://, its round trips to
// Redis. Its watchers are the connections open to its PUB: every client and service of the
// host that watches for changes holds one (counted from the PUB's accepted and disconnected
// events; a connection whose CurveZMQ handshake fails comes and goes). Requests it drops
// unanswered (a bad header, a wrong number of frames) are not counted. Options::metrics_listen
// serves them at http://HOST:PORT/metrics.
#ifndef ZRPC_MATCHMAKER_SIDECAR_SERVER_H_
#define ZRPC_MATCHMAKER_SIDECAR_SERVER_H_

#include <sys/types.h>

#include <atomic>
#include <memory>
#include <optional>
#include <string>
#include <vector>
#include <zmq.hpp>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "matchmaker/backend.h"
#include "matchmaker/sidecar/registry.h"
#include "metrics/metrics.h"
#include "security/keyring.h"
#include "security/zap_handler.h"
#include "src/zmq/socket_factory.h"
#include "src/zmq/socket_monitor.h"
#include "zrpc/matchmaker.h"
#include "zrpc/value.h"

namespace zrpc::internal::sidecar {

// Created, served and stopped from one thread, except Stop() (any thread). Not copyable.
class SidecarServer {
 public:
  struct Options {
    // Where to listen (ROUTER); the first is the sidecar's URL, e.g. "ipc:///run/zrpc/mm.sock",
    // others may add "tcp://0.0.0.0:7400".
    std::vector<std::string> endpoints;
    // Where to publish changes; "" = the first endpoint plus ".pub" for ipc://, else
    // "tcp://127.0.0.1:*".
    std::string pub;
    // "memory" (standalone), "ring:///path/ring.json" or "redis://..."; not another sidecar.
    std::string backend = "memory";
    // How long a client that is not heard from keeps its registrations (its heartbeat is a fifth).
    absl::Duration ttl = absl::Seconds(5);
    // ipc:// sockets: their directory is created (0700, or 02750 with `socket_group`) or checked
    // as src/base/secure_fs.h's EnsurePrivateDir does (yours, or with `socket_group` yours or
    // root's of that group; writable by nobody else), and each socket gets this mode ...
    mode_t socket_mode = 0600;
    // ... and this group when set (its members may then connect: give socket_mode 0660).
    std::optional<gid_t> socket_group;
    std::string socket_group_name;  // for messages
    // How many registrations it takes per request, per connection and in all.
    RegistryLimits limits;
    // CurveZMQ: this sidecar's key pair and the keys it admits (none: plain ZeroMQ).
    SecurityOptions security;
    // With keys: the identity or authorized_keys group whose members may register ("" = every
    // admitted key). Others may still resolve and list.
    std::string registrars;
    // Tell systemd (sd_notify, when $NOTIFY_SOCKET is set: a Type=notify unit) "READY=1" when
    // Run starts serving and "STOPPING=1" when it returns.
    bool notify_systemd = true;
    // Serve Prometheus metrics at http://HOST:PORT/metrics ("" = not served; see Metrics::Listen
    // for the address), every interface ("*:9465", "0.0.0.0:9465", "[::]:9465") only with
    // `metrics_insecure`.
    std::string metrics_listen;
    bool metrics_insecure = false;
  };

  // Creates the backend and binds every socket. The ipc:// socket files are removed again when
  // the server is destroyed (unless another process has replaced them). INVALID_ARGUMENT for bad
  // options (no endpoint, a ttl under a second, a sidecar as backend, a bad backend URL, a relative
  // ipc:// path, registrars without keys, a bad key file or authorized_keys); FAILED_PRECONDITION
  // when an ipc:// socket's directory is not safe, or is missing and cannot be created (the message
  // says which and how to fix it), or the ZAP handler cannot start; UNAVAILABLE naming the endpoint
  // when it cannot be bound (and, for ipc://, what about its directory stops it); for
  // metrics_listen, INVALID_ARGUMENT (a bad address, every interface without metrics_insecure)
  // or UNAVAILABLE (cannot bind).
  static absl::StatusOr<std::unique_ptr<SidecarServer>> Create(Options options);
  SidecarServer(const SidecarServer&) = delete;
  SidecarServer& operator=(const SidecarServer&) = delete;
  ~SidecarServer();

  // Where changes are published (the bound address: a tcp port is resolved).
  const std::string& pub_endpoint() const { return pub_endpoint_; }
  // This run's random id, sent in every reply.
  const std::string& boot_id() const { return boot_; }
  const Options& options() const { return options_; }
  // The port /metrics is served on (0 when Options::metrics_listen is empty). Thread-safe.
  int metrics_port() const { return metrics_.listening_port(); }
  // The metrics in the Prometheus text format, as /metrics serves them. Thread-safe.
  std::string MetricsText() const { return metrics_.Text(); }

  // Serves until Stop() is called. Blocks.
  void Run();
  // Makes Run return within its next poll. Thread-safe and idempotent.
  void Stop();
  // The ZAP handler (null without keys), for tests of failing closed.
  ZapHandler* zap_for_testing() { return zap_.get(); }

  // Answers one request: `op` from its header, `body` its JSON text, `connection` the peer that
  // sent it (see Owner::connection), `identity` its CurveZMQ identity ("" without keys),
  // `peer_address` without keys its "addr:ADDRESS" ("" when unknown; see Owner::principal) — what
  // Run does for each request, without sockets: the sidecar fuzz target drives it. Not while
  // Run is running.
  absl::StatusOr<Value> Handle(std::string_view op, std::string_view body, std::string connection,
                               const std::string& identity = "",
                               const std::string& peer_address = "");

 private:
  SidecarServer(Options options, Backend backend, std::shared_ptr<Keyring> keyring);
  // With keys: starts the ZAP handler (before Bind).
  absl::Status StartAuthentication();
  // With keys: false (logged once) when the ZAP handler stopped: serve and publish nothing.
  bool AuthenticationRunning();
  // With keys: PERMISSION_DENIED unless `identity` may register (Options::registrars).
  absl::Status CheckRegistrar(const std::string& identity);
  // With keys: PERMISSION_DENIED unless `identity`'s roles cover `r`'s topic (MayServe).
  absl::Status CheckServe(const std::string& identity, const Registration& r);
  // CURVE server settings for our sockets (plain without keys).
  CurveSettings Curve() const;
  absl::Status Bind();
  // For an ipc:// endpoint: creates or checks its directory (Options::socket_mode's comment).
  absl::Status PrepareIpcDir(const std::string& endpoint) const;
  // Binds, then gives an ipc:// socket its mode and group and remembers its file.
  absl::Status BindWithMode(zmq::socket_t& socket, const std::string& endpoint);
  // Answers every waiting request on `router`.
  void Serve(zmq::socket_t& router);
  // `identity`: the caller's (with keys), whose roles must cover each registration.
  absl::StatusOr<Value> HandleRegister(std::string_view op, const Value& request,
                                       const Owner& owner, const std::string& identity);
  absl::StatusOr<Value> HandleHeartbeat(const Value& request, const Owner& owner,
                                        const std::string& identity);
  absl::StatusOr<Value> HandleLookup(std::string_view op, const Value& request);
  // Checks for exited services while a connection closed recently; expires silent clients.
  void Sweep();
  void BeatBackend();
  // Publishes the collected changes.
  void PublishChanges();
  // Tells systemd `state` when Options::notify_systemd (a failure is logged).
  void Notify(std::string_view state);
  // Counts one answered request (its operation as a bounded label).
  void CountRequest(std::string_view op, const absl::Status& result);
  // Reads the PUB's connection events into the watchers gauge.
  void CountWatchers();

  const Options options_;
  const std::string boot_;
  // Before the backend, which reports its Redis round trips to it: destroyed after it.
  Metrics metrics_{MetricsOptions{.sidecar = true}};
  std::unique_ptr<Matchmaker> backend_;
  Registry registry_;
  Changes changed_;
  std::unique_ptr<WatchHandle> backend_watch_;
  std::atomic<bool> backend_changed_{false};
  std::atomic<bool> stop_{false};
  std::string pub_endpoint_;
  absl::Time next_backend_beat_ = absl::InfiniteFuture();
  // Until then, a connection closed recently: look for exited services on every sweep.
  absl::Time check_exits_until_ = absl::InfinitePast();

  // The ipc:// socket files bound, removed on destruction if they are still ours.
  struct SocketFile {
    std::string path;
    dev_t dev;
    ino_t ino;
  };
  std::vector<SocketFile> socket_files_;

  // Requests refused for their size, and when that was last logged (rate-limited).
  uint64_t oversized_ = 0;
  absl::Time last_oversized_log_ = absl::InfinitePast();

  const std::shared_ptr<Keyring> keyring_;  // null: plain
  bool zap_down_logged_ = false;

  // Sockets last: they close before the context, and monitors before their sockets. The ZAP
  // handler stops after the sockets and before the context.
  zmq::context_t ctx_;
  std::unique_ptr<ZapHandler> zap_;
  std::vector<std::unique_ptr<zmq::socket_t>> routers_;
  std::unique_ptr<zmq::socket_t> pub_;
  std::vector<std::unique_ptr<SocketMonitor>> monitors_;
  // The PUB's connections (the watchers gauge): accepted less disconnected.
  std::unique_ptr<SocketMonitor> pub_monitor_;
  int64_t watchers_ = 0;
};

}  // namespace zrpc::internal::sidecar

#endif  // ZRPC_MATCHMAKER_SIDECAR_SERVER_H_
