// SPDX-License-Identifier: Apache-2.0
#include "matchmaker/sidecar/server.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "matchmaker/memory.h"
#include "matchmaker/redis.h"
#include "matchmaker/registration_json.h"
#include "matchmaker/sidecar/systemd_notify.h"
#include "src/base/keys.h"
#include "src/base/log_internal.h"
#include "src/base/secure_fs.h"
#include "src/codec/json_internal.h"
#include "src/zmq/socket_factory.h"
#include "zrpc/message.h"
#include "zrpc/metrics.h"
#include "zrpc/security.h"

namespace zrpc::internal::sidecar {
namespace {

// The loop wakes at least this often to expire silent clients and beat the backend.
constexpr absl::Duration kSweepInterval = absl::Milliseconds(100);
// After a connection closes, exited services are looked for this often, for this long: the
// connection closes while the process is still exiting, before kill() and /proc show it gone.
constexpr absl::Duration kExitCheckInterval = absl::Milliseconds(20);
constexpr absl::Duration kExitCheckWindow = absl::Seconds(2);
// The standalone backend: only this sidecar changes it.
constexpr char kMemoryBackend[] = "memory";

absl::StatusOr<Backend> CreateSidecarBackend(const std::string& url) {
  if (url == kMemoryBackend) return Backend{std::make_unique<MemoryMatchmaker>()};
  if (IsSidecarUrl(url)) {
    return absl::InvalidArgumentError(
        absl::StrCat("backend \"", absl::CHexEscape(RedactUrl(url)),
                     "\": a sidecar cannot use another sidecar as its backend"));
  }
  return CreateBackend(url);
}

// "owner root:zrpc, mode 2750" for messages about a directory.
std::string DescribeOwnerAndMode(const std::string& path) {
  struct stat st;
  if (stat(path.c_str(), &st) != 0) return std::strerror(errno);
  return absl::StrCat("owner uid ", st.st_uid, " gid ", st.st_gid, ", mode ",
                      absl::StrFormat("%04o", st.st_mode & 07777));
}

// Why binding the ipc:// socket `path` failed with `err`, in terms of its directory, and what to
// do about it ("" when the directory is not the reason).
std::string DescribeIpcBindFailure(const std::string& path, int err) {
  const size_t slash = path.rfind('/');
  const std::string dir = slash == 0 ? "/" : path.substr(0, slash);
  if (err == ENOENT) {
    return absl::StrCat("directory ", dir,
                        " does not exist (create it, e.g. with systemd's RuntimeDirectory=zrpc, or "
                        "choose another with --endpoint ipc:///DIR/matchmaker.sock)");
  }
  if (err == EACCES || err == EPERM || err == EROFS) {
    return absl::StrCat("directory ", dir, " (", DescribeOwnerAndMode(dir),
                        ") is not writable by this process (uid ", geteuid(), " gid ", getegid(),
                        "): run the sidecar as the directory's owner, give it write permission "
                        "(chown/chmod), or choose another with --endpoint ipc:///DIR/matchmaker.sock");
  }
  return "";
}

// The `operation` label of a request: one of the protocol's operations, else "other" (the name
// is a peer's bytes: it must not make series of its own).
std::string_view OperationLabel(std::string_view op) {
  for (std::string_view known : {kHello, kRegister, kUnregister, kHeartbeat, kResolve, kList}) {
    if (op == known) return known;
  }
  return kMetricOtherLabel;
}

// The `result` label: refused when the caller may not do it or asked for too much.
SidecarResult ResultOf(const absl::Status& s) {
  switch (s.code()) {
    case absl::StatusCode::kOk:
      return SidecarResult::kOk;
    case absl::StatusCode::kPermissionDenied:
    case absl::StatusCode::kUnauthenticated:
    case absl::StatusCode::kResourceExhausted:
      return SidecarResult::kRefused;
    default:
      return SidecarResult::kError;
  }
}

std::string StringField(const Value& v, std::string_view key) {
  const Value* f = v.Find(key);
  return f && f->is_string() ? f->AsString() : std::string();
}

}  // namespace

absl::StatusOr<std::unique_ptr<SidecarServer>> SidecarServer::Create(Options options) {
  RaiseOpenFileLimit();  // each connection the sidecar accepts holds a descriptor
  if (options.endpoints.empty()) return absl::InvalidArgumentError("the sidecar needs an endpoint");
  if (options.ttl < absl::Seconds(1))
    return absl::InvalidArgumentError("the ttl must be at least 1 s");
  if (options.pub.empty()) {
    const std::string& first = options.endpoints.front();
    options.pub = absl::StartsWith(first, "ipc://") ? first + ".pub" : "tcp://127.0.0.1:*";
  }
  if (!options.security.enabled() && !options.registrars.empty()) {
    return absl::InvalidArgumentError(
        "registrars need CurveZMQ keys (a key file and authorized_keys): without them the "
        "sidecar cannot tell who registers");
  }
  std::shared_ptr<Keyring> keyring;
  if (options.security.enabled()) {
    absl::StatusOr<std::shared_ptr<Keyring>> loaded = Keyring::Load(options.security);
    if (!loaded.ok()) return loaded.status();
    keyring = *std::move(loaded);
  }
  absl::StatusOr<Backend> backend = CreateSidecarBackend(options.backend);
  if (!backend.ok()) return backend.status();
  auto server = std::unique_ptr<SidecarServer>(
      new SidecarServer(std::move(options), *std::move(backend), std::move(keyring)));
  // Before anything binds: libzmq admits every CURVE key when no handler answers.
  if (absl::Status s = server->StartAuthentication(); !s.ok()) return s;
  if (absl::Status s = server->Bind(); !s.ok()) return s;
  if (!server->options_.metrics_listen.empty()) {
    if (absl::Status s = server->metrics_.Listen(server->options_.metrics_listen,
                                                 server->options_.metrics_insecure);
        !s.ok()) {
      return s;
    }
  }
  // A serving process: its INFO lines are written by default (zrpc/log.h).
  NoteServing();
  return server;
}

SidecarServer::SidecarServer(Options options, Backend backend, std::shared_ptr<Keyring> keyring)
    : options_(std::move(options)),
      boot_(NewUniqueId()),
      backend_(std::move(backend.matchmaker)),
      registry_(backend_.get(), backend.bulk, options_.ttl, options_.limits),
      keyring_(std::move(keyring)) {
  if (auto* redis = dynamic_cast<RedisMatchmaker*>(backend_.get())) {
    redis->SetRoundTripObserver([this](bool ok) { metrics_.RecordRedisRoundTrip(ok); });
  }
}

absl::Status SidecarServer::StartAuthentication() {
  if (!keyring_) return absl::OkStatus();
  absl::StatusOr<std::unique_ptr<ZapHandler>> zap = ZapHandler::Start(ctx_, keyring_);
  if (!zap.ok()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "cannot start the CurveZMQ authentication (ZAP) handler, so the sidecar will not serve: ",
        zap.status().message()));
  }
  zap_ = *std::move(zap);
  return absl::OkStatus();
}

