// A fixed pool of handler threads fed by one queue. Thread-safe.
#ifndef ZRPC_SRC_SERVER_WORKER_POOL_H_
#define ZRPC_SRC_SERVER_WORKER_POOL_H_

#include <deque>
#include <functional>
#include <thread>
#include <vector>

#include "absl/synchronization/mutex.h"

namespace zrpc::internal {

class WorkerPool {
 public:
  explicit WorkerPool(int threads);
  ~WorkerPool();  // runs what is queued, then joins
  WorkerPool(const WorkerPool&) = delete;
  WorkerPool& operator=(const WorkerPool&) = delete;

  // Queues `task`; false once stopping (the task is not run).
  bool Submit(std::function<void()> task);
  // Stops taking tasks, runs the queued ones, joins the threads. Idempotent.
  void Stop();

 private:
  void Run();

  absl::Mutex mu_;
  std::deque<std::function<void()>> tasks_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<std::thread> threads_;
};

}  // namespace zrpc::internal

#endif  // ZRPC_SRC_SERVER_WORKER_POOL_H_
