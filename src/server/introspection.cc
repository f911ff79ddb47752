// SPDX-License-Identifier: Apache-2.0
#include "server/introspection.h"

#include <unistd.h>

#include <algorithm>
#include <vector>

#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "zrpc/errors.h"
#include "zrpc/version.h"

namespace zrpc::internal {
namespace {

// When this process loaded zrpc (its start, for health's uptime).
const absl::Time process_start = absl::Now();

}  // namespace

absl::StatusOr<Value> Introspect(const Consumer& consumer, std::string_view method,
                                 const ServiceView& service) {
  if (method == "ping") {
    return Value(Object{{"pong", true}, {"host", service.host}, {"pid", static_cast<int64_t>(getpid())}});
  }
  if (method == "health") {
    const absl::Time now = absl::Now();
    return Value(Object{{"status", consumer.connection->draining.load() ? "not_serving" : "serving"},
                        {"host", service.host},
                        {"version", ZRPC_VERSION_STRING},
                        {"started", absl::FormatTime("%Y-%m-%dT%H:%M:%E6SZ", process_start,
                                                     absl::UTCTimeZone())},
                        {"uptime_s", absl::ToInt64Seconds(now - process_start)},
                        {"load", service.load}});
  }
  if (method == "describe") {
    Array topics;
    for (const auto& [key, c] : service.consumers) {
      const Registration& r = c->registration;
      Object t{{"exchange", r.exchange}, {"topic", r.topic}, {"fanout", r.fanout}};
      if (!r.pool.empty()) t.Set("pool", r.pool);
      topics.push_back(Value(std::move(t)));
    }
    Array endpoints;
    if (consumer.dispatcher != nullptr) {
      for (const auto& ep : consumer.dispatcher->endpoints()) {
        std::vector<std::string> names;
        for (const auto& [name, entry] : ep->methods) {
          names.push_back(entry.stream ? name + " (stream)" : name);
        }
        std::sort(names.begin(), names.end());
        Array methods(names.begin(), names.end());
        endpoints.push_back(Value(Object{{"namespace", ep->ns},
                                         {"version", ep->version},
                                         {"inline", ep->inline_handlers},
                                         {"methods", std::move(methods)},
                                         {"signatures", ep->Signatures()}}));
      }
    }
    return Value(Object{{"host", service.host},
                        {"endpoint", service.endpoint},
                        {"topics", std::move(topics)},
                        {"endpoints", std::move(endpoints)}});
  }
  if (method == "metrics" && service.metrics != nullptr) {
    // The Prometheus text format 0.0.4, as the HTTP endpoint serves it (a string).
    return Value(service.metrics->Text());
  }
  return NoSuchMethodError(method);
}

}  // namespace zrpc::internal
