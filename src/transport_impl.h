// Internal: the Transport and Connection implementations, shared by transport.cc and the
// notification code.
#ifndef ZRPC_SRC_TRANSPORT_IMPL_H_
#define ZRPC_SRC_TRANSPORT_IMPL_H_

#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <zmq.hpp>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/synchronization/mutex.h"
#include "client.h"
#include "io_loop.h"
#include "wire.h"
#include "worker_pool.h"
#include "zrpc/transport.h"

namespace zrpc::internal {

// Routes to one group of consumers, with the round-robin counter of that group.
struct RouteList {
  std::vector<Route> routes;
  std::atomic<uint64_t>* next = nullptr;  // owned by the transport; outlives every cache entry
  // The routes in the order to try them: the round-robin pick first.
  std::vector<const Route*> Order() const {
    std::vector<const Route*> out;
    out.reserve(routes.size());
    const size_t start = routes.empty() ? 0 : next->fetch_add(1, std::memory_order_relaxed) % routes.size();
    for (size_t i = 0; i < routes.size(); ++i) out.push_back(&routes[(start + i) % routes.size()]);
    return out;
  }
};

// Consumers of a topic as the matchmaker lists them, grouped for routing.
struct Candidates {
  RouteList plain;
  std::vector<RouteList> pools;  // one list per pool
};

class TransportImpl;

class ConnectionImpl : public Connection {
 public:
  explicit ConnectionImpl(TransportImpl* t);
  ~ConnectionImpl() override;

  absl::Status CreateConsumer(std::string_view topic, const Dispatcher& dispatcher,
                              ConsumerOptions options) override;
  absl::Status CreateWorker(std::string_view topic, const Dispatcher& dispatcher,
                            std::string_view pool, ConsumerOptions options) override;
  absl::Status JoinConsumerPool(std::function<void(const Message&)> callback,
                                std::string_view pool, std::string_view topic,
                                std::string_view exchange) override;
  absl::Status ConsumeInThread() override;
  void Close() override;
  // The transport is going away: close, then never touch it again.
  void Detach();

 private:
  // A consumer of `topic` ("" exchange = the transport's; `pool` "" = not a pool member), its
  // names checked; the caller sets its dispatcher or callback.
  absl::StatusOr<std::shared_ptr<Consumer>> NewConsumer(std::string_view topic,
                                                        std::string_view exchange,
                                                        std::string_view pool, bool fanout);
  absl::Status Add(std::shared_ptr<Consumer> consumer);
  absl::Status Activate(const std::vector<std::shared_ptr<Consumer>>& consumers)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  absl::Mutex mu_;
  TransportImpl* transport_ ABSL_GUARDED_BY(mu_);
  std::shared_ptr<ConnectionState> state_;
  std::vector<std::shared_ptr<Consumer>> consumers_ ABSL_GUARDED_BY(mu_);
  bool consuming_ ABSL_GUARDED_BY(mu_) = false;
  bool closed_ ABSL_GUARDED_BY(mu_) = false;
};

class TransportImpl : public Transport {
 public:
  explicit TransportImpl(TransportOptions options)
      : options_(std::move(options)),
        ctx_(1),
        workers_(options_.thread_pool_size),
        io_(ctx_, options_, workers_),
        sockets_(ctx_, options_) {}
  ~TransportImpl() override { Close(); }

  // Connects the matchmaker, starts watching it and starts the I/O thread.
  absl::Status Init();

  absl::StatusOr<std::unique_ptr<Connection>> CreateConnection() override {
    absl::MutexLock lock(&mu_);
    if (closed_) return TransportClosedError();
    auto conn = std::make_unique<ConnectionImpl>(this);
    connections_.insert(conn.get());
    return std::unique_ptr<Connection>(std::move(conn));
  }

