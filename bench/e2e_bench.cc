// SPDX-License-Identifier: Apache-2.0
// zrpc-e2e-bench: zrpc against raw libzmq, client and server in separate processes, in one run.
//
//   build/bench/zrpc-e2e-bench [--quick] [--no-curve] [--only latency|throughput|cast|curve]
//
// The client (this process) runs on CPU 0 and every server on CPU 1 (taskset), as DESIGN §9
// measures. For tcp and ipc on loopback it reports:
//   - call latency p50/p99, one call outstanding, synchronous Call, inline echo handler (and a
//     pool handler), 100 B and 1 KiB payloads, beside a raw DEALER→ROUTER echo;
//   - call throughput with 64 calls in flight (CallMany; CallAsync reported too), inline handler,
//     beside a raw DEALER keeping 64 requests in flight;
//   - cast throughput: casts handled by the server per second, 100 B payload, beside raw
//     DEALER→ROUTER sending the same frames zrpc sends, and raw PUSH→PULL with 100 B;
//   - the cost of CurveZMQ, in the same run (unless --no-curve): a zrpc server with keys and a raw
//     ROUTER with ZMQ_CURVE_SERVER beside the plain ones, and for each the sequential call round
//     trip (p50/p99, 100 B and 1 KiB), 64 calls in flight and casts, plain vs CURVE (ratio =
//     CURVE / plain). The raw CURVE server runs no ZAP handler (libzmq then admits any key); ZAP
//     costs one request per connection, not per message.
#include <sched.h>
#include <stdlib.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>
#include <zmq.hpp>

#include "absl/strings/str_format.h"
#include "absl/synchronization/mutex.h"
#include "src/codec/wire.h"
#include "testing/child_process.h"
#include "tools/flags.h"
#include "zrpc/zrpc.h"

