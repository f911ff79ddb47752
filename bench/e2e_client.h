// SPDX-License-Identifier: Apache-2.0
// zrpc-e2e-bench's client side: one round of each measurement, for raw libzmq and for zrpc.
// Each round returns a Sample: latency percentiles or a rate, and the CPU per call of this
// process and of the server process `server` measured over the round. The caller interleaves
// rounds (raw, zrpc, raw, zrpc, ...) and takes medians (e2e_stats.h).
#ifndef ZRPC_BENCH_E2E_CLIENT_H_
#define ZRPC_BENCH_E2E_CLIENT_H_

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>
#include <zmq.hpp>

#include "absl/time/time.h"
#include "bench/e2e_stats.h"
#include "zrpc/zrpc.h"

namespace zrpc::bench {

// Nanoseconds on the monotonic clock (CLOCK_MONOTONIC, as clock_nanosleep uses).
inline int64_t NowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// A raw client's CURVE settings (all empty: plain).
struct RawCurve {
  std::string server_key, public_key, secret_key;
};

// A DEALER (or `type`) connected to `endpoint`: linger 0, a high send HWM, a CURVE client when
// `curve` has keys.
zmq::socket_t RawSocket(zmq::context_t& ctx, const std::string& endpoint, const RawCurve& curve,
                        zmq::socket_type type = zmq::socket_type::dealer);

// Sequential round trips (one outstanding): `n` raw DEALER→ROUTER echoes of `payload`.
Sample RawLatencyRound(zmq::socket_t& s, pid_t server, const std::string& payload, int n);
// `n` synchronous Calls of echo(args) to `topic`.
Sample ZrpcLatencyRound(Transport& t, pid_t server, std::string_view topic, const Object& args,
                        int n);

// Pipelined: `n` raw echoes keeping `window` in flight.
Sample RawPipelinedRound(zmq::socket_t& s, pid_t server, const std::string& payload, int n,
                         int window);
// `n` calls of echo(args) with CallMany (the calling thread keeps `window` in flight).
Sample ZrpcCallManyRound(Transport& t, pid_t server, std::string_view topic, const Object& args,
                         int n, int window);
// `n` calls of echo(args) with CallAsync (each callback issues the next call).
Sample ZrpcCallAsyncRound(Transport& t, pid_t server, std::string_view topic, const Object& args,
                          int n, int window);

// Casts handled by the server per second: `n` raw 2-frame messages (`header`, `body`), counted
// by the raw server; PUSH→PULL of `payload` (counts read through `query`, a DEALER to the raw
// ROUTER); zrpc Casts of sink(args), counted by sunk(). A round waits for the server to have
// handled all `n` (errors = how many it had not after 5 s without progress).
Sample RawCastRound(zmq::socket_t& s, pid_t server, const std::string& header,
                    const std::string& body, int n);
Sample RawPushRound(zmq::socket_t& push, zmq::socket_t& query, pid_t server,
                    const std::string& payload, int n);
Sample ZrpcCastRound(Transport& t, pid_t server, std::string_view topic, const Object& args, int n);

// The outcome of RunCallAsync.
struct AsyncRun {
  std::vector<double> latency_us;  // per call, by index; -1 for calls that had not ended
  int64_t failed = 0;              // calls that ended in an error or had not ended
  double seconds = 0;              // from the first call to the last outcome
};

// Makes `n` calls to `topic` with CallAsync, message i from `make(i)`, keeping `window` in
// flight (each callback issues the next call), and waits up to `limit` for them all. Safe
// when callbacks outlive the wait: everything they touch is shared state they hold, so `make`
// must own what it reads (capture by value) and be callable from several threads at once.
AsyncRun RunCallAsync(Transport& t, std::string_view topic, std::function<Message(int)> make, int n,
                      int window, absl::Duration limit);

}  // namespace zrpc::bench

#endif  // ZRPC_BENCH_E2E_CLIENT_H_
