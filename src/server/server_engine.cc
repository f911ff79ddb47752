// SPDX-License-Identifier: Apache-2.0
#include "server/server_engine.h"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <span>

#include "absl/strings/str_cat.h"
#include "codec/json_internal.h"
#include "base/log_internal.h"
#include "server/inbound.h"
#include "server/introspection.h"
#include "zmq/socket_factory.h"
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

struct ServerEngine::Job {
  std::shared_ptr<Consumer> consumer;
  FrameKind kind;
  std::string rid;
  std::string msg_id;
  Message message;
  std::shared_ptr<CallContext> ctx;
  Dispatcher::Target target;  // resolved on the reactor thread (dispatching consumers)
  size_t bytes = 0;           // the request's size (admission counts it while queued or running)
};

void ServerEngine::PostReply(Outbound out) {
  {
    absl::MutexLock lock(&mu_);
    outbound_.push_back(std::move(out));
  }
  reactor_.Notify();
}

void ServerEngine::OnWake() {
  std::deque<Outbound> outbound;
  {
    absl::MutexLock lock(&mu_);
    outbound.swap(outbound_);
  }
  for (const Outbound& out : outbound) SendOutbound(out);
}

void ServerEngine::OnExit() {
  OnWake();
  router_.reset();
  pub_.reset();
}

std::string ServerEngine::endpoint() const {
  absl::MutexLock lock(&mu_);
  return endpoint_;
}

std::string ServerEngine::pub_endpoint() const {
  absl::MutexLock lock(&mu_);
  return pub_endpoint_;
}

absl::Status ServerEngine::EnsureBound() {
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
  reactor_.Watch(pub_.get(), [this] { return DrainSubscriptions(); });
  reactor_.Watch(router_.get(), [this] { return HandleRouter(); });
  absl::MutexLock lock(&mu_);
  endpoint_ = router_ep;
  pub_endpoint_ = pub_ep;
  ZRPC_LOG(kInfo, "service %s listening on %s (notifications on %s)", options_.host, router_ep,
           pub_ep);
  return absl::OkStatus();
}

void ServerEngine::AddConsumer(std::shared_ptr<Consumer> consumer) {
  consumers_[consumer->key] = std::move(consumer);
}

void ServerEngine::RemoveConsumers(uint64_t connection_id) {
  absl::erase_if(consumers_, [&](const auto& entry) {
    return entry.second->connection->id == connection_id;
  });
}

void ServerEngine::AbandonCalls(uint64_t connection_id) {
  std::vector<std::string> ids;
  for (const auto& [msg_id, call] : in_flight_) {
    if (call.connection_id == connection_id) ids.push_back(msg_id);
  }
  for (const std::string& msg_id : ids) {
    InFlight& call = in_flight_[msg_id];
    call.ctx->Cancel();
    ReplyError(call.rid, msg_id, TransportClosedError());
    Release(call.rid, call.bytes);
    in_flight_.erase(msg_id);
  }
}

bool ServerEngine::DrainSubscriptions() {
  // Subscription messages of the XPUB: libzmq keeps the filters itself; just drain them.
  zmq::message_t sub;
  bool got = false;
  while (pub_->recv(sub, zmq::recv_flags::dontwait)) got = true;
  return got;
}

bool ServerEngine::HandleRouter() {
  std::vector<zmq::message_t>& frames = frames_;
  // Bounded so that replies and timers are not starved by a flood.
  for (int i = 0; i < 1000; ++i) {
    try {
      const RecvResult got = RecvMessage(*router_, &frames, /*wait=*/false, /*max_frames=*/4);
      if (got == RecvResult::kNone) return i > 0;
      if (got == RecvResult::kTruncated) {
        ZRPC_LOG(kError, "a truncated message arrived on the service socket; dropped");
        return true;
      }
    } catch (const zmq::error_t& e) {
      if (e.num() != EAGAIN) ZRPC_LOG(kError, "receive failed: %s", e.what());
      return i > 0;
    }
    std::string_view views[4];
    const size_t count = std::min<size_t>(frames.size(), 4);
    for (size_t f = 0; f < count; ++f) views[f] = View(frames[f]);
    const Inbound in = ClassifyInbound(std::span(views, count), options_.max_message_size);
    switch (in.action) {
      case Inbound::Action::kDrop:
        ZRPC_LOG(kWarning, "dropping %s", in.reason.message());
        continue;
      case Inbound::Action::kCancel: {
        auto it = in_flight_.find(ToAbsl(in.header.msg_id));
        if (it != in_flight_.end() && it->second.rid == views[0]) it->second.ctx->Cancel();
        continue;
      }
      case Inbound::Action::kRefuse:
        if (in.header.kind == FrameKind::kCast) {
          ZRPC_LOG(kWarning, "dropping cast to %s: %s", ToAbsl(in.header.target),
                   in.reason.message());
        } else {
          ReplyError(std::string(views[0]), in.header.msg_id, in.reason);
        }
        continue;
      case Inbound::Action::kRequest:
        HandleRequest(std::string(views[0]), in.header, in.body);
        break;
    }
  }
  return true;  // bounded: there may be more
}

