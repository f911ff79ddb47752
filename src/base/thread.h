// SPDX-License-Identifier: Apache-2.0
// Every thread zrpc starts blocks the asynchronous signals (SIGTERM, SIGINT, SIGHUP, ...): they
// go to the application's threads, so a service's main() can wait for them with
// zrpc::WaitForShutdownSignal() and a second SIGTERM during Close() is never delivered to, and
// fatal in, a zrpc thread. Synchronous faults (SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT, SIGTRAP)
// stay deliverable.
#ifndef ZRPC_SRC_BASE_THREAD_H_
#define ZRPC_SRC_BASE_THREAD_H_

#include <pthread.h>
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

}  // namespace zrpc::internal

#endif  // ZRPC_SRC_BASE_THREAD_H_
