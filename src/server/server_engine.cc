// SPDX-License-Identifier: Apache-2.0
#include "server/server_engine.h"

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <span>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "codec/json_internal.h"
#include "base/address.h"
#include "base/log_internal.h"
#include "base/thread.h"
#include "base/secure_fs.h"
#include "server/admission.h"
#include "server/inbound.h"
#include "server/introspection.h"
#include "zmq/socket_factory.h"
#include "zrpc/errors.h"
#include "zrpc/message.h"
#include "zrpc/notifier.h"

namespace zrpc::internal {
namespace {

// Larger request bodies are decoded by a worker: simdjson and the Value conversion take up to
// ~15 ns per value, and a 4 MiB body can hold two million values (tens of milliseconds).
constexpr size_t kDecodeOnLoopBytes = 16 << 10;

std::atomic<int> ipc_counter{0};
// ipc:// sockets of a service: its own user connects (connecting needs write permission).
constexpr mode_t kIpcSocketMode = 0600;

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

bool IsWildcard(const std::string& address) {
  return address == "*" || address == "0.0.0.0" || address == "::";
}

// The address to advertise for a service bound to every interface: the first interface that is
// up and not loopback (IPv4 first, then a global IPv6 address); loopback when the machine has
// nothing else (peers on this machine only). The host name is not used: it often resolves to an
// address the service does not listen on, or to nothing.
std::string PrimaryAddress() {
  struct ifaddrs* list = nullptr;
  if (getifaddrs(&list) != 0) return "127.0.0.1";
  std::string v4, v6;
  for (struct ifaddrs* i = list; i != nullptr; i = i->ifa_next) {
    if (i->ifa_addr == nullptr || (i->ifa_flags & IFF_UP) == 0 || (i->ifa_flags & IFF_LOOPBACK)) {
      continue;
    }
    char text[INET6_ADDRSTRLEN] = {};
    if (i->ifa_addr->sa_family == AF_INET && v4.empty()) {
      const auto* a = reinterpret_cast<const sockaddr_in*>(i->ifa_addr);
      if (inet_ntop(AF_INET, &a->sin_addr, text, sizeof(text)) != nullptr) v4 = text;
    } else if (i->ifa_addr->sa_family == AF_INET6 && v6.empty()) {
      const auto* a = reinterpret_cast<const sockaddr_in6*>(i->ifa_addr);
      if (!IN6_IS_ADDR_LINKLOCAL(&a->sin6_addr) &&
          inet_ntop(AF_INET6, &a->sin6_addr, text, sizeof(text)) != nullptr) {
        v6 = text;
      }
    }
  }
  freeifaddrs(list);
  return !v4.empty() ? v4 : !v6.empty() ? v6 : "127.0.0.1";
}

// How long a service waits for a name in its bind or advertise address to resolve, once, at bind
// time (its own configuration: clients never resolve names).
constexpr absl::Duration kOwnAddressResolveTimeout = absl::Seconds(5);

// The address registered for a service bound over TCP (bracketed when IPv6): an ADDRESS, never a
// name (clients would resolve it, blocking, on their I/O thread: ValidateRegistration refuses
// names). A name in advertise_address is resolved here, once; a bound name ("localhost") is the
// address libzmq bound (`bound`, its last_endpoint).
absl::StatusOr<std::string> AdvertisedHost(const TransportOptions& o, const std::string& bound) {
  const std::string& wanted = o.advertise_address;
  if (wanted.empty() && IsWildcard(o.bind_address)) return Bracketed(PrimaryAddress());
  if (wanted.empty()) {
    std::string_view host = TcpHostOf(bound);
    // An IPv6 socket bound to an IPv4 address reports it mapped ("[::ffff:127.0.0.1]").
    constexpr std::string_view kMapped = "[::ffff:";
    if (host.starts_with(kMapped) && host.ends_with("]") &&
        IsNumericHost(host.substr(kMapped.size(), host.size() - kMapped.size() - 1))) {
      host = host.substr(kMapped.size(), host.size() - kMapped.size() - 1);
    }
    if (IsNumericHost(host)) return std::string(host);
  }
  const std::string& name = wanted.empty() ? o.bind_address : wanted;
  if (IsNumericHost(name)) return name;  // "[fd00::5]"
  absl::StatusOr<std::string> address = ResolveHosts({name}, kOwnAddressResolveTimeout)[0];
  if (!address.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(
        wanted.empty() ? "bind_address" : "advertise_address", " ", address.status().message(),
        "; registrations carry addresses, not names: set an IP address to advertise "
        "(TransportOptions.advertise_address; zrpc-service --advertise)"));
  }
  return *address;
}

// The host part to bind for `bind_address`: "*", an address (bracketed when IPv6), or an
// interface name (libzmq binds its address). libzmq does not resolve names when binding: a host
// name ("localhost") is resolved here, once.
absl::StatusOr<std::string> BindHost(const std::string& bind_address) {
  if (bind_address == "*" || if_nametoindex(bind_address.c_str()) != 0) return bind_address;
  absl::StatusOr<std::string> address = ResolveHosts({bind_address}, kOwnAddressResolveTimeout)[0];
  if (!address.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "bind_address ", address.status().message(),
        "; bind an IP address, an interface name or \"*\" (TransportOptions.bind_address; "
        "zrpc-service --bind)"));
  }
  return *address;
}

// Binds `socket` to `endpoint`; the error names the endpoint.
absl::Status Bind(zmq::socket_t& socket, const std::string& endpoint, const char* what) {
  try {
    socket.bind(endpoint);
    return absl::OkStatus();
  } catch (const zmq::error_t& e) {
    if (e.num() == ETERM) return TransportClosedError();
    return absl::UnavailableError(absl::StrCat(
        "cannot bind the service's ", what, " socket to ", endpoint, ": ", e.what(),
        e.num() == EADDRINUSE       ? " (another process listens there: choose another port)"
        : e.num() == EADDRNOTAVAIL  ? " (no interface of this machine has that address)"
        : e.num() == EACCES         ? " (permission denied: ports below 1024 need privileges)"
                                    : ""));
  }
}

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
  // A large body is decoded by the worker, not on the reactor thread: `body` holds its text
  // until then and `message` is empty.
  std::string body;
  bool decoded = true;
  absl::Time arrived;
  std::string caller;  // CallerOf: whose lane and admission count it uses
  ServerMethodStats* stats = nullptr;  // where it is counted (set once it is resolved)
};

