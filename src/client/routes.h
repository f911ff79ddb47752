// SPDX-License-Identifier: Apache-2.0
// Where requests go: the matchmaker's answers, cached per (exchange, key), grouped for routing,
// each group with a round-robin counter that starts at a random instance in every process.
// Orders candidates healthy-first (ejected instances last, as a last resort), keeps known routes
// while the matchmaker is away or was just restarted empty, and forgets what nobody uses.
// Counts its matchmaker lookups and publishes the instances gauge per topic (metrics.h).
#ifndef ZRPC_SRC_CLIENT_ROUTES_H_
#define ZRPC_SRC_CLIENT_ROUTES_H_

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "client/health.h"
#include "metrics/metrics.h"
#include "security/keyring.h"
#include "zrpc/matchmaker.h"

namespace zrpc::internal {

// Where one request goes.
struct Route {
  std::string endpoint;
  std::string target;  // what the header names: topic, topic.host, fanout~topic, pool~P~topic
  std::string host;
  std::string exchange;
  absl::Duration beat;  // the instance's announced heartbeat interval (or the caller's own)
  std::string public_key;  // its CURVE key (Z85), "" for a plain service
  bool accepts_bare = false;  // its registration accepts kBareMessageForm

  // `topic`: what was called when the instance was found out (where its ejection counts).
  InstanceHealth::Probe ToProbe(std::string_view topic) const {
    return {endpoint, host, exchange, target, beat, public_key, std::string(topic)};
  }
};

// Routes to one group of consumers, with the round-robin counter of that group.
struct RouteList {
  std::vector<Route> routes;
  std::atomic<uint64_t>* next = nullptr;  // owned by the RouteTable; outlives every entry

  // The routes in the order to try them: the round-robin pick first, instances that are out of
  // rotation after every healthy one.
  void Order(const InstanceHealth& health, std::vector<const Route*>* out) const;
};

// Consumers of a key as the matchmaker lists them, grouped for routing.
struct Candidates {
  RouteList plain;
  std::vector<RouteList> pools;  // one list per pool
  // Calls go to a plain consumer, or to a pool member when the key has no plain consumer.
  const RouteList& ForCalls() const { return plain.routes.empty() ? pools.front() : plain; }
};

// A single route in a list of its own (direct sends to an endpoint).
RouteList SingleRoute(Route route);

class RouteTable {
 public:
  // `default_beat`: the heartbeat interval assumed for instances that do not announce one.
  // `keyring`: with CURVE, only registrations whose public key it lists are used (null: plain,
  // registrations with and without keys alike). `metrics` (null: nothing counted) must outlive
  // this.
  RouteTable(Matchmaker& matchmaker, absl::Duration default_beat,
             std::shared_ptr<Keyring> keyring = nullptr, Metrics* metrics = nullptr)
      : matchmaker_(matchmaker),
        default_beat_(default_beat),
        keyring_(std::move(keyring)),
        metrics_(metrics) {}

  // The candidates for `key` in `exchange`: cached for kTtl (a watch notice or a failed send
  // refreshes sooner); a known key past kTtl is answered from the cache at once and refreshed in
  // the background (RefreshStale), so calls never wait on the matchmaker for a key they know. Registrations are validated (names, endpoint syntax, the key they were
  // registered for); bad ones are skipped with a log line and the lookup goes on. NoConsumer when nobody consumes it; the matchmaker's error when it cannot
  // be asked and nothing is known. Thread-safe; may block on the matchmaker.
  absl::StatusOr<std::shared_ptr<const Candidates>> Resolve(std::string_view exchange,
                                                            std::string_view key);
  // Asks the matchmaker now (after every known candidate of `key` proved unreachable).
  absl::StatusOr<std::shared_ptr<const Candidates>> ResolveNow(std::string_view exchange,
                                                               std::string_view key);
  // Fetches the keys Resolve found stale (the refresher's thread calls it when told).
  void RefreshStale();
  // Called (from a calling thread, without locks held) when a key needs refreshing.
  void SetRefresher(std::function<void()> on_refresh_needed) {
    on_refresh_needed_ = std::move(on_refresh_needed);
  }
  // Asks the matchmaker again on the next Resolve of this key (still used if it cannot answer).
  void MarkStale(std::string_view exchange, std::string_view key);
  void MarkAllStale();
  // Drops entries not resolved for `idle`, and returns every endpoint still cached.
  absl::flat_hash_set<std::string> Collect(absl::Duration idle);
  // Sets zrpc_client_instances: for each topic cached (a fanout key under its topic), its
  // distinct endpoints by state in `health`. Does nothing unless the routes or `health` changed
  // since the last call, so a caller may call it on every tick (the maintenance thread does);
  // a topic no longer cached drops to 0. Thread-safe; takes the cache's lock only to copy
  // pointers.
  void PublishInstances(const InstanceHealth& health);

  static constexpr absl::Duration kTtl = absl::Milliseconds(250);
  // At most this many registrations of one key are used (the rest are skipped with a log line):
  // a registry, like any peer, must not exhaust a client's sockets.
  static constexpr size_t kMaxRoutesPerKey = 1024;

 private:
  struct Cached {
    std::shared_ptr<const Candidates> candidates;
    absl::Time fetched;
    absl::Time used;
    bool refreshing = false;  // queued for RefreshStale
  };
  // Asks the matchmaker and stores the answer (see Resolve); `known` is what the cache had.
  absl::StatusOr<std::shared_ptr<const Candidates>> Fetch(std::string_view exchange,
                                                          std::string_view key,
                                                          const std::string& cache_key,
                                                          std::shared_ptr<const Candidates> known);
  void Store(const std::string& cache_key, std::shared_ptr<const Candidates> c, absl::Time fetched,
             absl::Time used);
  std::atomic<uint64_t>* Counter(const std::string& key);
  std::shared_ptr<const Candidates> Build(const std::string& cache_key, std::string_view key,
                                          const std::vector<Registration>& regs);

  Matchmaker& matchmaker_;
  const absl::Duration default_beat_;
  const std::shared_ptr<Keyring> keyring_;
  Metrics* const metrics_;
  absl::Mutex mu_;
  absl::flat_hash_map<std::string, Cached> cache_ ABSL_GUARDED_BY(mu_);
  // The cached endpoints changed since PublishInstances last ran.
  bool routes_changed_ ABSL_GUARDED_BY(mu_) = true;
  // PublishInstances: what it last saw and the topics it set.
  absl::Mutex publish_mu_;
  uint64_t published_health_ ABSL_GUARDED_BY(publish_mu_) = ~uint64_t{0};
  absl::flat_hash_set<std::string> gauged_topics_ ABSL_GUARDED_BY(publish_mu_);
  // Bumped by MarkAllStale: an answer fetched across a change notice is stored as stale.
  uint64_t generation_ ABSL_GUARDED_BY(mu_) = 0;
  std::vector<std::pair<std::string, std::string>> refresh_ ABSL_GUARDED_BY(mu_);
  std::function<void()> on_refresh_needed_;
  absl::Mutex rr_mu_;
  absl::flat_hash_map<std::string, std::unique_ptr<std::atomic<uint64_t>>> round_robin_
      ABSL_GUARDED_BY(rr_mu_);
};

}  // namespace zrpc::internal

#endif  // ZRPC_SRC_CLIENT_ROUTES_H_
