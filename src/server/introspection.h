// SPDX-License-Identifier: Apache-2.0
// The reserved namespace `_zrpc` (PROTOCOL.md §8): ping, health, describe and metrics, answered by the
// server engine on the I/O thread for every consumer.
#ifndef ZRPC_SRC_SERVER_INTROSPECTION_H_
#define ZRPC_SRC_SERVER_INTROSPECTION_H_

#include <memory>
#include <string>
#include <string_view>

#include "metrics/metrics.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "server/consumer.h"
#include "zrpc/value.h"

namespace zrpc::internal {

// What a service tells about itself.
struct ServiceView {
  const std::string& host;
  const std::string& endpoint;
  const absl::flat_hash_map<std::string, std::shared_ptr<Consumer>>& consumers;
  // What `health` reports of the service's load and what its limits dropped.
  Object load;
  // The process's metrics (`metrics` answers their Prometheus text); null: none.
  const Metrics* metrics = nullptr;
};

// The answer to `_zrpc.<method>` asked of `asked`; NoSuchMethod for another method.
absl::StatusOr<Value> Introspect(const Consumer& asked, std::string_view method,
                                 const ServiceView& service);

}  // namespace zrpc::internal

#endif  // ZRPC_SRC_SERVER_INTROSPECTION_H_
