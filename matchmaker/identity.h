// SPDX-License-Identifier: Apache-2.0
// What makes two registrations the same one (the fields operator== compares), as a hash for
// tables keyed by registration, and the stable order every backend answers in.
#ifndef ZRPC_MATCHMAKER_IDENTITY_H_
#define ZRPC_MATCHMAKER_IDENTITY_H_

#include <algorithm>
#include <cstddef>
#include <tuple>
#include <vector>

#include "absl/hash/hash.h"
#include "zrpc/matchmaker.h"

namespace zrpc::internal {

// Hashes the fields of Registration's operator== (not heartbeat_ms), so that
// absl::flat_hash_map<Registration, T, RegistrationHash> finds a registration in O(1).
struct RegistrationHash {
  size_t operator()(const Registration& r) const {
    return absl::HashOf(r.exchange, r.topic, r.host, r.endpoint, r.pub_endpoint, r.pool, r.fanout,
                        r.public_key);
  }
};

// Sorts `regs` into the order Matchmaker::Resolve promises to be stable: by host, endpoint,
// topic, pool.
inline void SortRegistrations(std::vector<Registration>* regs) {
  std::sort(regs->begin(), regs->end(), [](const Registration& a, const Registration& b) {
    return std::tie(a.host, a.endpoint, a.topic, a.pool) <
           std::tie(b.host, b.endpoint, b.topic, b.pool);
  });
}

}  // namespace zrpc::internal

#endif  // ZRPC_MATCHMAKER_IDENTITY_H_
