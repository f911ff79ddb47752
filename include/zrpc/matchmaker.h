// SPDX-License-Identifier: Apache-2.0
// zrpc/matchmaker.h — service discovery: who consumes which topic, at which endpoint.
//
// Services register each consumer they create; clients resolve a key to the live registrations:
//   "compute"         every plain consumer (and pool member) of topic "compute" — the client picks
//                     one round-robin (and one member of each pool, for casts)
//   "compute.node1"   the consumers created on the direct topic "compute.node1"
//   "fanout~compute"  every fanout consumer of "compute"
//
//   absl::StatusOr<std::unique_ptr<zrpc::Matchmaker>> mm = zrpc::CreateMatchmaker("local://");
//   (*mm)->Register({.topic = "compute", .host = "node1", .endpoint = "tcp://127.0.0.1:5555"});
//   absl::StatusOr<std::vector<zrpc::Registration>> who = (*mm)->Resolve("openstack", "compute");
//
// Backends are chosen by URL in CreateMatchmaker:
//   local:// or local:///dir   no server: files in a directory shared by one machine's processes
//   ring:///path/ring.json     the seed's static ring file, re-read when it changes
//   redis://[:pw@]host[:port][/db][?ttl=S&heartbeat=S]   Redis: many machines, TTL liveness.
//                              Defaults ttl=6, heartbeat=2 (seconds): a killed service leaves
//                              rotation within 6 s. After Redis comes back (even empty),
//                              registrations are stored again within ~200 ms.
#ifndef ZRPC_MATCHMAKER_H_
#define ZRPC_MATCHMAKER_H_

#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace zrpc {

// The default exchange (the seed's control_exchange).
inline constexpr std::string_view kDefaultExchange = "openstack";

// The name of the bare request-body form in Registration::accepts.
inline constexpr std::string_view kBareMessageForm = "message";

// The call heartbeat intervals zrpc accepts: TransportOptions::call_heartbeat_interval must lie
// in this range (Transport::Create refuses others), and a client clamps the interval a
// registration announces (Registration::heartbeat_ms) into it, since the handshake cannot prove
// that field: a copy announcing 1 ms must not fail a 30 ms call with PeerLost.
inline constexpr absl::Duration kMinCallHeartbeatInterval = absl::Milliseconds(100);
inline constexpr absl::Duration kMaxCallHeartbeatInterval = absl::Seconds(60);

// One consumer of one service instance.
struct Registration {
  std::string exchange = std::string(kDefaultExchange);
  // The consumer's topic: "compute", or a direct topic "compute.node1".
  std::string topic;
  // The instance's host name.
  std::string host;
  // Where its ROUTER listens ("tcp://10.0.0.5:41234", "tcp://[fd00::5]:41234",
  // "ipc:///run/zrpc/x.router"): an ADDRESS, never a host name (ValidateRegistration).
  std::string endpoint;
  // Where its PUB listens (notifications); may be empty. An address, like `endpoint`.
  std::string pub_endpoint;
  // Worker pool name; "" for a plain consumer.
  std::string pool;
  // A fanout consumer (gets every FanoutCast).
  bool fanout = false;
  // The service's CURVE public key (40 characters of Z85), or "" for a plain service. Clients
  // with keys configured connect with it as the server key and use only registrations whose key
  // they trust (zrpc/security.h).
  std::string public_key;
  // The service's call heartbeat interval in milliseconds (TransportOptions::
  // call_heartbeat_interval), announced so that callers judge its silence by its own beat;
  // 0 when unknown (callers then use their own interval). Clients clamp it to
  // [kMinCallHeartbeatInterval, kMaxCallHeartbeatInterval]. Not part of the identity (==).
  int64_t heartbeat_ms = 0;
  // Request-body forms the service takes besides the 2.0 envelope, which every service takes
  // (docs/PROTOCOL.md section 3): kBareMessageForm, the message object itself. Clients send a
  // form only to registrations that list it. zrpc services list kBareMessageForm. Not part of
  // the identity (==).
  std::vector<std::string> accepts;

