// SPDX-License-Identifier: Apache-2.0
#include "bench/e2e_client.h"

#include <algorithm>
#include <atomic>
#include <iostream>
#include <memory>

#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"

namespace zrpc::bench {

zmq::socket_t RawSocket(zmq::context_t& ctx, const std::string& endpoint, const RawCurve& curve,
                        zmq::socket_type type) {
  zmq::socket_t s(ctx, type);
  s.set(zmq::sockopt::linger, 0);
  s.set(zmq::sockopt::sndhwm, 100000);
  s.set(zmq::sockopt::rcvhwm, 100000);
  if (!curve.server_key.empty()) {
    s.set(zmq::sockopt::curve_serverkey, curve.server_key);
    s.set(zmq::sockopt::curve_publickey, curve.public_key);
    s.set(zmq::sockopt::curve_secretkey, curve.secret_key);
  }
  s.connect(endpoint);
  return s;
}

namespace {

Sample LatencySample(std::vector<double>& us) {
  Sample s;
  s.p50_us = Percentile(us, 0.50);
  s.p99_us = Percentile(us, 0.99);
  return s;
}

Message Echo(const Object& args) { return Message{.method = "echo", .args = args}; }

}  // namespace

Sample RawLatencyRound(zmq::socket_t& s, pid_t server, const std::string& payload, int n) {
  std::vector<double> us;
  us.reserve(n);
  const CpuMeter cpu(server);
  for (int i = 0; i < n; ++i) {
    const int64_t t0 = NowNs();
    s.send(zmq::buffer(payload));
    zmq::message_t m;
    (void)s.recv(m);
    us.push_back(static_cast<double>(NowNs() - t0) / 1e3);
  }
  Sample sample = LatencySample(us);
  cpu.Stop(n, &sample);
  return sample;
}

Sample ZrpcLatencyRound(Transport& t, pid_t server, std::string_view topic, const Object& args,
                        int n) {
  std::vector<double> us;
  us.reserve(n);
  int64_t errors = 0;
  const CpuMeter cpu(server);
  for (int i = 0; i < n; ++i) {
    Message m = Echo(args);
    const int64_t t0 = NowNs();
    absl::StatusOr<Value> r = t.Call(Context(), topic, std::move(m));
    us.push_back(static_cast<double>(NowNs() - t0) / 1e3);
    if (!r.ok() && errors++ == 0) std::cerr << "call failed: " << r.status() << "\n";
  }
  Sample sample = LatencySample(us);
  cpu.Stop(n, &sample);
  sample.errors = errors;
  return sample;
}

Sample RawPipelinedRound(zmq::socket_t& s, pid_t server, const std::string& payload, int n,
                         int window) {
  Sample sample;
  const CpuMeter cpu(server);
  const int64_t t0 = NowNs();
  int sent = 0, got = 0;
  for (; sent < std::min(window, n); ++sent) s.send(zmq::buffer(payload));
  zmq::message_t m;
  while (got < n) {
    (void)s.recv(m);
    ++got;
    if (sent < n) {
      s.send(zmq::buffer(payload));
      ++sent;
    }
  }
  sample.rate = n / (static_cast<double>(NowNs() - t0) / 1e9);
  cpu.Stop(n, &sample);
  return sample;
}

Sample ZrpcCallManyRound(Transport& t, pid_t server, std::string_view topic, const Object& args,
                         int n, int window) {
  std::vector<Message> messages(n, Echo(args));
  Sample sample;
  const CpuMeter cpu(server);
  const int64_t t0 = NowNs();
  std::vector<absl::StatusOr<Value>> results =
      t.CallMany(Context(), topic, std::move(messages), {.window = window});
  sample.rate = n / (static_cast<double>(NowNs() - t0) / 1e9);
  cpu.Stop(n, &sample);
  for (const absl::StatusOr<Value>& r : results) {
    if (!r.ok() && sample.errors++ == 0)
      std::cerr << "pipelined call failed: " << r.status() << "\n";
  }
  return sample;
}

AsyncRun RunCallAsync(Transport& t, std::string_view topic, std::function<Message(int)> make, int n,
                      int window, absl::Duration limit) {
  // Everything a callback touches lives in this shared state, which each callback holds: the
  // last callbacks may still run after the wait below has returned (a stack-based version
  // crashed once in three runs).
  struct State {
    Transport* t;
    std::string topic;
    std::function<Message(int)> make;
    int n;
    std::atomic<int> issued{0};
    absl::Mutex mu;
    int done ABSL_GUARDED_BY(mu) = 0;
    int64_t failed ABSL_GUARDED_BY(mu) = 0;
    int64_t last_ns ABSL_GUARDED_BY(mu) = 0;
    std::vector<double> latency_us ABSL_GUARDED_BY(mu);
  };
  auto st = std::make_shared<State>();
  st->t = &t;
  st->topic = std::string(topic);
  st->make = std::move(make);
  st->n = n;
  {
    absl::MutexLock lock(&st->mu);
    st->latency_us.assign(n, -1);
  }
  struct Issuer {
    static void Issue(const std::shared_ptr<State>& st, int i) {
      const int64_t t0 = NowNs();
      st->t->CallAsync(Context(), st->topic, st->make(i), [st, i, t0](absl::StatusOr<Value> r) {
        const int64_t t1 = NowNs();
        // Issue the next call first: counting this one may end the run.
        const int next = st->issued.fetch_add(1);
        if (next < st->n) Issue(st, next);
        absl::MutexLock lock(&st->mu);
        st->latency_us[i] = static_cast<double>(t1 - t0) / 1e3;
        st->last_ns = std::max(st->last_ns, t1);
        ++st->done;
        if (!r.ok()) ++st->failed;
      });
    }
  };
  const int first = std::min(window, n);
  st->issued = first;
  const int64_t t0 = NowNs();
  for (int i = 0; i < first; ++i) Issuer::Issue(st, i);
  AsyncRun run;
  absl::MutexLock lock(&st->mu);
  st->mu.AwaitWithTimeout(
      absl::Condition(
          +[](State* s) ABSL_EXCLUSIVE_LOCKS_REQUIRED(s->mu) { return s->done >= s->n; }, st.get()),
      limit);
  run.failed = st->failed + (n - st->done);
  run.seconds = static_cast<double>((st->done >= n ? st->last_ns : NowNs()) - t0) / 1e9;
  run.latency_us = st->latency_us;
  return run;
}

Sample ZrpcCallAsyncRound(Transport& t, pid_t server, std::string_view topic, const Object& args,
                          int n, int window) {
  Sample sample;
  const CpuMeter cpu(server);
  AsyncRun run = RunCallAsync(
      t, topic, [args](int) { return Echo(args); }, n, window, absl::Seconds(60));
  sample.rate = n / run.seconds;
  cpu.Stop(n, &sample);
  sample.errors = run.failed;
  if (run.failed) std::cerr << run.failed << " async calls failed\n";
  return sample;
}

namespace {

// Waits until `count()` reaches `target`; gives up after 5 s without progress. Returns how many
// were missing then (0 when all arrived), or -1 when `count` fails.
int64_t WaitForCount(const std::function<int64_t()>& count, int64_t target) {
  int64_t last = -1;
  absl::Time progress = absl::Now();
  while (true) {
    const int64_t c = count();
    if (c < 0) return -1;
    if (c >= target) return 0;
    if (c != last) {
      last = c;
      progress = absl::Now();
    } else if (absl::Now() - progress > absl::Seconds(5)) {
      return target - c;
    }
  }
}

// The count a raw server answers to `question` ("?" casts, "?p" pushed messages).
int64_t RawCount(zmq::socket_t& s, const char* question) {
  s.send(zmq::buffer(std::string_view(question)));
  zmq::message_t m;
  if (!s.recv(m)) return -1;
  return std::stoll(m.to_string());
}

}  // namespace

Sample RawCastRound(zmq::socket_t& s, pid_t server, const std::string& header,
                    const std::string& body, int n) {
  Sample sample;
  const int64_t before = RawCount(s, "?");
  const CpuMeter cpu(server);
  const int64_t t0 = NowNs();
  for (int i = 0; i < n; ++i) {
    s.send(zmq::buffer(header), zmq::send_flags::sndmore);
    s.send(zmq::buffer(body));
  }
  sample.errors = WaitForCount([&] { return RawCount(s, "?"); }, before + n);
  sample.rate = n / (static_cast<double>(NowNs() - t0) / 1e9);
  cpu.Stop(n, &sample);
  return sample;
}

Sample RawPushRound(zmq::socket_t& push, zmq::socket_t& query, pid_t server,
                    const std::string& payload, int n) {
  Sample sample;
  const int64_t before = RawCount(query, "?p");
  const CpuMeter cpu(server);
  const int64_t t0 = NowNs();
  for (int i = 0; i < n; ++i) push.send(zmq::buffer(payload));
  sample.errors = WaitForCount([&] { return RawCount(query, "?p"); }, before + n);
  sample.rate = n / (static_cast<double>(NowNs() - t0) / 1e9);
  cpu.Stop(n, &sample);
  return sample;
}

Sample ZrpcCastRound(Transport& t, pid_t server, std::string_view topic, const Object& args,
                     int n) {
  auto sunk = [&]() -> int64_t {
    absl::StatusOr<Value> r = t.Call(Context(), topic, Message{.method = "sunk"});
    if (!r.ok() || !r->is_int()) {
      std::cerr << "sunk() failed: " << (r.ok() ? "not an integer" : r.status().ToString()) << "\n";
      return -1;
    }
    return r->AsInt();
  };
  Sample sample;
  const int64_t before = sunk();
  const CpuMeter cpu(server);
  const int64_t t0 = NowNs();
  for (int i = 0; i < n; ++i) {
    absl::Status s = t.Cast(Context(), topic, Message{.method = "sink", .args = args});
    if (!s.ok() && sample.errors++ == 0) std::cerr << "cast failed: " << s << "\n";
  }
  const int64_t missing = before < 0 ? -1 : WaitForCount(sunk, before + n - sample.errors);
  sample.rate = n / (static_cast<double>(NowNs() - t0) / 1e9);
  cpu.Stop(n, &sample);
  sample.errors += missing < 0 ? n : missing;
  return sample;
}

}  // namespace zrpc::bench
