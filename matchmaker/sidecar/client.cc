// SPDX-License-Identifier: Apache-2.0
#include "matchmaker/sidecar/client.h"

#include <fcntl.h>
#include <grp.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/strip.h"
#include "matchmaker/registration_json.h"
#include "src/base/log_internal.h"
#include "src/base/secure_fs.h"
#include "src/codec/json_internal.h"
#include "src/zmq/socket_factory.h"
#include "src/zmq/socket_monitor.h"
#include "zrpc/message.h"
#include "src/base/thread.h"

namespace zrpc::internal::sidecar {
namespace {

constexpr absl::Duration kRequestTimeout = absl::Seconds(1);
// After a request went unanswered, others fail at once for this long, unless the probe (every
// kProbeInterval, waiting kProbeTimeout) finds the sidecar back sooner.
constexpr absl::Duration kDownFor = absl::Seconds(5);
constexpr absl::Duration kProbeInterval = absl::Milliseconds(200);
constexpr absl::Duration kProbeTimeout = absl::Milliseconds(200);
// Cached answers are dropped on every change notice; this bounds how stale one can get if a
// notice is lost (PUB drops while a subscriber is reconnecting). An empty answer is kept only
// briefly: it may come from a sidecar that restarted and is being refilled.
constexpr absl::Duration kCacheTtl = absl::Seconds(5);
constexpr absl::Duration kEmptyCacheTtl = absl::Milliseconds(250);
constexpr std::chrono::milliseconds kListenerPoll(100);
// Bounds on the heartbeat interval a sidecar may ask for.
constexpr absl::Duration kMinHeartbeat = absl::Milliseconds(100);
constexpr absl::Duration kMaxHeartbeat = absl::Seconds(1);

std::string CacheKey(std::string_view exchange, std::string_view key) {
  return absl::StrCat(ToAbsl(exchange), "|", ToAbsl(key));
}

int Millis(absl::Duration d) {
  return static_cast<int>(std::max<int64_t>(1, absl::ToInt64Milliseconds(d)));
}

// A NAME.pub file is one short line; anything larger is not one.
constexpr size_t kMaxPubFileBytes = 4096;

// "uid 998 gid 998 (zrpc), mode 0660" for messages about a file the user cannot use.
std::string OwnerAndMode(const struct stat& st) {
  const group* g = getgrgid(st.st_gid);  // names are for the message only
  return absl::StrCat("owner uid ", st.st_uid, " gid ", st.st_gid,
                      g != nullptr ? absl::StrCat(" (", g->gr_name, ")") : "", ", mode ",
                      absl::StrFormat("%04o", st.st_mode & 07777));
}

// The sidecar key a URL pins ("" when none): "?key=<Z85>" or "?key_file=/abs/NAME.pub".
absl::StatusOr<std::string> PinnedKey(std::string_view url, std::string_view option) {
  auto bad = [&](absl::string_view why) {
    return absl::InvalidArgumentError(
        absl::StrCat("matchmaker URL \"", absl::CHexEscape(ToAbsl(url)), "\": ", why));
  };
  absl::string_view o = ToAbsl(option);
  if (absl::ConsumePrefix(&o, "key=")) {
    if (!IsCurveKey(ToStd(o))) {
      return bad(
          "?key= takes the sidecar's public key, 40 characters of Z85 (the second word "
          "of its NAME.pub)");
    }
    return std::string(o);
  }
  if (absl::ConsumePrefix(&o, "key_file=")) {
    if (!absl::StartsWith(o, "/"))
      return bad("?key_file= takes an absolute path to a NAME.pub file");
    const std::string path(o);
    // Whoever may write this file chooses which sidecar this process trusts: it must be a
    // regular file of the effective user or root that nobody else may write (as authorized_keys).
    struct stat st;
    if (stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode) && (st.st_mode & 022) != 0) {
      return bad(absl::StrCat("the sidecar's key file ", path, " may be written by others (",
                              OwnerAndMode(st),
                              "), who could then make this process trust their sidecar: run "
                              "chmod go-w ",
                              path));
    }
    std::vector<uid_t> owners = {geteuid()};
    if (geteuid() != 0) owners.push_back(0);
    absl::StatusOr<std::string> text =
        ReadUntrustedFile(path, kMaxPubFileBytes, {.uids = owners}, FinalLink::kFollow);
    if (!text.ok()) {
      return bad(absl::StrCat(
          "cannot use the sidecar's key file: ", text.status().message(),
          text.status().code() == absl::StatusCode::kFailedPrecondition
              ? absl::StrCat(" (it must be a regular file of yours or root's that only its owner "
                             "may write: chown $(id -u) ",
                             path, " and chmod 0644 ", path, ", or copy the key to one)")
              : ""));
    }
    absl::StatusOr<std::vector<AuthorizedKey>> keys = ParseAuthorizedKeys(*text, path);
    if (!keys.ok()) return bad(keys.status().message());
    if (keys->size() != 1) {
      return bad(absl::StrCat(path,
                              " must hold one `NAME PUBLIC-KEY` line (the sidecar's NAME.pub "
                              "from `zrpc keygen`); it holds ",
                              keys->size()));
    }
    return keys->front().public_key;
  }
  return bad(
      "a sidecar URL takes one option, ?key=<Z85 public key> or ?key_file=/path/NAME.pub "
      "(the sidecar's public key, for CurveZMQ)");
}


// For an ipc:// sidecar this process may not connect to (the socket or its directory denies it):
// PERMISSION_DENIED naming the path, its owner and mode, and what to do. OK otherwise, also
// when the socket does not exist yet (the sidecar may still start).
absl::Status CheckSocketAccess(const std::string& endpoint) {
  const std::string path = IpcPath(endpoint);
  if (path.empty()) return absl::OkStatus();
  if (faccessat(AT_FDCWD, path.c_str(), R_OK | W_OK, AT_EACCESS) == 0 || errno != EACCES) {
    return absl::OkStatus();
  }
  struct stat st;
  std::string what;
  if (stat(path.c_str(), &st) == 0) {
    what = absl::StrCat("the socket is ", OwnerAndMode(st));
  } else {
    const std::string dir = path.substr(0, std::max<size_t>(1, path.rfind('/')));
    what = stat(dir.c_str(), &st) == 0
               ? absl::StrCat("its directory ", dir, " is ", OwnerAndMode(st))
               : absl::StrCat("a directory above it may not be entered");
  }
  return absl::PermissionDeniedError(absl::StrCat(
      "cannot connect to the matchmaker sidecar's socket ", path,
      ": permission denied for this process (uid ", geteuid(), " gid ", getegid(), "); ", what,
      ". Join the group that may use it (e.g. `sudo usermod -aG zrpc $USER`, then log in "
      "again), or run the sidecar with --socket-group GROUP --socket-mode 0660 for a group of "
      "yours"));
}

// Why a sidecar at an ipc:// endpoint did not answer, when its socket file says so.
std::string WhyNoAnswer(const std::string& endpoint) {
  const std::string path = IpcPath(endpoint);
  struct stat st;
  if (path.empty() || stat(path.c_str(), &st) == 0 || errno != ENOENT) return "";
  return absl::StrCat(" (there is no socket ", path,
                      ": is zrpc-matchmaker running with this --endpoint? e.g. systemctl status "
                      "zrpc-matchmaker)");
}

}  // namespace

