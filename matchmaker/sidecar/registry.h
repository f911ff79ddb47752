// SPDX-License-Identifier: Apache-2.0
// The sidecar's table: every registration it holds, the connections that own it, and when each
// was last heard from. Keeps the backend in step. A request costs O(1) per registration it
// carries, whatever the table holds; dropping clients costs one pass over the table.
//
// Ownership: a registration belongs to the connection(s) that registered it (Owner::connection,
// the ROUTER routing id). Only an owner may withdraw it (PERMISSION_DENIED otherwise). Another
// connection that registers the same registration becomes a co-owner: it stays registered until
// every owner has withdrawn it, expired or exited (e.g. a restarted service re-registering the
// endpoint of its predecessor).
#ifndef ZRPC_MATCHMAKER_SIDECAR_REGISTRY_H_
#define ZRPC_MATCHMAKER_SIDECAR_REGISTRY_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/time/time.h"
#include "matchmaker/backend.h"
#include "matchmaker/identity.h"
#include "matchmaker/sidecar/protocol.h"
#include "zrpc/matchmaker.h"

namespace zrpc::internal::sidecar {

// The keys ("compute", "fanout~compute") whose registrations changed, to announce: one notice
// per key, or a single "*" once more than a few changed (a client refilling a restarted sidecar).
class Changes {
 public:
  void Add(std::string key);
  // "*" alone, or the keys; empties the set.
  std::vector<std::string> Take();
  bool empty() const { return !all_ && keys_.empty(); }

 private:
  absl::flat_hash_set<std::string> keys_;
  bool all_ = false;
};

// What the sidecar holds at most; beyond, requests are refused with RESOURCE_EXHAUSTED.
struct RegistryLimits {
  // Registrations in one request (a heartbeat carries all of a client's).
  size_t per_request = 20000;
  // Registrations one caller owns (Owner::principal: with keys one identity, whatever its
  // connections and client names; without keys one peer address: over ipc:// one process).
  size_t per_client = 20000;
  // Registrations in the whole table.
  size_t total = 200000;
};

// Thread-compatible (the server's one thread).
class Registry {
 public:
  // `backend` (and `bulk`, the same backend's bulk registration, or null) outlive the registry;
  // `ttl` is how long a silent client keeps its registrations.
  Registry(Matchmaker* backend, BulkRegistrar* bulk, absl::Duration ttl, RegistryLimits limits = {})
      : backend_(backend), bulk_(bulk), ttl_(ttl), limits_(limits) {}

  // Adds `regs` for `owner` (ones it holds already are only refreshed; ones another connection
  // holds are held by both) and marks `owner` as heard from at `now`. The new ones go to the
  // backend in one round trip when it can; an error of the backend is returned (what it refused
  // is not held). RESOURCE_EXHAUSTED, holding nothing new, when `regs` exceeds
  // limits().per_request or would take the owner past per_client or the table past total.
  absl::Status Add(const Owner& owner, const std::vector<Registration>& regs, absl::Time now,
                   Changes* changed);
  // Marks `owner` as heard from at `now`.
  void Touch(const Owner& owner, absl::Time now);
  // Withdraws `owner`'s claim on `r`: OK when `r` is unknown; PERMISSION_DENIED (and `r` stays)
  // when another connection owns it; `r` leaves the backend once no owner is left.
  absl::Status Remove(const Owner& owner, const Registration& r, Changes* changed);

  const RegistryLimits& limits() const { return limits_; }
  // Withdraws everything of the clients not heard from for the ttl.
  void Expire(absl::Time now, Changes* changed);
  // Withdraws everything of the clients whose process has exited: those on this machine whose
  // pid and start time were confirmed when they registered. Reads /proc once per such client.
  void DropExited(Changes* changed);

  size_t size() const { return owner_of_.size(); }

 private:
  struct Client {
    uint64_t number = 0;  // what owner_of_ holds (cheaper than the id)
    size_t held = 0;      // registrations it owns
    std::string name;     // its "client" field, for log lines
    pid_t pid = 0;
    uint64_t start = 0;
    bool local = false;  // pid and start time name a process of this machine
    absl::Time last_seen;
    std::string principal;  // Owner::principal (or the connection): whose share `held` is of
  };
  // Adds `delta` to `c`'s count and to its principal's.
  void Hold(Client& c, int64_t delta);
  Client& Heard(const Owner& owner, absl::Time now);
  // Gives `fresh` to the backend; on an error, forgets the ones it may not hold.
  absl::Status RegisterFresh(const std::vector<Registration>& fresh, Client* client);
  // Withdraws every registration of `clients` (ids) and forgets them.
  void DropClients(const std::vector<std::string>& clients, const char* why, Changes* changed);

  Matchmaker* const backend_;
  BulkRegistrar* const bulk_;
  const absl::Duration ttl_;
  const RegistryLimits limits_;
  uint64_t next_client_ = 1;
  absl::Time last_share_warning_ = absl::InfinitePast();  // refusals over a share: rate-limited
  // The numbers of the clients that own each registration (almost always one).
  using Owners = std::vector<uint64_t>;
  absl::flat_hash_map<Registration, Owners, RegistrationHash> owner_of_;
  // By Owner::connection.
  absl::flat_hash_map<std::string, Client> clients_;
  // Registrations held, by Owner::principal (entries with none are removed).
  absl::flat_hash_map<std::string, size_t> held_by_principal_;
};

}  // namespace zrpc::internal::sidecar

#endif  // ZRPC_MATCHMAKER_SIDECAR_REGISTRY_H_
