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
#include "client/client_core.h"
#include "io_loop.h"
#include "wire.h"
#include "worker_pool.h"
#include "zrpc/transport.h"

namespace zrpc::internal {

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
        client_(ctx_, options_, workers_) {}
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
                             CallOptions options) override {
    return client_.Call(context, topic, std::move(message), options);
  }
  absl::StatusOr<std::unique_ptr<ReplyStream>> MultiCall(const Context& context,
                                                         std::string_view topic, Message message,
                                                         CallOptions options) override {
    return client_.MultiCall(context, topic, std::move(message), options);
  }
  void CallAsync(const Context& context, std::string_view topic, Message message,
                 std::function<void(absl::StatusOr<Value>)> done, CallOptions options) override {
    client_.CallAsync(context, topic, std::move(message), std::move(done), options);
  }
  std::vector<absl::StatusOr<Value>> CallMany(const Context& context, std::string_view topic,
                                              std::vector<Message> messages,
                                              CallManyOptions options) override {
    return client_.CallMany(context, topic, std::move(messages), options);
  }
  absl::Status Cast(const Context& context, std::string_view topic, Message message,
                    CastOptions options) override {
    return client_.Cast(context, topic, std::move(message), options);
  }
  absl::Status FanoutCast(const Context& context, std::string_view topic, Message message,
                          CastOptions options) override {
    return client_.FanoutCast(context, topic, std::move(message), options);
  }
  absl::Status CastToServer(const Context& context, std::string_view endpoint,
                            std::string_view topic, Message message, CastOptions options) override {
    return client_.CastToServer(context, endpoint, topic, std::move(message), options, false);
  }
  absl::Status FanoutCastToServer(const Context& context, std::string_view endpoint,
                                  std::string_view topic, Message message,
                                  CastOptions options) override {
    return client_.CastToServer(context, endpoint, topic, std::move(message), options, true);
  }
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

 private:
  void HeartbeatLoop();

  TransportOptions options_;
  zmq::context_t ctx_;
  WorkerPool workers_;
  IoLoop io_;
  ClientCore client_;
  std::shared_ptr<Matchmaker> matchmaker_;

  absl::Mutex mu_;
  bool closed_ ABSL_GUARDED_BY(mu_) = false;
  absl::flat_hash_set<ConnectionImpl*> connections_ ABSL_GUARDED_BY(mu_);
  int registrations_ ABSL_GUARDED_BY(mu_) = 0;
  std::thread heartbeat_thread_;

  std::unique_ptr<WatchHandle> watch_;
};

}  // namespace zrpc::internal

#endif  // ZRPC_SRC_TRANSPORT_IMPL_H_
