// SPDX-License-Identifier: Apache-2.0
#include "server/worker_pool.h"
#include "base/thread.h"

namespace zrpc::internal {

WorkerPool::WorkerPool(int threads) {
  if (threads < 1) threads = 1;
  for (int i = 0; i < threads; ++i) threads_.push_back(StartThread([this] { Run(); }));
}

WorkerPool::~WorkerPool() { Stop(); }

bool WorkerPool::Submit(std::string_view lane, std::function<void()> task) {
  absl::MutexLock lock(&mu_);
  if (stopping_) return false;
  std::deque<std::function<void()>>& q = lanes_[absl::string_view(lane.data(), lane.size())];
  if (q.empty()) turn_.emplace_back(lane);
  q.push_back(std::move(task));
  ++queued_;
  return true;
}

size_t WorkerPool::queued() {
  absl::MutexLock lock(&mu_);
  return queued_;
}

void WorkerPool::Stop() {
  {
    absl::MutexLock lock(&mu_);
    if (stopping_ && threads_.empty()) return;
    stopping_ = true;
  }
  for (std::thread& t : threads_) {
    if (t.joinable() && t.get_id() != std::this_thread::get_id()) t.join();
  }
  threads_.clear();
}

void WorkerPool::Run() {
  while (true) {
    std::function<void()> task;
    {
      absl::MutexLock lock(&mu_);
      mu_.Await(absl::Condition(
          +[](WorkerPool* p) ABSL_EXCLUSIVE_LOCKS_REQUIRED(p->mu_) {
            return p->stopping_ || !p->turn_.empty();
          },
          this));
      if (turn_.empty()) return;  // stopping and drained
      // The lane whose turn it is gives one task, then goes to the back of the line.
      std::string lane = std::move(turn_.front());
      turn_.pop_front();
      auto it = lanes_.find(lane);
      task = std::move(it->second.front());
      it->second.pop_front();
      --queued_;
      if (it->second.empty()) {
        lanes_.erase(it);
      } else {
        turn_.push_back(std::move(lane));
      }
    }
    task();
  }
}

}  // namespace zrpc::internal
