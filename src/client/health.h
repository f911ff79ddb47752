// SPDX-License-Identifier: Apache-2.0
// Instance health as this process sees it (DESIGN §3 "Failure handling"): an instance whose call
// ended in PeerLost, or that could not be connected, leaves this process's rotation at once, on
// every call path, and is re-probed (`_zrpc.ping`, with backoff) before it takes traffic again.
// Entries of endpoints that left the matchmaker are forgotten (Retain). Ejections and probe
// results are counted per topic (zrpc_client_ejections_total, zrpc_client_probes_total); the
// instances gauge is published by RouteTable::PublishInstances, told of changes by version().
// Thread-safe; the clock is injected so the rules have unit tests.
#ifndef ZRPC_SRC_CLIENT_HEALTH_H_
#define ZRPC_SRC_CLIENT_HEALTH_H_

#include <atomic>
#include <string>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "metrics/metrics.h"

namespace zrpc::internal {

class InstanceHealth {
 public:
  struct Options {
    absl::Duration first_probe = absl::Milliseconds(100);  // after an ejection
    absl::Duration max_probe_interval = absl::Seconds(1);  // backoff cap
  };
  // What a probe needs to reach the instance.
  struct Probe {
    std::string endpoint;
    std::string host;
    std::string exchange;
    std::string target;  // a consumer key the instance serves (its introspection answers it)
    absl::Duration beat;  // the instance's heartbeat interval
    std::string public_key;  // its CURVE key, "" for a plain service
    std::string topic;       // what the call that ejected it called: where it and its probes count
  };

  InstanceHealth() : InstanceHealth(Options{}) {}
  // `metrics` (null: nothing counted) must outlive this.
  explicit InstanceHealth(Options options, Metrics* metrics = nullptr)
      : options_(options), metrics_(metrics) {}

  // True when `endpoint` is out of rotation. Lock-free while nothing is ejected.
  bool IsEjected(std::string_view endpoint) const;
  // Takes `probe.endpoint` out of rotation (again: keeps its backoff) and schedules a probe.
  // An endpoint that was in rotation counts one ejection under `probe.topic`.
  void Eject(Probe probe, absl::Time now);
  // Back in rotation (a probe, or any reply, proved it answers).
  void Restore(std::string_view endpoint);
  // A probe of DueProbes ended: counted under its topic; back in rotation when `ok`.
  void ProbeAnswered(const Probe& probe, bool ok);
  // The probes due at `now`; each is rescheduled with doubled backoff until it succeeds.
  std::vector<Probe> DueProbes(absl::Time now);
  // When the next probe is due; InfiniteFuture when nothing is ejected.
  absl::Time NextProbe() const;
  // Forgets every endpoint not in `live` (they left the matchmaker).
  void Retain(const absl::flat_hash_set<std::string>& live);
  size_t ejected() const { return ejected_.load(std::memory_order_relaxed); }
  // Changes whenever an endpoint leaves or re-enters rotation (for the instances gauge).
  uint64_t version() const { return version_.load(std::memory_order_acquire); }

 private:
  struct Entry {
    Probe probe;
    absl::Duration backoff;
    absl::Time next_probe;
  };
  // Under mu_: the count changed and so did what is ejected.
  void Changed() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    ejected_.store(entries_.size(), std::memory_order_relaxed);
    version_.fetch_add(1, std::memory_order_release);
  }

  const Options options_;
  Metrics* const metrics_;
  std::atomic<uint64_t> version_{0};
  mutable absl::Mutex mu_;
  absl::flat_hash_map<std::string, Entry> entries_ ABSL_GUARDED_BY(mu_);
  std::atomic<size_t> ejected_{0};
};

}  // namespace zrpc::internal

#endif  // ZRPC_SRC_CLIENT_HEALTH_H_
