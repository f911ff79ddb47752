// Transport and Connection: glue between the public API, the client engine (client.h), the I/O
// thread (io_loop.h), the worker pool and the matchmaker.
#include "zrpc/transport.h"

#include <unistd.h>

#include <chrono>
#include <map>
#include <thread>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "client.h"
#include "transport_impl.h"
#include "io_loop.h"
#include "json_internal.h"
#include "log_internal.h"
#include "wire.h"
#include "worker_pool.h"
#include "zmq_util.h"
#include "zrpc/errors.h"

namespace zrpc {
namespace internal {
namespace {

std::atomic<uint64_t> next_connection_id{1};

absl::Status ValidateOptions(TransportOptions& o) {
  if (o.host.empty()) {
    char name[256] = {0};
    if (gethostname(name, sizeof(name) - 1) != 0 || name[0] == '\0') {
      return absl::InvalidArgumentError("TransportOptions.host is empty and the host name is unknown");
    }
    o.host = name;
  }
  if (absl::Status s = ValidateName("host", o.host); !s.ok()) return s;
  if (absl::Status s = ValidateName("exchange", o.exchange); !s.ok()) return s;
  if (o.thread_pool_size < 1) return absl::InvalidArgumentError("thread_pool_size must be at least 1");
  if (o.port < 0 || o.port > 65535 || o.pub_port < 0 || o.pub_port > 65535) {
    return absl::InvalidArgumentError("port and pub_port must be 0..65535");
  }
  for (auto [name, d] : {std::pair{"response_timeout", o.response_timeout},
                         std::pair{"cast_timeout", o.cast_timeout},
                         std::pair{"connect_timeout", o.connect_timeout},
                         std::pair{"call_heartbeat_interval", o.call_heartbeat_interval},
                         std::pair{"matchmaker_heartbeat_interval", o.matchmaker_heartbeat_interval}}) {
    if (d <= absl::ZeroDuration()) {
      return absl::InvalidArgumentError(absl::StrCat(name, " must be positive"));
    }
  }
  if (o.max_message_size < 1024) return absl::InvalidArgumentError("max_message_size must be >= 1024");
  if (o.max_in_flight_per_peer < 1) return absl::InvalidArgumentError("max_in_flight_per_peer must be >= 1");
  if (o.ipc_dir.size() > 64) {
    return absl::InvalidArgumentError("ipc_dir is too long for Unix socket paths (at most 64 bytes)");
  }
  return absl::OkStatus();
}

// A list of one route (a counter is needed but never advances anything).
RouteList Single(Route route) {
  static std::atomic<uint64_t> unused{0};
  return RouteList{{std::move(route)}, &unused};
}

// How long resolved routes are reused before the matchmaker is asked again (its watch and any
// failed send clear them sooner).
constexpr absl::Duration kRouteCacheTtl = absl::Milliseconds(250);

}  // namespace

// The replies of one call or multicall, read on the calling thread from the leased DEALER.
class ReplyStreamImpl : public ReplyStream {
 public:
  ReplyStreamImpl(TransportImpl* t, std::unique_ptr<PeerSocket> socket, Route route,
                  std::string topic, std::string method, std::string msg_id, absl::Time deadline)
      : t_(t),
        socket_(std::move(socket)),
        route_(std::move(route)),
        topic_(std::move(topic)),
        method_(std::move(method)),
        msg_id_(std::move(msg_id)),
        deadline_(deadline),
        last_heard_(absl::Now()) {}
  ~ReplyStreamImpl() override { Cancel(); }

  absl::StatusOr<std::optional<Value>> Next() override {
    if (done_) {
      if (!final_.ok()) return final_;
      return std::optional<Value>();
    }
    absl::StatusOr<Reply> reply = NextReply();
    if (!reply.ok()) {
      Finish(reply.status());
      return reply.status();
    }
    if (reply->failure) {
      absl::Status remote = DeserializeRemoteException(*reply->failure);
      Finish(remote);
      return remote;
    }
    if (reply->ending) {
      Finish(absl::OkStatus());
      return std::optional<Value>();
    }
    return std::optional<Value>(std::move(reply->result));
  }

  void Cancel() override {
    if (done_) return;
    SendCancel();
    Finish(absl::CancelledError("multicall cancelled by the caller"));
  }

  // For Call: the single reply's outcome.
  absl::StatusOr<Value> Result() {
    absl::StatusOr<Reply> reply = NextReply();
    if (!reply.ok()) {
      Finish(reply.status());
      return reply.status();
    }
    Finish(absl::OkStatus());
    if (reply->failure) return DeserializeRemoteException(*reply->failure);
    return std::move(reply->result);
  }

