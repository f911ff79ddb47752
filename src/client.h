// The synchronous client engine: DEALER sockets per peer endpoint, leased by the calling thread
// for one send or one call (DESIGN §2: no hand-off on the hot path), and the call monitor that
// turns silence into PeerLost.
#ifndef ZRPC_SRC_CLIENT_H_
#define ZRPC_SRC_CLIENT_H_

#include <memory>
#include <string>
#include <vector>

#include <zmq.hpp>

#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "zrpc/transport.h"

namespace zrpc::internal {

// One DEALER connected to one service endpoint.
struct PeerSocket {
  std::unique_ptr<zmq::socket_t> socket;
  std::string endpoint;
  bool connected = false;  // a send has gone through at least once
};

// Where a request goes.
struct Route {
  std::string endpoint;
  std::string target;  // what the header names: topic, topic.host, fanout~topic, pool~P~topic
  std::string host;
};

class ClientSockets {
 public:
  ClientSockets(zmq::context_t& ctx, const TransportOptions& options)
      : ctx_(ctx), options_(options) {}

  // A socket for `endpoint`, idle or new. TransportClosed after Shutdown.
  absl::StatusOr<std::unique_ptr<PeerSocket>> Acquire(const std::string& endpoint);
  // Returns a socket; an unhealthy one (its peer died, or the context is gone) is closed.
  void Release(std::unique_ptr<PeerSocket> socket, bool healthy);
  // After the context was shut down: waits (bounded) for leased sockets, closes idle ones.
  void Shutdown();

  // Sends header and body on `s`, waiting until `deadline` for room (or for a first
  // connection). DEADLINE_EXCEEDED when it could not be queued in time.
  static absl::Status Send(PeerSocket& s, std::string_view header, std::string_view body,
                           absl::Time deadline);

 private:
  zmq::context_t& ctx_;
  const TransportOptions& options_;
  absl::Mutex mu_;
  bool closed_ ABSL_GUARDED_BY(mu_) = false;
  int leased_ ABSL_GUARDED_BY(mu_) = 0;
  absl::flat_hash_map<std::string, std::vector<std::unique_ptr<PeerSocket>>> idle_
      ABSL_GUARDED_BY(mu_);
};

}  // namespace zrpc::internal

#endif  // ZRPC_SRC_CLIENT_H_
