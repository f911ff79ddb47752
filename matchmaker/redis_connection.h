// SPDX-License-Identifier: Apache-2.0
// A redis:// URL and one synchronous hiredis connection to it (hiredis 0.14: no async adapter
// of ours, no TLS), shared by the Redis matchmaker and its Pub/Sub watcher.
#ifndef ZRPC_MATCHMAKER_REDIS_CONNECTION_H_
#define ZRPC_MATCHMAKER_REDIS_CONNECTION_H_

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "matchmaker/atomic_time.h"

struct redisContext;

namespace zrpc::internal {

struct RedisAddress {
  std::string host = "127.0.0.1";
  int port = 6379;
  std::string user;      // for Redis 6 ACLs ("user:pass@")
  std::string password;  // "" = no AUTH
  int db = 0;
  // A registration expires this long after its service's last heartbeat...
  absl::Duration ttl = absl::Seconds(6);
  // ...and services refresh it this often: a killed service leaves rotation within ttl, and
  // survives two lost heartbeats.
  absl::Duration heartbeat = absl::Seconds(2);
};

// The environment variable that holds the Redis password when the URL gives none.
inline constexpr char kPasswordEnv[] = "ZRPC_REDIS_PASSWORD";
// The largest password file read.
inline constexpr size_t kMaxPasswordFileBytes = 4096;

// Parses redis://[[user]:password@]host[:port][/db][?ttl=SECONDS&heartbeat=SECONDS&
// password_file=PATH]. The password is, in this order: the URL's; the contents of password_file
// (an absolute path to a regular file that only its owner may read, at most 4 KiB, trailing
// newlines dropped); $ZRPC_REDIS_PASSWORD; none. INVALID_ARGUMENT naming what is wrong (the URL
// shown with its password masked).
absl::StatusOr<RedisAddress> ParseRedisUrl(std::string_view url);
// The password in the file at `path`, checked as above.
absl::StatusOr<std::string> ReadPasswordFile(const std::string& path);

// One connection, made on first use and again after a failure (with backoff: 100 ms doubling to
// 1 s, so that a caller fails fast while Redis is away). Thread-compatible: callers lock, except
// for last_reconnect().
class RedisConnection {
 public:
  using Command = std::vector<std::string>;
  // A reply, reduced to what zrpc needs.
  struct Reply {
    bool nil = false;
    bool error = false;
    std::string str;              // STRING, STATUS, ERROR text
    long long integer = 0;        // INTEGER
    std::vector<Reply> elements;  // ARRAY
  };

  explicit RedisConnection(RedisAddress address) : address_(std::move(address)) {}
  RedisConnection(const RedisConnection&) = delete;
  RedisConnection& operator=(const RedisConnection&) = delete;
  ~RedisConnection();

  // Connects, authenticates and selects the database, without touching any RedisConnection:
  // lets a thread connect without holding the lock its connection is guarded by. Blocks up to
  // the connect timeout (1 s) and a round trip.
  static absl::StatusOr<redisContext*> Dial(const RedisAddress& address);

  // Sends `commands` in one pipeline and returns their replies in order. UNAVAILABLE when Redis
  // cannot be reached (the connection is dropped and made again on a later call). An idle
  // connection that Redis closed (it restarted) is replaced first, without failing.
  absl::StatusOr<std::vector<Reply>> Run(const std::vector<Command>& commands);
  // The connected context, connecting first if needed (not before the backoff has passed), or
  // UNAVAILABLE.
  absl::StatusOr<redisContext*> Connected();
  // Uses `c` (from Dial) when not connected; frees it otherwise.
  void Adopt(redisContext* c);
  // Drops an idle connection that Redis has closed (it restarted or timed us out), so that the
  // next use connects again at once. Does not block. Not for a subscribed connection.
  void CheckIdle();
  void Drop(std::string_view why);
  bool connected() const { return ctx_ != nullptr; }
  const RedisAddress& address() const { return address_; }

  // Called after each round trip with whether it succeeded (Run: one per pipeline, ok when every
  // reply came; Connected: false when Redis cannot be reached, or while backing off) — the
  // sidecar counts them (zrpc_sidecar_redis_round_trips_total). Called on the caller's thread,
  // under the caller's lock; must not block. Null (the default): nothing is called.
  void set_round_trip_observer(std::function<void(bool ok)> observer) {
    round_trip_observer_ = std::move(observer);
  }

  // True once after each connection that follows a failure (Redis came back, perhaps empty):
  // the caller then restores what it had stored. Its time is last_reconnect().
  bool TakeReconnected() { return std::exchange(reconnected_, false); }
  // When a connection was last made after a failure; InfinitePast when never. Thread-safe.
  absl::Time last_reconnect() const { return last_reconnect_.Get(); }

 private:
  // Takes `c` as the connection.
  void Install(redisContext* c);
  absl::StatusOr<std::vector<Reply>> Pipeline(const std::vector<Command>& commands);
  std::string Where() const;

  const RedisAddress address_;
  redisContext* ctx_ = nullptr;
  absl::Time next_attempt_ = absl::InfinitePast();
  absl::Duration backoff_ = absl::Milliseconds(100);
  std::string last_error_;  // "" while no failure is pending
  bool reconnected_ = false;
  AtomicTime last_reconnect_;
  std::function<void(bool ok)> round_trip_observer_;
};

}  // namespace zrpc::internal

#endif  // ZRPC_MATCHMAKER_REDIS_CONNECTION_H_
