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

// Who sends a request: the "client", "pid" and "start" fields.
struct Owner {
  std::string client;
  pid_t pid = 0;
  uint64_t start = 0;
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
