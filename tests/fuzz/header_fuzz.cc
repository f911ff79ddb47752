// SPDX-License-Identifier: Apache-2.0
// Fuzz target: the wire header (src/codec/wire.h), as services and clients parse it. Whatever
// parses obeys the header grammar and writes back to a header that parses the same; whatever
// does not is an INVALID_ARGUMENT or FAILED_PRECONDITION status.
#include "codec/wire.h"
#include "fuzz/fuzz_targets.h"
#include "zrpc/matchmaker.h"

namespace zrpc::fuzz {
namespace {

using internal::FrameKind;
using internal::Header;

bool ValidMsgId(std::string_view id) {
  if (id.empty() || id.size() > internal::kMaxMsgIdBytes) return false;
  for (char c : id) {
    if (c < 0x21 || c > 0x7e) return false;
  }
  return true;
}

bool SameHeader(const Header& a, const Header& b) {
  return a.kind == b.kind && a.exchange == b.exchange && a.target == b.target &&
         a.msg_id == b.msg_id && a.beat_ms == b.beat_ms;
}

}  // namespace

void FuzzHeader(std::string_view data) {
  absl::StatusOr<Header> h = internal::ParseHeader(data);
  if (!h.ok()) {
    ZRPC_FUZZ_CHECK(h.status().code() == absl::StatusCode::kInvalidArgument ||
                    h.status().code() == absl::StatusCode::kFailedPrecondition);
    ZRPC_FUZZ_CHECK(!h.status().message().empty());
    return;
  }
  ZRPC_FUZZ_CHECK(data.size() <= 1024);
  std::string again;
  switch (h->kind) {
    case FrameKind::kCast:
    case FrameKind::kCall:
    case FrameKind::kMultiCall:
      ZRPC_FUZZ_CHECK(ValidateName("exchange", h->exchange).ok());
      ZRPC_FUZZ_CHECK(ValidateName("target", h->target).ok());
      ZRPC_FUZZ_CHECK(h->kind == FrameKind::kCast ? h->msg_id.empty() || ValidMsgId(h->msg_id)
                                                  : ValidMsgId(h->msg_id));
      again = internal::RequestHeader(h->kind, h->exchange, h->target, h->msg_id);
      ZRPC_FUZZ_CHECK(again == data);  // requests have one spelling
      break;
    case FrameKind::kReply:
    case FrameKind::kCancel:
      ZRPC_FUZZ_CHECK(ValidMsgId(h->msg_id));
      again = internal::ControlHeader(h->kind, h->msg_id);
      ZRPC_FUZZ_CHECK(again == data);
      break;
    case FrameKind::kBeat:
      ZRPC_FUZZ_CHECK(ValidMsgId(h->msg_id));
      ZRPC_FUZZ_CHECK(h->beat_ms >= 0 && h->beat_ms <= 999999999);
      again = h->beat_ms > 0 ? internal::BeatHeader(h->msg_id, h->beat_ms)
                             : internal::ControlHeader(h->kind, h->msg_id);
      break;
  }
  // A reply to any accepted msg_id is itself a header that parses (services echo the id).
  absl::StatusOr<Header> back = internal::ParseHeader(again);
  ZRPC_FUZZ_CHECK(back.ok());
  ZRPC_FUZZ_CHECK(SameHeader(*back, *h));
  if (!h->msg_id.empty()) {
    const std::string reply_frame = internal::ControlHeader(FrameKind::kReply, h->msg_id);
    absl::StatusOr<Header> reply = internal::ParseHeader(reply_frame);
    ZRPC_FUZZ_CHECK(reply.ok() && reply->msg_id == h->msg_id);
  }
}

}  // namespace zrpc::fuzz

ZRPC_FUZZ_ENTRY(zrpc::fuzz::FuzzHeader)
