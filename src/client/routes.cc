// SPDX-License-Identifier: Apache-2.0
#include "client/routes.h"

#include <algorithm>
#include <map>
#include <random>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "base/keys.h"
#include "codec/json_internal.h"
#include "base/log_internal.h"
#include "zrpc/errors.h"
#include "zrpc/security.h"

namespace zrpc::internal {

void RouteList::Order(const InstanceHealth& health, std::vector<const Route*>* out) const {
  out->clear();
  const size_t n = routes.size();
  if (n == 0) return;
  const size_t start = next->fetch_add(1, std::memory_order_relaxed) % n;
  if (health.ejected() == 0) {
    for (size_t i = 0; i < n; ++i) out->push_back(&routes[(start + i) % n]);
    return;
  }
  size_t healthy = 0;
  for (size_t i = 0; i < n; ++i) {
    const Route* r = &routes[(start + i) % n];
    if (health.IsEjected(r->endpoint)) {
      out->push_back(r);
    } else {
      out->insert(out->begin() + healthy++, r);
    }
  }
}

RouteList SingleRoute(Route route) {
  static std::atomic<uint64_t> unused{0};
  return RouteList{{std::move(route)}, &unused};
}

std::atomic<uint64_t>* RouteTable::Counter(const std::string& key) {
  absl::MutexLock lock(&rr_mu_);
  std::unique_ptr<std::atomic<uint64_t>>& counter = round_robin_[key];
  if (!counter) {
    // A random start in each process: short-lived clients must not all pick the same instance.
    static thread_local std::mt19937_64 gen{std::random_device{}()};
    counter = std::make_unique<std::atomic<uint64_t>>(gen());
  }
  return counter.get();
}

namespace {

// Why `r` may not be used for `key` ("" when it may). Registries are untrusted input: the same
// rules as every registration (ValidateRegistration), and the key asked for.
std::string Unusable(const Registration& r, std::string_view key) {
  if (absl::Status s = ValidateRegistration(r); !s.ok()) return std::string(s.message());
  if (r.Key() != key) return "registered for another key";
  return "";
}

// The interval `r` announces, clamped to what services may announce: the handshake cannot prove
// the field, and a copy announcing 1 ms would fail every call longer than 3 ms with PeerLost.
absl::Duration AnnouncedBeat(const Registration& r, absl::Duration fallback) {
  if (r.heartbeat_ms <= 0) return fallback;
  return std::clamp(absl::Milliseconds(r.heartbeat_ms), kMinCallHeartbeatInterval,
                    kMaxCallHeartbeatInterval);
}

// Whether `a` and `b` list the same endpoints in the same groups (the instances gauge stands).
bool SameEndpoints(const Candidates* a, const Candidates* b) {
  if (a == nullptr || b == nullptr) return a == b;
  const auto same = [](const RouteList& x, const RouteList& y) {
    return std::equal(x.routes.begin(), x.routes.end(), y.routes.begin(), y.routes.end(),
                      [](const Route& r, const Route& q) { return r.endpoint == q.endpoint; });
  };
  if (!same(a->plain, b->plain) || a->pools.size() != b->pools.size()) return false;
  for (size_t i = 0; i < a->pools.size(); ++i) {
    if (!same(a->pools[i], b->pools[i])) return false;
  }
  return true;
}

}  // namespace

std::shared_ptr<const Candidates> RouteTable::Build(const std::string& cache_key,
                                                   std::string_view key,
                                                   const std::vector<Registration>& regs) {
  std::vector<Route> plain;
  std::map<std::string, std::vector<Route>> pools;
  const bool fanout = IsFanoutKey(key);
  size_t skipped = 0, used = 0, copies = 0;
  std::string why;
  // Each instance once: its pool, key and endpoint -> its route (see below).
  absl::flat_hash_map<std::string, std::pair<std::vector<Route>*, size_t>> instances;
  for (const Registration& r : regs) {
    if (std::string bad = Unusable(r, key); !bad.empty()) {
      ++skipped;
      why = std::move(bad);
      continue;
    }
    if (keyring_ == nullptr && !r.public_key.empty()) {
      // A plain process cannot complete a CurveZMQ handshake: during a migration it uses the
      // services' plain endpoints, registered beside their keyed ones.
      ++skipped;
      why = "a CurveZMQ service; this process has no keys (TransportOptions::security)";
      continue;
    }
    if (keyring_ != nullptr) {
      // With CURVE a registration is a claim anyone may make: only a key this process trusts
      // makes it usable (and the handshake proves the instance holds that key).
      if (r.public_key.empty()) {
        ++skipped;
        why = "a plain (keyless) service; this process uses CURVE and only keys it trusts";
        continue;
      }
      std::shared_ptr<const AuthorizedKey> entry = keyring_->FindKey(r.public_key);
      if (entry == nullptr) {
        ++skipped;
        why = absl::StrCat("public key ", KeyFingerprint(r.public_key),
                           " is not in the authorized keys");
        continue;
      }
      // Every admitted key may call, but only keys whose roles cover the topic may serve it: an
      // admitted caller cannot register a fake instance and answer other callers' calls.
      if (!MayServe(*entry, r.topic)) {
        ++skipped;
        why = absl::StrCat("key ", KeyFingerprint(r.public_key), " (identity ", entry->identity,
                           ") may not serve \"", r.topic,
                           "\": no serve= role covers it in the authorized keys");
        continue;
      }
    }
    const absl::Duration beat = AnnouncedBeat(r, default_beat_);
    const bool bare = std::find(r.accepts.begin(), r.accepts.end(), kBareMessageForm) !=
                      r.accepts.end();
    // Copies of one instance (anyone may write one, with any heartbeat_ms) are one route, so they
    // can neither crowd it out of the first kMaxRoutesPerKey nor open a socket each. The first
    // seen is kept, with the longest interval any copy announces (a copy can make silence be
    // noticed later, never fail a live call sooner) and the bare form only if every copy takes it.
    const std::string instance = absl::StrCat(r.pool, " ", r.public_key, " ", r.endpoint);
    if (auto it = instances.find(instance); it != instances.end()) {
      Route& kept = (*it->second.first)[it->second.second];
      kept.beat = std::max(kept.beat, beat);
      kept.accepts_bare = kept.accepts_bare && bare;
      ++copies;
      continue;
    }
    if (used >= kMaxRoutesPerKey) {
      ++skipped;
      why = absl::StrCat("more than ", kMaxRoutesPerKey, " instances");
      continue;
    }
    ++used;
    std::vector<Route>& group = r.pool.empty() ? plain : pools[r.pool];
    instances.emplace(instance, std::pair{&group, group.size()});
    if (r.pool.empty()) {
      plain.push_back(Route{r.endpoint, fanout ? r.Key() : r.topic, r.host, r.exchange, beat,
                            r.public_key, bare});
    } else {
      group.push_back(Route{r.endpoint, PoolTarget(r.pool, r.topic), r.host, r.exchange, beat,
                            r.public_key, bare});
    }
  }
  if (skipped > 0) {
    ZRPC_LOG(kWarning, "matchmaker %s: skipped %d of %d registrations for %s (%s)",
             matchmaker_.url(), static_cast<int>(skipped), static_cast<int>(regs.size()),
             absl::CHexEscape(cache_key), why);
  }
  if (copies > 0) {
    ZRPC_LOG(kWarning, "matchmaker %s: %d registrations for %s repeat an instance already "
             "listed (same endpoint, key and pool); each instance is used once",
             matchmaker_.url(), static_cast<int>(copies), absl::CHexEscape(cache_key));
  }
  auto c = std::make_shared<Candidates>();
  c->plain.routes = std::move(plain);
  c->plain.next = Counter(cache_key);
  for (auto& [pool, routes] : pools) {
    c->pools.push_back(RouteList{std::move(routes), Counter(cache_key + " " + pool)});
  }
  return c;
}

absl::StatusOr<std::shared_ptr<const Candidates>> RouteTable::Resolve(std::string_view exchange,
                                                                      std::string_view key) {
  const std::string cache_key = absl::StrCat(ToAbsl(exchange), " ", ToAbsl(key));
  const absl::Time now = absl::Now();
  bool ask_refresher = false;
  std::shared_ptr<const Candidates> known;
  {
    absl::MutexLock lock(&mu_);
    auto it = cache_.find(cache_key);
    if (it != cache_.end()) {
      Cached& c = it->second;
      c.used = now;
      if (now - c.fetched >= kTtl && !c.refreshing) {
        // Stale while revalidating: a call never waits on the matchmaker for a key it knows
        // (a sidecar or Redis that is away would otherwise stall it for a request timeout).
        c.refreshing = true;
        refresh_.emplace_back(std::string(exchange), std::string(key));
        ask_refresher = true;
      }
      known = c.candidates;
    }
  }
  if (known) {
    if (ask_refresher && on_refresh_needed_) on_refresh_needed_();
    return known;
  }
  return Fetch(exchange, key, cache_key, nullptr);
}

absl::StatusOr<std::shared_ptr<const Candidates>> RouteTable::ResolveNow(std::string_view exchange,
                                                                         std::string_view key) {
  const std::string cache_key = absl::StrCat(ToAbsl(exchange), " ", ToAbsl(key));
  std::shared_ptr<const Candidates> known;
  {
    absl::MutexLock lock(&mu_);
    auto it = cache_.find(cache_key);
    if (it != cache_.end()) known = it->second.candidates;
  }
  return Fetch(exchange, key, cache_key, std::move(known));
}

void RouteTable::RefreshStale() {
  std::vector<std::pair<std::string, std::string>> keys;
  {
    absl::MutexLock lock(&mu_);
    keys.swap(refresh_);
  }
  for (const auto& [exchange, key] : keys) {
    const std::string cache_key = absl::StrCat(exchange, " ", key);
    std::shared_ptr<const Candidates> known;
    {
      absl::MutexLock lock(&mu_);
      auto it = cache_.find(cache_key);
      if (it == cache_.end()) continue;
      known = it->second.candidates;
    }
    (void)Fetch(exchange, key, cache_key, known);
  }
}

absl::StatusOr<std::shared_ptr<const Candidates>> RouteTable::Fetch(
    std::string_view exchange, std::string_view key, const std::string& cache_key,
    std::shared_ptr<const Candidates> known) {
  const absl::Time now = absl::Now();
  uint64_t generation;
  {
    absl::MutexLock lock(&mu_);
    generation = generation_;
  }
  absl::StatusOr<std::vector<Registration>> regs = matchmaker_.Resolve(exchange, key);
  const double lookup_seconds = absl::ToDoubleSeconds(absl::Now() - now);
  const auto lookup_was = [&](LookupResult result) {
    if (metrics_ != nullptr) metrics_->RecordMatchmakerLookup(result, lookup_seconds);
  };
  if (!regs.ok()) {
    lookup_was(LookupResult::kError);
    // Keep serving from what we knew while the matchmaker cannot be asked; ask again later.
    if (known) {
      Store(cache_key, known, now, now);
      return known;
    }
    return regs.status();
  }
  std::shared_ptr<const Candidates> fresh = Build(cache_key, key, *regs);
  const bool empty = fresh->plain.routes.empty() && fresh->pools.empty();
  // not_found: nothing usable is registered (what a call would see as NoConsumer).
  lookup_was(empty ? LookupResult::kNotFound : LookupResult::kOk);
  if (empty && known) {
    // A backend that just came back (restarted, possibly empty) has not yet heard the services'
    // next heartbeat: keep the known routes until they had one to come back.
    const absl::Duration grace = matchmaker_.HeartbeatInterval() + absl::Seconds(1);
    if (now - matchmaker_.LastReconnect() < grace) {
      ZRPC_LOG(kDebug, "matchmaker answered no consumer for %s just after it came back; "
               "keeping the known routes", cache_key);
      Store(cache_key, known, now, now);
      return known;
    }
  }
  if (empty) {
    // Say which registry was asked, and how much it holds: a different XDG_RUNTIME_DIR or URL is
    // a different world, and an empty one points there at once.
    std::string where = absl::StrCat("matchmaker ", matchmaker_.url());
    if (absl::StatusOr<std::vector<Registration>> all = matchmaker_.List(exchange); all.ok()) {
      absl::StrAppend(&where, " holds ", all->size(),
                      all->size() == 1 ? " registration" : " registrations",
                      all->empty() ? "" : ", none for this topic");
    }
    absl::MutexLock lock(&mu_);
    routes_changed_ |= cache_.erase(cache_key) > 0;
    return NoConsumerError(StripFanout(key), where);
  }
  absl::MutexLock lock(&mu_);
  Cached& cached = cache_[cache_key];
  routes_changed_ |= !SameEndpoints(cached.candidates.get(), fresh.get());
  // A change notice that came while we asked may postdate this answer: use it, but ask again.
  cached = Cached{fresh, generation == generation_ ? now : absl::InfinitePast(), now};
  return fresh;
}

void RouteTable::Store(const std::string& cache_key, std::shared_ptr<const Candidates> c,
                       absl::Time fetched, absl::Time used) {
  absl::MutexLock lock(&mu_);
  cache_[cache_key] = Cached{std::move(c), fetched, used};
}

void RouteTable::MarkStale(std::string_view exchange, std::string_view key) {
  absl::MutexLock lock(&mu_);
  auto it = cache_.find(absl::StrCat(ToAbsl(exchange), " ", ToAbsl(key)));
  if (it != cache_.end()) it->second.fetched = absl::InfinitePast();
}

void RouteTable::MarkAllStale() {
  absl::MutexLock lock(&mu_);
  ++generation_;
  for (auto& [key, cached] : cache_) cached.fetched = absl::InfinitePast();
}

absl::flat_hash_set<std::string> RouteTable::Collect(absl::Duration idle) {
  const absl::Time now = absl::Now();
  absl::flat_hash_set<std::string> live;
  absl::MutexLock lock(&mu_);
  routes_changed_ |=
      absl::erase_if(cache_, [&](const auto& entry) { return now - entry.second.used > idle; }) > 0;
  for (const auto& [key, cached] : cache_) {
    for (const Route& r : cached.candidates->plain.routes) live.insert(r.endpoint);
    for (const RouteList& pool : cached.candidates->pools) {
      for (const Route& r : pool.routes) live.insert(r.endpoint);
    }
  }
  return live;
}

}  // namespace zrpc::internal

