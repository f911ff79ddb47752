// SPDX-License-Identifier: Apache-2.0
// What the server engine routes to: one consumer (a topic, direct topic, fanout or pool member of
// one Connection), and the state a Connection shares with the engine.
#ifndef ZRPC_SRC_SERVER_CONSUMER_H_
#define ZRPC_SRC_SERVER_CONSUMER_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "server/duplicate_window.h"
#include "zrpc/dispatcher.h"
#include "absl/synchronization/mutex.h"
#include "zrpc/matchmaker.h"
#include "zrpc/message.h"

namespace zrpc::internal {

// What a Connection shares with the engine.
struct ConnectionState {
  uint64_t id = 0;
  std::atomic<int> running{0};        // jobs queued or running on the worker pool
  std::atomic<bool> draining{false};  // Close() has begun: refuse new work, report not serving
};

// One consumer as the engine routes to it.
struct Consumer {
  std::shared_ptr<ConnectionState> connection;
  const Dispatcher* dispatcher = nullptr;          // a dispatching consumer, or
  std::function<void(const Message&)> callback;    // a raw pool member (JoinConsumerPool)
  Registration registration;
  std::string key;  // "<exchange> <target>"
  explicit Consumer(int window) : duplicates(window) {}
  // True when `unique_id` was seen recently (a repeat). Thread-safe: large requests are checked
  // by the worker that decodes them.
  bool SeenBefore(std::string_view unique_id) {
    absl::MutexLock lock(&duplicates_mu);
    return duplicates.Seen(unique_id);
  }

 private:
  absl::Mutex duplicates_mu;
  DuplicateWindow duplicates ABSL_GUARDED_BY(duplicates_mu);
};

}  // namespace zrpc::internal

#endif  // ZRPC_SRC_SERVER_CONSUMER_H_
