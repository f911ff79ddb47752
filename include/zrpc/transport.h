// SPDX-License-Identifier: Apache-2.0
// zrpc/transport.h — services and clients over ZeroMQ.
//
// A Transport owns the ZeroMQ context, one I/O thread (the service's ROUTER and PUB, timers,
// replies), a worker pool for handlers and the matchmaker. A service opens a Connection, creates
// consumers and starts consuming; a client calls, casts and fans out through the same Transport:
//
//   auto transport = zrpc::Transport::Create({.host = "node1", .matchmaker = "local://"});
//   zrpc::Dispatcher dispatcher;  // with endpoints, see dispatcher.h
//   auto conn = (*transport)->CreateConnection();
//   (*conn)->CreateConsumer("compute", dispatcher);                    // topic: round-robin
//   (*conn)->CreateConsumer("compute.node1", dispatcher);              // topic.host: this one
//   (*conn)->CreateConsumer("compute", dispatcher, {.fanout = true});  // fanout: every instance
//   (*conn)->ConsumeInThread();                                        // register and serve
//
//   zrpc::Message m{.method = "add", .args = {{"a", 1}, {"b", 2}}};
//   absl::StatusOr<zrpc::Value> sum = (*transport)->Call(ctx, "compute", m, {.timeout = absl::Seconds(5)});
//
// Delivery: Call gets exactly one outcome — the result, a RemoteError (or the remote's zrpc kind),
// Timeout at the deadline, NoConsumer at once when nobody consumes the topic, PeerLost when the
// server goes silent (no reply or call heartbeat for 3 heartbeat intervals), TransportClosed when
// the transport closes. Casts are at-most-once. See docs/PROTOCOL.md for the wire format.
//
// Every method is thread-safe.
#ifndef ZRPC_TRANSPORT_H_
#define ZRPC_TRANSPORT_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "zrpc/context.h"
#include "zrpc/dispatcher.h"
#include "zrpc/matchmaker.h"
#include "zrpc/security.h"
#include "zrpc/message.h"
#include "zrpc/value.h"

