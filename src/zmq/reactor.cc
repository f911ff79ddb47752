// SPDX-License-Identifier: Apache-2.0
#include "zmq/reactor.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <future>

#include "absl/strings/str_cat.h"
#include "base/log_internal.h"
#include "zrpc/errors.h"
#include "base/thread.h"

namespace zrpc::internal {

Reactor::~Reactor() {
  Stop();
  if (wake_fd_ >= 0) close(wake_fd_);
}

absl::Status Reactor::Start(std::function<void()> on_wake, std::function<void()> on_exit) {
  wake_fd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (wake_fd_ < 0) return absl::InternalError(absl::StrCat("eventfd: ", std::strerror(errno)));
  on_wake_ = std::move(on_wake);
  on_exit_ = std::move(on_exit);
  thread_ = StartThread([this] { Run(); });
  loop_thread_id_.store(thread_.get_id());
  return absl::OkStatus();
}

void Reactor::Stop() {
  {
    absl::MutexLock lock(&mu_);
    if (stopped_) return;
    stopped_ = true;
  }
  if (thread_.joinable()) {
    uint64_t one = 1;
    (void)!write(wake_fd_, &one, sizeof(one));
    thread_.join();
  }
}

void Reactor::Notify() {
  if (!woken_.exchange(true)) {
    uint64_t one = 1;
    (void)!write(wake_fd_, &one, sizeof(one));
  }
}

bool Reactor::RunAsync(std::function<void()> fn) {
  {
    absl::MutexLock lock(&mu_);
    if (stopped_) return false;
    tasks_.push_back(std::move(fn));
  }
  Notify();
  return true;
}

absl::Status Reactor::RunSync(std::function<absl::Status()> fn) {
  if (std::this_thread::get_id() == loop_thread_id_.load()) return fn();
  auto done = std::make_shared<std::promise<absl::Status>>();
  std::future<absl::Status> result = done->get_future();
  if (!RunAsync([fn = std::move(fn), done] { done->set_value(fn()); })) {
    return TransportClosedError();
  }
  return result.get();
}

void Reactor::Watch(zmq::socket_t* socket, std::function<Read()> on_readable,
                    std::function<bool()> on_writable) {
  watched_.push_back(Watched{socket, std::move(on_readable), std::move(on_writable),
                             socket->get(zmq::sockopt::fd)});
}

void Reactor::CheckAll() {
  for (Watched& w : watched_) w.check = true;
}

void Reactor::Unwatch(zmq::socket_t* socket) {
  std::erase_if(watched_, [socket](const Watched& w) { return w.socket == socket; });
}

void Reactor::SetTimer(absl::Time at, std::function<void()> fire) {
  timer_at_ = at;
  timer_fire_ = std::move(fire);
}

void Reactor::Run() {
  // ZMQ_FD is edge-triggered: ask ZMQ_EVENTS before sleeping in poll(). This is zmq_poll's logic
  // without its pre-sleep system calls, and asking only the sockets that need it: each ZMQ_EVENTS
  // costs libzmq a poll() and a getpid() here, and a service watches four sockets. A socket needs
  // asking when its descriptor fired or when the loop used it since it last asked; a task,
  // `on_wake` and the timer may use any socket, so all are asked after them.
  std::vector<pollfd> fds;
  while (!stop_requested_) {
    try {
      // The timer first: it sends, and any operation on a socket after its ZMQ_EVENTS check
      // could consume the edge poll() would wait for.
      if (absl::Now() >= timer_at_ && timer_fire_) {
        timer_fire_();
        CheckAll();
      }
      bool worked = false;
      for (size_t i = 0; i < watched_.size(); ++i) {
        Watched& w = watched_[i];
        if (!w.check) continue;
        w.check = false;
        int events = w.socket->get(zmq::sockopt::events);
        if (w.on_writable && (events & ZMQ_POLLOUT) && w.on_writable()) {
          // It sent: ask again, so that no edge its send consumed is waited for.
          events = watched_[i].socket->get(zmq::sockopt::events);
        }
        if ((events & ZMQ_POLLIN) == 0) continue;
        if (w.on_readable() == Read::kMore) {
          // Look again before sleeping. (By index: a handler running on this thread may have
          // watched a new socket and moved the vector.)
          worked = true;
          watched_[i].check = true;
        }
      }
      fds.clear();
      fds.push_back({wake_fd_, POLLIN, 0});
      for (const Watched& w : watched_) fds.push_back({w.fd, POLLIN, 0});
      int timeout_ms = -1;
      if (worked) {
        timeout_ms = 0;  // there may be more: look again before sleeping
      } else if (timer_at_ != absl::InfiniteFuture()) {
        timeout_ms = static_cast<int>(std::max<int64_t>(
            0, absl::ToInt64Milliseconds(absl::Ceil(timer_at_ - absl::Now(), absl::Milliseconds(1)))));
      }
      if (poll(fds.data(), fds.size(), timeout_ms) < 0 && errno != EINTR) {
        ZRPC_LOG(kError, "I/O thread poll failed: %s", std::strerror(errno));
        CheckAll();
      }
      for (size_t i = 0; i < watched_.size() && i + 1 < fds.size(); ++i) {
        if (fds[i + 1].revents != 0) watched_[i].check = true;
      }
      if (fds[0].revents & POLLIN) {
        DrainQueues();
        CheckAll();
      }
    } catch (const zmq::error_t& e) {
      if (e.num() == ETERM) break;
      ZRPC_LOG(kError, "I/O thread: %s", e.what());
      CheckAll();
    }
  }
  // Shutting down: nothing may wait on us any more.
  DrainQueues();
  watched_.clear();
  if (on_exit_) on_exit_();
}

void Reactor::DrainQueues() {
  // Clear the eventfd and the woken flag before taking the queues: a post that lands after this
  // either sees the flag clear and writes the eventfd again (seen by the next poll), or is taken
  // below. Taking the queues first could strand an item whose wake-up was swallowed.
  uint64_t count;
  (void)!read(wake_fd_, &count, sizeof(count));
  woken_.store(false);
  std::deque<std::function<void()>> tasks;
  {
    absl::MutexLock lock(&mu_);
    tasks.swap(tasks_);
    if (stopped_) stop_requested_ = true;
  }
  for (auto& task : tasks) task();
  if (on_wake_) on_wake_();
}

}  // namespace zrpc::internal
