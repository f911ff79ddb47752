// SPDX-License-Identifier: Apache-2.0
// What the backend factory makes: a Matchmaker, and what it can do beyond that interface (used
// by the sidecar, which holds every registration of its host).
#ifndef ZRPC_MATCHMAKER_BACKEND_H_
#define ZRPC_MATCHMAKER_BACKEND_H_

#include <memory>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "zrpc/matchmaker.h"

namespace zrpc::internal {

// Backends that store many registrations in one round trip (Redis) implement this as well.
class BulkRegistrar {
 public:
  virtual ~BulkRegistrar() = default;
  // As Register for each of `regs`, in one round trip. Blocks like Register; thread-safe.
  virtual absl::Status RegisterAll(const std::vector<Registration>& regs) = 0;
};

struct Backend {
  std::unique_ptr<Matchmaker> matchmaker;
  BulkRegistrar* bulk = nullptr;  // `matchmaker` itself when it is one, else null
};

class Keyring;  // src/security/keyring.h

// The one switch on the URL scheme, behind CreateMatchmaker (same URLs, same errors).
// `keyring`: the process's CurveZMQ keys, for a sidecar URL (null: plain; a sidecar URL that pins
// a key, ?key=, is then INVALID_ARGUMENT, and so is a keyring with a sidecar URL that pins none).
absl::StatusOr<Backend> CreateBackend(std::string_view url,
                                      std::shared_ptr<Keyring> keyring = nullptr);

// CreateMatchmaker for a process with keys (TransportCore): as CreateBackend.
absl::StatusOr<std::unique_ptr<Matchmaker>> CreateMatchmakerWithKeys(
    std::string_view url, std::shared_ptr<Keyring> keyring);

}  // namespace zrpc::internal

#endif  // ZRPC_MATCHMAKER_BACKEND_H_