bool SidecarServer::AuthenticationRunning() {
  if (!keyring_ || (zap_ && zap_->running())) return true;
  if (!zap_down_logged_) {
    zap_down_logged_ = true;
    ZRPC_LOG(kError,
             "zrpc-matchmaker: its authentication (ZAP) handler stopped; refusing every "
             "request and publishing nothing until it is restarted");
  }
  return false;
}

absl::Status SidecarServer::CheckRegistrar(const std::string& identity) {
  if (!keyring_ || options_.registrars.empty() || identity == options_.registrars) {
    return absl::OkStatus();
  }
  if (std::shared_ptr<const AuthorizedKey> who = keyring_->FindIdentity(identity)) {
    if (std::find(who->groups.begin(), who->groups.end(), options_.registrars) != who->groups.end())
      return absl::OkStatus();
  }
  return absl::PermissionDeniedError(absl::StrCat(
      "identity \"", identity, "\" may not register with this sidecar: only ", options_.registrars,
      " may (add the group to its line in the sidecar's authorized_keys)"));
}

absl::Status SidecarServer::CheckServe(const std::string& identity, const Registration& r) {
  if (!keyring_) return absl::OkStatus();
  std::shared_ptr<const AuthorizedKey> who = keyring_->FindIdentity(identity);
  if (who != nullptr && MayServe(*who, r.topic)) return absl::OkStatus();
  return absl::PermissionDeniedError(absl::StrCat(
      "identity \"", identity, "\" may not serve \"", r.topic,
      "\": its line (or its groups' @GROUP line) in the sidecar's authorized_keys has no ",
      std::string_view(r.topic).starts_with(kPublisherPrefix) ? "publish=" : "serve=",
      " role that covers it (README \"Key roles\")"));
}

