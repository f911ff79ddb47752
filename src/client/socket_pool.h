// SPDX-License-Identifier: Apache-2.0
// Client DEALER sockets, one per service endpoint per user at a time, leased from a pool (DESIGN
// §2: no hand-off on the hot path). Each socket comes with a monitor that reports its connection
// state, so that a send to a dead peer is recognised as such (refused connect, lost connection)
// rather than waited on until a deadline.
#ifndef ZRPC_SRC_CLIENT_SOCKET_POOL_H_
#define ZRPC_SRC_CLIENT_SOCKET_POOL_H_

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <zmq.hpp>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "security/keyring.h"
#include "zmq/socket_monitor.h"
#include "zrpc/transport.h"

namespace zrpc::internal {

// One DEALER connected to one service endpoint, and what its monitor has said. Used by one
// thread at a time (whoever leased it).
struct PeerSocket {
  std::unique_ptr<zmq::socket_t> socket;
  std::unique_ptr<SocketMonitor> monitor;  // destroyed before the socket it watches
  std::string endpoint;
  std::string server_key;  // the CURVE key it connected with ("" plain)
  bool up = false;       // a connection is established now (ZMTP handshake done)
  bool ever_up = false;  // one was, at some point
  bool refused = false;  // a connect attempt or a handshake failed since the last connection
  bool lost = false;     // a connection went down since the last TakeLost()
  bool broken = false;   // must not be reused (a truncated message, a socket error)
  bool auth_failed = false;  // the last handshake failed authentication (a key was refused)

  // Reads the monitor's pending events (non-blocking) and updates the flags above.
  void PollEvents();
  // True once (per loss) when a connection this socket had went down.
  bool TakeLost() {
    PollEvents();
    const bool was = lost;
    lost = false;
    return was;
  }
  // No connection now, and either there was one (the peer went away) or a connect failed.
  bool Unreachable() const { return !up && (ever_up || refused); }
};

class SocketPool {
 public:
  // `keyring` null: plain sockets; else CURVE with this process's keys.
  SocketPool(zmq::context_t& ctx, const TransportOptions& options,
             std::shared_ptr<Keyring> keyring = nullptr)
      : ctx_(ctx), options_(options), keyring_(std::move(keyring)) {}

  // A socket for `endpoint` whose server key is `server_key` (CURVE; ignored without keys), idle
  // or new. TransportClosed after Shutdown. Thread-safe.
  absl::StatusOr<std::unique_ptr<PeerSocket>> Acquire(const std::string& endpoint,
                                                      const std::string& server_key = "");
  // The server key a socket for a registration with `public_key` uses ("" without CURVE).
  std::string KeyFor(const std::string& public_key) const {
    return keyring_ ? public_key : std::string();
  }
  // Returns a socket; a broken one, or any after Shutdown, is closed. Thread-safe.
  void Release(std::unique_ptr<PeerSocket> socket);
  // Closes the idle sockets of `endpoint` (its instance left rotation). Thread-safe.
  void DropIdle(std::string_view endpoint);
  // Closes the idle sockets of every endpoint not in `live`. Thread-safe.
  void Retain(const absl::flat_hash_set<std::string>& live);
  // After the context was shut down: waits (bounded) for leased sockets, closes idle ones.
  void Shutdown();

  // Sends `header` and `body` on `s` (both frames or neither). See SendResult.
  enum class SendResult { kSent, kUnreachable, kQueueFull, kClosed };
  static SendResult Send(PeerSocket& s, std::string_view header, std::string_view body,
                         absl::Time connect_until, absl::Time deadline);

 private:
  zmq::context_t& ctx_;
  const TransportOptions& options_;
  const std::shared_ptr<Keyring> keyring_;
  absl::Mutex mu_;
  bool closed_ ABSL_GUARDED_BY(mu_) = false;
  int leased_ ABSL_GUARDED_BY(mu_) = 0;
  absl::flat_hash_map<std::string, std::vector<std::unique_ptr<PeerSocket>>> idle_
      ABSL_GUARDED_BY(mu_);
};

}  // namespace zrpc::internal

#endif  // ZRPC_SRC_CLIENT_SOCKET_POOL_H_
