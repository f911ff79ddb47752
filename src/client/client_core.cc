// SPDX-License-Identifier: Apache-2.0
#include "client/client_core.h"

#include <sys/eventfd.h>
#include <unistd.h>

#include <mutex>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "base/keys.h"
#include "codec/json_internal.h"
#include "base/log_internal.h"
#include "zrpc/dispatcher.h"
#include "zrpc/errors.h"
#include "base/thread.h"

namespace zrpc::internal {
namespace {

// How often the maintenance thread looks for due probes and unused state.
constexpr absl::Duration kMaintenanceTick = absl::Milliseconds(50);
constexpr absl::Duration kCollectEvery = absl::Seconds(1);
// Route-cache entries not resolved for this long are dropped (with their sockets and health).
constexpr absl::Duration kRouteIdle = absl::Seconds(30);
// A probe waits at most this long for its pong (less for instances with a shorter beat).
constexpr absl::Duration kProbeTimeout = absl::Seconds(1);

}  // namespace

struct ClientCore::Prepared {
  std::string exchange;
  std::string msg_id;
  std::string body;
  absl::Time deadline = absl::InfiniteFuture();
  std::string method;
  bool bare = false;  // `body` is the bare message (CallSession::RequestRef::bare)
};

struct ClientCore::Outgoing {
  std::string exchange;
  CallSession::Request request;
  std::shared_ptr<const Candidates> candidates;  // keeps the routes of `order` alive
  std::vector<const Route*> order;               // where to try it, in turn
};

struct ClientCore::AsyncRequest {
  Outgoing out;
  std::function<void(absl::StatusOr<Value>)> done;
};

absl::StatusOr<ClientCore::Outgoing> ClientCore::PrepareCall(
    const Context& context, std::string_view topic, Message& message, std::string_view exchange,
    absl::Duration timeout, FrameKind kind, uint64_t token, ClientMethodStats* stats) {
  absl::StatusOr<Prepared> p = Prepare(context, topic, message, exchange, true, timeout);
  if (!p.ok()) return p.status();
  absl::StatusOr<std::shared_ptr<const Candidates>> c = routes_->Resolve(p->exchange, topic);
  if (!c.ok()) return c.status();
  Outgoing out{
      p->exchange,
      CallSession::Request{token, kind, std::string(topic), std::string(topic), p->method,
                           std::move(p->msg_id), std::move(p->body), p->deadline, p->bare, stats},
      *std::move(c),
      {}};
  out.candidates->ForCalls().Order(health_, &out.order);
  return out;
}

absl::Status ClientCore::Start(CallSession& session, Outgoing& out) {
  // The last unreachable instance's attempt stays open until we know whether the call goes on.
  absl::Status s = session.Start(out.request, out.order, CallSession::LastUnsent::kKeepOpen);
  if (IsErrorKind(s, ErrorKind::kPeerLost)) {
    // Every known instance proved unreachable, and nothing was sent: the routes may be stale
    // (the cache answers at once and refreshes in the background). Ask the matchmaker now;
    // nobody left is NoConsumer, new instances get the request within the same deadline.
    absl::StatusOr<std::shared_ptr<const Candidates>> fresh =
        routes_->ResolveNow(out.exchange, out.request.key);
    if (!fresh.ok()) {
      if (IsErrorKind(fresh.status(), ErrorKind::kNoConsumer)) s = fresh.status();
    } else if (*fresh != out.candidates) {
      out.candidates = *std::move(fresh);
      out.candidates->ForCalls().Order(health_, &out.order);
      s = session.Start(out.request, out.order, CallSession::LastUnsent::kKeepOpen);
    }
  }
  session.EndUnsent(s);
  return s;
}

namespace {
std::atomic<uint64_t> next_metrics_id{1};
}  // namespace

ClientCore::ClientCore(zmq::context_t& ctx, const TransportOptions& options, WorkerPool& workers,
                       Metrics& metrics, std::shared_ptr<Keyring> keyring)
    : options_(options),
      workers_(workers),
      metrics_(metrics),
      metrics_id_(next_metrics_id.fetch_add(1)),
      keyring_(std::move(keyring)),
      sockets_(ctx, options, keyring_),
      health_(InstanceHealth::Options{}, &metrics) {}

ClientMethodStats* ClientCore::StatsFor(std::string_view topic, std::string_view method,
                                        RequestKind kind) {
  // Keyed by this core's id (never reused), so an entry of a core that is gone is never hit.
  thread_local absl::flat_hash_map<std::string, ClientMethodStats*> cache;
  thread_local std::string key;
  key.assign(reinterpret_cast<const char*>(&metrics_id_), sizeof(metrics_id_));
  key.push_back(static_cast<char>('0' + static_cast<int>(kind)));
  key.append(topic);
  key.push_back('\0');
  key.append(method);
  auto it = cache.find(key);
  if (it != cache.end()) return it->second;
  if (cache.size() >= 4096) cache.clear();
  ClientMethodStats* stats = metrics_.ClientMethod(topic, method, kind);
  cache.emplace(key, stats);
  return stats;
}

ClientCore::~ClientCore() {
  Stop();
  if (async_wake_fd_ >= 0) close(async_wake_fd_);
}

void ClientCore::Start(Matchmaker& matchmaker) {
  routes_ = std::make_unique<RouteTable>(matchmaker, options_.call_heartbeat_interval, keyring_,
                                         &metrics_);
  routes_->SetRefresher([this] {
    absl::MutexLock lock(&mu_);
    refresh_wanted_ = true;
  });
  async_wake_fd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  maintenance_ = StartThread([this] { MaintenanceLoop(); });
}

void ClientCore::Stop() {
  if (stopped_.exchange(true)) return;
  {
    absl::MutexLock lock(&mu_);
    stop_ = true;
  }
  {
    absl::MutexLock lock(&async_mu_);
    async_stop_ = true;
  }
  if (async_wake_fd_ >= 0) {
    uint64_t one = 1;
    (void)!write(async_wake_fd_, &one, sizeof(one));
  }
  if (maintenance_.joinable()) maintenance_.join();
  if (async_thread_.joinable()) async_thread_.join();
  // Requests queued after the async thread left.
  std::deque<std::unique_ptr<AsyncRequest>> left;
  {
    absl::MutexLock lock(&async_mu_);
    left.swap(async_queue_);
  }
  for (auto& r : left) Complete(std::move(r->done), TransportClosedError());
}

void ClientCore::Complete(std::function<void(absl::StatusOr<Value>)> done,
                          absl::StatusOr<Value> result) {
  if (!done) return;
  auto task = [done = std::move(done), result = std::move(result)]() mutable {
    done(std::move(result));
  };
  std::function<void()> fn = std::move(task);
  if (!workers_.Submit(fn)) fn();  // only while the whole transport is going away
}

absl::StatusOr<ClientCore::Prepared> ClientCore::Prepare(const Context& context,
                                                         std::string_view topic,
                                                         Message& message,
                                                         std::string_view exchange, bool is_call,
                                                         absl::Duration timeout) {
  if (stopped_.load()) return TransportClosedError();
  if (absl::Status s = ValidateName("topic", topic); !s.ok()) return s;
  Prepared p;
  p.exchange = exchange.empty() ? options_.exchange : std::string(exchange);
  if (absl::Status s = ValidateName("exchange", p.exchange); !s.ok()) return s;
  if (message.method.empty()) return absl::InvalidArgumentError("message has no method");
  p.method = message.method;
  message.context = context;
  message.unique_id = NewUniqueId();
  message.msg_id.clear();
  message.timeout_ms.reset();
  if (is_call) {
    if (timeout <= absl::ZeroDuration()) {
      timeout = options_.response_timeout;
      // A nested call inherits what is left of its caller's time.
      if (const CallContext* current = CallContext::Current();
          current != nullptr && current->deadline() != absl::InfiniteFuture()) {
        timeout = std::min(timeout, std::max(absl::ZeroDuration(), current->remaining()));
      }
    }
    p.deadline = absl::Now() + timeout;
    message.msg_id = NewUniqueId();
    message.timeout_ms = std::max<int64_t>(1, absl::ToInt64Milliseconds(timeout));
  } else {
    p.deadline = absl::Now() + options_.cast_timeout;
  }
  // Bare when allowed: CallSession wraps it for instances that take only the envelope.
  p.bare = options_.send_bare_messages;
  // Calls ask for bare replies too (DecodeReply takes either form); casts have none to ask for.
  message.bare_reply = p.bare && is_call;
  absl::StatusOr<std::string> body = p.bare ? EncodeBareMessage(message) : EncodeMessage(message);
  if (!body.ok()) return body.status();
  p.msg_id = std::move(message.msg_id);  // written: the message needs it no more
  if (body->size() + 512 > options_.max_message_size) {
    return absl::ResourceExhaustedError(
        absl::StrCat("message of ", body->size(), " bytes exceeds the limit of ",
                     options_.max_message_size, " bytes (max_message_size)"));
  }
  p.body = *std::move(body);
  return p;
}

absl::StatusOr<Value> ClientCore::Call(const Context& context, std::string_view topic,
                                       Message message, const CallOptions& options) {
  const absl::Time start = absl::Now();
  ClientMethodStats* stats = StatsFor(topic, message.method, RequestKind::kCall);
  absl::StatusOr<Value> result = [&]() -> absl::StatusOr<Value> {
    absl::StatusOr<Outgoing> out = PrepareCall(context, topic, message, options.exchange,
                                               options.timeout, FrameKind::kCall, 0, stats);
    if (!out.ok()) return out.status();
    CallSession session(env());
    if (absl::Status s = Start(session, *out); !s.ok()) return s;
    std::vector<CallSession::Event> events;
    while (session.in_flight() > 0) {
      session.Pump(absl::InfiniteFuture(), &events);
      for (CallSession::Event& e : events) {
        if (e.final) return std::move(e.value);
      }
      events.clear();
    }
    return RpcExceptionError("the call ended without an outcome");  // not reached
  }();
  stats->RecordCall(MetricCode::Of(result.status()), absl::ToDoubleSeconds(absl::Now() - start));
  return result;
}

namespace {

// The replies of one multicall, read on the calling thread. Keeps the transport's core alive (its
// session leases the core's sockets): after Transport::Close it fails with TransportClosed.
class ReplyStreamImpl : public ReplyStream {
 public:
  ReplyStreamImpl(ClientEnv env, std::string msg_id, std::shared_ptr<void> keep_alive,
                  ClientMethodStats* stats)
      : keep_alive_(std::move(keep_alive)),
        session_(std::make_unique<CallSession>(env)),
        msg_id_(std::move(msg_id)),
        stats_(stats) {}