SidecarServer::~SidecarServer() {
  monitors_.clear();  // before the sockets they watch
  pub_monitor_.reset();
  routers_.clear();
  pub_.reset();
  zap_.reset();  // after the sockets it authenticates for, before the context
  backend_watch_.reset();
  // Leave no socket files behind (libzmq may have removed them already). Only the files this
  // server bound: a newer sidecar may have bound the same path since.
  for (const SocketFile& f : socket_files_) {
    struct stat st;
    if (lstat(f.path.c_str(), &st) == 0 && S_ISSOCK(st.st_mode) && st.st_dev == f.dev &&
        st.st_ino == f.ino && unlink(f.path.c_str()) != 0 && errno != ENOENT) {
      ZRPC_LOG(kWarning, "zrpc-matchmaker: cannot remove its socket %s: %s", f.path,
               std::strerror(errno));
    }
  }
}

absl::Status SidecarServer::PrepareIpcDir(const std::string& endpoint) const {
  const std::string path = IpcPath(endpoint);
  if (path.empty()) return absl::OkStatus();  // tcp://, or an abstract ipc:// socket
  const size_t slash = path.rfind('/');
  if (path[0] != '/' || slash == std::string::npos) {
    return absl::InvalidArgumentError(
        absl::StrCat("ipc endpoint ", endpoint,
                     " needs an absolute path, e.g. ipc:///run/zrpc/matchmaker.sock"));
  }
  const std::string dir = slash == 0 ? "/" : path.substr(0, slash);
  // A missing directory that we may not create (e.g. /run/zrpc for a user other than root):
  // say so, and how it is usually made, rather than "cannot create".
  struct stat st;
  if (stat(dir.c_str(), &st) != 0 && errno == ENOENT) {
    const size_t up = dir.rfind('/');
    const std::string parent = up == 0 ? "/" : dir.substr(0, up);
    if (access(parent.c_str(), W_OK | X_OK) != 0 && errno != ENOENT) {
      return absl::FailedPreconditionError(absl::StrCat(
          "cannot bind ", endpoint, ": directory ", dir, " does not exist and this process (uid ",
          geteuid(), ") may not create it in ", parent, " (", DescribeOwnerAndMode(parent),
          "): create it (e.g. with systemd's RuntimeDirectory=zrpc, or `sudo install -d -m 0700 -o ",
          geteuid(), " ", dir, "`), or choose another with --endpoint ipc:///DIR/matchmaker.sock"));
    }
  }
  absl::Status s = EnsurePrivateDir(
      dir, {.what = absl::StrCat("socket directory of ", endpoint),
            .fix_hint = "or choose a socket in a directory of yours (--endpoint ipc:///DIR/mm.sock)",
            .shared_group = options_.socket_group,
            .shared_group_name = options_.socket_group_name,
            .create_mode = static_cast<mode_t>(options_.socket_group ? 02750 : 0700)});
  return s;
}

absl::Status SidecarServer::BindWithMode(zmq::socket_t& socket, const std::string& endpoint) {
  if (absl::Status s = PrepareIpcDir(endpoint); !s.ok()) return s;
  const std::string path = IpcPath(endpoint);
  try {
    socket.bind(endpoint);
  } catch (const zmq::error_t& e) {
    const std::string why = path.empty() ? "" : DescribeIpcBindFailure(path, e.num());
    return absl::UnavailableError(
        absl::StrCat("cannot bind ", endpoint, ": ", why.empty() ? e.what() : why));
  }
  if (path.empty()) return absl::OkStatus();
  struct stat st;
  if (lstat(path.c_str(), &st) == 0) socket_files_.push_back({path, st.st_dev, st.st_ino});
  // Before anyone is told the endpoint: the mode the user chose, not the umask's.
  return SetSocketMode(path, options_.socket_mode, options_.socket_group);
}

