// SPDX-License-Identifier: Apache-2.0
// zrpc's metrics: one Metrics per Transport (and one per sidecar), exposed in the Prometheus text
// format (Text(), for `_zrpc.metrics`) and over HTTP (Listen(), `/metrics`). The metric names,
// labels and buckets are documented in include/zrpc/metrics.h.
//
// Hot path. Recording a request goes through a handle the caller looks up once and keeps:
//
//   ServerMethodStats* stats = metrics.ServerMethod("compute", "add", RequestKind::kCall,
//                                                   /*registered=*/true);  // lock + map, once
//   stats->RecordStarted();                                                // per request:
//   stats->RecordHandled(MetricCode::Ok(), queue_seconds, handler_seconds);  // relaxed atomic adds
//
// Handles are stable: they live as long as the Metrics object and are never moved or freed
// before it. Their cells are lock-free integers, striped per thread (src/metrics/histogram.h);
// prometheus-cpp's own Histogram takes a mutex per observation and Family::Add a lock and a map
// lookup, so they are used only for what is recorded rarely (matchmaker lookups, the sidecar).
//
// Bounds. Labels never grow without limit: a method a service does not register is "other";
// after `max_topics` distinct topics, further topics are "other"; after `max_method_series`
// handles per side (server, client), further (topic, method) pairs share the ("other", "other")
// handle of their kind; a value that is not valid UTF-8 or is longer than kMaxLabelBytes is
// "other". Label values are not escaped here: prometheus-cpp's text serializer escapes \, " and
// newline itself (MetricsTest checks it).
#ifndef ZRPC_METRICS_METRICS_H_
#define ZRPC_METRICS_METRICS_H_

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "metrics/histogram.h"
#include "zrpc/errors.h"

namespace prometheus {
class Collectable;
class Exposer;
class Registry;
}  // namespace prometheus

namespace zrpc::internal {

// The `kind` label.
enum class RequestKind : std::uint8_t { kCall, kMulticall, kCast, kFanout, kNotifyPool };
inline constexpr std::size_t kRequestKindCount = 5;
std::string_view RequestKindName(RequestKind kind);

// The `reason` label of a request refused before its handler ran.
enum class RefusalReason : std::uint8_t {
  kAdmission,      // a queue or per-caller limit was full
  kNotAuthorized,  // the caller may not call the method
  kBadHeader,      // the header did not parse or broke the protocol
  kTooLarge,       // the body was over the size limit
  kDuplicate,      // a message id seen before
  kExpired,        // its deadline had passed when it arrived
  kDraining,       // the service is shutting down
};
inline constexpr std::size_t kRefusalReasonCount = 7;
std::string_view RefusalReasonName(RefusalReason reason);

// The `outcome` label of a client's attempt (one request to one instance).
enum class AttemptOutcome : std::uint8_t {
  kOk,          // a reply came (whatever its code)
  kFailedOver,  // no reply; the call went on to another instance
  kPeerLost,    // no reply; the instance was lost and the call ended
  kTimeout,     // no reply by the deadline
  kSendFailed,  // the request could not be sent
  kCancelled,   // the transport closed
};
inline constexpr std::size_t kAttemptOutcomeCount = 6;
std::string_view AttemptOutcomeName(AttemptOutcome outcome);

// The `result` label of a matchmaker lookup.
enum class LookupResult : std::uint8_t { kOk, kNotFound, kError };
// The `result` label of a sidecar request.
enum class SidecarResult : std::uint8_t { kOk, kError, kRefused };

// Every ErrorKind, for the `code` label: ErrorKind::kNotAuthorized is the last kind; a kind added
// after it must be counted here (MetricsTest.EveryErrorKindHasItsOwnCode checks the names).
inline constexpr std::size_t kErrorKindCount =
    static_cast<std::size_t>(ErrorKind::kNotAuthorized) + 1;

// The `code` label: "OK" or an ErrorKind's wire name. A small value, cheap to pass.
class MetricCode {
 public:
  static constexpr std::size_t kCount = 1 + kErrorKindCount;
  static constexpr MetricCode Ok() { return MetricCode(0); }
  static constexpr MetricCode Of(ErrorKind kind) {
    return MetricCode(1 + static_cast<std::size_t>(kind));
  }
  // OK, the status's zrpc kind, or RemoteError for a status zrpc did not classify (what the
  // caller of a handler that returned it receives).
  static MetricCode Of(const absl::Status& status);

  constexpr std::size_t index() const { return index_ < kCount ? index_ : 1; }
  std::string_view name() const;

