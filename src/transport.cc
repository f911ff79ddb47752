// SPDX-License-Identifier: Apache-2.0
// Transport and Connection: glue between the public API, the client engine (client/), the I/O
// thread (server/server_engine.h on zmq/reactor.h), the worker pool and the matchmaker.
#include "zrpc/transport.h"

#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <map>
#include <thread>

#include "absl/container/flat_hash_set.h"
#include "absl/base/call_once.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "transport_core.h"
#include "codec/json_internal.h"
#include "base/log_internal.h"
#include "codec/wire.h"
#include "matchmaker/backend.h"
#include "server/worker_pool.h"
#include "zmq/socket_factory.h"
#include "zrpc/errors.h"
#include "base/thread.h"

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
  if (o.call_heartbeat_interval < kMinCallHeartbeatInterval ||
      o.call_heartbeat_interval > kMaxCallHeartbeatInterval) {
    // The range clients clamp a registration's heartbeat_ms to (zrpc/matchmaker.h).
    return absl::InvalidArgumentError(absl::StrCat(
        "call_heartbeat_interval must be ", absl::FormatDuration(kMinCallHeartbeatInterval), "..",
        absl::FormatDuration(kMaxCallHeartbeatInterval)));
  }
  if (o.max_message_size < 1024) return absl::InvalidArgumentError("max_message_size must be >= 1024");
  if (o.max_in_flight_per_peer < 1) return absl::InvalidArgumentError("max_in_flight_per_peer must be >= 1");
  if (o.max_workers_per_caller < 0) return absl::InvalidArgumentError("max_workers_per_caller must be >= 0");
  if (o.max_queued_requests < 1) return absl::InvalidArgumentError("max_queued_requests must be >= 1");
  if (o.max_queued_bytes < o.max_message_size) {
    return absl::InvalidArgumentError("max_queued_bytes must be >= max_message_size");
  }
  if (o.cast_deadline <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("cast_deadline must be positive");
  }
  if (o.duplicate_window < 16) return absl::InvalidArgumentError("duplicate_window must be >= 16");
  if (o.security.enabled() && o.security.authorized_keys_file.empty()) {
    return absl::InvalidArgumentError(
        "security.key_file is set but security.authorized_keys_file is not: with CURVE a process "
        "admits and trusts only the keys listed there");
  }
  if (!o.security.enabled() && !o.security.authorized_keys_file.empty()) {
    return absl::InvalidArgumentError(
        "security.authorized_keys_file is set but security.key_file is not: give this process "
        "its own key pair (zrpc keygen NAME) too");
  }
  if (!o.insecure && !o.security.enabled() && (o.bind_address == "*" || o.bind_address == "0.0.0.0" ||
                      o.bind_address == "::" || o.bind_address == "[::]")) {
    return absl::InvalidArgumentError(absl::StrCat(
        "binding every interface (\"", o.bind_address,
        "\") needs CurveZMQ keys (TransportOptions.security; zrpc-service --key-file, "
        "--authorized-keys) or TransportOptions.insecure = true (zrpc-service: --insecure): "
        "without keys anyone who can reach the port can call every method; bind one private "
        "address instead, or firewall the port"));
  }
  if (o.ipc_dir.size() > 64) {
    return absl::InvalidArgumentError("ipc_dir is too long for Unix socket paths (at most 64 bytes)");
  }
  return absl::OkStatus();
}

}  // namespace

class ConnectionImpl : public Connection {
 public:
  explicit ConnectionImpl(std::shared_ptr<TransportCore> core);
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
  // The transport is closing: close, then never touch it again.
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
  std::shared_ptr<TransportCore> core_;  // kept for ForgetConnection; null once detached
  TransportCore* transport_ ABSL_GUARDED_BY(mu_);
  std::shared_ptr<ConnectionState> state_;
  std::vector<std::shared_ptr<Consumer>> consumers_ ABSL_GUARDED_BY(mu_);
  bool consuming_ ABSL_GUARDED_BY(mu_) = false;
  bool closed_ ABSL_GUARDED_BY(mu_) = false;
};

// The public facade: every call goes to the shared core.
class TransportImpl : public Transport {
 public:
  explicit TransportImpl(std::shared_ptr<TransportCore> core) : core_(std::move(core)) {}
  ~TransportImpl() override { core_->Close(); }