absl::Status SidecarServer::Bind() {
  try {
    for (const std::string& ep : options_.endpoints) {
      absl::StatusOr<std::unique_ptr<zmq::socket_t>> made =
          MakeSocket(ctx_, SocketRole::kSidecarRouter, TransportOptions{}, Curve());
      if (!made.ok()) return made.status();
      std::unique_ptr<zmq::socket_t> s = *std::move(made);
      s->set(zmq::sockopt::linger, 0);
      if (absl::Status bound = BindWithMode(*s, ep); !bound.ok()) return bound;
      // A closed connection may be a service that died: Sweep() then looks for exited processes.
      absl::StatusOr<std::unique_ptr<SocketMonitor>> m =
          SocketMonitor::Create(ctx_, *s, ZMQ_EVENT_DISCONNECTED);
      if (!m.ok()) return m.status();
      routers_.push_back(std::move(s));
      monitors_.push_back(*std::move(m));
    }
    absl::StatusOr<std::unique_ptr<zmq::socket_t>> pub =
        MakeSocket(ctx_, SocketRole::kSidecarPub, TransportOptions{}, Curve());
    if (!pub.ok()) return pub.status();
    pub_ = *std::move(pub);
    pub_->set(zmq::sockopt::linger, 0);
    if (absl::Status bound = BindWithMode(*pub_, options_.pub); !bound.ok()) return bound;
    pub_endpoint_ = pub_->get(zmq::sockopt::last_endpoint);
    absl::StatusOr<std::unique_ptr<SocketMonitor>> m =
        SocketMonitor::Create(ctx_, *pub_, ZMQ_EVENT_ACCEPTED | ZMQ_EVENT_DISCONNECTED);
    if (!m.ok()) return m.status();
    pub_monitor_ = *std::move(m);
  } catch (const zmq::error_t& e) {
    return absl::UnavailableError(absl::StrCat("cannot set up the sidecar's sockets: ", e.what()));
  }
  return absl::OkStatus();
}

void SidecarServer::Stop() { stop_ = true; }

CurveSettings SidecarServer::Curve() const {
  if (!keyring_) return {};
  return CurveSettings{&keyring_->own(), ""};
}

void SidecarServer::Run() {
  if (options_.backend != kMemoryBackend) {
    // A shared backend also changes under us (another host's sidecar): announce it as "*".
    absl::StatusOr<std::unique_ptr<WatchHandle>> watch =
        backend_->Watch([this] { backend_changed_ = true; });
    if (watch.ok()) backend_watch_ = *std::move(watch);
  }
  next_backend_beat_ = absl::Now() + std::min(backend_->HeartbeatInterval(), absl::Hours(24));
  std::vector<zmq::pollitem_t> items;
  for (auto& r : routers_) items.push_back({r->handle(), 0, ZMQ_POLLIN, 0});
  // The sockets are bound and requests are answered from here on: systemd may start the units
  // that need the sidecar.
  Notify("READY=1");
  for (auto& m : monitors_) items.push_back({m->handle(), 0, ZMQ_POLLIN, 0});
  items.push_back({pub_monitor_->handle(), 0, ZMQ_POLLIN, 0});
  while (!stop_) {
    const bool checking_exits = absl::Now() < check_exits_until_;
    zmq::poll(items, std::chrono::milliseconds(absl::ToInt64Milliseconds(
                         checking_exits ? kExitCheckInterval : kSweepInterval)));
    for (size_t i = 0; i < routers_.size(); ++i) {
      if (items[i].revents & ZMQ_POLLIN) Serve(*routers_[i]);
    }
    for (size_t i = 0; i < monitors_.size(); ++i) {
      if ((items[routers_.size() + i].revents & ZMQ_POLLIN) && monitors_[i]->Drain() > 0) {
        check_exits_until_ = absl::Now() + kExitCheckWindow;
      }
    }
    if (items.back().revents & ZMQ_POLLIN) CountWatchers();
    Sweep();
    metrics_.SetSidecarRegistrations(static_cast<int64_t>(registry_.size()));
    if (backend_changed_.exchange(false)) changed_.Add(std::string(kAnyKey));
    PublishChanges();
    BeatBackend();
  }
  Notify("STOPPING=1");
  ZRPC_LOG(kInfo, "zrpc-matchmaker stopping (%d registrations)",
           static_cast<int>(registry_.size()));
}

