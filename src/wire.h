// The frame layout of zrpc messages (docs/PROTOCOL.md): a header frame of space-separated ASCII
// words, then a body frame (the JSON envelope, or empty).
//
//   request (client → service):  "zrpc1 <cast|call|multicall> <exchange> <target> <msg_id|->"
//   reply / beat (service → client): "zrpc1 <reply|beat> <msg_id>"
//   cancel (client → service):   "zrpc1 cancel <msg_id>"
#ifndef ZRPC_SRC_WIRE_H_
#define ZRPC_SRC_WIRE_H_

#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace zrpc::internal {

inline constexpr std::string_view kProtocol = "zrpc1";

enum class FrameKind { kCast, kCall, kMultiCall, kReply, kBeat, kCancel };

struct Header {
  FrameKind kind = FrameKind::kCast;
  std::string_view exchange;  // requests only
  std::string_view target;    // requests only: "topic", "topic.host", "fanout~topic", "pool~P~topic"
  std::string_view msg_id;    // calls, replies, beats, cancels ("" for casts)
};

std::string_view FrameKindName(FrameKind kind);
std::string RequestHeader(FrameKind kind, std::string_view exchange, std::string_view target,
                          std::string_view msg_id);
std::string ControlHeader(FrameKind kind, std::string_view msg_id);
// Views into `frame`. INVALID_ARGUMENT (or FAILED_PRECONDITION for another protocol version)
// naming what is wrong.
absl::StatusOr<Header> ParseHeader(std::string_view frame);

// Targets for pool members: "pool~<pool>~<topic>".
std::string PoolTarget(std::string_view pool, std::string_view topic);

}  // namespace zrpc::internal

#endif  // ZRPC_SRC_WIRE_H_
