// SPDX-License-Identifier: Apache-2.0
#include "matchmaker/redis_connection.h"

#include <fcntl.h>
#include <hiredis/hiredis.h>
#include <poll.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "src/base/log_internal.h"
#include "zrpc/matchmaker.h"

namespace zrpc::internal {
namespace {

constexpr absl::Duration kConnectTimeout = absl::Seconds(1);
constexpr absl::Duration kCommandTimeout = absl::Seconds(2);
constexpr absl::Duration kFirstBackoff = absl::Milliseconds(100);
constexpr absl::Duration kMaxBackoff = absl::Seconds(1);
constexpr size_t kCommandsPerChunk = 1000;

RedisConnection::Reply Convert(const redisReply* r) {
  RedisConnection::Reply out;
  switch (r->type) {
    case REDIS_REPLY_NIL:
      out.nil = true;
      break;
    case REDIS_REPLY_ERROR:
      out.error = true;
      out.str.assign(r->str, r->len);
      break;
    case REDIS_REPLY_STRING:
    case REDIS_REPLY_STATUS:
      out.str.assign(r->str, r->len);
      break;
    case REDIS_REPLY_INTEGER:
      out.integer = r->integer;
      break;
    case REDIS_REPLY_ARRAY:
      out.elements.reserve(r->elements);
      for (size_t i = 0; i < r->elements; ++i) out.elements.push_back(Convert(r->element[i]));
      break;
    default:
      break;
  }
  return out;
}

std::string WhereOf(const RedisAddress& a) {
  return absl::StrCat("redis at ", a.host, ":", a.port);
}

// "" when `r` is a success; else why (and frees `r`).
std::string Failure(redisContext* c, redisReply* r) {
  std::string err;
  if (r == nullptr) {
    err = c->errstr;
  } else if (r->type == REDIS_REPLY_ERROR) {
    err = std::string(r->str, r->len);
  }
  if (r) freeReplyObject(r);
  return err;
}

}  // namespace

absl::StatusOr<std::string> ReadPasswordFile(const std::string& path) {
  auto bad = [&](absl::string_view why) {
    return absl::InvalidArgumentError(
        absl::StrCat("Redis password file \"", absl::CHexEscape(path), "\": ", why));
  };
  // O_NONBLOCK: a FIFO planted there must not hang us; it is refused below as not regular.
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
  if (fd < 0) return bad(absl::StrCat("cannot open it: ", strerror(errno)));
  struct stat st {};
  std::string text;
  absl::Status status;
  if (fstat(fd, &st) != 0) {
    status = bad(absl::StrCat("cannot stat it: ", strerror(errno)));
  } else if (!S_ISREG(st.st_mode)) {
    status = bad("not a regular file");
  } else if ((st.st_mode & 077) != 0) {
    status = bad(absl::StrCat("group or others may access it (mode 0", absl::Hex(st.st_mode & 0777),
                              "); make it private: chmod 600 ", absl::CHexEscape(path)));
  } else if (static_cast<size_t>(st.st_size) > kMaxPasswordFileBytes) {
    status = bad(absl::StrCat("it is ", st.st_size, " bytes; a password file holds at most ",
                              kMaxPasswordFileBytes));
  } else {
    text.resize(kMaxPasswordFileBytes + 1);
    const ssize_t n = read(fd, text.data(), text.size());
    if (n < 0) {
      status = bad(absl::StrCat("cannot read it: ", strerror(errno)));
    } else {
      text.resize(static_cast<size_t>(n));
      if (text.size() > kMaxPasswordFileBytes) status = bad("it grew while being read");
    }
  }
  close(fd);
  if (!status.ok()) return status;
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.pop_back();
  if (text.empty()) return bad("it is empty");
  return text;
}

absl::StatusOr<RedisAddress> ParseRedisUrl(std::string_view url) {
  absl::string_view u(url.data(), url.size());
  auto bad = [&](absl::string_view why) {
    return absl::InvalidArgumentError(
        absl::StrCat("matchmaker URL \"", absl::CHexEscape(RedactUrl(url)), "\": ", why,
                     " (expected redis://[[user]:password@]host[:port][/db]"
                     "[?ttl=SECONDS&heartbeat=SECONDS&password_file=PATH])"));
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
    if (colon == absl::string_view::npos)
      return bad("credentials must be :password or user:password");
    a.user = std::string(cred.substr(0, colon));
    a.password = std::string(cred.substr(colon + 1));
  }
  if (size_t slash = u.find('/'); slash != absl::string_view::npos) {
    absl::string_view db = u.substr(slash + 1);
    u = u.substr(0, slash);
    if (!db.empty() && (!absl::SimpleAtoi(db, &a.db) || a.db < 0)) return bad("bad database index");
  }
  if (size_t colon = u.rfind(':');
      colon != absl::string_view::npos && u.find(']') == absl::string_view::npos) {
    if (!absl::SimpleAtoi(u.substr(colon + 1), &a.port) || a.port < 1 || a.port > 65535) {
      return bad("bad port");
    }
    u = u.substr(0, colon);
  }
  if (u.empty()) return bad("no host");
  a.host = std::string(u);
  std::string password_file;
  for (absl::string_view kv : absl::StrSplit(query, '&', absl::SkipEmpty())) {
    std::pair<absl::string_view, absl::string_view> p = absl::StrSplit(kv, absl::MaxSplits('=', 1));
    if (p.first == "password_file") {
      if (!absl::StartsWith(p.second, "/")) return bad("password_file takes an absolute path");
      password_file = std::string(p.second);
      continue;
    }
    double seconds = 0;
    if (!absl::SimpleAtod(p.second, &seconds) || seconds <= 0)
      return bad(absl::StrCat("bad ", p.first));
    if (p.first == "ttl") {
      a.ttl = absl::Seconds(seconds);
    } else if (p.first == "heartbeat") {
      a.heartbeat = absl::Seconds(seconds);
    } else {
      return bad(absl::StrCat("unknown option \"", p.first, "\""));
    }
  }
  if (a.heartbeat >= a.ttl) return bad("heartbeat must be shorter than ttl");
  if (!password_file.empty()) {
    if (!a.password.empty())
      return bad("give the password in the URL or in password_file, not both");
    absl::StatusOr<std::string> pw = ReadPasswordFile(password_file);
    if (!pw.ok()) return pw.status();
    a.password = *std::move(pw);
  } else if (a.password.empty()) {
    if (const char* env = getenv(kPasswordEnv); env != nullptr && env[0] != '\0') a.password = env;
  }
  return a;
}

RedisConnection::~RedisConnection() {
  if (ctx_ != nullptr) redisFree(ctx_);
}

std::string RedisConnection::Where() const { return WhereOf(address_); }

void RedisConnection::Drop(std::string_view why) {
  last_error_ = std::string(why);  // first: `why` may point into the context (its errstr)
  if (last_error_.empty()) last_error_ = "connection lost";
  if (ctx_ != nullptr) {
    redisFree(ctx_);
    ctx_ = nullptr;
  }
  next_attempt_ = absl::Now() + backoff_;
  backoff_ = std::min(backoff_ * 2, kMaxBackoff);
}

void RedisConnection::CheckIdle() {
  if (ctx_ == nullptr) return;
  // Nothing is ever pending on an idle, unsubscribed connection: readable means closed.
  pollfd p{ctx_->fd, POLLIN, 0};
  if (poll(&p, 1, 0) <= 0) return;
  Drop("Redis closed the connection");
  next_attempt_ = absl::InfinitePast();  // not a sign that Redis is down: connect again at once
}

absl::StatusOr<redisContext*> RedisConnection::Dial(const RedisAddress& address) {
  const std::string where = WhereOf(address);
  redisContext* c =
      redisConnectWithTimeout(address.host.c_str(), address.port, absl::ToTimeval(kConnectTimeout));
  if (c == nullptr || c->err) {
    const std::string err = c ? c->errstr : "out of memory";
    if (c) redisFree(c);
    return absl::UnavailableError(absl::StrCat(where, ": ", err));
  }
  redisSetTimeout(c, absl::ToTimeval(kCommandTimeout));
  auto fail = [&](const char* what, const std::string& err) {
    redisFree(c);
    return absl::UnavailableError(absl::StrCat(where, ": ", what, " failed: ", err));
  };
  if (!address.password.empty()) {
    void* r = address.user.empty()
                  ? redisCommand(c, "AUTH %s", address.password.c_str())
                  : redisCommand(c, "AUTH %s %s", address.user.c_str(), address.password.c_str());
    if (std::string err = Failure(c, static_cast<redisReply*>(r)); !err.empty())
      return fail("AUTH", err);
  }
  if (address.db != 0) {
    void* r = redisCommand(c, "SELECT %d", address.db);
    if (std::string err = Failure(c, static_cast<redisReply*>(r)); !err.empty())
      return fail("SELECT", err);
  }
  return c;
}

void RedisConnection::Install(redisContext* c) {
  ctx_ = c;
  backoff_ = kFirstBackoff;
  if (last_error_.empty()) return;  // the first connection
  ZRPC_LOG(kInfo, "%s is reachable again", Where());
  last_error_.clear();
  reconnected_ = true;
  last_reconnect_.Set(absl::Now());
}

void RedisConnection::Adopt(redisContext* c) {
  if (ctx_ != nullptr) {
    redisFree(c);
    return;
  }
  Install(c);
}

absl::StatusOr<redisContext*> RedisConnection::Connected() {
  if (ctx_ != nullptr) return ctx_;
  if (absl::Now() < next_attempt_) {
    if (round_trip_observer_) round_trip_observer_(false);
    return absl::UnavailableError(absl::StrCat(Where(), " is unreachable (", last_error_,
                                               "); retrying in ",
                                               absl::FormatDuration(next_attempt_ - absl::Now())));
  }
  absl::StatusOr<redisContext*> c = Dial(address_);
  if (!c.ok()) {
    Drop(std::string(c.status().message()));
    if (round_trip_observer_) round_trip_observer_(false);
    return c.status();
  }
  Install(*c);
  return ctx_;
}

absl::StatusOr<std::vector<RedisConnection::Reply>> RedisConnection::Run(
    const std::vector<Command>& commands) {
  CheckIdle();
  absl::StatusOr<redisContext*> c = Connected();
  if (!c.ok()) return c.status();  // counted by Connected
  absl::StatusOr<std::vector<Reply>> replies = Pipeline(commands);
  if (round_trip_observer_) round_trip_observer_(replies.ok());
  return replies;
}

absl::StatusOr<std::vector<RedisConnection::Reply>> RedisConnection::Pipeline(
    const std::vector<Command>& commands) {
  auto failed = [this] {
    const std::string err = ctx_->errstr;  // before Drop frees the context
    Drop(err);
    return absl::UnavailableError(absl::StrCat(Where(), ": ", err));
  };
  std::vector<Reply> replies;
  replies.reserve(commands.size());
  std::vector<const char*> argv;
  std::vector<size_t> lens;
  // In chunks: hiredis moves the rest of its output buffer after every write, which costs the
  // square of the buffer's size for one huge pipeline (a heartbeat of 10,000 registrations).
  for (size_t begin = 0; begin < commands.size(); begin += kCommandsPerChunk) {
    const size_t end = std::min(commands.size(), begin + kCommandsPerChunk);
    for (size_t i = begin; i < end; ++i) {
      argv.clear();
      lens.clear();
      for (const std::string& a : commands[i]) {
        argv.push_back(a.data());
        lens.push_back(a.size());
      }
      if (redisAppendCommandArgv(ctx_, static_cast<int>(argv.size()), argv.data(), lens.data()) !=
          REDIS_OK) {
        return failed();
      }
    }
    for (size_t i = begin; i < end; ++i) {
      void* raw = nullptr;
      if (redisGetReply(ctx_, &raw) != REDIS_OK || raw == nullptr) return failed();
      replies.push_back(Convert(static_cast<redisReply*>(raw)));
      freeReplyObject(raw);
    }
  }
  return replies;
}

}  // namespace zrpc::internal
