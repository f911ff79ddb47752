// SPDX-License-Identifier: Apache-2.0
// Fuzz target: the zrpc-matchmaker sidecar protocol, both ends. The input is a request as the
// sidecar receives it, split at NUL bytes ("zmm1 OP ID\0BODY"): the header is parsed as Serve
// does and the request answered by SidecarServer::Handle (on a fresh memory-backed sidecar, no
// client connected); the answer must encode and decode back to the same result. The body is
// also read as a reply, as a sidecar client reads one: DecodeReply, the hello fields, and
// RegistrationsFromValue. Errors are statuses: an error reply is never OK.
#include <memory>

#include "fuzz/fuzz_targets.h"
#include "matchmaker/sidecar/protocol.h"
#include "matchmaker/sidecar/server.h"

namespace zrpc::fuzz {
namespace {

namespace sidecar = internal::sidecar;

void CheckRegistrations(const Value* array) {
  absl::StatusOr<std::vector<Registration>> regs = sidecar::RegistrationsFromValue(array);
  if (!regs.ok()) {
    ZRPC_FUZZ_CHECK(regs.status().code() == absl::StatusCode::kInvalidArgument);
    return;
  }
  const Value again = sidecar::RegistrationsToValue(*regs);
  absl::StatusOr<std::vector<Registration>> back = sidecar::RegistrationsFromValue(&again);
  ZRPC_FUZZ_CHECK(back.ok() && *back == *regs);
}

// What a sidecar client does with a reply body.
void ReadAsReply(std::string_view body) {
  sidecar::Reply reply = sidecar::DecodeReply(body);
  if (!reply.result.ok()) {
    // A canonical error code, whatever number the peer sent.
    const int code = static_cast<int>(reply.result.status().code());
    ZRPC_FUZZ_CHECK(code >= 1 && code <= 16);
    return;
  }
  const Value& result = *reply.result;
  if (const Value* pub = result.Find("pub"); pub && pub->is_string()) (void)pub->AsString();
  if (const Value* ms = result.Find("heartbeat_ms"); ms && ms->is_int()) (void)ms->AsInt();
  CheckRegistrations(result.Find("registrations"));
}

}  // namespace

void FuzzSidecar(std::string_view data) {
  const std::vector<std::string_view> frames = SplitFrames(data, 2);
  if (frames.empty()) return;
  ReadAsReply(frames.back());
  if (frames.size() != 2) return;
  std::optional<sidecar::RequestLine> line = sidecar::ParseRequestHeader(frames[0]);
  if (!line) return;
  ZRPC_FUZZ_CHECK(frames[0].substr(0, 5) == "zmm1 ");
  // A fresh sidecar per input, so that a crash reproduces from its input alone.
  absl::StatusOr<std::unique_ptr<sidecar::SidecarServer>> server = sidecar::SidecarServer::Create(
      {.endpoints = {"inproc://zrpc-fuzz-sidecar"}, .pub = "inproc://zrpc-fuzz-sidecar-pub"});
  ZRPC_FUZZ_CHECK(server.ok());
  absl::StatusOr<Value> answer = (*server)->Handle(line->op, frames[1], "fuzz-peer");
  const std::string encoded = sidecar::EncodeReply(answer, (*server)->boot_id());
  sidecar::Reply back = sidecar::DecodeReply(encoded);
  ZRPC_FUZZ_CHECK(back.boot == (*server)->boot_id());
  ZRPC_FUZZ_CHECK(back.result.ok() == answer.ok());
  if (answer.ok()) {
    ZRPC_FUZZ_CHECK(*back.result == *answer);
    if (line->op == sidecar::kResolve || line->op == sidecar::kList) {
      CheckRegistrations(answer->Find("registrations"));
    }
  } else {
    ZRPC_FUZZ_CHECK(back.result.status().code() == answer.status().code());
  }
  // What was registered is listed (the memory backend holds it).
  if (answer.ok() && line->op == sidecar::kRegister) {
    absl::StatusOr<Value> list = (*server)->Handle(sidecar::kList, "{}", "fuzz-peer");
    ZRPC_FUZZ_CHECK(list.ok());
    absl::StatusOr<std::vector<Registration>> regs =
        sidecar::RegistrationsFromValue(list->Find("registrations"));
    ZRPC_FUZZ_CHECK(regs.ok() && !regs->empty());
  }
}

}  // namespace zrpc::fuzz

ZRPC_FUZZ_ENTRY(zrpc::fuzz::FuzzSidecar)
