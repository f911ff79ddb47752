// SPDX-License-Identifier: Apache-2.0
// Every ZeroMQ socket zrpc makes is made here, so that its options (and, later, CurveZMQ keys)
// are set in one place.
#ifndef ZRPC_SRC_ZMQ_SOCKET_FACTORY_H_
#define ZRPC_SRC_ZMQ_SOCKET_FACTORY_H_

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <zmq.hpp>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "zrpc/security.h"
#include "zrpc/transport.h"

namespace zrpc::internal {

// Every socket of every role is made here:
//   kServiceRouter, kServicePub   a service's ROUTER and XPUB
//   kClientDealer                 every client call path and casts (queues only to live
//                                 connections, so that a send to a dead peer is refused, not
//                                 queued)
//   kListenerSub                  a notification listener
//   kSidecarRouter, kSidecarPub   the zrpc-matchmaker sidecar's sockets
//   kSidecarClient, kSidecarSub   a sidecar's clients (requests, change notices)
enum class SocketRole {
  kServiceRouter,
  kServicePub,
  kClientDealer,
  kListenerSub,
  kSidecarRouter,
  kSidecarPub,
  kSidecarClient,
  kSidecarSub,
};

// The largest frame a service's XPUB accepts: a subscription is a flag byte, a topic of at most
// 255 bytes, '.', and a priority name.
inline constexpr size_t kMaxSubscriptionBytes = 1 + 255 + 1 + 16;
// The largest request body the zrpc-matchmaker sidecar takes (a heartbeat of 20,000
// registrations is about 4 MiB). Its ROUTER cuts off a peer whose frame exceeds
// kMaxSidecarFrameBytes (libzmq closes the connection before the sidecar sees a byte of it);
// between the two the sidecar answers RESOURCE_EXHAUSTED itself, and its clients refuse to send
// more than kMaxSidecarRequestBytes in the first place.
inline constexpr size_t kMaxSidecarRequestBytes = 16 << 20;
inline constexpr size_t kMaxSidecarFrameBytes = 2 * kMaxSidecarRequestBytes;

// How long a connection may take to complete its ZMTP (and CURVE) handshake on every socket zrpc
// makes (ZMQ_HANDSHAKE_IVL; libzmq's default is 30 s): a peer that connects and stays silent is
// cut off after this, so it cannot hold descriptors for long.
inline constexpr absl::Duration kHandshakeTimeout = absl::Seconds(5);
// How many replies libzmq may queue for one connection of a service (its ROUTER's SNDHWM): what
// a client that stops reading leaves there is bounded by this many replies (and the kernel's
// socket buffers); the service keeps the rest in its own per-connection queue, counted against a
// byte budget (ServerEngine::SendFrames), instead of in libzmq where nothing counts bytes.
inline constexpr int kServiceReplyQueueMessages = 64;

// Raises this process's soft open-file limit (RLIMIT_NOFILE) to the hard one, once per process
// (logged at INFO): each connection a service or the sidecar accepts holds a descriptor.
void RaiseOpenFileLimit();

// CURVE for one socket (issue 10, DESIGN §6). `own` null: a plain socket. Server roles (the
// service ROUTER and XPUB, the sidecar ROUTER and PUB) become CURVE servers in the ZAP domain
// kZapDomain (their context must run a ZapHandler); client roles (DEALERs, SUBs) connect to the
// server whose public key is `server_key`.
struct CurveSettings {
  const CurveKeyPair* own = nullptr;
  std::string server_key;  // Z85; client roles only
};

// True for the roles that listen (bind): they are CURVE servers when keys are configured.
bool IsServerRole(SocketRole role);

// A socket of `role` with zrpc's options: bounded linger, a kHandshakeTimeout, ZMTP heartbeats,
// IPv6, a per-frame size guard; ROUTER_MANDATORY on the service ROUTER; IMMEDIATE and a unique
// routing id on client DEALERs; CURVE when `curve.own` is set. Errors become statuses.
absl::StatusOr<std::unique_ptr<zmq::socket_t>> MakeSocket(zmq::context_t& ctx, SocketRole role,
                                                          const TransportOptions& options,
                                                          const CurveSettings& curve = {});
// The same with the default TransportOptions (the sidecar and its clients).
absl::StatusOr<std::unique_ptr<zmq::socket_t>> MakeSocket(zmq::context_t& ctx, SocketRole role);

// The status for a ZeroMQ error (ETERM becomes TransportClosed).
absl::Status ZmqError(std::string_view what, const zmq::error_t& e);

enum class RecvResult {
  kNone,       // nothing was there (EAGAIN, or the receive timeout passed)
  kMessage,    // `frames` holds one whole message
  kTruncated,  // the rest of a multipart message did not follow: the socket must not be read
               // again (libzmq asserts on it); close it
};
// Receives every frame of one message: the first frame waits for at most the socket's
// ZMQ_RCVTIMEO when `wait` (else not at all); the following frames never wait. At most
// `max_frames` are kept, the rest of the message is read and dropped.
RecvResult RecvMessage(zmq::socket_t& socket, std::vector<zmq::message_t>* frames,
                       bool wait = false, size_t max_frames = 8);

inline std::string_view View(const zmq::message_t& m) {
  return std::string_view(static_cast<const char*>(m.data()), m.size());
}

}  // namespace zrpc::internal

#endif  // ZRPC_SRC_ZMQ_SOCKET_FACTORY_H_
