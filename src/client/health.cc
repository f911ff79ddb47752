// SPDX-License-Identifier: Apache-2.0
#include "client/health.h"

#include <algorithm>

namespace zrpc::internal {

bool InstanceHealth::IsEjected(std::string_view endpoint) const {
  if (ejected_.load(std::memory_order_relaxed) == 0) return false;
  absl::MutexLock lock(&mu_);
  return entries_.contains(absl::string_view(endpoint.data(), endpoint.size()));
}

void InstanceHealth::Eject(Probe probe, absl::Time now) {
  std::string topic = probe.topic;
  {
    absl::MutexLock lock(&mu_);
    auto it = entries_.find(probe.endpoint);
    if (it != entries_.end()) return;  // already out; its probe schedule stands
    const std::string endpoint = probe.endpoint;
    entries_.emplace(endpoint,
                     Entry{std::move(probe), options_.first_probe, now + options_.first_probe});
    Changed();
  }
  if (metrics_ != nullptr) metrics_->Topic(topic)->RecordEjection();
}

void InstanceHealth::Restore(std::string_view endpoint) {
  if (ejected_.load(std::memory_order_relaxed) == 0) return;
  absl::MutexLock lock(&mu_);
  if (entries_.erase(absl::string_view(endpoint.data(), endpoint.size())) > 0) Changed();
}

void InstanceHealth::ProbeAnswered(const Probe& probe, bool ok) {
  if (metrics_ != nullptr) metrics_->Topic(probe.topic)->RecordProbe(ok);
  if (ok) Restore(probe.endpoint);
}

std::vector<InstanceHealth::Probe> InstanceHealth::DueProbes(absl::Time now) {
  std::vector<Probe> due;
  absl::MutexLock lock(&mu_);
  for (auto& [endpoint, e] : entries_) {
    if (e.next_probe > now) continue;
    due.push_back(e.probe);
    e.backoff = std::min(e.backoff * 2, options_.max_probe_interval);
    e.next_probe = now + e.backoff;
  }
  return due;
}

absl::Time InstanceHealth::NextProbe() const {
  absl::MutexLock lock(&mu_);
  absl::Time next = absl::InfiniteFuture();
  for (const auto& [endpoint, e] : entries_) next = std::min(next, e.next_probe);
  return next;
}

void InstanceHealth::Retain(const absl::flat_hash_set<std::string>& live) {
  absl::MutexLock lock(&mu_);
  if (absl::erase_if(entries_, [&](const auto& entry) { return !live.contains(entry.first); }) >
      0) {
    Changed();
  }
}

}  // namespace zrpc::internal
