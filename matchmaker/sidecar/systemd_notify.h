// SPDX-License-Identifier: Apache-2.0
// The sd_notify protocol without libsystemd: tells systemd (a Type=notify unit) that the sidecar
// is ready or stopping.
//
//   NotifySystemd("READY=1");     // once serving
//   NotifySystemd("STOPPING=1");  // when shutting down
//
// When $NOTIFY_SOCKET names a unix datagram socket (a path, or an abstract-namespace name when it
// starts with '@'), the state is sent there as one datagram; otherwise nothing happens.
// Thread-safe; blocks at most for one non-blocking send.
#ifndef ZRPC_MATCHMAKER_SIDECAR_SYSTEMD_NOTIFY_H_
#define ZRPC_MATCHMAKER_SIDECAR_SYSTEMD_NOTIFY_H_

#include <string_view>

#include "absl/status/status.h"

namespace zrpc::internal::sidecar {

// Sends `state` ("READY=1", "STOPPING=1", "STATUS=...": newline-separated assignments) to
// $NOTIFY_SOCKET. OK when it was sent or there is no $NOTIFY_SOCKET; INVALID_ARGUMENT when the
// variable is not a usable socket address; UNAVAILABLE naming the socket when the send failed.
absl::Status NotifySystemd(std::string_view state);

}  // namespace zrpc::internal::sidecar

#endif  // ZRPC_MATCHMAKER_SIDECAR_SYSTEMD_NOTIFY_H_