absl::StatusOr<std::unique_ptr<Matchmaker>> SidecarMatchmaker::Create(
    std::string url, std::shared_ptr<Keyring> keyring) {
  std::string endpoint = url;
  std::string sidecar_key;
  if (const size_t q = url.find('?'); q != std::string::npos) {
    endpoint = url.substr(0, q);
    absl::StatusOr<std::string> key = PinnedKey(url, std::string_view(url).substr(q + 1));
    if (!key.ok()) return key.status();
    sidecar_key = *std::move(key);
  }
  if (!sidecar_key.empty() && keyring == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat(
        "matchmaker URL ", endpoint,
        " pins the sidecar's CurveZMQ key, but this process has no "
        "keys: configure them (TransportOptions::security, --key-file/$ZRPC_KEY_FILE and "
        "--authorized-keys/$ZRPC_AUTHORIZED_KEYS), or drop ?key= for a sidecar without keys"));
  }
  if (sidecar_key.empty() && keyring != nullptr) {
    return absl::InvalidArgumentError(absl::StrCat(
        "this process has CurveZMQ keys, but the matchmaker URL ", endpoint,
        " does not pin the "
        "sidecar's public key: append ?key=<its Z85 public key> or ?key_file=/path/SIDECAR.pub"));
  }
  auto mm = std::unique_ptr<SidecarMatchmaker>(new SidecarMatchmaker(
      std::move(url), std::move(endpoint), std::move(keyring), std::move(sidecar_key)));
  {
    absl::MutexLock lock(&mm->mu_);
    if (absl::Status s = mm->EnsureHello(); !s.ok()) {
      ZRPC_LOG(kWarning, "%s (will keep trying)", s.message());
    }
  }
  mm->listener_ = StartThread([raw = mm.get()] { raw->ListenForChanges(); });
  return std::unique_ptr<Matchmaker>(std::move(mm));
}

