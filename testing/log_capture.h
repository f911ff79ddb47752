// SPDX-License-Identifier: Apache-2.0
// Collects zrpc's log lines while it lives (tests that assert what was logged). The lines are
// owned by the sink itself, so a zrpc thread still inside the sink when the capture ends writes
// to live memory.
#ifndef ZRPC_TESTING_LOG_CAPTURE_H_
#define ZRPC_TESTING_LOG_CAPTURE_H_

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "zrpc/log.h"

namespace zrpc::testing {

class LogCapture {
 public:
  LogCapture() : state_(std::make_shared<State>()) {
    SetLogSink([state = state_](LogLevel, std::string_view line) {
      absl::MutexLock lock(&state->mu);
      state->lines.emplace_back(line);
    });
  }
  ~LogCapture() { SetLogSink(nullptr); }
  LogCapture(const LogCapture&) = delete;
  LogCapture& operator=(const LogCapture&) = delete;

  std::vector<std::string> Lines() const {
    absl::MutexLock lock(&state_->mu);
    return state_->lines;
  }
  // How many lines contain `text`.
  int Count(std::string_view text) const {
    int n = 0;
    for (const std::string& l : Lines()) n += l.find(text) != std::string::npos ? 1 : 0;
    return n;
  }
  bool Contains(std::string_view text) const { return Count(text) > 0; }

 private:
  struct State {
    absl::Mutex mu;
    std::vector<std::string> lines ABSL_GUARDED_BY(mu);
  };
  std::shared_ptr<State> state_;
};

}  // namespace zrpc::testing

#endif  // ZRPC_TESTING_LOG_CAPTURE_H_
