#include "zmq_util.h"

#include "absl/strings/str_cat.h"
#include "json_internal.h"
#include "zrpc/errors.h"
#include "zrpc/message.h"

namespace zrpc::internal {

absl::Status ZmqError(std::string_view what, const zmq::error_t& e) {
  if (e.num() == ETERM) return TransportClosedError();
  return absl::UnavailableError(absl::StrCat(ToAbsl(what), ": ", e.what()));
}

absl::StatusOr<std::unique_ptr<zmq::socket_t>> MakeSocket(zmq::context_t& ctx, SocketRole role,
                                                          const TransportOptions& options) {
  try {
    const zmq::socket_type type = role == SocketRole::kServiceRouter ? zmq::socket_type::router
                                  : role == SocketRole::kServicePub  ? zmq::socket_type::xpub
                                                                     : zmq::socket_type::dealer;
    auto s = std::make_unique<zmq::socket_t>(ctx, type);
    s->set(zmq::sockopt::linger, static_cast<int>(absl::ToInt64Milliseconds(options.linger)));
    s->set(zmq::sockopt::ipv6, 1);
    if (role == SocketRole::kServicePub) {
      // XPUB with NODROP: a subscriber with a full queue makes the send fail (EAGAIN) instead of
      // dropping silently, so zrpc can count what it drops.
      s->set(zmq::sockopt::xpub_nodrop, 1);
      s->set(zmq::sockopt::sndhwm, 10000);
      return s;
    }
    // ZMTP heartbeats keep connections honest; the call monitor (per-call beats) is what tells
    // the application that a peer died.
    s->set(zmq::sockopt::heartbeat_ivl, 1000);
    s->set(zmq::sockopt::heartbeat_timeout, 3000);
    s->set(zmq::sockopt::heartbeat_ttl, 3000);
    // libzmq drops the connection for a larger frame: a second guard behind zrpc's own check of
    // whole messages, with room for zrpc to answer "too large" itself first.
    s->set(zmq::sockopt::maxmsgsize, static_cast<int64_t>(options.max_message_size + (64 << 10)));
    s->set(zmq::sockopt::sndhwm, 10000);
    s->set(zmq::sockopt::rcvhwm, 10000);
    s->set(zmq::sockopt::reconnect_ivl, 100);
    s->set(zmq::sockopt::reconnect_ivl_max, 2000);
    if (role == SocketRole::kServiceRouter) {
      s->set(zmq::sockopt::router_mandatory, 1);
    } else {
      // A synchronous sender queues only to live connections, so nothing queued for a dead
      // peer is delivered stale when it comes back; it waits for the first connection itself.
      if (role == SocketRole::kClientDealer) s->set(zmq::sockopt::immediate, 1);
      s->set(zmq::sockopt::routing_id, "c" + NewUniqueId());
    }
    return s;
  } catch (const zmq::error_t& e) {
    return ZmqError("cannot create socket", e);
  }
}

bool RecvAll(zmq::socket_t& socket, std::vector<zmq::message_t>* frames, bool wait) {
  frames->clear();
  while (true) {
    zmq::message_t m;
    auto r = socket.recv(m, frames->empty() && !wait ? zmq::recv_flags::dontwait
                                                     : zmq::recv_flags::none);
    if (!r) return false;  // EAGAIN before the first frame (later frames arrive atomically)
    const bool more = m.more();
    frames->push_back(std::move(m));
    if (!more) return true;
  }
}

}  // namespace zrpc::internal