namespace {

// The `kind` label of a request to `consumer` (null: none matched).
RequestKind KindOf(FrameKind kind, const Consumer* consumer) {
  if (kind == FrameKind::kCall) return RequestKind::kCall;
  if (kind == FrameKind::kMultiCall) return RequestKind::kMulticall;
  if (consumer != nullptr) {
    if (consumer->registration.fanout) return RequestKind::kFanout;
    if (std::string_view(consumer->registration.topic).starts_with(kNotifyPrefix)) {
      return RequestKind::kNotifyPool;
    }
  }
  return RequestKind::kCast;
}

}  // namespace

ServerMethodStats* ServerEngine::StatsFor(std::string_view topic, std::string_view method,
                                          RequestKind kind, bool registered) {
  stats_key_.assign(topic);
  stats_key_.push_back('\0');
  stats_key_.append(registered ? method : std::string_view());
  stats_key_.push_back(static_cast<char>('0' + static_cast<int>(kind)));
  auto it = stats_cache_.find(stats_key_);
  if (it != stats_cache_.end()) return it->second;
  ServerMethodStats* stats = metrics_.ServerMethod(topic, method, kind, registered);
  // Bounded like the metrics' own labels: past the limit, looked up each time instead.
  if (stats_cache_.size() < 4096) stats_cache_.emplace(stats_key_, stats);
  return stats;
}


void ServerEngine::UpdateGauges() {
  metrics_.in_flight().Set(static_cast<int64_t>(queued_requests_));
  metrics_.queued_bytes().Set(static_cast<int64_t>(queued_bytes_ + pending_bytes_));
  metrics_.connections().Set(static_cast<int64_t>(connections_));
}

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
  FlushPending();
  for (const Outbound& out : outbound) SendOutbound(out);
}

void ServerEngine::OnExit() {
  OnWake();
  for (std::unique_ptr<SocketMonitor>& m : monitors_) reactor_.Unwatch(m->events_socket());
  monitors_.clear();
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
  NoteServing();  // a serving process: INFO lines by default (zrpc/log.h)
  CurveSettings curve;
  if (keyring_) {
    if (zap_ == nullptr || !zap_->running()) {
      return absl::FailedPreconditionError(
          "CurveZMQ keys are configured but no authentication (ZAP) handler runs: refusing to "
          "bind (libzmq would admit every key)");
    }
    curve.own = &keyring_->own();
  }
  absl::StatusOr<std::unique_ptr<zmq::socket_t>> router =
      MakeSocket(ctx_, SocketRole::kServiceRouter, options_, curve);
  if (!router.ok()) return router.status();
  absl::StatusOr<std::unique_ptr<zmq::socket_t>> pub =
      MakeSocket(ctx_, SocketRole::kServicePub, options_, curve);
  if (!pub.ok()) return pub.status();
  std::string router_ep, pub_ep;
  if (!options_.ipc_dir.empty()) {
    // Whoever can create or write the directory could put their socket in place of ours.
    if (absl::Status s = EnsurePrivateDir(
            options_.ipc_dir,
            {.what = "service ipc_dir",
             .fix_hint = "or choose another TransportOptions.ipc_dir (zrpc-service: --ipc-dir)"});
        !s.ok()) {
      return s;
    }
  }
  try {
    if (!options_.ipc_dir.empty()) {
      const std::string base =
          absl::StrCat("ipc://", options_.ipc_dir, "/", getpid(), "-", ipc_counter.fetch_add(1));
      router_ep = base + ".r";
      pub_ep = base + ".p";
      // Each socket gets its mode before it is registered: only this user may connect.
      for (auto [socket, ep] :
           {std::pair{router->get(), &router_ep}, std::pair{pub->get(), &pub_ep}}) {
        if (absl::Status s = Bind(*socket, *ep, socket == router->get() ? "request" : "notification");
            !s.ok()) {
          return s;
        }
        if (absl::Status s = SetSocketMode(IpcPath(*ep), kIpcSocketMode); !s.ok()) return s;
      }
    } else {
      absl::StatusOr<std::string> bind_host = BindHost(options_.bind_address);
      if (!bind_host.ok()) return bind_host.status();
      const std::string& bind = *bind_host;
      auto port = [](int p) { return p > 0 ? std::to_string(p) : std::string("*"); };
      if (absl::Status s = Bind(**router, absl::StrCat("tcp://", bind, ":", port(options_.port)),
                                "request");
          !s.ok()) {
        return s;
      }
      if (absl::Status s = Bind(**pub, absl::StrCat("tcp://", bind, ":", port(options_.pub_port)),
                                "notification");
          !s.ok()) {
        return s;
      }
      absl::StatusOr<std::string> advertise =
          AdvertisedHost(options_, (*router)->get(zmq::sockopt::last_endpoint));
      if (!advertise.ok()) return advertise.status();
      router_ep = absl::StrCat("tcp://", *advertise, ":",
                               PortOf((*router)->get(zmq::sockopt::last_endpoint)));
      pub_ep = absl::StrCat("tcp://", *advertise, ":",
                            PortOf((*pub)->get(zmq::sockopt::last_endpoint)));
      if (*advertise != Bracketed(options_.bind_address)) {
        ZRPC_LOG(kInfo, "service %s bound %s and %s; advertised as %s and %s", options_.host,
                 (*router)->get(zmq::sockopt::last_endpoint),
                 (*pub)->get(zmq::sockopt::last_endpoint), router_ep, pub_ep);
      }
    }
  } catch (const zmq::error_t& e) {
    return ZmqError("cannot bind the service's sockets", e);
  }
  router_ = *std::move(router);
  pub_ = *std::move(pub);
  reactor_.Watch(pub_.get(), [this] { return DrainSubscriptions(); });
  reactor_.Watch(
      router_.get(), [this] { return HandleRouter(); },
      // Replies waiting for a client whose queue was full go out as soon as libzmq says a
      // queue drained (its descriptor fires), not only on the retry timer.
      [this] {
        if (pending_.empty()) return false;
        FlushPending();
        return true;
      });
  WatchConnections();
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
  std::vector<std::string> keys;
  for (const auto& [key, call] : in_flight_) {
    if (call.connection_id == connection_id) keys.push_back(key);
  }
  for (const std::string& key : keys) {
    InFlight& call = in_flight_[key];
    call.ctx->Cancel();
    ReplyError(call.rid, call.msg_id, TransportClosedError());
    Release(call.caller, call.bytes);
    in_flight_.erase(key);
  }
}

