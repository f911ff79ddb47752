#include "client.h"

#include <chrono>

#include "absl/strings/str_cat.h"
#include "log_internal.h"
#include "zmq_util.h"
#include "zrpc/errors.h"

namespace zrpc::internal {

absl::StatusOr<std::unique_ptr<PeerSocket>> ClientSockets::Acquire(const std::string& endpoint) {
  {
    absl::MutexLock lock(&mu_);
    if (closed_) return TransportClosedError();
    ++leased_;
    auto it = idle_.find(endpoint);
    if (it != idle_.end() && !it->second.empty()) {
      std::unique_ptr<PeerSocket> s = std::move(it->second.back());
      it->second.pop_back();
      return s;
    }
  }
  auto fail = [&](absl::Status status) {
    absl::MutexLock lock(&mu_);
    --leased_;
    return status;
  };
  absl::StatusOr<std::unique_ptr<zmq::socket_t>> socket =
      MakeSocket(ctx_, SocketRole::kClientDealer, options_);
  if (!socket.ok()) return fail(socket.status());
  try {
    (*socket)->connect(endpoint);
  } catch (const zmq::error_t& e) {
    return fail(ZmqError(absl::StrCat("cannot connect to ", endpoint), e));
  }
  auto s = std::make_unique<PeerSocket>();
  s->socket = *std::move(socket);
  s->endpoint = endpoint;
  return s;
}

void ClientSockets::Release(std::unique_ptr<PeerSocket> socket, bool healthy) {
  absl::MutexLock lock(&mu_);
  --leased_;
  if (!healthy || closed_) {
    // Drop whatever is still queued for a peer that is gone.
    try {
      socket->socket->set(zmq::sockopt::linger, 0);
    } catch (const zmq::error_t&) {
    }
    return;  // closes
  }
  idle_[socket->endpoint].push_back(std::move(socket));
}

void ClientSockets::Shutdown() {
  absl::MutexLock lock(&mu_);
  closed_ = true;
  // Callers blocked in ZeroMQ return at once once the context is shut down; give them a moment
  // to hand their sockets back, but never hang on one that does not.
  mu_.AwaitWithTimeout(absl::Condition(
                           +[](int* leased) { return *leased == 0; }, &leased_),
                       absl::Seconds(5));
  if (leased_ != 0) ZRPC_LOG(kWarning, "closing with %d client sockets still in use", leased_);
  idle_.clear();
}

absl::Status ClientSockets::Send(PeerSocket& s, std::string_view header, std::string_view body,
                                 absl::Time deadline) {
  while (true) {
    try {
      if (s.socket->send(zmq::buffer(header), zmq::send_flags::sndmore | zmq::send_flags::dontwait)) {
        s.socket->send(zmq::buffer(body), zmq::send_flags::none);
        s.connected = true;
        return absl::OkStatus();
      }
      const absl::Duration left = deadline - absl::Now();
      if (left <= absl::ZeroDuration()) {
        return absl::DeadlineExceededError(absl::StrCat(
            s.connected ? "send queue to " : "no connection to ", s.endpoint,
            s.connected ? " stayed full" : " could be made", " in time"));
      }
      zmq::pollitem_t item{s.socket->handle(), 0, ZMQ_POLLOUT, 0};
      zmq::poll(&item, 1, std::chrono::milliseconds(std::max<int64_t>(
                              1, absl::ToInt64Milliseconds(left))));
    } catch (const zmq::error_t& e) {
      if (e.num() == EINTR) continue;
      return ZmqError(absl::StrCat("send to ", s.endpoint), e);
    }
  }
}

}  // namespace zrpc::internal