void ServerEngine::HandleRequest(std::string rid, const Header& header, std::string_view body) {
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
    const std::string endpoint = this->endpoint();
    absl::StatusOr<Value> answer =
        Introspect(*consumer, message->method, ServiceView{options_.host, endpoint, consumers_});
    if (!answer.ok()) return fail(answer.status());
    return SendFinalReply(rid, header.msg_id, Reply{.result = *std::move(answer)});
  }
  if (message->timeout_ms && *message->timeout_ms == 0) {
    ZRPC_LOG(kDebug, "dropping %s to %s: its deadline has passed", message->method,
             ToAbsl(header.target));
    return;
  }
  absl::StatusOr<Dispatcher::Target> target = Admit(*consumer, header, *message, rid, body.size());
  if (!target.ok()) {
    if (is_cast && target.status().code() == absl::StatusCode::kResourceExhausted) {
      dropped_casts_.fetch_add(1);
    }
    return fail(target.status());
  }
  const absl::Time deadline =
      message->timeout_ms ? absl::Now() + absl::Milliseconds(*message->timeout_ms)
      : is_cast           ? absl::Now() + options_.cast_deadline
                          : absl::InfiniteFuture();
  Job job{consumer, header.kind, std::move(rid), std::string(header.msg_id), *std::move(message),
          std::make_shared<CallContext>(Context(), deadline, consumer->registration.topic),
          *target, body.size()};
  if (target->endpoint != nullptr && target->endpoint->inline_handlers) {
    return Execute(job, /*on_loop=*/true);
  }
  Submit(std::move(job));
}

absl::StatusOr<Dispatcher::Target> ServerEngine::Admit(const Consumer& consumer,
                                                       const Header& header,
                                                       const Message& message,
                                                       const std::string& rid, size_t bytes) {
  if (consumer.connection->draining.load()) {
    return absl::UnavailableError(absl::StrCat("service ", options_.host,
                                               " is shutting down and takes no new requests; "
                                               "try another instance"));
  }
  Dispatcher::Target target{nullptr, nullptr};
  if (consumer.dispatcher != nullptr) {
    absl::StatusOr<Dispatcher::Target> resolved = consumer.dispatcher->Resolve(
        message.ns ? std::string_view(*message.ns) : std::string_view(), message.version,
        message.method);
    if (!resolved.ok()) return resolved.status();
    target = *resolved;
  }
  if (target.endpoint != nullptr && target.endpoint->inline_handlers) return target;
  // Bounded admission: this client's work, everyone's queue, and the bytes they hold.
  auto mine = peer_work_.find(rid);
  if (mine != peer_work_.end() && mine->second >= options_.max_in_flight_per_peer) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "too many requests queued or running from this client (at most ",
        options_.max_in_flight_per_peer, "); retry later"));
  }
  if (queued_requests_ >= static_cast<size_t>(options_.max_queued_requests) ||
      queued_bytes_ + bytes > options_.max_queued_bytes) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "service ", options_.host, " is overloaded (", queued_requests_, " requests, ",
        queued_bytes_, " bytes queued or running; limits ", options_.max_queued_requests, " and ",
        options_.max_queued_bytes, "); retry later or elsewhere"));
  }
  return target;
}

void ServerEngine::Submit(Job job) {
  const bool is_cast = job.kind == FrameKind::kCast;
  ++peer_work_[job.rid];
  ++queued_requests_;
  queued_bytes_ += job.bytes;
  if (!is_cast) {
    in_flight_[job.msg_id] = InFlight{job.rid, job.ctx, job.consumer->connection->id, job.bytes};
    ArmBeats();
  }
  std::shared_ptr<Consumer> consumer = job.consumer;
  consumer->connection->running.fetch_add(1);
  const std::string rid = job.rid, msg_id = job.msg_id;
  const size_t bytes = job.bytes;
  // One lane per client: the pool serves clients in turn.
  if (!workers_.Submit(rid, [this, job = std::move(job)]() mutable {
        Execute(job, /*on_loop=*/false);
        if (job.kind == FrameKind::kCast) {
          PostReply(Outbound{.rid = job.rid, .cast_done = true, .bytes = job.bytes});
        }
        job.consumer->connection->running.fetch_sub(1);
      })) {
    consumer->connection->running.fetch_sub(1);
    Release(rid, bytes);
    if (!is_cast) {
      in_flight_.erase(msg_id);
      ReplyError(rid, msg_id, TransportClosedError());
    }
  }
}

