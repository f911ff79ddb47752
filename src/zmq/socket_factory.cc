// SPDX-License-Identifier: Apache-2.0
#include "zmq/socket_factory.h"

#include <sys/resource.h>

#include <atomic>

#include "absl/base/call_once.h"
#include "absl/strings/str_cat.h"
#include "base/log_internal.h"
#include "codec/json_internal.h"
#include "zrpc/errors.h"
#include "zrpc/message.h"
#include "security/zap_handler.h"

namespace zrpc::internal {

absl::Status ZmqError(std::string_view what, const zmq::error_t& e) {
  if (e.num() == ETERM) return TransportClosedError();
  return absl::UnavailableError(absl::StrCat(ToAbsl(what), ": ", e.what()));
}

absl::StatusOr<std::unique_ptr<zmq::socket_t>> MakeSocket(zmq::context_t& ctx, SocketRole role) {
  static const TransportOptions kDefaults;
  return MakeSocket(ctx, role, kDefaults);
}

bool IsServerRole(SocketRole role) {
  return role == SocketRole::kServiceRouter || role == SocketRole::kServicePub ||
         role == SocketRole::kSidecarRouter || role == SocketRole::kSidecarPub;
}

namespace {

// Before any connect or bind: the handshake uses them.
absl::Status ApplyCurve(zmq::socket_t& s, SocketRole role, const CurveSettings& curve) {
  if (curve.own == nullptr) return absl::OkStatus();
  if (IsServerRole(role)) {
    s.set(zmq::sockopt::curve_server, 1);
    s.set(zmq::sockopt::curve_secretkey, curve.own->secret_key);
    // A service's notification socket has a domain of its own: only keys with a listen role
    // may connect there (ZapHandler).
    s.set(zmq::sockopt::zap_domain,
          std::string(role == SocketRole::kServicePub ? kZapListenDomain : kZapDomain));
    return absl::OkStatus();
  }
  if (!IsCurveKey(curve.server_key)) {
    return absl::InvalidArgumentError(
        "CURVE is configured but the peer has no valid public key (a registration without one "
        "is a plain service: it cannot be reached securely)");
  }
  s.set(zmq::sockopt::curve_serverkey, curve.server_key);
  s.set(zmq::sockopt::curve_publickey, curve.own->public_key);
  s.set(zmq::sockopt::curve_secretkey, curve.own->secret_key);
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::unique_ptr<zmq::socket_t>> MakeSocket(zmq::context_t& ctx, SocketRole role,
                                                          const TransportOptions& options,
                                                          const CurveSettings& curve) {
  try {
    const zmq::socket_type type =
        role == SocketRole::kServiceRouter || role == SocketRole::kSidecarRouter
            ? zmq::socket_type::router
        : role == SocketRole::kServicePub  ? zmq::socket_type::xpub
        : role == SocketRole::kSidecarPub  ? zmq::socket_type::pub
        : role == SocketRole::kListenerSub || role == SocketRole::kSidecarSub
            ? zmq::socket_type::sub
            : zmq::socket_type::dealer;
    auto s = std::make_unique<zmq::socket_t>(ctx, type);
    if (absl::Status c = ApplyCurve(*s, role, curve); !c.ok()) return c;
    s->set(zmq::sockopt::linger, static_cast<int>(absl::ToInt64Milliseconds(options.linger)));
    s->set(zmq::sockopt::ipv6, 1);
    // A peer that connects and never completes the handshake holds a descriptor (and, with
    // CURVE, a ZAP round) only this long, not libzmq's default 30 s.
    s->set(zmq::sockopt::handshake_ivl,
           static_cast<int>(absl::ToInt64Milliseconds(kHandshakeTimeout)));
    if (role == SocketRole::kServicePub || role == SocketRole::kSidecarPub) {
      // XPUB with NODROP: a subscriber with a full queue makes the send fail (EAGAIN) instead of
      // dropping silently, so zrpc can count what it drops. (The sidecar's change notices are
      // hints, so its plain PUB may drop.)
      if (role == SocketRole::kServicePub) s->set(zmq::sockopt::xpub_nodrop, 1);
      s->set(zmq::sockopt::sndhwm, 10000);
      // What arrives on an XPUB is subscriptions ("TOPIC.PRIORITY" prefixes): a peer sending a
      // larger frame is cut off instead of growing the subscription trie without bound.
      // With CURVE the limit also applies to the handshake, whose INITIATE command is at least
      // 276 bytes: allow 1 KiB there; DrainSubscriptions still refuses a longer subscription.
      s->set(zmq::sockopt::maxmsgsize,
             static_cast<int64_t>(curve.own != nullptr ? 1024 : kMaxSubscriptionBytes));
      return s;
    }
    // ZMTP heartbeats keep connections honest; the call monitor (per-call beats) is what tells
    // the application that a peer died.
    s->set(zmq::sockopt::heartbeat_ivl, 1000);
    s->set(zmq::sockopt::heartbeat_timeout, 3000);
    s->set(zmq::sockopt::heartbeat_ttl, 3000);
    // libzmq drops the connection for a larger frame: a second guard behind zrpc's own check of
    // whole messages, with room for zrpc to answer "too large" itself first.
    // The sidecar's ROUTER takes frames up to twice its request limit, so that a request over
    // the limit gets an answer saying so rather than a closed connection.
    const size_t limit =
        role == SocketRole::kSidecarRouter   ? kMaxSidecarFrameBytes - (64 << 10)
        : role == SocketRole::kSidecarClient ? kMaxSidecarRequestBytes  // answers listing as many
                                             : options.max_message_size;
    s->set(zmq::sockopt::maxmsgsize, static_cast<int64_t>(limit + (64 << 10)));
    s->set(zmq::sockopt::sndhwm, 10000);
    s->set(zmq::sockopt::rcvhwm, 10000);
    s->set(zmq::sockopt::reconnect_ivl, 100);
    s->set(zmq::sockopt::reconnect_ivl_max, 2000);
    if (role == SocketRole::kServiceRouter) {
      s->set(zmq::sockopt::router_mandatory, 1);
      s->set(zmq::sockopt::sndhwm, kServiceReplyQueueMessages);
    } else if (role == SocketRole::kClientDealer || role == SocketRole::kSidecarClient) {
      // A client pings its service four times a second and drops a connection that has not
      // answered for a second (libzmq's I/O thread answers pings even while handlers are busy):
      // a hung (SIGSTOPped, frozen) instance is then noticed in about a second, as a lost
      // connection, instead of after three silent call beats.
      s->set(zmq::sockopt::heartbeat_ivl, 250);
      s->set(zmq::sockopt::heartbeat_timeout, 1000);
      // A sender queues only to live connections: nothing queued for a dead peer is delivered
      // stale when it comes back, and a send to a peer that is gone is refused (EAGAIN) rather
      // than queued, which is how the client tells "never reached" from "may have run".
      s->set(zmq::sockopt::immediate, 1);
      s->set(zmq::sockopt::routing_id, "c" + NewUniqueId());
    }
    return s;
  } catch (const zmq::error_t& e) {
    return ZmqError("cannot create socket", e);
  }
}

void RaiseOpenFileLimit() {
  static absl::once_flag once;
  absl::call_once(once, [] {
    struct rlimit limit;
    if (getrlimit(RLIMIT_NOFILE, &limit) != 0 || limit.rlim_cur >= limit.rlim_max) return;
    const rlim_t before = limit.rlim_cur;
    // An unlimited hard limit is taken as the kernel's own ceiling (fs.nr_open, 1 Mi by default).
    limit.rlim_cur = limit.rlim_max == RLIM_INFINITY ? rlim_t{1} << 20 : limit.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &limit) == 0) {
      ZRPC_LOG(kInfo, "raised this process's open-file limit from %d to %d",
               static_cast<int64_t>(before), static_cast<int64_t>(limit.rlim_cur));
    }
  });
}

RecvResult RecvMessage(zmq::socket_t& socket, std::vector<zmq::message_t>* frames, bool wait,
                       size_t max_frames) {
  frames->clear();
  zmq::message_t m;
  if (!socket.recv(m, wait ? zmq::recv_flags::none : zmq::recv_flags::dontwait)) {
    return RecvResult::kNone;
  }
  bool more = m.more();
  frames->push_back(std::move(m));
  while (more) {
    // The rest of a message is there at once (libzmq delivers messages whole); if it is not,
    // the connection broke mid-message and libzmq's reader state is no longer usable.
    zmq::message_t part;
    if (!socket.recv(part, zmq::recv_flags::dontwait)) return RecvResult::kTruncated;
    more = part.more();
    if (frames->size() < max_frames) frames->push_back(std::move(part));
  }
  return RecvResult::kMessage;
}

}  // namespace zrpc::internal
