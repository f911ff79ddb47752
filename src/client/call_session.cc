// SPDX-License-Identifier: Apache-2.0
#include "client/call_session.h"

#include <chrono>

#include "absl/strings/str_cat.h"
#include "codec/json_internal.h"
#include "base/log_internal.h"
#include "base/thread.h"
#include "zmq/socket_factory.h"
#include "zrpc/errors.h"
#include "zrpc/message.h"

namespace zrpc::internal {
namespace {

// While calls wait, the connections' monitors are read at least this often, so that a peer
// whose connection died is noticed at once rather than after three silent beats.
constexpr absl::Duration kConnectionCheck = absl::Milliseconds(50);
// Messages read from one socket per wake-up (the rest wait for the next round). With
// io_thread_batch, few: the owner sends more (a window refilled) and lets the I/O thread send
// them before it reads on.
constexpr int kMaxMessagesPerRead = 1024;

int64_t CeilMs(absl::Duration d) {
  return std::max<int64_t>(1, absl::ToInt64Milliseconds(absl::Ceil(d, absl::Milliseconds(1))));
}

// "ok", or the error's kind ("Timeout", "RemoteError", ...), for the per-request debug line.
std::string Outcome(const absl::Status& status) {
  if (status.ok()) return "ok";
  std::optional<ErrorKind> kind = GetErrorKind(status);
  return kind ? std::string(ErrorKindName(*kind)) : absl::StatusCodeToString(status.code());
}

bool DebugOn() { return GetLogLevel() <= LogLevel::kDebug; }

// Ends the attempt of `call` (if it is counted) as `outcome` at `now`.
void RecordAttempt(const CallMonitor::Call& call, AttemptOutcome outcome, absl::Time now) {
  if (call.stats != nullptr)
    call.stats->RecordAttempt(outcome, absl::ToDoubleSeconds(now - call.sent));
}

}  // namespace

AttemptOutcome AttemptOutcomeOf(const absl::Status& status) {
  if (status.ok()) return AttemptOutcome::kOk;
  if (std::optional<ErrorKind> kind = GetErrorKind(status)) {
    switch (*kind) {
      case ErrorKind::kTimeout:
        return AttemptOutcome::kTimeout;
      case ErrorKind::kTransportClosed:
        return AttemptOutcome::kCancelled;
      case ErrorKind::kPeerLost:
      case ErrorKind::kNoConsumer:
        return AttemptOutcome::kPeerLost;
      default:
        return AttemptOutcome::kSendFailed;
    }
  }
  switch (status.code()) {
    case absl::StatusCode::kCancelled:
      return AttemptOutcome::kCancelled;
    case absl::StatusCode::kDeadlineExceeded:
      return AttemptOutcome::kTimeout;
    case absl::StatusCode::kUnavailable:
      return AttemptOutcome::kPeerLost;
    default:
      return AttemptOutcome::kSendFailed;
  }
}

void CallSession::Unsent::End(AttemptOutcome outcome) {
  if (stats == nullptr) return;
  stats->RecordAttempt(outcome, seconds);
  stats = nullptr;
}

CallSession::~CallSession() {
  // Calls still open when their owner leaves (a stream destroyed early, a batch cut short):
  // tell their instances, so that handlers stop at their next yield.
  const absl::Time now = absl::Now();
  for (const CallMonitor::Ended& e : monitor_.Expire(absl::InfiniteFuture())) {
    RecordAttempt(e.call, AttemptOutcome::kCancelled, now);
    auto it = leases_.find(e.call.endpoint);
    if (it != leases_.end()) SendCancel(it->second, e.msg_id);
  }
  unsent_.End(AttemptOutcome::kCancelled);  // an owner that forgot EndUnsent
  for (auto& [endpoint, lease] : leases_) env_.sockets.Release(std::move(lease.socket));
}

absl::Status CallSession::Start(const Request& request, const std::vector<const Route*>& order,
                                LastUnsent last) {
  // An attempt still open here is this call's (kKeepOpen is followed by this call's retry or
  // its EndUnsent): Send makes it failed_over when it tries another instance.
  absl::Status s = Send(env_, request.ref(), order, this, unsent_);
  if (last == LastUnsent::kEnd) EndUnsent(s);
  return s;
}

void CallSession::EndUnsent(const absl::Status& status) {
  if (!status.ok()) unsent_.End(AttemptOutcomeOf(status));
}

absl::Status CallSession::SendOneWay(ClientEnv env, const RequestRef& request,
                                     const std::vector<const Route*>& order) {
  Unsent unsent;
  absl::Status s = Send(env, request, order, nullptr, unsent);
  if (!s.ok()) unsent.End(AttemptOutcomeOf(s));
  return s;
}

absl::StatusOr<CallSession::Lease*> CallSession::LeaseFor(const Route& route) {
  auto it = leases_.find(route.endpoint);
  if (it != leases_.end() &&
      (it->second.socket->broken || it->second.socket->server_key != env_.sockets.KeyFor(route.public_key)) &&
      !monitor_.HasCallsOn(route.endpoint)) {
    env_.sockets.Release(std::move(it->second.socket));
    leases_.erase(it);
    it = leases_.end();
  }
  if (it == leases_.end()) {
    absl::StatusOr<std::unique_ptr<PeerSocket>> s =
        env_.sockets.Acquire(route.endpoint, route.public_key);
    if (!s.ok()) return s.status();
    return &leases_.emplace(route.endpoint, Lease{*std::move(s), route}).first->second;
  }
  if (it->second.route.target != route.target) it->second.route = route;
  return &it->second;
}

void CallSession::Eject(ClientEnv env, PeerSocket& s, const Route& route, std::string_view topic,
                        const char* why) {
  s.broken = true;
  if (!env.health.IsEjected(route.endpoint)) {
    ZRPC_LOG(kWarning, "%s (%s) %s; out of rotation until it answers a probe", route.host,
             route.endpoint, why);
  }
  env.health.Eject(route.ToProbe(topic), absl::Now());
  env.sockets.DropIdle(route.endpoint);
}

absl::Status CallSession::Send(ClientEnv env, const RequestRef& request,
                               const std::vector<const Route*>& order, CallSession* session,
                               Unsent& unsent) {
  const bool is_call = request.kind != FrameKind::kCast;
  const Route* last_tried = nullptr;  // the error is built only when every candidate failed
  bool auth_failed = false;
  // The header is built in a buffer each thread keeps (a send allocates nothing for it).
  thread_local std::string header;
  for (const Route* route : order) {
    const absl::Time now = absl::Now();
    if (now >= request.deadline) {
      return TimeoutError(request.topic, request.method, "the deadline passed before the request could be sent");
    }
    // A session's socket for this endpoint, or one leased from the pool for this send alone.
    PeerSocket* s = nullptr;
    std::unique_ptr<PeerSocket> own;
    if (session != nullptr) {
      absl::StatusOr<Lease*> lease = session->LeaseFor(*route);
      if (!lease.ok()) return lease.status();
      s = (*lease)->socket.get();
    } else {
      absl::StatusOr<std::unique_ptr<PeerSocket>> leased =
          env.sockets.Acquire(route->endpoint, route->public_key);
      if (!leased.ok()) return leased.status();
      own = *std::move(leased);
      s = own.get();
    }
    struct GiveBack {
      SocketPool& pool;
      std::unique_ptr<PeerSocket>& socket;
      ~GiveBack() { pool.Release(std::move(socket)); }
    } give_back{env.sockets, own};
    AppendRequestHeader(request.kind, route->exchange, route->target, request.msg_id,
                        (header.clear(), &header));
    // The bare form only to an instance that lists it; the 2.0 envelope to any other.
    std::string_view body = request.body;
    thread_local std::string wrapped;
    if (request.bare && !route->accepts_bare) {
      wrapped.clear();
      AppendEnvelope(request.body, &wrapped);
      if (wrapped.size() + header.size() > env.options.max_message_size) {
        return absl::ResourceExhaustedError(absl::StrCat(
            "message of ", wrapped.size(), " bytes in its 2.0 envelope (what ", route->host,
            " takes) exceeds the limit of ", env.options.max_message_size,
            " bytes (max_message_size)"));
      }
      body = wrapped;
    }
    // This instance is tried: the one before it, found unreachable, was failed over.
    unsent.End(AttemptOutcome::kFailedOver);
    const SocketPool::SendResult sent = SocketPool::Send(
        *s, header, body, now + env.options.connect_timeout, request.deadline);
    // A thread does not keep a large message's envelope buffer for good.
    if (wrapped.capacity() > (1 << 20)) std::string().swap(wrapped);
    // The attempt's end, when it ends here (every outcome but a call sent and watched).
    const auto attempt_ends = [&](AttemptOutcome outcome) {
      if (request.stats != nullptr) {
        request.stats->RecordAttempt(outcome, absl::ToDoubleSeconds(absl::Now() - now));
      }
    };
    switch (sent) {
      case SocketPool::SendResult::kSent:
        if (!is_call) {
          ZRPC_LOG(kDebug, "cast topic=%s method=%s host=%s endpoint=%s outcome=sent",
                   request.topic, request.method, route->host, route->endpoint);
        }
        if (is_call && session != nullptr) {
          session->monitor_.Add(
              std::string(request.msg_id),
              CallMonitor::Call{request.token, route->endpoint, route->host,
                                std::string(request.topic), std::string(request.method),
                                request.deadline, route->beat, now, request.stats, now},
              absl::Now());
        } else {
          attempt_ends(AttemptOutcome::kOk);  // a cast: queued is all it gets
        }
        return absl::OkStatus();
      case SocketPool::SendResult::kClosed:
        attempt_ends(AttemptOutcome::kCancelled);
        return TransportClosedError();
      case SocketPool::SendResult::kQueueFull:
        attempt_ends(AttemptOutcome::kSendFailed);
        return absl::ResourceExhaustedError(absl::StrCat(
            "the send queue to ", route->host, " (", route->endpoint,
            ") stayed full until the deadline; the instance is alive but not reading"));
      case SocketPool::SendResult::kUnreachable:
        // Provably not delivered: nothing was queued. Take the instance out and try the next.
        if (s->auth_failed) {
          auth_failed = true;
          Eject(env, *s, *route, request.topic,
                "refused the CurveZMQ handshake (authentication failed: this process's key is "
                "not authorized there, or the instance lacks its registered key)");
        } else {
          Eject(env, *s, *route, request.topic, "cannot be reached");
        }
        if (env.routes != nullptr) env.routes->MarkStale(route->exchange, request.key);
        last_tried = route;
        // failed_over if another instance is tried next, else the call's error (see LastUnsent).
        if (request.stats != nullptr) {
          unsent = Unsent{request.stats, absl::ToDoubleSeconds(absl::Now() - now)};
        }
        break;
    }
  }
  return last_tried == nullptr
             ? NoConsumerError(request.topic)
             : PeerLostError(request.topic, last_tried->host,
                             auth_failed ? "CurveZMQ authentication failed: is this process's "
                                           "key in the service's authorized keys, and the "
                                           "service's in this process's?"
                                         : "");
}

void CallSession::AddEnded(std::vector<CallMonitor::Ended> ended, std::vector<Event>* events) {
  if (ended.empty()) return;
  const absl::Time now = absl::Now();
  for (CallMonitor::Ended& e : ended) {
    RecordAttempt(e.call, AttemptOutcomeOf(e.status), now);
    ZRPC_LOG(kDebug, "call msg_id=%s topic=%s method=%s host=%s endpoint=%s outcome=%s", e.msg_id,
             e.call.topic, e.call.method, e.call.host, e.call.endpoint, Outcome(e.status));
    events->push_back(Event{e.call.token, true, std::move(e.status)});
  }
}

void CallSession::Expire(absl::Time now, std::vector<Event>* events) {
  std::vector<CallMonitor::Ended> ended = monitor_.Expire(now);
  for (const CallMonitor::Ended& e : ended) {
    auto it = leases_.find(e.call.endpoint);
    if (it == leases_.end()) continue;
    if (IsErrorKind(e.status, ErrorKind::kPeerLost)) {
      // A silent instance is lost for every call this session sent it.
      Eject(it->second, e.call.topic, "went silent (no reply or beat for 3 heartbeat intervals)");
      AddEnded(monitor_.LoseEndpoint(e.call.endpoint), events);
    } else {
      SendCancel(it->second, e.msg_id);  // the deadline passed: the handler may stop now
    }
  }
  AddEnded(std::move(ended), events);
}

void CallSession::Pump(absl::Time until, std::vector<Event>* events, int wake_fd) {
  const size_t before = events->size();
  std::vector<zmq::pollitem_t> items;
  std::vector<Lease*> polled;
  while (true) {
    absl::Time now = absl::Now();
    Expire(now, events);
    if (events->size() > before || now >= until) return;
    if (monitor_.empty() && wake_fd < 0) return;  // nothing to wait for
    const absl::Time wake = std::min({until, monitor_.NextWake(), now + kConnectionCheck});
    bool got = false;
    try {
      if (wake_fd < 0 && leases_.size() == 1) {
        // One socket: a single blocking receive with a timeout (the fewest system calls).
        Lease& lease = leases_.begin()->second;
        if (lease.socket->broken) return;
        lease.socket->socket->set(zmq::sockopt::rcvtimeo, static_cast<int>(CeilMs(wake - now)));
        got = ReadFrom(lease, /*wait=*/true, events);
      } else {
        items.clear();
        polled.clear();
        for (auto& [endpoint, lease] : leases_) {
          if (lease.socket->broken) continue;
          items.push_back({lease.socket->socket->handle(), 0, ZMQ_POLLIN, 0});
          polled.push_back(&lease);
        }
        if (wake_fd >= 0) items.push_back({nullptr, wake_fd, ZMQ_POLLIN, 0});
        if (items.empty()) return;
        zmq::poll(items.data(), items.size(), std::chrono::milliseconds(CeilMs(wake - now)));
        for (size_t i = 0; i < polled.size(); ++i) {
          if (items[i].revents & ZMQ_POLLIN) got |= ReadFrom(*polled[i], false, events);
        }
        if (wake_fd >= 0 && (items.back().revents & ZMQ_POLLIN)) {
          if (!got) CheckConnections(events);
          return;
        }
      }
    } catch (const zmq::error_t& e) {
      if (e.num() == EINTR) continue;
      // The context is shutting down (ETERM) or a socket failed: every open call ends.
      const absl::Status status =
          e.num() == ETERM ? TransportClosedError() : absl::UnavailableError(e.what());
      const absl::Time ended_at = absl::Now();
      for (CallMonitor::Ended& ended : monitor_.Expire(absl::InfiniteFuture())) {
        RecordAttempt(ended.call, AttemptOutcomeOf(status), ended_at);
        events->push_back(Event{ended.call.token, true, status});
      }
      for (auto& [endpoint, lease] : leases_) lease.socket->broken = true;
      return;
    }
    if (!got) CheckConnections(events);
    if (events->size() > before) return;
  }
}

bool CallSession::ReadFrom(Lease& lease, bool wait, std::vector<Event>* events) {
  bool got = false;
  const int max_messages = env_.options.io_thread_batch ? kIoFlushEvery : kMaxMessagesPerRead;
  for (int i = 0; i < max_messages; ++i) {
    switch (RecvMessage(*lease.socket->socket, &frames_, wait && i == 0, 4)) {
      case RecvResult::kNone:
        return got;
      case RecvResult::kTruncated:
        ZRPC_LOG(kWarning, "truncated message from %s (%s): treating the connection as lost",
                 lease.route.host, lease.route.endpoint);
        LoseConnection(lease, events);
        return true;
      case RecvResult::kMessage:
        got = true;
        HandleMessage(lease, frames_, events);
        // Every call is answered: do not ask the socket again (a receive that finds nothing
        // costs libzmq two system calls). Anything later is read with the next call's replies.
        if (wait && monitor_.empty()) return got;
        break;
    }
  }
  return got;
}

std::optional<Header> ParseReplyFrames(std::span<const std::string_view> frames) {
  if (frames.size() != 2) return std::nullopt;  // not a zrpc reply or beat: dropped
  absl::StatusOr<Header> header = ParseHeader(frames[0]);
  if (!header.ok() || (header->kind != FrameKind::kReply && header->kind != FrameKind::kBeat)) {
    return std::nullopt;
  }
  return *header;
}

ReplyOutcome DecodeReplyBody(std::string_view body, std::string_view host) {
  absl::StatusOr<Reply> reply = DecodeReply(body);
  if (!reply.ok()) {
    return {true, RpcExceptionError(absl::StrCat("malformed reply from ", ToAbsl(host), ": ",
                                                 reply.status().message()))};
  }
  if (reply->failure) return {true, DeserializeRemoteException(*reply->failure)};
  return {reply->ending, std::move(reply->result)};
}

void CallSession::HandleMessage(Lease& lease, std::vector<zmq::message_t>& frames,
                                std::vector<Event>* events) {
  if (frames.size() != 2) return;  // not a zrpc reply or beat: dropped
  const std::string_view views[2] = {View(frames[0]), View(frames[1])};
  const std::optional<Header> header = ParseReplyFrames(views);
  if (!header) return;
  const absl::Time now = absl::Now();
  const CallMonitor::Call* call =
      monitor_.Heard(header->msg_id, lease.route.endpoint, now, header->beat_ms);
  if (call == nullptr) return;  // a late reply of a call that is over: dropped
  if (header->kind == FrameKind::kBeat) return;
  const uint64_t token = call->token;
  ReplyOutcome outcome = DecodeReplyBody(views[1], lease.route.host);
  if (outcome.final && DebugOn()) {
    ZRPC_LOG(kDebug, "call msg_id=%s topic=%s method=%s host=%s endpoint=%s outcome=%s",
             header->msg_id, call->topic, call->method, call->host, call->endpoint,
             Outcome(outcome.value.status()));
  }
  if (outcome.final) RecordAttempt(*call, AttemptOutcome::kOk, now);  // a reply, whatever its code
  events->push_back(Event{token, outcome.final, std::move(outcome.value)});
  if (outcome.final) monitor_.Remove(header->msg_id);
}

void CallSession::LoseConnection(Lease& lease, std::vector<Event>* events) {
  // The calls sent on it may have run: PeerLost, never re-sent.
  std::vector<CallMonitor::Ended> ended = monitor_.LoseEndpoint(lease.route.endpoint);
  // Counted under the topic of a call it took down (the route's target when it had none).
  Eject(lease, ended.empty() ? std::string_view(lease.route.target) : ended.front().call.topic,
        "lost its connection");
  AddEnded(std::move(ended), events);
}

void CallSession::CheckConnections(std::vector<Event>* events) {
  for (auto& [endpoint, lease] : leases_) {
    if (lease.socket->broken || !monitor_.HasCallsOn(endpoint)) continue;
    if (lease.socket->TakeLost() || lease.socket->broken) LoseConnection(lease, events);
  }
}

void CallSession::SendCancel(Lease& lease, std::string_view msg_id) {
  if (lease.socket->broken) return;
  const std::string header = ControlHeader(FrameKind::kCancel, msg_id);
  try {
    if (lease.socket->socket->send(zmq::buffer(header),
                                   zmq::send_flags::sndmore | zmq::send_flags::dontwait)) {
      lease.socket->socket->send(zmq::str_buffer(""), zmq::send_flags::none);
    }
  } catch (const zmq::error_t&) {
    lease.socket->broken = true;
  }
}

void CallSession::ReleaseIdle() {
  for (auto it = leases_.begin(); it != leases_.end();) {
    if (monitor_.HasCallsOn(it->first)) {
      ++it;
      continue;
    }
    env_.sockets.Release(std::move(it->second.socket));
    leases_.erase(it++);
  }
}

void CallSession::Cancel(std::string_view msg_id) {
  const CallMonitor::Call* call = monitor_.Find(msg_id);
  if (call == nullptr) return;
  RecordAttempt(*call, AttemptOutcome::kCancelled, absl::Now());
  auto it = leases_.find(call->endpoint);
  if (it != leases_.end()) SendCancel(it->second, msg_id);
  monitor_.Remove(msg_id);
}

}  // namespace zrpc::internal