  absl::StatusOr<std::unique_ptr<Connection>> CreateConnection() override {
    if (core_->closed()) return TransportClosedError();
    return std::unique_ptr<Connection>(std::make_unique<ConnectionImpl>(core_));
  }
  absl::StatusOr<Value> Call(const Context& context, std::string_view topic, Message message,
                             CallOptions options) override {
    return core_->client().Call(context, topic, std::move(message), options);
  }
  absl::StatusOr<std::unique_ptr<ReplyStream>> MultiCall(const Context& context,
                                                         std::string_view topic, Message message,
                                                         CallOptions options) override {
    return core_->client().MultiCall(context, topic, std::move(message), options, core_);
  }
  void CallAsync(const Context& context, std::string_view topic, Message message,
                 std::function<void(absl::StatusOr<Value>)> done, CallOptions options) override {
    core_->client().CallAsync(context, topic, std::move(message), std::move(done), options);
  }
  std::vector<absl::StatusOr<Value>> CallMany(const Context& context, std::string_view topic,
                                              std::vector<Message> messages,
                                              CallManyOptions options) override {
    return core_->client().CallMany(context, topic, std::move(messages), options);
  }
  absl::Status Cast(const Context& context, std::string_view topic, Message message,
                    CastOptions options) override {
    return core_->client().Cast(context, topic, std::move(message), options);
  }
  absl::Status FanoutCast(const Context& context, std::string_view topic, Message message,
                          CastOptions options) override {
    return core_->client().FanoutCast(context, topic, std::move(message), options);
  }
  absl::Status CastToServer(const Context& context, std::string_view endpoint,
                            std::string_view topic, Message message, CastOptions options) override {
    return core_->client().CastToServer(context, endpoint, topic, std::move(message), options, false);
  }
  absl::Status FanoutCastToServer(const Context& context, std::string_view endpoint,
                                  std::string_view topic, Message message,
                                  CastOptions options) override {
    return core_->client().CastToServer(context, endpoint, topic, std::move(message), options, true);
  }
  void Close() override { core_->Close(); }
  std::string endpoint() const override { return core_->server().endpoint(); }
  std::string pub_endpoint() const override { return core_->server().pub_endpoint(); }
  std::string MetricsText() const override { return core_->metrics().Text(); }
  int metrics_port() const override { return core_->metrics().listening_port(); }
  const TransportOptions& options() const override { return core_->options(); }
  Matchmaker& matchmaker() override { return core_->matchmaker(); }
  std::shared_ptr<TransportCore> core_for_internal_use() override { return core_; }

 private:
  std::shared_ptr<TransportCore> core_;
};

namespace {

// Whether this process may run a thread as SCHED_BATCH. libzmq aborts when the policy it was
// given cannot be set on its thread, so it is tried first on a thread of our own.
bool BatchPolicyAllowed() {
  static const bool allowed = [] {
    bool ok = false;
    std::thread probe = StartThread([&ok] {
      sched_param param{};
      ok = pthread_setschedparam(pthread_self(), SCHED_BATCH, &param) == 0;
    });
    probe.join();
    return ok;
  }();
  return allowed;
}

// The context, with one I/O thread: SCHED_BATCH when `batch` (TransportOptions::io_thread_batch).
zmq::context_t NewContext(bool batch) {
  zmq::context_t ctx(1);
  if (batch && BatchPolicyAllowed()) {
    // Before the first socket: the I/O thread starts with it and takes the policy then.
    ctx.set(zmq::ctxopt::thread_sched_policy, SCHED_BATCH);
  }
  return ctx;
}

}  // namespace

TransportCore::TransportCore(TransportOptions options, std::shared_ptr<Keyring> keyring)
    : options_(std::move(options)),
      keyring_(std::move(keyring)),
      ctx_(NewContext(options_.io_thread_batch)),
      // One lane per caller; a caller holds at most half of the threads unless told otherwise.
      workers_(options_.thread_pool_size, options_.max_workers_per_caller > 0
                                              ? options_.max_workers_per_caller
                                              : std::max(1, options_.thread_pool_size / 2)),
      server_(ctx_, options_, workers_, reactor_, metrics_, keyring_),
      client_(ctx_, options_, workers_, metrics_, keyring_) {}

TransportCore::~TransportCore() {
  Close();
  ctx_.close();  // every socket is closed by now: the last holder of the core is gone
}

