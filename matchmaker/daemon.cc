// zrpc-matchmaker: the matchmaker sidecar, run beside the services of a host.
//
//   zrpc-matchmaker --endpoint ipc:///run/zrpc/mm.sock --backend redis://10.0.0.9:6379 --ttl 5
//
// Services and clients of the host use it with TransportOptions.matchmaker = the endpoint. It
// answers register / unregister / heartbeat / resolve / list (protocol in matchmaker/sidecar.h),
// expires registrations whose services stop heartbeating, and publishes every change on its PUB
// so clients drop cached answers. Backends: memory (standalone), ring:///file, redis://... (so
// sidecars on many hosts share one view). Prints "READY <endpoint> <pub>"; stops on SIGTERM/SIGINT.
#include <signal.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <atomic>
#include <iostream>
#include <map>
#include <string>
#include <vector>
#include <zmq.hpp>

#include "absl/strings/str_cat.h"
#include "matchmaker/memory.h"
#include "matchmaker/registration_json.h"
#include "matchmaker/sidecar.h"
#include "src/codec/json_internal.h"
#include "src/base/log_internal.h"
#include "tools/flags.h"
#include "zrpc/matchmaker.h"
#include "zrpc/value.h"

namespace {

using zrpc::Array;
using zrpc::Object;
using zrpc::Registration;
using zrpc::Value;

struct Entry {
  Registration registration;
  std::string client;
  absl::Time last_seen;
};

class Sidecar {
 public:
  Sidecar(std::unique_ptr<zrpc::Matchmaker> backend, absl::Duration ttl)
      : backend_(std::move(backend)), ttl_(ttl) {}

  absl::StatusOr<std::string> Bind(zmq::context_t& ctx, const std::vector<std::string>& endpoints,
                                   std::string pub) {
    try {
      for (const std::string& ep : endpoints) {
        auto s = std::make_unique<zmq::socket_t>(ctx, zmq::socket_type::router);
        s->set(zmq::sockopt::linger, 0);
        s->bind(ep);
        routers_.push_back(std::move(s));
      }
      pub_ = std::make_unique<zmq::socket_t>(ctx, zmq::socket_type::pub);
      pub_->set(zmq::sockopt::linger, 0);
      pub_->bind(pub);
      return pub_->get(zmq::sockopt::last_endpoint);
    } catch (const zmq::error_t& e) {
      return absl::UnavailableError(absl::StrCat("cannot bind: ", e.what()));
    }
  }

  void Run(int signal_fd, const std::string& pub_endpoint) {
    pub_endpoint_ = pub_endpoint;
    absl::StatusOr<std::unique_ptr<zrpc::WatchHandle>> watch =
        backend_->Watch([this] { backend_changed_ = true; });
    const absl::Duration backend_beat = backend_->HeartbeatInterval();
    absl::Time next_backend_beat = absl::Now() + std::min(backend_beat, absl::Hours(24));
    std::vector<zmq::pollitem_t> items;
    for (auto& r : routers_) items.push_back({r->handle(), 0, ZMQ_POLLIN, 0});
    items.push_back({nullptr, signal_fd, ZMQ_POLLIN, 0});
    while (true) {
      zmq::poll(items, std::chrono::milliseconds(100));
      if (items.back().revents & ZMQ_POLLIN) break;  // SIGTERM or SIGINT
      for (size_t i = 0; i < routers_.size(); ++i) {
        if (items[i].revents & ZMQ_POLLIN) Serve(*routers_[i]);
      }
      Expire();
      if (backend_changed_.exchange(false)) Publish("*");  // e.g. another host's sidecar
      if (absl::Now() >= next_backend_beat) {
        if (absl::Status s = backend_->Heartbeat(); !s.ok()) {
          ZRPC_LOG(kWarning, "backend heartbeat: %s", s.message());
        }
        next_backend_beat = absl::Now() + backend_beat;
      }
    }
    ZRPC_LOG(kInfo, "zrpc-matchmaker stopping (%d registrations)", static_cast<int>(entries_.size()));
  }

