// SPDX-License-Identifier: Apache-2.0
// The backend factory and what every backend shares.
#include <algorithm>
#include <tuple>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "matchmaker/backend.h"
#include "src/base/address.h"
#include "matchmaker/local.h"
#include "matchmaker/redis.h"
#include "matchmaker/ring.h"
#include "zrpc/security.h"
#include "matchmaker/registration_json.h"
#include "matchmaker/sidecar/client.h"
#include "matchmaker/sidecar/protocol.h"
#include "zrpc/matchmaker.h"

namespace zrpc {

std::string Registration::Key() const { return fanout ? "fanout~" + topic : topic; }

bool operator==(const Registration& a, const Registration& b) {
  return std::tie(a.exchange, a.topic, a.host, a.endpoint, a.pub_endpoint, a.pool, a.fanout,
                  a.public_key) ==
         std::tie(b.exchange, b.topic, b.host, b.endpoint, b.pub_endpoint, b.pool, b.fanout,
                  b.public_key);
}

absl::Status ValidateName(std::string_view what, std::string_view name) {
  absl::string_view w(what.data(), what.size());
  if (name.empty()) return absl::InvalidArgumentError(absl::StrCat(w, " must not be empty"));
  if (name.size() > 255) {
    return absl::InvalidArgumentError(
        absl::StrCat(w, " is ", name.size(), " bytes long; at most 255 are allowed"));
  }
  for (char c : name) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '_' || c == '.' || c == ':' || c == '~' || c == '-';
    if (!ok) {
      std::string shown = (c >= 0x21 && c < 0x7f) ? std::string(1, c)
                                                  : absl::StrCat("byte 0x", absl::Hex(static_cast<unsigned char>(c)));
      return absl::InvalidArgumentError(absl::StrCat(
          w, " \"", absl::CHexEscape(absl::string_view(name.data(), name.size())),
          "\" has a character that is not allowed (", shown,
          "); use only letters, digits and _ . : ~ -"));
    }
  }
  return absl::OkStatus();
}

namespace {

// Why `e` cannot be a registration's endpoint ("" when it can). An ADDRESS only: a host name
// would make every client that connects resolve it, blocking on libzmq's one I/O thread.
std::string EndpointProblem(std::string_view e) {
  constexpr char kSyntax[] = "is not tcp://ADDRESS:PORT or ipc://PATH (printable, at most 512 bytes)";
  if (e.size() > 512) return kSyntax;
  for (char c : e) {
    if (c <= 0x20 || c >= 0x7f) return kSyntax;
  }
  if (e.starts_with("ipc://")) return e.size() > 6 ? "" : kSyntax;
  if (!e.starts_with("tcp://")) return kSyntax;
  const size_t colon = e.rfind(':');
  if (colon <= 6 || colon + 1 >= e.size()) return kSyntax;
  int port = 0;
  for (char c : e.substr(colon + 1)) {
    if (c < '0' || c > '9') return kSyntax;
    port = port * 10 + (c - '0');
    if (port > 65535) return kSyntax;
  }
  if (port == 0) return kSyntax;
  if (!internal::IsNumericHost(internal::TcpHostOf(e))) {
    return "names a host, not an address: advertise a numeric address (tcp://IPv4:PORT, "
           "tcp://[IPv6]:PORT) or ipc://PATH; clients never resolve names from a registry";
  }
  return "";
}

}  // namespace

bool IsValidEndpoint(std::string_view e) { return EndpointProblem(e).empty(); }

absl::Status ValidateRegistration(const Registration& r) {
  for (auto [what, name] : {std::pair{"topic", &r.topic}, std::pair{"host", &r.host},
                            std::pair{"exchange", &r.exchange}}) {
    if (absl::Status s = ValidateName(what, *name); !s.ok()) return s;
  }
  if (!r.pool.empty()) {
    if (absl::Status s = ValidateName("pool", r.pool); !s.ok()) return s;
    if (r.pool.find('~') != std::string::npos) {
      return absl::InvalidArgumentError(absl::StrCat("pool \"", absl::CHexEscape(r.pool),
                                                     "\" contains '~', which pool names may not"));
    }
    if (r.fanout) return absl::InvalidArgumentError("a worker pool cannot be a fanout consumer");
  }
  auto bad_endpoint = [](absl::string_view what, const std::string& e, const std::string& why) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, " \"", absl::CHexEscape(e.substr(0, 80)), e.size() > 80 ? "...\"" : "\"",
                     " ", why));
  };
  if (r.endpoint.empty()) return absl::InvalidArgumentError("registration needs an endpoint");
  if (std::string why = EndpointProblem(r.endpoint); !why.empty()) {
    return bad_endpoint("endpoint", r.endpoint, why);
  }
  if (std::string why = r.pub_endpoint.empty() ? "" : EndpointProblem(r.pub_endpoint);
      !why.empty()) {
    return bad_endpoint("pub_endpoint", r.pub_endpoint, why);
  }
  if (!r.public_key.empty() && !IsCurveKey(r.public_key)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "public_key \"", absl::CHexEscape(r.public_key.substr(0, 80)),
        "\" is not a CURVE public key (40 characters of Z85)"));
  }
  return absl::OkStatus();
}

