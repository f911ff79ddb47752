// SPDX-License-Identifier: Apache-2.0
// zrpc-matchmaker-bench: how fast each matchmaker answers, and how soon a new registration is
// visible to another client. Starts its own redis-server (if installed) and zrpc-matchmaker.
//
//   build/bench/zrpc-matchmaker-bench [--quick]
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <string>
#include <vector>

#include "absl/strings/str_format.h"
#include "testing/child_process.h"
#include "testing/redis_server.h"
#include "bench/flags.h"
#include "zrpc/zrpc.h"

namespace {

struct Stats {
  double p50_us, p99_us;
};

Stats Measure(int n, const std::function<void(int)>& fn) {
  std::vector<double> us;
  for (int i = 0; i < n; ++i) {
    const absl::Time t0 = absl::Now();
    fn(i);
    us.push_back(absl::ToDoubleMicroseconds(absl::Now() - t0));
  }
  std::sort(us.begin(), us.end());
  return {us[us.size() / 2], us[us.size() * 99 / 100]};
}

zrpc::Registration Reg(const std::string& topic, int i) {
  return zrpc::Registration{.topic = topic,
                            .host = "h" + std::to_string(i),
                            .endpoint = "tcp://127.0.0.1:" + std::to_string(20000 + i)};
}

// Median time from `writer` registering a new topic until `reader` resolves it.
double Visibility(zrpc::Matchmaker& writer, zrpc::Matchmaker& reader, int rounds, const std::string& tag) {
  std::vector<double> ms;
  for (int i = 0; i < rounds; ++i) {
    const std::string topic = "vis" + tag + std::to_string(i);
    (void)reader.Resolve("openstack", topic);  // the reader has looked before (and may cache it)
    const absl::Time t0 = absl::Now();
    if (!writer.Register(Reg(topic, i)).ok()) return -1;
    while (true) {
      absl::StatusOr<std::vector<zrpc::Registration>> r = reader.Resolve("openstack", topic);
      if (r.ok() && !r->empty()) break;
      if (absl::Now() - t0 > absl::Seconds(10)) return -1;
      absl::SleepFor(absl::Microseconds(200));
    }
    ms.push_back(absl::ToDoubleMilliseconds(absl::Now() - t0));
  }
  std::sort(ms.begin(), ms.end());
  return ms[ms.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  zrpc::bench::Flags flags("usage: zrpc-matchmaker-bench [--quick]", {{"quick!", "fewer iterations"}});
  flags.Parse(argc, argv);
  zrpc::SetLogLevel(zrpc::LogLevel::kError);
  zrpc::bench::UseReleaseMutexes();
  const int n = flags.Has("quick") ? 300 : 3000;
  const int rounds = flags.Has("quick") ? 5 : 20;
  char tmpl[] = "/tmp/zrpc-mmbench-XXXXXX";
  if (mkdtemp(tmpl) == nullptr) return 1;
  const std::string dir = tmpl;

  zrpc::testing::RedisServer redis;
  const bool have_redis = access(ZRPC_REDIS_SERVER, X_OK) == 0 && redis.Start();
  zrpc::testing::ChildProcess sidecar;
  const std::string sidecar_url = "ipc://" + dir + "/mm.sock";
  if (sidecar
          .StartAndWaitForLine(
              {zrpc::testing::SelfDir() + "/../zrpc-matchmaker", "--endpoint", sidecar_url},
              "READY", 10000)
          .empty()) {
    std::cerr << "cannot start zrpc-matchmaker\n";
    return 1;
  }
  {
    // Addresses: host names in a ring must resolve when it is read (matchmaker/ring.h).
    std::ofstream(dir + "/ring.json")
        << R"({"compute": ["node1", "node2", "node3"], "_endpoints": {"node1": "tcp://127.0.0.1:9501", )"
        << R"("node2": "tcp://127.0.0.1:9502", "node3": "tcp://127.0.0.1:9503"}})";
  }

  struct Backend {
    std::string name, url;
  };
  std::vector<Backend> backends = {{"local://", "local://" + dir + "/local"},
                                   {"ring://", "ring://" + dir + "/ring.json"},
                                   {"sidecar (ipc)", sidecar_url}};
  if (have_redis) backends.push_back({"redis://", redis.Url("ttl=30&heartbeat=10")});

  std::cout << "| backend        | resolve, cached p50 / p99 | resolve, asking the backend p50 / p99 | new registration visible (median) |\n";
  std::cout << "|----------------|---------------------------|---------------------------------------|-----------------------------------|\n";
  for (const Backend& b : backends) {
    auto writer = zrpc::CreateMatchmaker(b.url);
    auto reader = zrpc::CreateMatchmaker(b.url);
    if (!writer.ok() || !reader.ok()) {
      std::cerr << b.name << ": " << (writer.ok() ? reader.status() : writer.status()) << "\n";
      continue;
    }
    for (int i = 0; i < 3; ++i) (void)(*writer)->Register(Reg("compute", i));
    (void)(*reader)->Resolve("openstack", "compute");
    // Cached: the same key again (local: unchanged directory; sidecar: its client cache).
    Stats cached = Measure(n, [&](int) { (void)(*reader)->Resolve("openstack", "compute"); });
    // Uncached: a new key every time, so every lookup reaches the backend.
    Stats asked = Measure(n, [&](int i) {
      (void)(*reader)->Resolve("openstack", "missing" + std::to_string(i));
    });
    const double visible = Visibility(**writer, **reader, rounds, std::to_string(&b - &backends[0]));
    const bool is_ring = b.name == "ring://";
    std::cout << absl::StrFormat("| %-14s | %8.1f / %8.1f us      | %10.1f / %10.1f us              | %s |\n",
                                 b.name, cached.p50_us, cached.p99_us, asked.p50_us, asked.p99_us,
                                 is_ring ? "n/a (static file)               "
                                         : absl::StrFormat("%8.2f ms                      ", visible));
  }
  if (!have_redis) std::cout << "(redis-server not installed: no Redis row)\n";
  sidecar.Stop();
  redis.Stop();
  std::filesystem::remove_all(dir);
  return 0;
}
