// SPDX-License-Identifier: Apache-2.0
// zrpc-e2e-bench: zrpc against raw libzmq, client and servers in separate processes, same run.
//
//   build/bench/zrpc-e2e-bench [--quick] [--rounds N] [--via tcp|ipc] [--only WHAT,...]
//                              [--no-curve] [--json FILE] [--open-loop-seconds S]
//                              [--zrpc-off bare-messages] [--io-thread-batch]
//
// The client (this process) runs on CPU 0 and every server on CPU 1 (taskset), as DESIGN §9
// measures. Every figure is the median of --rounds rounds (default 5; --quick: 1), and the rounds
// of zrpc and raw libzmq alternate (raw, zrpc, raw, zrpc, ...) so that the machine's drift
// affects both alike; a ratio is median zrpc / median raw of the same run. For tcp and ipc:
//   latency     sequential calls (one outstanding), inline echo handler and pool handler, 100 B
//               and 1 KiB, beside a raw DEALER→ROUTER echo; p50, p99 and CPU per call of the
//               client and the server process;
//   throughput  64 calls in flight (CallMany, and CallAsync callbacks), beside a raw DEALER
//               keeping 64 in flight; calls/s and CPU per call of both sides;
//   cast        casts handled by the server per second (100 B), beside a raw DEALER sending the
//               bytes zrpc puts on the wire, and raw PUSH→PULL of 100 B;
//   open-loop   fixed-rate sends at 25/50/75% of each one's measured CallAsync / raw maximum,
//               latency from the scheduled send time (no coordinated omission): p50/p99/p999;
//   long-tail   16 calls in flight to a pool handler where 1% of calls sleep 5 ms: p99 of the
//               others against the same run without slow calls;
//   curve       the CurveZMQ cost: keyed zrpc and raw servers beside the plain ones (a table of
//               its own; --no-curve skips it).
// --zrpc-off bare-messages turns that lever off and --io-thread-batch turns that (opt-in) one on,
// in the zrpc client and server, to measure what each buys.
// --json FILE writes one JSON object per figure and implementation (bench, impl, transport,
// payload, window, p50_us, p99_us, rps or msg_s, cpu_client_us, cpu_server_us, rounds, ...).
#include <sched.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <set>
#include <string>
#include <tuple>
#include <vector>
#include <zmq.hpp>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "bench/e2e_client.h"
#include "bench/e2e_open_loop.h"
#include "bench/e2e_servers.h"
#include "bench/e2e_stats.h"
#include "src/codec/wire.h"
#include "testing/child_process.h"
#include "zrpc/zrpc.h"

namespace zrpc::bench {
namespace {

using zrpc::testing::ChildProcess;

constexpr int kWindow = 64;          // pipelined calls in flight (DESIGN §9)
constexpr int kLongTailWindow = 16;  // calls in flight in the long-tail test
constexpr double kLoads[] = {0.25, 0.50, 0.75};

// What to run and how much of it.
struct Config {
  bool quick = false;
  int rounds = 5;
  std::set<std::string> only;  // empty: everything
  std::string via;             // empty: tcp and ipc
  bool curve = true;
  std::string json;
  double open_loop_seconds = 2;  // per load level and implementation, over all rounds
  int lat_n = 2000, tput_n = 20000, cast_n = 50000, tail_n = 5000;  // per round

  bool Runs(const std::string& what) const { return only.empty() || only.count(what) > 0; }
};

// A ratio's target: at most (`at_most`) or at least `ratio`; ratio 0: reported only.
struct Target {
  bool at_most = true;
  double ratio = 0;
};
constexpr Target kReported{};
constexpr Target kLatencyInline{true, 1.15}, kLatencyPool{true, 1.4}, kCpu{true, 1.1};
constexpr Target kPipelined{false, 0.6}, kCasts{false, 0.7};

std::string TargetText(Target t) {
  return t.ratio == 0 ? "(reported)"
                      : absl::StrFormat("%s %.2fx", t.at_most ? "<=" : ">=", t.ratio);
}

std::string Figure(double v, const std::string& unit) {
  if (v < 0) return "-";
  return unit == "/s" ? absl::StrFormat("%.0f /s", v) : absl::StrFormat("%.1f %s", v, unit);
}

// The main table (printed as it goes) and the CURVE table (printed at the end).
void Row(const std::string& what, const std::string& via, const std::string& size, double zrpc,
         double raw, const std::string& unit, Target target) {
  const double ratio = raw > 0 && zrpc >= 0 ? zrpc / raw : -1;
  const char* met = target.ratio == 0 || ratio < 0                                     ? ""
                    : (target.at_most ? ratio <= target.ratio : ratio >= target.ratio) ? "yes"
                                                                                       : "no";
  std::cout << absl::StrFormat("| %-44s | %-4s | %-5s | %12s | %12s | %6s | %-10s | %-3s |\n", what,
                               via, size, Figure(zrpc, unit), Figure(raw, unit),
                               ratio < 0 ? "-" : absl::StrFormat("%.2fx", ratio),
                               TargetText(target), met)
            << std::flush;
}

std::vector<std::string>& CurveRows() {
  static auto* rows = new std::vector<std::string>;
  return *rows;
}

void CurveRow(const std::string& what, const std::string& via, const std::string& size,
              double plain, double curve, const std::string& unit) {
  const double ratio = plain > 0 ? curve / plain : 0;
  CurveRows().push_back(absl::StrFormat("| %-40s | %-4s | %-5s | %12s | %12s | %5.2fx |\n", what,
                                        via, size, Figure(plain, unit), Figure(curve, unit),
                                        ratio));
}

std::string SizeName(size_t size) {
  return size == 100 ? "100 B" : size == 1024 ? "1 KiB" : absl::StrCat(size, " B");
}

// What one transport's measurements share.
struct Env {
  const Config& cfg;
  JsonLines& json;
  zmq::context_t& ctx;
  std::string via;  // "tcp" or "ipc"
  Transport& t;     // the zrpc client
  pid_t zrpc_server, raw_server;
  std::string raw_router, raw_pull;
  // The maximum pipelined rates measured (100 B), for the open-loop test.
  double max_raw = -1, max_zrpc_async = -1;

