// SPDX-License-Identifier: Apache-2.0
// Fuzz target: what a client does with the frames a service sends back (replies and beats),
// split at NUL bytes ("HEADER\0BODY"): ParseReplyFrames, the call monitor (the frame is matched
// to a call in flight; a beat may announce the service's interval), DecodeReplyBody (the reply,
// a stream value, a remote error, or a malformed reply as an RpcException). Invariants: errors are
// statuses (a remote failure is never OK), decoded replies encode and decode to the same reply.
#include <span>

#include "client/call_monitor.h"
#include "client/call_session.h"
#include "fuzz/fuzz_targets.h"
#include "zrpc/errors.h"
#include "zrpc/message.h"

namespace zrpc::fuzz {
namespace {

using internal::CallMonitor;
using internal::FrameKind;

constexpr std::string_view kEndpoint = "tcp://127.0.0.1:9501";

void CheckReplyRoundTrip(std::string_view body) {
  absl::StatusOr<Reply> r = DecodeReply(body);
  if (!r.ok()) return;
  if (r->failure) ZRPC_FUZZ_CHECK(!DeserializeRemoteException(*r->failure).ok());
  absl::StatusOr<std::string> wire = EncodeReply(*r);
  ZRPC_FUZZ_CHECK(wire.ok());
  absl::StatusOr<Reply> back = DecodeReply(*wire);
  ZRPC_FUZZ_CHECK(back.ok());
  ZRPC_FUZZ_CHECK(back->result == r->result && back->failure == r->failure &&
                  back->ending == r->ending && back->msg_id == r->msg_id);
}

}  // namespace

void FuzzReply(std::string_view data) {
  const std::vector<std::string_view> frames = SplitFrames(data, 3);
  if (frames.size() == 2) CheckReplyRoundTrip(frames[1]);
  const std::optional<internal::Header> header = internal::ParseReplyFrames(frames);
  if (!header) return;
  ZRPC_FUZZ_CHECK(frames.size() == 2);
  ZRPC_FUZZ_CHECK(header->kind == FrameKind::kReply || header->kind == FrameKind::kBeat);
  ZRPC_FUZZ_CHECK(!header->msg_id.empty());
  // Calls in flight: the seeds' ids, one of them sent to another instance.
  const absl::Time now = absl::Now();
  CallMonitor monitor;
  monitor.Add(
      "m1",
      CallMonitor::Call{
          .token = 1, .endpoint = std::string(kEndpoint), .deadline = now + absl::Seconds(5)},
      now);
  monitor.Add("m2", CallMonitor::Call{.token = 2, .endpoint = "tcp://127.0.0.1:9502"}, now);
  const CallMonitor::Call* call = monitor.Heard(header->msg_id, kEndpoint, now, header->beat_ms);
  if (call == nullptr) {
    ZRPC_FUZZ_CHECK(header->msg_id != "m1");
    return;  // a late reply, or another peer's: dropped
  }
  ZRPC_FUZZ_CHECK(call->token == 1 && call->beat > absl::ZeroDuration());
  ZRPC_FUZZ_CHECK(monitor.NextWake() > now);  // heard just now: neither lost nor late
  if (header->kind == FrameKind::kBeat) return;
  internal::ReplyOutcome outcome = internal::DecodeReplyBody(frames[1], "node1");
  if (!outcome.value.ok()) {
    ZRPC_FUZZ_CHECK(outcome.final);
    ZRPC_FUZZ_CHECK(!outcome.value.status().message().empty() ||
                    outcome.value.status().code() != absl::StatusCode::kOk);
  }
  if (outcome.final) monitor.Remove(header->msg_id);
  ZRPC_FUZZ_CHECK(monitor.size() == (outcome.final ? 1u : 2u));
}

}  // namespace zrpc::fuzz

ZRPC_FUZZ_ENTRY(zrpc::fuzz::FuzzReply)