void ServerEngine::Release(const std::string& rid, size_t bytes) {
  auto it = peer_work_.find(rid);
  if (it != peer_work_.end() && --it->second <= 0) peer_work_.erase(it);
  if (queued_requests_ > 0) --queued_requests_;
  queued_bytes_ = queued_bytes_ >= bytes ? queued_bytes_ - bytes : 0;
}

void ServerEngine::ClientGone(const std::string& rid) {
  for (auto& [msg_id, call] : in_flight_) {
    if (call.rid == rid) call.ctx->Cancel();
  }
}

void ServerEngine::Execute(Job& job, bool on_loop) {
  const bool is_cast = job.kind == FrameKind::kCast;
  const bool is_stream = job.kind == FrameKind::kMultiCall;
  std::function<void(Reply, bool)> send = [&](Reply reply, bool last) {
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
  if (!on_loop && job.ctx->cancelled()) {
    // Its client cancelled it or left while it was queued: not started.
    if (!is_cast) {
      send(Reply{.failure = SerializeRemoteException(
                     absl::CancelledError("cancelled by the caller before it started")),
                 .ending = true},
           true);
    }
    return;
  }
  status = RunHandler(job, send, &last);
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

absl::Status ServerEngine::RunHandler(Job& job, const std::function<void(Reply, bool)>& send,
                                      std::optional<Value>* last) {
  const bool is_cast = job.kind == FrameKind::kCast;
  const bool is_stream = job.kind == FrameKind::kMultiCall;
  absl::Status status;
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
      *last = std::move(v);
      return true;
    });
  }
  return status;
}

void ServerEngine::SendOutbound(const Outbound& out) {
  if (out.cast_done) return Release(out.rid, out.bytes);
  if (out.tracked) {
    auto it = in_flight_.find(out.msg_id);
    if (it == in_flight_.end() || it->second.rid != out.rid) {
      // Answered already (Close failed the call while its handler ran): one final reply only.
      ZRPC_LOG(kDebug, "dropping a reply to %s: the call was answered already", out.msg_id);
      return;
    }
    if (out.last) {
      Release(out.rid, it->second.bytes);
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
      // ROUTER_MANDATORY tells us the client left: stop what it still has running.
      ZRPC_LOG(kDebug, "dropping a reply: the client is gone");
      ClientGone(out.rid);
    } else {
      ZRPC_LOG(kWarning, "dropping a reply: %s", e.what());
    }
  }
}

void ServerEngine::ReplyError(const std::string& rid, std::string_view msg_id,
                        const absl::Status& status) {
  SendFinalReply(rid, msg_id, Reply{.failure = SerializeRemoteException(status)});
}

void ServerEngine::SendFinalReply(const std::string& rid, std::string_view msg_id, Reply reply) {
  reply.ending = true;
  reply.msg_id = std::string(msg_id);
  absl::StatusOr<std::string> body = EncodeReply(reply);
  if (!body.ok()) return;
  SendOutbound(Outbound{rid, ControlHeader(FrameKind::kReply, msg_id), *std::move(body)});
}

void ServerEngine::Publish(const std::string& subscription, const std::string& body) {
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

void ServerEngine::ArmBeats() {
  if (reactor_.timer() == absl::InfiniteFuture()) {
    reactor_.SetTimer(absl::Now() + options_.call_heartbeat_interval, [this] { SendBeats(); });
  }
}

void ServerEngine::SendBeats() {
  // Each beat announces this service's interval: callers judge its silence by it.
  const int64_t interval_ms = absl::ToInt64Milliseconds(options_.call_heartbeat_interval);
  for (const auto& [msg_id, call] : in_flight_) {
    SendOutbound(Outbound{call.rid, BeatHeader(msg_id, interval_ms), ""});
  }
  reactor_.SetTimer(in_flight_.empty() ? absl::InfiniteFuture()
                                       : absl::Now() + options_.call_heartbeat_interval,
                    [this] { SendBeats(); });
}

}  // namespace zrpc::internal
