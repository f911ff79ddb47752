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
//   zrpc:changes                  a Pub/Sub channel: every register and unregister is announced.
// Defaults: ttl 30 s, heartbeat every 10 s (a dead service leaves rotation within ~30 s).
// While Redis is unreachable, calls fail fast with UNAVAILABLE and reconnect with backoff
// (100 ms doubling to 5 s); the next heartbeat re-registers everything.
#ifndef ZRPC_MATCHMAKER_REDIS_H_
#define ZRPC_MATCHMAKER_REDIS_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "zrpc/matchmaker.h"

struct redisContext;

namespace zrpc::internal {

struct RedisAddress {
  std::string host = "127.0.0.1";
  int port = 6379;
  std::string user;      // for Redis 6 ACLs ("user:pass@")
  std::string password;  // "" = no AUTH
  int db = 0;
  absl::Duration ttl = absl::Seconds(30);
  absl::Duration heartbeat = absl::Seconds(10);
};

// Parses a redis:// URL; INVALID_ARGUMENT naming what is wrong.
absl::StatusOr<RedisAddress> ParseRedisUrl(std::string_view url);

// One synchronous connection, reconnected with backoff. Thread-compatible (callers lock).
class RedisConnection {
 public:
  explicit RedisConnection(RedisAddress address) : address_(std::move(address)) {}
  ~RedisConnection();

  // A reply, reduced to what zrpc needs.
  struct Reply {
    bool nil = false;
    bool error = false;
    std::string str;                // STRING, STATUS, ERROR text
    long long integer = 0;          // INTEGER
    std::vector<Reply> elements;    // ARRAY
  };
  // Sends the commands in one pipeline and returns their replies in order. UNAVAILABLE when
  // Redis cannot be reached (the connection is dropped and retried after a backoff).
  absl::StatusOr<std::vector<Reply>> Run(const std::vector<std::vector<std::string>>& commands);
  // The connected context for Pub/Sub, or an error.
  absl::StatusOr<redisContext*> Connected();
  void Drop(std::string_view why);
  const RedisAddress& address() const { return address_; }

 private:
  RedisAddress address_;
  redisContext* ctx_ = nullptr;
  absl::Time next_attempt_ = absl::InfinitePast();
  absl::Duration backoff_ = absl::Milliseconds(100);
  std::string last_error_;
};

class RedisMatchmaker : public Matchmaker {
 public:
  static absl::StatusOr<std::unique_ptr<Matchmaker>> Create(std::string_view url);

  absl::Status Register(const Registration& r) override;
  absl::Status Unregister(const Registration& r) override;
  absl::Status Heartbeat() override;
  absl::StatusOr<std::vector<Registration>> Resolve(std::string_view exchange,
                                                    std::string_view key) override;
  absl::StatusOr<std::vector<Registration>> List(std::string_view exchange) override;
  absl::StatusOr<std::unique_ptr<WatchHandle>> Watch(std::function<void()> on_change) override;
  std::string url() const override { return url_; }
  absl::Duration HeartbeatInterval() const override { return address_.heartbeat; }

 private:
  RedisMatchmaker(std::string url, RedisAddress address)
      : url_(std::move(url)), address_(address), conn_(std::move(address)) {}
  std::vector<std::vector<std::string>> RegisterCommands(const Registration& r) const;
  // Reads the registrations `ids` and removes the expired ones from `index` (and zrpc:all).
  absl::StatusOr<std::vector<Registration>> Load(const std::string& index,
                                                 const std::vector<std::string>& ids)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const std::string url_;
  const RedisAddress address_;
  absl::Mutex mu_;
  RedisConnection conn_ ABSL_GUARDED_BY(mu_);
  std::vector<Registration> own_ ABSL_GUARDED_BY(mu_);
};

}  // namespace zrpc::internal

#endif  // ZRPC_MATCHMAKER_REDIS_H_
