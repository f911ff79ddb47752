// SPDX-License-Identifier: Apache-2.0
// A fixed pool of handler threads fed fairly: each task belongs to a lane (the server uses one
// lane per caller: its identity, else its address) and the threads take tasks from the lanes in
// turn, so one caller's backlog delays another caller's request by at most one task per thread.
// A named lane runs at most `lane_limit` tasks at once (its others wait queued), so one caller
// never holds every thread. Thread-safe.
#ifndef ZRPC_SRC_SERVER_WORKER_POOL_H_
#define ZRPC_SRC_SERVER_WORKER_POOL_H_

#include <deque>
#include <string>
#include <string_view>
#include <functional>
#include <thread>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"

namespace zrpc::internal {

class WorkerPool {
 public:
  // `lane_limit` < 1: no limit per lane. The pool's own lane ("") has none.
  explicit WorkerPool(int threads, int lane_limit = 0);
  ~WorkerPool();  // runs what is queued, then joins
  WorkerPool(const WorkerPool&) = delete;
  WorkerPool& operator=(const WorkerPool&) = delete;

  // Queues `task` in `lane` ("" for the pool's own lane); false once stopping (not run).
  bool Submit(std::function<void()> task) { return Submit("", std::move(task)); }
  bool Submit(std::string_view lane, std::function<void()> task);
  // Tasks queued and not yet started.
  size_t queued();
  // Stops taking tasks, runs the queued ones, joins the threads. Idempotent.
  void Stop();

 private:
  void Run();

  struct Lane {
    std::deque<std::function<void()>> tasks;
    int running = 0;
    bool in_turn = false;  // listed in turn_
  };
  // A lane with tasks that may start one now (under its limit).
  bool Ready(std::string_view name, const Lane& lane) const;

  const int lane_limit_;
  absl::Mutex mu_;
  absl::flat_hash_map<std::string, Lane> lanes_ ABSL_GUARDED_BY(mu_);
  // Lanes that have queued tasks and may start one, in order (a lane at its limit waits outside
  // until one of its tasks ends).
  std::deque<std::string> turn_ ABSL_GUARDED_BY(mu_);
  size_t queued_ ABSL_GUARDED_BY(mu_) = 0;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<std::thread> threads_;
};

}  // namespace zrpc::internal

#endif  // ZRPC_SRC_SERVER_WORKER_POOL_H_
