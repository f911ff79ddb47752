// SPDX-License-Identifier: Apache-2.0
// The server engine (DESIGN §2, §3): the service's ROUTER and XPUB, run on the transport's
// reactor thread. It routes each request to its consumer, checks duplicates, deadlines, draining
// and the in-flight limit, resolves the handler, runs it inline or on the worker pool, sends
// replies (one final reply per call) and a beat for every call it has not answered yet, and
// publishes notifications. Thread-safe where stated; the rest runs on the reactor thread.
#ifndef ZRPC_SRC_SERVER_SERVER_ENGINE_H_
#define ZRPC_SRC_SERVER_SERVER_ENGINE_H_

#include <atomic>
#include <deque>
#include <memory>
#include <string>
#include <vector>

#include <zmq.hpp>

#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "server/consumer.h"
#include "server/worker_pool.h"
#include "codec/wire.h"
#include "metrics/metrics.h"
#include "security/keyring.h"
#include "security/zap_handler.h"
#include "zmq/reactor.h"
#include "zmq/socket_monitor.h"
#include "zrpc/dispatcher.h"
#include "zrpc/transport.h"

namespace zrpc::internal {

// A frame pair to send to a peer of the ROUTER.
struct Outbound {
  std::string rid;
  std::string header;
  std::string body;
  std::string msg_id;  // the call it answers (replies of pool jobs)
  bool last = false;   // the call's final reply
  // A reply of a call tracked in the in-flight table (run on the pool): sent only while the call
  // is still there, so that a call answered already (Close failed it) never gets a second final
  // reply.
  bool tracked = false;
  // Not a message: a cast finished on the pool (its client's work and bytes are released).
  bool cast_done = false;
  size_t bytes = 0;    // with cast_done: the request's size
  std::string caller;  // with cast_done: whose work it was (ServerEngine::CallerOf)
};

class ServerEngine {
 public:
  // `keyring`: this process's CURVE keys (null: plain sockets).
  // `metrics` (outlives it): where requests, refusals and the service's gauges are counted.
  ServerEngine(zmq::context_t& ctx, const TransportOptions& options, WorkerPool& workers,
               Reactor& reactor, Metrics& metrics, std::shared_ptr<Keyring> keyring = nullptr)
      : ctx_(ctx), options_(options), workers_(workers), reactor_(reactor), metrics_(metrics),
        keyring_(std::move(keyring)) {}
  // With CURVE: the context's ZAP handler, started before any bind. While it is not running the
  // service refuses every request (fail closed).
  void SetAuthenticator(const ZapHandler* zap) { zap_ = zap; }
  ServerEngine(const ServerEngine&) = delete;
  ServerEngine& operator=(const ServerEngine&) = delete;

  // Reactor hooks: drain the reply queue after a wake-up; close the sockets at exit.
  void OnWake();
  void OnExit();

  // Queues `out` for sending (from any thread).
  void PostReply(Outbound out);

  // Reactor thread only (through Reactor::RunSync).
  absl::Status EnsureBound();
  void AddConsumer(std::shared_ptr<Consumer> consumer);
  void RemoveConsumers(uint64_t connection_id);
  // Fails the calls of `connection_id` still running with TransportClosed.
  void AbandonCalls(uint64_t connection_id);
  // Publishes one event frame pair on the XPUB; a full subscriber queue drops it (counted).
  void Publish(const std::string& subscription, const std::string& body);

  // Thread-safe.
  uint64_t published_drops() const { return published_drops_.load(); }
  // Casts dropped by admission (a client's, or the service's, limits were reached).
  uint64_t dropped_casts() const { return dropped_casts_.load(); }
  // Times the notification socket was reset for hostile subscriptions.
  uint64_t pub_resets() const { return pub_resets_.load(); }
  std::string endpoint() const;
  std::string pub_endpoint() const;

 private:
  struct InFlight {
    std::string rid;
    std::string msg_id;
    std::shared_ptr<CallContext> ctx;
    uint64_t connection_id;
    size_t bytes;
    std::string caller;  // CallerOf: whose admission count it holds
  };
  struct Job;