void ServerEngine::WatchConnections() {
  struct rlimit limit;
  fd_limit_ = getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur != RLIM_INFINITY
                  ? static_cast<size_t>(limit.rlim_cur)
                  : 0;
  constexpr int kEvents = ZMQ_EVENT_ACCEPTED | ZMQ_EVENT_DISCONNECTED | ZMQ_EVENT_ACCEPT_FAILED;
  for (zmq::socket_t* socket : {router_.get(), pub_.get()}) {
    absl::StatusOr<std::unique_ptr<SocketMonitor>> m = SocketMonitor::Create(ctx_, *socket, kEvents);
    if (!m.ok()) {
      ZRPC_LOG(kWarning, "cannot watch the service's connections: %s", m.status().message());
      continue;
    }
    SocketMonitor* monitor = m->get();
    monitors_.push_back(*std::move(m));
    reactor_.Watch(monitor->events_socket(),
                   [this, monitor] {
                     const int events = monitor->Drain([this](uint16_t e) { OnConnectionEvent(e); });
                     return events < 0   ? Reactor::Read::kMore
                            : events > 0 ? Reactor::Read::kDrained
                                         : Reactor::Read::kIdle;
                   });
  }
}

void ServerEngine::OnConnectionEvent(uint16_t event) {
  // A service holds one descriptor per connection: tell the operator before accept() fails.
  if (event == ZMQ_EVENT_ACCEPTED) {
    ++connections_;
  } else if (event == ZMQ_EVENT_DISCONNECTED) {
    if (connections_ > 0) --connections_;
  }
  metrics_.connections().Set(static_cast<int64_t>(connections_));
  const absl::Time now = absl::Now();
  if (event == ZMQ_EVENT_ACCEPT_FAILED) {
    if (now - last_fd_warning_ > absl::Seconds(10)) {
      last_fd_warning_ = now;
      ZRPC_LOG(kError,
               "service %s cannot accept connections (%zu open; open-file limit %zu): raise "
               "the limit (ulimit -n, LimitNOFILE=) or find who holds idle connections",
               options_.host, connections_, fd_limit_);
    }
    return;
  }
  if (fd_limit_ > 0 && connections_ * 10 >= fd_limit_ * 8 && now - last_fd_warning_ > absl::Seconds(10)) {
    last_fd_warning_ = now;
    ZRPC_LOG(kWarning,
             "service %s has %zu connections, near its open-file limit of %zu: raise the limit "
             "(ulimit -n, LimitNOFILE=) or find who holds idle connections",
             options_.host, connections_, fd_limit_);
  }
}

Reactor::Read ServerEngine::DrainSubscriptions() {
  // The XPUB tells each subscription the first time any peer makes it (1 + prefix) and when the
  // last peer drops it (0 + prefix); libzmq keeps the filters itself, and cannot cut off one peer
  // or undo one peer's subscription (its manual mode could, but in libzmq 4.3.4 it may keep a
  // closed connection's pipe: a use-after-free). So a subscription of a form zrpc's listeners
  // never send ("TOPIC.PRIORITY") is logged and counted, and otherwise harmless: it only selects
  // what its own sender gets. Only more distinct subscriptions than kMaxSubscriptions (thousands
  // of bytes of libzmq's memory each) reset the socket, which drops them all; listeners
  // reconnect and subscribe again by themselves.
  zmq::message_t sub;
  bool got = false, bounded = true;
  std::string reset_why;
  for (int i = 0; i < 10000; ++i) {
    if (!pub_->recv(sub, zmq::recv_flags::dontwait)) {
      bounded = false;
      break;
    }
    got = true;
    const std::string_view frame = View(sub);
    if (sub.more() || frame.empty() || (frame[0] != 0 && frame[0] != 1)) {
      // Data a peer sent up to the XPUB: libzmq queues it for us; it is dropped here.
      ++ignored_upstream_;
      continue;
    }
    const std::string_view prefix = frame.substr(1);
    if (frame[0] == 0) {
      if (subscriptions_ > 0) --subscriptions_;
      continue;
    }
    ++subscriptions_;
    if (absl::Status form = ValidateSubscription(prefix); !form.ok()) {
      bad_subscriptions_.fetch_add(1);
      const char* peer = zmq_msg_gets(sub.handle(), "Peer-Address");
      ZRPC_LOG(kWarning, "notification socket: ignoring a subscription from %s: %s",
               peer != nullptr ? peer : "a local peer", form.message());
      // Junk bytes cost libzmq's trie far more than names do (a node's table spans the bytes
      // used): a few are harmless, a flood of them is reset like any flood.
      if (++bad_since_reset_ > kMaxBadSubscriptions) {
        reset_why = absl::StrCat("more than ", kMaxBadSubscriptions, " malformed subscriptions");
      }
    }
    if (subscriptions_ > kMaxSubscriptions) {
      reset_why = absl::StrCat("more than ", kMaxSubscriptions, " distinct subscriptions");
    }
  }
  if (!reset_why.empty()) {
    ResetPub(reset_why);
    return Reactor::Read::kMore;  // it used the socket after its last receive
  }
  if (!got) return Reactor::Read::kIdle;
  return bounded ? Reactor::Read::kMore : Reactor::Read::kDrained;
}

absl::Status ServerEngine::ValidateSubscription(std::string_view prefix) {
  // "TOPIC.PRIORITY", or "TOPIC." for every priority (PROTOCOL.md §9).
  const size_t dot = prefix.rfind('.');
  if (dot == std::string_view::npos ||
      (dot + 1 < prefix.size() && !ParsePriority(prefix.substr(dot + 1)).ok())) {
    return absl::InvalidArgumentError(
        "a subscription not of the form TOPIC.PRIORITY or TOPIC. (what listeners subscribe to)");
  }
  return ValidateName("subscription topic", prefix.substr(0, dot));
}

void ServerEngine::ResetPub(const std::string& why) {
  const std::string bound = pub_->get(zmq::sockopt::last_endpoint);
  pub_resets_.fetch_add(1);
  ZRPC_LOG(kWarning,
           "notification socket %s: %s; dropping every subscription (%zu held), listeners "
           "subscribe again",
           bound, why, subscriptions_);
  subscriptions_ = 0;
  bad_since_reset_ = 0;
  try {
    // Unbinding ends every connection accepted through the endpoint, and with them their
    // subscriptions; the same address is bound again at once.
    pub_->unbind(bound);
  } catch (const zmq::error_t& e) {
    ZRPC_LOG(kError, "notification socket %s: cannot unbind: %s", bound, e.what());
    return;
  }
  for (int attempt = 0;; ++attempt) {
    try {
      pub_->bind(bound);
      return;
    } catch (const zmq::error_t& e) {
      if (e.num() != EADDRINUSE || attempt >= 40) {
        ZRPC_LOG(kError, "notification socket %s: cannot bind again: %s", bound, e.what());
        return;
      }
    }
    absl::SleepFor(absl::Milliseconds(5));  // the old listener closes on libzmq's I/O thread
  }
}

