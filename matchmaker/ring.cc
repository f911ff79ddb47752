// SPDX-License-Identifier: Apache-2.0
#include "matchmaker/ring.h"

#include <sys/stat.h>

#include <algorithm>
#include <set>

#include "absl/strings/str_cat.h"
#include "matchmaker/watch.h"
#include "src/base/address.h"
#include "src/base/log_internal.h"
#include "src/base/secure_fs.h"
#include "zrpc/errors.h"
#include "zrpc/value.h"

namespace zrpc::internal {
namespace {

constexpr int64_t kDefaultPort = 9501;  // the seed's rpc_zmq_port

// Identifies the file's current version: changes when it is rewritten or replaced.
std::string Stamp(const std::string& path) {
  struct stat st;
  if (stat(path.c_str(), &st) != 0) return "";
  return absl::StrCat(st.st_mtim.tv_sec, ".", st.st_mtim.tv_nsec, "/", st.st_size, "/", st.st_ino);
}

// A ring file lists hosts per topic: far below this.
constexpr size_t kMaxRingFileBytes = 16 << 20;

// Any owner (rings are written by whoever deploys them) and through a link (its path is
// configured, and deployment tools mount files as links), but a regular file of bounded size:
// not a FIFO that blocks the reader or a device that never ends.
absl::StatusOr<std::string> ReadFile(const std::string& path) {
  absl::StatusOr<std::string> text =
      ReadUntrustedFile(path, kMaxRingFileBytes, TrustedOwners{}, FinalLink::kFollow);
  if (text.ok()) return text;
  const std::string why(text.status().message());
  if (absl::IsNotFound(text.status())) {
    return absl::NotFoundError(
        absl::StrCat("ring file ", why, "; create it or fix the ring:// path"));
  }
  return absl::Status(text.status().code(), absl::StrCat("ring file cannot be read: ", why));
}

// Ring hosts are resolved when the file is read, all at once, within this bound (clients
// connect to addresses only: src/base/address.h).
constexpr absl::Duration kRingResolveTimeout = absl::Seconds(2);

// Replaces the host names in the endpoints of `ring`'s listed hosts by addresses, and checks
// them as registrations' endpoints are checked. INVALID_ARGUMENT naming the host otherwise.
absl::Status ResolveRing(const std::string& path, RingMatchmaker::Ring* ring) {
  std::vector<std::string*> endpoints;
  for (const auto& [topic, hosts] : ring->topics) {
    for (const std::string& host : hosts) {
      RingMatchmaker::Host& h = ring->hosts.at(host);
      if (std::find(endpoints.begin(), endpoints.end(), &h.router) != endpoints.end()) continue;
      endpoints.push_back(&h.router);
      if (!h.pub.empty()) endpoints.push_back(&h.pub);
    }
  }
  std::vector<std::string> names;
  for (const std::string* e : endpoints) {
    const std::string_view host = TcpHostOf(*e);
    if (!host.empty() && !IsNumericHost(host)) names.emplace_back(host);
  }
  std::sort(names.begin(), names.end());
  names.erase(std::unique(names.begin(), names.end()), names.end());
  const std::vector<absl::StatusOr<std::string>> addresses =
      ResolveHosts(names, kRingResolveTimeout);
  for (std::string* e : endpoints) {
    const std::string_view host = TcpHostOf(*e);
    const auto it = std::lower_bound(names.begin(), names.end(), host);
    if (!host.empty() && it != names.end() && *it == host) {
      const absl::StatusOr<std::string>& address = addresses[it - names.begin()];
      if (!address.ok()) {
        return absl::InvalidArgumentError(absl::StrCat(
            "ring file ", path, ": endpoint ", *e, ": ", address.status().message(),
            "; write the host's address in \"_endpoints\" (host names in a ring are resolved "
            "when the file is read, within ", absl::FormatDuration(kRingResolveTimeout), ")"));
      }
      *e = absl::StrCat("tcp://", *address, e->substr(e->rfind(':')));
    }
    Registration probe{.topic = "ring", .host = "ring", .endpoint = *e};
    if (absl::Status s = ValidateRegistration(probe); !s.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("ring file ", path, ": ", s.message()));
    }
  }
  return absl::OkStatus();
}

// Reads, checks and resolves the ring file at `path`.
absl::StatusOr<RingMatchmaker::Ring> Load(const std::string& path) {
  absl::StatusOr<std::string> text = ReadFile(path);
  if (!text.ok()) return text.status();
  absl::StatusOr<RingMatchmaker::Ring> ring = RingMatchmaker::Parse(path, *text);
  if (!ring.ok()) return ring.status();
  if (absl::Status s = ResolveRing(path, &*ring); !s.ok()) return s;
  return ring;
}

std::string DirOf(const std::string& path) {
  const size_t slash = path.rfind('/');
  return slash == 0 ? "/" : path.substr(0, slash);
}

}  // namespace

