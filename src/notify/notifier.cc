// SPDX-License-Identifier: Apache-2.0
// Notifications: events on the transport's PUB (plain listeners) and, for listener pools, casts
// to pool members of "notify~<topic>~<priority>". Publishers register as "publisher~<topic>".
#include "zrpc/notifier.h"

#include "base/keys.h"

#include <atomic>
#include <map>
#include <set>
#include <thread>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "codec/json_internal.h"
#include "base/log_internal.h"
#include "notify/event.h"
#include "transport_core.h"
#include "zmq/socket_factory.h"
#include "zmq/socket_monitor.h"
#include "zrpc/errors.h"
#include "base/thread.h"

namespace zrpc {
namespace {

using internal::ToAbsl;

constexpr Priority kPriorities[] = {Priority::kDebug, Priority::kInfo,  Priority::kWarn,
                                    Priority::kError, Priority::kCritical, Priority::kAudit,
                                    Priority::kSample};
constexpr absl::Duration kRediscovery = absl::Milliseconds(500);
// After a listener lost a publisher's connection, how soon it looks the publisher up again.
constexpr absl::Duration kReconnectDelay = absl::Milliseconds(100);

std::string PoolKey(std::string_view topic, Priority p) {
  return internal::NotifyTarget(topic, PriorityName(p));
}

std::string UtcNow() {
  return absl::FormatTime("%Y-%m-%d %H:%M:%E6S", absl::Now(), absl::UTCTimeZone());
}

// The event as a message dict (context flattened) — what travels on PUB and in pool casts.
Message EventMessage(const Context& ctx, std::string_view publisher_id, std::string_view event_type,
                     Priority priority, Value payload) {
  Message m;
  m.method = "notify";
  m.args = Object{{"message_id", NewUniqueId()},
                  {"publisher_id", std::string(publisher_id)},
                  {"event_type", std::string(event_type)},
                  {"priority", absl::AsciiStrToUpper(ToAbsl(PriorityName(priority)))},
                  {"payload", std::move(payload)},
                  {"timestamp", UtcNow()}};
  m.context = ctx;
  return m;
}

// "topic" → every priority; "topic.priority" → that one.
absl::StatusOr<std::vector<std::pair<std::string, std::vector<Priority>>>> ParseTargets(
    const std::vector<std::string>& targets) {
  std::vector<std::pair<std::string, std::vector<Priority>>> out;
  if (targets.empty()) return absl::InvalidArgumentError("a listener needs at least one target");
  for (const std::string& t : targets) {
    const size_t dot = t.rfind('.');
    std::string topic = t;
    std::vector<Priority> priorities(std::begin(kPriorities), std::end(kPriorities));
    if (dot != std::string::npos) {
      absl::StatusOr<Priority> p = ParsePriority(std::string_view(t).substr(dot + 1));
      if (!p.ok()) return p.status();
      topic = t.substr(0, dot);
      priorities = {*p};
    }
    if (absl::Status s = ValidateName("notification topic", topic); !s.ok()) return s;
    out.emplace_back(std::move(topic), std::move(priorities));
  }
  return out;
}

class NotifierImpl : public Notifier {
 public:
  NotifierImpl(std::shared_ptr<internal::TransportCore> core, std::string publisher_id,
               NotifierOptions options, std::vector<Registration> registrations)
      : core_(std::move(core)),
        publisher_id_(std::move(publisher_id)),
        options_(std::move(options)),
        registrations_(std::move(registrations)) {}
  ~NotifierImpl() override {
    for (const Registration& r : registrations_) core_->Unregister(r);
  }

