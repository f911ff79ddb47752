// SPDX-License-Identifier: Apache-2.0
// zrpc/notifier.h — events: the seed's notifier, over the service's PUB socket.
//
//   auto notifier = zrpc::Notifier::Create(*transport, "compute.node1");   // topics: notifications
//   (*notifier)->Info(ctx, "instance.created", zrpc::Object{{"id", "i-1"}});
//
//   auto listener = zrpc::NotificationListener::Create(
//       *transport, {"notifications.info", "notifications.error"},
//       [](const zrpc::Notification& n) { std::cout << n.event_type << "\n"; });
//
// Each event is {message_id, publisher_id, event_type, priority, payload, timestamp}, published
// under "<topic>.<priority>". Listeners find publishers through the matchmaker and pick up
// publishers that appear later. PUB/SUB keeps no history: a listener that joins late misses what
// was published before it subscribed (and in the moment of connecting). Listeners with a `pool`
// instead share the events: each pool gets each event once, delivered like a cast to a worker
// pool (reliable, not PUB/SUB). Thread-safe.
#ifndef ZRPC_NOTIFIER_H_
#define ZRPC_NOTIFIER_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "zrpc/context.h"
#include "zrpc/transport.h"
#include "zrpc/value.h"

namespace zrpc {

enum class Priority { kDebug, kInfo, kWarn, kError, kCritical, kAudit, kSample };

// "debug", "info", "warn", "error", "critical", "audit", "sample".
std::string_view PriorityName(Priority priority);
// The priority named `name` (any case; "warning" is "warn"). INVALID_ARGUMENT listing the
// priorities for anything else.
absl::StatusOr<Priority> ParsePriority(std::string_view name);

// One event as a listener receives it.
struct Notification {
  std::string message_id;
  std::string publisher_id;
  std::string event_type;
  Priority priority = Priority::kInfo;
  Value payload;
  std::string timestamp;  // UTC, "YYYY-MM-DD HH:MM:SS.ffffff" (the seed's str(utcnow()))
  std::string topic;      // e.g. "notifications"
  Context context;
};

struct NotifierOptions {
  // Each event goes to every topic here (the seed's notification_topics).
  std::vector<std::string> topics = {"notifications"};
  // "" = the transport's exchange.
  std::string exchange;
};

// Publishes events. Created on a Transport; binds the transport's sockets if no connection has,
// and registers as a publisher with the matchmaker. It shares the transport's internals and may
// outlive the Transport (Notify then fails with TransportClosed).
class Notifier {
 public:
  static absl::StatusOr<std::unique_ptr<Notifier>> Create(Transport& transport,
                                                          std::string publisher_id,
                                                          NotifierOptions options = {});
  virtual ~Notifier() = default;  // unregisters

  // Publishes one event to every topic. Does not block on listeners; an event a slow
  // subscriber has no room for is dropped for all subscribers and counted in dropped().
  virtual absl::Status Notify(const Context& context, std::string_view event_type,
                              Priority priority, Value payload) = 0;
  // As above, with the priority by name: INVALID_ARGUMENT for an unknown one.
  absl::Status Notify(const Context& context, std::string_view event_type,
                      std::string_view priority, Value payload);
  absl::Status Debug(const Context& c, std::string_view t, Value p) { return Notify(c, t, Priority::kDebug, std::move(p)); }
  absl::Status Info(const Context& c, std::string_view t, Value p) { return Notify(c, t, Priority::kInfo, std::move(p)); }
  absl::Status Warn(const Context& c, std::string_view t, Value p) { return Notify(c, t, Priority::kWarn, std::move(p)); }
  absl::Status Error(const Context& c, std::string_view t, Value p) { return Notify(c, t, Priority::kError, std::move(p)); }
  absl::Status Critical(const Context& c, std::string_view t, Value p) { return Notify(c, t, Priority::kCritical, std::move(p)); }
  absl::Status Audit(const Context& c, std::string_view t, Value p) { return Notify(c, t, Priority::kAudit, std::move(p)); }
  absl::Status Sample(const Context& c, std::string_view t, Value p) { return Notify(c, t, Priority::kSample, std::move(p)); }

  // Events the transport's PUB dropped because a subscriber's queue was full (all notifiers of
  // the transport together).
  virtual uint64_t dropped() const = 0;
};

struct ListenerOptions {
  // "" = receive every event (PUB/SUB); a name = share the events with the other members of
  // this pool: each pool gets each event once.
  std::string pool;
  // "" = the transport's exchange.
  std::string exchange;
};

// Receives events. `targets` are "topic" (every priority) or "topic.priority". The handler runs
// on the listener's own thread, one event at a time (pool listeners: on worker threads).
// Lifetime: it shares the transport's internals and may outlive the Transport (it then receives
// nothing more); destroying it stops the handler, so whatever the handler uses must outlive it.
class NotificationListener {
 public:
  static absl::StatusOr<std::unique_ptr<NotificationListener>> Create(
      Transport& transport, std::vector<std::string> targets,
      std::function<void(const Notification&)> handler, ListenerOptions options = {});
  virtual ~NotificationListener() = default;  // stops; the handler is not called afterwards

  // Publishers currently subscribed to (0 for pool listeners).
  virtual size_t publishers() const = 0;
};

}  // namespace zrpc

#endif  // ZRPC_NOTIFIER_H_