namespace zrpc {

// Settings of a Transport (the seed's options, with the same defaults where they exist).
struct TransportOptions {
  // This instance's host name (the seed's rpc_zmq_host): the "node1" of "compute.node1".
  // "" = the machine's host name.
  std::string host;
  // Where the service's sockets listen: an IP address, or "*" for every interface.
  std::string bind_address = "127.0.0.1";
  // CurveZMQ keys (zrpc/security.h): with them every socket is encrypted and authenticated,
  // only keys in the authorized_keys file may connect, and only registrations whose key is
  // listed there are used. Without them zrpc is plain ZeroMQ: anyone who can reach a port can
  // call every method.
  SecurityOptions security;
  // Without keys, binding every interface ("*", "0.0.0.0", "::") is refused unless this is set,
  // to say you know (firewall the port, or bind one private address instead).
  bool insecure = false;
  // The address peers connect to (it is what gets registered); "" = bind_address, or, when
  // binding every interface, this machine's primary address (the first non-loopback interface
  // that is up, IPv4 first; 127.0.0.1 when there is none). Set it behind NAT or to pick an
  // interface. The service logs both the bound and the advertised endpoint.
  std::string advertise_address;
  // ROUTER port; 0 = an ephemeral port (the real one is what gets registered).
  int port = 0;
  // PUB port (notifications); 0 = ephemeral.
  int pub_port = 0;
  // When set, the service listens on ipc:// sockets in this directory instead of TCP. Keep it
  // short: Unix socket paths are limited to 107 bytes.
  std::string ipc_dir;
  // Matchmaker URL (see matchmaker.h); ignored when `matchmaker_instance` is set.
  std::string matchmaker = "local://";
  // Use this matchmaker instead of creating one from the URL.
  std::shared_ptr<Matchmaker> matchmaker_instance;
  // The exchange consumers and clients use unless told otherwise (the seed's control_exchange).
  std::string exchange = std::string(kDefaultExchange);
  // Default deadline of Call and MultiCall (rpc_response_timeout).
  absl::Duration response_timeout = absl::Seconds(60);
  // How long a cast may wait to be queued for sending (rpc_cast_timeout).
  absl::Duration cast_timeout = absl::Seconds(30);
  // How long a send waits for a connection (TCP and ZMTP handshake) to a peer before trying
  // another instance or failing with PeerLost. Nothing is queued meanwhile, so moving on is safe.
  absl::Duration connect_timeout = absl::Seconds(1);
  // Handler threads (rpc_thread_pool_size).
  int thread_pool_size = 8;
  // Servers send a heartbeat for each unanswered call this often; callers that hear nothing for
  // 3 intervals fail the call with PeerLost. kMinCallHeartbeatInterval (100 ms) ..
  // kMaxCallHeartbeatInterval (60 s), zrpc/matchmaker.h.
  absl::Duration call_heartbeat_interval = absl::Seconds(1);
  // Largest whole message (all frames) sent or accepted.
  size_t max_message_size = 4 << 20;
  // Requests (calls and casts) one caller may have queued or running on a service's worker pool
  // at once, over all of its connections. A caller is its CurveZMQ identity with keys, else its
  // peer address (the IP address it connects from; over ipc:// its process: user, group and
  // pid). Beyond it a call gets a retryable RESOURCE_EXHAUSTED at once and a cast is
  // dropped (logged and counted).
  int max_in_flight_per_peer = 1000;
  // Handler threads one caller (as above) may hold at once, casts included; its other requests
  // wait queued (within max_in_flight_per_peer), so no caller can occupy every worker, however
  // many connections it opens. 0 = half of thread_pool_size (at least 1); at most
  // thread_pool_size is meaningful.
  int max_workers_per_caller = 0;
  // Requests queued or running on the worker pool from all clients together, and their bytes;
  // beyond either, the same as above. The pool serves clients in turn (one client's backlog
  // delays another's request by at most one handler per thread).
  int max_queued_requests = 10000;
  size_t max_queued_bytes = 256u << 20;
  // The deadline a cast's handler gets (CallContext::deadline, cancelled() after it); a cast
  // still queued when it passes is dropped.
  absl::Duration cast_deadline = absl::Seconds(60);
  // How many recent _unique_id values each consumer remembers to drop duplicates (>= 16).
  int duplicate_window = 1024;
  // How long Connection::Close waits for running handlers before failing their calls.
  absl::Duration close_timeout = absl::Seconds(5);
  // How often registrations are refreshed with the matchmaker.
  absl::Duration matchmaker_heartbeat_interval = absl::Seconds(5);
  // How long Close lets queued outgoing messages drain (ZMQ_LINGER of every socket).
  absl::Duration linger = absl::Milliseconds(500);
  // Run libzmq's I/O thread as SCHED_BATCH (Linux), for bulk work: woken by a message to send
  // or receive, it then does not preempt the thread running on its CPU, so it moves many
  // messages per wake-up instead of one, and threads that work through bursts let it run every
  // 32 messages. Where threads share a CPU, pipelined calls and casts then cost about a third
  // less CPU and run up to 1.9x and 1.3x faster; but a thread that wakes often (a timer-driven
  // sender, many callbacks) delays the I/O thread, and latency under open-loop load rises from
  // hundreds of microseconds to milliseconds (docs/PERFORMANCE.md). Off by default: turn it on
  // for closed-loop bulk transfers. Ignored where the system refuses the policy.
  bool io_thread_batch = false;
  // Send each request as the message object itself, without the 2.0 envelope, to instances
  // whose registration accepts that form (zrpc services do; docs/PROTOCOL.md section 3): the
  // service parses one JSON document instead of two (about a third less decoding) and nothing
  // is escaped twice; a call sent so also asks for bare replies. Other instances get the 2.0
  // envelope. Off: the envelope to every instance, and enveloped replies.
  bool send_bare_messages = true;
  // Serve this process's metrics (zrpc/metrics.h) over HTTP at http://ADDRESS/metrics, in the
  // Prometheus text format: "HOST:PORT" with HOST an IPv4 address, [IPv6] address or * (every
  // interface, only with `insecure`, as for binding); PORT 0 picks a free port
  // (Transport::metrics_port()). "" = no HTTP endpoint; the same text is always available as
  // `_zrpc.metrics` from every service and from MetricsText(). Create fails with
  // INVALID_ARGUMENT for a malformed address and UNAVAILABLE when it cannot be bound.
  std::string metrics_listen;
};

// Per-call settings.
struct CallOptions {
  // The deadline; zero = the transport's response_timeout, or less when called from a handler
  // whose own caller has less time left.
  absl::Duration timeout = absl::ZeroDuration();
  // "" = the transport's exchange.
  std::string exchange;
};

// Settings of CallMany.
struct CallManyOptions {
  // Each call's deadline, from when it is sent; zero = the transport's response_timeout.
  absl::Duration timeout = absl::ZeroDuration();
  // "" = the transport's exchange.
  std::string exchange;
  // Calls kept in flight at once.
  int window = 64;
};

// Per-cast settings.
struct CastOptions {
  // "" = the transport's exchange.
  std::string exchange;
};

// The replies of a MultiCall, read one at a time from the calling thread. Destroying it before
// the end (or Cancel) tells the server to stop the handler at its next value. Thread-compatible.
// Lifetime: it shares the transport's internals, so it may outlive the Transport; after
// Transport::Close, Next() returns TransportClosed.
class ReplyStream {
 public:
  virtual ~ReplyStream() = default;
  // Blocks until the next value arrives: a value, nullopt at the end, or the call's error
  // (Timeout, PeerLost, a remote error, TransportClosed). After the end or an error, returns
  // the same again.
  virtual absl::StatusOr<std::optional<Value>> Next() = 0;
  // Stops the stream: Next() returns CANCELLED afterwards.
  virtual void Cancel() = 0;
};

// What a consumer is.
struct ConsumerOptions {
  // A fanout consumer: receives every FanoutCast to the topic.
  bool fanout = false;
  // "" = the transport's exchange.
  std::string exchange;
};

class Transport;

// The seed's Connection: a set of consumers that start and stop together. Created by
// Transport::CreateConnection. Thread-safe. Dispatchers passed in must outlive the Transport.
class Connection {
 public:
  virtual ~Connection() = default;  // closes

