// SPDX-License-Identifier: Apache-2.0
// The reactor: one I/O thread that waits on ZeroMQ sockets and an eventfd, runs tasks queued by
// other threads, and fires one timer. It knows nothing of RPC: the server engine registers its
// sockets and its beat timer here (DESIGN §8: zmq ← server). Thread-safe where stated.
#ifndef ZRPC_SRC_ZMQ_REACTOR_H_
#define ZRPC_SRC_ZMQ_REACTOR_H_

#include <atomic>
#include <deque>
#include <functional>
#include <thread>
#include <vector>

#include <zmq.hpp>

#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace zrpc::internal {

class Reactor {
 public:
  Reactor() = default;
  ~Reactor();
  Reactor(const Reactor&) = delete;
  Reactor& operator=(const Reactor&) = delete;

  // Starts the thread. `on_wake` runs on it after every wake-up by Notify (the server drains its
  // reply queue there); `on_exit` runs on it last, after the final queued tasks.
  absl::Status Start(std::function<void()> on_wake, std::function<void()> on_exit);
  // Runs the last queued tasks and `on_exit`, joins. Idempotent. Thread-safe.
  void Stop();

  // Runs `fn` on the loop thread and waits for it (runs it directly when called on the loop
  // thread). TransportClosed once stopped. Thread-safe.
  absl::Status RunSync(std::function<absl::Status()> fn);
  // Queues `fn` for the loop thread; false (not run) once stopped. Thread-safe.
  bool RunAsync(std::function<void()> fn);
  // Wakes the loop thread (coalesced: one eventfd write per batch). Thread-safe.
  void Notify();

  // What a watched socket's handler did, which tells the loop whether it must ask the socket's
  // ZMQ_EVENTS again before sleeping.
  enum class Read {
    kIdle,     // received nothing
    kDrained,  // received, and its last operation on the socket was a receive that found it
               // empty: from then on the socket's descriptor fires when more arrives
    kMore,     // received, and there may be more (it stopped at a bound, or used the socket after
               // its last receive): ask again
  };
  // Loop thread only. `on_readable` reads what it can. It may send and receive on `socket` only:
  // other sockets are used from tasks, `on_wake` or the timer (after which the loop asks every
  // socket again). The socket must stay open until Unwatch.
  // `on_writable` (optional) runs when the socket was asked and says it may send (its descriptor
  // fired, e.g. because a peer's queue drained): it returns true when it used the socket (the
  // loop then asks it again before reading).
  void Watch(zmq::socket_t* socket, std::function<Read()> on_readable,
             std::function<bool()> on_writable = nullptr);
  void Unwatch(zmq::socket_t* socket);
  // Loop thread only: `fire` runs at `at` (one timer; set it again to move it; InfiniteFuture
  // disarms it).
  void SetTimer(absl::Time at, std::function<void()> fire);
  absl::Time timer() const { return timer_at_; }

 private:
  struct Watched {
    zmq::socket_t* socket;
    std::function<Read()> on_readable;
    std::function<bool()> on_writable;
    int fd;  // ZMQ_FD, constant for the socket's life
    // ZMQ_EVENTS must be asked before sleeping: its descriptor fired, or the loop used the socket
    // since it last asked (a send or receive can take the edge poll() would wait for).
    bool check = true;
  };
  void CheckAll();
  void Run();
  void DrainQueues();

  int wake_fd_ = -1;
  std::thread thread_;
  std::atomic<std::thread::id> loop_thread_id_{};
  std::atomic<bool> woken_{false};
  std::function<void()> on_wake_;
  std::function<void()> on_exit_;

  absl::Mutex mu_;
  std::deque<std::function<void()>> tasks_ ABSL_GUARDED_BY(mu_);
  bool stopped_ ABSL_GUARDED_BY(mu_) = false;

  // Loop-thread state.
  bool stop_requested_ = false;
  std::vector<Watched> watched_;
  absl::Time timer_at_ = absl::InfiniteFuture();
  std::function<void()> timer_fire_;
};

}  // namespace zrpc::internal

#endif  // ZRPC_SRC_ZMQ_REACTOR_H_