Reactor::Read ServerEngine::HandleRouter() {
  std::vector<zmq::message_t>& frames = frames_;
  // Bounded so that replies and timers are not starved by a flood.
  for (int i = 0; i < 1000; ++i) {
    // Replies queued so far go out while the rest of a burst is handled.
    if (i > 0 && i % kIoFlushEvery == 0 && options_.io_thread_batch) LetIoThreadRun();
    try {
      const RecvResult got = RecvMessage(*router_, &frames, /*wait=*/false, /*max_frames=*/4);
      // Found empty: replies sent so far came before this receive, so the descriptor is enough.
      if (got == RecvResult::kNone) return i > 0 ? Reactor::Read::kDrained : Reactor::Read::kIdle;
      if (got == RecvResult::kTruncated) {
        ZRPC_LOG(kError, "a truncated message arrived on the service socket; dropped");
        return Reactor::Read::kMore;
      }
    } catch (const zmq::error_t& e) {
      if (e.num() != EAGAIN) ZRPC_LOG(kError, "receive failed: %s", e.what());
      return i > 0 ? Reactor::Read::kMore : Reactor::Read::kIdle;
    }
    std::string_view views[4];
    const size_t count = std::min<size_t>(frames.size(), 4);
    for (size_t f = 0; f < count; ++f) views[f] = View(frames[f]);
    const Inbound in = ClassifyInbound(std::span(views, count), options_.max_message_size);
    switch (in.action) {
      case Inbound::Action::kDrop:
        ZRPC_LOG(kWarning, "dropping %s", in.reason.message());
        metrics_.RecordRefused("other", RefusalReason::kBadHeader);
        continue;
      case Inbound::Action::kCancel: {
        auto it = in_flight_.find(InFlightKey(views[0], in.header.msg_id));
        if (it != in_flight_.end()) it->second.ctx->Cancel();
        continue;
      }
      case Inbound::Action::kRefuse:
        Refuse(std::string(views[0]), in.header, nullptr, "other", in.reason,
               in.reason.code() == absl::StatusCode::kResourceExhausted
                   ? RefusalReason::kTooLarge
                   : RefusalReason::kBadHeader);
        continue;
      case Inbound::Action::kRequest:
        break;
    }
    // The ZAP user id of the connection (CurveZMQ): who sent it.
    const char* user = keyring_ ? zmq_msg_gets(frames[1].handle(), "User-Id") : nullptr;
    if (keyring_ && (zap_ == nullptr || !zap_->running())) {
      // Fail closed: without its handler libzmq would admit any key from now on.
      if (!zap_down_logged_) {
        zap_down_logged_ = true;
        ZRPC_LOG(kError, "service %s: its authentication (ZAP) handler stopped; refusing every "
                         "request until it is restarted", options_.host);
      }
      if (in.header.kind != FrameKind::kCast) {
        ReplyError(std::string(views[0]), in.header.msg_id,
                   absl::UnavailableError(absl::StrCat(
                       "service ", options_.host, " cannot authenticate callers (its ZAP handler "
                       "stopped) and refuses to serve; try another instance")));
      }
      continue;
    }
    // The user id is the connection's key: authorized against the keyring as it is now, so a key
    // removed from authorized_keys loses its open connections too (within the re-read interval),
    // and a rotated identity gets its current groups.
    std::string identity;
    if (user != nullptr) {
      std::shared_ptr<const AuthorizedKey> who = keyring_->FindKey(user);
      if (who == nullptr) {
        const absl::Status revoked = absl::PermissionDeniedError(absl::StrCat(
            "service ", options_.host, ": the caller's CurveZMQ key ", KeyFingerprint(user),
            " is no longer in its authorized_keys; nothing was run"));
        ZRPC_LOG(kWarning, "refusing a request to %s: %s", ToAbsl(in.header.target),
                 revoked.message());
        metrics_.RecordRefused(in.header.target, RefusalReason::kNotAuthorized);
        if (in.header.kind != FrameKind::kCast) {
          ReplyError(std::string(views[0]), in.header.msg_id, revoked);
        }
        continue;
      }
      identity = who->identity;
    }
    // Without keys a caller is its address (Peer-Address; over ipc:// its process): CallerOf.
    const char* address = zmq_msg_gets(frames[1].handle(), "Peer-Address");
    HandleRequest(std::string(views[0]), in.header, in.body, std::move(identity),
                  address != nullptr ? std::string_view(address) : std::string_view());
  }
  return Reactor::Read::kMore;  // bounded: there may be more
}

std::string ServerEngine::CallerOf(std::string_view rid, std::string_view identity,
                                   std::string_view peer_address) {
  // Prefixed, so that no identity can pose as an address or a routing id.
  if (!identity.empty()) return absl::StrCat("id:", ToAbsl(identity));
  if (!peer_address.empty()) return absl::StrCat("addr:", ToAbsl(peer_address));
  return absl::StrCat("rid:", ToAbsl(rid));
}

void ServerEngine::Refuse(const std::string& rid, const Header& header, const Consumer* consumer,
                          std::string_view method, const absl::Status& status,
                          std::optional<RefusalReason> reason, bool answer) {
  const std::string_view topic = consumer != nullptr
                                     ? std::string_view(consumer->registration.topic)
                                     : std::string_view(header.target);
  const RequestKind kind = KindOf(header.kind, consumer);
  if (reason) {
    metrics_.RecordRefused(topic, *reason);
    if (reason == RefusalReason::kAdmission && header.kind == FrameKind::kCast) {
      dropped_casts_.fetch_add(1);
    }
  } else {
    ServerMethodStats* stats = StatsFor(topic, method, kind, /*registered=*/false);
    stats->RecordStarted();
    stats->RecordHandled(MetricCode::Of(status), 0, 0);
  }
  if (answer && header.kind != FrameKind::kCast) {
    ReplyError(rid, header.msg_id, status);
  } else if (reason == RefusalReason::kDuplicate) {
    ZRPC_LOG(kWarning, "%s", status.message());  // the first copy answers
  } else if (reason == RefusalReason::kExpired) {
    ZRPC_LOG(kDebug, "dropping a request to %s: %s", ToAbsl(header.target), status.message());
  } else {
    ZRPC_LOG(kWarning, "dropping cast to %s: %s", ToAbsl(header.target), status.message());
  }
}

