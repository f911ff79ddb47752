// The Transport's I/O thread: owns the service ROUTER and PUB, the DEALERs of asynchronous calls,
// and every timer. Other threads talk to it through a task queue and a reply queue, woken by one
// eventfd. See DESIGN §2.
#ifndef ZRPC_SRC_IO_LOOP_H_
#define ZRPC_SRC_IO_LOOP_H_

#include <atomic>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <zmq.hpp>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/synchronization/mutex.h"
#include "wire.h"
#include "worker_pool.h"
#include "zrpc/dispatcher.h"
#include "zrpc/matchmaker.h"
#include "zrpc/transport.h"

namespace zrpc::internal {

// Remembers the last `size` unique ids (by a 64-bit hash: a false repeat needs a collision among
// the window's ids, about size^2 / 2^64); Seen() is true for a repeat. Loop thread only.
class DuplicateWindow {
 public:
  explicit DuplicateWindow(int size) : size_(size < 16 ? 16 : size) { ids_.reserve(size_); }
  bool Seen(std::string_view id);

 private:
  size_t size_;
  std::deque<uint64_t> order_;
  absl::flat_hash_set<uint64_t> ids_;
};

// What a Connection shares with the loop.
struct ConnectionState {
  uint64_t id = 0;
  std::atomic<int> running{0};        // jobs queued or running on the worker pool
  std::atomic<bool> draining{false};  // Close() has begun: refuse new work, report not serving
};

// One consumer as the loop routes to it.
struct Consumer {
  std::shared_ptr<ConnectionState> connection;
  const Dispatcher* dispatcher = nullptr;          // a dispatching consumer, or
  std::function<void(const Message&)> callback;    // a raw pool member (JoinConsumerPool)
  Registration registration;
  std::string key;  // "<exchange> <target>"
  DuplicateWindow duplicates;
  explicit Consumer(int window) : duplicates(window) {}
};

// A frame pair to send to a peer of the ROUTER.
struct Outbound {
  std::string rid;
  std::string header;
  std::string body;
  std::string msg_id;  // the call it answers (replies of pool jobs)
  bool last = false;   // the call's final reply
  // A reply of a call tracked in the loop's in-flight table (run on the pool): sent only while
  // the call is still there, so that a call answered already (Close failed it) never gets a
  // second final reply.
  bool tracked = false;
};

class IoLoop {
 public:
  IoLoop(zmq::context_t& ctx, const TransportOptions& options, WorkerPool& workers);
  ~IoLoop();
  IoLoop(const IoLoop&) = delete;
  IoLoop& operator=(const IoLoop&) = delete;

  absl::Status Start();
  // Fails pending asynchronous calls, closes the loop's sockets and joins. Idempotent.
  void Stop();

  // Runs `fn` on the loop thread and waits for it. TransportClosed once stopped.
  absl::Status RunSync(std::function<absl::Status()> fn);
  // Queues `fn` for the loop thread; false (not run) once stopped.
  bool RunAsync(std::function<void()> fn);
  // Queues `out` for sending (from any thread).
  void PostReply(Outbound out);

  // Loop thread only (through RunSync).
  absl::Status EnsureBound();
  void AddConsumer(std::shared_ptr<Consumer> consumer);
  void RemoveConsumers(uint64_t connection_id);
  // Fails the calls of `connection_id` still running with TransportClosed.
  void AbandonCalls(uint64_t connection_id);

  // Loop thread: publishes one event frame pair on the PUB; a full subscriber queue drops it
  // (counted).
  void Publish(const std::string& subscription, const std::string& body);

  // Thread-safe.
  uint64_t published_drops() const { return published_drops_.load(); }
  std::string endpoint() const;
  std::string pub_endpoint() const;

 private:
  struct InFlight {
    std::string rid;
    std::shared_ptr<CallContext> ctx;
    uint64_t connection_id;
  };
  struct Job;

  void Run();
  void Wake() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void DrainQueues();
  void HandleRouter();
  void HandleRequest(std::string rid, const Header& header, std::string_view body);
  void Execute(Job& job, bool on_loop);
  void SendOutbound(const Outbound& out);
  void ReplyError(const std::string& rid, std::string_view msg_id, const absl::Status& status);
  // Encodes `reply` as the last reply of call `msg_id` and sends it (loop thread).
  void SendFinalReply(const std::string& rid, std::string_view msg_id, Reply reply);
  // The reserved namespace's methods (ping, health, describe), answered on the I/O thread.
  absl::StatusOr<Value> Introspect(const Consumer& consumer, const std::string& method);
  void SendBeats();

  zmq::context_t& ctx_;
  const TransportOptions& options_;
  WorkerPool& workers_;
  int wake_fd_ = -1;
  std::thread thread_;
  std::thread::id loop_thread_id_;

  absl::Mutex mu_;
  std::deque<std::function<void()>> tasks_ ABSL_GUARDED_BY(mu_);
  std::deque<Outbound> outbound_ ABSL_GUARDED_BY(mu_);
  bool stopped_ ABSL_GUARDED_BY(mu_) = false;
  bool woken_ ABSL_GUARDED_BY(mu_) = false;
  std::string endpoint_ ABSL_GUARDED_BY(mu_);
  std::string pub_endpoint_ ABSL_GUARDED_BY(mu_);

  // Loop-thread state.
  bool stop_requested_ = false;
  std::unique_ptr<zmq::socket_t> router_;
  std::unique_ptr<zmq::socket_t> pub_;
  absl::flat_hash_map<std::string, std::shared_ptr<Consumer>> consumers_;
  std::string key_buffer_;  // reused to look consumers up without allocating
  absl::flat_hash_map<std::string, InFlight> in_flight_;   // by msg_id
  absl::flat_hash_map<std::string, int> peer_in_flight_;    // by rid
  absl::Time next_beats_ = absl::InfiniteFuture();
  std::atomic<uint64_t> published_drops_{0};
};

}  // namespace zrpc::internal

#endif  // ZRPC_SRC_IO_LOOP_H_