  // The key clients resolve this registration by: "fanout~topic" for fanout, else the topic.
  std::string Key() const;
  friend bool operator==(const Registration& a, const Registration& b);
};

// Checks a topic, host, exchange or pool name: 1..255 bytes of [A-Za-z0-9_.:~-] (no path
// separators, spaces or control characters). `what` names the field in the error
// (INVALID_ARGUMENT).
absl::Status ValidateName(std::string_view what, std::string_view name);

// Checks a whole registration as services, the sidecar, every backend and every client do: the
// names (topic, host, exchange; a pool, if any, without '~' and not with fanout), the endpoint
// (an address: tcp://IPv4:PORT, tcp://[IPv6]:PORT or ipc://PATH, printable, at most 512 bytes;
// a host name is refused, since a client would resolve it with a blocking lookup on its I/O
// thread), the pub_endpoint (empty or the same) and the public_key (empty or a CURVE key).
// INVALID_ARGUMENT naming the field, with the bad value escaped. Pure: never resolves a name.
absl::Status ValidateRegistration(const Registration& r);
// Whether `endpoint` is an endpoint ValidateRegistration accepts (an address, not a host name).
bool IsValidEndpoint(std::string_view endpoint);
// `url` with any password replaced by "***" ("redis://:***@host:6379/0"), for logs and errors.
std::string RedactUrl(std::string_view url);

// Stops a Watch when destroyed.
class WatchHandle {
 public:
  virtual ~WatchHandle() = default;
};

// The discovery interface every backend implements. All methods are thread-safe and may be
// called concurrently.
class Matchmaker {
 public:
  virtual ~Matchmaker() = default;

  // Publishes `r` as alive. Idempotent (registering the same registration again refreshes it).
  // Blocks for at most the backend's I/O (a file write, a network round trip).
  virtual absl::Status Register(const Registration& r) = 0;
  // Withdraws `r`. Idempotent: withdrawing an unknown registration is OK. Blocks like Register.
  virtual absl::Status Unregister(const Registration& r) = 0;
  // Refreshes the liveness of every registration made through this matchmaker (backends with
  // TTLs need it every few seconds; the transport calls it). Idempotent; blocks like Register.
  virtual absl::Status Heartbeat() = 0;
  // The live registrations for `key` in `exchange` (see the header comment), in a stable order.
  // An empty list means nobody consumes the key. UNAVAILABLE when the backend cannot be asked.
  // Blocks for at most the backend's I/O; backends may answer from a cache.
  virtual absl::StatusOr<std::vector<Registration>> Resolve(std::string_view exchange,
                                                            std::string_view key) = 0;
  // Every live registration ("" = of every exchange). Blocks like Resolve.
  virtual absl::StatusOr<std::vector<Registration>> List(std::string_view exchange) = 0;
  // Calls `on_change` (on a matchmaker thread, never concurrently with itself) after
  // registrations may have changed, until the handle is destroyed. Does not block.
  virtual absl::StatusOr<std::unique_ptr<WatchHandle>> Watch(std::function<void()> on_change) = 0;
  // The URL this matchmaker was created from, with any password masked (RedactUrl): safe to log.
  virtual std::string url() const = 0;
  // How often Heartbeat() must be called to keep registrations alive; InfiniteDuration when
  // liveness needs no heartbeats (local://, ring://). Does not block.
  virtual absl::Duration HeartbeatInterval() const { return absl::InfiniteDuration(); }
  // When the backend last came back after being unreachable, or was found restarted (it may
  // then have lost registrations until the services' next heartbeat); InfinitePast when never.
  // Clients keep their known routes for a topic that such a freshly reconnected backend answers
  // empty, for one HeartbeatInterval(). Thread-safe; does not block.
  virtual absl::Time LastReconnect() const { return absl::InfinitePast(); }
};

// Creates the backend `url` names (see the header comment). INVALID_ARGUMENT naming the supported
// schemes for anything else; a ring file that is missing or invalid is an error here. A Redis that
// is down is not: it is retried.
absl::StatusOr<std::unique_ptr<Matchmaker>> CreateMatchmaker(std::string_view url);

}  // namespace zrpc

#endif  // ZRPC_MATCHMAKER_H_