 private:
  constexpr explicit MetricCode(std::size_t index) : index_(index) {}
  std::size_t index_;
};

// Longer label values are recorded as "other".
inline constexpr std::size_t kMaxLabelBytes = 128;

// The labels a per-method handle records under (already bounded).
struct MethodLabels {
  std::string topic;
  std::string method;
  RequestKind kind;
};

// A service's figures for one (topic, method, kind). Thread-safe; lock-free.
class ServerMethodStats {
 public:
  explicit ServerMethodStats(MethodLabels labels) : labels_(std::move(labels)) {}
  ServerMethodStats(const ServerMethodStats&) = delete;
  ServerMethodStats& operator=(const ServerMethodStats&) = delete;

  // A request was admitted and will run.
  void RecordStarted() { Mine().started.Add(); }
  // It ended with `code`, after `queue_seconds` waiting for a worker and `handler_seconds` in
  // its handler.
  void RecordHandled(MetricCode code, double queue_seconds, double handler_seconds) {
    Cells& c = Mine();
    c.handled[code.index()].Add();
    c.queue.Observe(SecondsToNanos(queue_seconds));
    c.handler.Observe(SecondsToNanos(handler_seconds));
  }
  // The sizes of its request body and of its reply.
  void RecordSizes(std::uint64_t request_bytes, std::uint64_t response_bytes) {
    Cells& c = Mine();
    c.request_size.Observe(request_bytes);
    c.response_size.Observe(response_bytes);
  }

  const MethodLabels& labels() const { return labels_; }

 private:
  friend class MetricsStore;
  struct alignas(64) Cells {
    CounterCell started;
    std::array<CounterCell, MetricCode::kCount> handled;
    LatencyHistogram queue;
    LatencyHistogram handler;
    SizeHistogram request_size;
    SizeHistogram response_size;
  };
  Cells& Mine() { return stripes_[ThisThreadStripe()]; }

  const MethodLabels labels_;
  std::array<Cells, kStripes> stripes_;
};

// A client's figures for one (topic, method, kind). Thread-safe; lock-free.
class ClientMethodStats {
 public:
  explicit ClientMethodStats(MethodLabels labels) : labels_(std::move(labels)) {}
  ClientMethodStats(const ClientMethodStats&) = delete;
  ClientMethodStats& operator=(const ClientMethodStats&) = delete;

  // A call ended with `code` (as the application saw it) after `seconds`, failover included.
  void RecordCall(MetricCode code, double seconds) {
    Cells& c = Mine();
    c.calls[code.index()].Add();
    c.call_duration.Observe(SecondsToNanos(seconds));
  }
  // One attempt (one instance) ended with `outcome` after `seconds`.
  void RecordAttempt(AttemptOutcome outcome, double seconds) {
    Cells& c = Mine();
    const auto i = static_cast<std::size_t>(outcome);
    c.attempts[i < kAttemptOutcomeCount ? i : 0].Add();
    c.attempt_duration.Observe(SecondsToNanos(seconds));
  }
  void RecordSizes(std::uint64_t request_bytes, std::uint64_t response_bytes) {
    Cells& c = Mine();
    c.request_size.Observe(request_bytes);
    c.response_size.Observe(response_bytes);
  }

  const MethodLabels& labels() const { return labels_; }

 private:
  friend class MetricsStore;
  struct alignas(64) Cells {
    std::array<CounterCell, MetricCode::kCount> calls;
    std::array<CounterCell, kAttemptOutcomeCount> attempts;
    LatencyHistogram call_duration;
    LatencyHistogram attempt_duration;
    SizeHistogram request_size;
    SizeHistogram response_size;
  };
  Cells& Mine() { return stripes_[ThisThreadStripe()]; }

  const MethodLabels labels_;
  std::array<Cells, kStripes> stripes_;
};

// Per-topic figures of a service (refusals, beats, notifications) and of a client (ejections,
// probes, instances). Thread-safe; lock-free.
class TopicStats {
 public:
  explicit TopicStats(std::string topic) : topic_(std::move(topic)) {}
  TopicStats(const TopicStats&) = delete;
  TopicStats& operator=(const TopicStats&) = delete;

  void RecordRefused(RefusalReason reason) {
    const auto i = static_cast<std::size_t>(reason);
    refused_[i < kRefusalReasonCount ? i : 0].Add();
  }
  void RecordCallBeat() { call_beats_.Add(); }
  void RecordNotificationPublished() { published_.Add(); }
  void RecordNotificationDropped() { dropped_.Add(); }
  void RecordEjection() { ejections_.Add(); }
  void RecordProbe(bool ok) { (ok ? probes_ok_ : probes_failed_).Add(); }
  // How many of the topic's instances are healthy and ejected now.
  void SetInstances(std::int64_t healthy, std::int64_t ejected) {
    healthy_.Set(healthy);
    ejected_.Set(ejected);
    instances_set_.store(true, std::memory_order_relaxed);
  }

  const std::string& topic() const { return topic_; }

