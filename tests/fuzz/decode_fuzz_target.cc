// SPDX-License-Identifier: Apache-2.0
// Fuzz target for the JSON and message codecs (corpus/decode). Built as a libFuzzer binary with
// `tools/setup.sh fuzz`; the unit tests replay the checked-in corpus through the same function
// (fuzz_replay_test.cc). The other decoders have targets of their own (fuzz_targets.h).
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "codec/json_internal.h"
#include "fuzz/fuzz_targets.h"
#include "zrpc/errors.h"
#include "zrpc/message.h"
#include "zrpc/value.h"

namespace zrpc::fuzz {

// Decodes `data` every way zrpc does; any crash, hang or sanitizer report is a bug. Whatever
// decodes must encode again and decode to the same thing.
void DecodeOne(std::string_view data) {
  if (absl::StatusOr<Value> v = ParseJson(data); v.ok()) {
    absl::StatusOr<std::string> text = ToJson(*v);
    if (!text.ok() || !(ParseJson(*text).value_or(Value()) == *v)) __builtin_trap();
  }
  if (absl::StatusOr<Message> m = DecodeMessage(data); m.ok()) {
    absl::StatusOr<std::string> wire = EncodeMessage(*m);
    if (!wire.ok() || !DecodeMessage(*wire).ok()) __builtin_trap();
    // The bare form decodes too, and wrapped it is byte for byte the one-pass envelope.
    absl::StatusOr<std::string> bare = internal::EncodeBareMessage(*m);
    if (!bare.ok() || !DecodeMessage(*bare).ok()) __builtin_trap();
    std::string wrapped;
    internal::AppendEnvelope(*bare, &wrapped);
    if (wrapped != *wire) __builtin_trap();
  }
  if (absl::StatusOr<Reply> r = DecodeReply(data); r.ok()) {
    absl::StatusOr<std::string> wire = EncodeReply(*r);
    if (!wire.ok() || !DecodeReply(*wire).ok()) __builtin_trap();
    absl::StatusOr<std::string> bare = internal::EncodeBareReply(*r);
    if (!bare.ok() || !DecodeReply(*bare).ok()) __builtin_trap();
  }
  absl::Status remote = DeserializeRemoteException(data);
  if (remote.ok()) __builtin_trap();
}

}  // namespace zrpc::fuzz

ZRPC_FUZZ_ENTRY(zrpc::fuzz::DecodeOne)
