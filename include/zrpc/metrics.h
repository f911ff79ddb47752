// SPDX-License-Identifier: Apache-2.0
// zrpc/metrics.h — the names and labels of zrpc's Prometheus metrics.
//
// zrpc counts what its services, clients and sidecar do and exposes it in the Prometheus text
// format 0.0.4 (built on Debian's prometheus-cpp). This header is the reference for dashboards
// and alert rules: each metric's name is a constant below, and the table says what it counts.
//
//   // an alert on the error ratio of one method:
//   //   sum(rate(zrpc_server_requests_handled_total{topic="compute",code!="OK"}[5m]))
//   //     / sum(rate(zrpc_server_requests_handled_total{topic="compute"}[5m]))
//   std::string_view name = zrpc::kMetricServerRequestsHandled;
//
// Units are Prometheus's base units (seconds, bytes); counters end in `_total`.
//
// Labels
//   topic    the topic (as registered by the service, as called by the client). At most 1,000
//            distinct topics per Transport (or sidecar); later ones are recorded as "other".
//   method   the method; on a service a method its dispatchers do not register is "other".
//   kind     call, multicall, cast, fanout, notify-pool
//   code     "OK" or the zrpc error kind's wire name (ErrorKindName: "Timeout", "RemoteError",
//            "NotAuthorized", ...). A status zrpc did not classify counts as "RemoteError",
//            which is what its caller receives.
//   reason   admission, not_authorized, bad_header, too_large, duplicate, expired, draining
//   outcome  of an attempt: one request handed to one instance (or found unreachable when it
//            was to be). ok: its final reply came, whatever its code (a cast: it was queued);
//            failed_over: not reached or its handshake refused (nothing ran) and the call went
//            on to another try; else how the call ended without a reply: peer_lost (the
//            instance was lost, or every candidate was unreachable), timeout, send_failed (it
//            could not be handed over, e.g. its queue stayed full), cancelled (dropped or
//            cancelled by the caller, transport closed). Each call that got as far as an instance has exactly one attempt that is
//            not failed_over; one that never did (NoConsumer, a bad argument) has none. A cast
//            to pools has one per group, a fanout one per instance.
//   state    healthy, ejected
//   result   lookups: ok, not_found, error; probes and Redis round trips: ok, error;
//            sidecar requests: ok, error, refused
//   A label value that is not valid UTF-8 or longer than 128 bytes is recorded as "other", so a
//   label is never an arbitrary string a peer chose. Series are created when first recorded.
//
// Service
//   zrpc_server_requests_started_total      counter    topic, method, kind
//   zrpc_server_requests_handled_total      counter    topic, method, kind, code
//   zrpc_server_queue_duration_seconds      histogram  topic, method, kind  (admitted to worker)
//   zrpc_server_handler_duration_seconds    histogram  topic, method, kind  (handler ran)
//   zrpc_server_request_size_bytes          histogram  topic, method, kind
//   zrpc_server_response_size_bytes         histogram  topic, method, kind
//   zrpc_server_requests_refused_total      counter    topic, reason        (nothing ran)
//   zrpc_server_in_flight_requests          gauge      -   (admitted to the pool, not answered)
//   zrpc_server_queued_bytes                gauge      -   (their bodies, and replies waiting
//                                                            for clients that do not read)
//   zrpc_server_connections                 gauge      -
//   zrpc_server_call_beats_sent_total       counter    topic
//   zrpc_notifications_published_total      counter    topic
//   zrpc_notifications_dropped_total        counter    topic
// Client
//   zrpc_client_calls_total                 counter    topic, method, kind, code
//   zrpc_client_call_duration_seconds       histogram  topic, method, kind  (failover included)
//   zrpc_client_attempt_duration_seconds    histogram  topic, method, kind  (one instance)
//   zrpc_client_attempts_total              counter    topic, method, kind, outcome
//   zrpc_client_request_size_bytes          histogram  topic, method, kind
//   zrpc_client_response_size_bytes         histogram  topic, method, kind
//   zrpc_client_ejections_total             counter    topic  (of the call that found it out)
//   zrpc_client_probes_total                counter    topic, result  (of ejected instances)
//   zrpc_client_instances                   gauge      topic, state  (the topic's cached
//                                                        routes; a fanout key under its topic)
//   zrpc_client_matchmaker_lookups_total    counter    result
//   zrpc_client_matchmaker_lookup_duration_seconds  histogram  -
// Sidecar (zrpc-matchmaker)
//   zrpc_sidecar_registrations              gauge      -
//   zrpc_sidecar_watchers                   gauge      -
//   zrpc_sidecar_requests_total             counter    operation, result
//   zrpc_sidecar_redis_round_trips_total    counter    result
//
// Buckets. Latency (seconds): gRFC A66's, with 1, 2, 5 and 25 µs added (a local call takes tens
// of µs): 0, 1e-6, 2e-6, 5e-6, 1e-5, 2.5e-5, 5e-5, 1e-4, 3e-4, 6e-4, 8e-4, 0.001, 0.002, 0.003,
// 0.004, 0.005, 0.006, 0.008, 0.01, 0.013, 0.016, 0.02, 0.025, 0.03, 0.04, 0.05, 0.065, 0.08,
// 0.1, 0.13, 0.16, 0.2, 0.25, 0.3, 0.4, 0.5, 0.65, 0.8, 1, 2, 5, 10, 20, 50, 100 (prometheus-cpp
// prints 6e-4 as le="0.0005999999999999999": 16 significant digits of the nearest double).
// Size (bytes): A66's, 0, 1 KiB, 2 KiB, 4 KiB, 16 KiB, 64 KiB, 256 KiB, 1 MiB, 4 MiB, 16 MiB,
// 64 MiB, 256 MiB, 1 GiB, 4 GiB. Histograms are exact: integer nanoseconds and bytes, no
// approximated sums.
//
// Thread-safety: constants only.
#ifndef ZRPC_METRICS_H_
#define ZRPC_METRICS_H_

