// SPDX-License-Identifier: Apache-2.0
#include "metrics/metrics.h"

#include <arpa/inet.h>

#include <algorithm>
#include <exception>
#include <limits>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "prometheus/collectable.h"
#include "prometheus/counter.h"
#include "prometheus/exposer.h"
#include "prometheus/family.h"
#include "prometheus/gauge.h"
#include "prometheus/histogram.h"
#include "prometheus/metric_family.h"
#include "prometheus/registry.h"
#include "prometheus/text_serializer.h"
#include "zrpc/metrics.h"

namespace zrpc::internal {
namespace {

using prometheus::ClientMetric;
using prometheus::MetricFamily;
using prometheus::MetricType;

constexpr std::array<std::string_view, kRequestKindCount> kKindNames = {"call", "multicall", "cast",
                                                                        "fanout", "notify-pool"};
constexpr std::array<std::string_view, kRefusalReasonCount> kReasonNames = {
    "admission", "not_authorized", "bad_header", "too_large", "duplicate", "expired", "draining"};
constexpr std::array<std::string_view, kAttemptOutcomeCount> kOutcomeNames = {
    "ok", "failed_over", "peer_lost", "timeout", "send_failed", "cancelled"};
constexpr std::array<std::string_view, 3> kLookupResultNames = {"ok", "not_found", "error"};
constexpr std::array<std::string_view, 3> kSidecarResultNames = {"ok", "error", "refused"};
// Distinct sidecar operation names recorded; later ones are "other".
constexpr std::size_t kMaxSidecarOperations = 32;

// Abseil 20220623's string_view is its own type, not std::string_view.
absl::string_view A(std::string_view s) { return {s.data(), s.size()}; }

template <std::size_t N, typename E>
std::string_view NameIn(const std::array<std::string_view, N>& names, E e) {
  const auto i = static_cast<std::size_t>(e);
  return i < N ? names[i] : kMetricOtherLabel;
}

// Strict UTF-8: no overlong forms, no surrogates, nothing past U+10FFFF.
bool IsValidUtf8(std::string_view s) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  const auto* end = p + s.size();
  while (p < end) {
    const unsigned char c = *p;
    if (c < 0x80) {
      ++p;
      continue;
    }
    int n;
    std::uint32_t cp;
    if ((c & 0xE0) == 0xC0) {
      n = 1, cp = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
      n = 2, cp = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
      n = 3, cp = c & 0x07;
    } else {
      return false;
    }
    if (end - p <= n) return false;
    for (int i = 1; i <= n; ++i) {
      if ((p[i] & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (p[i] & 0x3F);
    }
    constexpr std::uint32_t kMin[] = {0, 0x80, 0x800, 0x10000};
    if (cp < kMin[n] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
    p += n + 1;
  }
  return true;
}

MetricFamily NewFamily(std::string_view name, std::string_view help, MetricType type) {
  MetricFamily f;
  f.name = std::string(name);
  f.help = std::string(help);
  f.type = type;
  return f;
}

using Labels = std::vector<ClientMetric::Label>;

Labels MethodLabelsOf(const MethodLabels& m) {
  return {{"topic", m.topic}, {"method", m.method}, {"kind", std::string(RequestKindName(m.kind))}};
}
Labels With(Labels labels, std::string name, std::string_view value) {
  labels.push_back({std::move(name), std::string(value)});
  return labels;
}

void AddCounter(MetricFamily& f, Labels labels, std::uint64_t value) {
  ClientMetric m;
  m.label = std::move(labels);
  m.counter.value = static_cast<double>(value);
  f.metric.push_back(std::move(m));
}
void AddGauge(MetricFamily& f, Labels labels, std::int64_t value) {
  ClientMetric m;
  m.label = std::move(labels);
  m.gauge.value = static_cast<double>(value);
  f.metric.push_back(std::move(m));
}
// Prometheus buckets are cumulative and end with +Inf; the count is the +Inf bucket's.
template <typename H>
void AddHistogram(MetricFamily& f, Labels labels, const HistogramSnapshot& s,
                  bool skip_empty = false) {
  const auto& bounds = H::bounds();
  ClientMetric m;
  m.label = std::move(labels);
  std::uint64_t cumulative = 0;
  for (std::size_t i = 0; i < s.counts.size(); ++i) {
    cumulative += s.counts[i];
    m.histogram.bucket.push_back({cumulative, i < bounds.exposed.size()
                                                  ? bounds.exposed[i]
                                                  : std::numeric_limits<double>::infinity()});
  }
  if (skip_empty && cumulative == 0) return;
  m.histogram.sample_count = cumulative;
  m.histogram.sample_sum = static_cast<double>(s.sum) / bounds.scale;
  f.metric.push_back(std::move(m));
}

// A counter summed over a handle's stripes.
template <typename Cells, typename F>
std::uint64_t Sum(const std::array<Cells, kStripes>& stripes, F read) {
  std::uint64_t n = 0;
  for (const Cells& c : stripes) n += read(c);
  return n;
}
// A histogram merged over a handle's stripes.
template <typename Cells, typename H>
HistogramSnapshot Merge(const std::array<Cells, kStripes>& stripes, H Cells::*histogram) {
  HistogramSnapshot s;
  for (const Cells& c : stripes) (c.*histogram).ReadInto(s);
  return s;
}

void AppendNonEmpty(std::vector<MetricFamily>& out, std::vector<MetricFamily> families) {
  for (auto& f : families) {
    if (!f.metric.empty()) out.push_back(std::move(f));
  }
}

}  // namespace

std::string_view RequestKindName(RequestKind kind) { return NameIn(kKindNames, kind); }
std::string_view RefusalReasonName(RefusalReason reason) { return NameIn(kReasonNames, reason); }
std::string_view AttemptOutcomeName(AttemptOutcome outcome) {
  return NameIn(kOutcomeNames, outcome);
}

MetricCode MetricCode::Of(const absl::Status& status) {
  if (status.ok()) return Ok();
  return Of(GetErrorKind(status).value_or(ErrorKind::kRemoteError));
}

std::string_view MetricCode::name() const {
  const std::size_t i = index();
  return i == 0 ? std::string_view("OK") : ErrorKindName(static_cast<ErrorKind>(i - 1));
}

std::string_view BoundedLabel(std::string_view value) {
  if (value.size() > kMaxLabelBytes || !IsValidUtf8(value)) return kMetricOtherLabel;
  return value;
}

absl::StatusOr<std::string> MetricsListenPorts(std::string_view address, bool insecure) {
  const auto bad = [&](std::string_view why) {
    return absl::InvalidArgumentError(absl::StrCat(
        "metrics address \"", A(BoundedLabel(address)), "\": ", A(why),
        " (give HOST:PORT, HOST an IPv4 address, [IPv6] address or *, e.g. 127.0.0.1:9464)"));
  };
  const std::size_t colon = address.rfind(':');
  if (colon == std::string_view::npos) return bad("no port");
  std::string_view host = address.substr(0, colon);
  const std::string_view port_text = address.substr(colon + 1);
  int port = 0;
  if (port_text.empty() || port_text.size() > 5 ||
      !std::all_of(port_text.begin(), port_text.end(), absl::ascii_isdigit) ||
      !absl::SimpleAtoi(A(port_text), &port) || port > 65535) {
    return bad("the port must be a number from 0 to 65535");
  }
  bool every_interface = false;
  std::string listen;
  if (host == "*") {
    every_interface = true;
    listen = absl::StrCat("0.0.0.0:", port);
  } else if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    const std::string ip(host.substr(1, host.size() - 2));
    in6_addr a6;
    if (inet_pton(AF_INET6, ip.c_str(), &a6) != 1) return bad("not an IPv6 address");
    every_interface = IN6_IS_ADDR_UNSPECIFIED(&a6);
    listen = absl::StrCat("[", ip, "]:", port);
  } else {
    const std::string ip(host);
    in_addr a4;
    // inet_pton takes only the dotted quad (no names, no "1.2.3" shorthand).
    if (inet_pton(AF_INET, ip.c_str(), &a4) != 1) {
      return bad(host.empty() ? "no host" : "the host is not an address (names are not resolved)");
    }
    every_interface = a4.s_addr == htonl(INADDR_ANY);
    listen = absl::StrCat(ip, ":", port);
  }
  if (every_interface && !insecure) {
    return absl::InvalidArgumentError(absl::StrCat(
        "metrics address \"", A(BoundedLabel(address)),
        "\" listens on every interface, which serves the metrics (topic and method names, load) "
        "to anyone who can reach this host: pass insecure to allow it, or give an address such "
        "as 127.0.0.1:",
        port));
  }
  return listen;
}

// Owns every metric of a Metrics object; the collectable the HTTP endpoint and Text() read.
class MetricsStore : public prometheus::Collectable {
 public:
  explicit MetricsStore(MetricsOptions options)
      : options_(options), registry_(std::make_shared<prometheus::Registry>()) {
    auto& lookups = prometheus::BuildCounter()
                        .Name(std::string(kMetricClientMatchmakerLookups))
                        .Help("Matchmaker lookups made by clients, by result.")
                        .Register(*registry_);
    for (std::size_t i = 0; i < kLookupResultNames.size(); ++i) {
      lookups_[i] = &lookups.Add({{"result", std::string(kLookupResultNames[i])}});
    }
    lookup_duration_ =
        &prometheus::BuildHistogram()
             .Name(std::string(kMetricClientMatchmakerLookupDuration))
             .Help("Time a client's matchmaker lookup took, in seconds.")
             .Register(*registry_)
             .Add({}, prometheus::Histogram::BucketBoundaries(kLatencyBucketsSeconds.begin(),
                                                              kLatencyBucketsSeconds.end()));
    if (options_.sidecar) {
      registrations_ = &prometheus::BuildGauge()
                            .Name(std::string(kMetricSidecarRegistrations))
                            .Help("Registrations the sidecar holds.")
                            .Register(*registry_)
                            .Add({});
      watchers_ = &prometheus::BuildGauge()
                       .Name(std::string(kMetricSidecarWatchers))
                       .Help("Watchers connected to the sidecar.")
                       .Register(*registry_)
                       .Add({});
      sidecar_requests_ = &prometheus::BuildCounter()
                               .Name(std::string(kMetricSidecarRequests))
                               .Help("Requests the sidecar answered, by operation and result.")
                               .Register(*registry_);
      auto& redis = prometheus::BuildCounter()
                        .Name(std::string(kMetricSidecarRedisRoundTrips))
                        .Help("Round trips from the sidecar to Redis, by result.")
                        .Register(*registry_);
      redis_ok_ = &redis.Add({{"result", "ok"}});
      redis_error_ = &redis.Add({{"result", "error"}});
    }
  }