  // Consumes `topic` ("compute" or "compute.node1") with `dispatcher`; with fanout, consumes
  // FanoutCasts to `topic`. INVALID_ARGUMENT for a bad name; InvalidRPCConnectionReuse after
  // Close. Consumers created after ConsumeInThread start at once.
  virtual absl::Status CreateConsumer(std::string_view topic, const Dispatcher& dispatcher,
                                      ConsumerOptions options = {}) = 0;
  // A member of worker pool `pool` of `topic`: each pool gets every cast to the topic once, and
  // one member of the pool handles it.
  virtual absl::Status CreateWorker(std::string_view topic, const Dispatcher& dispatcher,
                                    std::string_view pool, ConsumerOptions options = {}) = 0;
  // A pool member that receives the raw messages of `topic` in `exchange` ("" = the
  // transport's): `callback` runs on a worker thread for each message this member gets.
  virtual absl::Status JoinConsumerPool(std::function<void(const Message&)> callback,
                                        std::string_view pool, std::string_view topic,
                                        std::string_view exchange = {}) = 0;
  // Binds the service's sockets (once per Transport), registers every consumer with the
  // matchmaker and starts delivering messages to them. Blocks until done. UNAVAILABLE when the
  // sockets cannot be bound or the matchmaker refuses.
  virtual absl::Status ConsumeInThread() = 0;
  // Unregisters the consumers, stops taking new messages for them, and waits up to
  // close_timeout for running handlers; calls still running after that fail with
  // TransportClosed on the caller's side. Idempotent; never hangs.
  virtual void Close() = 0;
};

namespace internal {
class TransportCore;
}  // namespace internal

class Transport {
 public:
  // Starts the I/O thread and the worker pool and connects the matchmaker. INVALID_ARGUMENT for
  // bad options (names, URL).
  static absl::StatusOr<std::unique_ptr<Transport>> Create(TransportOptions options);
  virtual ~Transport() = default;  // closes; waits for running handlers to return

  virtual absl::StatusOr<std::unique_ptr<Connection>> CreateConnection() = 0;

