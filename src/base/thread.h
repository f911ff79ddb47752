// SPDX-License-Identifier: Apache-2.0
// Every thread zrpc starts blocks the asynchronous signals (SIGTERM, SIGINT, SIGHUP, ...): they
// go to the application's threads, so a service's main() can wait for them with
// zrpc::WaitForShutdownSignal() and a second SIGTERM during Close() is never delivered to, and
// fatal in, a zrpc thread. Synchronous faults (SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT, SIGTRAP)
// stay deliverable.
#ifndef ZRPC_SRC_BASE_THREAD_H_
#define ZRPC_SRC_BASE_THREAD_H_

#include <pthread.h>
#include <sched.h>
#include <signal.h>

#include <thread>
#include <utility>

namespace zrpc::internal {

template <typename... Args>
std::thread StartThread(Args&&... args) {
  sigset_t block, old;
  sigfillset(&block);
  for (int sync : {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT, SIGTRAP}) sigdelset(&block, sync);
  pthread_sigmask(SIG_BLOCK, &block, &old);  // the new thread inherits this mask
  std::thread t(std::forward<Args>(args)...);
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  return t;
}

// With TransportOptions::io_thread_batch, libzmq's I/O thread does not preempt the thread that
// queues messages on its CPU: it runs when that thread blocks. A thread working through a burst
// of messages calls LetIoThreadRun every kIoFlushEvery of them, so that what it queued goes out
// (and what arrived comes in) while it carries on: the two ends of a pipeline then work at once
// instead of in turn. Where the I/O thread runs on another CPU this costs one cheap system call.
inline constexpr int kIoFlushEvery = 32;
inline void LetIoThreadRun() { sched_yield(); }

}  // namespace zrpc::internal

#endif  // ZRPC_SRC_BASE_THREAD_H_
