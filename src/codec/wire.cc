// SPDX-License-Identifier: Apache-2.0
#include "codec/wire.h"


#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "codec/json_internal.h"
#include "zrpc/matchmaker.h"

namespace zrpc::internal {

std::string_view FrameKindName(FrameKind kind) {
  switch (kind) {
    case FrameKind::kCast: return "cast";
    case FrameKind::kCall: return "call";
    case FrameKind::kMultiCall: return "multicall";
    case FrameKind::kReply: return "reply";
    case FrameKind::kBeat: return "beat";
    case FrameKind::kCancel: return "cancel";
  }
  return "?";
}

void AppendRequestHeader(FrameKind kind, std::string_view exchange, std::string_view target,
                         std::string_view msg_id, std::string* out) {
  absl::StrAppend(out, ToAbsl(kProtocol), " ", ToAbsl(FrameKindName(kind)), " ", ToAbsl(exchange),
                  " ", ToAbsl(target), " ", msg_id.empty() ? "-" : ToAbsl(msg_id));
}

std::string RequestHeader(FrameKind kind, std::string_view exchange, std::string_view target,
                          std::string_view msg_id) {
  std::string out;
  AppendRequestHeader(kind, exchange, target, msg_id, &out);
  return out;
}

std::string ControlHeader(FrameKind kind, std::string_view msg_id) {
  return absl::StrCat(ToAbsl(kProtocol), " ", ToAbsl(FrameKindName(kind)), " ", ToAbsl(msg_id));
}

std::string BeatHeader(std::string_view msg_id, int64_t interval_ms) {
  return absl::StrCat(ToAbsl(kProtocol), " beat ", ToAbsl(msg_id), " ", interval_ms);
}

namespace {

// MSG_ID: 1..128 bytes of printable ASCII without spaces (it is echoed into replies and logs).
absl::Status ValidateMsgId(std::string_view id) {
  if (id.empty() || id.size() > kMaxMsgIdBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("msg_id must be 1..", kMaxMsgIdBytes, " bytes, got ", id.size()));
  }
  for (char c : id) {
    if (c < 0x21 || c > 0x7e) {
      return absl::InvalidArgumentError("msg_id must be printable ASCII without spaces");
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<Header> ParseHeader(std::string_view frame) {
  if (frame.size() > 1024) return absl::InvalidArgumentError("header frame longer than 1024 bytes");
  // At most 5 words; a sixth means too many.
  std::string_view words[6];
  size_t count = 0, start = 0;
  while (start <= frame.size() && count < 6) {
    size_t end = frame.find(' ', start);
    if (end == std::string_view::npos) end = frame.size();
    words[count++] = frame.substr(start, end - start);
    start = end + 1;
  }
  if (start <= frame.size()) count = 6;  // more words than any kind has
  if (count == 0 || words[0] != kProtocol) {
    if (count > 0 && words[0].substr(0, 4) == "zrpc") {
      return absl::FailedPreconditionError(absl::StrCat(
          "unsupported zrpc protocol \"", ToAbsl(words[0]), "\"; this endpoint speaks zrpc1"));
    }
    return absl::InvalidArgumentError("header frame does not start with \"zrpc1\"");
  }
  if (count < 3) return absl::InvalidArgumentError("header frame has no kind");
  Header h;
  const std::string_view kind = words[1];
  if (kind == "cast" || kind == "call" || kind == "multicall") {
    h.kind = kind == "cast" ? FrameKind::kCast
                            : kind == "call" ? FrameKind::kCall : FrameKind::kMultiCall;
    if (count != 5) {
      return absl::InvalidArgumentError(absl::StrCat(
          "request header needs 5 words (zrpc1 ", ToAbsl(kind), " EXCHANGE TARGET MSG_ID)"));
    }
    h.exchange = words[2];
    h.target = words[3];
    if (words[4].empty()) {
      // "zrpc1 cast EX T " (a trailing space) is not a cast without an id: that is spelled "-".
      return absl::InvalidArgumentError(
          "request header has an empty MSG_ID word (a cast without one sends \"-\")");
    }
    h.msg_id = words[4] == "-" ? std::string_view() : words[4];
    if (h.exchange.empty() || h.target.empty()) {
      return absl::InvalidArgumentError("request header has an empty exchange or target");
    }
    if (h.kind != FrameKind::kCast && h.msg_id.empty()) {
      return absl::InvalidArgumentError("call header needs a msg_id");
    }
    if (!h.msg_id.empty()) {
      if (absl::Status s = ValidateMsgId(h.msg_id); !s.ok()) return s;
    }
    if (absl::Status s = ValidateName("exchange", h.exchange); !s.ok()) return s;
    if (absl::Status s = ValidateName("target", h.target); !s.ok()) return s;
    return h;
  }
  if (kind == "beat" && count == 4) {
    // The optional fourth word announces the service's heartbeat interval (ms).
    int64_t ms = 0;
    const std::string_view w = words[3];
    if (w.empty() || w.size() > 9) return absl::InvalidArgumentError("beat interval must be 1..9 digits");
    for (char c : w) {
      if (c < '0' || c > '9') return absl::InvalidArgumentError("beat interval must be digits");
      ms = ms * 10 + (c - '0');
    }
    h.beat_ms = ms;
    count = 3;
  }
  if (kind == "reply" || kind == "beat" || kind == "cancel") {
    h.kind = kind == "reply" ? FrameKind::kReply
                             : kind == "beat" ? FrameKind::kBeat : FrameKind::kCancel;
    if (count != 3 || words[2].empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat(ToAbsl(kind), " header needs 3 words (zrpc1 ", ToAbsl(kind), " MSG_ID)"));
    }
    h.msg_id = words[2];
    if (absl::Status s = ValidateMsgId(h.msg_id); !s.ok()) return s;
    return h;
  }
  return absl::InvalidArgumentError(absl::StrCat("unknown frame kind \"", ToAbsl(kind), "\""));
}

}  // namespace zrpc::internal
