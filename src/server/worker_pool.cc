// SPDX-License-Identifier: Apache-2.0
#include "server/worker_pool.h"
#include "base/thread.h"

namespace zrpc::internal {

WorkerPool::WorkerPool(int threads, int lane_limit) : lane_limit_(lane_limit) {
  if (threads < 1) threads = 1;
  for (int i = 0; i < threads; ++i) threads_.push_back(StartThread([this] { Run(); }));
}

WorkerPool::~WorkerPool() { Stop(); }

bool WorkerPool::Submit(std::string_view lane, std::function<void()> task) {
  absl::MutexLock lock(&mu_);
  if (stopping_) return false;
  Lane& l = lanes_[absl::string_view(lane.data(), lane.size())];
  l.tasks.push_back(std::move(task));
  ++queued_;
  if (!l.in_turn && Ready(lane, l)) {
    l.in_turn = true;
    turn_.emplace_back(lane);
  }
  return true;
}

bool WorkerPool::Ready(std::string_view name, const Lane& lane) const {
  return !lane.tasks.empty() && (lane_limit_ < 1 || name.empty() || lane.running < lane_limit_);
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
  std::string lane;
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
      lane = std::move(turn_.front());
      turn_.pop_front();
      Lane& l = lanes_.find(lane)->second;
      task = std::move(l.tasks.front());
      l.tasks.pop_front();
      --queued_;
      ++l.running;
      l.in_turn = Ready(lane, l);
      if (l.in_turn) turn_.push_back(lane);
    }
    task();
    task = nullptr;  // what it holds goes before its lane may take another thread
    absl::MutexLock lock(&mu_);
    auto it = lanes_.find(lane);
    Lane& l = it->second;
    --l.running;
    if (!l.in_turn && Ready(lane, l)) {
      l.in_turn = true;
      turn_.push_back(lane);  // it was at its limit: its next task may start now
    } else if (l.tasks.empty() && l.running == 0) {
      lanes_.erase(it);
    }
  }
}

}  // namespace zrpc::internal