namespace {

using zrpc::testing::ChildProcess;

void PinTo(int cpu) {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  sched_setaffinity(0, sizeof(set), &set);
}

// ---------------------------------------------------------------------------------------------
// Servers (run in child processes).

int ServeZrpc(const std::string& matchmaker, const std::string& ipc_dir,
              const zrpc::SecurityOptions& security) {
  std::atomic<int64_t> sunk{0};
  zrpc::Dispatcher inline_d, pool_d;
  auto methods = [&](zrpc::Endpoint ep) {
    return std::move(ep)
        .Method("echo",
                [](zrpc::CallContext&, const zrpc::Object& args) -> absl::StatusOr<zrpc::Value> {
                  const zrpc::Value* p = args.Find("p");
                  return p ? *p : zrpc::Value();
                })
        .Method("sink",
                [&sunk](zrpc::CallContext&, const zrpc::Object&) -> absl::StatusOr<zrpc::Value> {
                  sunk.fetch_add(1, std::memory_order_relaxed);
                  return zrpc::Value();
                })
        .Method("sunk", [&sunk](zrpc::CallContext&, const zrpc::Object&) -> absl::StatusOr<zrpc::Value> {
          return zrpc::Value(sunk.load());
        });
  };
  if (!inline_d.Add(methods(zrpc::Endpoint{.inline_handlers = true})).ok()) return 1;
  if (!pool_d.Add(methods(zrpc::Endpoint{})).ok()) return 1;
  auto t = zrpc::Transport::Create(
      {.host = "bench-server", .security = security, .ipc_dir = ipc_dir, .matchmaker = matchmaker});
  if (!t.ok()) return 1;
  auto conn = (*t)->CreateConnection();
  if (!conn.ok() || !(*conn)->CreateConsumer("bench", inline_d).ok() ||
      !(*conn)->CreateConsumer("benchpool", pool_d).ok() || !(*conn)->ConsumeInThread().ok()) {
    return 1;
  }
  std::cout << "READY " << (*t)->endpoint() << std::endl;
  char c;
  while (read(STDIN_FILENO, &c, 1) > 0) {
  }
  pause();
  return 0;
}

// ROUTER: echoes single-frame requests; counts 2-frame casts and answers a 1-frame "?" with the
// count. PULL (second endpoint): counts, and the ROUTER's "?p" answers with that count.
// With `key_file`, both sockets are CURVE servers with that key pair (no ZAP handler).
int ServeRaw(const std::string& router_ep, const std::string& pull_ep, const std::string& key_file) {
  zmq::context_t ctx;
  zmq::socket_t router(ctx, zmq::socket_type::router), pull(ctx, zmq::socket_type::pull);
  if (!key_file.empty()) {
    absl::StatusOr<zrpc::CurveKeyPair> keys = zrpc::ReadCurveKeyFile(key_file);
    if (!keys.ok()) {
      std::cerr << "raw server: " << keys.status() << "\n";
      return 1;
    }
    for (zmq::socket_t* s : {&router, &pull}) {
      s->set(zmq::sockopt::curve_server, 1);
      s->set(zmq::sockopt::curve_secretkey, keys->secret_key);
    }
  }
  router.set(zmq::sockopt::rcvhwm, 100000);
  router.set(zmq::sockopt::sndhwm, 100000);
  pull.set(zmq::sockopt::rcvhwm, 100000);
  router.bind(router_ep);
  pull.bind(pull_ep);
  std::cout << "READY " << router.get(zmq::sockopt::last_endpoint) << " "
            << pull.get(zmq::sockopt::last_endpoint) << std::endl;
  int64_t casts = 0, pushed = 0;
  std::vector<zmq::pollitem_t> items = {{router.handle(), 0, ZMQ_POLLIN, 0},
                                        {pull.handle(), 0, ZMQ_POLLIN, 0}};
  std::vector<zmq::message_t> frames;
  while (true) {
    zmq::poll(items, std::chrono::milliseconds(-1));
    if (items[1].revents & ZMQ_POLLIN) {
      zmq::message_t m;
      while (pull.recv(m, zmq::recv_flags::dontwait)) ++pushed;
    }
    if (items[0].revents & ZMQ_POLLIN) {
      while (true) {
        frames.clear();
        zmq::message_t m;
        if (!router.recv(m, zmq::recv_flags::dontwait)) break;
        frames.push_back(std::move(m));
        while (frames.back().more()) {
          zmq::message_t part;
          (void)router.recv(part);
          frames.push_back(std::move(part));
        }
        if (frames.size() == 3) {  // rid + header + body: a cast to count
          ++casts;
          continue;
        }
        std::string_view body(static_cast<const char*>(frames[1].data()), frames[1].size());
        router.send(frames[0], zmq::send_flags::sndmore);
        if (body == "?") {
          router.send(zmq::buffer(std::to_string(casts)));
        } else if (body == "?p") {
          router.send(zmq::buffer(std::to_string(pushed)));
        } else {
          router.send(frames[1], zmq::send_flags::none);
        }
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Client side.

// A raw client's CURVE settings (all empty: plain).
struct RawCurve {
  std::string server_key, public_key, secret_key;
};

// A DEALER (or PUSH) connected to `endpoint`, a CURVE client when `curve` has keys.
zmq::socket_t RawSocket(zmq::context_t& ctx, const std::string& endpoint, const RawCurve& curve,
                        zmq::socket_type type = zmq::socket_type::dealer) {
  zmq::socket_t s(ctx, type);
  s.set(zmq::sockopt::linger, 0);
  s.set(zmq::sockopt::sndhwm, 100000);
  if (!curve.server_key.empty()) {
    s.set(zmq::sockopt::curve_serverkey, curve.server_key);
    s.set(zmq::sockopt::curve_publickey, curve.public_key);
    s.set(zmq::sockopt::curve_secretkey, curve.secret_key);
  }
  s.connect(endpoint);
  return s;
}

struct Latency {
  double p50_us = 0, p99_us = 0;
};

Latency Summarize(std::vector<double>& us) {
  std::sort(us.begin(), us.end());
  return {us[us.size() / 2], us[us.size() * 99 / 100]};
}

// One round of `n` synchronous raw round trips; appends microseconds to `us`.
void RawLatencyRound(zmq::socket_t& s, const std::string& payload, int n, std::vector<double>* us) {
  for (int i = 0; i < n; ++i) {
    const absl::Time t0 = absl::Now();
    s.send(zmq::buffer(payload));
    zmq::message_t m;
    (void)s.recv(m);
    us->push_back(absl::ToDoubleMicroseconds(absl::Now() - t0));
  }
}

void ZrpcLatencyRound(zrpc::Transport& t, const std::string& topic, const zrpc::Object& args,
                      int n, std::vector<double>* us) {
  for (int i = 0; i < n; ++i) {
    zrpc::Message m{.method = "echo", .args = args};
    const absl::Time t0 = absl::Now();
    absl::StatusOr<zrpc::Value> r = t.Call(zrpc::Context(), topic, std::move(m));
    if (!r.ok()) {
      std::cerr << "call failed: " << r.status() << "\n";
      std::exit(1);
    }
    us->push_back(absl::ToDoubleMicroseconds(absl::Now() - t0));
  }
}

// Raw, zrpc inline and zrpc pool latencies, measured in interleaved rounds so that drift of the
// machine affects all three alike.
// CPU seconds used so far by process `pid` (all threads).
double CpuSeconds(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  std::getline(in, line);
  std::istringstream fields(line.substr(line.rfind(')') + 2));
  std::string f;
  unsigned long utime = 0, stime = 0;
  for (int i = 3; i <= 15 && fields >> f; ++i) {
    if (i == 14) utime = std::stoul(f);
    if (i == 15) stime = std::stoul(f);
  }
  return static_cast<double>(utime + stime) / sysconf(_SC_CLK_TCK);
}

std::array<Latency, 3> Latencies(zmq::context_t& ctx, zrpc::Transport& t,
                                 const std::string& raw_endpoint, size_t size, int n) {
  zmq::socket_t s(ctx, zmq::socket_type::dealer);
  s.set(zmq::sockopt::linger, 0);
  s.connect(raw_endpoint);
  const std::string payload(size, 'x');
  const zrpc::Object args{{"p", payload}};
  std::vector<double> raw, inline_us, pool_us, ignored;
  RawLatencyRound(s, payload, n / 10, &ignored);  // warm up
  ZrpcLatencyRound(t, "bench", args, n / 10, &ignored);
  ZrpcLatencyRound(t, "benchpool", args, n / 10, &ignored);
  constexpr int kRounds = 10;
  for (int round = 0; round < kRounds; ++round) {
    RawLatencyRound(s, payload, n / kRounds, &raw);
    ZrpcLatencyRound(t, "bench", args, n / kRounds, &inline_us);
    ZrpcLatencyRound(t, "benchpool", args, n / kRounds, &pool_us);
  }
  return {Summarize(raw), Summarize(inline_us), Summarize(pool_us)};
}

double RawThroughput(zmq::context_t& ctx, const std::string& endpoint, size_t size, int n,
                     int window, const RawCurve& curve = {}) {
  zmq::socket_t s = RawSocket(ctx, endpoint, curve);
  const std::string payload(size, 'x');
  // Warm up the connection.
  s.send(zmq::buffer(payload));
  zmq::message_t m;
  (void)s.recv(m);
  const absl::Time t0 = absl::Now();
  int sent = 0, got = 0;
  for (; sent < window; ++sent) s.send(zmq::buffer(payload));
  while (got < n) {
    (void)s.recv(m);
    ++got;
    if (sent < n) {
      s.send(zmq::buffer(payload));
      ++sent;
    }
  }
  return n / absl::ToDoubleSeconds(absl::Now() - t0);
}

// CallMany: the calling thread keeps `window` calls in flight itself.
double ZrpcPipelined(zrpc::Transport& t, const std::string& topic, size_t size, int n, int window) {
  const zrpc::Object args{{"p", std::string(size, 'x')}};
  std::vector<zrpc::Message> messages(n, zrpc::Message{.method = "echo", .args = args});
  (void)t.Call(zrpc::Context(), topic, zrpc::Message{.method = "echo", .args = args});  // warm up
  const absl::Time t0 = absl::Now();
  std::vector<absl::StatusOr<zrpc::Value>> results =
      t.CallMany(zrpc::Context(), topic, std::move(messages), {.window = window});
  const double rate = n / absl::ToDoubleSeconds(absl::Now() - t0);
  const int failed = std::count_if(results.begin(), results.end(), [](auto& r) { return !r.ok(); });
  if (failed) std::cerr << failed << " pipelined calls failed: " << results[0].status() << "\n";
  return rate;
}

// CallAsync: callbacks on the worker pool issue the next call.
double ZrpcThroughput(zrpc::Transport& t, const std::string& topic, size_t size, int n, int window) {
  // Everything a callback touches lives in shared state that each callback holds: the last
  // callback may still run after the waiter below has returned (it used to crash then).
  struct State {
    zrpc::Transport* t;
    std::string topic;
    zrpc::Object args;
    int n;
    absl::Mutex mu;
    int done ABSL_GUARDED_BY(mu) = 0;
    int failed ABSL_GUARDED_BY(mu) = 0;
    std::atomic<int> issued{0};
  };
  auto state = std::make_shared<State>();
  state->t = &t;
  state->topic = topic;
  state->args = zrpc::Object{{"p", std::string(size, 'x')}};
  state->n = n;
  struct Issuer {
    static void Issue(const std::shared_ptr<State>& st) {
      st->t->CallAsync(zrpc::Context(), st->topic, zrpc::Message{.method = "echo", .args = st->args},
                       [st](absl::StatusOr<zrpc::Value> r) {
                         // Issue the next call first: counting this one may end the run.
                         if (st->issued.fetch_add(1) < st->n) Issue(st);
                         absl::MutexLock lock(&st->mu);
                         ++st->done;
                         if (!r.ok()) ++st->failed;
                       });
    }
  };
  (void)t.Call(zrpc::Context(), topic, zrpc::Message{.method = "echo", .args = state->args});  // warm up
  const absl::Time t0 = absl::Now();
  state->issued = window;
  for (int i = 0; i < window; ++i) Issuer::Issue(state);
  // Exactly n calls are issued: the first `window`, then one per completion.
  absl::MutexLock lock(&state->mu);
  state->mu.Await(absl::Condition(
      +[](State* st) ABSL_EXCLUSIVE_LOCKS_REQUIRED(st->mu) { return st->done >= st->n; }, state.get()));
  if (state->failed) std::cerr << state->failed << " async calls failed\n";
  return n / absl::ToDoubleSeconds(absl::Now() - t0);
}

double RawCastThroughput(zmq::context_t& ctx, const std::string& endpoint,
                         const std::string& header, const std::string& body, int n,
                         const RawCurve& curve = {}) {
  zmq::socket_t s = RawSocket(ctx, endpoint, curve);
  auto count = [&] {
    s.send(zmq::str_buffer("?"));
    zmq::message_t m;
    (void)s.recv(m);
    return std::stoll(m.to_string());
  };
  const int64_t before = count();
  const absl::Time t0 = absl::Now();
  for (int i = 0; i < n; ++i) {
    s.send(zmq::buffer(header), zmq::send_flags::sndmore);
    s.send(zmq::buffer(body));
  }
  while (count() < before + n) {
  }
  return n / absl::ToDoubleSeconds(absl::Now() - t0);
}

double RawPushThroughput(zmq::context_t& ctx, const std::string& router_ep,
                         const std::string& pull_ep, size_t size, int n) {
  zmq::socket_t push(ctx, zmq::socket_type::push), q(ctx, zmq::socket_type::dealer);
  push.set(zmq::sockopt::linger, 0);
  push.set(zmq::sockopt::sndhwm, 100000);
  q.set(zmq::sockopt::linger, 0);
  push.connect(pull_ep);
  q.connect(router_ep);
  auto count = [&] {
    q.send(zmq::str_buffer("?p"));
    zmq::message_t m;
    (void)q.recv(m);
    return std::stoll(m.to_string());
  };
  const std::string payload(size, 'x');
  const int64_t before = count();
  const absl::Time t0 = absl::Now();
  for (int i = 0; i < n; ++i) push.send(zmq::buffer(payload));
  while (count() < before + n) {
  }
  return n / absl::ToDoubleSeconds(absl::Now() - t0);
}

double ZrpcCastThroughput(zrpc::Transport& t, const std::string& topic, size_t size, int n) {
  const zrpc::Object args{{"p", std::string(size, 'x')}};
  auto sunk = [&] {
    return t.Call(zrpc::Context(), topic, zrpc::Message{.method = "sunk"})->AsInt();
  };
  const int64_t before = sunk();
  const absl::Time t0 = absl::Now();
  for (int i = 0; i < n; ++i) {
    absl::Status s = t.Cast(zrpc::Context(), topic, zrpc::Message{.method = "sink", .args = args});
    if (!s.ok()) {
      std::cerr << "cast failed: " << s << "\n";
      std::exit(1);
    }
  }
  while (sunk() < before + n) {
  }
  return n / absl::ToDoubleSeconds(absl::Now() - t0);
}

void Row(const std::string& what, const std::string& transport, const std::string& size,
         double zrpc, double raw, const std::string& unit, const std::string& target) {
  const double ratio = raw > 0 ? zrpc / raw : 0;
  std::cout << std::flush << absl::StrFormat("| %-34s | %-4s | %-6s | %10.1f %-6s | %10.1f %-6s | %5.2fx | %-12s |\n",
                               what, transport, size, zrpc, unit, raw, unit, ratio, target)
            << std::flush;
}

// The CURVE table is printed after the main one.
std::vector<std::string>& CurveRows() {
  static auto* rows = new std::vector<std::string>;
  return *rows;
}

void CurveRow(const std::string& what, const std::string& transport, const std::string& size,
              double plain, double curve, const std::string& unit) {
  const double ratio = plain > 0 ? curve / plain : 0;
  CurveRows().push_back(absl::StrFormat("| %-40s | %-4s | %-6s | %10.1f %-6s | %10.1f %-6s | %5.2fx |\n", what,
                               transport, size, plain, unit, curve, unit, ratio));
}

// Plain vs CURVE, raw and zrpc, in interleaved rounds so that drift affects all four alike.
// Returns raw plain, raw CURVE, zrpc plain, zrpc CURVE.
std::array<Latency, 4> CurveLatencies(zmq::context_t& ctx, zrpc::Transport& plain,
                                      zrpc::Transport& curve, const std::string& raw_plain_ep,
                                      const std::string& raw_curve_ep, const RawCurve& raw_keys,
                                      size_t size, int n) {
  zmq::socket_t rp = RawSocket(ctx, raw_plain_ep, {});
  zmq::socket_t rc = RawSocket(ctx, raw_curve_ep, raw_keys);
  const std::string payload(size, 'x');
  const zrpc::Object args{{"p", payload}};
  std::vector<double> us[4], ignored;
  RawLatencyRound(rp, payload, n / 10, &ignored);  // warm up (and the CURVE handshakes)
  RawLatencyRound(rc, payload, n / 10, &ignored);
  ZrpcLatencyRound(plain, "bench", args, n / 10, &ignored);
  ZrpcLatencyRound(curve, "bench", args, n / 10, &ignored);
  constexpr int kRounds = 10;
  for (int round = 0; round < kRounds; ++round) {
    RawLatencyRound(rp, payload, n / kRounds, &us[0]);
    RawLatencyRound(rc, payload, n / kRounds, &us[1]);
    ZrpcLatencyRound(plain, "bench", args, n / kRounds, &us[2]);
    ZrpcLatencyRound(curve, "bench", args, n / kRounds, &us[3]);
  }
  return {Summarize(us[0]), Summarize(us[1]), Summarize(us[2]), Summarize(us[3])};
}

}  // namespace

int main(int argc, char** argv) {
  zrpc::tools::Flags flags("usage: zrpc-e2e-bench [--quick]",
                           {{"quick!", "fewer iterations (a smoke run)"},
                            {"only", "run one measurement: latency, throughput or cast"},
                            {"via", "run one transport: tcp or ipc"},
                            {"cpu!", "also report CPU time per call (client and server)"},
                            {"no-curve!", "skip the CurveZMQ cost table"},
                            {"serve", "internal: run a server (zrpc or raw)"},
                            {"matchmaker", "internal"},
                            {"ipc-dir", "internal"},
                            {"router", "internal"},
                            {"pull", "internal"},
                            {"key-file", "internal"},
                            {"authorized-keys", "internal"}});
  flags.Parse(argc, argv);
  zrpc::SetLogLevel(zrpc::LogLevel::kError);
  zrpc::tools::UseReleaseMutexes();  // as zrpc's own programs run (see docs/PERFORMANCE.md)
  if (flags.Get("serve") == "zrpc") {
    return ServeZrpc(flags.Get("matchmaker"), flags.Get("ipc-dir"),
                     {.key_file = flags.Get("key-file"),
                      .authorized_keys_file = flags.Get("authorized-keys")});
  }
  if (flags.Get("serve") == "raw") {
    return ServeRaw(flags.Get("router"), flags.Get("pull"), flags.Get("key-file"));
  }

  const bool quick = flags.Has("quick");
  const int lat_n = quick ? 500 : 5000;
  const int tput_n = quick ? 2000 : 30000;
  const int cast_n = quick ? 5000 : 100000;
  PinTo(0);
  char tmpl[] = "/tmp/zrpc-bench-XXXXXX";
  if (mkdtemp(tmpl) == nullptr) return 1;
  const std::string dir = tmpl;
  const std::string self = zrpc::testing::SelfDir() + "/zrpc-e2e-bench";
  const bool have_taskset = access("/usr/bin/taskset", X_OK) == 0;
  auto server_argv = [&](std::vector<std::string> args) {
    std::vector<std::string> argv = {self};
    argv.insert(argv.end(), args.begin(), args.end());
    if (have_taskset) argv.insert(argv.begin(), {"/usr/bin/taskset", "-c", "1"});
    return argv;
  };

  // CURVE keys for the CURVE servers and clients: one key pair each, one authorized_keys.
  const bool curve_on = !flags.Has("no-curve");
  const std::string keys_dir = dir + "/keys";
  RawCurve raw_keys;
  if (curve_on) {
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

  std::cout << "zrpc end-to-end benchmark: client on CPU 0, servers on CPU 1"
            << (have_taskset ? "" : " (taskset missing: not pinned)") << "\n\n";
  std::cout << "| measure                            | via  | size   | zrpc              | raw libzmq        | ratio | target       |\n";
  std::cout << "|------------------------------------|------|--------|-------------------|-------------------|-------|--------------|\n";
  zmq::context_t ctx;
  const std::string only = flags.Get("only");
  for (const std::string transport : {"tcp", "ipc"}) {
    if (flags.Has("via") && flags.Get("via") != transport) continue;
    const std::string mm = "local://" + dir + "/" + transport;
    ChildProcess zserver, rserver;
    std::vector<std::string> zargs = {"--serve", "zrpc", "--matchmaker", mm};
    if (transport == "ipc") zargs.insert(zargs.end(), {"--ipc-dir", dir});
    if (zserver.StartAndWaitForLine(server_argv(zargs), "READY", 10000).empty()) {
      std::cerr << "zrpc server did not start\n";
      return 1;
    }
    const std::string rrouter = transport == "tcp" ? "tcp://127.0.0.1:*" : "ipc://" + dir + "/raw.r";
    const std::string rpull = transport == "tcp" ? "tcp://127.0.0.1:*" : "ipc://" + dir + "/raw.p";
    const std::string ready = rserver.StartAndWaitForLine(
        server_argv({"--serve", "raw", "--router", rrouter, "--pull", rpull}), "READY", 10000);
    if (ready.empty()) return 1;
    const std::string raw_router = ready.substr(6, ready.find(' ', 6) - 6);
    const std::string raw_pull = ready.substr(ready.find(' ', 6) + 1);

    auto client = zrpc::Transport::Create({.host = "bench-client", .matchmaker = mm});
    if (!client.ok()) return 1;
    zrpc::Transport& t = **client;

    for (size_t size : {size_t{100}, size_t{1024}}) {
      if (!only.empty() && only != "latency") break;
      const std::string sz = size == 100 ? "100 B" : "1 KiB";
      if (flags.Has("cpu")) {
        // CPU per round trip, client and server, for raw and for zrpc inline calls.
        zmq::socket_t s(ctx, zmq::socket_type::dealer);
        s.set(zmq::sockopt::linger, 0);
        s.connect(raw_router);
        std::vector<double> ignored;
        const std::string payload(size, 'x');
        double c0 = CpuSeconds(getpid()), s0 = CpuSeconds(rserver.pid());
        const absl::Time t0 = absl::Now();
        RawLatencyRound(s, payload, lat_n, &ignored);
        const double raw_wall = absl::ToDoubleMicroseconds(absl::Now() - t0) / lat_n;
        double c1 = CpuSeconds(getpid()), s1 = CpuSeconds(rserver.pid());
        std::cout << absl::StrFormat("raw  %s: client %.1f us, server %.1f us CPU per call, wall %.1f us\n", sz,
                                     (c1 - c0) * 1e6 / lat_n, (s1 - s0) * 1e6 / lat_n, raw_wall);
        c0 = CpuSeconds(getpid());
        s0 = CpuSeconds(zserver.pid());
        const absl::Time t1 = absl::Now();
        ZrpcLatencyRound(t, "bench", zrpc::Object{{"p", payload}}, lat_n, &ignored);
        const double z_wall = absl::ToDoubleMicroseconds(absl::Now() - t1) / lat_n;
        c1 = CpuSeconds(getpid());
        s1 = CpuSeconds(zserver.pid());
        std::cout << absl::StrFormat("zrpc %s: client %.1f us, server %.1f us CPU per call, wall %.1f us\n", sz,
                                     (c1 - c0) * 1e6 / lat_n, (s1 - s0) * 1e6 / lat_n, z_wall);
      }
      auto [raw, z, zp] = Latencies(ctx, t, raw_router, size, lat_n);
      Row("call latency p50 (inline handler)", transport, sz, z.p50_us, raw.p50_us, "us", "<= 1.25x");
      Row("call latency p99 (inline handler)", transport, sz, z.p99_us, raw.p99_us, "us", "");
      Row("call latency p50 (pool handler)", transport, sz, zp.p50_us, raw.p50_us, "us", "<= 1.6x");
    }
    for (size_t size : {size_t{100}, size_t{1024}}) {
      if (!only.empty() && only != "throughput") break;
      const std::string sz = size == 100 ? "100 B" : "1 KiB";
      const double raw = RawThroughput(ctx, raw_router, size, tput_n, 64);
      const double z = ZrpcPipelined(t, "bench", size, tput_n, 64);
      const double za = ZrpcThroughput(t, "bench", size, tput_n, 64);
      Row("call throughput, 64 in flight", transport, sz, z, raw, "/s", ">= 0.50x");
      Row("  same with CallAsync callbacks", transport, sz, za, raw, "/s", "(reported)");
    }
    if (only.empty() || only == "cast") {
      // The raw DEALER sends exactly the frames zrpc puts on the wire for such a cast.
      zrpc::Message m{.method = "sink", .args = {{"p", std::string(100, 'x')}}};
      m.unique_id = zrpc::NewUniqueId();
      const std::string body = *zrpc::EncodeMessage(m);
      const std::string header =
          zrpc::internal::RequestHeader(zrpc::internal::FrameKind::kCast, "openstack", "bench", "");
      const double raw = RawCastThroughput(ctx, raw_router, header, body, cast_n);
      const double push = RawPushThroughput(ctx, raw_router, raw_pull, 100, cast_n);
      const double z = ZrpcCastThroughput(t, "bench", 100, cast_n);
      Row("cast throughput (same bytes)", transport, "100 B", z, raw, "/s", ">= 0.70x");
      Row("cast throughput vs PUSH/PULL 100 B", transport, "100 B", z, push, "/s", "(reported)");
    }
    if (curve_on && (only.empty() || only == "curve")) {
      // The same server programs with CURVE, registered in a registry of their own.
      const std::string cmm = mm + "-curve";
      const std::string cdir = dir + "/curve";
      std::filesystem::create_directories(cdir);
      ChildProcess zcserver, rcserver;
      std::vector<std::string> zcargs = {"--serve", "zrpc", "--matchmaker", cmm,
                                         "--key-file", keys_dir + "/bench-server.key",
                                         "--authorized-keys", keys_dir + "/authorized_keys"};
      if (transport == "ipc") zcargs.insert(zcargs.end(), {"--ipc-dir", cdir});
      if (zcserver.StartAndWaitForLine(server_argv(zcargs), "READY", 10000).empty()) {
        std::cerr << "zrpc CURVE server did not start\n";
        return 1;
      }
      const std::string crouter = transport == "tcp" ? "tcp://127.0.0.1:*" : "ipc://" + cdir + "/raw.r";
      const std::string cpull = transport == "tcp" ? "tcp://127.0.0.1:*" : "ipc://" + cdir + "/raw.p";
      const std::string cready = rcserver.StartAndWaitForLine(
          server_argv({"--serve", "raw", "--router", crouter, "--pull", cpull, "--key-file",
                       keys_dir + "/bench-server.key"}),
          "READY", 10000);
      if (cready.empty()) {
        std::cerr << "raw CURVE server did not start\n";
        return 1;
      }
      const std::string raw_crouter = cready.substr(6, cready.find(' ', 6) - 6);
      auto cclient = zrpc::Transport::Create(
          {.host = "bench-client",
           .security = {.key_file = keys_dir + "/bench-client.key",
                        .authorized_keys_file = keys_dir + "/authorized_keys"},
           .matchmaker = cmm});
      if (!cclient.ok()) {
        std::cerr << "CURVE client: " << cclient.status() << "\n";
        return 1;
      }
      zrpc::Transport& ct = **cclient;
      for (size_t size : {size_t{100}, size_t{1024}}) {
        const std::string sz = size == 100 ? "100 B" : "1 KiB";
        auto [rp, rc, zp, zc] = CurveLatencies(ctx, t, ct, raw_router, raw_crouter, raw_keys, size, lat_n);
        CurveRow("raw round trip p50", transport, sz, rp.p50_us, rc.p50_us, "us");
        CurveRow("raw round trip p99", transport, sz, rp.p99_us, rc.p99_us, "us");
        CurveRow("zrpc call p50 (sequential, inline)", transport, sz, zp.p50_us, zc.p50_us, "us");
        CurveRow("zrpc call p99 (sequential, inline)", transport, sz, zp.p99_us, zc.p99_us, "us");
      }
      for (size_t size : {size_t{100}, size_t{1024}}) {
        const std::string sz = size == 100 ? "100 B" : "1 KiB";
        const double rp = RawThroughput(ctx, raw_router, size, tput_n, 64);
        const double rc = RawThroughput(ctx, raw_crouter, size, tput_n, 64, raw_keys);
        const double zp = ZrpcPipelined(t, "bench", size, tput_n, 64);
        const double zc = ZrpcPipelined(ct, "bench", size, tput_n, 64);
        CurveRow("raw 64 in flight", transport, sz, rp, rc, "/s");
        CurveRow("zrpc calls, 64 in flight (CallMany)", transport, sz, zp, zc, "/s");
      }
      zrpc::Message m{.method = "sink", .args = {{"p", std::string(100, 'x')}}};
      m.unique_id = zrpc::NewUniqueId();
      const std::string body = *zrpc::EncodeMessage(m);
      const std::string header =
          zrpc::internal::RequestHeader(zrpc::internal::FrameKind::kCast, "openstack", "bench", "");
      const double rp = RawCastThroughput(ctx, raw_router, header, body, cast_n);
      const double rc = RawCastThroughput(ctx, raw_crouter, header, body, cast_n, raw_keys);
      const double zp = ZrpcCastThroughput(t, "bench", 100, cast_n);
      const double zc = ZrpcCastThroughput(ct, "bench", 100, cast_n);
      CurveRow("raw casts (same bytes as zrpc)", transport, "100 B", rp, rc, "/s");
      CurveRow("zrpc casts", transport, "100 B", zp, zc, "/s");
      ct.Close();
    }
    t.Close();
  }
  if (!CurveRows().empty()) {
    std::cout << "\nCurveZMQ cost (same run; ratio = CURVE / plain: above 1 for latency and below 1 "
                 "for throughput is the cost)\n\n";
    std::cout << "| measure                                  | via  | size   | plain             | CURVE             | ratio |\n";
    std::cout << "|------------------------------------------|------|--------|-------------------|-------------------|-------|\n";
    for (const std::string& row : CurveRows()) std::cout << row;
  }
  std::filesystem::remove_all(dir);
  return 0;
}
