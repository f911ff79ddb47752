// SPDX-License-Identifier: Apache-2.0
// Registrations as JSON objects, shared by the backends that store them as text.
#ifndef ZRPC_MATCHMAKER_REGISTRATION_JSON_H_
#define ZRPC_MATCHMAKER_REGISTRATION_JSON_H_

#include "absl/status/statusor.h"
#include "zrpc/matchmaker.h"
#include "zrpc/value.h"

namespace zrpc::internal {

Value RegistrationToValue(const Registration& r);
// INVALID_ARGUMENT naming the field for a malformed entry.
absl::StatusOr<Registration> RegistrationFromValue(const Value& v);

}  // namespace zrpc::internal

#endif  // ZRPC_MATCHMAKER_REGISTRATION_JSON_H_
