// SPDX-License-Identifier: Apache-2.0
#include "bench/e2e_open_loop.h"

#include <poll.h>
#include <time.h>

#include <algorithm>
#include <cstring>
#include <iostream>
#include <memory>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "bench/e2e_client.h"
#include "bench/e2e_servers.h"

namespace zrpc::bench {
namespace {

// A sender waits at least this long before its next sends: at high rates it wakes every
// kMinWaitNs and sends everything due since (each call's latency still counts from its own
// scheduled time, so this lateness is measured, not hidden). Waking once per call instead costs
// more CPU than a send on a 2-vCPU VM and saturated the client core at 25% of the pipelined
// maximum, for raw libzmq as for zrpc.
constexpr int64_t kMinWaitNs = 20000;

// The timetable of one open-loop round.
struct Schedule {
  Schedule(double rate, absl::Duration duration)
      : calls(std::max<int64_t>(1, static_cast<int64_t>(rate * absl::ToDoubleSeconds(duration)))),
        period_ns(1e9 / rate),
        start_ns(NowNs() + 1000000) {}  // 1 ms ahead: the first sends are not already late
  int64_t At(int64_t i) const { return start_ns + static_cast<int64_t>(i * period_ns); }
  // When to stop waiting for replies.
  int64_t Deadline() const {
    const int64_t run = At(calls) - start_ns;
    return At(calls) + std::max<int64_t>(2000000000, run);
  }

  int64_t calls;
  double period_ns;
  int64_t start_ns;
};

// Sleeps until `when_ns` on the monotonic clock, or kMinWaitNs when that is sooner (at once when
// it has passed). The process sets a 1 µs timer slack (main), so the wake-up is punctual.
void SleepUntil(int64_t when_ns) {
  const int64_t now = NowNs();
  if (now >= when_ns) return;
  when_ns = std::max(when_ns, now + kMinWaitNs);
  const timespec ts{.tv_sec = when_ns / 1000000000, .tv_nsec = when_ns % 1000000000};
  while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, nullptr) == EINTR) {
  }
}

// Percentiles of `latency_us` (every call, -1 = no reply: counted as an error with the
// latency it had reached at `end_ns`), the completed rate and the offered one.
Sample OpenLoopSample(std::vector<double> latency_us, const Schedule& sched, int64_t last_ns,
                      int64_t end_ns, double rate) {
  Sample s;
  int64_t done = 0;
  for (int64_t i = 0; i < sched.calls; ++i) {
    if (latency_us[i] >= 0) {
      ++done;
    } else {
      latency_us[i] = static_cast<double>(end_ns - sched.At(i)) / 1e3;
      ++s.errors;
    }
  }
  s.p50_us = Percentile(latency_us, 0.50);
  s.p99_us = Percentile(latency_us, 0.99);
  s.p999_us = Percentile(latency_us, 0.999);
  s.offered_rate = rate;
  s.rate =
      last_ns > sched.start_ns ? done / (static_cast<double>(last_ns - sched.start_ns) / 1e9) : 0;
  return s;
}

}  // namespace

Sample RawOpenLoopRound(zmq::socket_t& s, pid_t server, size_t payload, double rate,
                        absl::Duration duration) {
  std::string body(std::max<size_t>(payload, sizeof(int64_t)), 'x');
  const CpuMeter cpu(server);
  const Schedule sched(rate, duration);
  std::vector<double> latency_us(sched.calls, -1);
  const int fd = s.get(zmq::sockopt::fd);
  int64_t next = 0, got = 0, last_ns = 0;
  const int64_t deadline = sched.Deadline();
  while (got < sched.calls) {
    int64_t now = NowNs();
    for (; next < sched.calls && sched.At(next) <= now; ++next) {
      std::memcpy(body.data(), &next, sizeof(next));
      s.send(zmq::buffer(body));
    }
    zmq::message_t m;
    while (s.recv(m, zmq::recv_flags::dontwait)) {
      int64_t i = -1;
      if (m.size() >= sizeof(i)) std::memcpy(&i, m.data(), sizeof(i));
      if (i < 0 || i >= sched.calls || latency_us[i] >= 0) continue;
      last_ns = NowNs();
      latency_us[i] = static_cast<double>(last_ns - sched.At(i)) / 1e3;
      ++got;
    }
    now = NowNs();
    if (got >= sched.calls || now >= deadline) break;
    const int64_t wake = next < sched.calls ? std::max(sched.At(next), now + kMinWaitNs) : deadline;
    if (wake <= now) continue;
    // ZMQ_FD only signals edges: wait on it only once ZMQ_EVENTS says nothing is readable
    // (reading ZMQ_EVENTS also processes pending commands, re-arming the descriptor).
    if (s.get(zmq::sockopt::events) & ZMQ_POLLIN) continue;
    pollfd p{.fd = fd, .events = POLLIN, .revents = 0};
    const int64_t wait_ns = wake - now;
    const timespec ts{.tv_sec = wait_ns / 1000000000, .tv_nsec = wait_ns % 1000000000};
    ppoll(&p, 1, &ts, nullptr);
  }
  Sample sample = OpenLoopSample(std::move(latency_us), sched, last_ns, NowNs(), rate);
  cpu.Stop(sched.calls, &sample);
  return sample;
}

