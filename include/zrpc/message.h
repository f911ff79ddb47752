// SPDX-License-Identifier: Apache-2.0
// zrpc/message.h — RPC messages, replies and the 2.0 envelope they travel in.
//
// Requests are the seed's message dict: {"method", "args": {kwargs}, "version", "namespace",
// "_msg_id", "_unique_id", "_timeout", "_context_<key>": ...}. Replies are {"result", "failure",
// "ending", "_msg_id"}. Both travel wrapped in the envelope
// {"oslo.version": "2.0", "oslo.message": "<JSON text of the message>"}:
//
//   zrpc::Message m{.method = "add", .args = {{"a", 1}, {"b", 2}}, .version = "1.1"};
//   absl::StatusOr<std::string> wire = zrpc::EncodeMessage(m);
//   absl::StatusOr<zrpc::Message> back = zrpc::DecodeMessage(*wire);
//
// The decoders take untrusted input: every malformed field is an INVALID_ARGUMENT naming it, and
// an envelope version other than 2.x is UnsupportedRpcEnvelopeVersion. Thread-safe.
#ifndef ZRPC_MESSAGE_H_
#define ZRPC_MESSAGE_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "zrpc/context.h"
#include "zrpc/value.h"

namespace zrpc {

inline constexpr std::string_view kEnvelopeVersion = "2.0";
inline constexpr std::string_view kEnvelopeVersionKey = "oslo.version";
inline constexpr std::string_view kEnvelopeMessageKey = "oslo.message";
inline constexpr std::string_view kContextPrefix = "_context_";

// An RPC request (cast, call, multicall, fanout) as it travels.
struct Message {
  std::string method;
  Object args;          // the keyword arguments; a message without "args" has none
  std::string version;  // requested API version; empty = not sent (the server assumes "1.0")
  std::optional<std::string> ns;  // API namespace ("namespace"); nullopt = not sent or null
  std::string msg_id;             // "_msg_id": set on calls, names the replies
  std::string unique_id;          // "_unique_id": for duplicate detection
  std::optional<int64_t> timeout_ms;  // "_timeout": the caller's remaining time in ms
  Context context;                    // flattened as "_context_<key>"
  // "_reply_form": "message": the caller takes its replies as the bare reply object (no 2.0
  // envelope; docs/PROTOCOL.md section 4). zrpc's client asks so of services that accept bare
  // requests.
  bool bare_reply = false;
};

// One reply to a call or multicall. A call gets one reply with `ending` set; a multicall gets one
// per value and then an `ending` reply.
struct Reply {
  Value result;
  std::optional<std::string> failure;  // the JSON text of SerializeRemoteException, or none
  bool ending = false;
  std::string msg_id;
};

// The seed's serialize_msg: always the 2.0 envelope around the JSON text of `raw_msg`.
// INVALID_ARGUMENT when `raw_msg` cannot be written as JSON (non-finite double, bad UTF-8).
absl::StatusOr<std::string> SerializeMsg(const Value& raw_msg);
// The seed's deserialize_msg: a non-object, or an object lacking either envelope key, is returned
// unchanged (a 1.0 message); otherwise the envelope must be version 2.x
// (UnsupportedRpcEnvelopeVersion naming it) and its message is parsed and returned.
absl::StatusOr<Value> DeserializeMsg(Value msg, const JsonLimits& limits = {});

// The message dict (context flattened), and back. Unpack errors name the bad field.
absl::StatusOr<Value> PackMessage(const Message& message);
absl::StatusOr<Message> UnpackMessage(Value dict);
absl::StatusOr<Value> PackReply(const Reply& reply);
absl::StatusOr<Reply> UnpackReply(Value dict);

// Wire form: the envelope text. Equivalent to SerializeMsg(PackMessage(m)), written directly.
absl::StatusOr<std::string> EncodeMessage(const Message& message);
absl::StatusOr<std::string> EncodeReply(const Reply& reply);
// From wire text (2.0 envelope, or a bare 1.0 message dict).
absl::StatusOr<Message> DecodeMessage(std::string_view wire, const JsonLimits& limits = {});
absl::StatusOr<Reply> DecodeReply(std::string_view wire, const JsonLimits& limits = {});

// A new random id: 32 lowercase hex digits (a uuid4 hex in the seed) from the kernel's CSPRNG
// (getrandom, buffered per thread), so ids cannot be predicted from earlier ones. Thread-safe.
std::string NewUniqueId();

}  // namespace zrpc

#endif  // ZRPC_MESSAGE_H_
