// SPDX-License-Identifier: Apache-2.0
// Events of a ZeroMQ socket (zmq_socket_monitor), read without blocking from an inproc PAIR: how
// a client tells a dead peer from a slow one (connected, disconnected, connect retried), how the
// sidecar learns that a connection closed, and its client that its subscription (re)connected.
#ifndef ZRPC_SRC_ZMQ_SOCKET_MONITOR_H_
#define ZRPC_SRC_ZMQ_SOCKET_MONITOR_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string_view>
#include <zmq.hpp>

#include "absl/status/statusor.h"

namespace zrpc::internal {

// Thread-compatible; lives on the thread of the socket it watches.
class SocketMonitor {
 public:
  // Reports `events` (ZMQ_EVENT_* bits) of `socket`, which must outlive the monitor (destroy
  // the monitor first: it stops the monitoring).
  static absl::StatusOr<std::unique_ptr<SocketMonitor>> Create(zmq::context_t& ctx,
                                                               zmq::socket_t& socket, int events);
  SocketMonitor(const SocketMonitor&) = delete;
  SocketMonitor& operator=(const SocketMonitor&) = delete;
  ~SocketMonitor();

  // For zmq::poll (ZMQ_POLLIN: events are waiting).
  void* handle() { return pair_.handle(); }
  // The socket the events arrive on (for Reactor::Watch).
  zmq::socket_t* events_socket() { return &pair_; }
  // Reads every waiting event, calling `on_event(ZMQ_EVENT_...)` for each when given; returns how
  // many there were, or -1 when the socket failed (the events read before that were reported).
  // Does not block.
  int Drain(const std::function<void(uint16_t)>& on_event = nullptr);
  // The same, with each event's endpoint (for a connecting socket, the address it connected
  // to, as libzmq resolved it: "tcp://127.0.0.1:5555").
  int DrainWithAddress(const std::function<void(uint16_t, std::string_view)>& on_event);

 private:
  SocketMonitor(zmq::socket_t& socket, zmq::socket_t pair)
      : socket_(socket), pair_(std::move(pair)) {}

  zmq::socket_t& socket_;
  zmq::socket_t pair_;
};

}  // namespace zrpc::internal

#endif  // ZRPC_SRC_ZMQ_SOCKET_MONITOR_H_
