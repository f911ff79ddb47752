// SPDX-License-Identifier: Apache-2.0
#include "matchmaker/sidecar/registry.h"

#include "matchmaker/process.h"
#include "src/base/log_internal.h"

namespace zrpc::internal::sidecar {
namespace {

// More changed keys than this in one round are announced as one "*".
constexpr size_t kMaxNotices = 64;
// A request that adds more registrations than this is logged as one line, not one per
// registration.
constexpr size_t kLoggedOneByOne = 8;

}  // namespace

void Changes::Add(std::string key) {
  if (all_) return;
  if (key == kAnyKey || keys_.size() >= kMaxNotices) {
    all_ = true;
    keys_.clear();
    return;
  }
  keys_.insert(std::move(key));
}

std::vector<std::string> Changes::Take() {
  std::vector<std::string> out = all_ ? std::vector<std::string>{std::string(kAnyKey)}
                                      : std::vector<std::string>(keys_.begin(), keys_.end());
  keys_.clear();
  all_ = false;
  return out;
}

Registry::Client& Registry::Heard(const Owner& owner, absl::Time now) {
  Client& c = clients_[owner.client];
  if (c.number == 0) c.number = next_client_++;
  if (owner.pid != c.pid || owner.start != c.start) {
    c.pid = owner.pid;
    c.start = owner.start;
    // Trust the pid only when that process of ours started when the client says it did: a
    // client on another host, or in another pid namespace, falls back to the TTL.
    c.local = owner.pid > 0 && owner.start > 0 && ProcessStartTime(owner.pid) == owner.start;
  }
  c.last_seen = std::max(c.last_seen, now);
  return c;
}

void Registry::Touch(const Owner& owner, absl::Time now) { Heard(owner, now); }

absl::Status Registry::Add(const Owner& owner, const std::vector<Registration>& regs,
                           absl::Time now, Changes* changed) {
  const uint64_t client = Heard(owner, now).number;
  owner_of_.reserve(owner_of_.size() + regs.size());
  std::vector<Registration> fresh;
  for (const Registration& r : regs) {
    auto [it, inserted] = owner_of_.try_emplace(r, client);
    if (inserted) {
      fresh.push_back(r);
    } else {
      it->second = client;  // known: refreshed (or now this client's, e.g. after a reconnect)
    }
  }
  if (fresh.empty()) return absl::OkStatus();
  if (absl::Status s = RegisterFresh(fresh); !s.ok()) return s;
  for (const Registration& r : fresh) {
    changed->Add(r.Key());
    if (fresh.size() <= kLoggedOneByOne) {
      ZRPC_LOG(kInfo, "registered %s %s on %s at %s", r.exchange, r.Key(), r.host, r.endpoint);
    }
  }
  if (fresh.size() > kLoggedOneByOne) {
    ZRPC_LOG(kInfo, "registered %d registrations of client %s", static_cast<int>(fresh.size()),
             owner.client);
  }
  return absl::OkStatus();
}

absl::Status Registry::RegisterFresh(const std::vector<Registration>& fresh) {
  if (bulk_ != nullptr && fresh.size() > 1) {
    absl::Status s = bulk_->RegisterAll(fresh);
    if (!s.ok()) {
      for (const Registration& r : fresh) owner_of_.erase(r);
    }
    return s;
  }
  for (size_t i = 0; i < fresh.size(); ++i) {
    if (absl::Status s = backend_->Register(fresh[i]); !s.ok()) {
      for (size_t j = i; j < fresh.size(); ++j) owner_of_.erase(fresh[j]);
      return s;
    }
  }
  return absl::OkStatus();
}

absl::Status Registry::Remove(const Registration& r, Changes* changed) {
  if (owner_of_.erase(r) == 0) return absl::OkStatus();
  changed->Add(r.Key());
  ZRPC_LOG(kInfo, "unregistered %s %s on %s at %s", r.exchange, r.Key(), r.host, r.endpoint);
  return backend_->Unregister(r);
}

void Registry::DropClients(const std::vector<std::string>& clients, const char* why,
                           Changes* changed) {
  struct Dropped {
    std::string id;
    pid_t pid;
    int registrations = 0;
  };
  absl::flat_hash_map<uint64_t, Dropped> dropped;  // by client number
  for (const std::string& id : clients) {
    auto it = clients_.find(id);
    if (it == clients_.end()) continue;
    dropped[it->second.number] = Dropped{id, it->second.pid};
    clients_.erase(it);
  }
  std::vector<Registration> gone;
  for (const auto& [r, client] : owner_of_) {
    if (auto d = dropped.find(client); d != dropped.end()) {
      gone.push_back(r);
      ++d->second.registrations;
    }
  }
  for (const Registration& r : gone) {
    owner_of_.erase(r);
    changed->Add(r.Key());
    if (absl::Status s = backend_->Unregister(r); !s.ok()) {
      ZRPC_LOG(kWarning, "backend: cannot withdraw %s on %s: %s", r.Key(), r.host, s.message());
    }
  }
  for (const auto& [number, d] : dropped) {
    if (d.registrations == 0) continue;
    ZRPC_LOG(kInfo, "dropped %d registrations of client %s (pid %d): %s", d.registrations, d.id,
             static_cast<int>(d.pid), why);
  }
}

void Registry::Expire(absl::Time now, Changes* changed) {
  std::vector<std::string> silent;
  for (const auto& [id, c] : clients_) {
    if (now - c.last_seen > ttl_) silent.push_back(id);
  }
  if (!silent.empty()) DropClients(silent, "expired (no heartbeat)", changed);
}

void Registry::DropExited(Changes* changed) {
  std::vector<std::string> exited;
  for (const auto& [id, c] : clients_) {
    if (c.local && !ProcessAlive(c.pid, c.start)) exited.push_back(id);
  }
  if (!exited.empty()) DropClients(exited, "its process exited", changed);
}

}  // namespace zrpc::internal::sidecar
