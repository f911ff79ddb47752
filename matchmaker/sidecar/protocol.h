// SPDX-License-Identifier: Apache-2.0
// The zrpc-matchmaker sidecar's wire protocol: its constants and the helpers both ends use.
//
// Requests, on a DEALER to the sidecar's ROUTER, are two frames: "zmm1 OP ID" and a JSON body.
// The answer is "zmm1 reply ID" and {"ok": true, "result": ..., "boot": B} or
// {"ok": false, "error": {"code": N, "message": "..."}, "boot": B}. B, the boot id, is drawn at
// random when the sidecar starts: a client that sees it change knows the sidecar restarted (and,
// with the memory backend, forgot every registration), and sends all of its own again at once.
// OPs:
//   hello                                                  → {"pub": PUB endpoint, "boot": B,
//                                                              "heartbeat_ms": how often to beat}
//   register   {"client", "pid", "start", "registration"}   → {}
//   unregister {"client", "registration"}                   → {}
//   heartbeat  {"client", "pid", "start", "registrations"}  → {} (adds any it does not know)
//   resolve    {"exchange", "key"}                          → {"registrations": [...]}
//   list       {"exchange"}                                 → {"registrations": [...]}
// "client" names one client instance. "pid" and "start" are its process id and start time
// (clock ticks since boot, field 22 of /proc/PID/stat): a sidecar on the same machine that
// finds that process gone when a connection closes drops its registrations at once; 0 or absent
// means unknown, and the TTL applies (clients on other hosts, or other pid namespaces).
// Trust and limits: every registration is checked as services check theirs (ValidateRegistration:
// names, endpoint syntax, pool). A register of an invalid one is refused (INVALID_ARGUMENT naming
// the field, the value escaped); a heartbeat keeps its valid ones and answers INVALID_ARGUMENT
// naming the first refused ones ("2 of 3 registrations refused (the other 1 were accepted): #0:
// ..."). A registration belongs to the connection that registered it (see Owner::connection;
// with CurveZMQ, to the identity and client that registered it): an unregister from another is
// refused with PERMISSION_DENIED and the registration stays. With CurveZMQ, a sidecar started
// with registrars refuses register, unregister and a heartbeat carrying registrations from other
// identities (PERMISSION_DENIED); a sidecar whose ZAP handler stopped answers every request
// UNAVAILABLE and publishes nothing. A body over kMaxRequestBytes, more than 20,000 registrations
// in a request or owned by a connection, or more than 200,000 in all are refused with
// RESOURCE_EXHAUSTED, nothing of the request held (RegistryLimits). Requests of other than two
// frames, or with a header over kMaxHeaderBytes or not "zmm1 OP ID", are dropped with a log line.
// The sidecar publishes "zmm1 change KEY" on its PUB after every change ("*" when it cannot tell
// which key changed, or when many did); clients drop their cached answers then.
#ifndef ZRPC_MATCHMAKER_SIDECAR_PROTOCOL_H_
#define ZRPC_MATCHMAKER_SIDECAR_PROTOCOL_H_

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "src/zmq/socket_factory.h"
#include "zrpc/matchmaker.h"
#include "zrpc/value.h"

namespace zrpc::internal::sidecar {

inline constexpr std::string_view kProtocol = "zmm1";
inline constexpr std::string_view kHello = "hello";
inline constexpr std::string_view kRegister = "register";
inline constexpr std::string_view kUnregister = "unregister";
inline constexpr std::string_view kHeartbeat = "heartbeat";
inline constexpr std::string_view kResolve = "resolve";
inline constexpr std::string_view kList = "list";
// The key of a change notice that stands for every key.
inline constexpr std::string_view kAnyKey = "*";

// ipc://... and tcp://... matchmaker URLs name a sidecar.
bool IsSidecarUrl(std::string_view url);

// The largest request body the sidecar takes (RESOURCE_EXHAUSTED beyond; a client does not send
// one), and the largest header frame (dropped beyond).
inline constexpr size_t kMaxRequestBytes = kMaxSidecarRequestBytes;  // the ROUTER's limit
inline constexpr size_t kMaxHeaderBytes = 256;

// "zmm1 OP ID".
std::string RequestHeader(std::string_view op, uint64_t id);
struct RequestLine {
  std::string op;
  std::string id;
};
// nullopt when `header` is not "zmm1 OP ID".
std::optional<RequestLine> ParseRequestHeader(std::string_view header);
// "zmm1 reply ID".
std::string ReplyHeader(std::string_view id);
// "zmm1 change KEY".
std::string ChangeNotice(std::string_view key);

// The reply body for `result`, stamped with the sidecar's `boot` id.
std::string EncodeReply(const absl::StatusOr<Value>& result, std::string_view boot);
struct Reply {
  absl::StatusOr<Value> result;  // the sidecar's error as a status, or its result
  std::string boot;              // "" when the body is not a reply at all
};
Reply DecodeReply(std::string_view body);

// Who sends a request: the connection it came on, and the "client", "pid" and "start" fields.
struct Owner {
  // What owns registrations: the connection, as the sidecar's ROUTER names it (which socket, and
  // the peer's routing id). Not on the wire: the server fills it in. A client keeps one routing
  // id for its life (across reconnections), and libzmq refuses a second connection with an id
  // that is connected already, so another connection cannot act for it while it is connected.
  // With CurveZMQ it is the peer's authenticated identity (the ZAP "User-Id" of the message,
  // which nobody else can claim) and its "client" field: "key:LENGTH:IDENTITY/CLIENT". A client
  // that reconnects (or whose routing id changes) keeps its registrations; no other identity can
  // withdraw them; two processes sharing one key are still two owners (each its own TTL and exit
  // check).
  std::string connection;
  std::string client;  // the client's own name for itself (log lines)
  pid_t pid = 0;
  uint64_t start = 0;
  // Who is behind it, for the per-caller share of the table (RegistryLimits::per_client): with
  // CurveZMQ its identity ("key:LENGTH:IDENTITY"), else its peer address ("addr:127.0.0.1"; over
  // ipc:// libzmq gives "localhost:UID:GID:PID", its process), or the connection when there is
  // none. Not on the wire: the server fills it in; ""
  // means `connection`. Names a client chooses for itself never count: one connection cannot
  // take more than its caller's share by calling itself many clients.
  std::string principal;
};
// This process, as client `client`.
Owner Self(std::string client);
void AddOwner(const Owner& owner, Object* body);
Owner OwnerOf(const Value& body);

// A JSON array of registrations, and back: INVALID_ARGUMENT naming the field of a malformed
// entry, or when `array` is missing or not an array.
Value RegistrationsToValue(const std::vector<Registration>& regs);
absl::StatusOr<std::vector<Registration>> RegistrationsFromValue(const Value* array);

}  // namespace zrpc::internal::sidecar

#endif  // ZRPC_MATCHMAKER_SIDECAR_PROTOCOL_H_
