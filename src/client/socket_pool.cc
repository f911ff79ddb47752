// SPDX-License-Identifier: Apache-2.0
#include "client/socket_pool.h"

#include <chrono>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "base/log_internal.h"
#include "zmq/socket_factory.h"
#include "zrpc/errors.h"

namespace zrpc::internal {

void PeerSocket::PollEvents() {
  if (!monitor) return;
  monitor->Drain([this](uint16_t event) {
    switch (event) {
      case ZMQ_EVENT_HANDSHAKE_SUCCEEDED:
        // Up means the ZMTP handshake is done, not just TCP: a stopped (SIGSTOP) process's
        // kernel still accepts connections, and a send would wait on it forever.
        up = ever_up = true;
        refused = auth_failed = false;
        break;
      case ZMQ_EVENT_DISCONNECTED:
        if (up) lost = true;
        up = false;
        break;
      case ZMQ_EVENT_HANDSHAKE_FAILED_AUTH:
        // The service's ZAP handler refused this process's key.
        auth_failed = true;
        if (!up) refused = true;
        break;
      case ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL:
        // With CURVE: the peer does not hold the key it was registered with (or is plain).
        if (!server_key.empty()) auth_failed = true;
        if (!up) refused = true;
        break;
      case ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL:
        // With CURVE, what a wrong server key looks like from the client (libzmq 4.3.4: EPIPE).
        if (!server_key.empty()) auth_failed = true;
        if (!up) refused = true;
        break;
      case ZMQ_EVENT_CONNECT_RETRIED:
        if (!up) refused = true;
        break;
      default:
        break;
    }
  });
}

absl::StatusOr<std::unique_ptr<PeerSocket>> SocketPool::Acquire(const std::string& endpoint,
                                                                 const std::string& server_key) {
  const std::string key = KeyFor(server_key);
  std::unique_ptr<PeerSocket> other_key;  // closed outside the lock
  {
    absl::MutexLock lock(&mu_);
    if (closed_) return TransportClosedError();
    ++leased_;
    auto it = idle_.find(endpoint);
    if (it != idle_.end() && !it->second.empty()) {
      std::unique_ptr<PeerSocket> s = std::move(it->second.back());
      it->second.pop_back();  // an empty list stays (Retain and DropIdle remove it)
      if (s->server_key == key) return s;
      other_key = std::move(s);  // the endpoint now registers another key
    }
  }
  auto fail = [&](absl::Status status) {
    absl::MutexLock lock(&mu_);
    --leased_;
    return status;
  };
  CurveSettings curve;
  if (keyring_) curve = CurveSettings{&keyring_->own(), key};
  absl::StatusOr<std::unique_ptr<zmq::socket_t>> socket =
      MakeSocket(ctx_, SocketRole::kClientDealer, options_, curve);
  if (!socket.ok()) return fail(socket.status());
  absl::StatusOr<std::unique_ptr<SocketMonitor>> monitor = SocketMonitor::Create(
      ctx_, **socket,
      ZMQ_EVENT_HANDSHAKE_SUCCEEDED | ZMQ_EVENT_DISCONNECTED | ZMQ_EVENT_CONNECT_RETRIED |
          ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL | ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL |
          ZMQ_EVENT_HANDSHAKE_FAILED_AUTH);
  if (!monitor.ok()) return fail(monitor.status());
  try {
    (*socket)->connect(endpoint);
  } catch (const zmq::error_t& e) {
    return fail(ZmqError(absl::StrCat("cannot connect to ", endpoint), e));
  }
  auto s = std::make_unique<PeerSocket>();
  s->socket = *std::move(socket);
  s->monitor = *std::move(monitor);
  s->endpoint = endpoint;
  s->server_key = key;
  return s;
}

void SocketPool::Release(std::unique_ptr<PeerSocket> socket) {
  if (socket == nullptr) return;
  absl::MutexLock lock(&mu_);
  --leased_;
  if (socket->broken || closed_) {
    // Drop whatever is still queued for a peer that is gone.
    try {
      socket->socket->set(zmq::sockopt::linger, 0);
    } catch (const zmq::error_t&) {
    }
    return;  // closes
  }
  idle_[socket->endpoint].push_back(std::move(socket));
}

void SocketPool::DropIdle(std::string_view endpoint) {
  std::vector<std::unique_ptr<PeerSocket>> dropped;
  absl::MutexLock lock(&mu_);
  auto it = idle_.find(absl::string_view(endpoint.data(), endpoint.size()));
  if (it == idle_.end()) return;
  dropped = std::move(it->second);
  idle_.erase(it);
  for (auto& s : dropped) s->socket->set(zmq::sockopt::linger, 0);
}

void SocketPool::Retain(const absl::flat_hash_set<std::string>& live) {
  absl::MutexLock lock(&mu_);
  for (auto it = idle_.begin(); it != idle_.end();) {
    if (live.contains(it->first)) {
      ++it;
      continue;
    }
    for (auto& s : it->second) s->socket->set(zmq::sockopt::linger, 0);
    idle_.erase(it++);
  }
}

void SocketPool::Shutdown() {
  absl::MutexLock lock(&mu_);
  closed_ = true;
  // Callers blocked in ZeroMQ return at once now that the context is shut down; give them a
  // moment to hand their sockets back (closed then). A stream kept past Close holds its socket
  // and the core until it is destroyed; the context is terminated only after that.
  mu_.AwaitWithTimeout(absl::Condition(
                           +[](int* leased) { return *leased == 0; }, &leased_),
                       absl::Milliseconds(500));
  idle_.clear();
}

SocketPool::SendResult SocketPool::Send(PeerSocket& s, std::string_view header,
                                        std::string_view body, absl::Time connect_until,
                                        absl::Time deadline) {
  while (true) {
    try {
      if (s.socket->send(zmq::buffer(header), zmq::send_flags::sndmore | zmq::send_flags::dontwait)) {
        // The first frame is queued: the second always is (a message is queued whole).
        s.socket->send(zmq::buffer(body), zmq::send_flags::none);
        return SendResult::kSent;
      }
      // EAGAIN. With ZMQ_IMMEDIATE that means no live connection, or a full queue on one.
      s.PollEvents();
      if (s.Unreachable()) return SendResult::kUnreachable;
      const absl::Time now = absl::Now();
      const absl::Time until = s.up ? deadline : std::min(connect_until, deadline);
      if (now >= until) return s.up ? SendResult::kQueueFull : SendResult::kUnreachable;
      // Wait for room (or the first connection) and for news from the monitor, in short slices.
      zmq::pollitem_t items[2] = {{s.socket->handle(), 0, ZMQ_POLLOUT, 0},
                                  {s.monitor->handle(), 0, ZMQ_POLLIN, 0}};
      const int64_t ms = std::clamp<int64_t>(
          absl::ToInt64Milliseconds(absl::Ceil(until - now, absl::Milliseconds(1))), 1, 100);
      zmq::poll(items, 2, std::chrono::milliseconds(ms));
    } catch (const zmq::error_t& e) {
      if (e.num() == EINTR) continue;
      s.broken = true;
      return e.num() == ETERM ? SendResult::kClosed : SendResult::kUnreachable;
    }
  }
}

}  // namespace zrpc::internal