  Object Fields(const char* bench, const char* impl, size_t payload, int window) const {
    Object o{{"bench", bench}, {"impl", impl}, {"transport", via}, {"payload", payload}};
    if (window > 0) o.Set("window", Value(window));
    return o;
  }
  void Json(const char* bench, const char* impl, size_t payload, int window, const Figures& f,
            const char* rate_key = "rps", Object extra = {}) {
    Object o = Fields(bench, impl, payload, window);
    for (auto& [k, v] : extra) o.Set(k, std::move(v));
    json.Write(std::move(o), f.Median(), rate_key, f.rounds());
  }
  int Warm(int n) const { return std::max(10, n / 10); }
};

void Latency(Env& e, size_t size) {
  zmq::socket_t s = RawSocket(e.ctx, e.raw_router, {});
  const std::string payload(size, 'x');
  const Object args{{"p", payload}};
  const int n = e.cfg.lat_n;
  RawLatencyRound(s, e.raw_server, payload, e.Warm(n));  // warm up (connections, caches)
  ZrpcLatencyRound(e.t, e.zrpc_server, kInlineTopic, args, e.Warm(n));
  ZrpcLatencyRound(e.t, e.zrpc_server, kPoolTopic, args, e.Warm(n));
  Figures raw, inl, pool;
  for (int r = 0; r < e.cfg.rounds; ++r) {
    raw.Add(RawLatencyRound(s, e.raw_server, payload, n));
    inl.Add(ZrpcLatencyRound(e.t, e.zrpc_server, kInlineTopic, args, n));
    pool.Add(ZrpcLatencyRound(e.t, e.zrpc_server, kPoolTopic, args, n));
  }
  const Sample r = raw.Median(), i = inl.Median(), p = pool.Median();
  const std::string sz = SizeName(size);
  Row("call latency p50 (inline handler)", e.via, sz, i.p50_us, r.p50_us, "us", kLatencyInline);
  Row("call latency p99 (inline handler)", e.via, sz, i.p99_us, r.p99_us, "us", kReported);
  Row("call latency p50 (pool handler)", e.via, sz, p.p50_us, r.p50_us, "us", kLatencyPool);
  Row("call latency p99 (pool handler)", e.via, sz, p.p99_us, r.p99_us, "us", kReported);
  Row("CPU per call, client (sequential, inline)", e.via, sz, i.cpu_client_us, r.cpu_client_us,
      "us", kCpu);
  Row("CPU per call, server (sequential, inline)", e.via, sz, i.cpu_server_us, r.cpu_server_us,
      "us", kCpu);
  e.Json("call_latency", "raw", size, 1, raw);
  e.Json("call_latency", "zrpc", size, 1, inl, "rps", {{"handler", "inline"}});
  e.Json("call_latency_pool", "zrpc", size, 1, pool, "rps", {{"handler", "pool"}});
}

void Throughput(Env& e, size_t size) {
  zmq::socket_t s = RawSocket(e.ctx, e.raw_router, {});
  const std::string payload(size, 'x');
  const Object args{{"p", payload}};
  const int n = e.cfg.tput_n;
  RawPipelinedRound(s, e.raw_server, payload, e.Warm(n), kWindow);
  ZrpcCallManyRound(e.t, e.zrpc_server, kInlineTopic, args, e.Warm(n), kWindow);
  ZrpcCallAsyncRound(e.t, e.zrpc_server, kInlineTopic, args, e.Warm(n), kWindow);
  Figures raw, many, async;
  for (int r = 0; r < e.cfg.rounds; ++r) {
    raw.Add(RawPipelinedRound(s, e.raw_server, payload, n, kWindow));
    many.Add(ZrpcCallManyRound(e.t, e.zrpc_server, kInlineTopic, args, n, kWindow));
    async.Add(ZrpcCallAsyncRound(e.t, e.zrpc_server, kInlineTopic, args, n, kWindow));
  }
  const Sample r = raw.Median(), m = many.Median(), a = async.Median();
  const std::string sz = SizeName(size);
  Row("pipelined calls/s, 64 in flight (CallMany)", e.via, sz, m.rate, r.rate, "/s", kPipelined);
  Row("  CPU per call, client", e.via, sz, m.cpu_client_us, r.cpu_client_us, "us", kCpu);
  Row("  CPU per call, server", e.via, sz, m.cpu_server_us, r.cpu_server_us, "us", kCpu);
  Row("pipelined calls/s, 64 in flight (CallAsync)", e.via, sz, a.rate, r.rate, "/s", kReported);
  Row("  CPU per call, client", e.via, sz, a.cpu_client_us, r.cpu_client_us, "us", kReported);
  Row("  CPU per call, server", e.via, sz, a.cpu_server_us, r.cpu_server_us, "us", kReported);
  e.Json("pipelined", "raw", size, kWindow, raw);
  e.Json("pipelined", "zrpc", size, kWindow, many, "rps", {{"api", "CallMany"}});
  e.Json("pipelined_async", "zrpc", size, kWindow, async, "rps", {{"api", "CallAsync"}});
  if (size == 100) {
    e.max_raw = r.rate;
    e.max_zrpc_async = a.rate;
  }
}

// The exact frames zrpc sends for a cast of sink(p) with a 100 B p (header, body).
std::pair<std::string, std::string> CastFrames(const Object& args) {
  Message m{.method = "sink", .args = args};
  m.unique_id = NewUniqueId();
  absl::StatusOr<std::string> body = EncodeMessage(m);
  return {internal::RequestHeader(internal::FrameKind::kCast, kDefaultExchange, kInlineTopic, ""),
          body.ok() ? *body : ""};
}

void Casts(Env& e) {
  constexpr size_t kSize = 100;
  const Object args{{"p", std::string(kSize, 'x')}};
  const auto [header, body] = CastFrames(args);
  zmq::socket_t s = RawSocket(e.ctx, e.raw_router, {});
  zmq::socket_t push = RawSocket(e.ctx, e.raw_pull, {}, zmq::socket_type::push);
  const std::string payload(kSize, 'x');
  const int n = e.cfg.cast_n;
  RawCastRound(s, e.raw_server, header, body, e.Warm(n));
  RawPushRound(push, s, e.raw_server, payload, e.Warm(n));
  ZrpcCastRound(e.t, e.zrpc_server, kInlineTopic, args, e.Warm(n));
  Figures raw, pushpull, z;
  for (int r = 0; r < e.cfg.rounds; ++r) {
    raw.Add(RawCastRound(s, e.raw_server, header, body, n));
    pushpull.Add(RawPushRound(push, s, e.raw_server, payload, n));
    z.Add(ZrpcCastRound(e.t, e.zrpc_server, kInlineTopic, args, n));
  }
  const Sample r = raw.Median(), p = pushpull.Median(), m = z.Median();
  const std::string sz = SizeName(kSize);
  Row("casts handled/s (raw sends zrpc's bytes)", e.via, sz, m.rate, r.rate, "/s", kCasts);
  Row("  CPU per cast, client", e.via, sz, m.cpu_client_us, r.cpu_client_us, "us", kReported);
  Row("  CPU per cast, server", e.via, sz, m.cpu_server_us, r.cpu_server_us, "us", kReported);
  Row("casts handled/s vs raw PUSH/PULL", e.via, sz, m.rate, p.rate, "/s", kReported);
  e.Json("cast", "raw", kSize, 0, raw, "msg_s", {{"wire_bytes", header.size() + body.size()}});
  e.Json("cast", "zrpc", kSize, 0, z, "msg_s");
  e.Json("cast_pushpull", "raw", kSize, 0, pushpull, "msg_s");
}

std::vector<std::string>& OpenLoopRows() {
  static auto* rows = new std::vector<std::string>;
  return *rows;
}

void OpenLoop(Env& e) {
  constexpr size_t kSize = 100;
  const std::string payload(kSize, 'x');
  const Object args{{"p", payload}};
  if (e.max_raw <= 0 || e.max_zrpc_async <= 0) {  // the throughput section did not run
    zmq::socket_t s = RawSocket(e.ctx, e.raw_router, {});
    Figures raw, async;
    for (int r = 0; r < e.cfg.rounds; ++r) {
      raw.Add(RawPipelinedRound(s, e.raw_server, payload, e.cfg.tput_n, kWindow));
      async.Add(ZrpcCallAsyncRound(e.t, e.zrpc_server, kInlineTopic, args, e.cfg.tput_n, kWindow));
    }
    e.max_raw = raw.Median().rate;
    e.max_zrpc_async = async.Median().rate;
  }
  const absl::Duration round = absl::Seconds(e.cfg.open_loop_seconds / e.cfg.rounds);
  for (double load : kLoads) {
    // raw at its own maximum's fraction, zrpc at its own, and raw at zrpc's rate (the same
    // offered load: what the protocol and library cost at that rate).
    Figures raw, z, raw_same;
    for (int r = 0; r < e.cfg.rounds; ++r) {
      for (auto [f, rate] :
           {std::pair{&raw, load * e.max_raw}, std::pair{&raw_same, load * e.max_zrpc_async}}) {
        // A fresh, connected DEALER each time: no late reply of an earlier round can arrive.
        zmq::socket_t s = RawSocket(e.ctx, e.raw_router, {});
        RawLatencyRound(s, e.raw_server, payload, 1);
        f->Add(RawOpenLoopRound(s, e.raw_server, kSize, rate, round));
        if (f == &raw) {
          z.Add(ZrpcOpenLoopRound(e.t, e.zrpc_server, kInlineTopic, args, load * e.max_zrpc_async,
                                  round));
        }
      }
    }
    for (auto [impl, f, of] : {std::tuple{"zrpc", &z, "zrpc"}, std::tuple{"raw", &raw, "raw"},
                               std::tuple{"raw", &raw_same, "zrpc"}}) {
      const Sample m = f->Median();
      OpenLoopRows().push_back(absl::StrFormat(
          "| %-4s | %3.0f%% of %-4s | %-4s | %9.0f | %9.0f | %8.1f | %8.1f | %9.1f | %6lld |\n",
          e.via, load * 100, of, impl, m.offered_rate, m.rate, m.p50_us, m.p99_us, m.p999_us,
          static_cast<long long>(m.errors)));
      const double max = of == std::string("zrpc") ? e.max_zrpc_async : e.max_raw;
      e.Json("open_loop", impl, kSize, 0, *f, "rps",
             {{"load", load},
              {"max_of", of},
              {"max_rps", std::round(max)},
              {"api", impl == std::string("zrpc") ? "CallAsync" : "DEALER"}});
    }
  }
}

std::vector<std::string>& LongTailRows() {
  static auto* rows = new std::vector<std::string>;
  return *rows;
}

void LongTail(Env& e) {
  constexpr size_t kSize = 100;
  const std::string payload(kSize, 'x');
  const int n = e.cfg.tail_n;
  ZrpcLongTailRound(e.t, e.zrpc_server, payload, e.Warm(n), kLongTailWindow, false);
  Figures base, slow;
  for (int r = 0; r < e.cfg.rounds; ++r) {
    base.Add(ZrpcLongTailRound(e.t, e.zrpc_server, payload, n, kLongTailWindow, false));
    slow.Add(ZrpcLongTailRound(e.t, e.zrpc_server, payload, n, kLongTailWindow, true));
  }
  const Sample b = base.Median(), s = slow.Median();
  LongTailRows().push_back(absl::StrFormat(
      "| %-4s | %8.1f / %8.1f / %8.1f us | %8.1f / %8.1f / %8.1f us | %5.2fx | %8.0f | %8.0f |\n",
      e.via, b.p50_us, b.p99_us, b.p999_us, s.p50_us, s.p99_us, s.p999_us,
      b.p99_us > 0 ? s.p99_us / b.p99_us : 0, b.rate, s.rate));
  for (auto [variant, f] : {std::pair{"baseline", &base}, std::pair{"slow", &slow}}) {
    e.Json("long_tail", "zrpc", kSize, kLongTailWindow, *f, "rps",
           {{"handler", "pool"},
            {"variant", variant},
            {"slow_fraction", variant == std::string("slow") ? 1.0 / kSlowEvery : 0.0},
            {"slow_ms", kSlowSleepUs / 1000}});
  }
}

// The keyed servers and client of the CURVE table, beside Env's plain ones.
struct CurveEnv {
  Transport& t;  // a zrpc client with keys
  pid_t zrpc_server, raw_server;
  std::string raw_router;
  RawCurve raw_keys;
};

// Plain against CURVE, raw and zrpc, in interleaved rounds; ratio = CURVE / plain.
void Curve(Env& e, CurveEnv& c) {
  auto json = [&](const char* bench, const char* impl, size_t size, int window, const Figures& f,
                  const char* security, const char* rate_key = "rps") {
    e.Json(bench, impl, size, window, f, rate_key, {{"security", security}});
  };
  for (size_t size : {size_t{100}, size_t{1024}}) {
    zmq::socket_t rp = RawSocket(e.ctx, e.raw_router, {});
    zmq::socket_t rc = RawSocket(e.ctx, c.raw_router, c.raw_keys);
    const std::string payload(size, 'x');
    const Object args{{"p", payload}};
    const int n = e.cfg.lat_n;
    RawLatencyRound(rp, e.raw_server, payload, e.Warm(n));  // warm up (and the CURVE handshakes)
    RawLatencyRound(rc, c.raw_server, payload, e.Warm(n));
    ZrpcLatencyRound(e.t, e.zrpc_server, kInlineTopic, args, e.Warm(n));
    ZrpcLatencyRound(c.t, c.zrpc_server, kInlineTopic, args, e.Warm(n));
    Figures f[4];
    for (int r = 0; r < e.cfg.rounds; ++r) {
      f[0].Add(RawLatencyRound(rp, e.raw_server, payload, n));
      f[1].Add(RawLatencyRound(rc, c.raw_server, payload, n));
      f[2].Add(ZrpcLatencyRound(e.t, e.zrpc_server, kInlineTopic, args, n));
      f[3].Add(ZrpcLatencyRound(c.t, c.zrpc_server, kInlineTopic, args, n));
    }
    const Sample rps = f[0].Median(), rcs = f[1].Median(), zps = f[2].Median(), zcs = f[3].Median();
    const std::string sz = SizeName(size);
    CurveRow("raw round trip p50", e.via, sz, rps.p50_us, rcs.p50_us, "us");
    CurveRow("raw round trip p99", e.via, sz, rps.p99_us, rcs.p99_us, "us");
    CurveRow("zrpc call p50 (sequential, inline)", e.via, sz, zps.p50_us, zcs.p50_us, "us");
    CurveRow("zrpc call p99 (sequential, inline)", e.via, sz, zps.p99_us, zcs.p99_us, "us");
    json("curve_call_latency", "raw", size, 1, f[0], "plain");
    json("curve_call_latency", "raw", size, 1, f[1], "curve");
    json("curve_call_latency", "zrpc", size, 1, f[2], "plain");
    json("curve_call_latency", "zrpc", size, 1, f[3], "curve");
  }
  for (size_t size : {size_t{100}, size_t{1024}}) {
    zmq::socket_t rp = RawSocket(e.ctx, e.raw_router, {});
    zmq::socket_t rc = RawSocket(e.ctx, c.raw_router, c.raw_keys);
    const std::string payload(size, 'x');
    const Object args{{"p", payload}};
    const int n = e.cfg.tput_n;
    Figures f[4];
    for (int r = 0; r < e.cfg.rounds; ++r) {
      f[0].Add(RawPipelinedRound(rp, e.raw_server, payload, n, kWindow));
      f[1].Add(RawPipelinedRound(rc, c.raw_server, payload, n, kWindow));
      f[2].Add(ZrpcCallManyRound(e.t, e.zrpc_server, kInlineTopic, args, n, kWindow));
      f[3].Add(ZrpcCallManyRound(c.t, c.zrpc_server, kInlineTopic, args, n, kWindow));
    }
    const std::string sz = SizeName(size);
    CurveRow("raw 64 in flight", e.via, sz, f[0].Median().rate, f[1].Median().rate, "/s");
    CurveRow("zrpc calls, 64 in flight (CallMany)", e.via, sz, f[2].Median().rate,
             f[3].Median().rate, "/s");
    json("curve_pipelined", "raw", size, kWindow, f[0], "plain");
    json("curve_pipelined", "raw", size, kWindow, f[1], "curve");
    json("curve_pipelined", "zrpc", size, kWindow, f[2], "plain");
    json("curve_pipelined", "zrpc", size, kWindow, f[3], "curve");
  }
  const Object args{{"p", std::string(100, 'x')}};
  const auto [header, body] = CastFrames(args);
  zmq::socket_t rp = RawSocket(e.ctx, e.raw_router, {});
  zmq::socket_t rc = RawSocket(e.ctx, c.raw_router, c.raw_keys);
  Figures f[4];
  for (int r = 0; r < e.cfg.rounds; ++r) {
    f[0].Add(RawCastRound(rp, e.raw_server, header, body, e.cfg.cast_n));
    f[1].Add(RawCastRound(rc, c.raw_server, header, body, e.cfg.cast_n));
    f[2].Add(ZrpcCastRound(e.t, e.zrpc_server, kInlineTopic, args, e.cfg.cast_n));
    f[3].Add(ZrpcCastRound(c.t, c.zrpc_server, kInlineTopic, args, e.cfg.cast_n));
  }
  CurveRow("raw casts (same bytes as zrpc)", e.via, "100 B", f[0].Median().rate, f[1].Median().rate,
           "/s");
  CurveRow("zrpc casts", e.via, "100 B", f[2].Median().rate, f[3].Median().rate, "/s");
  json("curve_cast", "raw", 100, 0, f[0], "plain", "msg_s");
  json("curve_cast", "raw", 100, 0, f[1], "curve", "msg_s");
  json("curve_cast", "zrpc", 100, 0, f[2], "plain", "msg_s");
  json("curve_cast", "zrpc", 100, 0, f[3], "curve", "msg_s");
}

// Pins this process to CPU 0 and says whether servers can go to CPU 1 (both allowed here).
bool PinClient() {
  cpu_set_t allowed;
  CPU_ZERO(&allowed);
  if (sched_getaffinity(0, sizeof(allowed), &allowed) != 0 || !CPU_ISSET(0, &allowed) ||
      !CPU_ISSET(1, &allowed) || access("/usr/bin/taskset", X_OK) != 0) {
    return false;
  }
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(0, &set);
  return sched_setaffinity(0, sizeof(set), &set) == 0;
}

// A server child process ("--serve zrpc|raw ..."): its pid and the endpoints of its READY line.
struct Server {
  ChildProcess process;
  std::vector<std::string> endpoints;
};

bool StartServer(const std::vector<std::string>& args, bool pinned, Server* server) {
  std::vector<std::string> argv = {zrpc::testing::SelfDir() + "/zrpc-e2e-bench"};
  if (pinned) argv.insert(argv.begin(), {"/usr/bin/taskset", "-c", "1"});
  argv.insert(argv.end(), args.begin(), args.end());
  const std::string ready = server->process.StartAndWaitForLine(argv, "READY", 10000);
  if (ready.empty()) {
    std::cerr << "the " << args[1] << " server did not start (its stderr is above)\n";
    return false;
  }
  server->endpoints = absl::StrSplit(ready.substr(6), ' ', absl::SkipEmpty());
  return true;
}

}  // namespace
}  // namespace zrpc::bench

