#include "matchmaker/redis.h"

#include <hiredis/hiredis.h>
#include <poll.h>

#include <algorithm>
#include <atomic>
#include <thread>
#include <tuple>

#include "absl/hash/hash.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "matchmaker/registration_json.h"
#include "src/base/log_internal.h"
#include "zrpc/value.h"

namespace zrpc::internal {
namespace {

constexpr absl::Duration kConnectTimeout = absl::Seconds(1);
constexpr absl::Duration kCommandTimeout = absl::Seconds(2);
constexpr absl::Duration kMaxBackoff = absl::Seconds(5);
constexpr char kChannel[] = "zrpc:changes";
constexpr char kAll[] = "zrpc:all";


std::string IndexKey(std::string_view exchange, std::string_view key) {
  return absl::StrCat("zrpc:idx:", absl::string_view(exchange.data(), exchange.size()), "|",
                      absl::string_view(key.data(), key.size()));
}

// Stable and unique per registration; readable in redis-cli.
std::string IdOf(const Registration& r) {
  const size_t h = absl::HashOf(r.exchange, r.topic, r.host, r.endpoint, r.pub_endpoint, r.pool,
                                r.fanout);
  return absl::StrCat(r.exchange, "|", r.Key(), "|", r.host, "|", absl::Hex(h, absl::kZeroPad16));
}

RedisConnection::Reply Convert(const redisReply* r) {
  RedisConnection::Reply out;
  switch (r->type) {
    case REDIS_REPLY_NIL: out.nil = true; break;
    case REDIS_REPLY_ERROR: out.error = true; out.str.assign(r->str, r->len); break;
    case REDIS_REPLY_STRING:
    case REDIS_REPLY_STATUS: out.str.assign(r->str, r->len); break;
    case REDIS_REPLY_INTEGER: out.integer = r->integer; break;
    case REDIS_REPLY_ARRAY:
      for (size_t i = 0; i < r->elements; ++i) out.elements.push_back(Convert(r->element[i]));
      break;
    default: break;
  }
  return out;
}

}  // namespace

absl::StatusOr<RedisAddress> ParseRedisUrl(std::string_view url) {
  absl::string_view u(url.data(), url.size());
  auto bad = [&](absl::string_view why) {
    return absl::InvalidArgumentError(absl::StrCat("matchmaker URL \"", u, "\": ", why,
                                                   " (expected redis://[:password@]host[:port][/db]"
                                                   "[?ttl=SECONDS&heartbeat=SECONDS])"));
  };
  if (!absl::ConsumePrefix(&u, "redis://")) return bad("not a redis:// URL");
  RedisAddress a;
  absl::string_view query;
  if (size_t q = u.find('?'); q != absl::string_view::npos) {
    query = u.substr(q + 1);
    u = u.substr(0, q);
  }
  if (size_t at = u.rfind('@'); at != absl::string_view::npos) {
    absl::string_view cred = u.substr(0, at);
    u = u.substr(at + 1);
    size_t colon = cred.find(':');
    if (colon == absl::string_view::npos) return bad("credentials must be :password or user:password");
    a.user = std::string(cred.substr(0, colon));
    a.password = std::string(cred.substr(colon + 1));
  }
  if (size_t slash = u.find('/'); slash != absl::string_view::npos) {
    absl::string_view db = u.substr(slash + 1);
    u = u.substr(0, slash);
    if (!db.empty() && (!absl::SimpleAtoi(db, &a.db) || a.db < 0)) return bad("bad database index");
  }
  if (size_t colon = u.rfind(':'); colon != absl::string_view::npos && u.find(']') == absl::string_view::npos) {
    if (!absl::SimpleAtoi(u.substr(colon + 1), &a.port) || a.port < 1 || a.port > 65535) {
      return bad("bad port");
    }
    u = u.substr(0, colon);
  }
  if (u.empty()) return bad("no host");
  a.host = std::string(u);
  for (absl::string_view kv : absl::StrSplit(query, '&', absl::SkipEmpty())) {
    std::pair<absl::string_view, absl::string_view> p = absl::StrSplit(kv, absl::MaxSplits('=', 1));
    double seconds = 0;
    if (!absl::SimpleAtod(p.second, &seconds) || seconds <= 0) return bad(absl::StrCat("bad ", p.first));
    if (p.first == "ttl") {
      a.ttl = absl::Seconds(seconds);
    } else if (p.first == "heartbeat") {
      a.heartbeat = absl::Seconds(seconds);
    } else {
      return bad(absl::StrCat("unknown option \"", p.first, "\""));
    }
  }
  if (a.heartbeat >= a.ttl) return bad("heartbeat must be shorter than ttl");
  return a;
}

RedisConnection::~RedisConnection() {
  if (ctx_ != nullptr) redisFree(ctx_);
}

void RedisConnection::Drop(std::string_view why) {
  last_error_ = std::string(why);  // first: `why` may point into the context (its errstr)
  if (ctx_ != nullptr) {
    redisFree(ctx_);
    ctx_ = nullptr;
  }
  next_attempt_ = absl::Now() + backoff_;
  backoff_ = std::min(backoff_ * 2, kMaxBackoff);
}

absl::StatusOr<redisContext*> RedisConnection::Connected() {
  if (ctx_ != nullptr) return ctx_;
  const std::string where = absl::StrCat("redis at ", address_.host, ":", address_.port);
  if (absl::Now() < next_attempt_) {
    return absl::UnavailableError(absl::StrCat(where, " is unreachable (", last_error_,
                                               "); retrying in ",
                                               absl::FormatDuration(next_attempt_ - absl::Now())));
  }
  redisContext* c = redisConnectWithTimeout(address_.host.c_str(), address_.port,
                                            absl::ToTimeval(kConnectTimeout));
  if (c == nullptr || c->err) {
    const std::string err = c ? c->errstr : "out of memory";
    if (c) redisFree(c);
    Drop(err);
    return absl::UnavailableError(absl::StrCat(where, ": ", err));
  }
  redisSetTimeout(c, absl::ToTimeval(kCommandTimeout));
  ctx_ = c;
  auto check = [&](redisReply* r, const char* what) -> absl::Status {
    std::string err;
    if (r == nullptr) {
      err = ctx_->errstr;
    } else if (r->type == REDIS_REPLY_ERROR) {
      err = std::string(r->str, r->len);
    }
    if (r) freeReplyObject(r);
    if (err.empty()) return absl::OkStatus();
    Drop(absl::StrCat(what, " failed: ", err));
    return absl::UnavailableError(absl::StrCat(where, ": ", what, " failed: ", err));
  };
  if (!address_.password.empty()) {
    redisReply* r = address_.user.empty()
                        ? static_cast<redisReply*>(redisCommand(ctx_, "AUTH %s", address_.password.c_str()))
                        : static_cast<redisReply*>(redisCommand(ctx_, "AUTH %s %s", address_.user.c_str(),
                                                                address_.password.c_str()));
    if (absl::Status s = check(r, "AUTH"); !s.ok()) return s;
  }
  if (address_.db != 0) {
    if (absl::Status s = check(static_cast<redisReply*>(redisCommand(ctx_, "SELECT %d", address_.db)),
                               "SELECT");
        !s.ok()) {
      return s;
    }
  }
  if (!last_error_.empty()) ZRPC_LOG(kInfo, "%s is reachable again", where);
  last_error_.clear();
  backoff_ = absl::Milliseconds(100);
  return ctx_;
}

absl::StatusOr<std::vector<RedisConnection::Reply>> RedisConnection::Run(
    const std::vector<std::vector<std::string>>& commands) {
  absl::StatusOr<redisContext*> c = Connected();
  if (!c.ok()) return c.status();
  for (const auto& cmd : commands) {
    std::vector<const char*> argv;
    std::vector<size_t> lens;
    for (const std::string& a : cmd) {
      argv.push_back(a.data());
      lens.push_back(a.size());
    }
    if (redisAppendCommandArgv(*c, static_cast<int>(argv.size()), argv.data(), lens.data()) != REDIS_OK) {
      const std::string err = (*c)->errstr;
      Drop(err);
      return absl::UnavailableError(absl::StrCat("redis: ", err));
    }
  }
  std::vector<Reply> replies;
  for (size_t i = 0; i < commands.size(); ++i) {
    void* raw = nullptr;
    if (redisGetReply(*c, &raw) != REDIS_OK || raw == nullptr) {
      const std::string err = (*c)->errstr;
      Drop(err);
      return absl::UnavailableError(
          absl::StrCat("redis at ", address_.host, ":", address_.port, ": ", err));
    }
    replies.push_back(Convert(static_cast<redisReply*>(raw)));
    freeReplyObject(raw);
  }
  return replies;
}

absl::StatusOr<std::unique_ptr<Matchmaker>> RedisMatchmaker::Create(std::string_view url) {
  absl::StatusOr<RedisAddress> a = ParseRedisUrl(url);
  if (!a.ok()) return a.status();
  auto mm = std::unique_ptr<RedisMatchmaker>(new RedisMatchmaker(std::string(url), *a));
  {
    // Not fatal: clients serve from cache and services re-register when Redis comes back.
    absl::MutexLock lock(&mm->mu_);
    absl::StatusOr<std::vector<RedisConnection::Reply>> ping = mm->conn_.Run({{"PING"}});
    if (!ping.ok()) ZRPC_LOG(kWarning, "%s (will keep retrying)", ping.status().message());
  }
  return std::unique_ptr<Matchmaker>(std::move(mm));
}

std::vector<std::vector<std::string>> RedisMatchmaker::RegisterCommands(const Registration& r) const {
  const std::string id = IdOf(r);
  const std::string index = IndexKey(r.exchange, r.Key());
  const std::string ttl_ms = std::to_string(absl::ToInt64Milliseconds(address_.ttl));
  // Index sets outlive their members by a margin and vanish once nobody refreshes them.
  const std::string index_ttl_ms = std::to_string(absl::ToInt64Milliseconds(address_.ttl * 10));
  return {{"SET", "zrpc:reg:" + id, ToJson(RegistrationToValue(r)).value_or("{}"), "PX", ttl_ms},
          {"SADD", index, id},
          {"PEXPIRE", index, index_ttl_ms},
          {"SADD", kAll, id}};
}

absl::Status RedisMatchmaker::Register(const Registration& r) {
  if (absl::Status s = ValidateRegistration(r); !s.ok()) return s;
  absl::MutexLock lock(&mu_);
  if (std::find(own_.begin(), own_.end(), r) == own_.end()) own_.push_back(r);
  std::vector<std::vector<std::string>> cmds = RegisterCommands(r);
  cmds.push_back({"PUBLISH", kChannel, r.Key()});
  absl::StatusOr<std::vector<RedisConnection::Reply>> replies = conn_.Run(cmds);
  if (!replies.ok()) return replies.status();
  ZRPC_LOG(kInfo, "registered %s on %s (%s) with %s", r.Key(), r.host, r.endpoint, url_);
  return absl::OkStatus();
}

absl::Status RedisMatchmaker::Unregister(const Registration& r) {
  absl::MutexLock lock(&mu_);
  own_.erase(std::remove(own_.begin(), own_.end(), r), own_.end());
  const std::string id = IdOf(r);
  absl::StatusOr<std::vector<RedisConnection::Reply>> replies =
      conn_.Run({{"DEL", "zrpc:reg:" + id},
                 {"SREM", IndexKey(r.exchange, r.Key()), id},
                 {"SREM", kAll, id},
                 {"PUBLISH", kChannel, r.Key()}});
  return replies.ok() ? absl::OkStatus() : replies.status();
}

absl::Status RedisMatchmaker::Heartbeat() {
  absl::MutexLock lock(&mu_);
  if (own_.empty()) return absl::OkStatus();
  // SET and SADD again rather than PEXPIRE: a registration that expired, or a Redis that lost
  // its data (restarted), gets everything back with the same commands.
  std::vector<std::vector<std::string>> cmds;
  for (const Registration& r : own_) {
    for (auto& c : RegisterCommands(r)) cmds.push_back(std::move(c));
  }
  absl::StatusOr<std::vector<RedisConnection::Reply>> replies = conn_.Run(cmds);
  return replies.ok() ? absl::OkStatus() : replies.status();
}

absl::StatusOr<std::vector<Registration>> RedisMatchmaker::Load(const std::string& index,
                                                                const std::vector<std::string>& ids) {
  std::vector<Registration> out;
  if (ids.empty()) return out;
  std::vector<std::string> mget = {"MGET"};
  for (const std::string& id : ids) mget.push_back("zrpc:reg:" + id);
  absl::StatusOr<std::vector<RedisConnection::Reply>> values = conn_.Run({mget});
  if (!values.ok()) return values.status();
  std::vector<std::vector<std::string>> prune;
  const std::vector<RedisConnection::Reply>& items = (*values)[0].elements;
  for (size_t i = 0; i < ids.size() && i < items.size(); ++i) {
    if (items[i].nil) {  // expired: its service stopped heartbeating
      prune.push_back({"SREM", index, ids[i]});
      if (index != kAll) prune.push_back({"SREM", kAll, ids[i]});
      continue;
    }
    absl::StatusOr<Value> v = ParseJson(items[i].str);
    absl::StatusOr<Registration> r =
        v.ok() ? RegistrationFromValue(*v) : absl::StatusOr<Registration>(v.status());
    if (r.ok()) out.push_back(*std::move(r));
  }
  if (!prune.empty()) (void)conn_.Run(prune);
  std::sort(out.begin(), out.end(), [](const Registration& a, const Registration& b) {
    return std::tie(a.host, a.endpoint, a.topic, a.pool) < std::tie(b.host, b.endpoint, b.topic, b.pool);
  });
  return out;
}

absl::StatusOr<std::vector<Registration>> RedisMatchmaker::Resolve(std::string_view exchange,
                                                                   std::string_view key) {
  const std::string index = IndexKey(exchange, key);
  absl::MutexLock lock(&mu_);
  absl::StatusOr<std::vector<RedisConnection::Reply>> members = conn_.Run({{"SMEMBERS", index}});
  if (!members.ok()) return members.status();
  std::vector<std::string> ids;
  for (const auto& m : (*members)[0].elements) ids.push_back(m.str);
  return Load(index, ids);
}

absl::StatusOr<std::vector<Registration>> RedisMatchmaker::List(std::string_view exchange) {
  absl::MutexLock lock(&mu_);
  absl::StatusOr<std::vector<RedisConnection::Reply>> members = conn_.Run({{"SMEMBERS", kAll}});
  if (!members.ok()) return members.status();
  std::vector<std::string> ids;
  for (const auto& m : (*members)[0].elements) ids.push_back(m.str);
  absl::StatusOr<std::vector<Registration>> all = Load(kAll, ids);
  if (!all.ok() || exchange.empty()) return all;
  std::vector<Registration> out;
  for (Registration& r : *all) {
    if (r.exchange == exchange) out.push_back(std::move(r));
  }
  return out;
}

namespace {

// Subscribes to zrpc:changes on a connection of its own; reconnects every second when Redis is
// away, and reports a change after reconnecting (it may have missed some).
class RedisWatch : public WatchHandle {
 public:
  RedisWatch(RedisAddress address, std::function<void()> on_change)
      : conn_(std::move(address)), on_change_(std::move(on_change)), thread_([this] { Run(); }) {}
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
          absl::SleepFor(absl::Milliseconds(200));
          continue;
        }
        redisReply* r = static_cast<redisReply*>(redisCommand(*c, "SUBSCRIBE %s", kChannel));
        if (r == nullptr) {
          conn_.Drop("SUBSCRIBE failed");
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
  std::function<void()> on_change_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<WatchHandle>> RedisMatchmaker::Watch(std::function<void()> on_change) {
  return std::unique_ptr<WatchHandle>(new RedisWatch(address_, std::move(on_change)));
}

}  // namespace zrpc::internal
