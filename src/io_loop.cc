#include "io_loop.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <future>

#include "absl/hash/hash.h"
#include "absl/strings/str_cat.h"
#include "json_internal.h"
#include "log_internal.h"
#include "zmq_util.h"
#include "zrpc/errors.h"
#include "zrpc/message.h"

namespace zrpc::internal {
namespace {

std::atomic<int> ipc_counter{0};

bool IsRoutingError(const absl::Status& s) {
  std::optional<ErrorKind> k = GetErrorKind(s);
  return k == ErrorKind::kNoSuchMethod || k == ErrorKind::kUnsupportedRpcVersion ||
         k == ErrorKind::kNoConsumer || s.code() == absl::StatusCode::kInvalidArgument;
}

std::string Bracketed(const std::string& address) {
  return address.find(':') != std::string::npos ? "[" + address + "]" : address;
}

// "tcp://0.0.0.0:41234" → the port.
std::string PortOf(const std::string& endpoint) { return endpoint.substr(endpoint.rfind(':') + 1); }

}  // namespace

bool DuplicateWindow::Seen(std::string_view id) {
  const uint64_t h = absl::HashOf(ToAbsl(id));
  if (!ids_.insert(h).second) return true;
  order_.push_back(h);
  if (order_.size() > size_) {
    ids_.erase(order_.front());
    order_.pop_front();
  }
  return false;
}

struct IoLoop::Job {
  std::shared_ptr<Consumer> consumer;
  FrameKind kind;
  std::string rid;
  std::string msg_id;
  Message message;
  std::shared_ptr<CallContext> ctx;
  Dispatcher::Target target;  // resolved on the I/O thread (dispatching consumers)
};

IoLoop::IoLoop(zmq::context_t& ctx, const TransportOptions& options, WorkerPool& workers)
    : ctx_(ctx), options_(options), workers_(workers) {}

IoLoop::~IoLoop() {
  Stop();
  if (wake_fd_ >= 0) close(wake_fd_);
}

absl::Status IoLoop::Start() {
  wake_fd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (wake_fd_ < 0) return absl::InternalError(absl::StrCat("eventfd: ", std::strerror(errno)));
  thread_ = std::thread([this] { Run(); });
  loop_thread_id_ = thread_.get_id();
  return absl::OkStatus();
}

void IoLoop::Stop() {
  {
    absl::MutexLock lock(&mu_);
    if (stopped_) return;
    stopped_ = true;
  }
  if (thread_.joinable()) {
    uint64_t one = 1;
    (void)!write(wake_fd_, &one, sizeof(one));
    thread_.join();
  }
}

void IoLoop::Wake() {
  // Called with mu_ held: one eventfd write per batch of queued work.
  if (!woken_) {
    woken_ = true;
    uint64_t one = 1;
    (void)!write(wake_fd_, &one, sizeof(one));
  }
}

bool IoLoop::RunAsync(std::function<void()> fn) {
  absl::MutexLock lock(&mu_);
  if (stopped_) return false;
  tasks_.push_back(std::move(fn));
  Wake();
  return true;
}

absl::Status IoLoop::RunSync(std::function<absl::Status()> fn) {
  if (std::this_thread::get_id() == loop_thread_id_) return fn();
  auto done = std::make_shared<std::promise<absl::Status>>();
  std::future<absl::Status> result = done->get_future();
  if (!RunAsync([fn = std::move(fn), done] { done->set_value(fn()); })) {
    return TransportClosedError();
  }
  return result.get();
}

void IoLoop::PostReply(Outbound out) {
  absl::MutexLock lock(&mu_);
  if (stopped_) return;
  outbound_.push_back(std::move(out));
  Wake();
}

std::string IoLoop::endpoint() const {
  absl::MutexLock lock(const_cast<absl::Mutex*>(&mu_));
  return endpoint_;
}

std::string IoLoop::pub_endpoint() const {
  absl::MutexLock lock(const_cast<absl::Mutex*>(&mu_));
  return pub_endpoint_;
}

absl::Status IoLoop::EnsureBound() {
  if (router_) return absl::OkStatus();
  absl::StatusOr<std::unique_ptr<zmq::socket_t>> router =
      MakeSocket(ctx_, SocketRole::kServiceRouter, options_);
  if (!router.ok()) return router.status();
  absl::StatusOr<std::unique_ptr<zmq::socket_t>> pub =
      MakeSocket(ctx_, SocketRole::kServicePub, options_);
  if (!pub.ok()) return pub.status();
  std::string router_ep, pub_ep;
  try {
    if (!options_.ipc_dir.empty()) {
      const std::string base = absl::StrCat("ipc://", options_.ipc_dir, "/", getpid(), "-",
                                            ipc_counter.fetch_add(1));
      (*router)->bind(base + ".r");
      (*pub)->bind(base + ".p");
      router_ep = base + ".r";
      pub_ep = base + ".p";
    } else {
      const std::string bind = options_.bind_address == "*" ? "*" : Bracketed(options_.bind_address);
      auto port = [](int p) { return p > 0 ? std::to_string(p) : std::string("*"); };
      (*router)->bind(absl::StrCat("tcp://", bind, ":", port(options_.port)));
      (*pub)->bind(absl::StrCat("tcp://", bind, ":", port(options_.pub_port)));
      std::string advertise = options_.advertise_address;
      if (advertise.empty()) {
        advertise = (options_.bind_address == "*" || options_.bind_address == "0.0.0.0")
                        ? options_.host
                        : options_.bind_address;
      }
      router_ep = absl::StrCat("tcp://", Bracketed(advertise), ":",
                               PortOf((*router)->get(zmq::sockopt::last_endpoint)));
      pub_ep = absl::StrCat("tcp://", Bracketed(advertise), ":",
                            PortOf((*pub)->get(zmq::sockopt::last_endpoint)));
    }
  } catch (const zmq::error_t& e) {
    return ZmqError("cannot bind the service's sockets", e);
  }
  router_ = *std::move(router);
  pub_ = *std::move(pub);
  absl::MutexLock lock(&mu_);
  endpoint_ = router_ep;
  pub_endpoint_ = pub_ep;
  ZRPC_LOG(kInfo, "service %s listening on %s (notifications on %s)", options_.host, router_ep,
           pub_ep);
  return absl::OkStatus();
}

void IoLoop::AddConsumer(std::shared_ptr<Consumer> consumer) {
  consumers_[consumer->key] = std::move(consumer);
}

void IoLoop::RemoveConsumers(uint64_t connection_id) {
  absl::erase_if(consumers_, [&](const auto& entry) {
    return entry.second->connection->id == connection_id;
  });
}

void IoLoop::AbandonCalls(uint64_t connection_id) {
  std::vector<std::string> ids;
  for (const auto& [msg_id, call] : in_flight_) {
    if (call.connection_id == connection_id) ids.push_back(msg_id);
  }
  for (const std::string& msg_id : ids) {
    InFlight& call = in_flight_[msg_id];
    call.ctx->Cancel();
    ReplyError(call.rid, msg_id, TransportClosedError());
    if (--peer_in_flight_[call.rid] <= 0) peer_in_flight_.erase(call.rid);
    in_flight_.erase(msg_id);
  }
}

void IoLoop::Run() {
  // ZMQ_FD is edge-triggered: ask ZMQ_EVENTS first and only sleep in poll() when no socket has
  // anything. This is zmq_poll's logic with two of its three pre-sleep system calls removed.
  std::vector<pollfd> fds;
  auto readable = [](zmq::socket_t& socket) {
    return (socket.get(zmq::sockopt::events) & ZMQ_POLLIN) != 0;
  };
  while (!stop_requested_) {
    try {
      // Timers first: they send, and any operation on a socket after its ZMQ_EVENTS check could
      // consume the edge poll() would wait for.
      const absl::Time now = absl::Now();
      if (now >= next_beats_) SendBeats();
      bool worked = false;
      if (pub_ && readable(*pub_)) {
        // Subscription messages of the XPUB: libzmq keeps the filters itself; just drain them.
        zmq::message_t sub;
        while (pub_->recv(sub, zmq::recv_flags::dontwait)) {
        }
      }
      if (router_ && readable(*router_)) {
        HandleRouter();
        worked = true;
      }
      fds.clear();
      fds.push_back({wake_fd_, POLLIN, 0});
      if (router_) fds.push_back({router_->get(zmq::sockopt::fd), POLLIN, 0});
      if (pub_) fds.push_back({pub_->get(zmq::sockopt::fd), POLLIN, 0});
      int timeout_ms = -1;
      if (worked) {
        timeout_ms = 0;  // there may be more: look again before sleeping
      } else if (const absl::Time next = next_beats_; next != absl::InfiniteFuture()) {
        timeout_ms = static_cast<int>(std::max<int64_t>(
            0, absl::ToInt64Milliseconds(absl::Ceil(next - absl::Now(), absl::Milliseconds(1)))));
      }
      if (poll(fds.data(), fds.size(), timeout_ms) < 0 && errno != EINTR) {
        ZRPC_LOG(kError, "I/O thread poll failed: %s", std::strerror(errno));
      }
      if (fds[0].revents & POLLIN) DrainQueues();
    } catch (const zmq::error_t& e) {
      if (e.num() == ETERM) break;
      ZRPC_LOG(kError, "I/O thread: %s", e.what());
    }
  }
  // Shutting down: nothing may wait on us any more.
  DrainQueues();
  router_.reset();
  pub_.reset();
}

void IoLoop::DrainQueues() {
  // Clear the eventfd before taking the queues: a post that lands after the read either sees
  // woken_ still set (its item is taken below) or writes the eventfd again (seen by the next
  // poll). Reading after the swap could swallow that second write and strand its item.
  uint64_t count;
  (void)!read(wake_fd_, &count, sizeof(count));
  std::deque<std::function<void()>> tasks;
  std::deque<Outbound> outbound;
  {
    absl::MutexLock lock(&mu_);
    woken_ = false;
    tasks.swap(tasks_);
    outbound.swap(outbound_);
    if (stopped_) stop_requested_ = true;
  }
  for (auto& task : tasks) task();
  for (const Outbound& out : outbound) SendOutbound(out);
}

void IoLoop::HandleRouter() {
  std::vector<zmq::message_t> frames;
  // Bounded so that replies and timers are not starved by a flood.
  for (int i = 0; i < 1000; ++i) {
    try {
      const RecvResult got = RecvMessage(*router_, &frames, /*wait=*/false, /*max_frames=*/4);
      if (got == RecvResult::kNone) return;
      if (got == RecvResult::kTruncated) {
        ZRPC_LOG(kError, "a truncated message arrived on the service socket; dropped");
        return;
      }
    } catch (const zmq::error_t& e) {
      if (e.num() != EAGAIN) ZRPC_LOG(kError, "receive failed: %s", e.what());
      return;
    }
    if (frames.size() < 2 || frames.size() > 3) {
      ZRPC_LOG(kWarning, "dropping a message of %d frames (zrpc messages have 2: header, body)",
               static_cast<int>(frames.size()) - 1);
      continue;
    }
    std::string rid(View(frames[0]));
    absl::StatusOr<Header> header = ParseHeader(View(frames[1]));
    if (!header.ok()) {
      ZRPC_LOG(kWarning, "dropping a message with a bad header: %s", header.status().message());
      continue;
    }
    if (header->kind == FrameKind::kCancel) {
      auto it = in_flight_.find(ToAbsl(header->msg_id));
      if (it != in_flight_.end() && it->second.rid == rid) it->second.ctx->Cancel();
      continue;
    }
    if (header->kind != FrameKind::kCast && header->kind != FrameKind::kCall &&
        header->kind != FrameKind::kMultiCall) {
      ZRPC_LOG(kWarning, "dropping a \"%s\" frame sent to a service",
               FrameKindName(header->kind));
      continue;
    }
    const std::string_view body = frames.size() == 3 ? View(frames[2]) : std::string_view();
    const size_t total = frames[1].size() + body.size();
    if (total > options_.max_message_size) {
      absl::Status too_big = absl::ResourceExhaustedError(
          absl::StrCat("message of ", total, " bytes exceeds the service's limit of ",
                       options_.max_message_size, " bytes"));
      if (header->kind == FrameKind::kCast) {
        ZRPC_LOG(kWarning, "dropping cast to %s: %s", ToAbsl(header->target), too_big.message());
      } else {
        ReplyError(rid, header->msg_id, too_big);
      }
      continue;
    }
    HandleRequest(std::move(rid), *header, body);
  }
}

void IoLoop::HandleRequest(std::string rid, const Header& header, std::string_view body) {
  const bool is_cast = header.kind == FrameKind::kCast;
  auto fail = [&](const absl::Status& status) {
    if (is_cast) {
      ZRPC_LOG(kWarning, "dropping cast to %s: %s", ToAbsl(header.target), status.message());
    } else {
      ReplyError(rid, header.msg_id, status);
    }
  };
  key_buffer_.assign(header.exchange);
  key_buffer_.push_back(' ');
  key_buffer_.append(header.target);
  auto it = consumers_.find(key_buffer_);
  if (it == consumers_.end()) return fail(NoConsumerError(header.target));
  std::shared_ptr<Consumer> consumer = it->second;
  absl::StatusOr<Message> message = DecodeMessage(body);
  if (!message.ok()) return fail(message.status());
  if (!message->unique_id.empty() && consumer->duplicates.Seen(message->unique_id)) {
    ZRPC_LOG(kWarning, "%s", DuplicateMessageError(message->unique_id).message());
    return;
  }
  if (message->ns && *message->ns == kReservedNamespace) {
    if (is_cast) return;
    absl::StatusOr<Value> answer = Introspect(*consumer, message->method);
    if (!answer.ok()) return fail(answer.status());
    return SendFinalReply(rid, header.msg_id, Reply{.result = *std::move(answer)});
  }
  if (consumer->connection->draining.load()) {
    return fail(absl::UnavailableError(absl::StrCat(
        "service ", options_.host, " is shutting down and takes no new requests; try another instance")));
  }
  absl::Time deadline = absl::InfiniteFuture();
  if (message->timeout_ms) {
    if (*message->timeout_ms == 0) {
      ZRPC_LOG(kDebug, "dropping %s to %s: its deadline has passed", message->method,
               ToAbsl(header.target));
      return;
    }
    deadline = absl::Now() + absl::Milliseconds(*message->timeout_ms);
  }
  Dispatcher::Target target{nullptr, nullptr};
  if (consumer->dispatcher != nullptr) {
    absl::StatusOr<Dispatcher::Target> resolved = consumer->dispatcher->Resolve(
        message->ns ? std::string_view(*message->ns) : std::string_view(), message->version,
        message->method);
    if (!resolved.ok()) return fail(resolved.status());
    target = *resolved;
  }
  const bool run_inline = target.endpoint != nullptr && target.endpoint->inline_handlers;
  if (!run_inline && !is_cast) {
    // Checked before `rid` moves into the job: the refusal must reach this client.
    auto running = peer_in_flight_.find(rid);
    if (running != peer_in_flight_.end() && running->second >= options_.max_in_flight_per_peer) {
      return fail(absl::ResourceExhaustedError(
          absl::StrCat("too many calls in flight from this client (at most ",
                       options_.max_in_flight_per_peer, "); retry later")));
    }
  }
  Job job{consumer, header.kind, std::move(rid), std::string(header.msg_id), *std::move(message),
          std::make_shared<CallContext>(Context(), deadline, consumer->registration.topic),
          target};
  if (run_inline) return Execute(job, /*on_loop=*/true);
  if (!is_cast) {
    ++peer_in_flight_[job.rid];
    in_flight_[job.msg_id] = InFlight{job.rid, job.ctx, consumer->connection->id};
    if (next_beats_ == absl::InfiniteFuture()) {
      next_beats_ = absl::Now() + options_.call_heartbeat_interval;
    }
  }
  consumer->connection->running.fetch_add(1);
  const std::string rid_copy = job.rid, msg_id = job.msg_id;
  if (!workers_.Submit([this, job = std::move(job)]() mutable {
        Execute(job, /*on_loop=*/false);
        job.consumer->connection->running.fetch_sub(1);
      })) {
    consumer->connection->running.fetch_sub(1);
    if (!is_cast) {
      if (--peer_in_flight_[rid_copy] <= 0) peer_in_flight_.erase(rid_copy);
      in_flight_.erase(msg_id);
      ReplyError(rid_copy, msg_id, TransportClosedError());
    }
  }
}

void IoLoop::Execute(Job& job, bool on_loop) {
  const bool is_cast = job.kind == FrameKind::kCast;
  const bool is_stream = job.kind == FrameKind::kMultiCall;
  auto send = [&](Reply reply, bool last) {
    reply.msg_id = job.msg_id;
    absl::StatusOr<std::string> body = EncodeReply(reply);
    if (body.ok() && body->size() > options_.max_message_size) {
      body = absl::ResourceExhaustedError(absl::StrCat("reply of ", body->size(),
                                                       " bytes exceeds the limit of ",
                                                       options_.max_message_size, " bytes"));
    }
    if (!body.ok()) {
      ZRPC_LOG(kWarning, "%s.%s: cannot send its result: %s", job.ctx->topic(),
               job.message.method, body.status().message());
      body = EncodeReply(Reply{.failure = SerializeRemoteException(body.status()),
                               .ending = reply.ending,
                               .msg_id = job.msg_id});
    }
    Outbound out{job.rid, ControlHeader(FrameKind::kReply, job.msg_id), *std::move(body),
                 job.msg_id, last, /*tracked=*/!on_loop};
    if (on_loop) {
      SendOutbound(out);
    } else {
      PostReply(std::move(out));
    }
  };

  absl::Status status;
  std::optional<Value> last;
  if (!on_loop && absl::Now() > job.ctx->deadline()) {
    // The caller's deadline passed while the request waited for a worker: not started.
    if (is_cast) {
      ZRPC_LOG(kWarning, "dropping cast %s.%s: its deadline passed while it was queued",
               job.ctx->topic(), job.message.method);
      return;
    }
    send(Reply{.failure = SerializeRemoteException(TimeoutError(
                   job.ctx->topic(), job.message.method,
                   "the deadline passed while the request waited for a worker")),
               .ending = true},
         true);
    return;
  }
  if (job.consumer->callback) {
    try {
      job.consumer->callback(job.message);
    } catch (const std::exception& e) {
      status = StatusFromException(e);
    }
  } else {
    status = job.consumer->dispatcher->Run(job.target, *job.ctx, job.message, [&](Value v) {
      if (is_cast) return true;
      if (is_stream) {
        send(Reply{.result = std::move(v)}, false);
        return !job.ctx->cancelled();
      }
      last = std::move(v);
      return true;
    });
  }
  if (!status.ok() && !IsExpected(status)) {
    if (IsRoutingError(status)) {
      ZRPC_LOG(kDebug, "%s.%s: %s", job.ctx->topic(), job.message.method, status.message());
    } else if (is_cast) {
      ZRPC_LOG(kWarning, "cast %s.%s failed: %s %s", job.ctx->topic(), job.message.method,
               absl::StatusCodeToString(status.code()), status.message());
    } else {
      ZRPC_LOG(kWarning, "Returning exception %s %s to caller (%s.%s)",
               absl::StatusCodeToString(status.code()), status.message(), job.ctx->topic(),
               job.message.method);
    }
  }
  if (is_cast) return;
  if (status.ok() && absl::Now() > job.ctx->deadline()) {
    // Cut by its deadline: a Timeout, never a clean end or a partial value as success.
    status = TimeoutError(job.ctx->topic(), job.message.method,
                          "the deadline passed while the handler ran");
  }
  Reply final{.ending = true};
  if (status.ok()) {
    if (!is_stream) final.result = last ? *std::move(last) : Value();
  } else {
    final.failure = SerializeRemoteException(status);
  }
  send(std::move(final), true);
}

void IoLoop::SendOutbound(const Outbound& out) {
  if (out.tracked) {
    auto it = in_flight_.find(out.msg_id);
    if (it == in_flight_.end() || it->second.rid != out.rid) {
      // Answered already (Close failed the call while its handler ran): one final reply only.
      ZRPC_LOG(kDebug, "dropping a reply to %s: the call was answered already", out.msg_id);
      return;
    }
    if (out.last) {
      if (--peer_in_flight_[out.rid] <= 0) peer_in_flight_.erase(out.rid);
      in_flight_.erase(it);
    }
  }
  if (!router_) return;
  try {
    if (router_->send(zmq::buffer(out.rid), zmq::send_flags::sndmore | zmq::send_flags::dontwait)) {
      router_->send(zmq::buffer(out.header), zmq::send_flags::sndmore);
      router_->send(zmq::buffer(out.body), zmq::send_flags::none);
    } else {
      ZRPC_LOG(kWarning, "dropping a reply: the client's queue is full");
    }
  } catch (const zmq::error_t& e) {
    // EHOSTUNREACH: the client went away (it has timed out or closed).
    if (e.num() == EHOSTUNREACH) {
      ZRPC_LOG(kDebug, "dropping a reply: the client is gone");
    } else {
      ZRPC_LOG(kWarning, "dropping a reply: %s", e.what());
    }
  }
}

void IoLoop::ReplyError(const std::string& rid, std::string_view msg_id,
                        const absl::Status& status) {
  SendFinalReply(rid, msg_id, Reply{.failure = SerializeRemoteException(status)});
}

void IoLoop::SendFinalReply(const std::string& rid, std::string_view msg_id, Reply reply) {
  reply.ending = true;
  reply.msg_id = std::string(msg_id);
  absl::StatusOr<std::string> body = EncodeReply(reply);
  if (!body.ok()) return;
  SendOutbound(Outbound{rid, ControlHeader(FrameKind::kReply, msg_id), *std::move(body)});
}

absl::StatusOr<Value> IoLoop::Introspect(const Consumer& consumer, const std::string& method) {
  if (method == "ping") {
    return Value(Object{{"pong", true}, {"host", options_.host}, {"pid", static_cast<int64_t>(getpid())}});
  }
  if (method == "health") {
    return Value(Object{{"status", consumer.connection->draining.load() ? "not_serving" : "serving"},
                        {"host", options_.host}});
  }
  if (method == "describe") {
    Array topics;
    for (const auto& [key, c] : consumers_) {
      const Registration& r = c->registration;
      Object t{{"exchange", r.exchange}, {"topic", r.topic}, {"fanout", r.fanout}};
      if (!r.pool.empty()) t.Set("pool", r.pool);
      topics.push_back(Value(std::move(t)));
    }
    Array endpoints;
    if (consumer.dispatcher != nullptr) {
      for (const auto& ep : consumer.dispatcher->endpoints()) {
        std::vector<std::string> names;
        for (const auto& [name, entry] : ep->methods) {
          names.push_back(entry.stream ? name + " (stream)" : name);
        }
        std::sort(names.begin(), names.end());
        Array methods(names.begin(), names.end());
        endpoints.push_back(Value(Object{{"namespace", ep->ns},
                                         {"version", ep->version},
                                         {"inline", ep->inline_handlers},
                                         {"methods", std::move(methods)}}));
      }
    }
    return Value(Object{{"host", options_.host},
                        {"endpoint", endpoint()},
                        {"topics", std::move(topics)},
                        {"endpoints", std::move(endpoints)}});
  }
  return NoSuchMethodError(method);
}

void IoLoop::Publish(const std::string& subscription, const std::string& body) {
  if (!pub_) return;
  try {
    if (!pub_->send(zmq::buffer(subscription), zmq::send_flags::sndmore | zmq::send_flags::dontwait)) {
      published_drops_.fetch_add(1);
      return;
    }
    pub_->send(zmq::buffer(body), zmq::send_flags::none);
  } catch (const zmq::error_t& e) {
    published_drops_.fetch_add(1);
    ZRPC_LOG(kWarning, "publishing %s failed: %s", subscription, e.what());
  }
}

void IoLoop::SendBeats() {
  // Each beat announces this service's interval: callers judge its silence by it.
  const int64_t interval_ms = absl::ToInt64Milliseconds(options_.call_heartbeat_interval);
  for (const auto& [msg_id, call] : in_flight_) {
    SendOutbound(Outbound{call.rid, BeatHeader(msg_id, interval_ms), ""});
  }
  next_beats_ = in_flight_.empty() ? absl::InfiniteFuture()
                                   : absl::Now() + options_.call_heartbeat_interval;
}

}  // namespace zrpc::internal