void ServerEngine::HandleRequest(std::string rid, const Header& header, std::string_view body,
                                 std::string identity, std::string_view peer_address) {
  const bool is_cast = header.kind == FrameKind::kCast;
  if (!not_reading_.empty()) {
    // A connection that lost replies for not reading them: its requests are dropped for a while
    // (answering would only queue more), then served again.
    auto it = not_reading_.find(rid);
    if (it != not_reading_.end()) {
      if (absl::Now() < it->second) {
        dropped_requests_.fetch_add(1);
        metrics_.RecordRefused(header.target, RefusalReason::kAdmission);
        return;
      }
      not_reading_.erase(it);
    }
  }
  if (!is_cast && in_flight_.contains(InFlightKey(rid, header.msg_id))) {
    // Answering it would end the running call of that id at its caller: refuse quietly.
    ZRPC_LOG(kWarning, "dropping a call to %s: its client has a call of id %s running already",
             ToAbsl(header.target), ToAbsl(header.msg_id));
    metrics_.RecordRefused(header.target, RefusalReason::kDuplicate);
    return;
  }
  key_buffer_.assign(header.exchange);
  key_buffer_.push_back(' ');
  key_buffer_.append(header.target);
  auto it = consumers_.find(key_buffer_);
  if (it == consumers_.end()) {
    // An answer of dispatch, counted as handled (code NoConsumer) under the target asked for.
    return Refuse(rid, header, nullptr, "other", NoConsumerError(header.target), std::nullopt);
  }
  std::shared_ptr<Consumer> consumer = it->second;
  if (body.size() > kDecodeOnLoopBytes) {
    std::string caller = CallerOf(rid, identity, peer_address);
    return SubmitUndecoded(std::move(rid), header, consumer, body, std::move(identity),
                           std::move(caller));
  }
  size_t values = 0;
  absl::StatusOr<Message> message = DecodeMessageCounting(body, JsonLimits{}, &values);
  if (!message.ok()) {
    return Refuse(rid, header, consumer.get(), "other", message.status(), RefusalReason::kBadHeader);
  }
  // What the request holds while queued: its decoded values, not only its text.
  const size_t cost = body.size() + values * sizeof(Value);
  std::string caller = CallerOf(rid, identity, peer_address);
  const AdmissionDecision decision = DecideAdmission(
      {.message = *message,
       .is_cast = is_cast,
       .body_bytes = body.size(),
       .topic = consumer->registration.topic,
       .host = options_.host,
       .draining = consumer->connection->draining.load(),
       .duplicate = !message->unique_id.empty() && consumer->SeenBefore(message->unique_id),
       .dispatcher = consumer->dispatcher},
      [&](const Dispatcher::Target& t) { return Authorize(t, identity, message->method); },
      [&] { return AdmitLoad(caller, cost); });
  switch (decision.verdict) {
    case AdmissionDecision::Verdict::kIntrospect: {
      // Answered on the loop, and not counted as a request.
      const std::string endpoint = this->endpoint();
      absl::StatusOr<Value> answer =
          Introspect(*consumer, message->method,
                     ServiceView{options_.host, endpoint, consumers_,
                                 Object{{"queued_requests", queued_requests_},
                                        {"queued_bytes", queued_bytes_},
                                        {"connections", connections_},
                                        {"dropped_casts", dropped_casts_.load()},
                                        {"dropped_notifications", published_drops_.load()},
                                        {"subscription_resets", pub_resets_.load()},
                                        {"bad_subscriptions", bad_subscriptions_.load()},
                                        {"pending_reply_bytes", pending_bytes_},
                                        {"dropped_replies", dropped_replies_.load()},
                                        {"dropped_requests", dropped_requests_.load()}},
                                 &metrics_});
      if (!answer.ok()) return ReplyError(rid, header.msg_id, answer.status());
      return SendFinalReply(rid, header.msg_id, Reply{.result = *std::move(answer)});
    }
    case AdmissionDecision::Verdict::kAnswer:
    case AdmissionDecision::Verdict::kDrop:
      return Refuse(rid, header, consumer.get(), message->method, decision.status,
                    decision.refused, decision.verdict == AdmissionDecision::Verdict::kAnswer);
    case AdmissionDecision::Verdict::kRun:
      break;
  }
  const Dispatcher::Target* target = &decision.target;
  const absl::Time deadline =
      message->timeout_ms ? absl::Now() + absl::Milliseconds(*message->timeout_ms)
      : is_cast           ? absl::Now() + options_.cast_deadline
                          : absl::InfiniteFuture();
  Job job{consumer, header.kind, std::move(rid), std::string(header.msg_id), *std::move(message),
          std::make_shared<CallContext>(Context(), deadline, consumer->registration.topic),
          *target, cost};
  job.ctx->set_peer_identity(std::move(identity));
  job.caller = std::move(caller);
  job.arrived = absl::Now();
  job.stats = StatsFor(consumer->registration.topic, job.message.method,
                       KindOf(header.kind, consumer.get()), target->method != nullptr);
  if (target->endpoint != nullptr && target->endpoint->inline_handlers) {
    return Execute(job, /*on_loop=*/true);
  }
  Submit(std::move(job));
}


absl::Status ServerEngine::Authorize(const Dispatcher::Target& target, const std::string& identity,
                                     std::string_view method) {
  if (target.endpoint == nullptr) return absl::OkStatus();  // a raw pool member
  const std::vector<std::string>* lists[] = {&target.endpoint->allowed,
                                             target.method ? &target.method->allowed : nullptr};
  std::shared_ptr<const AuthorizedKey> who;
  bool looked_up = false;
  for (const std::vector<std::string>* allowed : lists) {
    if (allowed == nullptr || allowed->empty()) continue;
    if (identity.empty()) return NotAuthorizedError(identity, method);
    if (!looked_up && keyring_) {
      who = keyring_->FindIdentity(identity);
      looked_up = true;
    }
    const bool admitted = std::any_of(allowed->begin(), allowed->end(), [&](const std::string& a) {
      return a == identity ||
             (who && std::find(who->groups.begin(), who->groups.end(), a) != who->groups.end());
    });
    if (!admitted) return NotAuthorizedError(identity, method);
  }
  return absl::OkStatus();
}

