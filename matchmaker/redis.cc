// SPDX-License-Identifier: Apache-2.0
#include "matchmaker/redis.h"

#include <hiredis/hiredis.h>
#include <poll.h>

#include <algorithm>
#include <atomic>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "matchmaker/registration_json.h"
#include "src/base/log_internal.h"
#include "zrpc/value.h"
#include "src/base/thread.h"

namespace zrpc::internal {
namespace {

using Command = RedisConnection::Command;

constexpr char kChannel[] = "zrpc:changes";
constexpr char kAll[] = "zrpc:all";
// How often a process with registrations checks its connection (and reconnects) in the
// background: bounds how long a restarted Redis lacks them.
constexpr absl::Duration kKeepInterval = absl::Milliseconds(200);
// Ids per SADD in a heartbeat: keeps each command of a big pipeline small.
constexpr size_t kIdsPerCommand = 1000;

std::string IndexKey(std::string_view exchange, std::string_view key) {
  return absl::StrCat("zrpc:idx:", absl::string_view(exchange.data(), exchange.size()), "|",
                      absl::string_view(key.data(), key.size()));
}

// Stable and unique per registration; readable in redis-cli.
std::string IdOf(const Registration& r) {
  return absl::StrCat(r.exchange, "|", r.Key(), "|", r.host, "|",
                      absl::Hex(RegistrationHash()(r), absl::kZeroPad16));
}

// Appends "CMD key ids..." commands, at most kIdsPerCommand ids each.
void AppendChunked(const char* cmd, const std::string& key, const std::vector<std::string>& ids,
                   std::vector<Command>* out) {
  for (size_t i = 0; i < ids.size(); i += kIdsPerCommand) {
    Command c = {cmd, key};
    const size_t end = std::min(ids.size(), i + kIdsPerCommand);
    c.insert(c.end(), ids.begin() + i, ids.begin() + end);
    out->push_back(std::move(c));
  }
}

}  // namespace

absl::StatusOr<std::unique_ptr<RedisMatchmaker>> RedisMatchmaker::Create(std::string_view url) {
  absl::StatusOr<RedisAddress> a = ParseRedisUrl(url);
  if (!a.ok()) return a.status();
  auto mm = std::unique_ptr<RedisMatchmaker>(new RedisMatchmaker(std::string(url), *a));
  {
    // Not fatal: clients serve from cache and services re-register when Redis comes back.
    absl::MutexLock lock(&mm->mu_);
    absl::StatusOr<std::vector<RedisConnection::Reply>> ping = mm->conn_.Run({{"PING"}});
    if (!ping.ok()) ZRPC_LOG(kWarning, "%s (will keep retrying)", ping.status().message());
  }
  mm->keeper_ = StartThread([raw = mm.get()] { raw->KeepConnected(); });
  return mm;
}

RedisMatchmaker::~RedisMatchmaker() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  if (keeper_.joinable()) keeper_.join();
}

absl::Time RedisMatchmaker::LastReconnect() const ABSL_NO_THREAD_SAFETY_ANALYSIS {
  return conn_.last_reconnect();  // an atomic: needs no lock
}

void RedisMatchmaker::SetRoundTripObserver(std::function<void(bool ok)> observer) {
  absl::MutexLock lock(&mu_);
  conn_.set_round_trip_observer(std::move(observer));
}

std::vector<Command> RedisMatchmaker::StoreCommands(
    const std::vector<Own::const_pointer>& regs) const {
  const std::string ttl_ms = std::to_string(absl::ToInt64Milliseconds(address_.ttl));
  // Index sets outlive their members by a margin and vanish once nobody refreshes them.
  const std::string index_ttl_ms = std::to_string(absl::ToInt64Milliseconds(address_.ttl * 10));
  std::vector<Command> cmds;
  cmds.reserve(regs.size() + 4);
  absl::flat_hash_map<std::string, std::vector<std::string>> by_index;
  std::vector<std::string> all;
  all.reserve(regs.size());
  for (const auto* entry : regs) {
    const Registration& r = entry->first;
    const Stored& s = entry->second;
    cmds.push_back({"SET", "zrpc:reg:" + s.id, s.json, "PX", ttl_ms});
    by_index[IndexKey(r.exchange, r.Key())].push_back(s.id);
    all.push_back(s.id);
  }
  for (const auto& [index, ids] : by_index) {
    AppendChunked("SADD", index, ids, &cmds);
    cmds.push_back({"PEXPIRE", index, index_ttl_ms});
  }
  AppendChunked("SADD", kAll, all, &cmds);
  return cmds;
}

std::vector<Command> RedisMatchmaker::StoreAllCommands() const {
  std::vector<Own::const_pointer> all;
  all.reserve(own_.size());
  for (const auto& entry : own_) all.push_back(&entry);
  return StoreCommands(all);
}

