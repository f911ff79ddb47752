// SPDX-License-Identifier: Apache-2.0
#include "zmq/socket_monitor.h"

#include <cstring>

#include <atomic>

#include "absl/strings/str_cat.h"

namespace zrpc::internal {
namespace {

std::atomic<uint64_t> monitor_counter{0};

}  // namespace

absl::StatusOr<std::unique_ptr<SocketMonitor>> SocketMonitor::Create(zmq::context_t& ctx,
                                                                     zmq::socket_t& socket,
                                                                     int events) {
  const std::string address = absl::StrCat("inproc://zrpc-monitor-", monitor_counter.fetch_add(1),
                                           "-", reinterpret_cast<uintptr_t>(socket.handle()));
  if (zmq_socket_monitor(socket.handle(), address.c_str(), events) != 0) {
    return absl::InternalError(absl::StrCat("zmq_socket_monitor: ", zmq_strerror(zmq_errno())));
  }
  try {
    zmq::socket_t pair(ctx, zmq::socket_type::pair);
    pair.set(zmq::sockopt::linger, 0);
    pair.connect(address);
    return std::unique_ptr<SocketMonitor>(new SocketMonitor(socket, std::move(pair)));
  } catch (const zmq::error_t& e) {
    zmq_socket_monitor(socket.handle(), nullptr, 0);
    return absl::InternalError(absl::StrCat("socket monitor: ", e.what()));
  }
}

SocketMonitor::~SocketMonitor() {
  zmq_socket_monitor(socket_.handle(), nullptr, 0);
  pair_.close();
}

int SocketMonitor::DrainWithAddress(
    const std::function<void(uint16_t, std::string_view)>& on_event) {
  int events = 0;
  try {
    // Each event is two frames: 6 bytes (event number, value), then the endpoint.
    zmq::message_t first, address;
    while (pair_.recv(first, zmq::recv_flags::dontwait)) {
      if (!first.more() || !pair_.recv(address, zmq::recv_flags::dontwait)) continue;
      while (address.more()) {  // not libzmq 4's form: skip the rest
        if (!pair_.recv(address, zmq::recv_flags::dontwait)) break;
      }
      ++events;
      if (first.size() >= 2) {
        uint16_t event;
        std::memcpy(&event, first.data(), sizeof(event));
        on_event(event, std::string_view(static_cast<const char*>(address.data()), address.size()));
      }
    }
  } catch (const zmq::error_t&) {
    return -1;
  }
  return events;
}

int SocketMonitor::Drain(const std::function<void(uint16_t)>& on_event) {
  int events = 0;
  try {
    // Each event is two frames: 6 bytes (event number, value), then the endpoint.
    zmq::message_t frame;
    bool first = true;
    while (pair_.recv(frame, zmq::recv_flags::dontwait)) {
      if (first && on_event && frame.size() >= 2) {
        uint16_t event;
        std::memcpy(&event, frame.data(), sizeof(event));
        on_event(event);
      }
      first = !frame.more();
      if (first) ++events;
    }
  } catch (const zmq::error_t&) {
    return -1;
  }
  return events;
}

}  // namespace zrpc::internal