  ~ReplyStreamImpl() override {
    // Dropped before its end: counted as cancelled (its session cancels it at the service).
    if (!done_) {
      stats_->RecordCall(MetricCode::Of(absl::CancelledError("dropped")),
                         absl::ToDoubleSeconds(absl::Now() - start_));
    }
  }

  CallSession& session() { return *session_; }
  // It could not start: counted with the error its caller gets, not as a dropped stream.
  void FailedToStart(absl::Status status) { Finish(std::move(status)); }

  absl::StatusOr<std::optional<Value>> Next() override {
    while (!done_) {
      if (pending_.empty()) {
        if (session_->in_flight() == 0) {
          Finish(RpcExceptionError("the stream ended without an outcome"));
          break;
        }
        session_->Pump(absl::InfiniteFuture(), &pending_);
        continue;
      }
      CallSession::Event e = std::move(pending_.front());
      pending_.erase(pending_.begin());
      if (!e.final) return std::optional<Value>(*std::move(e.value));
      Finish(e.value.ok() ? absl::OkStatus() : e.value.status());
    }
    if (!final_.ok()) return final_;
    return std::optional<Value>();
  }

  void Cancel() override {
    if (done_) return;
    session_->Cancel(msg_id_);
    Finish(absl::CancelledError("multicall cancelled by the caller"));
  }