absl::StatusOr<RingMatchmaker::Ring> RingMatchmaker::Parse(const std::string& path,
                                                           std::string_view text) {
  auto bad = [&](absl::string_view why) {
    return absl::InvalidArgumentError(absl::StrCat("ring file ", path, ": ", why));
  };
  if (text.find_first_not_of(" \t\r\n") == std::string_view::npos) return bad("is empty");
  absl::StatusOr<Value> v = ParseJson(text);
  if (!v.ok()) return bad(v.status().message());
  if (!v->is_object()) return bad("must be a JSON object {\"topic\": [\"host\", ...]}");
  Ring ring;
  int64_t port = kDefaultPort;
  if (const Value* p = v->Find("_port")) {
    if (!p->is_int() || p->AsInt() < 1 || p->AsInt() > 65535) return bad("\"_port\" must be 1..65535");
    port = p->AsInt();
  }
  for (const auto& [topic, hosts] : v->AsObject()) {
    if (!topic.empty() && topic[0] == '_') {
      if (topic != "_endpoints" && topic != "_port") {
        return bad(absl::StrCat("unknown setting \"", topic, "\" (settings: _endpoints, _port)"));
      }
      continue;
    }
    if (absl::Status s = ValidateName("topic", topic); !s.ok()) return bad(s.message());
    if (topic.find('.') != std::string::npos) {
      return bad(absl::StrCat("topic \"", topic, "\" must be a bare topic (no '.')"));
    }
    if (!hosts.is_array() || hosts.AsArray().empty()) {
      return bad(absl::StrCat("topic \"", topic, "\" needs a non-empty list of hosts"));
    }
    std::set<std::string> seen;
    std::vector<std::string>& list = ring.topics[topic];
    for (const Value& h : hosts.AsArray()) {
      if (!h.is_string()) return bad(absl::StrCat("hosts of \"", topic, "\" must be strings"));
      if (absl::Status s = ValidateName("host", h.AsString()); !s.ok()) return bad(s.message());
      if (!seen.insert(h.AsString()).second) {
        return bad(absl::StrCat("host \"", h.AsString(), "\" is listed twice for topic \"", topic, "\""));
      }
      list.push_back(h.AsString());
      ring.hosts[h.AsString()] = Host{absl::StrCat("tcp://", h.AsString(), ":", port), ""};
    }
  }
  if (ring.topics.empty()) return bad("lists no topics");
  if (const Value* eps = v->Find("_endpoints")) {
    if (!eps->is_object()) return bad("\"_endpoints\" must map host names to endpoints");
    for (const auto& [host, ep] : eps->AsObject()) {
      Host h;
      if (ep.is_string()) {
        h.router = ep.AsString();
      } else if (ep.is_object() && ep.Find("router") && ep.Find("router")->is_string()) {
        h.router = ep.Find("router")->AsString();
        if (const Value* pub = ep.Find("pub"); pub && pub->is_string()) h.pub = pub->AsString();
      } else {
        return bad(absl::StrCat("endpoint of \"", host,
                                "\" must be \"tcp://...\" or {\"router\": ..., \"pub\": ...}"));
      }
      if (h.router.rfind("tcp://", 0) != 0 && h.router.rfind("ipc://", 0) != 0) {
        return bad(absl::StrCat("endpoint of \"", host, "\" must start with tcp:// or ipc://"));
      }
      ring.hosts[host] = h;
    }
  }
  return ring;
}

absl::StatusOr<std::unique_ptr<Matchmaker>> RingMatchmaker::Create(std::string path) {
  const std::string stamp = Stamp(path);
  absl::StatusOr<Ring> ring = Load(path);
  if (!ring.ok()) return ring.status();
  return std::unique_ptr<Matchmaker>(
      new RingMatchmaker(std::move(path), std::make_shared<const Ring>(*std::move(ring)), stamp));
}