void SidecarServer::Notify(std::string_view state) {
  if (!options_.notify_systemd) return;
  if (absl::Status s = NotifySystemd(state); !s.ok()) {
    ZRPC_LOG(kWarning, "zrpc-matchmaker: %s", s.message());
  }
}

void SidecarServer::CountRequest(std::string_view op, const absl::Status& result) {
  metrics_.RecordSidecarRequest(OperationLabel(op), ResultOf(result));
}

void SidecarServer::CountWatchers() {
  pub_monitor_->Drain([this](uint16_t event) {
    if (event == ZMQ_EVENT_ACCEPTED) ++watchers_;
    if (event == ZMQ_EVENT_DISCONNECTED && watchers_ > 0) --watchers_;
  });
  metrics_.SetSidecarWatchers(watchers_);
}

void SidecarServer::Sweep() {
  const absl::Time now = absl::Now();
  if (now < check_exits_until_) registry_.DropExited(&changed_);
  registry_.Expire(now, &changed_);
}

void SidecarServer::BeatBackend() {
  if (absl::Now() < next_backend_beat_) return;
  if (absl::Status s = backend_->Heartbeat(); !s.ok()) {
    ZRPC_LOG(kWarning, "backend heartbeat: %s", s.message());
  }
  next_backend_beat_ = absl::Now() + backend_->HeartbeatInterval();
}

void SidecarServer::PublishChanges() {
  if (changed_.empty()) return;
  if (!AuthenticationRunning()) {
    (void)changed_.Take();  // fail closed: nothing to anyone
    return;
  }
  for (const std::string& key : changed_.Take()) {
    const std::string notice = ChangeNotice(key);
    try {
      pub_->send(zmq::buffer(notice), zmq::send_flags::dontwait);
    } catch (const zmq::error_t&) {
    }
  }
}