  template <typename Stats, typename Map>
  Stats* Method(Map& map, std::vector<Stats*>& order, std::string_view topic,
                std::string_view method, RequestKind kind) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    std::string t = BoundTopic(topic);
    std::string key = Key(t, method, kind);
    if (auto it = map.find(key); it != map.end()) return it->second.get();
    if (map.size() >= options_.max_method_series) {
      t = std::string(kMetricOtherLabel);
      method = kMetricOtherLabel;
      key = Key(t, method, kind);
      if (auto it = map.find(key); it != map.end()) return it->second.get();
    }
    auto stats = std::make_unique<Stats>(MethodLabels{std::move(t), std::string(method), kind});
    Stats* raw = stats.get();
    map.emplace(std::move(key), std::move(stats));
    order.push_back(raw);
    return raw;
  }

  ServerMethodStats* ServerMethod(std::string_view topic, std::string_view method, RequestKind kind,
                                  bool registered) {
    absl::MutexLock lock(&mu_);
    return Method(server_, server_order_, topic,
                  registered ? BoundedLabel(method) : kMetricOtherLabel, kind);
  }
  ClientMethodStats* ClientMethod(std::string_view topic, std::string_view method,
                                  RequestKind kind) {
    absl::MutexLock lock(&mu_);
    return Method(client_, client_order_, topic, BoundedLabel(method), kind);
  }
  TopicStats* Topic(std::string_view topic) {
    absl::MutexLock lock(&mu_);
    std::string t = BoundTopic(topic);
    auto [it, inserted] = topic_stats_.try_emplace(t);
    if (inserted) {
      it->second = std::make_unique<TopicStats>(std::move(t));
      topic_order_.push_back(it->second.get());
    }
    return it->second.get();
  }