namespace zrpc::internal {

void RouteTable::PublishInstances(const InstanceHealth& health) {
  if (metrics_ == nullptr) return;
  absl::MutexLock publish(&publish_mu_);
  // Read before the routes: a change after this read is seen by the next call.
  const uint64_t health_version = health.version();
  std::vector<std::pair<std::string, std::shared_ptr<const Candidates>>> entries;
  {
    absl::MutexLock lock(&mu_);
    if (!routes_changed_ && health_version == published_health_) return;
    routes_changed_ = false;
    entries.reserve(cache_.size());
    for (const auto& [cache_key, cached] : cache_)
      entries.emplace_back(cache_key, cached.candidates);
  }
  published_health_ = health_version;
  // Outside the cache's lock: calls resolve meanwhile.
  absl::flat_hash_map<std::string, absl::flat_hash_set<std::string>> by_topic;
  for (const auto& [cache_key, candidates] : entries) {
    // "EXCHANGE KEY"; exchanges are names without spaces. Fanout keys count under their topic.
    const std::string_view key = std::string_view(cache_key).substr(cache_key.find(' ') + 1);
    absl::flat_hash_set<std::string>& endpoints = by_topic[std::string(StripFanout(key))];
    for (const Route& r : candidates->plain.routes) endpoints.insert(r.endpoint);
    for (const RouteList& pool : candidates->pools) {
      for (const Route& r : pool.routes) endpoints.insert(r.endpoint);
    }
  }
  for (const std::string& topic : gauged_topics_) {
    if (!by_topic.contains(topic)) metrics_->Topic(topic)->SetInstances(0, 0);
  }
  gauged_topics_.clear();
  for (const auto& [topic, endpoints] : by_topic) {
    int64_t ejected = 0;
    for (const std::string& endpoint : endpoints) ejected += health.IsEjected(endpoint);
    metrics_->Topic(topic)->SetInstances(static_cast<int64_t>(endpoints.size()) - ejected, ejected);
    gauged_topics_.insert(topic);
  }
}

}  // namespace zrpc::internal