 private:
  absl::StatusOr<Reply> NextReply() {
    const absl::Duration silence = 3 * t_->options_.call_heartbeat_interval;
    std::vector<zmq::message_t> frames;
    try {
      while (true) {
        const absl::Time now = absl::Now();
        if (now >= deadline_) {
          SendCancel();
          return TimeoutError(topic_, method_,
                              absl::StrCat("no reply from ", route_.host, " before the deadline"));
        }
        if (now >= last_heard_ + silence) {
          healthy_ = false;
          return PeerLostError(topic_, route_.host);
        }
        const absl::Time until = std::min(deadline_, last_heard_ + silence);
        // One blocking receive with a timeout: a single wait in libzmq, where zmq_poll plus a
        // draining non-blocking receive cost several more system calls per call.
        socket_->socket->set(zmq::sockopt::rcvtimeo,
                             static_cast<int>(std::max<int64_t>(
                                 1, absl::ToInt64Milliseconds(absl::Ceil(until - now, absl::Milliseconds(1))))));
        if (!RecvAll(*socket_->socket, &frames, /*wait=*/true)) continue;  // timed out: re-check
        if (frames.size() != 2) continue;
        absl::StatusOr<Header> header = ParseHeader(View(frames[0]));
        if (!header.ok() || header->msg_id != msg_id_) continue;  // a late reply: dropped
        last_heard_ = absl::Now();
        if (header->kind != FrameKind::kReply) continue;  // a beat
        absl::StatusOr<Reply> reply = DecodeReply(View(frames[1]));
        if (!reply.ok()) {
          return RpcExceptionError(absl::StrCat("malformed reply from ", route_.host, ": ",
                                                reply.status().message()));
        }
        return reply;
      }
    } catch (const zmq::error_t& e) {
      healthy_ = false;
      if (e.num() == ETERM) return TransportClosedError();
      return absl::UnavailableError(absl::StrCat("receive from ", route_.host, ": ", e.what()));
    }
  }

  void SendCancel() {
    if (!socket_) return;
    const std::string header = ControlHeader(FrameKind::kCancel, msg_id_);
    try {
      if (socket_->socket->send(zmq::buffer(header), zmq::send_flags::sndmore | zmq::send_flags::dontwait)) {
        socket_->socket->send(zmq::str_buffer(""), zmq::send_flags::none);
      }
    } catch (const zmq::error_t&) {
      healthy_ = false;
    }
  }

  void Finish(absl::Status status) {
    done_ = true;
    final_ = std::move(status);
    if (socket_) t_->sockets().Release(std::move(socket_), healthy_);
  }

