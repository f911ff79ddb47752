// SPDX-License-Identifier: Apache-2.0
// A call session: the client engine that every call path uses (DESIGN §3). It sends requests
// with failover (an instance that provably did not get a request — no connection, refused,
// connection gone before the send — is ejected and the next candidate is tried within the same
// deadline), keeps the calls in a CallMonitor, and reads replies and beats from the sockets it
// leased, turning deadlines, silence and lost connections into Timeout and PeerLost (never
// re-sending a request that may have run). Sync Call and MultiCall run a session on the caller's
// thread, CallMany one with many calls, CallAsync and the health prober one on their thread.
// Thread-compatible: one thread uses a session at a time.
#ifndef ZRPC_SRC_CLIENT_CALL_SESSION_H_
#define ZRPC_SRC_CLIENT_CALL_SESSION_H_

#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "client/call_monitor.h"
#include "client/health.h"
#include "client/routes.h"
#include "client/socket_pool.h"
#include "codec/wire.h"
#include "metrics/metrics.h"
#include "zrpc/transport.h"
#include "zrpc/value.h"

namespace zrpc::internal {

// What sessions share, owned by the transport's client side.
struct ClientEnv {
  const TransportOptions& options;
  SocketPool& sockets;
  InstanceHealth& health;
  RouteTable* routes = nullptr;  // told to refresh a key after a failed send; may be null
};

// The reply path's decoding, pure (no sockets), so that the reply fuzz target runs what
// CallSession does with the frames a service sends.
//
// The header of a reply or beat (a message of exactly 2 frames: header, body); nullopt for
// anything else (dropped).
std::optional<Header> ParseReplyFrames(std::span<const std::string_view> frames);
// What a reply body from `host` means to its call: a stream value (`final` false), or the final
// result or error (a malformed reply is an RpcException naming `host`; a failure is the remote
// error).
struct ReplyOutcome {
  bool final;
  absl::StatusOr<Value> value;
};
ReplyOutcome DecodeReplyBody(std::string_view body, std::string_view host);

class CallSession {
 public:
  explicit CallSession(ClientEnv env) : env_(env) {}
  ~CallSession();  // cancels the calls still open, returns the sockets
  CallSession(const CallSession&) = delete;
  CallSession& operator=(const CallSession&) = delete;

  // What one send needs, as views (nothing is copied to send it).
  struct RequestRef {
    uint64_t token = 0;
    FrameKind kind = FrameKind::kCall;
    std::string_view key, topic, method, msg_id, body;
    absl::Time deadline = absl::InfiniteFuture();
    bool bare = false;  // `body` is the bare message: wrapped in the 2.0 envelope for a route
                        // that does not accept that form
    // The call's handle, where each attempt (one instance tried) is counted; null: not counted.
    ClientMethodStats* stats = nullptr;
  };
  struct Request {
    uint64_t token = 0;  // handed back in events
    FrameKind kind = FrameKind::kCall;  // kCall, kMultiCall or kCast
    std::string key;     // what was resolved (to refresh it after a failed send)
    std::string topic;   // for errors
    std::string method;  // for errors
    std::string msg_id;  // "" for casts
    std::string body;
    absl::Time deadline = absl::InfiniteFuture();
    bool bare = false;  // as in RequestRef
    ClientMethodStats* stats = nullptr;  // as in RequestRef
    RequestRef ref() const {
      return {token, kind, key, topic, method, msg_id, body, deadline, bare, stats};
    }
  };

  // Attempts (zrpc_client_attempts_total, include/zrpc/metrics.h): every instance a request is
  // handed to (or found unreachable when it was to be) is one attempt, recorded under the
  // request's `stats` when it ends: `ok` when its final reply came (whatever its code; for a
  // cast, when it was queued), `failed_over` when it was not reached and the call went on to
  // another instance, else the call's end (`peer_lost`, `timeout`, `send_failed`, `cancelled`).
  // So a call that reached the point of sending has exactly one attempt that is not
  // failed_over.
  //
  // What Start does with an unreachable last candidate: record it now with the call's error
  // (kEnd), or keep it open (kKeepOpen) for a caller that may retry on fresh candidates: the
  // next Start makes it failed_over when it tries an instance, EndUnsent gives it the call's
  // final error.
  enum class LastUnsent { kEnd, kKeepOpen };