  GaugeCell in_flight;
  GaugeCell queued_bytes;
  GaugeCell connections;

  void RecordMatchmakerLookup(LookupResult result, double seconds) {
    lookups_[std::min<std::size_t>(static_cast<std::size_t>(result), 2)]->Increment();
    lookup_duration_->Observe(seconds);
  }
  void SetRegistrations(std::int64_t n) {
    if (registrations_) registrations_->Set(static_cast<double>(n));
  }
  void SetWatchers(std::int64_t n) {
    if (watchers_) watchers_->Set(static_cast<double>(n));
  }
  void RecordSidecarRequest(std::string_view operation, SidecarResult result) {
    if (!sidecar_requests_) return;
    absl::MutexLock lock(&mu_);
    std::string_view op = BoundedLabel(operation);
    auto it = sidecar_ops_.find(A(op));
    if (it == sidecar_ops_.end()) {
      if (sidecar_ops_.size() >= kMaxSidecarOperations) op = kMetricOtherLabel;
      it = sidecar_ops_.try_emplace(std::string(op)).first;
      for (std::size_t i = 0; i < kSidecarResultNames.size(); ++i) {
        it->second[i] = &sidecar_requests_->Add(
            {{"operation", std::string(op)}, {"result", std::string(kSidecarResultNames[i])}});
      }
    }
    it->second[std::min<std::size_t>(static_cast<std::size_t>(result), 2)]->Increment();
  }
  void RecordRedisRoundTrip(bool ok) {
    if (redis_ok_) (ok ? redis_ok_ : redis_error_)->Increment();
  }

