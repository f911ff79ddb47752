// SPDX-License-Identifier: Apache-2.0
// Watching a directory for changes (inotify), shared by the file-based matchmakers.
#ifndef ZRPC_MATCHMAKER_WATCH_H_
#define ZRPC_MATCHMAKER_WATCH_H_

#include <functional>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "zrpc/matchmaker.h"

namespace zrpc::internal {

// Calls `on_change` (on a thread of its own) after a file in `dir` is created, written, moved in
// or removed, until the handle is destroyed.
absl::StatusOr<std::unique_ptr<WatchHandle>> WatchDirectory(const std::string& dir,
                                                            std::function<void()> on_change);

}  // namespace zrpc::internal

#endif  // ZRPC_MATCHMAKER_WATCH_H_
