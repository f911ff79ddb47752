// SPDX-License-Identifier: Apache-2.0
// A fixed pool of handler threads fed fairly: each task belongs to a lane (the server uses one
// lane per client connection) and the threads take tasks from the lanes in turn, so one
// client's backlog delays another client's request by at most one task per thread. Thread-safe.
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
  explicit WorkerPool(int threads);
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

  absl::Mutex mu_;
  absl::flat_hash_map<std::string, std::deque<std::function<void()>>> lanes_ ABSL_GUARDED_BY(mu_);
  std::deque<std::string> turn_ ABSL_GUARDED_BY(mu_);  // lanes with queued tasks, in order
  size_t queued_ ABSL_GUARDED_BY(mu_) = 0;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<std::thread> threads_;
};

}  // namespace zrpc::internal

#endif  // ZRPC_SRC_SERVER_WORKER_POOL_H_
