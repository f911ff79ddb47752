// SPDX-License-Identifier: Apache-2.0
// Fuzz target: ring files (RingMatchmaker::Parse, what ring:// reads at start and on every
// change). Invariants: a ring that parses lists topics, and every host of a topic has endpoints
// that start with tcp:// or ipc:// (lookups take them without checking again); errors are
// INVALID_ARGUMENT statuses that name the file.
#include "fuzz/fuzz_targets.h"
#include "matchmaker/ring.h"

namespace zrpc::fuzz {

void FuzzRing(std::string_view data) {
  using Ring = internal::RingMatchmaker::Ring;
  absl::StatusOr<Ring> ring = internal::RingMatchmaker::Parse("/fuzz/ring.json", data);
  if (!ring.ok()) {
    ZRPC_FUZZ_CHECK(ring.status().code() == absl::StatusCode::kInvalidArgument);
    ZRPC_FUZZ_CHECK(ring.status().message().find("/fuzz/ring.json") != std::string_view::npos);
    return;
  }
  ZRPC_FUZZ_CHECK(!ring->topics.empty());
  for (const auto& [topic, hosts] : ring->topics) {
    ZRPC_FUZZ_CHECK(ValidateName("topic", topic).ok());
    ZRPC_FUZZ_CHECK(topic.find('.') == std::string::npos);
    ZRPC_FUZZ_CHECK(!hosts.empty());
    for (const std::string& host : hosts) {
      ZRPC_FUZZ_CHECK(ValidateName("host", host).ok());
      auto it = ring->hosts.find(host);
      ZRPC_FUZZ_CHECK(it != ring->hosts.end());
      const std::string& router = it->second.router;
      ZRPC_FUZZ_CHECK(router.rfind("tcp://", 0) == 0 || router.rfind("ipc://", 0) == 0);
    }
  }
}

}  // namespace zrpc::fuzz

ZRPC_FUZZ_ENTRY(zrpc::fuzz::FuzzRing)