void RedisMatchmaker::RestoreIfReconnected() {
  if (!conn_.TakeReconnected() || own_.empty()) return;
  // Redis may have restarted empty: everything of ours goes back at once, not at the next
  // heartbeat, and watchers hear of it.
  std::vector<Command> cmds = StoreAllCommands();
  cmds.push_back({"PUBLISH", kChannel, "*"});
  absl::StatusOr<std::vector<RedisConnection::Reply>> replies = Checked(cmds, conn_.Run(cmds));
  if (replies.ok()) {
    ZRPC_LOG(kInfo, "registered %d registrations again with %s", static_cast<int>(own_.size()),
             url_);
  }
}

absl::StatusOr<std::vector<RedisConnection::Reply>> RedisMatchmaker::Run(
    const std::vector<Command>& cmds, size_t checked) {
  conn_.CheckIdle();
  if (absl::StatusOr<redisContext*> c = conn_.Connected(); !c.ok()) return c.status();
  RestoreIfReconnected();
  return Checked(cmds, conn_.Run(cmds), checked);
}

absl::StatusOr<std::vector<RedisConnection::Reply>> RedisMatchmaker::Checked(
    const std::vector<Command>& cmds, absl::StatusOr<std::vector<RedisConnection::Reply>> replies,
    size_t checked) {
  if (!replies.ok()) return replies;
  if (replies->size() != cmds.size()) {
    return absl::InternalError(absl::StrCat("redis at ", conn_.address().host, ":",
                                            conn_.address().port, " answered ", replies->size(),
                                            " replies to ", cmds.size(), " commands"));
  }
  for (size_t i = 0; i < replies->size() && i < cmds.size() && i < checked; ++i) {
    const RedisConnection::Reply& r = (*replies)[i];
    if (!r.error) continue;
    // "CMD key": enough to find the culprit in redis-cli (never the values: a SET's JSON).
    const std::string what = absl::StrCat(cmds[i][0], cmds[i].size() > 1 ? " " : "",
                                          cmds[i].size() > 1 ? cmds[i][1] : "");
    const std::string text = absl::StrCat(conn_.address().host, ":", conn_.address().port,
                                          " answered ", what, " with an error: ", r.str);
    LogOnce(absl::StrCat(what, "\n", r.str),
            absl::StrCat("redis at ", text, " (logged once; every call that meets it fails)"));
    const bool transient = absl::StartsWith(r.str, "LOADING") || absl::StartsWith(r.str, "BUSY") ||
                           absl::StartsWith(r.str, "TRYAGAIN") ||
                           absl::StartsWith(r.str, "MASTERDOWN");
    const std::string message = absl::StrCat("redis at ", absl::CHexEscape(text));
    return transient ? absl::UnavailableError(message) : absl::InternalError(message);
  }
  return replies;
}

void RedisMatchmaker::LogOnce(const std::string& key, const std::string& line) {
  constexpr size_t kRemembered = 256;
  if (logged_.contains(key)) return;
  if (logged_.size() >= kRemembered) logged_.clear();  // bounded: an old error may be logged again
  logged_.insert(key);
  ZRPC_LOG(kWarning, "%s", line);
}

