// SPDX-License-Identifier: Apache-2.0
#include "server/admission.h"

#include "absl/strings/str_cat.h"
#include "zrpc/errors.h"

namespace zrpc::internal {
namespace {

AdmissionDecision Refuse(const AdmissionRequest& r, absl::Status status,
                         std::optional<RefusalReason> reason) {
  AdmissionDecision d;
  d.verdict = r.is_cast ? AdmissionDecision::Verdict::kDrop : AdmissionDecision::Verdict::kAnswer;
  d.status = std::move(status);
  d.refused = reason;
  return d;
}

}  // namespace

AdmissionDecision DecideAdmission(
    const AdmissionRequest& r, absl::FunctionRef<absl::Status(const Dispatcher::Target&)> authorize,
    absl::FunctionRef<absl::Status()> load) {
  const Message& m = r.message;
  if (r.duplicate) {
    // The first copy answers (or answered): this one ends nothing at its caller.
    AdmissionDecision d;
    d.verdict = AdmissionDecision::Verdict::kDrop;
    d.status = DuplicateMessageError(m.unique_id);
    d.refused = RefusalReason::kDuplicate;
    return d;
  }
  if (m.ns && *m.ns == kReservedNamespace) {
    if (r.is_cast) {
      return Refuse(r, absl::InvalidArgumentError("_zrpc methods answer calls, not casts"),
                    RefusalReason::kBadHeader);
    }
    if (r.body_bytes > kMaxIntrospectionBytes) {
      return Refuse(r,
                    absl::InvalidArgumentError(absl::StrCat(
                        "_zrpc requests take no arguments (this one has ", r.body_bytes, " bytes)")),
                    RefusalReason::kBadHeader);
    }
    AdmissionDecision d;
    d.verdict = AdmissionDecision::Verdict::kIntrospect;
    return d;
  }
  if (m.timeout_ms && *m.timeout_ms == 0) {
    // The caller has stopped waiting (PROTOCOL.md: dropped unstarted).
    AdmissionDecision d;
    d.verdict = AdmissionDecision::Verdict::kDrop;
    d.status = TimeoutError(r.topic, m.method, "its deadline had passed when it arrived");
    d.refused = RefusalReason::kExpired;
    return d;
  }
  if (r.draining) {
    return Refuse(r,
                  absl::UnavailableError(absl::StrCat(
                      "service ", absl::string_view(r.host.data(), r.host.size()),
                      " is shutting down and takes no new requests; try another instance")),
                  RefusalReason::kDraining);
  }
  AdmissionDecision d;
  if (r.dispatcher != nullptr) {
    absl::StatusOr<Dispatcher::Target> resolved = r.dispatcher->Resolve(
        m.ns ? std::string_view(*m.ns) : std::string_view(), m.version, m.method);
    if (!resolved.ok()) return Refuse(r, resolved.status(), std::nullopt);
    d.target = *resolved;
  }
  if (absl::Status allowed = authorize(d.target); !allowed.ok()) {
    return Refuse(r, std::move(allowed), RefusalReason::kNotAuthorized);
  }
  const bool inline_handler = d.target.endpoint != nullptr && d.target.endpoint->inline_handlers;
  if (!inline_handler) {
    if (absl::Status admitted = load(); !admitted.ok()) {
      return Refuse(r, std::move(admitted), RefusalReason::kAdmission);
    }
  }
  d.verdict = AdmissionDecision::Verdict::kRun;
  return d;
}

}  // namespace zrpc::internal
