// SPDX-License-Identifier: Apache-2.0
// A list of Watch callbacks, shared by the backends that notify watchers themselves.
#ifndef ZRPC_MATCHMAKER_WATCHERS_H_
#define ZRPC_MATCHMAKER_WATCHERS_H_

#include <functional>
#include <memory>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "zrpc/matchmaker.h"

namespace zrpc::internal {

class WatcherList {
 public:
  // Adds `on_change`; it is called by Notify until the returned handle is destroyed. The handle
  // may outlive this list.
  std::unique_ptr<WatchHandle> Add(std::function<void()> on_change) {
    auto fn = std::make_shared<std::function<void()>>(std::move(on_change));
    {
      absl::MutexLock lock(&state_->mu);
      state_->watchers.push_back(fn);
    }
    return std::make_unique<Handle>(state_, fn);
  }
  // Calls every watcher (not under a lock: watchers may call back into the matchmaker).
  void Notify() {
    std::vector<std::shared_ptr<std::function<void()>>> watchers;
    {
      absl::MutexLock lock(&state_->mu);
      watchers = state_->watchers;
    }
    for (auto& w : watchers) (*w)();
  }

 private:
  struct State {
    absl::Mutex mu;
    std::vector<std::shared_ptr<std::function<void()>>> watchers ABSL_GUARDED_BY(mu);
  };
  struct Handle : WatchHandle {
    Handle(std::shared_ptr<State> s, std::shared_ptr<std::function<void()>> f)
        : state(std::move(s)), fn(std::move(f)) {}
    ~Handle() override {
      absl::MutexLock lock(&state->mu);
      auto& w = state->watchers;
      w.erase(std::remove(w.begin(), w.end(), fn), w.end());
    }
    std::shared_ptr<State> state;
    std::shared_ptr<std::function<void()>> fn;
  };
  std::shared_ptr<State> state_ = std::make_shared<State>();
};

}  // namespace zrpc::internal

#endif  // ZRPC_MATCHMAKER_WATCHERS_H_