SidecarMatchmaker::SidecarMatchmaker(std::string url, std::string endpoint,
                                     std::shared_ptr<Keyring> keyring, std::string sidecar_key)
    : url_(std::move(url)),
      endpoint_(std::move(endpoint)),
      keyring_(std::move(keyring)),
      sidecar_key_(std::move(sidecar_key)),
      self_(Self(absl::StrCat(getpid(), "-", NewUniqueId()))),
      routing_id_("c" + NewUniqueId()),
      ctx_(1) {}

SidecarMatchmaker::~SidecarMatchmaker() {
  stop_ = true;
  if (listener_.joinable()) listener_.join();
  absl::MutexLock lock(&mu_);
  dealer_monitor_.reset();
  dealer_.reset();
}

absl::Duration SidecarMatchmaker::HeartbeatInterval() const {
  return absl::Milliseconds(heartbeat_ms_.load());
}

CurveSettings SidecarMatchmaker::Curve() const {
  if (!keyring_) return {};
  return CurveSettings{&keyring_->own(), sidecar_key_};
}

void SidecarMatchmaker::EnsureDealer() {
  if (dealer_) return;
  // IMMEDIATE: no queueing for an absent sidecar.
  absl::StatusOr<std::unique_ptr<zmq::socket_t>> made =
      MakeSocket(ctx_, SocketRole::kSidecarClient, TransportOptions{}, Curve());
  if (!made.ok()) throw zmq::error_t();
  dealer_ = *std::move(made);
  dealer_->set(zmq::sockopt::linger, 0);
  // One routing id for this client's life: the sidecar ties the registrations it makes to its
  // connection's routing id (only that connection may withdraw them), so a new socket after a
  // lost connection must be the same owner.
  dealer_->set(zmq::sockopt::routing_id, routing_id_);
  // A request in flight when the connection drops is never answered (a restarted sidecar answers
  // only what reached it): the monitor lets Request send it again instead of waiting it out.
  // The handshake's outcome too: a refused key (or a sidecar with keys when we have none) fails
  // requests at once.
  const int events = ZMQ_EVENT_DISCONNECTED | ZMQ_EVENT_HANDSHAKE_SUCCEEDED |
                     ZMQ_EVENT_HANDSHAKE_FAILED_AUTH | ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL |
                     ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL;
  absl::StatusOr<std::unique_ptr<SocketMonitor>> m = SocketMonitor::Create(ctx_, *dealer_, events);
  if (m.ok()) dealer_monitor_ = *std::move(m);
  dealer_up_ = false;
  auth_error_.clear();  // a new socket: its own handshake tells
  dealer_->connect(endpoint_);
}