 private:
  void Serve(zmq::socket_t& router) {
    while (true) {
      std::vector<zmq::message_t> frames;
      zmq::message_t m;
      if (!router.recv(m, zmq::recv_flags::dontwait)) return;
      frames.push_back(std::move(m));
      while (frames.back().more()) {
        zmq::message_t part;
        (void)router.recv(part);
        frames.push_back(std::move(part));
      }
      if (frames.size() != 3) continue;
      const std::string header = frames[1].to_string();
      const size_t s1 = header.find(' '), s2 = header.find(' ', s1 + 1);
      if (s1 == std::string::npos || s2 == std::string::npos ||
          header.substr(0, s1) != zrpc::internal::kSidecarProtocol) {
        ZRPC_LOG(kWarning, "dropping a request with a bad header");
        continue;
      }
      const std::string op = header.substr(s1 + 1, s2 - s1 - 1), id = header.substr(s2 + 1);
      absl::StatusOr<Value> result = Handle(op, frames[2].to_string());
      Object reply;
      if (result.ok()) {
        reply.Set("ok", true);
        reply.Set("result", *std::move(result));
      } else {
        reply.Set("ok", false);
        reply.Set("error", Object{{"code", static_cast<int>(result.status().code())},
                                  {"message", std::string(result.status().message())}});
      }
      const std::string out = zrpc::ToJson(Value(std::move(reply))).value_or("{\"ok\":false}");
      const std::string rh = absl::StrCat(zrpc::internal::ToAbsl(zrpc::internal::kSidecarProtocol), " reply ", id);
      try {
        router.send(frames[0], zmq::send_flags::sndmore);
        router.send(zmq::buffer(rh), zmq::send_flags::sndmore);
        router.send(zmq::buffer(out), zmq::send_flags::none);
      } catch (const zmq::error_t&) {
      }
    }
  }

  absl::StatusOr<Value> Handle(const std::string& op, const std::string& body) {
    absl::StatusOr<Value> req = zrpc::ParseJson(body);
    if (!req.ok()) return req.status();
    auto str = [&](const char* k) {
      const Value* v = req->Find(k);
      return v && v->is_string() ? v->AsString() : std::string();
    };
    if (op == "hello") {
      return Value(Object{{"pub", pub_endpoint_},
                          {"heartbeat_ms", absl::ToInt64Milliseconds(ttl_ / 5)}});
    }
    if (op == "register" || op == "unregister") {
      const Value* rv = req->Find("registration");
      if (rv == nullptr) return absl::InvalidArgumentError("request lacks \"registration\"");
      absl::StatusOr<Registration> r = zrpc::internal::RegistrationFromValue(*rv);
      if (!r.ok()) return r.status();
      absl::Status s = op == "register" ? Add(str("client"), *r) : Remove(*r, "unregistered");
      if (!s.ok()) return s;
      return Value(Object{});
    }
    if (op == "heartbeat") {
      const std::string client = str("client");
      const absl::Time now = absl::Now();
      for (Entry& e : entries_) {
        if (e.client == client) e.last_seen = now;
      }
      if (const Value* regs = req->Find("registrations"); regs && regs->is_array()) {
        for (const Value& rv : regs->AsArray()) {
          absl::StatusOr<Registration> r = zrpc::internal::RegistrationFromValue(rv);
          if (r.ok()) (void)Add(client, *r);  // known ones are only refreshed
        }
      }
      return Value(Object{});
    }
    if (op == "resolve" || op == "list") {
      absl::StatusOr<std::vector<Registration>> regs =
          op == "resolve" ? backend_->Resolve(str("exchange"), str("key")) : backend_->List(str("exchange"));
      if (!regs.ok()) return regs.status();
      Array out;
      for (const Registration& r : *regs) out.push_back(zrpc::internal::RegistrationToValue(r));
      return Value(Object{{"registrations", std::move(out)}});
    }
    return absl::InvalidArgumentError(absl::StrCat("unknown operation \"", op, "\""));
  }

  absl::Status Add(const std::string& client, const Registration& r) {
    for (Entry& e : entries_) {
      if (e.registration == r) {
        e.last_seen = absl::Now();
        e.client = client;
        return absl::OkStatus();
      }
    }
    if (absl::Status s = backend_->Register(r); !s.ok()) return s;
    entries_.push_back(Entry{r, client, absl::Now()});
    ZRPC_LOG(kInfo, "registered %s %s on %s at %s", r.exchange, r.Key(), r.host, r.endpoint);
    Publish(r.Key());
    return absl::OkStatus();
  }

  absl::Status Remove(const Registration& r, const char* why) {
    auto it = std::find_if(entries_.begin(), entries_.end(),
                           [&](const Entry& e) { return e.registration == r; });
    if (it == entries_.end()) return absl::OkStatus();
    entries_.erase(it);
    absl::Status s = backend_->Unregister(r);
    ZRPC_LOG(kInfo, "%s %s %s on %s at %s", why, r.exchange, r.Key(), r.host, r.endpoint);
    Publish(r.Key());
    return s;
  }