absl::StatusOr<std::vector<Registration>> RedisMatchmaker::Scan(const std::string& index,
                                                                const size_t max_found,
                                                                const size_t max_scanned) {
  std::vector<Registration> out;
  absl::flat_hash_set<std::string> seen;  // SSCAN may return a member twice
  std::vector<std::string> page;          // ids read, their registrations not yet fetched
  std::vector<std::string> expired;       // ids to remove from the index
  std::string cursor = "0";
  bool ended = false;                     // the scan went through the whole set
  // SSCAN's COUNT is a hint: bound the round trips as well as the ids.
  const size_t max_rounds = max_scanned / kIdsPerCommand + 16;
  for (size_t round = 0;; ++round) {
    // One round trip: the registrations of the last page, the removal of the expired ids found
    // in it before, and the next page. Only the first two are checked: a failed removal (say, a
    // wrong-typed zrpc:all) must not fail the lookup.
    std::vector<Command> cmds;
    for (size_t i = 0; i < page.size(); i += kIdsPerCommand) {
      Command mget = {"MGET"};
      for (size_t j = i; j < std::min(page.size(), i + kIdsPerCommand); ++j) {
        mget.push_back("zrpc:reg:" + page[j]);
      }
      cmds.push_back(std::move(mget));
    }
    const size_t mgets = cmds.size();
    const bool ask = !ended && round < max_rounds && seen.size() < max_scanned &&
                     out.size() + page.size() < max_found;
    if (ask) cmds.push_back({"SSCAN", index, cursor, "COUNT", std::to_string(kIdsPerCommand)});
    const size_t checked = cmds.size();
    AppendChunked("SREM", index, expired, &cmds);
    if (index != kAll) AppendChunked("SREM", kAll, expired, &cmds);
    expired.clear();
    if (cmds.empty()) break;
    absl::StatusOr<std::vector<RedisConnection::Reply>> replies = Run(cmds, checked);
    if (!replies.ok()) return replies.status();
    // The registrations of the page.
    size_t item = 0;
    for (size_t c = 0; c < mgets; ++c) {
      for (const RedisConnection::Reply& value : (*replies)[c].elements) {
        if (item >= page.size()) break;
        const std::string& id = page[item++];
        if (value.nil) {  // expired (its service stopped heartbeating), or never stored
          expired.push_back(id);
          continue;
        }
        absl::StatusOr<Value> v = ParseJson(value.str);
        absl::StatusOr<Registration> r =
            v.ok() ? RegistrationFromValue(*v) : absl::StatusOr<Registration>(v.status());
        if (!r.ok()) {
          // Skipped; the rules on names and endpoints are applied where routes are built.
          LogOnce(absl::StrCat("bad\n", id),
                  absl::StrCat(url_, ": skipping zrpc:reg:", id, " (in ", index,
                               "), not a registration: ", r.status().message(), " (logged once)"));
          continue;
        }
        if (out.size() < max_found) out.push_back(*std::move(r));
      }
    }
    page.clear();
    if (!ask) continue;  // a last round that only fetched or removed
    const RedisConnection::Reply& next = (*replies)[mgets];
    if (next.elements.size() != 2) {
      return absl::InternalError(absl::StrCat("redis at ", conn_.address().host, ":",
                                              conn_.address().port,
                                              ": SSCAN answered something that is not a page"));
    }
    bool cut = false;
    for (const RedisConnection::Reply& m : next.elements[1].elements) {
      if (seen.contains(m.str)) continue;
      if (seen.size() >= max_scanned) {  // the rest waits for a later lookup
        cut = true;
        break;
      }
      seen.insert(m.str);
      page.push_back(m.str);
    }
    cursor = next.elements[0].str;
    ended = cursor == "0" && !cut;
  }
  if (!ended) {
    LogOnce(absl::StrCat("cap\n", index),
            absl::StrCat(url_, ": ", index, " holds more than ", seen.size(),
                         " ids; only those are read per lookup (logged once)"));
  }
  SortRegistrations(&out);
  return out;
}

void RedisMatchmaker::KeepConnected() {
  absl::MutexLock lock(&mu_);
  while (true) {
    mu_.AwaitWithTimeout(absl::Condition(&stopping_), kKeepInterval);
    if (stopping_) return;
    if (own_.empty()) continue;  // nothing to restore: callers reconnect on demand
    conn_.CheckIdle();
    if (!conn_.connected()) {
      mu_.Unlock();  // connecting may take the connect timeout: callers must not wait for it
      absl::StatusOr<redisContext*> c = RedisConnection::Dial(address_);
      mu_.Lock();
      if (!c.ok()) continue;
      conn_.Adopt(*c);
    }
    RestoreIfReconnected();
  }
}

absl::Status RedisMatchmaker::Register(const Registration& r) { return Store({r}, r.Key()); }

absl::Status RedisMatchmaker::RegisterAll(const std::vector<Registration>& regs) {
  return regs.empty() ? absl::OkStatus() : Store(regs, "*");
}

absl::Status RedisMatchmaker::Store(const std::vector<Registration>& regs,
                                    const std::string& notice) {
  std::vector<Stored> stored;
  stored.reserve(regs.size());
  for (const Registration& r : regs) {
    if (absl::Status s = ValidateRegistration(r); !s.ok()) return s;
    absl::StatusOr<std::string> json = ToJson(RegistrationToValue(r));
    if (!json.ok()) return json.status();
    stored.push_back(Stored{IdOf(r), *std::move(json)});
  }
  absl::MutexLock lock(&mu_);
  size_t added = 0;
  for (size_t i = 0; i < regs.size(); ++i) {
    added += own_.insert_or_assign(regs[i], std::move(stored[i])).second ? 1 : 0;
  }
  std::vector<Own::const_pointer> entries;  // taken once the table stops growing
  entries.reserve(regs.size());
  for (const Registration& r : regs) entries.push_back(&*own_.find(r));
  std::vector<Command> cmds = StoreCommands(entries);
  cmds.push_back({"PUBLISH", kChannel, notice});
  absl::StatusOr<std::vector<RedisConnection::Reply>> replies = Run(cmds);
  if (!replies.ok()) return replies.status();
  if (regs.size() == 1 && added == 1) {
    const Registration& r = regs[0];
    ZRPC_LOG(kInfo, "registered %s on %s (%s) with %s", r.Key(), r.host, r.endpoint, url_);
  } else if (added > 1) {
    ZRPC_LOG(kInfo, "registered %d registrations with %s", static_cast<int>(added), url_);
  }
  return absl::OkStatus();
}