  void Attach(std::weak_ptr<prometheus::Collectable> extra) {
    absl::MutexLock lock(&mu_);
    extras_.push_back(std::move(extra));
  }
  const std::shared_ptr<prometheus::Registry>& registry() const { return registry_; }

  std::vector<MetricFamily> Collect() const override {
    std::vector<MetricFamily> out;
    std::vector<std::shared_ptr<prometheus::Collectable>> extras;
    {
      absl::ReaderMutexLock lock(&mu_);
      CollectServer(out);
      CollectClient(out);
      for (const auto& weak : extras_) {
        if (auto extra = weak.lock()) extras.push_back(std::move(extra));
      }
    }
    // The registry and attached collectables take their own locks: not under ours.
    AppendNonEmpty(out, registry_->Collect());
    for (const auto& extra : extras) AppendNonEmpty(out, extra->Collect());
    return out;
  }

 private:
  // "<topic length>:<topic><method>#<kind>": unambiguous whatever the names hold.
  static std::string Key(std::string_view topic, std::string_view method, RequestKind kind) {
    return absl::StrCat(topic.size(), ":", A(topic), A(method), "#", static_cast<int>(kind));
  }

  std::string BoundTopic(std::string_view topic) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    const std::string_view t = BoundedLabel(topic);
    if (topics_.contains(A(t))) return std::string(t);
    if (topics_.size() >= options_.max_topics) return std::string(kMetricOtherLabel);
    topics_.emplace(t);
    return std::string(t);
  }