  // Sends `request` to the first instance of `order` that takes it and, for calls, starts
  // watching it. Errors: PeerLost (no candidate could be reached), Timeout (the deadline passed
  // while connecting), RESOURCE_EXHAUSTED (a live instance's queue stayed full), TransportClosed.
  absl::Status Start(const Request& request, const std::vector<const Route*>& order,
                     LastUnsent last = LastUnsent::kEnd);
  // Ends the attempt Start left open (kKeepOpen) with the call's final `status`; nothing when
  // none is open or `status` is OK.
  void EndUnsent(const absl::Status& status);
  // A cast, with the same failover and errors as Start but no session: each try leases a socket
  // from the pool and hands it back at once, and nothing is kept.
  static absl::Status SendOneWay(ClientEnv env, const RequestRef& request,
                                 const std::vector<const Route*>& order);

  struct Event {
    uint64_t token;
    bool final;                   // the call's last event
    absl::StatusOr<Value> value;  // a result or stream value; an error only when final
  };
  // Waits until at least one event was appended, `until` passed, or `wake_fd` (if >= 0) became
  // readable; appends events in arrival order.
  void Pump(absl::Time until, std::vector<Event>* events, int wake_fd = -1);
  // Gives up on a call: tells its instance (cancel frame) and forgets it.
  void Cancel(std::string_view msg_id);
  // Returns the sockets that carry no open call to the pool (a long-lived session, such as
  // CallAsync's, must not keep sockets to instances that left).
  void ReleaseIdle();
  size_t in_flight() const { return monitor_.size(); }

 private:
  struct Lease {
    std::unique_ptr<PeerSocket> socket;
    Route route;  // the last route sent through it (for ejection and probes)
  };
  // An attempt whose instance proved unreachable, not yet recorded (see LastUnsent).
  struct Unsent {
    ClientMethodStats* stats = nullptr;  // null: none open
    double seconds = 0;
    // Records it (when open) as `outcome` and closes it.
    void End(AttemptOutcome outcome);
  };
  // The failover loop of Start and SendOneWay: sockets come from `session`'s leases, or from the
  // pool for one send when it is null. An unreachable last candidate is left in `unsent`.
  static absl::Status Send(ClientEnv env, const RequestRef& request,
                           const std::vector<const Route*>& order, CallSession* session,
                           Unsent& unsent);
  absl::StatusOr<Lease*> LeaseFor(const Route& route);
  // Takes the instance behind `s` out of rotation until it answers a probe; `topic` (what was
  // called) is where the ejection is counted.
  static void Eject(ClientEnv env, PeerSocket& s, const Route& route, std::string_view topic,
                    const char* why);
  void Eject(Lease& lease, std::string_view topic, const char* why) {
    Eject(env_, *lease.socket, lease.route, topic, why);
  }
  void Expire(absl::Time now, std::vector<Event>* events);
  bool ReadFrom(Lease& lease, bool wait, std::vector<Event>* events);
  void HandleMessage(Lease& lease, std::vector<zmq::message_t>& frames,
                     std::vector<Event>* events);
  void LoseConnection(Lease& lease, std::vector<Event>* events);
  void CheckConnections(std::vector<Event>* events);
  // Turns calls that ended without their final reply into events and records their attempts.
  void AddEnded(std::vector<CallMonitor::Ended> ended, std::vector<Event>* events);
  void SendCancel(Lease& lease, std::string_view msg_id);

  ClientEnv env_;
  CallMonitor monitor_;
  absl::flat_hash_map<std::string, Lease> leases_;  // by endpoint
  std::vector<zmq::message_t> frames_;
  Unsent unsent_;  // left open by Start(kKeepOpen)
};

// The outcome of an attempt that got no reply, from how its call ended (Timeout -> timeout,
// TransportClosed or CANCELLED -> cancelled, PeerLost, NoConsumer or UNAVAILABLE -> peer_lost,
// anything else -> send_failed). The one home of that mapping.
AttemptOutcome AttemptOutcomeOf(const absl::Status& status);

}  // namespace zrpc::internal

#endif  // ZRPC_SRC_CLIENT_CALL_SESSION_H_
