// SPDX-License-Identifier: Apache-2.0
// The backend factory and what every backend shares.
#include <algorithm>
#include <tuple>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "matchmaker/backend.h"
#include "matchmaker/local.h"
#include "matchmaker/redis.h"
#include "matchmaker/ring.h"
#include "matchmaker/registration_json.h"
#include "matchmaker/sidecar/client.h"
#include "matchmaker/sidecar/protocol.h"
#include "zrpc/matchmaker.h"

namespace zrpc {

std::string Registration::Key() const { return fanout ? "fanout~" + topic : topic; }

bool operator==(const Registration& a, const Registration& b) {
  return std::tie(a.exchange, a.topic, a.host, a.endpoint, a.pub_endpoint, a.pool, a.fanout) ==
         std::tie(b.exchange, b.topic, b.host, b.endpoint, b.pub_endpoint, b.pool, b.fanout);
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

absl::StatusOr<std::unique_ptr<Matchmaker>> CreateMatchmaker(std::string_view url) {
  absl::StatusOr<internal::Backend> backend = internal::CreateBackend(url);
  if (!backend.ok()) return backend.status();
  return std::move(backend->matchmaker);
}

namespace internal {

absl::StatusOr<Backend> CreateBackend(std::string_view url) {
  absl::string_view u(url.data(), url.size());
  auto bad = [&](absl::string_view why) {
    return absl::InvalidArgumentError(absl::StrCat("matchmaker URL \"", u, "\": ", why));
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
    return plain(sidecar::SidecarMatchmaker::Create(std::string(u)));  // a zrpc-matchmaker sidecar
  }
  return absl::InvalidArgumentError(absl::StrCat(
      "unsupported matchmaker URL \"", u,
      "\"; supported: local:// (or local:///dir, local:///dir?group=NAME), ring:///path/ring.json, "
      "redis://[:password@]host[:port][/db], ipc://... or tcp://... (a zrpc-matchmaker sidecar)"));
}

absl::Status ValidateRegistration(const Registration& r) {
  for (auto [what, name] : {std::pair{"topic", &r.topic}, std::pair{"host", &r.host},
                            std::pair{"exchange", &r.exchange}}) {
    if (absl::Status s = ValidateName(what, *name); !s.ok()) return s;
  }
  if (r.endpoint.empty()) return absl::InvalidArgumentError("registration needs an endpoint");
  return absl::OkStatus();
}

Value RegistrationToValue(const Registration& r) {
  return Value(Object{{"exchange", r.exchange},
                      {"topic", r.topic},
                      {"host", r.host},
                      {"endpoint", r.endpoint},
                      {"pub_endpoint", r.pub_endpoint},
                      {"pool", r.pool},
                      {"fanout", r.fanout},
                      {"heartbeat_ms", r.heartbeat_ms}});
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
                                    std::tuple{"pool", &r.pool, false}}) {
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
  return r;
}

}  // namespace internal
}  // namespace zrpc