bool SidecarMatchmaker::DrainDealerEvents() {
  if (!dealer_monitor_) return false;
  // Collected first: the callback is not seen to hold mu_ (-Wthread-safety).
  std::vector<uint16_t> events;
  dealer_monitor_->Drain([&events](uint16_t event) { events.push_back(event); });
  bool disconnected = false;
  for (const uint16_t event : events) {
    switch (event) {
      case ZMQ_EVENT_DISCONNECTED:
        disconnected = true;
        dealer_up_ = false;
        break;
      case ZMQ_EVENT_HANDSHAKE_SUCCEEDED:
        dealer_up_ = true;
        auth_error_.clear();
        break;
      case ZMQ_EVENT_HANDSHAKE_FAILED_AUTH:
        dealer_up_ = false;
        if (!keyring_) break;  // not CURVE: nothing to refuse
        auth_error_ = absl::StrCat(
            "matchmaker sidecar at ", endpoint_, " refused this process's CurveZMQ key (",
            KeyFingerprint(keyring_->own().public_key),
            "): add this process's NAME.pub line to the sidecar's authorized_keys");
        break;
      case ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL:
      case ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL:
        // What a sidecar that does not hold the pinned key (or runs without keys) looks like.
        dealer_up_ = false;
        if (!keyring_) {
          auth_error_ = absl::StrCat(
              "handshake with the matchmaker sidecar at ", endpoint_,
              " failed: it probably runs with CurveZMQ keys; configure this process's keys "
              "(--key-file, --authorized-keys) and pin the sidecar's key (?key= or ?key_file=)");
          break;
        }
        auth_error_ = absl::StrCat(
            "CurveZMQ authentication with the matchmaker sidecar at ", endpoint_,
            " failed: it does not hold the pinned public key ", KeyFingerprint(sidecar_key_),
            " or does not run with keys; check ?key=/?key_file= against the sidecar's NAME.pub");
        break;
      default:
        break;
    }
  }
  return disconnected;
}

absl::Status SidecarMatchmaker::AwaitHandshake(absl::Time deadline) {
  for (;;) {
    (void)DrainDealerEvents();
    if (dealer_up_) return absl::OkStatus();
    if (!auth_error_.empty()) return absl::UnauthenticatedError(auth_error_);
    const absl::Duration left = deadline - absl::Now();
    if (left <= absl::ZeroDuration() || !dealer_monitor_) return absl::OkStatus();  // send decides
    zmq::pollitem_t item = {dealer_monitor_->handle(), 0, ZMQ_POLLIN, 0};
    zmq::poll(&item, 1, std::chrono::milliseconds(Millis(left)));
  }
}

SidecarMatchmaker::Wait SidecarMatchmaker::AwaitReply(const std::string& expected,
                                                      absl::Time deadline, Reply* reply) {
  for (absl::Duration left = deadline - absl::Now(); left > absl::ZeroDuration();
       left = deadline - absl::Now()) {
    zmq::pollitem_t items[2] = {
        {dealer_->handle(), 0, ZMQ_POLLIN, 0},
        {dealer_monitor_ ? dealer_monitor_->handle() : nullptr, 0, ZMQ_POLLIN, 0}};
    zmq::poll(items, dealer_monitor_ ? 2 : 1, std::chrono::milliseconds(Millis(left)));
    if (dealer_monitor_ && (items[1].revents & ZMQ_POLLIN) && DrainDealerEvents()) {
      return Wait::kDisconnected;
    }
    zmq::message_t h, b;
    if (!(items[0].revents & ZMQ_POLLIN) || !dealer_->recv(h, zmq::recv_flags::dontwait)) continue;
    if (!h.more() || !dealer_->recv(b, zmq::recv_flags::dontwait)) continue;
    if (h.to_string_view() != expected) continue;  // a late answer to an earlier request
    *reply = DecodeReply(b.to_string_view());
    return Wait::kAnswered;
  }
  return Wait::kTimedOut;
}

