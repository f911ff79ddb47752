// SPDX-License-Identifier: Apache-2.0
// Fuzz target: notification frames as a listener decodes them, split at NUL bytes
// ("SUBSCRIPTION\0BODY"): a plain listener takes only the subscriptions it asked for, decodes
// the event message and turns it into a Notification (NotificationFromMessage, which pool
// listeners use too). Invariants: an accepted event has a known priority and the topic of its
// subscription; malformed events are statuses, never a crash.
#include <set>
#include <string>

#include "fuzz/fuzz_targets.h"
#include "notify/event.h"
#include "zrpc/message.h"
#include "zrpc/notifier.h"

namespace zrpc::fuzz {

void FuzzNotification(std::string_view data) {
  // What a listener of {"notifications", "audit.error"} subscribes to.
  static const std::set<std::string, std::less<>>* wanted = [] {
    auto* s = new std::set<std::string, std::less<>>();
    for (std::string_view p : {"debug", "info", "warn", "error", "critical", "audit", "sample"}) {
      s->insert("notifications." + std::string(p));
    }
    s->insert("audit.error");
    return s;
  }();
  const std::vector<std::string_view> frames = SplitFrames(data, 3);
  if (frames.size() != 2) return;
  // Pool listeners get the event as a cast: the same message, whatever the subscription.
  absl::StatusOr<Message> m = DecodeMessage(frames[1]);
  if (!m.ok()) {
    ZRPC_FUZZ_CHECK(!m.status().ok());
    return;
  }
  const bool subscribed = wanted->count(frames[0]) > 0;
  const std::string subscription(frames[0]);
  const std::string topic =
      subscribed ? subscription.substr(0, subscription.rfind('.')) : "notifications";
  absl::StatusOr<Notification> n = internal::NotificationFromMessage(*m, topic);
  if (!n.ok()) {
    ZRPC_FUZZ_CHECK(n.status().code() == absl::StatusCode::kInvalidArgument);
    return;
  }
  ZRPC_FUZZ_CHECK(n->topic == topic);
  absl::StatusOr<Priority> p = ParsePriority(PriorityName(n->priority));
  ZRPC_FUZZ_CHECK(p.ok() && *p == n->priority);
  ZRPC_FUZZ_CHECK(n->context == m->context);
  // A handler may print it: every field is encodable JSON again.
  ZRPC_FUZZ_CHECK(ToJson(n->payload).ok());
}

}  // namespace zrpc::fuzz

ZRPC_FUZZ_ENTRY(zrpc::fuzz::FuzzNotification)