  absl::Status Notify(const Context& ctx, std::string_view event_type, Priority priority,
                      Value payload) override {
    if (event_type.empty()) return absl::InvalidArgumentError("event_type must not be empty");
    Message m = EventMessage(ctx, publisher_id_, event_type, priority, std::move(payload));
    absl::StatusOr<std::string> body = EncodeMessage(m);
    if (!body.ok()) return body.status();
    if (body->size() > core_->options().max_message_size) {
      return absl::ResourceExhaustedError(absl::StrCat("event of ", body->size(),
                                                       " bytes exceeds the limit"));
    }
    for (const std::string& topic : options_.topics) {
      std::string subscription = absl::StrCat(topic, ".", ToAbsl(PriorityName(priority)));
      internal::ServerEngine& server = core_->server();
      if (!core_->reactor().RunAsync(
              [&server, subscription, body = *body] { server.Publish(subscription, body); })) {
        return TransportClosedError();
      }
      // Listener pools: one copy per pool, like a cast to a worker pool.
      absl::Status cast =
          core_->client().Cast(ctx, PoolKey(topic, priority), m, {.exchange = options_.exchange});
      if (!cast.ok() && !IsErrorKind(cast, ErrorKind::kNoConsumer)) {
        ZRPC_LOG(kWarning, "notification to listener pools of %s: %s", subscription, cast.message());
      }
    }
    return absl::OkStatus();
  }

  uint64_t dropped() const override { return core_->server().published_drops(); }

 private:
  std::shared_ptr<internal::TransportCore> core_;
  const std::string publisher_id_;
  const NotifierOptions options_;
  const std::vector<Registration> registrations_;
};

// Plain listener: a SUB socket on a thread of its own, connected to every publisher the
// matchmaker lists, re-asked every 500 ms so that new publishers are picked up.
class SubListener : public NotificationListener {
 public:
  SubListener(std::shared_ptr<internal::TransportCore> core,
              std::vector<std::pair<std::string, std::vector<Priority>>> targets,
              std::function<void(const Notification&)> handler, std::string exchange)
      : core_(std::move(core)), targets_(std::move(targets)), handler_(std::move(handler)), exchange_(std::move(exchange)) {
    thread_ = internal::StartThread([this] { Run(); });
  }
  ~SubListener() override {
    stop_ = true;
    thread_.join();
  }
  size_t publishers() const override { return connected_count_.load(); }