 private:
  friend class MetricsStore;
  const std::string topic_;
  std::array<CounterCell, kRefusalReasonCount> refused_;
  CounterCell call_beats_;
  CounterCell published_;
  CounterCell dropped_;
  CounterCell ejections_;
  CounterCell probes_ok_;
  CounterCell probes_failed_;
  GaugeCell healthy_;
  GaugeCell ejected_;
  std::atomic<bool> instances_set_{false};
};

struct MetricsOptions {
  // Distinct topics recorded; later ones are "other".
  std::size_t max_topics = 1000;
  // Per-method handles per side (server, client); later pairs share ("other", "other").
  std::size_t max_method_series = 1000;
  // The sidecar's Metrics: exports zrpc_sidecar_* and not the service's gauges.
  bool sidecar = false;
};

class MetricsStore;

// The metrics of one Transport or sidecar. Thread-safe. Handles it returns live as long as it.
class Metrics {
 public:
  explicit Metrics(MetricsOptions options = {});
  ~Metrics();
  Metrics(const Metrics&) = delete;
  Metrics& operator=(const Metrics&) = delete;

  // The handle of (topic, method, kind); `registered` says whether a dispatcher serves `method`
  // (when not, it is recorded as "other"). Takes a lock and a map lookup: keep the pointer.
  ServerMethodStats* ServerMethod(std::string_view topic, std::string_view method, RequestKind kind,
                                  bool registered);
  ClientMethodStats* ClientMethod(std::string_view topic, std::string_view method,
                                  RequestKind kind);
  TopicStats* Topic(std::string_view topic);
  // Topic(topic)->RecordRefused(reason): for refusals, which have no handle yet.
  void RecordRefused(std::string_view topic, RefusalReason reason);

  // The service's gauges.
  GaugeCell& in_flight();
  GaugeCell& queued_bytes();
  GaugeCell& connections();

  // A client's matchmaker lookup (rare: at most one per topic per refresh).
  void RecordMatchmakerLookup(LookupResult result, double seconds);

  // The sidecar's figures (recorded only with MetricsOptions::sidecar). `operation` is the
  // request's operation name; after 32 distinct ones, "other".
  void SetSidecarRegistrations(std::int64_t n);
  void SetSidecarWatchers(std::int64_t n);
  void RecordSidecarRequest(std::string_view operation, SidecarResult result);
  void RecordRedisRoundTrip(bool ok);

  // Every zrpc metric and those of attached collectables, in the Prometheus text format 0.0.4
  // (what `_zrpc.metrics` returns). Does not block recorders (takes the handle-map lock to walk
  // it).
  std::string Text() const;

  // Serves Text()'s metrics over HTTP at http://ADDRESS/metrics, ADDRESS "HOST:PORT": HOST an
  // IPv4 address, [IPv6] address or * (every IPv4 interface), PORT 0 for an ephemeral port (see
  // listening_port()). Every interface (*, 0.0.0.0, [::]) only with `insecure`, as for binding.
  // Errors: INVALID_ARGUMENT for a malformed address or a wildcard without `insecure`;
  // UNAVAILABLE naming the address when it cannot be bound; FAILED_PRECONDITION when already
  // listening. The server (two civetweb threads) stops with the Metrics object.
  absl::Status Listen(const std::string& address, bool insecure);
  // The bound HTTP port, or 0 when not listening.
  int listening_port() const;

  // For the public facade (include/zrpc/prometheus.h): the registry an application may add its
  // own prometheus-cpp families to (they then appear in Text() and at /metrics), and one
  // collectable with all of zrpc's metrics for an application's own prometheus::Exposer.
  // TODO(issue 19): wire `MetricsRegistry(Transport&)` / `MetricsCollectable(Transport&)` in
  // transport.cc once the Transport owns a Metrics.
  std::shared_ptr<prometheus::Registry> registry() const;
  std::shared_ptr<prometheus::Collectable> collectable() const;
  // Adds `extra`'s metrics to Text() and /metrics while it lives. Its names must not clash with
  // zrpc_* names (the exposition would hold a family twice).
  void Attach(std::weak_ptr<prometheus::Collectable> extra);

 private:
  std::shared_ptr<MetricsStore> store_;
  // Declared after store_, so destroyed first: its threads stop before the metrics go. (The
  // exposer holds the store weakly; were the store freed on a scrape thread, the store could
  // not own the exposer that runs it.)
  mutable absl::Mutex listen_mu_;
  std::unique_ptr<prometheus::Exposer> exposer_ ABSL_GUARDED_BY(listen_mu_);
  std::atomic<int> port_{0};
};

// The civetweb `listening_ports` value for a Listen() address (see Listen for the rules).
absl::StatusOr<std::string> MetricsListenPorts(std::string_view address, bool insecure);

// A label value as recorded: `value`, or "other" when it is not valid UTF-8 or is longer than
// kMaxLabelBytes.
std::string_view BoundedLabel(std::string_view value);

}  // namespace zrpc::internal

#endif  // ZRPC_METRICS_METRICS_H_