absl::StatusOr<Value> SidecarMatchmaker::Request(std::string_view op, Object body) {
  if (absl::Now() < down_until_) {
    return absl::UnavailableError(
        absl::StrCat("matchmaker sidecar at ", endpoint_, " is not answering", WhyNoAnswer(endpoint_)));
  }
  absl::StatusOr<std::string> text = ToJson(Value(std::move(body)));
  if (!text.ok()) return text.status();
  if (text->size() > kMaxRequestBytes) {
    return absl::ResourceExhaustedError(
        absl::StrCat("a ", ToAbsl(op), " request to the matchmaker sidecar would be ", text->size(),
                     " bytes; the sidecar takes at most ", kMaxRequestBytes,
                     " (fewer registrations per process)"));
  }
  // Refused by the file system, not by the sidecar: say so now instead of timing out.
  if (absl::Status s = CheckSocketAccess(endpoint_); !s.ok()) return s;
  try {
    EnsureDealer();
    const uint64_t id = next_request_++;
    const std::string header = RequestHeader(op, id);
    const std::string expected = ReplyHeader(std::to_string(id));
    const absl::Time deadline = absl::Now() + kRequestTimeout;
    // Every request is idempotent: one that a dropped connection lost is sent again.
    for (Wait wait = Wait::kDisconnected; wait == Wait::kDisconnected;) {
      (void)DrainDealerEvents();
      // A refused CurveZMQ handshake is a clear error now, not a timeout: the sidecar is there.
      if (absl::Status s = AwaitHandshake(deadline); !s.ok()) return s;
      dealer_->set(zmq::sockopt::sndtimeo, Millis(deadline - absl::Now()));
      if (!dealer_->send(zmq::buffer(header), zmq::send_flags::sndmore) ||
          !dealer_->send(zmq::buffer(*text), zmq::send_flags::none)) {
        break;
      }
      Reply reply;
      wait = AwaitReply(expected, deadline, &reply);
      if (wait == Wait::kAnswered) {
        if (!reply.boot.empty()) NoteAnswer(reply.boot);
        return std::move(reply.result);
      }
    }
    NoteUnreachable();
    return absl::UnavailableError(absl::StrCat("matchmaker sidecar at ", endpoint_,
                                               " did not answer within ",
                                               absl::FormatDuration(kRequestTimeout),
                                               WhyNoAnswer(endpoint_)));
  } catch (const zmq::error_t& e) {
    NoteUnreachable();
    return absl::UnavailableError(
        absl::StrCat("matchmaker sidecar at ", endpoint_, ": ", e.what()));
  }
}

void SidecarMatchmaker::NoteUnreachable() {
  dealer_monitor_.reset();
  dealer_.reset();  // a fresh socket next time: nothing stale queued
  down_until_ = absl::Now() + kDownFor;
  pub_endpoint_.clear();  // ask again on reconnecting: a restarted sidecar may publish elsewhere
  unreachable_ = true;
  probing_ = true;
}

void SidecarMatchmaker::NoteAnswer(const std::string& boot) {
  const bool restarted = !boot_.empty() && boot != boot_;
  if (restarted || unreachable_) {
    ZRPC_LOG(kInfo, "matchmaker sidecar at %s is %s", endpoint_,
             restarted ? "a new one (restarted)" : "back");
    if (restarted) pub_endpoint_.clear();
    resync_ = true;
    came_back_ = true;
    last_reconnect_.Set(absl::Now());
  }
  boot_ = boot;
  unreachable_ = false;
  probing_ = false;
  down_until_ = absl::InfinitePast();
}

absl::StatusOr<Value> SidecarMatchmaker::Call(std::string_view op, Object body) {
  absl::StatusOr<Value> result = Request(op, std::move(body));
  Resync(/*sent_everything=*/op == kHeartbeat);
  return result;
}

void SidecarMatchmaker::Resync(bool sent_everything) {
  if (!resync_) return;
  resync_ = false;
  (void)EnsureHello();
  if (!sent_everything && !own_.empty()) (void)Request(kHeartbeat, HeartbeatBody());
}

absl::Status SidecarMatchmaker::EnsureHello() {
  if (!pub_endpoint_.empty()) return absl::OkStatus();
  absl::StatusOr<Value> hello = Request(kHello, Object{});
  if (!hello.ok()) return hello.status();
  const Value* pub = hello->Find("pub");
  if (pub && pub->is_string()) pub_endpoint_ = pub->AsString();
  if (const Value* ms = hello->Find("heartbeat_ms"); ms && ms->is_int()) {
    heartbeat_ms_ = std::clamp<int64_t>(ms->AsInt(), absl::ToInt64Milliseconds(kMinHeartbeat),
                                        absl::ToInt64Milliseconds(kMaxHeartbeat));
  }
  return absl::OkStatus();
}