 private:
  void Finish(absl::Status status) {
    done_ = true;
    stats_->RecordCall(MetricCode::Of(status), absl::ToDoubleSeconds(absl::Now() - start_));
    final_ = std::move(status);
    session_.reset();  // returns the socket now
  }

  std::shared_ptr<void> keep_alive_;  // destroyed last
  std::unique_ptr<CallSession> session_;
  std::string msg_id_;
  std::vector<CallSession::Event> pending_;
  ClientMethodStats* const stats_;  // the stream is counted once, when it ends
  const absl::Time start_ = absl::Now();
  bool done_ = false;
  absl::Status final_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<ReplyStream>> ClientCore::MultiCall(const Context& context,
                                                                   std::string_view topic,
                                                                   Message message,
                                                                   const CallOptions& options,
                                                                   std::shared_ptr<void> keep_alive) {
  ClientMethodStats* stats = StatsFor(topic, message.method, RequestKind::kMulticall);
  absl::StatusOr<Outgoing> out = PrepareCall(context, topic, message, options.exchange,
                                             options.timeout, FrameKind::kMultiCall, 0, stats);
  if (!out.ok()) return out.status();
  auto stream =
      std::make_unique<ReplyStreamImpl>(env(), out->request.msg_id, std::move(keep_alive), stats);
  if (absl::Status s = Start(stream->session(), *out); !s.ok()) {
    stream->FailedToStart(s);
    return s;
  }
  return std::unique_ptr<ReplyStream>(std::move(stream));
}

std::vector<absl::StatusOr<Value>> ClientCore::CallMany(const Context& context,
                                                        std::string_view topic,
                                                        std::vector<Message> messages,
                                                        const CallManyOptions& options) {
  const size_t n = messages.size();
  std::vector<absl::StatusOr<Value>> results(n, absl::UnknownError("not sent"));
  const absl::Duration timeout =
      options.timeout > absl::ZeroDuration() ? options.timeout : options_.response_timeout;
  const size_t window = static_cast<size_t>(std::max(1, options.window));
  const absl::Time start = absl::Now();
  CallSession session(env());
  std::vector<CallSession::Event> events;
  std::vector<ClientMethodStats*> stats(n);  // each call's handle, looked up once
  size_t next = 0;
  while (next < n || session.in_flight() > 0) {
    const size_t sent_before = next;
    while (next < n && session.in_flight() < window) {
      const size_t index = next++;
      stats[index] = StatsFor(topic, messages[index].method, RequestKind::kCall);
      absl::StatusOr<Outgoing> out = PrepareCall(context, topic, messages[index], options.exchange,
                                                 timeout, FrameKind::kCall, index, stats[index]);
      if (!out.ok()) {
        results[index] = out.status();
        continue;
      }
      if (absl::Status s = Start(session, *out); !s.ok()) results[index] = s;
    }
    if (session.in_flight() == 0) continue;
    // What was just queued goes out while the replies that are here are read.
    if (next > sent_before && options_.io_thread_batch) LetIoThreadRun();
    events.clear();
    session.Pump(absl::InfiniteFuture(), &events);
    for (CallSession::Event& e : events) {
      if (e.final) results[e.token] = std::move(e.value);
    }
  }
  // Counted as the application sees them: each call, over the batch's time.
  const double seconds = absl::ToDoubleSeconds(absl::Now() - start);
  for (size_t i = 0; i < n; ++i) {
    stats[i]->RecordCall(MetricCode::Of(results[i].status()), seconds);
  }
  return results;
}

void ClientCore::CallAsync(const Context& context, std::string_view topic, Message message,
                           std::function<void(absl::StatusOr<Value>)> done,
                           const CallOptions& options) {
  ClientMethodStats* stats = StatsFor(topic, message.method, RequestKind::kCall);
  // Counted when its callback runs (its outcome as the application sees it).
  done = [stats, start = absl::Now(), done = std::move(done)](absl::StatusOr<Value> result) {
    stats->RecordCall(MetricCode::Of(result.status()), absl::ToDoubleSeconds(absl::Now() - start));
    if (done) done(std::move(result));
  };
  absl::StatusOr<Outgoing> out = PrepareCall(context, topic, message, options.exchange,
                                             options.timeout, FrameKind::kCall, 0, stats);
  if (!out.ok()) return Complete(std::move(done), out.status());
  auto r = std::make_unique<AsyncRequest>(AsyncRequest{*std::move(out), std::move(done)});
  std::call_once(async_started_, [this] { async_thread_ = StartThread([this] { AsyncLoop(); }); });
  {
    absl::MutexLock lock(&async_mu_);
    if (!async_stop_) {
      // One wake-up per batch: a queue that was not empty has one pending already.
      const bool was_empty = async_queue_.empty();
      async_queue_.push_back(std::move(r));
      if (was_empty) {
        uint64_t one = 1;
        (void)!write(async_wake_fd_, &one, sizeof(one));
      }
      return;
    }
  }
  Complete(std::move(r->done), TransportClosedError());
}

void ClientCore::AsyncLoop() {
  CallSession session(env());
  absl::flat_hash_map<uint64_t, std::function<void(absl::StatusOr<Value>)>> waiting;
  uint64_t next_token = 1;
  std::vector<CallSession::Event> events;
  while (true) {
    // Clear the wake-up before taking the queue: a request queued after the swap then finds the
    // queue empty and writes the eventfd again, which the Pump below sees. (Clearing after the
    // swap could swallow that wake-up and leave the request waiting a whole Pump.)
    uint64_t count;
    (void)!read(async_wake_fd_, &count, sizeof(count));
    std::deque<std::unique_ptr<AsyncRequest>> queued;
    {
      absl::MutexLock lock(&async_mu_);
      if (async_stop_) break;
      queued.swap(async_queue_);
    }
    for (auto& r : queued) {
      r->out.request.token = next_token++;
      if (absl::Status s = Start(session, r->out); !s.ok()) {
        Complete(std::move(r->done), s);
      } else {
        waiting.emplace(r->out.request.token, std::move(r->done));
      }
    }
    // What was just queued goes out while the replies that are here are read.
    if (!queued.empty() && options_.io_thread_batch) LetIoThreadRun();
    events.clear();
    session.Pump(absl::Now() + absl::Seconds(1), &events, async_wake_fd_);
    for (CallSession::Event& e : events) {
      if (!e.final) continue;
      auto it = waiting.find(e.token);
      if (it == waiting.end()) continue;
      Complete(std::move(it->second), std::move(e.value));
      waiting.erase(it);
    }
    if (!events.empty()) session.ReleaseIdle();
  }
  for (auto& [token, done] : waiting) Complete(std::move(done), TransportClosedError());
}

absl::Status ClientCore::CastTo(const RouteList& list, const Prepared& p, std::string_view key,
                                std::string_view topic, ClientMethodStats* stats) {
  // A cast keeps nothing: no session, its socket leased for the send alone, the candidates
  // ordered in a vector this thread reuses.
  thread_local std::vector<const Route*> order;
  list.Order(health_, &order);
  const CallSession::RequestRef request{0,  FrameKind::kCast, key,        topic,  p.method,
                                        "", p.body,           p.deadline, p.bare, stats};
  return CallSession::SendOneWay(env(), request, order);
}

absl::Status ClientCore::Cast(const Context& context, std::string_view topic, Message message,
                              const CastOptions& options) {
  const absl::Time start = absl::Now();
  ClientMethodStats* stats = StatsFor(topic, message.method, RequestKind::kCast);
  const absl::Status result = [&]() -> absl::Status {
    absl::StatusOr<Prepared> p = Prepare(context, topic, message, options.exchange, false, {});
    if (!p.ok()) return p.status();
    absl::StatusOr<std::shared_ptr<const Candidates>> c = routes_->Resolve(p->exchange, topic);
    if (!c.ok()) return c.status();
    // One plain consumer, and one member of each pool.
    if (!(*c)->plain.routes.empty()) {
      if (absl::Status s = CastTo((*c)->plain, *p, topic, topic, stats); !s.ok()) return s;
    }
    for (const RouteList& pool : (*c)->pools) {
      if (absl::Status s = CastTo(pool, *p, topic, topic, stats); !s.ok()) return s;
    }
    return absl::OkStatus();
  }();
  stats->RecordCall(MetricCode::Of(result), absl::ToDoubleSeconds(absl::Now() - start));
  return result;
}

absl::Status ClientCore::FanoutCast(const Context& context, std::string_view topic,
                                    Message message, const CastOptions& options) {
  const absl::Time start = absl::Now();
  ClientMethodStats* stats = StatsFor(topic, message.method, RequestKind::kFanout);
  const absl::Status result = [&]() -> absl::Status {
    absl::StatusOr<Prepared> p = Prepare(context, topic, message, options.exchange, false, {});
    if (!p.ok()) return p.status();
    const std::string key = FanoutKey(topic);
    absl::StatusOr<std::shared_ptr<const Candidates>> c = routes_->Resolve(p->exchange, key);
    if (!c.ok()) return c.status();
    std::vector<std::string> failed;
    for (const Route& route : (*c)->plain.routes) {
      if (absl::Status s = CastTo(SingleRoute(route), *p, key, topic, stats); !s.ok()) {
        if (IsErrorKind(s, ErrorKind::kTransportClosed)) return s;
        failed.push_back(absl::StrCat(route.host, " (", s.message(), ")"));
      }
    }
    if (!failed.empty()) {
      return absl::UnavailableError(absl::StrCat("fanout to \"", ToAbsl(topic), "\" did not reach ",
                                                 absl::StrJoin(failed, ", ")));
    }
    return absl::OkStatus();
  }();
  stats->RecordCall(MetricCode::Of(result), absl::ToDoubleSeconds(absl::Now() - start));
  return result;
}

absl::Status ClientCore::CastToServer(const Context& context, std::string_view endpoint,
                                      std::string_view topic, Message message,
                                      const CastOptions& options, bool fanout) {
  absl::StatusOr<Prepared> p = Prepare(context, topic, message, options.exchange, false, {});
  if (!p.ok()) return p.status();
  const std::string target = fanout ? FanoutKey(topic) : std::string(topic);
  Route route{std::string(endpoint), target, std::string(endpoint), p->exchange,
              options_.call_heartbeat_interval};
  if (keyring_ != nullptr) {
    // With CurveZMQ the service's key comes from its registration (one this process trusts):
    // find the instance of the topic at that endpoint.
    absl::StatusOr<std::shared_ptr<const Candidates>> c = routes_->Resolve(p->exchange, target);
    if (c.ok()) {
      auto find = [&](const RouteList& list) {
        for (const Route& r : list.routes) {
          if (r.endpoint == endpoint && !r.public_key.empty()) route.public_key = r.public_key;
        }
      };
      find((*c)->plain);
      for (const RouteList& pool : (*c)->pools) find(pool);
    }
    if (route.public_key.empty()) {
      return absl::FailedPreconditionError(absl::StrCat(
          "cannot cast to ", ToAbsl(endpoint), ": this process uses CurveZMQ keys and no "
          "trusted registration of \"", target, "\" has that endpoint, so its key is unknown "
          "(is the endpoint right, and the service's key in this process's authorized keys?)"));
    }
    route.host = route.endpoint;
  }
  return CastTo(SingleRoute(std::move(route)), *p, target, topic, /*stats=*/nullptr);
}

void ClientCore::Probe(absl::Time now) {
  std::vector<InstanceHealth::Probe> due = health_.DueProbes(now);
  if (due.empty()) return;
  std::vector<Route> routes;
  for (InstanceHealth::Probe& p : due) {
    routes.push_back(Route{p.endpoint, p.target, p.host, p.exchange, p.beat, p.public_key});
  }
  CallSession session(env());
  for (size_t i = 0; i < routes.size(); ++i) {
    Message ping;
    ping.method = "ping";
    ping.ns = std::string(kReservedNamespace);
    absl::StatusOr<Prepared> p = Prepare(Context(), "zrpc-probe", ping, routes[i].exchange, true,
                                         std::min(kProbeTimeout, 3 * routes[i].beat));
    if (!p.ok()) continue;
    // Named by the topic its ejection counts under (a probe unreachable again counts nothing:
    // the instance is still out).
    const CallSession::Request request{
        i,         FrameKind::kCall,   "",          due[i].topic, "ping",
        p->msg_id, std::move(p->body), p->deadline, p->bare};
    if (!session.Start(request, {&routes[i]}).ok()) health_.ProbeAnswered(due[i], false);
  }
  std::vector<CallSession::Event> events;
  while (session.in_flight() > 0) {
    session.Pump(absl::InfiniteFuture(), &events);
    for (const CallSession::Event& e : events) {
      if (!e.final) continue;
      health_.ProbeAnswered(due[e.token], e.value.ok());
      if (!e.value.ok()) continue;
      const Route& r = routes[e.token];
      ZRPC_LOG(kInfo, "%s (%s) answers again; back in rotation", r.host, r.endpoint);
    }
    events.clear();
  }
}

void ClientCore::MaintenanceLoop() {
  absl::Time next_collect = absl::Now() + kCollectEvery;
  while (true) {
    {
      absl::MutexLock lock(&mu_);
      const absl::Time wake = std::min(health_.NextProbe(), absl::Now() + kMaintenanceTick);
      mu_.AwaitWithDeadline(absl::Condition(
                                +[](ClientCore* c) ABSL_EXCLUSIVE_LOCKS_REQUIRED(c->mu_) {
                                  return c->stop_ || c->refresh_wanted_;
                                },
                                this),
                            wake);
      if (stop_) return;
      refresh_wanted_ = false;
    }
    routes_->RefreshStale();  // first: calls are using stale routes meanwhile
    const absl::Time now = absl::Now();
    Probe(now);
    routes_->PublishInstances(health_);  // the instances gauge, when routes or health changed
    if (now >= next_collect) {
      // Nothing leaks: endpoints no cached route names any more lose their sockets and health.
      absl::flat_hash_set<std::string> live = routes_->Collect(kRouteIdle);
      sockets_.Retain(live);
      health_.Retain(live);
      next_collect = now + kCollectEvery;
    }
  }
}

}  // namespace zrpc::internal
