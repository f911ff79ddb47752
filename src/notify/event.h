// SPDX-License-Identifier: Apache-2.0
// Events as listeners decode them: the message a Notifier publishes (or casts to a listener
// pool), turned back into a Notification. Pure, so the notification fuzz target runs it.
#ifndef ZRPC_SRC_NOTIFY_EVENT_H_
#define ZRPC_SRC_NOTIFY_EVENT_H_

#include <string>

#include "absl/status/statusor.h"
#include "zrpc/message.h"
#include "zrpc/notifier.h"

namespace zrpc::internal {

// The event carried by `m` (a decoded event message) received on `topic`. Fields that are
// missing or not strings are empty; INVALID_ARGUMENT for an unknown priority.
absl::StatusOr<Notification> NotificationFromMessage(const Message& m, std::string topic);

}  // namespace zrpc::internal

#endif  // ZRPC_SRC_NOTIFY_EVENT_H_
