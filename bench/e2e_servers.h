// SPDX-License-Identifier: Apache-2.0
// The servers zrpc-e2e-bench measures, each run in a child process of its own (pinned to CPU 1).
// Each prints "READY <endpoints>" on stdout once it serves, and runs until killed.
#ifndef ZRPC_BENCH_E2E_SERVERS_H_
#define ZRPC_BENCH_E2E_SERVERS_H_

#include <string>

#include "zrpc/security.h"
#include "zrpc/transport.h"

namespace zrpc::bench {

// Topics the zrpc server consumes: the same methods, with inline handlers (run on the I/O
// thread) and with pool handlers (run on the worker pool).
inline constexpr char kInlineTopic[] = "bench";
inline constexpr char kPoolTopic[] = "benchpool";

// A zrpc service registered in `matchmaker` (ipc:// sockets in `ipc_dir` when set; keys from
// `security`; the levers of `tuning`), consuming kInlineTopic and kPoolTopic with the methods
//   echo(p)              returns p;
//   sink(p)              counts the call (for casts); sunk() returns the count;
//   work(p, sleep_us=0)  sleeps sleep_us microseconds, then returns p (the long-tail test).
// Returns 1 if it cannot start.
int ServeZrpc(const std::string& matchmaker, const std::string& ipc_dir,
              const SecurityOptions& security, const TransportOptions& tuning);

// Raw libzmq: a ROUTER at `router_ep` echoing single-frame requests, counting 2-frame casts and
// answering a 1-frame "?" with that count; a PULL at `pull_ep` counting messages, the ROUTER's
// "?p" answering with that count. With `key_file`, both are CURVE servers with that key pair (no
// ZAP handler: libzmq then admits any client key). Returns 1 if it cannot start.
int ServeRaw(const std::string& router_ep, const std::string& pull_ep, const std::string& key_file);

}  // namespace zrpc::bench

#endif  // ZRPC_BENCH_E2E_SERVERS_H_