  // Sends `message` to one consumer of `topic` and waits for its one reply. The transport fills
  // in the message's context, ids and remaining time. Blocks until the outcome (see above).
  virtual absl::StatusOr<Value> Call(const Context& context, std::string_view topic,
                                     Message message, CallOptions options = {}) = 0;
  // Like Call, for a streaming method: each value arrives as the handler writes it.
  virtual absl::StatusOr<std::unique_ptr<ReplyStream>> MultiCall(const Context& context,
                                                                 std::string_view topic,
                                                                 Message message,
                                                                 CallOptions options = {}) = 0;
  // Calls without waiting: `done` runs exactly once, on a worker thread, with the outcome.
  // For pipelining many calls from one thread.
  virtual void CallAsync(const Context& context, std::string_view topic, Message message,
                         std::function<void(absl::StatusOr<Value>)> done,
                         CallOptions options = {}) = 0;
  // Pipelines calls from the calling thread: sends each message as a call to `topic` (each to
  // the next instance, round-robin), keeping up to `window` in flight, and returns every call's
  // outcome in the order of `messages`. No thread hand-off: the fastest way to make many calls.
  // Blocks until every call has its outcome.
  virtual std::vector<absl::StatusOr<Value>> CallMany(const Context& context, std::string_view topic,
                                                      std::vector<Message> messages,
                                                      CallManyOptions options = {}) = 0;
  // One-way, to one plain consumer of `topic` (round-robin) and one member of each of its
  // pools. Returns once queued for sending: NoConsumer at once when nobody consumes it,
  // RESOURCE_EXHAUSTED when it cannot be queued within cast_timeout.
  virtual absl::Status Cast(const Context& context, std::string_view topic, Message message,
                            CastOptions options = {}) = 0;
  // One copy to every fanout consumer of `topic`. NoConsumer when there is none; UNAVAILABLE
  // naming the hosts that could not be reached (the others still got it).
  virtual absl::Status FanoutCast(const Context& context, std::string_view topic, Message message,
                                  CastOptions options = {}) = 0;
  // The seed's cast_to_server: a cast to `topic` at one known service endpoint
  // ("tcp://host:port"), bypassing the matchmaker.
  virtual absl::Status CastToServer(const Context& context, std::string_view endpoint,
                                    std::string_view topic, Message message,
                                    CastOptions options = {}) = 0;
  // The seed's fanout_cast_to_server: a fanout cast delivered to one known service endpoint.
  virtual absl::Status FanoutCastToServer(const Context& context, std::string_view endpoint,
                                          std::string_view topic, Message message,
                                          CastOptions options = {}) = 0;

  // Fails every waiting call with TransportClosed, closes every connection and socket, stops the
  // threads. Idempotent; bounded by close_timeout plus linger (and by running handlers).
  virtual void Close() = 0;

  // The service's ROUTER and PUB endpoints ("" until a connection consumes).
  virtual std::string endpoint() const = 0;
  virtual std::string pub_endpoint() const = 0;
  // This process's metrics (zrpc/metrics.h) in the Prometheus text format 0.0.4: what
  // `_zrpc.metrics` and the HTTP endpoint serve. Thread-safe; takes a short lock to walk them.
  virtual std::string MetricsText() const { return ""; }
  // The port of the HTTP metrics endpoint (TransportOptions::metrics_listen), or 0 when there is
  // none.
  virtual int metrics_port() const { return 0; }
  virtual const TransportOptions& options() const = 0;
  virtual Matchmaker& matchmaker() = 0;

  // zrpc's own notifiers and listeners share the transport's internals through this; other
  // implementations of Transport return null (and cannot be used with them).
  virtual std::shared_ptr<internal::TransportCore> core_for_internal_use() { return nullptr; }
};

// A service's main(), in two calls. zrpc's own threads never take asynchronous signals, so:
//
//   int main() {
//     zrpc::BlockShutdownSignals();  // first, before any thread starts: they inherit the block
//     auto transport = zrpc::Transport::Create({...});  ... consumers ...
//     zrpc::WaitForShutdownSignal();  // SIGINT or SIGTERM
//     (*transport)->Close();          // a second signal meanwhile is held, not fatal
//   }
//
// Blocks SIGINT and SIGTERM in the calling thread (and the threads it starts later).
void BlockShutdownSignals();
// Blocks them if not yet, then waits for one and returns its number.
int WaitForShutdownSignal();

}  // namespace zrpc

#endif  // ZRPC_TRANSPORT_H_
