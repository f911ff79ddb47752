// SPDX-License-Identifier: Apache-2.0
#include "client/call_monitor.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "zrpc/errors.h"

namespace zrpc::internal {

void CallMonitor::Add(std::string msg_id, Call call, absl::Time now) {
  call.last_heard = now;
  next_check_ = std::min({next_check_, call.deadline, now + kSilentBeatsForPeerLost * call.beat});
  auto it = calls_.find(msg_id);
  if (it != calls_.end()) Erase(it);
  ++per_endpoint_[call.endpoint];
  calls_.emplace(std::move(msg_id), std::move(call));
}

void CallMonitor::Erase(absl::flat_hash_map<std::string, Call>::iterator it) {
  auto n = per_endpoint_.find(it->second.endpoint);
  // An endpoint's count stays at 0 rather than being erased (its key would be allocated again by
  // the next call there), unless many endpoints have been used.
  if (n != per_endpoint_.end() && --n->second <= 0 && per_endpoint_.size() > 64) {
    per_endpoint_.erase(n);
  }
  calls_.erase(it);
}

CallMonitor::Call* CallMonitor::Heard(std::string_view msg_id, std::string_view endpoint,
                                      absl::Time now, int64_t beat_ms) {
  auto it = calls_.find(absl::string_view(msg_id.data(), msg_id.size()));
  // A frame from another peer that carries our msg_id is not our reply.
  if (it == calls_.end() || it->second.endpoint != endpoint) return nullptr;
  it->second.last_heard = now;
  if (beat_ms > 0) {
    // A shorter interval announced makes silence show sooner.
    it->second.beat = absl::Milliseconds(beat_ms);
    next_check_ = std::min(next_check_, now + kSilentBeatsForPeerLost * it->second.beat);
  }
  return &it->second;
}

const CallMonitor::Call* CallMonitor::Find(std::string_view msg_id) const {
  auto it = calls_.find(absl::string_view(msg_id.data(), msg_id.size()));
  return it == calls_.end() ? nullptr : &it->second;
}

void CallMonitor::Remove(std::string_view msg_id) {
  auto it = calls_.find(absl::string_view(msg_id.data(), msg_id.size()));
  if (it != calls_.end()) Erase(it);
}

std::vector<CallMonitor::Ended> CallMonitor::Expire(absl::Time now) {
  std::vector<Ended> ended;
  if (now < next_check_) return ended;
  absl::Time next = absl::InfiniteFuture();
  for (auto it = calls_.begin(); it != calls_.end();) {
    const Call& c = it->second;
    const absl::Time silent = c.last_heard + kSilentBeatsForPeerLost * c.beat;
    absl::Status status;
    if (now >= c.deadline) {
      status = TimeoutFor(c);
    } else if (now >= silent) {
      status = PeerLostFor(c);
    }
    if (status.ok()) {
      next = std::min({next, c.deadline, silent});
      ++it;
      continue;
    }
    ended.push_back(Ended{it->first, it->second, std::move(status)});
    Erase(it++);
  }
  next_check_ = next;
  return ended;
}

std::vector<CallMonitor::Ended> CallMonitor::LoseEndpoint(std::string_view endpoint) {
  std::vector<Ended> ended;
  for (auto it = calls_.begin(); it != calls_.end();) {
    if (it->second.endpoint != endpoint) {
      ++it;
      continue;
    }
    absl::Status status = PeerLostFor(it->second);
    ended.push_back(Ended{it->first, it->second, std::move(status)});
    Erase(it++);
  }
  return ended;
}

absl::Time CallMonitor::NextWake() const {
  return calls_.empty() ? absl::InfiniteFuture() : next_check_;
}

bool CallMonitor::HasCallsOn(std::string_view endpoint) const {
  auto n = per_endpoint_.find(absl::string_view(endpoint.data(), endpoint.size()));
  return n != per_endpoint_.end() && n->second > 0;
}

absl::Status CallMonitor::TimeoutFor(const Call& call) {
  return TimeoutError(call.topic, call.method,
                      absl::StrCat("no reply from ", call.host, " before the deadline"));
}

absl::Status CallMonitor::PeerLostFor(const Call& call) {
  return PeerLostError(call.topic, call.host);
}

}  // namespace zrpc::internal