  TransportImpl* t_;
  std::unique_ptr<PeerSocket> socket_;
  Route route_;
  std::string topic_, method_, msg_id_;
  absl::Time deadline_, last_heard_;
  bool done_ = false;
  bool healthy_ = true;
  absl::Status final_;
};

absl::Status TransportImpl::Init() {
  if (options_.matchmaker_instance) {
    matchmaker_ = options_.matchmaker_instance;
  } else {
    absl::StatusOr<std::unique_ptr<Matchmaker>> mm = CreateMatchmaker(options_.matchmaker);
    if (!mm.ok()) return mm.status();
    matchmaker_ = *std::move(mm);
  }
  absl::StatusOr<std::unique_ptr<WatchHandle>> watch = matchmaker_->Watch([this] {
    // Stale, not gone: refetched on the next send, still used while the matchmaker is away.
    absl::MutexLock lock(&cache_mu_);
    for (auto& [key, cached] : route_cache_) cached.fetched = absl::InfinitePast();
  });
  if (watch.ok()) {
    watch_ = *std::move(watch);
  } else {
    ZRPC_LOG(kWarning, "matchmaker watch unavailable (%s); routes refresh every %s",
             watch.status().message(), absl::FormatDuration(kRouteCacheTtl));
  }
  return io_.Start();
}

absl::Status TransportImpl::CheckOpen() {
  absl::MutexLock lock(&mu_);
  return closed_ ? TransportClosedError() : absl::OkStatus();
}

std::atomic<uint64_t>* TransportImpl::RoundRobinCounter(const std::string& key) {
  absl::MutexLock lock(&rr_mu_);
  std::unique_ptr<std::atomic<uint64_t>>& counter = round_robin_[key];
  if (!counter) counter = std::make_unique<std::atomic<uint64_t>>(0);
  return counter.get();
}

void TransportImpl::ForgetRoutes(std::string_view exchange, std::string_view topic) {
  absl::MutexLock lock(&cache_mu_);
  auto it = route_cache_.find(absl::StrCat(ToAbsl(exchange), " ", ToAbsl(topic)));
  if (it != route_cache_.end()) it->second.fetched = absl::InfinitePast();
}

absl::StatusOr<std::shared_ptr<const Candidates>> TransportImpl::Resolve(std::string_view exchange,
                                                                         std::string_view topic) {
  const std::string key = absl::StrCat(ToAbsl(exchange), " ", ToAbsl(topic));
  const absl::Time now = absl::Now();
  {
    absl::MutexLock lock(&cache_mu_);
    auto it = route_cache_.find(key);
    if (it != route_cache_.end() && now - it->second.fetched < kRouteCacheTtl) {
      return it->second.candidates;
    }
  }
  absl::StatusOr<std::vector<Registration>> regs = matchmaker_->Resolve(exchange, topic);
  if (!regs.ok()) {
    // Keep serving from what we knew while the matchmaker cannot be asked.
    absl::MutexLock lock(&cache_mu_);
    auto it = route_cache_.find(key);
    if (it != route_cache_.end()) return it->second.candidates;
    return regs.status();
  }
  std::vector<Route> plain;
  std::map<std::string, std::vector<Route>> pools;
  const bool fanout = topic.substr(0, 7) == "fanout~";
  for (const Registration& r : *regs) {
    if (r.pool.empty()) {
      plain.push_back(Route{r.endpoint, fanout ? r.Key() : r.topic, r.host});
    } else {
      pools[r.pool].push_back(Route{r.endpoint, PoolTarget(r.pool, r.topic), r.host});
    }
  }
  auto c = std::make_shared<Candidates>();
  c->plain.routes = std::move(plain);
  c->plain.next = RoundRobinCounter(key);
  for (auto& [pool, routes] : pools) {
    c->pools.push_back(RouteList{std::move(routes), RoundRobinCounter(key + " " + pool)});
  }
  if (c->plain.routes.empty() && c->pools.empty()) return NoConsumerError(topic);
  absl::MutexLock lock(&cache_mu_);
  route_cache_[key] = CachedRoutes{c, now};
  return std::shared_ptr<const Candidates>(std::move(c));
}

absl::StatusOr<TransportImpl::Prepared> TransportImpl::Prepare(const Context& context,
                                                               std::string_view topic,
                                                               Message& message,
                                                               std::string_view exchange,
                                                               bool is_call,
                                                               absl::Duration timeout) {
  if (absl::Status s = CheckOpen(); !s.ok()) return s;
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
    p.msg_id = NewUniqueId();
    message.msg_id = p.msg_id;
    message.timeout_ms = std::max<int64_t>(1, absl::ToInt64Milliseconds(timeout));
  }
  absl::StatusOr<std::string> body = EncodeMessage(message);
  if (!body.ok()) return body.status();
  if (body->size() + 512 > options_.max_message_size) {
    return absl::ResourceExhaustedError(
        absl::StrCat("message of ", body->size(), " bytes exceeds the limit of ",
                     options_.max_message_size, " bytes (max_message_size)"));
  }
  p.body = *std::move(body);
  return p;
}

absl::StatusOr<std::pair<Route, std::unique_ptr<PeerSocket>>> TransportImpl::SendToOneOf(
    const RouteList& candidates, FrameKind kind, std::string_view exchange,
    const std::string& msg_id, const std::string& body, absl::Time deadline,
    std::string_view topic) {
  absl::Status last;
  for (const Route* r : candidates.Order()) {
    const Route& route = *r;
    absl::StatusOr<std::unique_ptr<PeerSocket>> s = sockets_.Acquire(route.endpoint);
    if (!s.ok()) return s.status();
    const bool was_connected = (*s)->connected;
    const absl::Time until =
        was_connected ? deadline : std::min(deadline, absl::Now() + options_.connect_timeout);
    absl::Status sent = ClientSockets::Send(**s, RequestHeader(kind, exchange, route.target, msg_id),
                                            body, until);
    if (sent.ok()) return std::make_pair(route, *std::move(s));
    const bool unreachable = !(*s)->connected;
    sockets_.Release(*std::move(s), /*healthy=*/!unreachable);
    if (IsErrorKind(sent, ErrorKind::kTransportClosed)) return sent;
    if (!unreachable) {
      return absl::ResourceExhaustedError(absl::StrCat(
          "cannot queue message for ", route.host, " (", route.endpoint, "): ", sent.message()));
    }
    ZRPC_LOG(kWarning, "cannot reach %s at %s for %s; trying another instance", route.host,
             route.endpoint, ToAbsl(topic));
    ForgetRoutes(exchange, topic);  // the matchmaker may know better by now
    last = PeerLostError(topic, route.host);
  }
  return last.ok() ? NoConsumerError(topic) : last;
}

absl::StatusOr<std::unique_ptr<ReplyStreamImpl>> TransportImpl::StartCall(
    const Context& context, std::string_view topic, Message message, CallOptions options,
    FrameKind kind) {
  absl::StatusOr<Prepared> p = Prepare(context, topic, message, options.exchange, true, options.timeout);
  if (!p.ok()) return p.status();
  absl::StatusOr<std::shared_ptr<const Candidates>> c = Resolve(p->exchange, topic);
  if (!c.ok()) return c.status();
  // Calls go to a plain consumer, or to a pool member when the topic has no plain consumer.
  const RouteList& candidates = (*c)->plain.routes.empty() ? (*c)->pools.front() : (*c)->plain;
  auto sent = SendToOneOf(candidates, kind, p->exchange, p->msg_id, p->body, p->deadline, topic);
  if (!sent.ok()) return sent.status();
  return std::make_unique<ReplyStreamImpl>(this, std::move(sent->second), std::move(sent->first),
                                           std::string(topic), p->method, p->msg_id, p->deadline);
}

absl::StatusOr<Value> TransportImpl::Call(const Context& context, std::string_view topic,
                                          Message message, CallOptions options) {
  absl::StatusOr<std::unique_ptr<ReplyStreamImpl>> call =
      StartCall(context, topic, std::move(message), std::move(options), FrameKind::kCall);
  if (!call.ok()) return call.status();
  return (*call)->Result();
}

absl::StatusOr<std::unique_ptr<ReplyStream>> TransportImpl::MultiCall(const Context& context,
                                                                      std::string_view topic,
                                                                      Message message,
                                                                      CallOptions options) {
  absl::StatusOr<std::unique_ptr<ReplyStreamImpl>> call =
      StartCall(context, topic, std::move(message), std::move(options), FrameKind::kMultiCall);
  if (!call.ok()) return call.status();
  return std::unique_ptr<ReplyStream>(*std::move(call));
}

void TransportImpl::CallAsync(const Context& context, std::string_view topic, Message message,
                              std::function<void(absl::StatusOr<Value>)> done,
                              CallOptions options) {
  auto fail = [&](absl::Status status) {
    auto task = [done, status] { done(status); };
    if (!workers_.Submit(task)) task();
  };
  absl::StatusOr<Prepared> p = Prepare(context, topic, message, options.exchange, true, options.timeout);
  if (!p.ok()) return fail(p.status());
  absl::StatusOr<std::shared_ptr<const Candidates>> c = Resolve(p->exchange, topic);
  if (!c.ok()) return fail(c.status());
  const RouteList& list = (*c)->plain.routes.empty() ? (*c)->pools.front() : (*c)->plain;
  const Route& route = *list.Order().front();
  IoLoop::AsyncCall call{route.endpoint,
                         route.host,
                         std::string(topic),
                         p->method,
                         p->msg_id,
                         RequestHeader(FrameKind::kCall, p->exchange, route.target, p->msg_id),
                         std::move(p->body),
                         p->deadline,
                         done};
  if (!io_.RunAsync([this, call = std::move(call)]() mutable { io_.StartAsyncCall(std::move(call)); })) {
    fail(TransportClosedError());
  }
}

std::vector<absl::StatusOr<Value>> TransportImpl::CallMany(const Context& context,
                                                          std::string_view topic,
                                                          std::vector<Message> messages,
                                                          CallManyOptions options) {
  const size_t n = messages.size();
  std::vector<absl::StatusOr<Value>> results(n, absl::UnknownError("not sent"));
  const absl::Duration timeout =
      options.timeout > absl::ZeroDuration() ? options.timeout : options_.response_timeout;
  const absl::Duration silence = 3 * options_.call_heartbeat_interval;
  const size_t window = static_cast<size_t>(std::max(1, options.window));

  struct Leased {
    std::unique_ptr<PeerSocket> socket;
    bool healthy = true;
  };
  struct InFlight {
    size_t index;
    std::string endpoint;
    std::string host;
    absl::Time deadline;
    absl::Time last_heard;
  };
  absl::flat_hash_map<std::string, Leased> leases;  // by endpoint
  absl::flat_hash_map<std::string, InFlight> in_flight;  // by msg_id
  std::shared_ptr<const Candidates> candidates;
  std::string exchange;
  size_t next = 0;

  auto finish = [&](const std::string& msg_id, absl::StatusOr<Value> outcome) {
    auto it = in_flight.find(msg_id);
    results[it->second.index] = std::move(outcome);
    in_flight.erase(it);
  };
  auto send_next = [&]() {
    const size_t index = next++;
    Message& message = messages[index];
    absl::StatusOr<Prepared> p = Prepare(context, topic, message, options.exchange, true, timeout);
    if (!p.ok()) {
      results[index] = p.status();
      return;
    }
    if (!candidates) {
      absl::StatusOr<std::shared_ptr<const Candidates>> c = Resolve(p->exchange, topic);
      if (!c.ok()) {
        results[index] = c.status();
        return;
      }
      candidates = *std::move(c);
      exchange = p->exchange;
    }
    const RouteList& list = candidates->plain.routes.empty() ? candidates->pools.front() : candidates->plain;
    const Route& route = *list.Order().front();
    Leased& lease = leases[route.endpoint];
    if (!lease.socket) {
      absl::StatusOr<std::unique_ptr<PeerSocket>> s = sockets_.Acquire(route.endpoint);
      if (!s.ok()) {
        leases.erase(route.endpoint);
        results[index] = s.status();
        return;
      }
      lease.socket = *std::move(s);
    }
    const absl::Time until = lease.socket->connected
                                 ? p->deadline
                                 : std::min(p->deadline, absl::Now() + options_.connect_timeout);
    absl::Status sent = ClientSockets::Send(
        *lease.socket, RequestHeader(FrameKind::kCall, exchange, route.target, p->msg_id), p->body,
        until);
    if (!sent.ok()) {
      if (!lease.socket->connected) {
        lease.healthy = false;
        ForgetRoutes(exchange, topic);
        results[index] = PeerLostError(topic, route.host);
      } else {
        results[index] = sent;
      }
      return;
    }
    const absl::Time now = absl::Now();
    in_flight[p->msg_id] = InFlight{index, route.endpoint, route.host, p->deadline, now};
  };

  std::vector<zmq::pollitem_t> items;
  std::vector<std::string> item_endpoints;
  std::vector<zmq::message_t> frames;
  while (next < n || !in_flight.empty()) {
    while (next < n && in_flight.size() < window) send_next();
    if (in_flight.empty()) continue;
    // Wait for replies on every leased socket until the nearest deadline or silence limit.
    absl::Time wake = absl::InfiniteFuture();
    for (const auto& [id, call] : in_flight) {
      wake = std::min({wake, call.deadline, call.last_heard + silence});
    }
    items.clear();
    item_endpoints.clear();
    for (auto& [endpoint, lease] : leases) {
      if (!lease.socket || !lease.healthy) continue;
      items.push_back({lease.socket->socket->handle(), 0, ZMQ_POLLIN, 0});
      item_endpoints.push_back(endpoint);
    }
    const absl::Time now = absl::Now();
    try {
      if (wake > now && !items.empty()) {
        zmq::poll(items.data(), items.size(),
                  std::chrono::milliseconds(std::max<int64_t>(
                      1, absl::ToInt64Milliseconds(absl::Ceil(wake - now, absl::Milliseconds(1))))));
      }
      for (size_t i = 0; i < items.size(); ++i) {
        if (!(items[i].revents & ZMQ_POLLIN)) continue;
        zmq::socket_t& socket = *leases[item_endpoints[i]].socket->socket;
        while (RecvAll(socket, &frames)) {
          if (frames.size() != 2) continue;
          absl::StatusOr<Header> header = ParseHeader(View(frames[0]));
          if (!header.ok()) continue;
          auto it = in_flight.find(ToAbsl(header->msg_id));
          if (it == in_flight.end()) continue;  // a late reply of an earlier call
          it->second.last_heard = absl::Now();
          if (header->kind != FrameKind::kReply) continue;
          absl::StatusOr<Reply> reply = DecodeReply(View(frames[1]));
          const std::string msg_id(header->msg_id);
          if (!reply.ok()) {
            finish(msg_id, RpcExceptionError(absl::StrCat("malformed reply: ", reply.status().message())));
          } else if (reply->failure) {
            finish(msg_id, DeserializeRemoteException(*reply->failure));
          } else {
            finish(msg_id, std::move(reply->result));
          }
        }
      }
    } catch (const zmq::error_t& e) {
      const absl::Status closed =
          e.num() == ETERM ? TransportClosedError() : absl::UnavailableError(e.what());
      for (auto& [id, call] : in_flight) results[call.index] = closed;
      in_flight.clear();
      for (size_t i = next; i < n; ++i) results[i] = closed;
      next = n;
      for (auto& [endpoint, lease] : leases) lease.healthy = false;
      break;
    }
    // Deadlines and silent peers.
    const absl::Time after = absl::Now();
    std::vector<std::string> done;
    for (auto& [id, call] : in_flight) {
      if (after >= call.deadline) {
        results[call.index] = TimeoutError(topic, messages[call.index].method,
                                           absl::StrCat("no reply from ", call.host, " before the deadline"));
        done.push_back(id);
      } else if (after >= call.last_heard + silence) {
        results[call.index] = PeerLostError(topic, call.host);
        leases[call.endpoint].healthy = false;
        done.push_back(id);
      }
    }
    for (const std::string& id : done) in_flight.erase(id);
  }
  for (auto& [endpoint, lease] : leases) {
    if (lease.socket) sockets_.Release(std::move(lease.socket), lease.healthy);
  }
  return results;
}

absl::Status TransportImpl::CastTo(const RouteList& candidates, std::string_view exchange,
                                   const std::string& body, std::string_view topic) {
  auto sent = SendToOneOf(candidates, FrameKind::kCast, exchange, "", body,
                          absl::Now() + options_.cast_timeout, topic);
  if (!sent.ok()) return sent.status();
  sockets_.Release(std::move(sent->second), true);
  return absl::OkStatus();
}

absl::Status TransportImpl::Cast(const Context& context, std::string_view topic, Message message,
                                 CastOptions options) {
  absl::StatusOr<Prepared> p = Prepare(context, topic, message, options.exchange, false, {});
  if (!p.ok()) return p.status();
  absl::StatusOr<std::shared_ptr<const Candidates>> c = Resolve(p->exchange, topic);
  if (!c.ok()) return c.status();
  // One plain consumer, and one member of each pool.
  if (!(*c)->plain.routes.empty()) {
    if (absl::Status s = CastTo((*c)->plain, p->exchange, p->body, topic); !s.ok()) return s;
  }
  for (const RouteList& pool : (*c)->pools) {
    if (absl::Status s = CastTo(pool, p->exchange, p->body, topic); !s.ok()) return s;
  }
  return absl::OkStatus();
}

absl::Status TransportImpl::FanoutCast(const Context& context, std::string_view topic,
                                       Message message, CastOptions options) {
  absl::StatusOr<Prepared> p = Prepare(context, topic, message, options.exchange, false, {});
  if (!p.ok()) return p.status();
  const std::string key = absl::StrCat("fanout~", ToAbsl(topic));
  absl::StatusOr<std::shared_ptr<const Candidates>> c = Resolve(p->exchange, key);
  if (!c.ok()) {
    return IsErrorKind(c.status(), ErrorKind::kNoConsumer) ? NoConsumerError(topic) : c.status();
  }
  std::vector<std::string> failed;
  for (const Route& route : (*c)->plain.routes) {
    if (absl::Status s = CastTo(Single(route), p->exchange, p->body, topic); !s.ok()) {
      if (IsErrorKind(s, ErrorKind::kTransportClosed)) return s;
      failed.push_back(absl::StrCat(route.host, " (", s.message(), ")"));
    }
  }
  if (!failed.empty()) {
    return absl::UnavailableError(absl::StrCat("fanout to \"", ToAbsl(topic), "\" did not reach ",
                                               absl::StrJoin(failed, ", ")));
  }
  return absl::OkStatus();
}

absl::Status TransportImpl::CastToServer(const Context& context, std::string_view endpoint,
                                         std::string_view topic, Message message,
                                         CastOptions options) {
  absl::StatusOr<Prepared> p = Prepare(context, topic, message, options.exchange, false, {});
  if (!p.ok()) return p.status();
  return CastTo(Single(Route{std::string(endpoint), std::string(topic), std::string(endpoint)}),
                p->exchange, p->body, topic);
}

absl::Status TransportImpl::FanoutCastToServer(const Context& context, std::string_view endpoint,
                                               std::string_view topic, Message message,
                                               CastOptions options) {
  absl::StatusOr<Prepared> p = Prepare(context, topic, message, options.exchange, false, {});
  if (!p.ok()) return p.status();
  return CastTo(Single(Route{std::string(endpoint), absl::StrCat("fanout~", ToAbsl(topic)),
                              std::string(endpoint)}),
                p->exchange, p->body, topic);
}

void TransportImpl::Registered(const Registration& r) {
  absl::MutexLock lock(&mu_);
  if (registrations_++ == 0 && !heartbeat_thread_.joinable() && !closed_) {
    heartbeat_thread_ = std::thread([this] { HeartbeatLoop(); });
  }
}

void TransportImpl::Unregistered(const Registration& r) {
  absl::MutexLock lock(&mu_);
  --registrations_;
}

void TransportImpl::HeartbeatLoop() {
  const absl::Duration interval =
      std::min(options_.matchmaker_heartbeat_interval, matchmaker_->HeartbeatInterval());
  absl::MutexLock lock(&mu_);
  while (!closed_) {
    mu_.AwaitWithTimeout(absl::Condition(&closed_), interval);
    if (closed_) return;
    mu_.Unlock();
    absl::Status s = matchmaker_->Heartbeat();
    if (!s.ok()) ZRPC_LOG(kWarning, "matchmaker heartbeat failed: %s", s.message());
    mu_.Lock();
  }
}

void TransportImpl::Close() {
  std::vector<ConnectionImpl*> connections;
  {
    absl::MutexLock lock(&mu_);
    if (closed_) return;
    closed_ = true;
    connections.assign(connections_.begin(), connections_.end());
  }
  for (ConnectionImpl* c : connections) c->Detach();
  if (heartbeat_thread_.joinable()) heartbeat_thread_.join();
  watch_.reset();
  io_.Stop();
  ctx_.shutdown();  // callers blocked in ZeroMQ return TransportClosed now
  sockets_.Shutdown();
  workers_.Stop();
  ctx_.close();
}

ConnectionImpl::ConnectionImpl(TransportImpl* t)
    : transport_(t), state_(std::make_shared<ConnectionState>()) {
  state_->id = next_connection_id.fetch_add(1);
}

ConnectionImpl::~ConnectionImpl() {
  Close();
  absl::MutexLock lock(&mu_);
  if (transport_ != nullptr) transport_->Forget(this);
}

absl::Status ConnectionImpl::Add(std::shared_ptr<Consumer> consumer) {
  absl::MutexLock lock(&mu_);
  if (closed_ || transport_ == nullptr) return InvalidRpcConnectionReuseError();
  for (const auto& existing : consumers_) {
    if (existing->key == consumer->key) {
      return absl::AlreadyExistsError(absl::StrCat("this connection already consumes ", consumer->key));
    }
  }
  consumers_.push_back(consumer);
  if (!consuming_) return absl::OkStatus();
  absl::Status s = Activate({consumer});
  if (!s.ok()) consumers_.pop_back();
  return s;
}

absl::StatusOr<std::shared_ptr<Consumer>> ConnectionImpl::NewConsumer(
    std::string_view topic, std::string_view exchange, std::string_view pool, bool fanout) {
  if (absl::Status s = ValidateName("topic", topic); !s.ok()) return s;
  if (!pool.empty()) {
    if (absl::Status s = ValidateName("pool", pool); !s.ok()) return s;
    if (pool.find('~') != std::string_view::npos) {
      return absl::InvalidArgumentError("pool names may not contain '~'");
    }
    if (fanout) return absl::InvalidArgumentError("a worker pool cannot be a fanout consumer");
  }
  absl::MutexLock lock(&mu_);
  if (transport_ == nullptr) return InvalidRpcConnectionReuseError();
  const TransportOptions& to = transport_->options();
  auto c = std::make_shared<Consumer>(to.duplicate_window);
  c->connection = state_;
  Registration& r = c->registration;
  r.exchange = exchange.empty() ? to.exchange : std::string(exchange);
  if (absl::Status s = ValidateName("exchange", r.exchange); !s.ok()) return s;
  r.topic = std::string(topic);
  r.host = to.host;
  r.pool = std::string(pool);
  r.fanout = fanout;
  r.heartbeat_ms = absl::ToInt64Milliseconds(to.call_heartbeat_interval);
  c->key = absl::StrCat(r.exchange, " ", pool.empty() ? r.Key() : PoolTarget(pool, topic));
  return c;
}

absl::Status ConnectionImpl::CreateConsumer(std::string_view topic, const Dispatcher& dispatcher,
                                            ConsumerOptions options) {
  absl::StatusOr<std::shared_ptr<Consumer>> c =
      NewConsumer(topic, options.exchange, /*pool=*/"", options.fanout);
  if (!c.ok()) return c.status();
  (*c)->dispatcher = &dispatcher;
  return Add(*std::move(c));
}

absl::Status ConnectionImpl::CreateWorker(std::string_view topic, const Dispatcher& dispatcher,
                                          std::string_view pool, ConsumerOptions options) {
  if (pool.empty()) return absl::InvalidArgumentError("pool must not be empty");
  absl::StatusOr<std::shared_ptr<Consumer>> c = NewConsumer(topic, options.exchange, pool, options.fanout);
  if (!c.ok()) return c.status();
  (*c)->dispatcher = &dispatcher;
  return Add(*std::move(c));
}

absl::Status ConnectionImpl::JoinConsumerPool(std::function<void(const Message&)> callback,
                                              std::string_view pool, std::string_view topic,
                                              std::string_view exchange) {
  if (!callback) return absl::InvalidArgumentError("JoinConsumerPool needs a callback");
  if (pool.empty()) return absl::InvalidArgumentError("pool must not be empty");
  absl::StatusOr<std::shared_ptr<Consumer>> c = NewConsumer(topic, exchange, pool, false);
  if (!c.ok()) return c.status();
  (*c)->callback = std::move(callback);
  return Add(*std::move(c));
}

absl::Status ConnectionImpl::ConsumeInThread() {
  absl::MutexLock lock(&mu_);
  if (closed_ || transport_ == nullptr) return InvalidRpcConnectionReuseError();
  if (consuming_) return absl::OkStatus();
  absl::Status s = Activate(consumers_);
  if (s.ok()) consuming_ = true;
  return s;
}

absl::Status ConnectionImpl::Activate(const std::vector<std::shared_ptr<Consumer>>& consumers) {
  IoLoop& io = transport_->io();
  absl::Status bound = io.RunSync([&]() -> absl::Status {
    if (absl::Status s = io.EnsureBound(); !s.ok()) return s;
    for (const auto& c : consumers) {
      c->registration.endpoint = io.endpoint();
      c->registration.pub_endpoint = io.pub_endpoint();
      io.AddConsumer(c);
    }
    return absl::OkStatus();
  });
  if (!bound.ok()) return bound;
  for (const auto& c : consumers) {
    absl::Status s = transport_->matchmaker().Register(c->registration);
    if (!s.ok()) {
      return absl::UnavailableError(absl::StrCat("cannot register ", c->key, " with the matchmaker: ",
                                                 s.message()));
    }
    transport_->Registered(c->registration);
  }
  return absl::OkStatus();
}

void ConnectionImpl::Close() {
  absl::MutexLock lock(&mu_);
  if (closed_) return;
  closed_ = true;
  if (transport_ == nullptr) return;
  TransportImpl* t = transport_;
  const absl::Duration bound = t->options().close_timeout;
  // Drain: health says not serving and new requests are refused (clients try another instance)
  // while registrations are withdrawn and running handlers finish.
  state_->draining.store(true);
  if (consuming_) {
    for (const auto& c : consumers_) {
      absl::Status s = t->matchmaker().Unregister(c->registration);
      if (!s.ok()) ZRPC_LOG(kWarning, "cannot unregister %s: %s", c->key, s.message());
      t->Unregistered(c->registration);
    }
  }
  // Let running handlers finish, within the bound.
  const absl::Time until = absl::Now() + bound;
  while (state_->running.load() > 0 && absl::Now() < until) absl::SleepFor(absl::Milliseconds(2));
  (void)t->io().RunSync([&] {
    t->io().RemoveConsumers(state_->id);
    return absl::OkStatus();
  });
  if (state_->running.load() > 0) {
    ZRPC_LOG(kWarning, "closing with %d handlers still running: failing their calls",
             state_->running.load());
    (void)t->io().RunSync([&] {
      t->io().AbandonCalls(state_->id);
      return absl::OkStatus();
    });
  }
}

void ConnectionImpl::Detach() {
  Close();
  absl::MutexLock lock(&mu_);
  transport_ = nullptr;
}

}  // namespace internal

absl::StatusOr<std::unique_ptr<Transport>> Transport::Create(TransportOptions options) {
  if (absl::Status s = internal::ValidateOptions(options); !s.ok()) return s;
  auto t = std::make_unique<internal::TransportImpl>(std::move(options));
  if (absl::Status s = t->Init(); !s.ok()) return s;
  return std::unique_ptr<Transport>(std::move(t));
}

}  // namespace zrpc