 private:
  void Run() {
    zmq::context_t ctx(1);
    internal::CurveSettings curve;
    if (core_->keyring()) {
      // The server key is set per publisher before each connect (below).
      curve = internal::CurveSettings{&core_->keyring()->own(), std::string(40, '0')};
    }
    absl::StatusOr<std::unique_ptr<zmq::socket_t>> made =
        internal::MakeSocket(ctx, internal::SocketRole::kListenerSub, core_->options(), curve);
    if (!made.ok()) {
      ZRPC_LOG(kError, "notification listener: %s", made.status().message());
      return;
    }
    zmq::socket_t& sub = **made;
    sub.set(zmq::sockopt::linger, 0);
    // libzmq closes a connection that brings a frame over ZMQ_MAXMSGSIZE (an event over this
    // process's max_message_size) as a protocol error, and never reconnects after a protocol
    // error: the listener would stay deaf to that publisher, silently. The monitor tells it a
    // connection ended; it then forgets the endpoint and the next discovery, at once, connects
    // it again (if it is still registered). Destroyed before `sub` (declared after it).
    absl::StatusOr<std::unique_ptr<internal::SocketMonitor>> monitor =
        internal::SocketMonitor::Create(ctx, sub, ZMQ_EVENT_DISCONNECTED);
    if (!monitor.ok()) {
      ZRPC_LOG(kWarning, "notification listener: %s (a publisher whose connection is cut is not "
                         "reconnected)", monitor.status().message());
    }
    absl::Time last_lost_log = absl::InfinitePast();
    std::set<std::string> wanted;  // exact subscriptions "topic.priority"
    for (const auto& [topic, priorities] : targets_) {
      for (Priority p : priorities) {
        const std::string s = absl::StrCat(topic, ".", ToAbsl(PriorityName(p)));
        wanted.insert(s);
        sub.set(zmq::sockopt::subscribe, s);
      }
    }
    std::set<std::string> connected, untrusted;
    // With CURVE: each connected publisher's key and the topic it was trusted for.
    std::map<std::string, std::pair<std::string, std::string>> publisher_keys;
    absl::Time next_discovery = absl::InfinitePast();
    while (!stop_) {
      try {
        if (absl::Now() >= next_discovery) {
          if (const std::shared_ptr<internal::Keyring>& keys = core_->keyring()) {
            // A publisher whose key was removed from authorized_keys, or lost its publish role
            // for the topic, is no longer listened to (revocation reaches open connections).
            for (auto it = publisher_keys.begin(); it != publisher_keys.end();) {
              const auto& [endpoint, key_and_topic] = *it;
              std::shared_ptr<const AuthorizedKey> entry = keys->FindKey(key_and_topic.first);
              if (entry != nullptr && MayPublish(*entry, key_and_topic.second)) {
                ++it;
                continue;
              }
              ZRPC_LOG(kWarning, "no longer listening to %s: its key %s %s", endpoint,
                       KeyFingerprint(key_and_topic.first),
                       entry == nullptr ? "was removed from the authorized keys"
                                        : "may no longer publish this topic");
              try {
                sub.disconnect(endpoint);
              } catch (const zmq::error_t&) {
              }
              connected.erase(endpoint);
              it = publisher_keys.erase(it);
            }
          }
          for (const auto& [topic, priorities] : targets_) {
            absl::StatusOr<std::vector<Registration>> pubs =
                core_->matchmaker().Resolve(exchange_, internal::PublisherKey(topic));
            if (!pubs.ok()) continue;
            for (const Registration& r : *pubs) {
              if (r.pub_endpoint.empty() || connected.contains(r.pub_endpoint)) continue;
              // Registries are untrusted: a host name here would block on a DNS lookup.
              if (absl::Status bad = ValidateRegistration(r); !bad.ok()) {
                if (untrusted.insert(r.pub_endpoint).second) {
                  ZRPC_LOG(kWarning, "not listening to a publisher: %s", bad.message());
                }
                continue;
              }
              if (const std::shared_ptr<internal::Keyring>& keys = core_->keyring()) {
                // CURVE: only publishers whose key this process trusts; the key is taken at
                // connect time, so one SUB serves publishers of different keys.
                // CURVE: only publishers whose key this process trusts *and* whose roles let
                // them publish this topic (publish=); anyone admitted may register as a publisher.
                std::shared_ptr<const AuthorizedKey> entry =
                    r.public_key.empty() ? nullptr : keys->FindKey(r.public_key);
                if (entry == nullptr || !MayPublish(*entry, topic)) {
                  if (untrusted.insert(r.pub_endpoint).second) {
                    ZRPC_LOG(kWarning, "not listening to %s at %s: %s", r.host, r.pub_endpoint,
                             r.public_key.empty() ? "it publishes without CURVE"
                             : entry == nullptr
                                 ? "its key is not in the authorized keys"
                                 : absl::StrCat("its key (identity ", entry->identity,
                                                ") has no publish= role for ", topic));
                  }
                  continue;
                }
                untrusted.erase(r.pub_endpoint);
                publisher_keys[r.pub_endpoint] = {r.public_key, topic};
                sub.set(zmq::sockopt::curve_serverkey, r.public_key);
              }
              connected.insert(r.pub_endpoint);
              sub.connect(r.pub_endpoint);
              ZRPC_LOG(kDebug, "listening to %s at %s", r.host, r.pub_endpoint);
            }
          }
          connected_count_ = connected.size();
          next_discovery = absl::Now() + kRediscovery;
        }
        zmq::pollitem_t items[2] = {
            {sub.handle(), 0, ZMQ_POLLIN, 0},
            {monitor.ok() ? (*monitor)->handle() : nullptr, 0, ZMQ_POLLIN, 0}};
        zmq::poll(items, monitor.ok() ? 2 : 1, std::chrono::milliseconds(100));
        if (items[1].revents & ZMQ_POLLIN) {
          (*monitor)->DrainWithAddress([&](uint16_t, std::string_view address) {
            const std::string endpoint(address);
            if (!connected.contains(endpoint)) return;
            if (absl::Now() - last_lost_log > absl::Seconds(10)) {
              last_lost_log = absl::Now();
              ZRPC_LOG(kWarning,
                       "notification listener: lost its connection to the publisher at %s (it "
                       "stopped, or sent an event over this process's max_message_size of %d "
                       "bytes, which ZeroMQ refuses); connecting again",
                       endpoint, static_cast<int64_t>(core_->options().max_message_size));
            }
            try {
              sub.disconnect(endpoint);  // libzmq's own reconnection, if any, ends here
            } catch (const zmq::error_t&) {
            }
            connected.erase(endpoint);
            next_discovery = std::min(next_discovery, absl::Now() + kReconnectDelay);
          });
        }
        std::vector<zmq::message_t> frames;
        while (internal::RecvMessage(sub, &frames) == internal::RecvResult::kMessage) {
          if (frames.size() != 2) continue;
          const std::string subscription(internal::View(frames[0]));
          if (!wanted.count(subscription)) continue;  // a prefix match of another priority
          absl::StatusOr<Message> m = DecodeMessage(internal::View(frames[1]));
          if (!m.ok()) {
            ZRPC_LOG(kWarning, "dropping a malformed event on %s: %s", subscription, m.status().message());
            continue;
          }
          absl::StatusOr<Notification> n = internal::NotificationFromMessage(
              *m, subscription.substr(0, subscription.rfind('.')));
          if (!n.ok()) continue;
          try {
            handler_(*n);
          } catch (const std::exception& e) {
            ZRPC_LOG(kWarning, "notification handler threw: %s", e.what());
          }
        }
      } catch (const zmq::error_t& e) {
        ZRPC_LOG(kWarning, "notification listener: %s", e.what());
        absl::SleepFor(absl::Milliseconds(100));
      }
    }
  }