std::shared_ptr<const RingMatchmaker::Ring> RingMatchmaker::Current() {
  const std::string stamp = Stamp(path_);
  {
    absl::MutexLock lock(&mu_);
    if (stamp == stamp_ || stamp.empty() || stamp == bad_stamp_ || stamp == loading_) {
      if (stamp.empty() && bad_stamp_ != "missing") {
        ZRPC_LOG(kError, "ring file %s is gone; keeping the last ring read", path_);
        bad_stamp_ = "missing";
      }
      return ring_;
    }
    loading_ = stamp;  // read once; lookups meanwhile answer from the last ring
  }
  // Off the lock: resolving the ring's host names may take up to kRingResolveTimeout.
  absl::StatusOr<Ring> ring = Load(path_);
  absl::MutexLock lock(&mu_);
  loading_.clear();
  if (!ring.ok()) {
    ZRPC_LOG(kError, "%s; keeping the last ring read", ring.status().message());
    bad_stamp_ = stamp;
    return ring_;
  }
  ZRPC_LOG(kInfo, "ring file %s reloaded: %d topics", path_, static_cast<int>(ring->topics.size()));
  ring_ = std::make_shared<const Ring>(*std::move(ring));
  stamp_ = stamp;
  bad_stamp_.clear();
  return ring_;
}

absl::Status RingMatchmaker::Register(const Registration& r) {
  // The ring is static: say so when a service is not where the ring sends its clients.
  std::shared_ptr<const Ring> ring = Current();
  auto host = ring->hosts.find(r.host);
  if (host == ring->hosts.end()) {
    ZRPC_LOG(kWarning, "host %s is not in ring file %s: clients will not find it", r.host, path_);
  } else if (host->second.router != r.endpoint) {
    ZRPC_LOG(kWarning, "ring file %s sends clients of %s to %s, but it listens on %s", path_,
             r.host, host->second.router, r.endpoint);
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<Registration>> RingMatchmaker::Resolve(std::string_view exchange,
                                                                  std::string_view key) {
  std::shared_ptr<const Ring> ring = Current();
  const bool fanout = key.substr(0, 7) == "fanout~";
  const std::string_view name = fanout ? key.substr(7) : key;
  const size_t dot = name.find('.');
  const std::string topic(name.substr(0, dot));
  auto it = ring->topics.find(topic);
  if (it == ring->topics.end()) {
    return NoConsumerError(name, absl::StrCat("topic \"", topic, "\" is not in ring file ", path_));
  }
  auto make = [&](const std::string& host) {
    const Host& h = ring->hosts.at(host);
    Registration r;
    r.exchange = std::string(exchange);
    r.topic = std::string(name);
    r.host = host;
    r.endpoint = h.router;
    r.pub_endpoint = h.pub;
    r.fanout = fanout;
    return r;
  };
  std::vector<Registration> out;
  if (dot != std::string_view::npos && !fanout) {
    // topic.host: that host, if the ring lists it for the topic.
    const std::string host(name.substr(dot + 1));
    for (const std::string& h : it->second) {
      if (h == host) out.push_back(make(h));
    }
    if (out.empty()) {
      return NoConsumerError(name, absl::StrCat("host \"", host, "\" is not listed for topic \"",
                                                topic, "\" in ring file ", path_));
    }
    return out;
  }
  for (const std::string& h : it->second) out.push_back(make(h));
  return out;
}

absl::StatusOr<std::vector<Registration>> RingMatchmaker::List(std::string_view exchange) {
  std::shared_ptr<const Ring> ring = Current();
  std::vector<Registration> out;
  for (const auto& [topic, hosts] : ring->topics) {
    for (const std::string& host : hosts) {
      for (bool fanout : {false, true}) {
        Registration r;
        r.exchange = exchange.empty() ? std::string(kDefaultExchange) : std::string(exchange);
        r.topic = topic;
        r.host = host;
        r.endpoint = ring->hosts.at(host).router;
        r.pub_endpoint = ring->hosts.at(host).pub;
        r.fanout = fanout;
        out.push_back(std::move(r));
      }
    }
  }
  return out;
}

absl::StatusOr<std::unique_ptr<WatchHandle>> RingMatchmaker::Watch(std::function<void()> on_change) {
  return WatchDirectory(DirOf(path_), std::move(on_change));
}

}  // namespace zrpc::internal