int main(int argc, char** argv) {
  using namespace zrpc::bench;
  Config cfg;
  CLI::App app{
      "zrpc-e2e-bench: zrpc against raw libzmq, same run (client on CPU 0, servers on "
      "CPU 1); each figure is the median of interleaved rounds"};
  app.add_flag("--quick", cfg.quick,
               "a smoke run: 1 round, few iterations (figures not meaningful)");
  CLI::Option* rounds = app.add_option("--rounds", cfg.rounds,
                                       "rounds per figure, alternating raw and zrpc (default 5; "
                                       "--quick: 1); each figure is their median")
                            ->check(CLI::Range(1, 1000));
  std::vector<std::string> only;
  app.add_option("--only", only,
                 "run only these measurements, comma-separated: latency, throughput, cast, "
                 "open-loop, long-tail, curve")
      ->delimiter(',')
      ->check(CLI::IsMember({"latency", "throughput", "cast", "open-loop", "long-tail", "curve"}));
  app.add_option("--via", cfg.via, "run one transport only")->check(CLI::IsMember({"tcp", "ipc"}));
  bool no_curve = false;
  app.add_flag("--no-curve", no_curve, "skip the CurveZMQ cost table");
  app.add_option("--json", cfg.json,
                 "also write each figure as a JSON object per line to this file (replaced)");
  CLI::Option* ol_seconds =
      app.add_option("--open-loop-seconds", cfg.open_loop_seconds,
                     "open-loop test: seconds per load level and implementation, over all "
                     "rounds (default 2; --quick: 0.3)")
          ->check(CLI::Range(0.01, 3600.0));
  std::vector<std::string> off;
  app.add_option("--zrpc-off", off,
                 "turn these zrpc levers off in the zrpc client and server, comma-separated, to "
                 "measure what each buys: bare-messages (TransportOptions::send_bare_messages)")
      ->delimiter(',')
      ->check(CLI::IsMember({"bare-messages"}));
  bool io_batch = false;
  app.add_flag("--io-thread-batch", io_batch,
               "run the zrpc client's and server's I/O threads as SCHED_BATCH "
               "(TransportOptions::io_thread_batch, off by default)");
  // Internal: this program runs its own servers as child processes.
  std::string serve, matchmaker, ipc_dir, router, pull, key_file, authorized_keys;
  app.add_option("--serve", serve, "internal")->group("")->check(CLI::IsMember({"zrpc", "raw"}));
  app.add_option("--matchmaker", matchmaker, "internal")->group("");
  app.add_option("--ipc-dir", ipc_dir, "internal")->group("");
  app.add_option("--router", router, "internal")->group("");
  app.add_option("--pull", pull, "internal")->group("");
  app.add_option("--key-file", key_file, "internal")->group("");
  app.add_option("--authorized-keys", authorized_keys, "internal")->group("");
  CLI11_PARSE(app, argc, argv);
  // The levers turned off, for every zrpc transport of the run (servers get the same flag).
  zrpc::TransportOptions tuning;
  tuning.io_thread_batch = io_batch;
  for (const std::string& lever : off) {
    if (lever == "bare-messages") tuning.send_bare_messages = false;
  }
  std::vector<std::string> off_args;
  if (!off.empty()) off_args = {"--zrpc-off", absl::StrJoin(off, ",")};
  if (io_batch) off_args.push_back("--io-thread-batch");
  auto tuned = [&](zrpc::TransportOptions o) {
    o.io_thread_batch = tuning.io_thread_batch;
    o.send_bare_messages = tuning.send_bare_messages;
    return o;
  };

  zrpc::SetLogLevel(zrpc::LogLevel::kError);
  // As zrpc's own programs run: Debian's Abseil checks mutexes for deadlocks even in release
  // builds, about 4x the cost of a lock (docs/PERFORMANCE.md).
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  if (serve == "zrpc") {
    return ServeZrpc(matchmaker, ipc_dir,
                     {.key_file = key_file, .authorized_keys_file = authorized_keys}, tuning);
  }
  if (serve == "raw") return ServeRaw(router, pull, key_file);

  if (cfg.quick) {
    if (rounds->count() == 0) cfg.rounds = 1;
    if (ol_seconds->count() == 0) cfg.open_loop_seconds = 0.3;
    cfg.lat_n = 200;
    cfg.tput_n = 1000;
    cfg.cast_n = 2000;
    cfg.tail_n = 400;
  }
  cfg.only = std::set<std::string>(only.begin(), only.end());
  cfg.curve = !no_curve && cfg.Runs("curve");
  JsonLines json(cfg.json);
  if (!json.ok()) {
    std::cerr << "cannot write --json " << cfg.json << ": " << strerror(errno)
              << " (give a path in a writable directory)\n";
    return 2;
  }
  // Open-loop sends sleep until their scheduled time: wake within ~1 µs, not the default 50 µs.
  prctl(PR_SET_TIMERSLACK, 1000UL, 0, 0, 0);
  const bool pinned = PinClient();
  char tmpl[] = "/tmp/zrpc-bench-XXXXXX";
  if (mkdtemp(tmpl) == nullptr) {
    std::cerr << "cannot create a directory in /tmp: " << strerror(errno) << "\n";
    return 1;
  }
  const std::string dir = tmpl;

  // CURVE keys for the CURVE servers and clients: one key pair each, one authorized_keys.
  const std::string keys_dir = dir + "/keys";
  RawCurve raw_keys;
  if (cfg.curve) {
    std::filesystem::create_directory(keys_dir);
    absl::StatusOr<zrpc::CurveKeyPair> sk = zrpc::GenerateCurveKeyPair();
    absl::StatusOr<zrpc::CurveKeyPair> ck = zrpc::GenerateCurveKeyPair();
    if (!sk.ok() || !ck.ok() || !zrpc::WriteCurveKeyPair(keys_dir, "bench-server", *sk).ok() ||
        !zrpc::WriteCurveKeyPair(keys_dir, "bench-client", *ck).ok()) {
      std::cerr << "cannot make CURVE keys (libzmq without CURVE? run with --no-curve)\n";
      return 1;
    }
    std::ofstream(keys_dir + "/authorized_keys")
        << "bench-server " << sk->public_key << "\nbench-client " << ck->public_key << "\n";
    raw_keys = {sk->public_key, ck->public_key, ck->secret_key};
  }

  std::cout << "zrpc end-to-end benchmark: "
            << (pinned ? "client on CPU 0, servers on CPU 1"
                       : "NOT pinned (needs CPUs 0 and 1 and /usr/bin/taskset)")
            << "; each figure is the median of " << cfg.rounds
            << " interleaved round(s); ratio = zrpc / raw libzmq\n\n";
  std::cout << "| measure                                      | via  | size  | zrpc         | raw "
               "libzmq   | ratio  | target     | met |\n"
               "|----------------------------------------------|------|-------|--------------|-----"
               "---------|--------|------------|-----|\n";
  zmq::context_t ctx;
  for (const std::string via : {"tcp", "ipc"}) {
    if (!cfg.via.empty() && cfg.via != via) continue;
    const std::string mm = "local://" + dir + "/" + via;
    Server zserver, rserver;
    std::vector<std::string> zargs = {"--serve", "zrpc", "--matchmaker", mm};
    zargs.insert(zargs.end(), off_args.begin(), off_args.end());
    if (via == "ipc") zargs.insert(zargs.end(), {"--ipc-dir", dir});
    const std::string rr = via == "tcp" ? "tcp://127.0.0.1:*" : "ipc://" + dir + "/raw.r";
    const std::string rp = via == "tcp" ? "tcp://127.0.0.1:*" : "ipc://" + dir + "/raw.p";
    if (!StartServer(zargs, pinned, &zserver) ||
        !StartServer({"--serve", "raw", "--router", rr, "--pull", rp}, pinned, &rserver) ||
        rserver.endpoints.size() != 2) {
      return 1;
    }
    auto client = zrpc::Transport::Create(tuned({.host = "bench-client", .matchmaker = mm}));
    if (!client.ok()) {
      std::cerr << "zrpc client: " << client.status() << "\n";
      return 1;
    }
    Env env{.cfg = cfg,
            .json = json,
            .ctx = ctx,
            .via = via,
            .t = **client,
            .zrpc_server = zserver.process.pid(),
            .raw_server = rserver.process.pid(),
            .raw_router = rserver.endpoints[0],
            .raw_pull = rserver.endpoints[1]};
    if (cfg.Runs("latency")) {
      for (size_t size : {size_t{100}, size_t{1024}}) Latency(env, size);
    }
    if (cfg.Runs("throughput")) {
      for (size_t size : {size_t{100}, size_t{1024}}) Throughput(env, size);
    }
    if (cfg.Runs("cast")) Casts(env);
    if (cfg.Runs("open-loop")) OpenLoop(env);
    if (cfg.Runs("long-tail")) LongTail(env);
    if (cfg.curve) {
      // The same server programs with CURVE, registered in a registry of their own.
      const std::string cmm = mm + "-curve";
      const std::string cdir = dir + "/curve";
      std::filesystem::create_directories(cdir);
      Server zcserver, rcserver;
      std::vector<std::string> zcargs = {"--serve",           "zrpc",
                                         "--matchmaker",      cmm,
                                         "--key-file",        keys_dir + "/bench-server.key",
                                         "--authorized-keys", keys_dir + "/authorized_keys"};
      if (via == "ipc") zcargs.insert(zcargs.end(), {"--ipc-dir", cdir});
      zcargs.insert(zcargs.end(), off_args.begin(), off_args.end());
      const std::string crr = via == "tcp" ? "tcp://127.0.0.1:*" : "ipc://" + cdir + "/raw.r";
      const std::string crp = via == "tcp" ? "tcp://127.0.0.1:*" : "ipc://" + cdir + "/raw.p";
      if (!StartServer(zcargs, pinned, &zcserver) ||
          !StartServer({"--serve", "raw", "--router", crr, "--pull", crp, "--key-file",
                        keys_dir + "/bench-server.key"},
                       pinned, &rcserver)) {
        return 1;
      }
      auto cclient = zrpc::Transport::Create(
          tuned({.host = "bench-client",
                 .security = {.key_file = keys_dir + "/bench-client.key",
                              .authorized_keys_file = keys_dir + "/authorized_keys"},
                 .matchmaker = cmm}));
      if (!cclient.ok()) {
        std::cerr << "CURVE client: " << cclient.status() << "\n";
        return 1;
      }
      CurveEnv cenv{.t = **cclient,
                    .zrpc_server = zcserver.process.pid(),
                    .raw_server = rcserver.process.pid(),
                    .raw_router = rcserver.endpoints[0],
                    .raw_keys = raw_keys};
      Curve(env, cenv);
      (*cclient)->Close();
    }
    (*client)->Close();
  }
  if (!OpenLoopRows().empty()) {
    std::cout
        << "\nOpen loop, 100 B, inline handler: calls sent on a fixed timetable at 25/50/75% of "
           "the maximum pipelined rate (zrpc: CallAsync, raw: DEALER, 64 in flight); latency "
           "from each call's scheduled send time (us)\n\n"
           "| via  | load         | impl | offered/s | done/s    | p50      | p99      | p999      "
           "| errors |\n"
           "|------|--------------|------|-----------|-----------|----------|----------|-----------"
           "|--------|\n";
    for (const std::string& row : OpenLoopRows()) std::cout << row;
  }
  if (!LongTailRows().empty()) {
    std::cout
        << "\nLong tail, zrpc pool handler, 100 B, 16 calls in flight: 1% of calls sleep 5 ms; "
           "latency of the other calls p50 / p99 / p999, against the same run without slow "
           "calls (ratio = p99 with / p99 without)\n\n"
           "| via  | without slow calls                 | with 1% slow (the others)          | "
           "ratio  | calls/s without | calls/s with |\n"
           "|------|------------------------------------|------------------------------------|-----"
           "---|-----------------|--------------|\n";
    for (const std::string& row : LongTailRows()) std::cout << row;
  }
  if (!CurveRows().empty()) {
    std::cout
        << "\nCurveZMQ cost (same run; ratio = CURVE / plain: above 1 for latency and below 1 "
           "for throughput is the cost)\n\n"
           "| measure                                  | via  | size  | plain        | CURVE       "
           " | ratio |\n"
           "|------------------------------------------|------|-------|--------------|-------------"
           "-|-------|\n";
    for (const std::string& row : CurveRows()) std::cout << row;
  }
  std::filesystem::remove_all(dir);
  return 0;
}
