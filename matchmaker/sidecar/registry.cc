// SPDX-License-Identifier: Apache-2.0
#include "matchmaker/sidecar/registry.h"

#include "absl/algorithm/container.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
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
  Client& c = clients_[owner.connection];
  if (c.number == 0) c.number = next_client_++;
  if (c.name != owner.client) c.name = owner.client;
  if (owner.pid != c.pid || owner.start != c.start) {
    c.pid = owner.pid;
    c.start = owner.start;
    // Trust the pid only when that process of ours started when the client says it did: a
    // client on another host, or in another pid namespace, falls back to the TTL.
    c.local = owner.pid > 0 && owner.start > 0 && ProcessStartTime(owner.pid) == owner.start;
  }
  c.last_seen = std::max(c.last_seen, now);
  const std::string& principal = owner.principal.empty() ? owner.connection : owner.principal;
  if (c.principal != principal) {
    // Its caller changed (a routing id reused from another address): the share moves along.
    const size_t held = c.held;
    Hold(c, -static_cast<int64_t>(held));
    c.principal = principal;
    Hold(c, static_cast<int64_t>(held));
  }
  return c;
}

void Registry::Hold(Client& c, int64_t delta) {
  c.held = static_cast<size_t>(static_cast<int64_t>(c.held) + delta);
  if (delta == 0) return;
  size_t& total = held_by_principal_[c.principal];
  total = static_cast<size_t>(static_cast<int64_t>(total) + delta);
  if (total == 0) held_by_principal_.erase(c.principal);
}

void Registry::Touch(const Owner& owner, absl::Time now) { Heard(owner, now); }

absl::Status Registry::Add(const Owner& owner, const std::vector<Registration>& regs,
                           absl::Time now, Changes* changed) {
  Client& c = Heard(owner, now);
  const uint64_t client = c.number;
  if (regs.size() > limits_.per_request) {
    return absl::ResourceExhaustedError(absl::StrCat("a request carries ", regs.size(),
                                                     " registrations; the sidecar takes at most ",
                                                     limits_.per_request, " per request"));
  }
  // Checked before anything changes, so that a refused request holds nothing new. (A
  // registration listed twice counts twice here: the check errs on the safe side.)
  size_t new_for_client = 0, new_in_table = 0;
  for (const Registration& r : regs) {
    auto it = owner_of_.find(r);
    if (it == owner_of_.end()) {
      ++new_in_table;
      ++new_for_client;
    } else if (absl::c_find(it->second, client) == it->second.end()) {
      ++new_for_client;
    }
  }
  auto share = held_by_principal_.find(c.principal);
  const size_t held = share == held_by_principal_.end() ? 0 : share->second;
  if (held + new_for_client > limits_.per_client) {
    if (absl::Now() - last_share_warning_ > absl::Seconds(10)) {
      last_share_warning_ = absl::Now();
      ZRPC_LOG(kWarning,
               "refusing %d registrations of client %s: its caller (%s) would hold %d, over its "
               "share of %d",
               static_cast<int>(new_for_client), owner.client, absl::CHexEscape(c.principal),
               static_cast<int>(held + new_for_client), static_cast<int>(limits_.per_client));
    }
    return absl::ResourceExhaustedError(
        absl::StrCat("this caller (with keys its identity, without keys its address) would own ",
                     held + new_for_client, " registrations; the sidecar allows at most ",
                     limits_.per_client, " per caller"));
  }
  if (owner_of_.size() + new_in_table > limits_.total) {
    ZRPC_LOG(kWarning,
             "refusing %d registrations of client %s: the table is full (%d of at most %d)",
             static_cast<int>(new_in_table), owner.client, static_cast<int>(owner_of_.size()),
             static_cast<int>(limits_.total));
    return absl::ResourceExhaustedError(
        absl::StrCat("the sidecar holds ", owner_of_.size(), " registrations and takes at most ",
                     limits_.total, "; ", new_in_table, " more do not fit"));
  }
  owner_of_.reserve(owner_of_.size() + new_in_table);
  std::vector<Registration> fresh;
  for (const Registration& r : regs) {
    auto [it, inserted] = owner_of_.try_emplace(r);
    if (inserted) {
      it->second.push_back(client);
      fresh.push_back(r);
      Hold(c, 1);
    } else if (absl::c_find(it->second, client) == it->second.end()) {
      it->second.push_back(client);  // held by another connection as well: now by both
      Hold(c, 1);
    }
  }
  if (fresh.empty()) return absl::OkStatus();
  if (absl::Status s = RegisterFresh(fresh, &c); !s.ok()) return s;
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

absl::Status Registry::RegisterFresh(const std::vector<Registration>& fresh, Client* client) {
  auto forget = [&](size_t from) {
    for (size_t j = from; j < fresh.size(); ++j) {
      if (owner_of_.erase(fresh[j]) > 0) Hold(*client, -1);
    }
  };
  if (bulk_ != nullptr && fresh.size() > 1) {
    absl::Status s = bulk_->RegisterAll(fresh);
    if (!s.ok()) forget(0);
    return s;
  }
  for (size_t i = 0; i < fresh.size(); ++i) {
    if (absl::Status s = backend_->Register(fresh[i]); !s.ok()) {
      forget(i);
      return s;
    }
  }
  return absl::OkStatus();
}

absl::Status Registry::Remove(const Owner& owner, const Registration& r, Changes* changed) {
  auto it = owner_of_.find(r);
  if (it == owner_of_.end()) return absl::OkStatus();
  auto c = clients_.find(owner.connection);
  auto mine = c == clients_.end() ? it->second.end() : absl::c_find(it->second, c->second.number);
  if (mine == it->second.end()) {
    ZRPC_LOG(kWarning, "refused to withdraw %s %s on %s for client %s: another connection owns it",
             r.exchange, r.Key(), r.host, owner.client);
    return absl::PermissionDeniedError(absl::StrCat(
        "cannot withdraw ", absl::CHexEscape(r.Key()), " on host ", absl::CHexEscape(r.host),
        " at ", absl::CHexEscape(r.endpoint),
        ": another connection registered it, and only the connection that registered something "
        "may withdraw it"));
  }
  it->second.erase(mine);
  Hold(c->second, -1);
  if (!it->second.empty()) return absl::OkStatus();  // another owner still holds it
  owner_of_.erase(it);
  changed->Add(r.Key());
  ZRPC_LOG(kInfo, "unregistered %s %s on %s at %s", r.exchange, r.Key(), r.host, r.endpoint);
  return backend_->Unregister(r);
}

void Registry::DropClients(const std::vector<std::string>& clients, const char* why,
                           Changes* changed) {
  struct Dropped {
    std::string name;
    pid_t pid;
    int registrations = 0;
  };
  absl::flat_hash_map<uint64_t, Dropped> dropped;  // by client number
  for (const std::string& id : clients) {
    auto it = clients_.find(id);
    if (it == clients_.end()) continue;
    dropped[it->second.number] = Dropped{it->second.name, it->second.pid};
    Hold(it->second, -static_cast<int64_t>(it->second.held));  // all of it goes below
    clients_.erase(it);
  }
  std::vector<Registration> gone;
  for (auto& [r, owners] : owner_of_) {
    for (size_t i = 0; i < owners.size();) {
      if (auto d = dropped.find(owners[i]); d != dropped.end()) {
        ++d->second.registrations;
        owners.erase(owners.begin() + i);
      } else {
        ++i;
      }
    }
    if (owners.empty()) gone.push_back(r);
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
    ZRPC_LOG(kInfo, "dropped %d registrations of client %s (pid %d): %s", d.registrations, d.name,
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
