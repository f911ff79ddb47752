// SPDX-License-Identifier: Apache-2.0
// Starting, reading and stopping child processes (the demo, the integration tests, the benchmarks
// and the fault tool start zrpc-service, zrpc-matchmaker and redis-server this way).
// Header-only; Linux.
#ifndef ZRPC_TESTING_CHILD_PROCESS_H_
#define ZRPC_TESTING_CHILD_PROCESS_H_

#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

extern char** environ;

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"

namespace zrpc::testing {

// The directory of the running executable (where zrpc's binaries sit side by side).
inline std::string SelfDir() {
  char buf[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", buf, sizeof(buf) - 1);
  if (n <= 0) return ".";
  std::string path(buf, n);
  return path.substr(0, path.rfind('/'));
}

// Where a child's stderr goes: inherited by default.
struct StartOptions {
  // Read stderr along with stdout (through WaitForLine, ReadLine, ReadAll).
  bool capture_stderr = false;
  // Otherwise, append stderr to this file ("" = inherit this process's stderr).
  std::string stderr_path;
};

// Waits until every thread of `pid` is stopped (SIGSTOP is delivered asynchronously: a thread
// on another CPU may still finish a reply).
inline bool WaitStopped(pid_t pid) {
  const absl::Time until = absl::Now() + absl::Seconds(5);
  while (absl::Now() < until) {
    bool all = true;
    if (DIR* d = opendir(absl::StrCat("/proc/", pid, "/task").c_str())) {
      while (dirent* e = readdir(d)) {
        if (e->d_name[0] == '.') continue;
        std::ifstream stat(absl::StrCat("/proc/", pid, "/task/", e->d_name, "/stat"));
        std::string line;
        std::getline(stat, line);
        const size_t close = line.rfind(')');
        if (close == std::string::npos || close + 2 >= line.size() || line[close + 2] != 'T') all = false;
      }
      closedir(d);
    }
    if (all) return true;
    absl::SleepFor(absl::Milliseconds(5));
  }
  return false;
}

// A child process with its stdout on a pipe. Stops (SIGTERM, then SIGKILL) when destroyed.
class ChildProcess {
 public:
  ChildProcess() = default;
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;
  ~ChildProcess() { Stop(); }

  // Starts `argv[0]` with `argv`. False when it cannot be started.
  bool Start(const std::vector<std::string>& argv, const StartOptions& options = {}) {
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0) return false;
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, fds[1], STDOUT_FILENO);
    if (options.capture_stderr) {
      posix_spawn_file_actions_adddup2(&actions, fds[1], STDERR_FILENO);
    } else if (!options.stderr_path.empty()) {
      posix_spawn_file_actions_addopen(&actions, STDERR_FILENO, options.stderr_path.c_str(),
                                       O_WRONLY | O_CREAT | O_APPEND, 0600);
    }
    std::vector<char*> args;
    for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    const int rc = posix_spawn(&pid_, args[0], &actions, nullptr, args.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    close(fds[1]);
    if (rc != 0) {
      close(fds[0]);
      pid_ = -1;
      return false;
    }
    out_ = fds[0];
    output_closed_ = false;
    buffer_.clear();
    return true;
  }

  // Starts `argv` and waits up to `timeout_ms` for a stdout line starting with `prefix` (the
  // "READY ..." line of zrpc's programs). Returns that line; "" when the child could not start or
  // did not print it in time (it is killed then).
  std::string StartAndWaitForLine(const std::vector<std::string>& argv, const std::string& prefix,
                                  int timeout_ms, const StartOptions& options = {}) {
    if (!Start(argv, options)) return "";
    std::string line = WaitForLine(prefix, timeout_ms);
    if (line.empty()) Kill();
    return line;
  }

  // Reads stdout until a line starting with `prefix` arrives (returned whole) or `timeout_ms`
  // passes (returns "").
  std::string WaitForLine(const std::string& prefix, int timeout_ms) {
    const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
    std::string line;
    while (ReadLine(&line, MillisecondsUntil(until))) {
      if (line.rfind(prefix, 0) == 0) return line;
    }
    return "";
  }

  // The next line of stdout (without its newline) within `timeout_ms`. False when none came in
  // time or the child closed its stdout (see output_closed()).
  bool ReadLine(std::string* line, int timeout_ms) {
    const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
    while (true) {
      if (const size_t nl = buffer_.find('\n'); nl != std::string::npos) {
        line->assign(buffer_, 0, nl);
        buffer_.erase(0, nl + 1);
        return true;
      }
      const int left = MillisecondsUntil(until);
      if (left <= 0 || out_ < 0 || output_closed_) return false;
      pollfd p{out_, POLLIN, 0};
      if (poll(&p, 1, left) <= 0) continue;
      char chunk[4096];
      ssize_t n = read(out_, chunk, sizeof(chunk));
      if (n <= 0) {
        output_closed_ = true;  // the child closed stdout (exited)
        return false;
      }
      buffer_.append(chunk, n);
    }
  }
  bool output_closed() const { return output_closed_ || out_ < 0; }

  // Everything the child writes until it closes its output (exits) or `timeout_ms` passes.
  std::string ReadAll(int timeout_ms) {
    const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
    std::string out = std::move(buffer_);
    buffer_.clear();
    while (out_ >= 0) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          until - std::chrono::steady_clock::now());
      if (left.count() <= 0) break;
      pollfd p{out_, POLLIN, 0};
      if (poll(&p, 1, static_cast<int>(left.count())) <= 0) continue;
      char chunk[4096];
      ssize_t n = read(out_, chunk, sizeof(chunk));
      if (n <= 0) break;
      out.append(chunk, n);
    }
    return out;
  }

  pid_t pid() const { return pid_; }
  bool running() const { return pid_ > 0; }

  void Signal(int sig) {
    if (pid_ > 0) kill(pid_, sig);
  }

  // Sends SIGKILL and reaps the child.
  void Kill() {
    if (pid_ <= 0) return;
    kill(pid_, SIGKILL);
    Reap(-1);
  }

  // Waits up to `timeout_ms` (-1 = forever) for the child to exit; returns its exit status
  // (as waitpid's), or -1 when it is still running.
  int Reap(int timeout_ms) {
    if (pid_ <= 0) return status_;
    const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
    while (true) {
      int status = 0;
      pid_t r = waitpid(pid_, &status, WNOHANG);
      if (r == pid_) {
        pid_ = -1;
        status_ = status;
        if (out_ >= 0) close(out_);
        out_ = -1;
        return status;
      }
      if (timeout_ms >= 0 && std::chrono::steady_clock::now() >= until) return -1;
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  }

  // SIGTERM, up to `grace_ms` to exit, then SIGKILL. Returns the exit status.
  int Stop(int grace_ms = 3000) {
    if (pid_ <= 0) return status_;
    Signal(SIGTERM);
    int status = Reap(grace_ms);
    if (status == -1) {
      Kill();
      status = status_;
    }
    return status;
  }

 private:
  static int MillisecondsUntil(std::chrono::steady_clock::time_point until) {
    return static_cast<int>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                until - std::chrono::steady_clock::now())
                                .count());
  }

  pid_t pid_ = -1;
  int out_ = -1;
  bool output_closed_ = false;
  int status_ = -1;
  std::string buffer_;
};

}  // namespace zrpc::testing

#endif  // ZRPC_TESTING_CHILD_PROCESS_H_