  void CollectServer(std::vector<MetricFamily>& out) const ABSL_SHARED_LOCKS_REQUIRED(mu_) {
    std::vector<MetricFamily> f;
    f.push_back(
        NewFamily(kMetricServerRequestsStarted, "Requests admitted to run.", MetricType::Counter));
    f.push_back(NewFamily(kMetricServerRequestsHandled,
                          "Requests that ran, by the code they ended with.", MetricType::Counter));
    f.push_back(NewFamily(kMetricServerQueueDuration,
                          "Time a request waited for a worker, in seconds.",
                          MetricType::Histogram));
    f.push_back(NewFamily(kMetricServerHandlerDuration, "Time a request's handler ran, in seconds.",
                          MetricType::Histogram));
    f.push_back(NewFamily(kMetricServerRequestSize, "Size of request bodies, in bytes.",
                          MetricType::Histogram));
    f.push_back(
        NewFamily(kMetricServerResponseSize, "Size of replies, in bytes.", MetricType::Histogram));
    using Cells = ServerMethodStats::Cells;
    for (const ServerMethodStats* s : server_order_) {
      const Labels labels = MethodLabelsOf(s->labels_);
      const auto& stripes = s->stripes_;
      AddCounter(f[0], labels, Sum(stripes, [](const Cells& c) { return c.started.Read(); }));
      for (std::size_t code = 0; code < MetricCode::kCount; ++code) {
        const std::uint64_t n =
            Sum(stripes, [code](const Cells& c) { return c.handled[code].Read(); });
        if (code == MetricCode::Ok().index() || n > 0) {
          AddCounter(f[1], With(labels, "code", CodeName(code)), n);
        }
      }
      AddHistogram<LatencyHistogram>(f[2], labels, Merge(stripes, &Cells::queue));
      AddHistogram<LatencyHistogram>(f[3], labels, Merge(stripes, &Cells::handler));
      AddHistogram<SizeHistogram>(f[4], labels, Merge(stripes, &Cells::request_size), true);
      AddHistogram<SizeHistogram>(f[5], labels, Merge(stripes, &Cells::response_size), true);
    }
    MetricFamily refused =
        NewFamily(kMetricServerRequestsRefused, "Requests refused before running, by reason.",
                  MetricType::Counter);
    MetricFamily beats =
        NewFamily(kMetricServerCallBeats, "Call heartbeats sent to callers.", MetricType::Counter);
    MetricFamily published =
        NewFamily(kMetricNotificationsPublished, "Notifications published.", MetricType::Counter);
    MetricFamily dropped =
        NewFamily(kMetricNotificationsDropped, "Notifications dropped before they were sent.",
                  MetricType::Counter);
    for (const TopicStats* t : topic_order_) {
      const Labels topic = {{"topic", t->topic_}};
      for (std::size_t r = 0; r < kRefusalReasonCount; ++r) {
        if (const std::uint64_t n = t->refused_[r].Read(); n > 0) {
          AddCounter(refused, With(topic, "reason", kReasonNames[r]), n);
        }
      }
      if (const std::uint64_t n = t->call_beats_.Read(); n > 0) AddCounter(beats, topic, n);
      if (const std::uint64_t n = t->published_.Read(); n > 0) AddCounter(published, topic, n);
      if (const std::uint64_t n = t->dropped_.Read(); n > 0) AddCounter(dropped, topic, n);
    }
    f.push_back(std::move(refused));
    f.push_back(std::move(beats));
    f.push_back(std::move(published));
    f.push_back(std::move(dropped));
    if (!options_.sidecar) {
      f.push_back(NewFamily(kMetricServerInFlight, "Requests admitted and not yet answered.",
                            MetricType::Gauge));
      AddGauge(f.back(), {}, in_flight.Read());
      f.push_back(NewFamily(kMetricServerQueuedBytes, "Bytes of requests waiting for a worker.",
                            MetricType::Gauge));
      AddGauge(f.back(), {}, queued_bytes.Read());
      f.push_back(
          NewFamily(kMetricServerConnections, "Connections to the service.", MetricType::Gauge));
      AddGauge(f.back(), {}, connections.Read());
    }
    AppendNonEmpty(out, std::move(f));
  }

