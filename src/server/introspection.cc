// SPDX-License-Identifier: Apache-2.0
#include "server/introspection.h"

#include <unistd.h>

#include <algorithm>
#include <vector>

#include "zrpc/errors.h"

namespace zrpc::internal {

absl::StatusOr<Value> Introspect(const Consumer& consumer, std::string_view method,
                                 const ServiceView& service) {
  if (method == "ping") {
    return Value(Object{{"pong", true}, {"host", service.host}, {"pid", static_cast<int64_t>(getpid())}});
  }
  if (method == "health") {
    return Value(Object{{"status", consumer.connection->draining.load() ? "not_serving" : "serving"},
                        {"host", service.host},
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
