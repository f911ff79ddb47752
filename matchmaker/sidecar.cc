#include "matchmaker/sidecar.h"

#include <unistd.h>

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "matchmaker/registration_json.h"
#include "src/codec/json_internal.h"
#include "src/base/log_internal.h"
#include "zrpc/errors.h"
#include "zrpc/message.h"

namespace zrpc::internal {
namespace {

constexpr absl::Duration kRequestTimeout = absl::Seconds(1);
// Cached answers are dropped on every change notice; this bounds how stale one can get if a
// notice is lost (PUB drops while a subscriber is reconnecting).
constexpr absl::Duration kCacheTtl = absl::Seconds(5);

std::string CacheKey(std::string_view exchange, std::string_view key) {
  return absl::StrCat(absl::string_view(exchange.data(), exchange.size()), "|",
                      absl::string_view(key.data(), key.size()));
}

absl::StatusOr<std::vector<Registration>> Registrations(const Value& result) {
  const Value* regs = result.Find("registrations");
  if (regs == nullptr || !regs->is_array()) {
    return absl::InternalError("sidecar answer lacks \"registrations\"");
  }
  std::vector<Registration> out;
  for (const Value& v : regs->AsArray()) {
    absl::StatusOr<Registration> r = RegistrationFromValue(v);
    if (!r.ok()) return r.status();
    out.push_back(*std::move(r));
  }
  return out;
}

}  // namespace

absl::StatusOr<std::unique_ptr<Matchmaker>> SidecarMatchmaker::Create(std::string url) {
  auto mm = std::unique_ptr<SidecarMatchmaker>(new SidecarMatchmaker(std::move(url)));
  {
    absl::MutexLock lock(&mm->mu_);
    if (absl::Status s = mm->EnsureHello(); !s.ok()) {
      ZRPC_LOG(kWarning, "%s (will keep trying)", s.message());
    }
  }
  mm->listener_ = std::thread([raw = mm.get()] { raw->ListenForChanges(); });
  return std::unique_ptr<Matchmaker>(std::move(mm));
}

SidecarMatchmaker::SidecarMatchmaker(std::string url)
    : url_(std::move(url)), client_id_(absl::StrCat(getpid(), "-", NewUniqueId())), ctx_(1) {}

SidecarMatchmaker::~SidecarMatchmaker() {
  stop_ = true;
  if (listener_.joinable()) listener_.join();
  absl::MutexLock lock(&mu_);
  dealer_.reset();
}

absl::StatusOr<Value> SidecarMatchmaker::Request(std::string_view op, Value body) {
  if (absl::Now() < down_until_) {
    return absl::UnavailableError(absl::StrCat("matchmaker sidecar at ", url_, " is not answering"));
  }
  try {
    if (!dealer_) {
      dealer_ = std::make_unique<zmq::socket_t>(ctx_, zmq::socket_type::dealer);
      dealer_->set(zmq::sockopt::linger, 0);
      dealer_->set(zmq::sockopt::immediate, 1);
      dealer_->connect(url_);
    }
    const std::string id = std::to_string(next_request_++);
    const std::string header =
        absl::StrCat(ToAbsl(kSidecarProtocol), " ", absl::string_view(op.data(), op.size()), " ", id);
    absl::StatusOr<std::string> text = ToJson(body);
    if (!text.ok()) return text.status();
    const absl::Time deadline = absl::Now() + kRequestTimeout;
    dealer_->set(zmq::sockopt::sndtimeo, static_cast<int>(absl::ToInt64Milliseconds(kRequestTimeout)));
    if (!dealer_->send(zmq::buffer(header), zmq::send_flags::sndmore) ||
        !dealer_->send(zmq::buffer(*text), zmq::send_flags::none)) {
      dealer_.reset();  // a fresh socket next time: nothing stale queued
      down_until_ = absl::Now() + kRequestTimeout;
      return absl::UnavailableError(absl::StrCat("matchmaker sidecar at ", url_, " is not running"));
    }
    while (true) {
      const absl::Duration left = deadline - absl::Now();
      if (left <= absl::ZeroDuration()) break;
      dealer_->set(zmq::sockopt::rcvtimeo,
                   static_cast<int>(std::max<int64_t>(1, absl::ToInt64Milliseconds(left))));
      zmq::message_t h, b;
      if (!dealer_->recv(h)) break;
      if (!h.more() || !dealer_->recv(b)) continue;
      if (h.to_string() != absl::StrCat(ToAbsl(kSidecarProtocol), " reply ", id)) continue;  // stale
      absl::StatusOr<Value> reply = ParseJson(b.to_string());
      if (!reply.ok()) return reply.status();
      const Value* ok = reply->Find("ok");
      if (ok && ok->is_bool() && ok->AsBool()) {
        const Value* result = reply->Find("result");
        return result ? *result : Value(Object{});
      }
      const Value* err = reply->Find("error");
      const Value* code = err ? err->Find("code") : nullptr;
      const Value* message = err ? err->Find("message") : nullptr;
      return absl::Status(
          code && code->is_int() ? static_cast<absl::StatusCode>(code->AsInt()) : absl::StatusCode::kInternal,
          absl::StrCat("matchmaker sidecar: ", message && message->is_string() ? message->AsString() : "error"));
    }
    dealer_.reset();
    down_until_ = absl::Now() + kRequestTimeout;
    pub_endpoint_.clear();  // ask again on reconnecting: a restarted sidecar may publish elsewhere
    return absl::UnavailableError(
        absl::StrCat("matchmaker sidecar at ", url_, " did not answer within ",
                     absl::FormatDuration(kRequestTimeout)));
  } catch (const zmq::error_t& e) {
    dealer_.reset();
    return absl::UnavailableError(absl::StrCat("matchmaker sidecar at ", url_, ": ", e.what()));
  }
}

absl::Status SidecarMatchmaker::EnsureHello() {
  if (!pub_endpoint_.empty()) return absl::OkStatus();
  absl::StatusOr<Value> hello = Request("hello", Value(Object{}));
  if (!hello.ok()) return hello.status();
  const Value* pub = hello->Find("pub");
  if (pub && pub->is_string()) pub_endpoint_ = pub->AsString();
  return absl::OkStatus();
}

absl::Status SidecarMatchmaker::Register(const Registration& r) {
  if (absl::Status s = ValidateRegistration(r); !s.ok()) return s;
  absl::MutexLock lock(&mu_);
  if (std::find(own_.begin(), own_.end(), r) == own_.end()) own_.push_back(r);
  (void)EnsureHello();
  return Request("register", Value(Object{{"client", client_id_}, {"registration", RegistrationToValue(r)}}))
      .status();
}

absl::Status SidecarMatchmaker::Unregister(const Registration& r) {
  absl::MutexLock lock(&mu_);
  own_.erase(std::remove(own_.begin(), own_.end(), r), own_.end());
  return Request("unregister",
                 Value(Object{{"client", client_id_}, {"registration", RegistrationToValue(r)}}))
      .status();
}

absl::Status SidecarMatchmaker::Heartbeat() {
  absl::MutexLock lock(&mu_);
  if (own_.empty()) return absl::OkStatus();
  (void)EnsureHello();
  Array regs;
  for (const Registration& r : own_) regs.push_back(RegistrationToValue(r));
  // Carries every registration: a restarted sidecar learns them all back from the first beat.
  return Request("heartbeat", Value(Object{{"client", client_id_}, {"registrations", std::move(regs)}}))
      .status();
}

absl::StatusOr<std::vector<Registration>> SidecarMatchmaker::Resolve(std::string_view exchange,
                                                                     std::string_view key) {
  const std::string ck = CacheKey(exchange, key);
  {
    absl::MutexLock lock(&cache_mu_);
    auto it = cache_.find(ck);
    if (it != cache_.end() && absl::Now() - it->second.second < kCacheTtl) return it->second.first;
  }
  absl::StatusOr<Value> result;
  {
    absl::MutexLock lock(&mu_);
    (void)EnsureHello();
    result = Request("resolve", Value(Object{{"exchange", std::string(exchange)}, {"key", std::string(key)}}));
  }
  if (!result.ok()) {
    // Serve what we knew while the sidecar is away.
    absl::MutexLock lock(&cache_mu_);
    auto it = cache_.find(ck);
    if (it != cache_.end()) return it->second.first;
    return result.status();
  }
  absl::StatusOr<std::vector<Registration>> regs = Registrations(*result);
  if (!regs.ok()) return regs.status();
  absl::MutexLock lock(&cache_mu_);
  cache_[ck] = {*regs, absl::Now()};
  return regs;
}

absl::StatusOr<std::vector<Registration>> SidecarMatchmaker::List(std::string_view exchange) {
  absl::MutexLock lock(&mu_);
  absl::StatusOr<Value> result = Request("list", Value(Object{{"exchange", std::string(exchange)}}));
  if (!result.ok()) return result.status();
  return Registrations(*result);
}

absl::StatusOr<std::unique_ptr<WatchHandle>> SidecarMatchmaker::Watch(std::function<void()> on_change) {
  return watchers_.Add(std::move(on_change));
}

void SidecarMatchmaker::Changed() {
  {
    // Stale, not gone: refetched on the next lookup, still served while the sidecar is away.
    absl::MutexLock lock(&cache_mu_);
    for (auto& [key, entry] : cache_) entry.second = absl::InfinitePast();
  }
  watchers_.Notify();
}

void SidecarMatchmaker::ListenForChanges() {
  std::unique_ptr<zmq::socket_t> sub;
  std::string connected_to;
  while (!stop_) {
    std::string pub;
    {
      absl::MutexLock lock(&mu_);
      pub = pub_endpoint_;
    }
    try {
      if (!pub.empty() && pub != connected_to) {
        sub = std::make_unique<zmq::socket_t>(ctx_, zmq::socket_type::sub);
        sub->set(zmq::sockopt::linger, 0);
        sub->set(zmq::sockopt::subscribe, std::string(kSidecarProtocol));
        sub->connect(pub);
        connected_to = pub;
        Changed();  // anything may have changed before we listened
      }
      if (!sub) {
        absl::SleepFor(absl::Milliseconds(100));
        continue;
      }
      zmq::pollitem_t item{sub->handle(), 0, ZMQ_POLLIN, 0};
      zmq::poll(&item, 1, std::chrono::milliseconds(200));
      if (!(item.revents & ZMQ_POLLIN)) continue;
      zmq::message_t m;
      bool any = false;
      while (sub->recv(m, zmq::recv_flags::dontwait)) any = true;
      if (any) Changed();
    } catch (const zmq::error_t& e) {
      ZRPC_LOG(kWarning, "matchmaker sidecar notifications: %s", e.what());
      sub.reset();
      connected_to.clear();
      absl::SleepFor(absl::Milliseconds(200));
    }
  }
}

}  // namespace zrpc::internal
