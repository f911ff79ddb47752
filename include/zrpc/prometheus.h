// SPDX-License-Identifier: Apache-2.0
// zrpc/prometheus.h — zrpc's metrics for applications that already use prometheus-cpp (opt-in).
//
// Including this header needs prometheus-cpp (Debian: prometheus-cpp-dev) in the application's
// build; zrpc's other headers do not. zrpc keeps its metrics in a prometheus::Registry (plus
// lock-free cells for what every request records) and exposes them at `_zrpc.metrics` and, when
// asked, at an HTTP /metrics endpoint; names and labels are listed in zrpc/metrics.h.
//
// Status: the metrics core is built (src/metrics: Metrics::registry() and
// Metrics::collectable() are what this header hands out), but no Transport owns a Metrics yet,
// so this header declares nothing that could not be defined.
// TODO(issue 19): once the Transport owns its Metrics (src/transport.cc), declare here and
// define there:
//   // The registry of `transport`'s metrics: families an application adds to it appear in
//   // `_zrpc.metrics` and at the transport's /metrics endpoint. Shared: it may outlive the
//   // transport. Thread-safe.
//   std::shared_ptr<prometheus::Registry> MetricsRegistry(Transport& transport);
//   // All of `transport`'s zrpc_* metrics as one collectable, for the application's own
//   // prometheus::Exposer (exposer.RegisterCollectable(zrpc::MetricsCollectable(transport))).
//   std::shared_ptr<prometheus::Collectable> MetricsCollectable(Transport& transport);
#ifndef ZRPC_PROMETHEUS_H_
#define ZRPC_PROMETHEUS_H_

#include <memory>

#include "prometheus/collectable.h"
#include "prometheus/registry.h"
#include "zrpc/metrics.h"

#endif  // ZRPC_PROMETHEUS_H_