#include <string_view>

namespace zrpc {

// Service.
inline constexpr std::string_view kMetricServerRequestsStarted =
    "zrpc_server_requests_started_total";
inline constexpr std::string_view kMetricServerRequestsHandled =
    "zrpc_server_requests_handled_total";
inline constexpr std::string_view kMetricServerQueueDuration = "zrpc_server_queue_duration_seconds";
inline constexpr std::string_view kMetricServerHandlerDuration =
    "zrpc_server_handler_duration_seconds";
inline constexpr std::string_view kMetricServerRequestSize = "zrpc_server_request_size_bytes";
inline constexpr std::string_view kMetricServerResponseSize = "zrpc_server_response_size_bytes";
inline constexpr std::string_view kMetricServerRequestsRefused =
    "zrpc_server_requests_refused_total";
inline constexpr std::string_view kMetricServerInFlight = "zrpc_server_in_flight_requests";
inline constexpr std::string_view kMetricServerQueuedBytes = "zrpc_server_queued_bytes";
inline constexpr std::string_view kMetricServerConnections = "zrpc_server_connections";
inline constexpr std::string_view kMetricServerCallBeats = "zrpc_server_call_beats_sent_total";
inline constexpr std::string_view kMetricNotificationsPublished =
    "zrpc_notifications_published_total";
inline constexpr std::string_view kMetricNotificationsDropped = "zrpc_notifications_dropped_total";
// Client.
inline constexpr std::string_view kMetricClientCalls = "zrpc_client_calls_total";
inline constexpr std::string_view kMetricClientCallDuration = "zrpc_client_call_duration_seconds";
inline constexpr std::string_view kMetricClientAttemptDuration =
    "zrpc_client_attempt_duration_seconds";
inline constexpr std::string_view kMetricClientAttempts = "zrpc_client_attempts_total";
inline constexpr std::string_view kMetricClientRequestSize = "zrpc_client_request_size_bytes";
inline constexpr std::string_view kMetricClientResponseSize = "zrpc_client_response_size_bytes";
inline constexpr std::string_view kMetricClientEjections = "zrpc_client_ejections_total";
inline constexpr std::string_view kMetricClientProbes = "zrpc_client_probes_total";
inline constexpr std::string_view kMetricClientInstances = "zrpc_client_instances";
inline constexpr std::string_view kMetricClientMatchmakerLookups =
    "zrpc_client_matchmaker_lookups_total";
inline constexpr std::string_view kMetricClientMatchmakerLookupDuration =
    "zrpc_client_matchmaker_lookup_duration_seconds";
// Sidecar.
inline constexpr std::string_view kMetricSidecarRegistrations = "zrpc_sidecar_registrations";
inline constexpr std::string_view kMetricSidecarWatchers = "zrpc_sidecar_watchers";
inline constexpr std::string_view kMetricSidecarRequests = "zrpc_sidecar_requests_total";
inline constexpr std::string_view kMetricSidecarRedisRoundTrips =
    "zrpc_sidecar_redis_round_trips_total";

// The label value that stands for every value past a bound (an unregistered method, the
// 1,001st topic, a value that is not valid UTF-8 or is longer than 128 bytes).
inline constexpr std::string_view kMetricOtherLabel = "other";

}  // namespace zrpc

#endif  // ZRPC_METRICS_H_