Object SidecarMatchmaker::WithOwner(Object body) const {
  AddOwner(self_, &body);
  return body;
}

Object SidecarMatchmaker::HeartbeatBody() const {
  // Carries every registration: a restarted sidecar learns them all back from one beat.
  return WithOwner(Object{{"registrations", RegistrationsToValue({own_.begin(), own_.end()})}});
}

void SidecarMatchmaker::FlushNotices() {
  if (came_back_.exchange(false)) Changed();
}

absl::Status SidecarMatchmaker::Register(const Registration& r) {
  if (absl::Status s = ValidateRegistration(r); !s.ok()) return s;
  absl::Status s;
  {
    absl::MutexLock lock(&mu_);
    own_.insert(r);
    (void)EnsureHello();
    s = Call(kRegister, WithOwner(Object{{"registration", RegistrationToValue(r)}})).status();
  }
  FlushNotices();
  return s;
}

absl::Status SidecarMatchmaker::Unregister(const Registration& r) {
  absl::Status s;
  {
    absl::MutexLock lock(&mu_);
    own_.erase(r);
    s = Call(kUnregister, WithOwner(Object{{"registration", RegistrationToValue(r)}})).status();
  }
  FlushNotices();
  return s;
}

absl::Status SidecarMatchmaker::Heartbeat() {
  absl::Status s;
  {
    absl::MutexLock lock(&mu_);
    if (own_.empty()) return absl::OkStatus();
    (void)EnsureHello();
    s = Call(kHeartbeat, HeartbeatBody()).status();
  }
  FlushNotices();
  return s;
}

absl::StatusOr<std::vector<Registration>> SidecarMatchmaker::Resolve(std::string_view exchange,
                                                                     std::string_view key) {
  const std::string ck = CacheKey(exchange, key);
  uint64_t generation;
  {
    absl::MutexLock lock(&cache_mu_);
    auto it = cache_.find(ck);
    if (it != cache_.end() &&
        absl::Now() - it->second.fetched < (it->second.regs.empty() ? kEmptyCacheTtl : kCacheTtl)) {
      return it->second.regs;
    }
    generation = generation_;
  }
  absl::StatusOr<Value> result;
  {
    absl::MutexLock lock(&mu_);
    (void)EnsureHello();
    result = Call(kResolve, Object{{"exchange", std::string(exchange)}, {"key", std::string(key)}});
  }
  FlushNotices();  // before caching: a restarted sidecar's answer is the fresh one
  if (!result.ok()) {
    // Serve what we knew while the sidecar is away.
    absl::MutexLock lock(&cache_mu_);
    auto it = cache_.find(ck);
    if (it != cache_.end()) return it->second.regs;
    return result.status();
  }
  absl::StatusOr<std::vector<Registration>> regs =
      RegistrationsFromValue(result->Find("registrations"));
  if (!regs.ok()) return regs.status();
  absl::MutexLock lock(&cache_mu_);
  // A change notice that came while we asked may be newer than this answer: then it is stale.
  cache_[ck] = Cached{*regs, generation == generation_ ? absl::Now() : absl::InfinitePast()};
  return regs;
}

absl::StatusOr<std::vector<Registration>> SidecarMatchmaker::List(std::string_view exchange) {
  absl::StatusOr<Value> result;
  {
    absl::MutexLock lock(&mu_);
    result = Call(kList, Object{{"exchange", std::string(exchange)}});
  }
  FlushNotices();
  if (!result.ok()) return result.status();
  return RegistrationsFromValue(result->Find("registrations"));
}

absl::StatusOr<std::unique_ptr<WatchHandle>> SidecarMatchmaker::Watch(
    std::function<void()> on_change) {
  return watchers_.Add(std::move(on_change));
}

void SidecarMatchmaker::Changed() {
  {
    // Stale, not gone: refetched on the next lookup, still served while the sidecar is away.
    absl::MutexLock lock(&cache_mu_);
    ++generation_;
    for (auto& [key, entry] : cache_) entry.fetched = absl::InfinitePast();
  }
  watchers_.Notify();
}

