// SPDX-License-Identifier: Apache-2.0
// redis://[[user]:password@]host[:port][/db][?ttl=SECONDS&heartbeat=SECONDS&password_file=PATH]
// — the distributed matchmaker, through hiredis's synchronous API.
//
// The password: a password in the URL is visible to every local user in /proc/PID/cmdline when
// it is passed on a command line. Prefer password_file=/abs/path (a regular file only its owner
// may read, mode 0600 or stricter, at most 4 KiB; a trailing newline is ignored; anything else
// is refused with an error saying why) or the environment variable ZRPC_REDIS_PASSWORD, used
// when the URL has neither. url() and every log line and error show the URL with the password
// masked (redis://:***@host:port/db).
//
// Errors and untrusted data: an error reply of Redis (a wrong-typed key: WRONGTYPE; an ACL
// refusal) fails the call with the server's text — UNAVAILABLE for transient ones (LOADING,
// BUSY, TRYAGAIN, MASTERDOWN), INTERNAL otherwise — and is logged once per distinct error, not
// per call; it is never read as "no consumer". An index is read with SSCAN in pages of 1,000 ids,
// each page's registrations fetched with MGET in the round trip that asks for the next page and
// its expired ids removed in the one after: a lookup returns the valid registrations among junk
// ids at once (100,000 junk ids: well under a second), reading at most kMaxIdsScanned ids and
// returning at most kMaxIdsPerIndex registrations (kMaxIdsListed of each for List); an index
// holding more is read that far, logged once, and pruned further by later lookups. A stored
// registration that is not valid JSON of a registration is skipped with a log line (once per
// entry), and the routes built from the answer apply the registration rules and the key asked
// for (src/client/routes.cc).
//
// Data model (every key under "zrpc:", so nothing clashes with other data or with itself):
//   zrpc:reg:<id>                 STRING, the registration's JSON, with a TTL (PX). Liveness is
//                                 the key existing: a service that stops heartbeating expires.
//   zrpc:idx:<exchange>|<key>     SET of ids registered under a resolve key ("compute",
//                                 "compute.node1", "fanout~compute"); members whose registration
//                                 expired are removed when the set is read. '|' cannot appear in
//                                 names, so "topic" and "topic.host" never share a key.
//   zrpc:all                      SET of every id (for List), pruned the same way.
//   zrpc:changes                  a Pub/Sub channel: every register and unregister is announced
//                                 ("*" after a bulk re-registration).
// Defaults: ttl 6 s, heartbeat every 2 s (a killed service leaves rotation within ~6 s). A
// heartbeat refreshes every registration of the process in one pipeline.
// While Redis is unreachable, calls fail fast with UNAVAILABLE and reconnect with backoff (up to
// 1 s). A process with registrations also checks its connection every 200 ms in the background
// and, as soon as Redis answers again (perhaps restarted empty), registers everything again.
#ifndef ZRPC_MATCHMAKER_REDIS_H_
#define ZRPC_MATCHMAKER_REDIS_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/synchronization/mutex.h"
#include "matchmaker/backend.h"
#include "matchmaker/identity.h"
#include "matchmaker/redis_connection.h"
#include "zrpc/matchmaker.h"

namespace zrpc::internal {

class RedisMatchmaker : public Matchmaker, public BulkRegistrar {
 public:
  // The most registrations one lookup returns (Resolve), the most ids of its index it reads
  // (valid or not: bounded work per lookup), and both for zrpc:all (List).
  static constexpr size_t kMaxIdsPerIndex = 4096;
  static constexpr size_t kMaxIdsScanned = 131072;
  static constexpr size_t kMaxIdsListed = 200000;

  static absl::StatusOr<std::unique_ptr<RedisMatchmaker>> Create(std::string_view url);
  ~RedisMatchmaker() override;

  absl::Status Register(const Registration& r) override;
  // Stores every one of `regs` in one pipeline and announces them with one "*".
  absl::Status RegisterAll(const std::vector<Registration>& regs) override;
  absl::Status Unregister(const Registration& r) override;
  absl::Status Heartbeat() override;
  absl::StatusOr<std::vector<Registration>> Resolve(std::string_view exchange,
                                                    std::string_view key) override;
  absl::StatusOr<std::vector<Registration>> List(std::string_view exchange) override;
  absl::StatusOr<std::unique_ptr<WatchHandle>> Watch(std::function<void()> on_change) override;
  // The URL with its password masked.
  std::string url() const override { return url_; }
  absl::Duration HeartbeatInterval() const override { return address_.heartbeat; }
  // When the connection was last made again after a failure (Redis came back).
  absl::Time LastReconnect() const override;
  // Calls `observer(ok)` after each round trip to Redis from now on (see
  // RedisConnection::set_round_trip_observer; not the watcher's subscription). Thread-safe.
  void SetRoundTripObserver(std::function<void(bool ok)> observer);

 private:
  // A registration of this process, with what is stored for it.
  struct Stored {
    std::string id;
    std::string json;
  };
  using Own = absl::flat_hash_map<Registration, Stored, RegistrationHash>;

  RedisMatchmaker(std::string url, RedisAddress address)
      : url_(RedactUrl(url)), address_(address), conn_(std::move(address)) {}
  // The commands that store `regs` (of own_) with a fresh TTL: one SET each, one SADD and
  // PEXPIRE per index.
  std::vector<RedisConnection::Command> StoreCommands(
      const std::vector<Own::const_pointer>& regs) const;
  std::vector<RedisConnection::Command> StoreAllCommands() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Adds `regs` to own_ and stores them, announcing `notice` (a key, or "*").
  absl::Status Store(const std::vector<Registration>& regs, const std::string& notice);
  // conn_.Run, after storing everything again when the connection is new after a failure;
  // error replies to the first `checked` commands fail it (Checked).
  absl::StatusOr<std::vector<RedisConnection::Reply>> Run(
      const std::vector<RedisConnection::Command>& cmds, size_t checked = SIZE_MAX)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void RestoreIfReconnected() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // conn_.Run's replies (one per command), or the first error reply among those to the first
  // `checked` commands as a status (logged once).
  absl::StatusOr<std::vector<RedisConnection::Reply>> Checked(
      const std::vector<RedisConnection::Command>& cmds,
      absl::StatusOr<std::vector<RedisConnection::Reply>> replies, size_t checked = SIZE_MAX)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Logs `line` unless a line with the same `key` was logged already (a bounded memory).
  void LogOnce(const std::string& key, const std::string& line) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The registrations in the set `index` (sorted): at most `max_found` of them, from at most
  // `max_scanned` of its ids, read in bounded SSCAN pages and MGETs; ids whose registration
  // expired are removed from `index` (and zrpc:all) on the way.
  absl::StatusOr<std::vector<Registration>> Scan(const std::string& index, size_t max_found,
                                                 size_t max_scanned)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The background thread: notices a lost connection and reconnects (off the lock), so that
  // registrations are back as soon as Redis is.
  void KeepConnected();

  const std::string url_;
  const RedisAddress address_;
  absl::Mutex mu_;
  RedisConnection conn_ ABSL_GUARDED_BY(mu_);
  Own own_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_set<std::string> logged_ ABSL_GUARDED_BY(mu_);  // LogOnce's keys
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::thread keeper_;
};

}  // namespace zrpc::internal

#endif  // ZRPC_MATCHMAKER_REDIS_H_
