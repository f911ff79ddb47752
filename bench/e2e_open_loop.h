// SPDX-License-Identifier: Apache-2.0
// zrpc-e2e-bench's latency-under-load measurements: the open-loop fixed-rate test and the
// long-tail test. Each call returns one round's Sample (e2e_stats.h).
#ifndef ZRPC_BENCH_E2E_OPEN_LOOP_H_
#define ZRPC_BENCH_E2E_OPEN_LOOP_H_

#include <sys/types.h>

#include <string>
#include <string_view>
#include <zmq.hpp>

#include "absl/time/time.h"
#include "bench/e2e_stats.h"
#include "zrpc/zrpc.h"

namespace zrpc::bench {

// Open loop at a fixed rate: call i is sent at start + i / `rate` whatever the replies do, and
// its latency runs from that scheduled time, not from when it was actually sent, so a slow reply
// neither delays later sends nor hides their wait (no coordinated omission). Runs `duration`,
// then waits up to max(2 s, duration) for the last replies; a call without a reply by then counts
// as an error with the latency it had reached. The Sample has p50/p99/p999, the completed rate
// and the offered one.
//
// Raw: one DEALER of `payload` bytes (the call's index in its first 8), replies read as they
// come (ZMQ_FD polled with a timeout up to the next scheduled send).
Sample RawOpenLoopRound(zmq::socket_t& s, pid_t server, size_t payload, double rate,
                        absl::Duration duration);
// zrpc: CallAsync of echo(args) to `topic` from this thread, callbacks record the latency.
Sample ZrpcOpenLoopRound(Transport& t, pid_t server, std::string_view topic, const Object& args,
                         double rate, absl::Duration duration);

// The long-tail test: `n` calls of work(p) to the pool handler (kPoolTopic), `window` in flight
// (CallAsync); with `slow`, every 100th call (i % 100 == 50) sleeps 5 ms in the handler. The
// Sample's percentiles are those of the other calls (the same indices with and without `slow`,
// so the two are comparable); its rate is all calls'.
inline constexpr int kSlowEvery = 100;
inline constexpr int kSlowSleepUs = 5000;
Sample ZrpcLongTailRound(Transport& t, pid_t server, const std::string& payload, int n, int window,
                         bool slow);

}  // namespace zrpc::bench

#endif  // ZRPC_BENCH_E2E_OPEN_LOOP_H_
