// SPDX-License-Identifier: Apache-2.0
// A time one thread writes and others read without a lock (what Matchmaker::LastReconnect()
// reports must not block).
#ifndef ZRPC_MATCHMAKER_ATOMIC_TIME_H_
#define ZRPC_MATCHMAKER_ATOMIC_TIME_H_

#include <atomic>
#include <cstdint>

#include "absl/time/time.h"

namespace zrpc::internal {

// Thread-safe. Starts as InfinitePast.
class AtomicTime {
 public:
  void Set(absl::Time t) { ns_.store(absl::ToUnixNanos(t)); }
  absl::Time Get() const {
    const int64_t ns = ns_.load();
    return ns == kNever ? absl::InfinitePast() : absl::FromUnixNanos(ns);
  }

 private:
  static constexpr int64_t kNever = INT64_MIN;
  std::atomic<int64_t> ns_{kNever};
};

}  // namespace zrpc::internal

#endif  // ZRPC_MATCHMAKER_ATOMIC_TIME_H_
