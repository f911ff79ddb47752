// SPDX-License-Identifier: Apache-2.0
// Fuzz target: registrations as the backends read them — one JSON registration (a Redis entry,
// a sidecar request's "registration"), and a whole local:// registry file (ParseRegistryFile).
// Invariants: what is accepted writes back to the same registration; errors are statuses.
#include "fuzz/fuzz_targets.h"
#include "matchmaker/local.h"
#include "matchmaker/registration_json.h"
#include "zrpc/value.h"

namespace zrpc::fuzz {
namespace {

void CheckRegistration(const Registration& r) {
  absl::StatusOr<Registration> back =
      internal::RegistrationFromValue(internal::RegistrationToValue(r));
  ZRPC_FUZZ_CHECK(back.ok());
  ZRPC_FUZZ_CHECK(*back == r && back->heartbeat_ms == r.heartbeat_ms && back->accepts == r.accepts);
  ZRPC_FUZZ_CHECK(r.heartbeat_ms >= 0 && r.heartbeat_ms <= 3600 * 1000);
  absl::Status valid = ValidateRegistration(r);
  ZRPC_FUZZ_CHECK(valid.ok() || valid.code() == absl::StatusCode::kInvalidArgument);
  (void)r.Key();
}

}  // namespace

void FuzzRegistry(std::string_view data) {
  if (absl::StatusOr<Value> v = ParseJson(data); v.ok()) {
    absl::StatusOr<Registration> r = internal::RegistrationFromValue(*v);
    if (r.ok()) {
      CheckRegistration(*r);
    } else {
      ZRPC_FUZZ_CHECK(r.status().code() == absl::StatusCode::kInvalidArgument);
    }
  }
  absl::StatusOr<internal::RegistryFile> file = internal::ParseRegistryFile(data);
  if (!file.ok()) {
    ZRPC_FUZZ_CHECK(file.status().code() == absl::StatusCode::kInvalidArgument);
    return;
  }
  ZRPC_FUZZ_CHECK(file->pid > 0);
  for (const Registration& r : file->registrations) CheckRegistration(r);
}

}  // namespace zrpc::fuzz

ZRPC_FUZZ_ENTRY(zrpc::fuzz::FuzzRegistry)