absl::Status RedisMatchmaker::Unregister(const Registration& r) {
  absl::MutexLock lock(&mu_);
  own_.erase(r);
  const std::string id = IdOf(r);
  absl::StatusOr<std::vector<RedisConnection::Reply>> replies =
      Run({{"DEL", "zrpc:reg:" + id},
           {"SREM", IndexKey(r.exchange, r.Key()), id},
           {"SREM", kAll, id},
           {"PUBLISH", kChannel, r.Key()}});
  return replies.ok() ? absl::OkStatus() : replies.status();
}

absl::Status RedisMatchmaker::Heartbeat() {
  absl::MutexLock lock(&mu_);
  if (own_.empty()) return absl::OkStatus();
  // SET and SADD again rather than PEXPIRE: a registration that expired, or a Redis that lost
  // its data, gets everything back with the same commands. One pipeline for all of them.
  absl::StatusOr<std::vector<RedisConnection::Reply>> replies = Run(StoreAllCommands());
  return replies.ok() ? absl::OkStatus() : replies.status();
}

absl::StatusOr<std::vector<Registration>> RedisMatchmaker::Resolve(std::string_view exchange,
                                                                   std::string_view key) {
  const std::string index = IndexKey(exchange, key);
  absl::MutexLock lock(&mu_);
  return Scan(index, kMaxIdsPerIndex, kMaxIdsScanned);
}

absl::StatusOr<std::vector<Registration>> RedisMatchmaker::List(std::string_view exchange) {
  absl::MutexLock lock(&mu_);
  absl::StatusOr<std::vector<Registration>> all = Scan(kAll, kMaxIdsListed, kMaxIdsListed);
  if (!all.ok() || exchange.empty()) return all;
  std::vector<Registration> out;
  for (Registration& r : *all) {
    if (r.exchange == exchange) out.push_back(std::move(r));
  }
  return out;
}

namespace {

// Subscribes to zrpc:changes on a connection of its own; reconnects when Redis is away, and
// reports a change after reconnecting (it may have missed some).
class RedisWatch : public WatchHandle {
 public:
  RedisWatch(RedisAddress address, std::function<void()> on_change)
      : conn_(std::move(address)), on_change_(std::move(on_change)), thread_(StartThread([this] { Run(); })) {}
  ~RedisWatch() override {
    stop_ = true;
    thread_.join();
  }

 private:
  void Run() {
    bool subscribed = false;
    while (!stop_) {
      if (!subscribed) {
        absl::StatusOr<redisContext*> c = conn_.Connected();
        if (!c.ok()) {
          absl::SleepFor(absl::Milliseconds(100));
          continue;
        }
        redisReply* r = static_cast<redisReply*>(redisCommand(*c, "SUBSCRIBE %s", kChannel));
        if (r == nullptr) {
          conn_.Drop("SUBSCRIBE failed");
          continue;
        }
        // Refused (e.g. an ACL without the channel): logged once, retried with backoff.
        if (r->type == REDIS_REPLY_ERROR) {
          const std::string err(r->str, r->len);
          freeReplyObject(r);
          if (err != refused_) {
            refused_ = err;
            ZRPC_LOG(kWarning, "redis refused SUBSCRIBE %s: %s; changes are noticed by polling",
                     kChannel, err);
          }
          conn_.Drop(err);  // with backoff
          continue;
        }
        freeReplyObject(r);
        subscribed = true;
        on_change_();
      }
      redisContext* c = *conn_.Connected();
      pollfd p{c->fd, POLLIN, 0};
      if (poll(&p, 1, 200) <= 0) continue;  // lets the destructor stop us within 200 ms
      void* raw = nullptr;
      if (redisGetReply(c, &raw) != REDIS_OK || raw == nullptr) {
        conn_.Drop(c->errstr);
        subscribed = false;
        continue;
      }
      freeReplyObject(raw);
      on_change_();
    }
  }

  RedisConnection conn_;
  std::string refused_;  // the last SUBSCRIBE error logged
  std::function<void()> on_change_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<WatchHandle>> RedisMatchmaker::Watch(
    std::function<void()> on_change) {
  return std::unique_ptr<WatchHandle>(new RedisWatch(address_, std::move(on_change)));
}

}  // namespace zrpc::internal