  absl::StatusOr<Value> Call(const Context& context, std::string_view topic, Message message,
                             CallOptions options) override;
  absl::StatusOr<std::unique_ptr<ReplyStream>> MultiCall(const Context& context,
                                                         std::string_view topic, Message message,
                                                         CallOptions options) override;
  void CallAsync(const Context& context, std::string_view topic, Message message,
                 std::function<void(absl::StatusOr<Value>)> done, CallOptions options) override;
  std::vector<absl::StatusOr<Value>> CallMany(const Context& context, std::string_view topic,
                                              std::vector<Message> messages,
                                              CallManyOptions options) override;
  absl::Status Cast(const Context& context, std::string_view topic, Message message,
                    CastOptions options) override;
  absl::Status FanoutCast(const Context& context, std::string_view topic, Message message,
                          CastOptions options) override;
  absl::Status CastToServer(const Context& context, std::string_view endpoint,
                            std::string_view topic, Message message, CastOptions options) override;
  absl::Status FanoutCastToServer(const Context& context, std::string_view endpoint,
                                  std::string_view topic, Message message,
                                  CastOptions options) override;
  void Close() override;

  std::string endpoint() const override { return io_.endpoint(); }
  std::string pub_endpoint() const override { return io_.pub_endpoint(); }
  const TransportOptions& options() const override { return options_; }
  Matchmaker& matchmaker() override { return *matchmaker_; }

  // For connections.
  IoLoop& io() { return io_; }
  void Forget(ConnectionImpl* c) {
    absl::MutexLock lock(&mu_);
    connections_.erase(c);
  }
  void Registered(const Registration& r);
  void Unregistered(const Registration& r);

  // For streams.
  ClientSockets& sockets() { return sockets_; }

 private:
  friend class ReplyStreamImpl;
  struct Prepared {
    std::string exchange;
    std::string msg_id;
    std::string body;
    absl::Time deadline;
    std::string method;
  };
  absl::Status CheckOpen();
  absl::StatusOr<Prepared> Prepare(const Context& context, std::string_view topic,
                                   Message& message, std::string_view exchange, bool is_call,
                                   absl::Duration timeout);
  absl::StatusOr<std::shared_ptr<const Candidates>> Resolve(std::string_view exchange,
                                                            std::string_view topic);
  std::atomic<uint64_t>* RoundRobinCounter(const std::string& key);
  void ForgetRoutes(std::string_view exchange, std::string_view topic);
  // Sends to the first candidate that accepts; the others are tried when one cannot be reached.
  absl::StatusOr<std::pair<Route, std::unique_ptr<PeerSocket>>> SendToOneOf(
      const RouteList& candidates, FrameKind kind, std::string_view exchange,
      const std::string& msg_id, const std::string& body, absl::Time deadline,
      std::string_view topic);
  absl::Status CastTo(const RouteList& candidates, std::string_view exchange,
                      const std::string& body, std::string_view topic);
  absl::StatusOr<std::unique_ptr<class ReplyStreamImpl>> StartCall(
      const Context& context, std::string_view topic, Message message, CallOptions options,
      FrameKind kind);
  void HeartbeatLoop();

  TransportOptions options_;
  zmq::context_t ctx_;
  WorkerPool workers_;
  IoLoop io_;
  ClientSockets sockets_;
  std::shared_ptr<Matchmaker> matchmaker_;

  absl::Mutex mu_;
  bool closed_ ABSL_GUARDED_BY(mu_) = false;
  absl::flat_hash_set<ConnectionImpl*> connections_ ABSL_GUARDED_BY(mu_);
  int registrations_ ABSL_GUARDED_BY(mu_) = 0;
  std::thread heartbeat_thread_;

  absl::Mutex rr_mu_;
  absl::flat_hash_map<std::string, std::unique_ptr<std::atomic<uint64_t>>> round_robin_
      ABSL_GUARDED_BY(rr_mu_);

  struct CachedRoutes {
    std::shared_ptr<const Candidates> candidates;
    absl::Time fetched;
  };
  absl::Mutex cache_mu_;
  absl::flat_hash_map<std::string, CachedRoutes> route_cache_ ABSL_GUARDED_BY(cache_mu_);
  std::unique_ptr<WatchHandle> watch_;
};

}  // namespace zrpc::internal

#endif  // ZRPC_SRC_TRANSPORT_IMPL_H_