absl::StatusOr<std::shared_ptr<TransportCore>> TransportCore::Create(TransportOptions options) {
  if (absl::Status s = ValidateOptions(options); !s.ok()) return s;
  std::shared_ptr<Keyring> keyring;
  if (options.security.enabled()) {
    absl::StatusOr<std::shared_ptr<Keyring>> loaded = Keyring::Load(options.security);
    if (!loaded.ok()) return loaded.status();
    keyring = *std::move(loaded);
  }
  std::shared_ptr<TransportCore> core(new TransportCore(std::move(options), std::move(keyring)));
  if (!core->options_.metrics_listen.empty()) {
    if (absl::Status s = core->metrics_.Listen(core->options_.metrics_listen,
                                               core->options_.insecure);
        !s.ok()) {
      return s;
    }
  }
  if (absl::Status s = core->Init(); !s.ok()) return s;
  return core;
}

bool TransportCore::closed() {
  absl::MutexLock lock(&mu_);
  return closed_;
}

void TransportCore::AddConnection(ConnectionImpl* c) {
  absl::MutexLock lock(&mu_);
  connections_.insert(c);
}

void TransportCore::ForgetConnection(ConnectionImpl* c) {
  absl::MutexLock lock(&mu_);
  connections_.erase(c);
}

absl::Status TransportCore::Init() {
  if (keyring_) {
    // Before anything binds: libzmq admits every CURVE key when no handler answers.
    absl::StatusOr<std::unique_ptr<ZapHandler>> zap = ZapHandler::Start(ctx_, keyring_);
    if (!zap.ok()) {
      return absl::FailedPreconditionError(absl::StrCat(
          "cannot start the CurveZMQ authentication (ZAP) handler, so this process will not "
          "serve: ", zap.status().message()));
    }
    zap_ = *std::move(zap);
    server_.SetAuthenticator(zap_.get());
  }
  if (options_.matchmaker_instance) {
    matchmaker_ = options_.matchmaker_instance;
  } else {
    absl::StatusOr<std::unique_ptr<Matchmaker>> mm =
        CreateMatchmakerWithKeys(options_.matchmaker, keyring_);
    if (!mm.ok()) return mm.status();
    matchmaker_ = *std::move(mm);
  }
  client_.Start(*matchmaker_);
  absl::StatusOr<std::unique_ptr<WatchHandle>> watch = matchmaker_->Watch([this] {
    // Stale, not gone: refetched on the next send, still used while the matchmaker is away.
    client_.routes().MarkAllStale();
  });
  if (watch.ok()) {
    watch_ = *std::move(watch);
  } else {
    ZRPC_LOG(kWarning, "matchmaker watch unavailable (%s); routes refresh every %s",
             watch.status().message(), absl::FormatDuration(RouteTable::kTtl));
  }
  return reactor_.Start([this] { server_.OnWake(); }, [this] { server_.OnExit(); });
}

absl::Status TransportCore::Register(const Registration& r) {
  if (keyring_) {
    // Clients that share this authorized_keys skip an instance whose key may not serve the topic:
    // say so where the operator looks first, instead of a silent NoConsumer elsewhere.
    std::shared_ptr<const AuthorizedKey> own = keyring_->FindKey(keyring_->own().public_key);
    if (own == nullptr || !MayServe(*own, r.topic)) {
      ZRPC_LOG(kWarning,
               "this process's key %s %s: clients that use this authorized_keys will not use it "
               "for \"%s\" (README \"Key roles\")",
               KeyFingerprint(keyring_->own().public_key),
               own == nullptr ? "is not in its own authorized_keys"
                              : absl::StrCat("(identity ", own->identity,
                                             ") has no role that covers this registration"),
               r.topic);
    }
  }
  if (absl::Status s = matchmaker_->Register(r); !s.ok()) return s;
  absl::MutexLock lock(&mu_);
  if (registrations_++ == 0 && !heartbeat_thread_.joinable() && !closed_) {
    heartbeat_thread_ = StartThread([this] { HeartbeatLoop(); });
  }
  return absl::OkStatus();
}

void TransportCore::Unregister(const Registration& r) {
  absl::Status s = matchmaker_->Unregister(r);
  if (!s.ok()) ZRPC_LOG(kWarning, "cannot unregister %s: %s", r.Key(), s.message());
  absl::MutexLock lock(&mu_);
  --registrations_;
}

