// Every ZeroMQ socket zrpc makes is made here, so that its options (and, later, CurveZMQ keys)
// are set in one place.
#ifndef ZRPC_SRC_ZMQ_UTIL_H_
#define ZRPC_SRC_ZMQ_UTIL_H_

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <zmq.hpp>

#include "absl/status/statusor.h"
#include "zrpc/transport.h"

namespace zrpc::internal {

// kClientDealer: synchronous calls and casts (queues only to live connections);
// kAsyncDealer: asynchronous calls owned by the I/O thread (queues while connecting).
enum class SocketRole { kServiceRouter, kServicePub, kClientDealer, kAsyncDealer };

// A socket of `role` with zrpc's options: bounded linger, ZMTP heartbeats, IPv6, a per-frame size
// guard; ROUTER_MANDATORY on the service ROUTER; IMMEDIATE and a unique routing id on client
// DEALERs. Errors become statuses.
absl::StatusOr<std::unique_ptr<zmq::socket_t>> MakeSocket(zmq::context_t& ctx, SocketRole role,
                                                          const TransportOptions& options);

// The status for a ZeroMQ error (ETERM becomes TransportClosed).
absl::Status ZmqError(std::string_view what, const zmq::error_t& e);

// Receives every frame of one message (non-blocking unless `wait`). Returns false when nothing
// was there (EAGAIN).
bool RecvAll(zmq::socket_t& socket, std::vector<zmq::message_t>* frames, bool wait = false);

inline std::string_view View(const zmq::message_t& m) {
  return std::string_view(static_cast<const char*>(m.data()), m.size());
}

}  // namespace zrpc::internal

#endif  // ZRPC_SRC_ZMQ_UTIL_H_
