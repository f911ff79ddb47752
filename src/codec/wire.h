// SPDX-License-Identifier: Apache-2.0
// The frame layout of zrpc messages (docs/PROTOCOL.md): a header frame of space-separated ASCII
// words, then a body frame (the JSON envelope, or empty).
//
//   request (client → service):  "zrpc1 <cast|call|multicall> <exchange> <target> <msg_id|->"
//   reply (service → client):        "zrpc1 reply <msg_id>"
//   beat (service → client):         "zrpc1 beat <msg_id> [<interval_ms>]"
//   cancel (client → service):   "zrpc1 cancel <msg_id>"
#ifndef ZRPC_SRC_CODEC_WIRE_H_
#define ZRPC_SRC_CODEC_WIRE_H_

#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "base/keys.h"

namespace zrpc::internal {

inline constexpr std::string_view kProtocol = "zrpc1";
// The longest MSG_ID a header may carry.
inline constexpr size_t kMaxMsgIdBytes = 128;

enum class FrameKind { kCast, kCall, kMultiCall, kReply, kBeat, kCancel };

struct Header {
  FrameKind kind = FrameKind::kCast;
  std::string_view exchange;  // requests only
  std::string_view target;    // requests only: "topic", "topic.host", "fanout~topic", "pool~P~topic"
  std::string_view msg_id;    // calls, replies, beats, cancels ("" for casts)
  int64_t beat_ms = 0;        // beats: the service's heartbeat interval, when it announces one
};

std::string_view FrameKindName(FrameKind kind);
// Appends the header RequestHeader returns to `out` (a reused buffer: no allocation once it has
// grown).
void AppendRequestHeader(FrameKind kind, std::string_view exchange, std::string_view target,
                         std::string_view msg_id, std::string* out);
std::string RequestHeader(FrameKind kind, std::string_view exchange, std::string_view target,
                          std::string_view msg_id);
std::string ControlHeader(FrameKind kind, std::string_view msg_id);
// "zrpc1 beat MSG_ID INTERVAL_MS": a beat that announces the service's heartbeat interval.
std::string BeatHeader(std::string_view msg_id, int64_t interval_ms);
// Views into `frame`. Every word is checked before use: MSG_ID 1..128 bytes of printable ASCII,
// EXCHANGE and TARGET by the name rules (ValidateName). INVALID_ARGUMENT (or FAILED_PRECONDITION
// for another protocol version) naming what is wrong.
absl::StatusOr<Header> ParseHeader(std::string_view frame);


}  // namespace zrpc::internal

#endif  // ZRPC_SRC_CODEC_WIRE_H_