void SidecarServer::Serve(zmq::socket_t& router) {
  // Which of our ROUTERs, as part of the connection's name: routing ids are per socket.
  const size_t socket_index =
      static_cast<size_t>(std::find_if(routers_.begin(), routers_.end(),
                                       [&](const auto& r) { return r.get() == &router; }) -
                          routers_.begin());
  // A bounded batch, so that one busy client cannot keep the sweep from running.
  std::vector<zmq::message_t> frames;
  for (int n = 0; n < 256; ++n) {
    const RecvResult got = RecvMessage(router, &frames, /*wait=*/false, /*max_frames=*/4);
    if (got == RecvResult::kNone) break;
    if (got == RecvResult::kTruncated) {
      ZRPC_LOG(kError, "a truncated message arrived at the sidecar; dropped");
      break;
    }
    if (frames.size() != 3) {
      ZRPC_LOG(kWarning, "dropping a request of %d frames (a request is a header and a body)",
               static_cast<int>(frames.size()) - 1);
      continue;
    }
    std::optional<RequestLine> line;
    if (frames[1].size() <= kMaxHeaderBytes) line = ParseRequestHeader(frames[1].to_string_view());
    if (!line) {
      ZRPC_LOG(kWarning, "dropping a request with a bad header (%d bytes)",
               static_cast<int>(frames[1].size()));
      continue;
    }
    absl::StatusOr<Value> result;
    // With keys, who sent it: the ZAP user id of its connection is its key, looked up now, so a
    // key removed from authorized_keys (or given another identity) has its power ended on the
    // connections it has open too.
    std::string identity;
    bool revoked = false;
    if (keyring_) {
      const char* user = zmq_msg_gets(frames[1].handle(), "User-Id");
      if (user != nullptr) {
        if (std::shared_ptr<const AuthorizedKey> who = keyring_->FindKey(user)) {
          identity = who->identity;
        } else {
          revoked = true;
          ZRPC_LOG(kWarning, "refusing a %s request of key %s: no longer in authorized_keys",
                   line->op, KeyFingerprint(user));
        }
      }
    }
    if (!AuthenticationRunning()) {
      // Fail closed: without its handler libzmq would admit any key from now on.
      result = absl::UnavailableError(
          "the matchmaker sidecar's authentication (ZAP) handler stopped: it refuses every "
          "request until it is restarted");
    } else if (revoked) {
      result = absl::PermissionDeniedError(
          "this connection's CurveZMQ key is no longer in the sidecar's authorized_keys");
    } else if (keyring_ && identity.empty()) {
      result = absl::UnauthenticatedError("the connection carries no CurveZMQ identity");
    } else if (frames[2].size() > kMaxRequestBytes) {
      // One line per 10 s at most, with how many since the last: a flood of them logs little.
      ++oversized_;
      if (absl::Now() - last_oversized_log_ > absl::Seconds(10)) {
        last_oversized_log_ = absl::Now();
        ZRPC_LOG(kWarning, "refusing a %s request of %d bytes (at most %d; %d refused so)",
                 line->op, static_cast<int>(frames[2].size()), static_cast<int>(kMaxRequestBytes),
                 static_cast<int>(oversized_));
      }
      result = absl::ResourceExhaustedError(absl::StrCat("the request is ", frames[2].size(),
                                                         " bytes; the sidecar takes at most ",
                                                         kMaxRequestBytes));
    } else {
      // Without keys a registration belongs to the connection (socket and routing id); with
      // keys to the identity, whatever connection it comes on (Owner::connection).
      // Without keys, the caller whose share of the table it uses is its peer address (over
      // ipc:// libzmq gives its process, "localhost:UID:GID:PID"); see Owner::principal.
      const char* address = keyring_ ? nullptr : zmq_msg_gets(frames[1].handle(), "Peer-Address");
      result =
          Handle(line->op, frames[2].to_string_view(),
                 keyring_ ? absl::StrCat("key:", identity.size(), ":", identity)
                          : absl::StrCat(socket_index, "/", ToAbsl(frames[0].to_string_view())),
                 identity,
                 address != nullptr && *address != '\0' ? absl::StrCat("addr:", address) : "");
    }
    CountRequest(line->op, result.status());
    const std::string reply = EncodeReply(result, boot_);
    const std::string header = ReplyHeader(line->id);
    try {
      router.send(frames[0], zmq::send_flags::sndmore);
      router.send(zmq::buffer(header), zmq::send_flags::sndmore);
      router.send(zmq::buffer(reply), zmq::send_flags::none);
    } catch (const zmq::error_t&) {
    }
  }
}

absl::StatusOr<Value> SidecarServer::Handle(std::string_view op, std::string_view body,
                                            std::string connection, const std::string& identity,
                                            const std::string& peer_address) {
  absl::StatusOr<Value> request = ParseJson(body);
  if (!request.ok()) return request.status();
  if (op == kHello) {
    return Value(Object{{"pub", pub_endpoint_},
                        {"heartbeat_ms", absl::ToInt64Milliseconds(options_.ttl / 5)},
                        {"boot", boot_}});
  }
  if (op == kResolve || op == kList) return HandleLookup(op, *request);
  Owner owner = OwnerOf(*request);
  // The share of the table: the identity's (`connection` names it), else the address's.
  owner.principal = keyring_ || peer_address.empty() ? connection : peer_address;
  // With keys, each client instance of an identity owns its own (processes may share a key).
  owner.connection = keyring_ ? absl::StrCat(connection, "/", owner.client) : std::move(connection);
  if (op == kRegister || op == kUnregister) {
    if (absl::Status s = CheckRegistrar(identity); !s.ok()) return s;
    return HandleRegister(op, *request, owner, identity);
  }
  if (op == kHeartbeat) {
    if (const Value* regs = request->Find("registrations");
        regs != nullptr && !(regs->is_array() && regs->AsArray().empty())) {
      if (absl::Status s = CheckRegistrar(identity); !s.ok()) return s;
    }
    return HandleHeartbeat(*request, owner, identity);
  }
  // The op is raw bytes from the header: escaped (\xNN), so that the error reply can be written
  // as JSON (invalid UTF-8 made it an INTERNAL error that lost the message).
  return absl::InvalidArgumentError(
      absl::StrCat("unknown operation \"", absl::CHexEscape(ToAbsl(op)), "\""));
}