std::string RedactUrl(std::string_view url) {
  // scheme://[user][:password]@rest: everything after the first ':' of the credentials goes.
  const size_t scheme = url.find("://");
  if (scheme == std::string_view::npos) return std::string(url);
  // As ParseRedisUrl reads it: the last '@' before any '?' ends the credentials (a password may
  // hold '/'). A path with '@' in another scheme is masked too: harmless.
  const size_t start = scheme + 3;
  const std::string_view authority = url.substr(start, url.find('?', start) - start);
  const size_t at = authority.rfind('@');
  if (at == std::string_view::npos) return std::string(url);
  const std::string_view cred = authority.substr(0, at);
  const size_t colon = cred.find(':');
  std::string out(url.substr(0, start));
  if (colon == std::string_view::npos) {
    out.append("***");  // "redis://secret@host": a bare credential is a password
  } else {
    out.append(cred.substr(0, colon)).append(":***");
  }
  out.append(url.substr(start + at));
  return out;
}

absl::StatusOr<std::unique_ptr<Matchmaker>> CreateMatchmaker(std::string_view url) {
  absl::StatusOr<internal::Backend> backend = internal::CreateBackend(url);
  if (!backend.ok()) return backend.status();
  return std::move(backend->matchmaker);
}

namespace internal {

absl::StatusOr<std::unique_ptr<Matchmaker>> CreateMatchmakerWithKeys(
    std::string_view url, std::shared_ptr<Keyring> keyring) {
  absl::StatusOr<Backend> backend = CreateBackend(url, std::move(keyring));
  if (!backend.ok()) return backend.status();
  return std::move(backend->matchmaker);
}

absl::StatusOr<Backend> CreateBackend(std::string_view url, std::shared_ptr<Keyring> keyring) {
  absl::string_view u(url.data(), url.size());
  auto bad = [&](absl::string_view why) {
    return absl::InvalidArgumentError(
        absl::StrCat("matchmaker URL \"", absl::CHexEscape(RedactUrl(url)), "\": ", why));
  };
  auto plain = [](absl::StatusOr<std::unique_ptr<Matchmaker>> mm) -> absl::StatusOr<Backend> {
    if (!mm.ok()) return mm.status();
    return Backend{*std::move(mm)};
  };
  // One switch on the scheme: every backend is chosen here.
  if (u.empty() || u == "local://") return plain(LocalMatchmaker::Create(""));
  if (absl::StartsWith(u, "local://")) {
    absl::string_view path = u.substr(8);
    std::string group;
    if (const size_t q = path.find('?'); q != absl::string_view::npos) {
      // The one option: ?group=NAME, a directory shared by that group (see local.h).
      absl::string_view option = path.substr(q + 1);
      path = path.substr(0, q);
      if (!absl::ConsumePrefix(&option, "group=") || option.empty() ||
          option.find_first_of("&=?") != absl::string_view::npos) {
        return bad("local:// takes one option, ?group=NAME (a directory shared by that group)");
      }
      group = std::string(option);
    }
    if (!absl::StartsWith(path, "/")) {
      return bad("local:// takes an absolute directory, e.g. local:///run/zrpc");
    }
    return plain(LocalMatchmaker::Create(std::string(path), std::move(group)));
  }
  if (absl::StartsWith(u, "ring://")) {
    absl::string_view path = u.substr(7);
    if (!absl::StartsWith(path, "/")) return bad("ring:// takes an absolute path, e.g. ring:///etc/zrpc/ring.json");
    return plain(RingMatchmaker::Create(std::string(path)));
  }
  if (absl::StartsWith(u, "redis://")) {
    absl::StatusOr<std::unique_ptr<RedisMatchmaker>> redis = RedisMatchmaker::Create(url);
    if (!redis.ok()) return redis.status();
    BulkRegistrar* bulk = redis->get();
    return Backend{*std::move(redis), bulk};
  }
  if (sidecar::IsSidecarUrl(url)) {
    // A zrpc-matchmaker sidecar.
    return plain(sidecar::SidecarMatchmaker::Create(std::string(u), std::move(keyring)));
  }
  return absl::InvalidArgumentError(absl::StrCat(
      "unsupported matchmaker URL \"", absl::CHexEscape(RedactUrl(url)),
      "\"; supported: local:// (or local:///dir, local:///dir?group=NAME), ring:///path/ring.json, "
      "redis://[:password@]host[:port][/db], ipc://... or tcp://... (a zrpc-matchmaker sidecar)"));
}

namespace {
constexpr size_t kMaxAcceptedForms = 8;
}  // namespace

Value RegistrationToValue(const Registration& r) {
  Value v(Object{{"exchange", r.exchange},
                      {"topic", r.topic},
                      {"host", r.host},
                      {"endpoint", r.endpoint},
                      {"pub_endpoint", r.pub_endpoint},
                      {"pool", r.pool},
                      {"fanout", r.fanout},
                      {"heartbeat_ms", r.heartbeat_ms}});
  if (!r.public_key.empty()) v.MutableObject().Set("public_key", r.public_key);
  if (!r.accepts.empty()) {
    Array forms;
    for (const std::string& f : r.accepts) forms.emplace_back(f);
    v.MutableObject().Set("accepts", Value(std::move(forms)));
  }
  return v;
}

absl::StatusOr<Registration> RegistrationFromValue(const Value& v) {
  if (!v.is_object()) return absl::InvalidArgumentError("registration must be an object");
  Registration r;
  auto str = [&](const char* key, std::string* out, bool required) -> absl::Status {
    const Value* f = v.Find(key);
    if (f == nullptr) {
      return required ? absl::InvalidArgumentError(absl::StrCat("registration lacks \"", key, "\""))
                      : absl::OkStatus();
    }
    if (!f->is_string()) {
      return absl::InvalidArgumentError(absl::StrCat("registration \"", key, "\" must be a string"));
    }
    *out = f->AsString();
    return absl::OkStatus();
  };
  for (auto [key, out, required] : {std::tuple{"exchange", &r.exchange, false},
                                    std::tuple{"topic", &r.topic, true},
                                    std::tuple{"host", &r.host, true},
                                    std::tuple{"endpoint", &r.endpoint, true},
                                    std::tuple{"pub_endpoint", &r.pub_endpoint, false},
                                    std::tuple{"pool", &r.pool, false},
                                    std::tuple{"public_key", &r.public_key, false}}) {
    if (absl::Status s = str(key, out, required); !s.ok()) return s;
  }
  if (const Value* f = v.Find("fanout"); f != nullptr) {
    if (!f->is_bool()) return absl::InvalidArgumentError("registration \"fanout\" must be a bool");
    r.fanout = f->AsBool();
  }
  if (const Value* f = v.Find("heartbeat_ms"); f != nullptr) {
    if (!f->is_int() || f->AsInt() < 0 || f->AsInt() > 3600 * 1000) {
      return absl::InvalidArgumentError("registration \"heartbeat_ms\" must be an integer 0..3600000");
    }
    r.heartbeat_ms = f->AsInt();
  }
  if (const Value* f = v.Find("accepts"); f != nullptr) {
    // Forms this client does not know are kept (and ignored): a newer service may list more.
    auto bad = [] {
      return absl::InvalidArgumentError(absl::StrCat(
          "registration \"accepts\" must be an array of at most ", kMaxAcceptedForms,
          " names of 1..32 characters [a-z0-9._-]"));
    };
    if (!f->is_array() || f->AsArray().size() > kMaxAcceptedForms) return bad();
    for (const Value& form : f->AsArray()) {
      if (!form.is_string() || form.AsString().empty() || form.AsString().size() > 32) return bad();
      for (char c : form.AsString()) {
        if (!absl::ascii_islower(c) && !absl::ascii_isdigit(c) && c != '.' && c != '_' && c != '-') {
          return bad();
        }
      }
      r.accepts.push_back(form.AsString());
    }
  }
  return r;
}

}  // namespace internal
}  // namespace zrpc