const std::string& ServerEngine::InFlightKey(std::string_view rid, std::string_view msg_id) {
  // A MSG_ID is printable ASCII (wire.cc), so the NUL makes the key unambiguous. Built in a
  // buffer that keeps its capacity: looking a call up allocates nothing.
  in_flight_key_.assign(msg_id);
  in_flight_key_.push_back('\0');
  in_flight_key_.append(rid);
  return in_flight_key_;
}

absl::Status ServerEngine::AdmitLoad(const std::string& caller, size_t bytes) {
  // Bounded admission: this caller's work (over all its connections), everyone's queue, and the
  // bytes they hold.
  auto mine = peer_work_.find(caller);
  if (mine != peer_work_.end() && mine->second >= options_.max_in_flight_per_peer) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "too many requests queued or running from this caller (its identity, else its address; "
        "at most ", options_.max_in_flight_per_peer, "); retry later"));
  }
  if (queued_requests_ >= static_cast<size_t>(options_.max_queued_requests) ||
      queued_bytes_ + bytes > options_.max_queued_bytes) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "service ", options_.host, " is overloaded (", queued_requests_, " requests, ",
        queued_bytes_, " bytes queued or running; limits ", options_.max_queued_requests, " and ",
        options_.max_queued_bytes, "); retry later or elsewhere"));
  }
  return absl::OkStatus();
}

void ServerEngine::SubmitUndecoded(std::string rid, const Header& header,
                                   std::shared_ptr<Consumer> consumer, std::string_view body,
                                   std::string identity, std::string caller) {
  absl::Status admitted =
      consumer->connection->draining.load()
          ? absl::UnavailableError(absl::StrCat("service ", options_.host,
                                                " is shutting down and takes no new requests; "
                                                "try another instance"))
          : AdmitLoad(caller, body.size());
  if (!admitted.ok()) {
    // Counted and answered as DecideAdmission's refusals are (the body is decoded later).
    return Refuse(rid, header, consumer.get(), "other", admitted,
                  consumer->connection->draining.load() ? RefusalReason::kDraining
                                                        : RefusalReason::kAdmission);
  }
  Job job{std::move(consumer), header.kind, std::move(rid), std::string(header.msg_id), Message{},
          nullptr, Dispatcher::Target{nullptr, nullptr}, body.size()};
  job.ctx = std::make_shared<CallContext>(Context(), absl::InfiniteFuture(),
                                          job.consumer->registration.topic);
  job.ctx->set_peer_identity(std::move(identity));
  job.body = std::string(body);
  job.caller = std::move(caller);
  job.decoded = false;
  job.arrived = absl::Now();
  Submit(std::move(job));
}

bool ServerEngine::DecodeOnWorker(Job& job, const std::function<void(Reply, bool)>& send) {
  const bool is_cast = job.kind == FrameKind::kCast;
  const RequestKind kind = KindOf(job.kind, job.consumer.get());
  // Counted and answered as Refuse does on the loop (this is a worker thread: no loop state).
  auto refuse = [&](const absl::Status& status, std::optional<RefusalReason> reason,
                    bool answer = true) {
    if (reason) {
      metrics_.RecordRefused(job.ctx->topic(), *reason);
    } else {
      ServerMethodStats* stats = metrics_.ServerMethod(job.ctx->topic(), "other", kind, false);
      stats->RecordStarted();
      stats->RecordHandled(MetricCode::Of(status), 0, 0);
    }
    if (answer && !is_cast) {
      send(Reply{.failure = SerializeRemoteException(status), .ending = true}, true);
    } else if (reason == RefusalReason::kDuplicate) {
      ZRPC_LOG(kWarning, "%s", status.message());  // the first copy answers
    } else {
      ZRPC_LOG(kWarning, "dropping a request to %s: %s", job.ctx->topic(), status.message());
    }
    return false;
  };
  absl::StatusOr<Message> message = DecodeMessage(job.body);
  const size_t size = job.body.size();
  std::string().swap(job.body);
  TrimJsonParsers(size);
  if (!message.ok()) return refuse(message.status(), RefusalReason::kBadHeader);
  // Its load was admitted when it was queued (by size), and it was not draining then.
  const AdmissionDecision decision = DecideAdmission(
      {.message = *message,
       .is_cast = is_cast,
       .body_bytes = size,
       .topic = job.ctx->topic(),
       .host = options_.host,
       .draining = false,
       .duplicate = !message->unique_id.empty() && job.consumer->SeenBefore(message->unique_id),
       .dispatcher = job.consumer->dispatcher},
      [&](const Dispatcher::Target& t) {
        return Authorize(t, job.ctx->peer_identity(), message->method);
      },
      [] { return absl::OkStatus(); });
  if (decision.verdict != AdmissionDecision::Verdict::kRun) {
    // kIntrospect cannot come: a body this large is refused by DecideAdmission.
    return refuse(decision.verdict == AdmissionDecision::Verdict::kIntrospect
                      ? absl::InternalError("introspection on a worker")
                      : decision.status,
                  decision.refused, decision.verdict != AdmissionDecision::Verdict::kDrop);
  }
  job.target = decision.target;
  // A worker thread: the locked look-up (large bodies only).
  job.stats = metrics_.ServerMethod(job.ctx->topic(), message->method, kind,
                                    job.target.method != nullptr);
  job.ctx->set_deadline(message->timeout_ms ? job.arrived + absl::Milliseconds(*message->timeout_ms)
                        : is_cast           ? job.arrived + options_.cast_deadline
                                            : absl::InfiniteFuture());
  job.message = *std::move(message);
  job.decoded = true;
  return true;
}

void ServerEngine::Submit(Job job) {
  const bool is_cast = job.kind == FrameKind::kCast;
  ++peer_work_[job.caller];
  ++queued_requests_;
  queued_bytes_ += job.bytes;
  UpdateGauges();
  if (!is_cast) {
    in_flight_[InFlightKey(job.rid, job.msg_id)] =
        InFlight{job.rid, job.msg_id, job.ctx, job.consumer->connection->id, job.bytes, job.caller};
    ArmBeats();
  }
  std::shared_ptr<Consumer> consumer = job.consumer;
  consumer->connection->running.fetch_add(1);
  const std::string rid = job.rid, msg_id = job.msg_id, caller = job.caller;
  const size_t bytes = job.bytes;
  // One lane per caller: the pool serves callers in turn, and runs at most
  // max_workers_per_caller of one caller's requests at once (the rest wait in its lane).
  if (!workers_.Submit(caller, [this, job = std::move(job)]() mutable {
        Execute(job, /*on_loop=*/false);
        if (job.kind == FrameKind::kCast) {
          PostReply(Outbound{
              .rid = job.rid, .cast_done = true, .bytes = job.bytes, .caller = job.caller});
        }
        job.consumer->connection->running.fetch_sub(1);
      })) {
    consumer->connection->running.fetch_sub(1);
    Release(caller, bytes);
    if (!is_cast) {
      in_flight_.erase(InFlightKey(rid, msg_id));
      ReplyError(rid, msg_id, TransportClosedError());
    }
  }
}