  Reactor::Read HandleRouter();
  Reactor::Read DrainSubscriptions();
  // Counts the service's connections (socket monitors) and warns near the open-file limit.
  void WatchConnections();
  void OnConnectionEvent(uint16_t event);
  // OK for "TOPIC.PRIORITY" (a valid name, a known priority) or "TOPIC." (every priority): what
  // listeners subscribe to.
  static absl::Status ValidateSubscription(std::string_view prefix);
  // Drops every connection of the notification socket (so every subscription) and binds again.
  void ResetPub(const std::string& why);
  // `identity`: the caller's (the ZAP user id of its connection; "" without CURVE);
  // `peer_address`: libzmq's Peer-Address of the request (the IP address it came from; over
  // ipc:// "localhost:UID:GID:PID"; "" when unknown).
  void HandleRequest(std::string rid, const Header& header, std::string_view body,
                     std::string identity, std::string_view peer_address = {});
  // Who a request counts against for admission, fairness and the workers it may hold: its
  // CurveZMQ identity, else its peer address (over ipc:// its process), else its connection's
  // routing id. One
  // caller opening many connections still gets one share.
  static std::string CallerOf(std::string_view rid, std::string_view identity,
                              std::string_view peer_address);
  // OK when `identity` may call `target` (Endpoint::allowed, MethodEntry::allowed); else
  // NotAuthorized.
  absl::Status Authorize(const Dispatcher::Target& target, const std::string& identity,
                         std::string_view method);
  // Releases what an admitted pool request held (its caller's count, its bytes).
  void Release(const std::string& caller, size_t bytes);
  // The client behind `rid` is gone: its running calls are cancelled (they stop at their next
  // yield or reply).
  void ClientGone(const std::string& rid);
  // Calls are told apart by their client and id: two clients may pick the same MSG_ID.
  // The key of a call in in_flight_ (loop thread only: the result is a reused buffer, valid until
  // the next call).
  const std::string& InFlightKey(std::string_view rid, std::string_view msg_id);
  // Admission by load alone: this caller's requests, the queue, the bytes queued.
  absl::Status AdmitLoad(const std::string& caller, size_t bytes);
  void Submit(Job job);
  // A body larger than kDecodeOnLoopBytes is admitted by load, queued as text and decoded by the
  // worker (DecodeOnWorker), so that no decode holds the reactor thread for long.
  void SubmitUndecoded(std::string rid, const Header& header, std::shared_ptr<Consumer> consumer,
                       std::string_view body, std::string identity, std::string caller);
  // Decodes, checks and resolves a job queued as text; false when it ended there (its error
  // sent or its cast dropped).
  bool DecodeOnWorker(Job& job, const std::function<void(Reply, bool)>& send);
  void Execute(Job& job, bool on_loop);
  // Encodes one reply of `job` (its final one when `last`) and sends it (on the loop) or posts it
  // to the loop (from a worker).
  void SendJobReply(Job& job, Reply reply, bool last, bool on_loop);
  // Sends one message of three frames to client `rid` (loop thread). When libzmq's queue for
  // that connection is full (a client that does not read its replies), the reply waits in the
  // connection's pending queue, sent in order when there is room again; beats to such a client
  // are skipped. A connection whose pending replies pass ReplyBudget() loses them (logged and
  // counted) and its requests are dropped until it reads again: a client that never reads cannot
  // make the service grow.
  void SendFrames(std::string_view rid, std::string_view header, std::string_view body);
  // Sends what waits in the pending queues, in order, while libzmq takes it (loop thread).
  void FlushPending();
  // The bytes of replies one connection may have waiting in its pending queue.
  size_t ReplyBudget() const;
  // The one reactor timer serves beats and pending replies: armed for the earlier of the two.
  void ArmTimer();
  void OnTimer();
  absl::Status RunHandler(Job& job, const std::function<void(Reply, bool)>& send,
                          std::optional<Value>* last);
  void SendOutbound(const Outbound& out);
  void ReplyError(const std::string& rid, std::string_view msg_id, const absl::Status& status);
  // Encodes `reply` as the last reply of call `msg_id` and sends it (reactor thread).
  void SendFinalReply(const std::string& rid, std::string_view msg_id, Reply reply);
  void SendBeats();
  void ArmBeats();
  // Metrics (loop thread unless said): the handle of (topic, method, kind), cached on the loop.
  ServerMethodStats* StatsFor(std::string_view topic, std::string_view method, RequestKind kind,
                              bool registered);
  // Counts, logs and answers (a call, when `answer`) or drops a request that does not run:
  // `reason` a refusal, or nullopt for an answer of dispatch (counted as handled with its code
  // under `method`, which is "other" unless registered). A duplicate is only logged: its first
  // copy answers. Loop thread.
  void Refuse(const std::string& rid, const Header& header, const Consumer* consumer,
              std::string_view method, const absl::Status& status,
              std::optional<RefusalReason> reason, bool answer = true);
  // Publishes the service's gauges (queued requests and bytes, connections).
  void UpdateGauges();