absl::StatusOr<Value> SidecarServer::HandleRegister(std::string_view op, const Value& request,
                                                    const Owner& owner,
                                                    const std::string& identity) {
  const Value* rv = request.Find("registration");
  if (rv == nullptr) return absl::InvalidArgumentError("request lacks \"registration\"");
  absl::StatusOr<Registration> r = RegistrationFromValue(*rv);
  if (r.ok()) {
    if (absl::Status s = ValidateRegistration(*r); !s.ok()) r = s;
  }
  if (!r.ok()) {
    ZRPC_LOG(kWarning, "refused a %s of client %s: %s", op, owner.client, r.status().message());
    return absl::InvalidArgumentError(absl::StrCat("registration refused: ", r.status().message()));
  }
  if (op == kRegister) {
    if (absl::Status s = CheckServe(identity, *r); !s.ok()) {
      ZRPC_LOG(kWarning, "refused a register of client %s: %s", owner.client, s.message());
      return s;
    }
  }
  absl::Status s = op == kRegister ? registry_.Add(owner, {*r}, absl::Now(), &changed_)
                                   : registry_.Remove(owner, *r, &changed_);
  if (!s.ok()) return s;
  return Value(Object{});
}

absl::StatusOr<Value> SidecarServer::HandleHeartbeat(const Value& request, const Owner& owner,
                                                     const std::string& identity) {
  registry_.Touch(owner, absl::Now());
  const Value* list = request.Find("registrations");
  if (list == nullptr) return Value(Object{});
  if (!list->is_array()) return absl::InvalidArgumentError("\"registrations\" must be an array");
  const Array& entries = list->AsArray();
  if (entries.size() > registry_.limits().per_request) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "the heartbeat carries ", entries.size(), " registrations; the sidecar takes at most ",
        registry_.limits().per_request, " per request"));
  }
  // Valid entries are kept even when others are refused: the answer names the refused ones,
  // so nothing is lost silently, and one bad entry does not let a client's others expire.
  std::vector<Registration> valid;
  valid.reserve(entries.size());
  size_t refused = 0;
  std::string why;
  constexpr size_t kNamed = 3;  // refused entries named in the answer
  for (size_t i = 0; i < entries.size(); ++i) {
    absl::StatusOr<Registration> r = RegistrationFromValue(entries[i]);
    if (r.ok()) {
      if (absl::Status s = ValidateRegistration(*r); !s.ok()) r = s;
    }
    if (r.ok()) {
      if (absl::Status s = CheckServe(identity, *r); !s.ok()) r = s;
    }
    if (r.ok()) {
      valid.push_back(*std::move(r));
      continue;
    }
    if (refused++ < kNamed)
      absl::StrAppend(&why, refused > 1 ? "; " : "", "#", i, ": ", r.status().message());
  }
  if (absl::Status s = registry_.Add(owner, valid, absl::Now(), &changed_); !s.ok()) return s;
  if (refused > 0) {
    ZRPC_LOG(kWarning, "refused %d of %d registrations of client %s: %s", static_cast<int>(refused),
             static_cast<int>(entries.size()), owner.client, why);
    return absl::InvalidArgumentError(absl::StrCat(
        refused, " of ", entries.size(), " registrations refused (the other ",
        entries.size() - refused, " were accepted): ", why, refused > kNamed ? "; ..." : ""));
  }
  return Value(Object{});
}

absl::StatusOr<Value> SidecarServer::HandleLookup(std::string_view op, const Value& request) {
  absl::StatusOr<std::vector<Registration>> regs =
      op == kResolve
          ? backend_->Resolve(StringField(request, "exchange"), StringField(request, "key"))
          : backend_->List(StringField(request, "exchange"));
  if (!regs.ok()) return regs.status();
  return Value(Object{{"registrations", RegistrationsToValue(*regs)}});
}

}  // namespace zrpc::internal::sidecar