void ServerEngine::Release(const std::string& caller, size_t bytes) {
  auto it = peer_work_.find(caller);
  if (it != peer_work_.end() && --it->second <= 0) peer_work_.erase(it);
  if (queued_requests_ > 0) --queued_requests_;
  queued_bytes_ = queued_bytes_ >= bytes ? queued_bytes_ - bytes : 0;
  UpdateGauges();
}

void ServerEngine::ClientGone(const std::string& rid) {
  int cancelled = 0;
  for (auto& [key, call] : in_flight_) {
    if (call.rid == rid && !call.ctx->cancelled()) {
      call.ctx->Cancel();
      ++cancelled;
    }
  }
  if (cancelled > 0) {
    ZRPC_LOG(kInfo, "a client went away: cancelled its %d call(s) still queued or running",
             cancelled);
  }
}

void ServerEngine::SendJobReply(Job& job, Reply reply, bool last, bool on_loop) {
  reply.msg_id = job.msg_id;
  // In the form the caller asked for: the bare reply object, or the 2.0 envelope.
  auto encode = [bare = job.message.bare_reply](const Reply& r) {
    return bare ? EncodeBareReply(r) : EncodeReply(r);
  };
  absl::StatusOr<std::string> body = encode(reply);
  if (body.ok() && body->size() > options_.max_message_size) {
    body = absl::ResourceExhaustedError(absl::StrCat("reply of ", body->size(),
                                                     " bytes exceeds the limit of ",
                                                     options_.max_message_size, " bytes"));
  }
  if (!body.ok()) {
    ZRPC_LOG(kWarning, "%s.%s: cannot send its result: %s", job.ctx->topic(),
             job.message.method, body.status().message());
    body = encode(Reply{.failure = SerializeRemoteException(body.status()),
                        .ending = reply.ending,
                        .msg_id = job.msg_id});
    if (!body.ok()) {
      body = encode(Reply{.failure = SerializeRemoteException(absl::InternalError(
                              "the service could not encode its reply")),
                          .ending = reply.ending,
                          .msg_id = job.msg_id});
    }
    if (!body.ok()) return;  // cannot happen: a fixed text and a validated id
  }
  if (on_loop) {
    // Straight to the socket: no copies of the ids, the header in a reused buffer.
    header_buffer_.clear();
    absl::StrAppend(&header_buffer_, ToAbsl(kProtocol), " ", ToAbsl(FrameKindName(FrameKind::kReply)),
                    " ", job.msg_id);
    SendFrames(job.rid, header_buffer_, *body);
    return;
  }
  PostReply(Outbound{job.rid, ControlHeader(FrameKind::kReply, job.msg_id), *std::move(body),
                     job.msg_id, last, /*tracked=*/true});
}

void ServerEngine::Execute(Job& job, bool on_loop) {
  const bool is_cast = job.kind == FrameKind::kCast;
  const bool is_stream = job.kind == FrameKind::kMultiCall;
  // Captures one pointer, so std::function keeps it in place (no allocation per request).
  struct SendTo {
    ServerEngine* engine;
    Job* job;
    bool on_loop;
  } to{this, &job, on_loop};
  std::function<void(Reply, bool)> send = [to = &to](Reply reply, bool last) {
    to->engine->SendJobReply(*to->job, std::move(reply), last, to->on_loop);
  };

  if (!job.decoded && !DecodeOnWorker(job, send)) return;
  absl::Status status;
  std::optional<Value> last;
  const absl::Time start = absl::Now();
  if (!on_loop && start > job.ctx->deadline()) {
    metrics_.RecordRefused(job.ctx->topic(), RefusalReason::kExpired);
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
    metrics_.RecordRefused(job.ctx->topic(), RefusalReason::kExpired);
    if (!is_cast) {
      send(Reply{.failure = SerializeRemoteException(
                     absl::CancelledError("cancelled by the caller before it started")),
                 .ending = true},
           true);
    }
    return;
  }
  if (job.stats != nullptr) job.stats->RecordStarted();
  status = RunHandler(job, send, &last);
  if (job.stats != nullptr) {
    const absl::Time end = absl::Now();
    // What its caller gets: a call cut by its deadline ends as a Timeout (below).
    const MetricCode code = status.ok() && !is_cast && end > job.ctx->deadline()
                                ? MetricCode::Of(ErrorKind::kTimeout)
                                : MetricCode::Of(status);
    job.stats->RecordHandled(code, absl::ToDoubleSeconds(start - job.arrived),
                             absl::ToDoubleSeconds(end - start));
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
    // One pointer captured: no allocation for the std::function.
    struct Emit {
      bool is_cast, is_stream;
      const std::function<void(Reply, bool)>* send;
      Job* job;
      std::optional<Value>* last;
    } emit{is_cast, is_stream, &send, &job, last};
    status = job.consumer->dispatcher->Run(job.target, *job.ctx, job.message, [e = &emit](Value v) {
      if (e->is_cast) return true;
      if (e->is_stream) {
        (*e->send)(Reply{.result = std::move(v)}, false);
        return !e->job->ctx->cancelled();
      }
      *e->last = std::move(v);
      return true;
    });
  }
  return status;
}

void ServerEngine::SendOutbound(const Outbound& out) {
  if (out.cast_done) return Release(out.caller, out.bytes);
  if (out.tracked) {
    auto it = in_flight_.find(InFlightKey(out.rid, out.msg_id));
    if (it == in_flight_.end()) {
      // Answered already (Close failed the call while its handler ran): one final reply only.
      ZRPC_LOG(kDebug, "dropping a reply to %s: the call was answered already", out.msg_id);
      return;
    }
    if (out.last) {
      Release(it->second.caller, it->second.bytes);
      in_flight_.erase(it);
    }
  }
  SendFrames(out.rid, out.header, out.body);
}

namespace {
// What a beat's header starts with (wire.cc BeatHeader).
constexpr std::string_view kBeatPrefix = "zrpc1 beat ";
// How long the requests of a connection that did not read its replies are dropped.
constexpr absl::Duration kNotReadingPause = absl::Seconds(1);
}  // namespace

