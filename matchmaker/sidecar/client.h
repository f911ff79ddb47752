// SPDX-License-Identifier: Apache-2.0
// The matchmaker backend that talks to a zrpc-matchmaker sidecar (URLs ipc://... and tcp://...;
// protocol in matchmaker/sidecar/protocol.h).
//
// Registry restarts cost nothing: every reply carries the sidecar's boot id, so the client sees
// a restarted sidecar in its next answer (a heartbeat at least every second) and sends all of
// its registrations again at once; while the sidecar does not answer, a background probe asks it
// every 200 ms and does the same as soon as it is back. Answers are cached until a change notice
// (5 s at most; an empty answer 250 ms at most) and served while the sidecar is away.
//
// CurveZMQ (DESIGN §6): a process with keys pins the sidecar's public key in the URL,
// "ipc:///run/zrpc/mm.sock?key=<40 Z85 characters>" or "...?key_file=/etc/zrpc/mm.pub" (a NAME.pub
// line), and talks to it (DEALER and SUB) as a CURVE client with its own key pair. A key the
// sidecar refuses, or a sidecar that does not hold the pinned key, fails requests at once
// (UNAUTHENTICATED, naming the key's fingerprint), never after the request timeout.
#ifndef ZRPC_MATCHMAKER_SIDECAR_CLIENT_H_
#define ZRPC_MATCHMAKER_SIDECAR_CLIENT_H_

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>
#include <zmq.hpp>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/synchronization/mutex.h"
#include "matchmaker/atomic_time.h"
#include "matchmaker/identity.h"
#include "matchmaker/sidecar/protocol.h"
#include "matchmaker/watchers.h"
#include "src/security/keyring.h"
#include "src/zmq/socket_factory.h"
#include "src/zmq/socket_monitor.h"
#include "zrpc/matchmaker.h"
#include "zrpc/value.h"

namespace zrpc::internal::sidecar {

// Thread-safe (every Matchmaker method may be called concurrently).
class SidecarMatchmaker : public Matchmaker {
 public:
  // Does not fail when the sidecar is not running yet: requests fail with UNAVAILABLE until it is.
  // `keyring`: this process's keys (null: plain ZeroMQ). INVALID_ARGUMENT when the URL pins a
  // sidecar key (?key=, ?key_file=) but there is no keyring, or the reverse, or the key or its
  // file is bad (the message says how to fix it).
  static absl::StatusOr<std::unique_ptr<Matchmaker>> Create(
      std::string url, std::shared_ptr<Keyring> keyring = nullptr);
  ~SidecarMatchmaker() override;

  absl::Status Register(const Registration& r) override;
  absl::Status Unregister(const Registration& r) override;
  absl::Status Heartbeat() override;
  absl::StatusOr<std::vector<Registration>> Resolve(std::string_view exchange,
                                                    std::string_view key) override;
  absl::StatusOr<std::vector<Registration>> List(std::string_view exchange) override;
  absl::StatusOr<std::unique_ptr<WatchHandle>> Watch(std::function<void()> on_change) override;
  std::string url() const override { return url_; }
  // The interval the sidecar asks for in its hello (a fifth of its TTL), at most a second.
  absl::Duration HeartbeatInterval() const override;
  // When the sidecar last answered again after being unreachable, or was found restarted.
  absl::Time LastReconnect() const override { return last_reconnect_.Get(); }

 private:
  struct Cached {
    std::vector<Registration> regs;
    absl::Time fetched;
  };

  enum class Wait { kAnswered, kDisconnected, kTimedOut };