  // Registrations whose service stopped heartbeating leave everyone's rotation.
  void Expire() {
    const absl::Time now = absl::Now();
    std::vector<Registration> dead;
    for (const Entry& e : entries_) {
      if (now - e.last_seen > ttl_) dead.push_back(e.registration);
    }
    for (const Registration& r : dead) (void)Remove(r, "expired (no heartbeat)");
  }

  void Publish(const std::string& key) {
    const std::string msg = absl::StrCat(zrpc::internal::ToAbsl(zrpc::internal::kSidecarProtocol), " change ", key);
    try {
      pub_->send(zmq::buffer(msg), zmq::send_flags::dontwait);
    } catch (const zmq::error_t&) {
    }
  }

  std::unique_ptr<zrpc::Matchmaker> backend_;
  const absl::Duration ttl_;
  std::vector<std::unique_ptr<zmq::socket_t>> routers_;
  std::unique_ptr<zmq::socket_t> pub_;
  std::string pub_endpoint_;
  std::vector<Entry> entries_;
  std::atomic<bool> backend_changed_{false};
};

}  // namespace

int main(int argc, char** argv) {
  zrpc::tools::Flags flags(
      "usage: zrpc-matchmaker [flags]\n"
      "The zrpc matchmaker sidecar: services and clients of this host use --endpoint as their\n"
      "matchmaker URL.",
      {{"endpoint", "where to listen (default ipc:///tmp/zrpc-matchmaker-UID.sock)"},
       {"tcp", "also listen here, e.g. tcp://0.0.0.0:7400"},
       {"pub", "where to publish changes (default: the endpoint + \".pub\" for ipc, else tcp ephemeral)"},
       {"backend", "memory (default), ring:///path/ring.json or redis://[:pw@]host[:port][/db]"},
       {"ttl", "seconds without a heartbeat before a registration expires (default 5)"}});
  flags.Parse(argc, argv);
  zrpc::tools::UseReleaseMutexes();

  sigset_t signals = zrpc::tools::BlockTerminationSignals();
  const int signal_fd = signalfd(-1, &signals, SFD_CLOEXEC);

  const std::string endpoint =
      flags.Get("endpoint", absl::StrCat("ipc:///tmp/zrpc-matchmaker-", getuid(), ".sock"));
  std::string pub = flags.Get("pub");
  if (pub.empty()) {
    pub = endpoint.rfind("ipc://", 0) == 0 ? endpoint + ".pub" : "tcp://127.0.0.1:*";
  }
  const std::string backend_url = flags.Get("backend", "memory");
  const long ttl_s = flags.GetInt("ttl", 5);
  if (ttl_s < 1) flags.Fail("--ttl must be at least 1");

  absl::StatusOr<std::unique_ptr<zrpc::Matchmaker>> backend =
      backend_url == "memory" ? std::unique_ptr<zrpc::Matchmaker>(new zrpc::internal::MemoryMatchmaker)
                              : zrpc::CreateMatchmaker(backend_url);
  if (!backend.ok()) {
    std::cerr << "zrpc-matchmaker: " << backend.status().message() << "\n";
    return 1;
  }
  if (backend_url.rfind("ipc://", 0) == 0 || backend_url.rfind("tcp://", 0) == 0) {
    std::cerr << "zrpc-matchmaker: a sidecar cannot use another sidecar as its backend\n";
    return 2;
  }
  zmq::context_t ctx;
  Sidecar sidecar(*std::move(backend), absl::Seconds(ttl_s));
  std::vector<std::string> endpoints = {endpoint};
  if (flags.Has("tcp")) endpoints.push_back(flags.Get("tcp"));
  absl::StatusOr<std::string> pub_bound = sidecar.Bind(ctx, endpoints, pub);
  if (!pub_bound.ok()) {
    std::cerr << "zrpc-matchmaker: " << pub_bound.status().message() << "\n";
    return 1;
  }
  ZRPC_LOG(kInfo, "zrpc-matchmaker listening on %s (changes on %s), backend %s, ttl %ds", endpoint,
           *pub_bound, backend_url, static_cast<int>(ttl_s));
  std::cout << "READY " << endpoint << " " << *pub_bound << std::endl;
  sidecar.Run(signal_fd, *pub_bound);
  return 0;
}