Sample ZrpcOpenLoopRound(Transport& t, pid_t server, std::string_view topic, const Object& args,
                         double rate, absl::Duration duration) {
  // Callbacks hold this state: any still running after the wait below touch nothing else.
  struct State {
    absl::Mutex mu;
    int64_t done ABSL_GUARDED_BY(mu) = 0;
    int64_t failed ABSL_GUARDED_BY(mu) = 0;
    int64_t last_ns ABSL_GUARDED_BY(mu) = 0;
    std::vector<double> latency_us ABSL_GUARDED_BY(mu);
  };
  auto st = std::make_shared<State>();
  const CpuMeter cpu(server);
  const Schedule sched(rate, duration);
  {
    absl::MutexLock lock(&st->mu);
    st->latency_us.assign(sched.calls, -1);
  }
  const int64_t deadline = sched.Deadline();
  const CallOptions options{.timeout = absl::Nanoseconds(deadline - sched.start_ns)};
  for (int64_t i = 0; i < sched.calls; ++i) {
    const int64_t at = sched.At(i);
    SleepUntil(at);
    t.CallAsync(
        Context(), topic, Message{.method = "echo", .args = args},
        [st, i, at](absl::StatusOr<Value> r) {
          const int64_t t1 = NowNs();
          absl::MutexLock lock(&st->mu);
          st->latency_us[i] = static_cast<double>(t1 - at) / 1e3;
          st->last_ns = std::max(st->last_ns, t1);
          ++st->done;
          if (!r.ok() && st->failed++ == 0)
            std::cerr << "open-loop call failed: " << r.status() << "\n";
        },
        options);
  }
  absl::MutexLock lock(&st->mu);
  st->mu.AwaitWithDeadline(
      absl::Condition(
          +[](State* s) ABSL_EXCLUSIVE_LOCKS_REQUIRED(s->mu) {
            return s->done >= static_cast<int64_t>(s->latency_us.size());
          },
          st.get()),
      absl::Now() + absl::Nanoseconds(std::max<int64_t>(0, deadline - NowNs())));
  Sample sample = OpenLoopSample(st->latency_us, sched, st->last_ns, NowNs(), rate);
  sample.errors += st->failed;
  cpu.Stop(sched.calls, &sample);
  return sample;
}

Sample ZrpcLongTailRound(Transport& t, pid_t server, const std::string& payload, int n, int window,
                         bool slow) {
  auto make = [payload, slow](int i) {
    const bool sleeps = slow && i % kSlowEvery == kSlowEvery / 2;
    return Message{.method = "work",
                   .args = Object{{"p", payload}, {"sleep_us", sleeps ? kSlowSleepUs : 0}}};
  };
  const CpuMeter cpu(server);
  AsyncRun run = RunCallAsync(t, kPoolTopic, make, n, window, absl::Seconds(60));
  std::vector<double> others;
  others.reserve(n);
  for (int i = 0; i < n; ++i) {
    if (i % kSlowEvery != kSlowEvery / 2 && run.latency_us[i] >= 0)
      others.push_back(run.latency_us[i]);
  }
  Sample sample;
  sample.p50_us = Percentile(others, 0.50);
  sample.p99_us = Percentile(others, 0.99);
  sample.p999_us = Percentile(others, 0.999);
  sample.rate = n / run.seconds;
  sample.errors = run.failed;
  cpu.Stop(n, &sample);
  return sample;
}

}  // namespace zrpc::bench