  std::shared_ptr<internal::TransportCore> core_;
  const std::vector<std::pair<std::string, std::vector<Priority>>> targets_;
  std::function<void(const Notification&)> handler_;
  const std::string exchange_;
  std::atomic<bool> stop_{false};
  std::atomic<size_t> connected_count_{0};
  std::thread thread_;
};

// Pool listener: pool members of "notify~<topic>~<priority>" on a connection of its own.
class PoolListener : public NotificationListener {
 public:
  explicit PoolListener(std::unique_ptr<Connection> conn) : conn_(std::move(conn)) {}
  ~PoolListener() override { conn_->Close(); }
  size_t publishers() const override { return 0; }

 private:
  std::unique_ptr<Connection> conn_;
};

}  // namespace

namespace internal {

absl::StatusOr<Notification> NotificationFromMessage(const Message& m, std::string topic) {
  Notification n;
  auto str = [&](const char* key) {
    const Value* v = m.args.Find(key);
    return v && v->is_string() ? v->AsString() : std::string();
  };
  n.message_id = str("message_id");
  n.publisher_id = str("publisher_id");
  n.event_type = str("event_type");
  n.timestamp = str("timestamp");
  absl::StatusOr<Priority> p = ParsePriority(str("priority"));
  if (!p.ok()) return p.status();
  n.priority = *p;
  if (const Value* payload = m.args.Find("payload")) n.payload = *payload;
  n.topic = std::move(topic);
  n.context = m.context;
  return n;
}

}  // namespace internal

std::string_view PriorityName(Priority priority) {
  switch (priority) {
    case Priority::kDebug: return "debug";
    case Priority::kInfo: return "info";
    case Priority::kWarn: return "warn";
    case Priority::kError: return "error";
    case Priority::kCritical: return "critical";
    case Priority::kAudit: return "audit";
    case Priority::kSample: return "sample";
  }
  return "info";
}

absl::StatusOr<Priority> ParsePriority(std::string_view name) {
  const std::string lower = absl::AsciiStrToLower(ToAbsl(name));
  if (lower == "warning") return Priority::kWarn;
  for (Priority p : kPriorities) {
    if (lower == PriorityName(p)) return p;
  }
  return absl::InvalidArgumentError(absl::StrCat(
      "unknown notification priority \"", ToAbsl(name),
      "\"; use one of debug, info, warn, error, critical, audit, sample"));
}

absl::Status Notifier::Notify(const Context& context, std::string_view event_type,
                              std::string_view priority, Value payload) {
  absl::StatusOr<Priority> p = ParsePriority(priority);
  if (!p.ok()) return p.status();
  return Notify(context, event_type, *p, std::move(payload));
}

absl::StatusOr<std::unique_ptr<Notifier>> Notifier::Create(Transport& transport,
                                                           std::string publisher_id,
                                                           NotifierOptions options) {
  std::shared_ptr<internal::TransportCore> t = transport.core_for_internal_use();
  if (t == nullptr) return absl::InvalidArgumentError("Notifier needs a transport made by Transport::Create");
  if (publisher_id.empty()) return absl::InvalidArgumentError("publisher_id must not be empty");
  if (options.topics.empty()) return absl::InvalidArgumentError("a notifier needs at least one topic");
  const std::string exchange = options.exchange.empty() ? t->options().exchange : options.exchange;
  for (const std::string& topic : options.topics) {
    if (absl::Status s = ValidateName("notification topic", topic); !s.ok()) return s;
    if (topic.find('.') != std::string::npos) {
      return absl::InvalidArgumentError(absl::StrCat("notification topic \"", topic,
                                                     "\" must not contain '.' (it separates the priority)"));
    }
  }
  internal::ServerEngine& io = t->server();
  if (absl::Status s = t->reactor().RunSync([&io] { return io.EnsureBound(); }); !s.ok()) return s;
  std::vector<Registration> regs;
  for (const std::string& topic : options.topics) {
    Registration r;
    r.exchange = exchange;
    r.topic = internal::PublisherKey(topic);
    r.host = t->options().host;
    r.endpoint = io.endpoint();
    r.pub_endpoint = io.pub_endpoint();
    if (t->keyring()) r.public_key = t->keyring()->own().public_key;
    if (absl::Status s = t->Register(r); !s.ok()) return s;
    regs.push_back(std::move(r));
  }
  return std::unique_ptr<Notifier>(
      new NotifierImpl(std::move(t), std::move(publisher_id), std::move(options), std::move(regs)));
}

absl::StatusOr<std::unique_ptr<NotificationListener>> NotificationListener::Create(
    Transport& transport, std::vector<std::string> targets,
    std::function<void(const Notification&)> handler, ListenerOptions options) {
  if (!handler) return absl::InvalidArgumentError("a listener needs a handler");
  absl::StatusOr<std::vector<std::pair<std::string, std::vector<Priority>>>> parsed = ParseTargets(targets);
  if (!parsed.ok()) return parsed.status();
  const std::string exchange =
      options.exchange.empty() ? transport.options().exchange : options.exchange;
  if (options.pool.empty()) {
    std::shared_ptr<internal::TransportCore> core = transport.core_for_internal_use();
    if (core == nullptr) {
      return absl::InvalidArgumentError("a listener needs a transport made by Transport::Create");
    }
    return std::unique_ptr<NotificationListener>(
        new SubListener(std::move(core), *std::move(parsed), std::move(handler), exchange));
  }
  absl::StatusOr<std::unique_ptr<Connection>> conn = transport.CreateConnection();
  if (!conn.ok()) return conn.status();
  auto shared = std::make_shared<std::function<void(const Notification&)>>(std::move(handler));
  for (const auto& [topic, priorities] : *parsed) {
    for (Priority p : priorities) {
      absl::Status s = (*conn)->JoinConsumerPool(
          [shared, topic = topic](const Message& m) {
            absl::StatusOr<Notification> n = internal::NotificationFromMessage(m, topic);
            if (n.ok()) (*shared)(*n);
          },
          options.pool, PoolKey(topic, p), exchange);
      if (!s.ok()) return s;
    }
  }
  if (absl::Status s = (*conn)->ConsumeInThread(); !s.ok()) return s;
  return std::unique_ptr<NotificationListener>(new PoolListener(*std::move(conn)));
}

}  // namespace zrpc