  zmq::context_t& ctx_;
  const TransportOptions& options_;
  WorkerPool& workers_;
  Reactor& reactor_;
  Metrics& metrics_;
  const std::shared_ptr<Keyring> keyring_;
  const ZapHandler* zap_ = nullptr;
  bool zap_down_logged_ = false;

  mutable absl::Mutex mu_;
  std::deque<Outbound> outbound_ ABSL_GUARDED_BY(mu_);
  std::string endpoint_ ABSL_GUARDED_BY(mu_);
  std::string pub_endpoint_ ABSL_GUARDED_BY(mu_);

  // Reactor-thread state.
  std::unique_ptr<zmq::socket_t> router_;
  std::unique_ptr<zmq::socket_t> pub_;
  absl::flat_hash_map<std::string, std::shared_ptr<Consumer>> consumers_;
  std::string key_buffer_;  // reused to look consumers up without allocating
  absl::flat_hash_map<std::string, InFlight> in_flight_;  // by InFlightKey(rid, msg_id)
  std::string in_flight_key_;
  std::string header_buffer_;  // SendJobReply's reply header, reused
  // Pool requests queued or running, by caller (CallerOf).
  absl::flat_hash_map<std::string, int> peer_work_;
  size_t queued_requests_ = 0;
  size_t queued_bytes_ = 0;
  std::vector<zmq::message_t> frames_;
  std::atomic<uint64_t> published_drops_{0};
  std::atomic<uint64_t> dropped_casts_{0};
  // Distinct subscriptions the XPUB holds (as it told them), and resets for hostile ones.
  static constexpr size_t kMaxSubscriptions = 1024;
  size_t subscriptions_ = 0;
  // Malformed subscriptions since the last reset; past kMaxBadSubscriptions the socket resets.
  static constexpr size_t kMaxBadSubscriptions = 16;
  size_t bad_since_reset_ = 0;
  std::vector<std::unique_ptr<SocketMonitor>> monitors_;
  size_t connections_ = 0;
  size_t fd_limit_ = 0;
  absl::Time last_fd_warning_ = absl::InfinitePast();
  uint64_t ignored_upstream_ = 0;
  std::atomic<uint64_t> pub_resets_{0};
  std::atomic<uint64_t> bad_subscriptions_{0};  // subscriptions of a form listeners never send
  // Replies libzmq could not take yet, by connection (SendFrames).
  struct Pending {
    std::deque<std::pair<std::string, std::string>> replies;  // header, body
    size_t bytes = 0;
  };
  absl::flat_hash_map<std::string, Pending> pending_;
  size_t pending_bytes_ = 0;
  // Connections that passed their budget, and until when their requests are dropped.
  absl::flat_hash_map<std::string, absl::Time> not_reading_;
  std::atomic<uint64_t> dropped_replies_{0};
  std::atomic<uint64_t> dropped_requests_{0};  // of connections that did not read their replies
  absl::Time beats_at_ = absl::InfiniteFuture();
  absl::flat_hash_map<std::string, ServerMethodStats*> stats_cache_;  // loop thread
  std::string stats_key_;
};

}  // namespace zrpc::internal

#endif  // ZRPC_SRC_SERVER_SERVER_ENGINE_H_