bool SidecarMatchmaker::Probe() {
  try {
    absl::StatusOr<std::unique_ptr<zmq::socket_t>> made =
        MakeSocket(ctx_, SocketRole::kSidecarClient, TransportOptions{}, Curve());
    if (!made.ok()) return false;
    zmq::socket_t& s = **made;
    s.set(zmq::sockopt::linger, 0);
    s.set(zmq::sockopt::immediate, 1);
    s.set(zmq::sockopt::sndtimeo, Millis(kProbeTimeout));
    s.set(zmq::sockopt::rcvtimeo, Millis(kProbeTimeout));
    s.connect(endpoint_);
    const std::string header = RequestHeader(kHello, 0);
    if (!s.send(zmq::buffer(header), zmq::send_flags::sndmore) ||
        !s.send(zmq::str_buffer("{}"), zmq::send_flags::none)) {
      return false;
    }
    zmq::message_t h, b;
    return s.recv(h) && h.more() && s.recv(b) && h.to_string_view() == ReplyHeader("0");
  } catch (const zmq::error_t&) {
    return false;
  }
}

void SidecarMatchmaker::Recover() {
  {
    absl::MutexLock lock(&mu_);
    if (!unreachable_) return;  // a caller got there first
    down_until_ = absl::InfinitePast();
    (void)EnsureHello();  // the answer marks the sidecar back
    Resync(/*sent_everything=*/false);
  }
  FlushNotices();
}

void SidecarMatchmaker::CheckSidecar() {
  {
    absl::MutexLock lock(&mu_);
    (void)Call(kHello, Object{});  // its answer tells whether the sidecar restarted
  }
  FlushNotices();
}

void SidecarMatchmaker::ListenForChanges() {
  std::unique_ptr<zmq::socket_t> sub;
  std::unique_ptr<SocketMonitor> monitor;  // destroyed before `sub`
  std::string connected_to;
  absl::Time next_probe = absl::InfinitePast();
  while (!stop_) {
    if (probing_ && absl::Now() >= next_probe) {
      next_probe = absl::Now() + kProbeInterval;
      if (Probe()) Recover();
    }
    std::string pub;
    {
      absl::MutexLock lock(&mu_);
      pub = pub_endpoint_;
    }
    try {
      if (!pub.empty() && pub != connected_to) {
        monitor.reset();
        absl::StatusOr<std::unique_ptr<zmq::socket_t>> made =
            MakeSocket(ctx_, SocketRole::kSidecarSub, TransportOptions{}, Curve());
        if (!made.ok()) throw zmq::error_t();
        sub = *std::move(made);
        sub->set(zmq::sockopt::linger, 0);
        sub->set(zmq::sockopt::subscribe, std::string(kProtocol));
        // Every (re)connection may follow missed notices: it marks the cache stale too.
        absl::StatusOr<std::unique_ptr<SocketMonitor>> m =
            SocketMonitor::Create(ctx_, *sub, ZMQ_EVENT_CONNECTED);
        if (m.ok()) monitor = *std::move(m);
        sub->connect(pub);
        connected_to = pub;
        Changed();  // anything may have changed before we listened
      }
      if (!sub) {
        absl::SleepFor(absl::FromChrono(kListenerPoll));
        continue;
      }
      zmq::pollitem_t items[2] = {{sub->handle(), 0, ZMQ_POLLIN, 0},
                                  {monitor ? monitor->handle() : nullptr, 0, ZMQ_POLLIN, 0}};
      zmq::poll(items, monitor ? 2 : 1, kListenerPoll);
      if (monitor && (items[1].revents & ZMQ_POLLIN) && monitor->Drain() > 0) {
        // The PUB is back, perhaps that of a restarted sidecar: ask now, not at the next beat.
        CheckSidecar();
        Changed();
      }
      zmq::message_t m;
      bool any = false;
      while (sub->recv(m, zmq::recv_flags::dontwait)) any = true;
      if (any) Changed();
    } catch (const zmq::error_t& e) {
      ZRPC_LOG(kWarning, "matchmaker sidecar notifications: %s", e.what());
      monitor.reset();
      sub.reset();
      connected_to.clear();
      absl::SleepFor(absl::Milliseconds(200));
    }
  }
}

}  // namespace zrpc::internal::sidecar