  void CollectClient(std::vector<MetricFamily>& out) const ABSL_SHARED_LOCKS_REQUIRED(mu_) {
    std::vector<MetricFamily> f;
    f.push_back(NewFamily(kMetricClientCalls, "Calls made, by the code the application saw.",
                          MetricType::Counter));
    f.push_back(NewFamily(kMetricClientCallDuration,
                          "Time a call took as the application saw it (failover included), in "
                          "seconds.",
                          MetricType::Histogram));
    f.push_back(NewFamily(kMetricClientAttemptDuration,
                          "Time one attempt (one instance) took, in seconds.",
                          MetricType::Histogram));
    f.push_back(
        NewFamily(kMetricClientAttempts, "Attempts made, by outcome.", MetricType::Counter));
    f.push_back(NewFamily(kMetricClientRequestSize, "Size of requests sent, in bytes.",
                          MetricType::Histogram));
    f.push_back(NewFamily(kMetricClientResponseSize, "Size of replies received, in bytes.",
                          MetricType::Histogram));
    using Cells = ClientMethodStats::Cells;
    for (const ClientMethodStats* s : client_order_) {
      const Labels labels = MethodLabelsOf(s->labels_);
      const auto& stripes = s->stripes_;
      for (std::size_t code = 0; code < MetricCode::kCount; ++code) {
        const std::uint64_t n =
            Sum(stripes, [code](const Cells& c) { return c.calls[code].Read(); });
        if (code == MetricCode::Ok().index() || n > 0) {
          AddCounter(f[0], With(labels, "code", CodeName(code)), n);
        }
      }
      AddHistogram<LatencyHistogram>(f[1], labels, Merge(stripes, &Cells::call_duration));
      AddHistogram<LatencyHistogram>(f[2], labels, Merge(stripes, &Cells::attempt_duration));
      for (std::size_t o = 0; o < kAttemptOutcomeCount; ++o) {
        const std::uint64_t n = Sum(stripes, [o](const Cells& c) { return c.attempts[o].Read(); });
        if (o == 0 || n > 0) AddCounter(f[3], With(labels, "outcome", kOutcomeNames[o]), n);
      }
      AddHistogram<SizeHistogram>(f[4], labels, Merge(stripes, &Cells::request_size), true);
      AddHistogram<SizeHistogram>(f[5], labels, Merge(stripes, &Cells::response_size), true);
    }
    MetricFamily ejections = NewFamily(
        kMetricClientEjections, "Instances ejected after failing calls.", MetricType::Counter);
    MetricFamily probes = NewFamily(kMetricClientProbes, "Probes of ejected instances, by result.",
                                    MetricType::Counter);
    MetricFamily instances =
        NewFamily(kMetricClientInstances, "Instances of a topic the client knows, by state.",
                  MetricType::Gauge);
    for (const TopicStats* t : topic_order_) {
      const Labels topic = {{"topic", t->topic_}};
      if (const std::uint64_t n = t->ejections_.Read(); n > 0) AddCounter(ejections, topic, n);
      if (const std::uint64_t n = t->probes_ok_.Read(); n > 0) {
        AddCounter(probes, With(topic, "result", "ok"), n);
      }
      if (const std::uint64_t n = t->probes_failed_.Read(); n > 0) {
        AddCounter(probes, With(topic, "result", "error"), n);
      }
      if (t->instances_set_.load(std::memory_order_relaxed)) {
        AddGauge(instances, With(topic, "state", "healthy"), t->healthy_.Read());
        AddGauge(instances, With(topic, "state", "ejected"), t->ejected_.Read());
      }
    }
    f.push_back(std::move(ejections));
    f.push_back(std::move(probes));
    f.push_back(std::move(instances));
    AppendNonEmpty(out, std::move(f));
  }

  static std::string_view CodeName(std::size_t index) {
    return index == 0 ? MetricCode::Ok().name()
                      : MetricCode::Of(static_cast<ErrorKind>(index - 1)).name();
  }

  const MetricsOptions options_;
  const std::shared_ptr<prometheus::Registry> registry_;
  // Created in the constructor, never changed: read without the lock.
  std::array<prometheus::Counter*, 3> lookups_{};
  prometheus::Histogram* lookup_duration_ = nullptr;
  prometheus::Gauge* registrations_ = nullptr;
  prometheus::Gauge* watchers_ = nullptr;
  prometheus::Family<prometheus::Counter>* sidecar_requests_ = nullptr;
  prometheus::Counter* redis_ok_ = nullptr;
  prometheus::Counter* redis_error_ = nullptr;

