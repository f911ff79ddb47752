// SPDX-License-Identifier: Apache-2.0
// The one admission decision (DESIGN §10): what happens to a decoded request — run it, answer
// introspection, answer a refusal, or drop it — and how it is counted. Both body paths of the
// server engine (small bodies decoded on the I/O thread, large ones on a worker) and the request
// fuzz target call it, so every request gets exactly one outcome and is counted exactly once.
//
// Pure: it reads only its arguments (and calls the two callbacks it is given); it sends nothing,
// logs nothing and keeps no state. The caller records the duplicate window, sends the answer,
// logs and counts (Decision::refused).
#ifndef ZRPC_SRC_SERVER_ADMISSION_H_
#define ZRPC_SRC_SERVER_ADMISSION_H_

#include <cstddef>
#include <optional>
#include <string_view>

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "metrics/metrics.h"
#include "zrpc/dispatcher.h"
#include "zrpc/message.h"

namespace zrpc::internal {

// `_zrpc` requests take no arguments: a body larger than this is refused (it would also be
// decoded off the I/O thread, where introspection cannot run).
inline constexpr size_t kMaxIntrospectionBytes = 16 << 10;

struct AdmissionRequest {
  const Message& message;
  bool is_cast = false;
  size_t body_bytes = 0;
  std::string_view topic;  // the consumer's topic (for error texts)
  std::string_view host;   // this service's host (for error texts)
  bool draining = false;   // the consumer's connection is closing
  bool duplicate = false;  // its _unique_id is in the consumer's window (the caller checked)
  const Dispatcher* dispatcher = nullptr;  // null: a raw consumer, which takes any method
};

struct AdmissionDecision {
  enum class Verdict {
    kRun,         // run `target` (its handler)
    kIntrospect,  // answer the `_zrpc` method (a call)
    kAnswer,      // send `status` as the call's failure; nothing runs
    kDrop,        // nothing runs and nothing is sent (a cast, a duplicate, an expired call)
  };
  Verdict verdict = Verdict::kRun;
  absl::Status status;  // why, for kAnswer and kDrop
  // How a request that did not run is counted: a refusal (zrpc_server_requests_refused_total by
  // reason), or nullopt for an answer of dispatch (no such method, version), counted as handled
  // with its code under method "other".
  std::optional<RefusalReason> refused;
  Dispatcher::Target target{nullptr, nullptr};  // for kRun (null members for a raw consumer)
};

// The decision, in this order: duplicate (dropped, the first copy answers), `_zrpc` (introspected,
// or refused when it has arguments; a cast to it is dropped), deadline passed on arrival
// (`_timeout` 0: dropped, its caller stopped waiting), draining (UNAVAILABLE: did not run, try another instance), dispatch (NoSuchMethod,
// version errors), authorization (`authorize(target)`: NotAuthorized), and, for handlers that do
// not run inline, load (`load()`: RESOURCE_EXHAUSTED, retryable). A refusal of a cast is kDrop.
AdmissionDecision DecideAdmission(
    const AdmissionRequest& request,
    absl::FunctionRef<absl::Status(const Dispatcher::Target&)> authorize,
    absl::FunctionRef<absl::Status()> load);

}  // namespace zrpc::internal

#endif  // ZRPC_SRC_SERVER_ADMISSION_H_