size_t ServerEngine::ReplyBudget() const {
  // Room for a few of the largest replies, and never less than 16 MiB.
  return std::max<size_t>(size_t{16} << 20, 2 * options_.max_message_size);
}

void ServerEngine::SendFrames(std::string_view rid, std::string_view header, std::string_view body) {
  if (!router_) return;
  auto queued = pending_.find(ToAbsl(rid));
  if (queued != pending_.end()) {
    // Behind what waits already: in order. A beat is skipped (the client is not reading; its
    // call monitor hears the reply itself once it does).
    if (body.empty() && header.starts_with(kBeatPrefix)) return;
    Pending& p = queued->second;
    const size_t size = header.size() + body.size();
    if (p.bytes + size > ReplyBudget()) {
      // It does not read: drop what it has waiting (those calls end at its deadline or its call
      // monitor) and its new requests until it reads again.
      dropped_replies_.fetch_add(p.replies.size() + 1);
      ZRPC_LOG(kWarning,
               "client %s does not read its replies: dropping %zu waiting (%zu bytes, budget %zu) "
               "and its requests until it reads again",
               absl::CHexEscape(ToAbsl(rid.substr(0, 32))), p.replies.size() + 1, p.bytes + size,
               ReplyBudget());
      pending_bytes_ -= p.bytes;
      pending_.erase(queued);
      not_reading_[ToAbsl(rid)] = absl::Now() + kNotReadingPause;
      return;
    }
    p.replies.emplace_back(std::string(header), std::string(body));
    p.bytes += size;
    pending_bytes_ += size;
    return;
  }
  try {
    if (router_->send(zmq::buffer(rid), zmq::send_flags::sndmore | zmq::send_flags::dontwait)) {
      router_->send(zmq::buffer(header), zmq::send_flags::sndmore);
      router_->send(zmq::buffer(body), zmq::send_flags::none);
      return;
    }
    // libzmq's queue for this connection is full: wait in ours, counted.
    Pending& p = pending_[ToAbsl(rid)];
    p.replies.emplace_back(std::string(header), std::string(body));
    p.bytes += header.size() + body.size();
    pending_bytes_ += header.size() + body.size();
    ArmTimer();
  } catch (const zmq::error_t& e) {
    // EHOSTUNREACH: the client went away (it has timed out or closed).
    if (e.num() == EHOSTUNREACH) {
      // ROUTER_MANDATORY tells us the client left: stop what it still has running.
      ZRPC_LOG(kDebug, "dropping a reply: the client is gone");
      ClientGone(std::string(rid));
    } else {
      ZRPC_LOG(kWarning, "dropping a reply: %s", e.what());
    }
  }
}

void ServerEngine::FlushPending() {
  if (pending_.empty() || !router_) return;
  for (auto it = pending_.begin(); it != pending_.end();) {
    Pending& p = it->second;
    bool gone = false;
    while (!p.replies.empty()) {
      const auto& [header, body] = p.replies.front();
      try {
        if (!router_->send(zmq::buffer(it->first), zmq::send_flags::sndmore | zmq::send_flags::dontwait)) {
          break;  // still full
        }
        router_->send(zmq::buffer(header), zmq::send_flags::sndmore);
        router_->send(zmq::buffer(body), zmq::send_flags::none);
      } catch (const zmq::error_t&) {
        gone = true;  // EHOSTUNREACH: the client left; what waits is for nobody
      }
      if (gone) break;
      const size_t size = header.size() + body.size();
      p.bytes -= size;
      pending_bytes_ -= size;
      p.replies.pop_front();
    }
    if (gone) {
      const std::string rid = it->first;
      pending_bytes_ -= p.bytes;
      pending_.erase(it++);
      ClientGone(rid);
      continue;
    }
    if (p.replies.empty()) {
      pending_.erase(it++);
    } else {
      ++it;
    }
  }
}

void ServerEngine::ArmTimer() {
  // Pending replies are retried often (libzmq tells no one when a connection's queue has room);
  // beats come at their interval.
  constexpr absl::Duration kPendingRetry = absl::Milliseconds(2);
  const absl::Time at =
      std::min(beats_at_, pending_.empty() ? absl::InfiniteFuture() : absl::Now() + kPendingRetry);
  if (at == reactor_.timer()) return;
  reactor_.SetTimer(at, [this] { OnTimer(); });
}

void ServerEngine::OnTimer() {
  FlushPending();
  if (absl::Now() >= beats_at_) SendBeats();
  ArmTimer();
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
  // "TOPIC.PRIORITY": counted under TOPIC.
  TopicStats* topic = metrics_.Topic(
      std::string_view(subscription).substr(0, std::min(subscription.rfind('.'), subscription.size())));
  if (keyring_ && (zap_ == nullptr || !zap_->running())) {
    // Fail closed: a subscriber that connected after the handler stopped was not authenticated.
    published_drops_.fetch_add(1);
    topic->RecordNotificationDropped();
    return;
  }
  try {
    if (!pub_->send(zmq::buffer(subscription), zmq::send_flags::sndmore | zmq::send_flags::dontwait)) {
      published_drops_.fetch_add(1);
      topic->RecordNotificationDropped();
      return;
    }
    pub_->send(zmq::buffer(body), zmq::send_flags::none);
    topic->RecordNotificationPublished();
  } catch (const zmq::error_t& e) {
    published_drops_.fetch_add(1);
    topic->RecordNotificationDropped();
    ZRPC_LOG(kWarning, "publishing %s failed: %s", subscription, e.what());
  }
}

void ServerEngine::ArmBeats() {
  if (beats_at_ == absl::InfiniteFuture()) {
    beats_at_ = absl::Now() + options_.call_heartbeat_interval;
    ArmTimer();
  }
}

void ServerEngine::SendBeats() {
  // Each beat announces this service's interval: callers judge its silence by it.
  const int64_t interval_ms = absl::ToInt64Milliseconds(options_.call_heartbeat_interval);
  for (const auto& [key, call] : in_flight_) {
    metrics_.Topic(call.ctx->topic())->RecordCallBeat();
    SendOutbound(Outbound{call.rid, BeatHeader(call.msg_id, interval_ms), ""});
  }
  beats_at_ = in_flight_.empty() ? absl::InfiniteFuture()
                                 : absl::Now() + options_.call_heartbeat_interval;
  ArmTimer();
}

}  // namespace zrpc::internal