  mutable absl::Mutex mu_;
  absl::flat_hash_set<std::string> topics_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string, std::unique_ptr<ServerMethodStats>> server_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string, std::unique_ptr<ClientMethodStats>> client_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string, std::unique_ptr<TopicStats>> topic_stats_ ABSL_GUARDED_BY(mu_);
  // Creation order, so a scrape lists series in a stable order.
  std::vector<ServerMethodStats*> server_order_ ABSL_GUARDED_BY(mu_);
  std::vector<ClientMethodStats*> client_order_ ABSL_GUARDED_BY(mu_);
  std::vector<TopicStats*> topic_order_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string, std::array<prometheus::Counter*, 3>> sidecar_ops_
      ABSL_GUARDED_BY(mu_);
  std::vector<std::weak_ptr<prometheus::Collectable>> extras_ ABSL_GUARDED_BY(mu_);
};

Metrics::Metrics(MetricsOptions options) : store_(std::make_shared<MetricsStore>(options)) {}

Metrics::~Metrics() {
  absl::MutexLock lock(&listen_mu_);
  exposer_.reset();
}

ServerMethodStats* Metrics::ServerMethod(std::string_view topic, std::string_view method,
                                         RequestKind kind, bool registered) {
  return store_->ServerMethod(topic, method, kind, registered);
}
ClientMethodStats* Metrics::ClientMethod(std::string_view topic, std::string_view method,
                                         RequestKind kind) {
  return store_->ClientMethod(topic, method, kind);
}
TopicStats* Metrics::Topic(std::string_view topic) { return store_->Topic(topic); }
void Metrics::RecordRefused(std::string_view topic, RefusalReason reason) {
  store_->Topic(topic)->RecordRefused(reason);
}
GaugeCell& Metrics::in_flight() { return store_->in_flight; }
GaugeCell& Metrics::queued_bytes() { return store_->queued_bytes; }
GaugeCell& Metrics::connections() { return store_->connections; }
void Metrics::RecordMatchmakerLookup(LookupResult result, double seconds) {
  store_->RecordMatchmakerLookup(result, seconds);
}
void Metrics::SetSidecarRegistrations(std::int64_t n) { store_->SetRegistrations(n); }
void Metrics::SetSidecarWatchers(std::int64_t n) { store_->SetWatchers(n); }
void Metrics::RecordSidecarRequest(std::string_view operation, SidecarResult result) {
  store_->RecordSidecarRequest(operation, result);
}
void Metrics::RecordRedisRoundTrip(bool ok) { store_->RecordRedisRoundTrip(ok); }

std::string Metrics::Text() const {
  return prometheus::TextSerializer().Serialize(store_->Collect());
}

absl::Status Metrics::Listen(const std::string& address, bool insecure) {
  absl::StatusOr<std::string> ports = MetricsListenPorts(address, insecure);
  if (!ports.ok()) return ports.status();
  absl::MutexLock lock(&listen_mu_);
  if (exposer_) {
    return absl::FailedPreconditionError(
        absl::StrCat("metrics endpoint already listening on port ", port_.load()));
  }
  std::unique_ptr<prometheus::Exposer> exposer;
  try {
    // civetweb throws when it cannot bind (address in use, not an address of this host).
    exposer = std::make_unique<prometheus::Exposer>(*ports, /*num_threads=*/2);
  } catch (const std::exception& e) {
    return absl::UnavailableError(absl::StrCat("metrics endpoint: cannot listen on ",
                                               A(BoundedLabel(address)), ": ", e.what()));
  }
  const std::vector<int> bound = exposer->GetListeningPorts();
  if (bound.empty()) {
    return absl::UnavailableError(absl::StrCat("metrics endpoint: cannot listen on ",
                                               A(BoundedLabel(address)), ": no port bound"));
  }
  exposer->RegisterCollectable(store_);
  port_.store(bound.front());
  exposer_ = std::move(exposer);
  return absl::OkStatus();
}

int Metrics::listening_port() const { return port_.load(); }

std::shared_ptr<prometheus::Registry> Metrics::registry() const { return store_->registry(); }
std::shared_ptr<prometheus::Collectable> Metrics::collectable() const { return store_; }
void Metrics::Attach(std::weak_ptr<prometheus::Collectable> extra) {
  store_->Attach(std::move(extra));
}

}  // namespace zrpc::internal
