// SPDX-License-Identifier: Apache-2.0
// redis://[:password@]host[:port][/db][?ttl=SECONDS&heartbeat=SECONDS] — the distributed
// matchmaker, through hiredis's synchronous API.
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

#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "matchmaker/backend.h"
#include "matchmaker/identity.h"
#include "matchmaker/redis_connection.h"
#include "zrpc/matchmaker.h"

namespace zrpc::internal {

class RedisMatchmaker : public Matchmaker, public BulkRegistrar {
 public:
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
  std::string url() const override { return url_; }
  absl::Duration HeartbeatInterval() const override { return address_.heartbeat; }
  // When the connection was last made again after a failure (Redis came back).
  absl::Time LastReconnect() const override;

 private:
  // A registration of this process, with what is stored for it.
  struct Stored {
    std::string id;
    std::string json;
  };
  using Own = absl::flat_hash_map<Registration, Stored, RegistrationHash>;

  RedisMatchmaker(std::string url, RedisAddress address)
      : url_(std::move(url)), address_(address), conn_(std::move(address)) {}
  // The commands that store `regs` (of own_) with a fresh TTL: one SET each, one SADD and
  // PEXPIRE per index.
  std::vector<RedisConnection::Command> StoreCommands(
      const std::vector<Own::const_pointer>& regs) const;
  std::vector<RedisConnection::Command> StoreAllCommands() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Adds `regs` to own_ and stores them, announcing `notice` (a key, or "*").
  absl::Status Store(const std::vector<Registration>& regs, const std::string& notice);
  // conn_.Run, after storing everything again when the connection is new after a failure.
  absl::StatusOr<std::vector<RedisConnection::Reply>> Run(
      const std::vector<RedisConnection::Command>& cmds) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void RestoreIfReconnected() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Reads the registrations `ids` and removes the expired ones from `index` (and zrpc:all).
  absl::StatusOr<std::vector<Registration>> Load(const std::string& index,
                                                 const std::vector<std::string>& ids)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The background thread: notices a lost connection and reconnects (off the lock), so that
  // registrations are back as soon as Redis is.
  void KeepConnected();

  const std::string url_;
  const RedisAddress address_;
  absl::Mutex mu_;
  RedisConnection conn_ ABSL_GUARDED_BY(mu_);
  Own own_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::thread keeper_;
};

}  // namespace zrpc::internal

#endif  // ZRPC_MATCHMAKER_REDIS_H_