  SidecarMatchmaker(std::string url, std::string endpoint, std::shared_ptr<Keyring> keyring,
                    std::string sidecar_key);
  // CURVE settings of our client sockets (plain without a keyring).
  CurveSettings Curve() const;
  void EnsureDealer() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Reads the DEALER's monitor: true when the connection dropped. Notes a failed or succeeded
  // CurveZMQ handshake in auth_error_.
  bool DrainDealerEvents() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Waits until the DEALER's handshake is done (or `deadline`); the error of a failed CurveZMQ
  // handshake at once.
  absl::Status AwaitHandshake(absl::Time deadline) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Waits for the answer headed `expected` until `deadline`, or until the connection drops.
  Wait AwaitReply(const std::string& expected, absl::Time deadline, Reply* reply)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // One request; UNAVAILABLE naming the sidecar when it does not answer within a second (and at
  // once while it is known to be away).
  absl::StatusOr<Value> Request(std::string_view op, Object body)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Request, then what a sidecar that came back or restarted needs (Resync).
  absl::StatusOr<Value> Call(std::string_view op, Object body) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status EnsureHello() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // After an answer stamped `boot`: a sidecar that was unreachable or has a new boot id is back.
  void NoteAnswer(const std::string& boot) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void NoteUnreachable() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Learns the (perhaps new) PUB and, unless `sent_everything`, sends every registration again.
  void Resync(bool sent_everything) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  Object WithOwner(Object body) const;
  Object HeartbeatBody() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Whether the sidecar answers a hello now, on a socket of its own (no lock held meanwhile).
  bool Probe();
  // After a successful probe: talk to the sidecar again.
  void Recover();
  // Asks the sidecar whether it restarted (resyncing if so).
  void CheckSidecar();
  // Calls Changed() when a request found the sidecar back (after the lock is released).
  void FlushNotices();
  // Marks every cached answer stale and tells the watchers.
  void Changed();
  // The listener thread: change notices, (re)connections of the SUB, probes while unreachable.
  void ListenForChanges();

  const std::string url_;                   // as given (with its ?key= option)
  const std::string endpoint_;              // what to connect to: url_ without its option
  const std::shared_ptr<Keyring> keyring_;  // null: plain
  const std::string sidecar_key_;           // Z85, pinned; with keyring_ only
  const Owner self_;
  // The DEALER's routing id, kept across reconnections: what owns our registrations at the
  // sidecar. Random and never shown, so that no one else can claim it.
  const std::string routing_id_;
  zmq::context_t ctx_;

  absl::Mutex mu_;
  std::unique_ptr<zmq::socket_t> dealer_ ABSL_GUARDED_BY(mu_);
  std::unique_ptr<SocketMonitor> dealer_monitor_ ABSL_GUARDED_BY(mu_);  // reset before dealer_
  uint64_t next_request_ ABSL_GUARDED_BY(mu_) = 0;
  bool dealer_up_ ABSL_GUARDED_BY(mu_) = false;  // its handshake succeeded
  std::string auth_error_ ABSL_GUARDED_BY(mu_);  // why the last handshake failed, until one works
  absl::flat_hash_set<Registration, RegistrationHash> own_ ABSL_GUARDED_BY(mu_);
  std::string pub_endpoint_ ABSL_GUARDED_BY(mu_);
  std::string boot_ ABSL_GUARDED_BY(mu_);
  // While the sidecar is away, requests fail at once until then (no pile-up of timeouts, e.g. a
  // service unregistering many consumers); the probe ends it early.
  absl::Time down_until_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
  bool unreachable_ ABSL_GUARDED_BY(mu_) = false;
  bool resync_ ABSL_GUARDED_BY(mu_) = false;

  std::atomic<bool> probing_{false};  // unreachable_, for the listener thread
  std::atomic<bool> came_back_{false};
  AtomicTime last_reconnect_;
  std::atomic<int64_t> heartbeat_ms_{1000};

  absl::Mutex cache_mu_;
  absl::flat_hash_map<std::string, Cached> cache_ ABSL_GUARDED_BY(cache_mu_);
  uint64_t generation_ ABSL_GUARDED_BY(cache_mu_) = 0;  // change notices so far
  WatcherList watchers_;

  std::atomic<bool> stop_{false};
  std::thread listener_;
};

}  // namespace zrpc::internal::sidecar

#endif  // ZRPC_MATCHMAKER_SIDECAR_CLIENT_H_