void TransportCore::HeartbeatLoop() {
  const absl::Duration interval =
      std::min(options_.matchmaker_heartbeat_interval, matchmaker_->HeartbeatInterval());
  // A failure is logged when it starts or changes, and its end once: not once per beat (a
  // wrong-typed Redis key or a refused registration fails every beat the same way).
  std::string failing;
  absl::MutexLock lock(&mu_);
  while (!closed_) {
    mu_.AwaitWithTimeout(absl::Condition(&closed_), interval);
    if (closed_) return;
    mu_.Unlock();
    absl::Status s = matchmaker_->Heartbeat();
    if (!s.ok() && s.message() != failing) {
      failing = std::string(s.message());
      ZRPC_LOG(kWarning, "matchmaker heartbeat failed: %s (logged again when it changes)", failing);
    } else if (s.ok() && !failing.empty()) {
      failing.clear();
      ZRPC_LOG(kInfo, "matchmaker heartbeats succeed again");
    }
    mu_.Lock();
  }
}

void TransportCore::Close() {
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
  client_.Stop();
  reactor_.Stop();
  ctx_.shutdown();  // callers blocked in ZeroMQ return TransportClosed now
  client_.Shutdown();
  workers_.Stop();
  zap_.reset();  // its thread has seen the context shut down
}

ConnectionImpl::ConnectionImpl(std::shared_ptr<TransportCore> core)
    : core_(std::move(core)), transport_(core_.get()), state_(std::make_shared<ConnectionState>()) {
  state_->id = next_connection_id.fetch_add(1);
  core_->AddConnection(this);
}

ConnectionImpl::~ConnectionImpl() {
  Close();
  core_->ForgetConnection(this);
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
  // A direct topic "topic.host" belongs to that host (the seed bound direct consumers to their
  // own host): a service may not take another host's traffic.
  if (const size_t dot = topic.find('.'); dot != std::string_view::npos) {
    const std::string_view host = topic.substr(dot + 1);
    if (host != to.host) {
      return absl::InvalidArgumentError(absl::StrCat(
          "\"", ToAbsl(topic), "\" is a direct topic of host \"", ToAbsl(host),
          "\", but this transport's host is \"", to.host,
          "\"; consume \"", ToAbsl(topic.substr(0, dot)), ".", to.host, "\" instead"));
    }
  }
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
  r.accepts = {std::string(kBareMessageForm)};  // the decoder takes either form
  if (transport_->keyring()) r.public_key = transport_->keyring()->own().public_key;
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
  ServerEngine& io = transport_->server();
  absl::Status bound = transport_->reactor().RunSync([&]() -> absl::Status {
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
    absl::Status s = transport_->Register(c->registration);
    if (!s.ok()) {
      return absl::UnavailableError(absl::StrCat("cannot register ", c->key, " with the matchmaker: ",
                                                 s.message()));
    }
  }
  return absl::OkStatus();
}

void ConnectionImpl::Close() {
  absl::MutexLock lock(&mu_);
  if (closed_) return;
  closed_ = true;
  if (transport_ == nullptr) return;
  TransportCore* t = transport_;
  const absl::Duration bound = t->options().close_timeout;
  // Drain: health says not serving and new requests are refused (clients try another instance)
  // while registrations are withdrawn and running handlers finish.
  state_->draining.store(true);
  if (consuming_) {
    for (const auto& c : consumers_) t->Unregister(c->registration);
  }
  // Let running handlers finish, within the bound.
  const absl::Time until = absl::Now() + bound;
  while (state_->running.load() > 0 && absl::Now() < until) absl::SleepFor(absl::Milliseconds(2));
  (void)t->reactor().RunSync([&] {
    t->server().RemoveConsumers(state_->id);
    return absl::OkStatus();
  });
  if (state_->running.load() > 0) {
    ZRPC_LOG(kWarning, "closing with %d handlers still running: failing their calls",
             state_->running.load());
    (void)t->reactor().RunSync([&] {
      t->server().AbandonCalls(state_->id);
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
  internal::RaiseOpenFileLimit();  // each connection a service accepts holds a descriptor
  absl::StatusOr<std::shared_ptr<internal::TransportCore>> core =
      internal::TransportCore::Create(std::move(options));
  if (!core.ok()) return core.status();
  return std::unique_ptr<Transport>(std::make_unique<internal::TransportImpl>(*std::move(core)));
}

namespace {
sigset_t ShutdownSignals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  return set;
}
}  // namespace

void BlockShutdownSignals() {
  const sigset_t set = ShutdownSignals();
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
}

int WaitForShutdownSignal() {
  const sigset_t set = ShutdownSignals();
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  int sig = 0;
  while (sigwait(&set, &sig) != 0) {
  }
  return sig;
}

}  // namespace zrpc
