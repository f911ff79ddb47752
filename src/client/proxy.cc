// SPDX-License-Identifier: Apache-2.0
#include "zrpc/proxy.h"

#include "absl/strings/str_cat.h"
#include "zrpc/errors.h"
#include "zrpc/version.h"

namespace zrpc {

RpcProxy::RpcProxy(Transport& transport, std::string topic, std::string default_version,
                   ProxyOptions options)
    : RpcProxy(std::move(topic), std::move(default_version), std::move(options)) {
  transport_ = &transport;
}

RpcProxy::RpcProxy(std::string topic, std::string default_version, ProxyOptions options)
    : topic_(std::move(topic)),
      default_version_(std::move(default_version)),
      options_(std::move(options)),
      serializer_(options_.serializer ? options_.serializer : std::make_shared<Serializer>()) {}

Message RpcProxy::MakeMsg(std::string method, Object args) const {
  return MakeNamespacedMsg(std::move(method), options_.ns, std::move(args));
}

Message RpcProxy::MakeNamespacedMsg(std::string method, std::optional<std::string> ns,
                                    Object args) {
  Message m;
  m.method = std::move(method);
  m.ns = std::move(ns);
  m.args = std::move(args);
  return m;
}

bool RpcProxy::CanSendVersion(std::string_view version) const {
  if (options_.version_cap.empty()) return true;
  return VersionIsCompatible(options_.version_cap, version).value_or(false);
}

absl::StatusOr<Message> RpcProxy::Prepare(const Context& context, Message message,
                                          std::string_view version) const {
  std::string v(version.empty() ? std::string_view(default_version_) : version);
  if (v.empty()) v = "1.0";
  if (absl::StatusOr<Version> parsed = ParseVersion(v); !parsed.ok()) return parsed.status();
  if (!options_.version_cap.empty()) {
    absl::StatusOr<bool> ok = VersionIsCompatible(options_.version_cap, v);
    if (!ok.ok()) return ok.status();  // a malformed cap
    if (!*ok) return RpcVersionCapError(options_.version_cap);
  }
  message.version = std::move(v);
  for (auto& [key, value] : message.args) {
    absl::StatusOr<Value> out = serializer_->SerializeEntity(context, std::move(value));
    if (!out.ok()) return out.status();
    value = *std::move(out);
  }
  message.context = Context(serializer_->SerializeContext(context));
  return message;
}

namespace {

absl::Status NoTransport() {
  return absl::FailedPreconditionError("this RpcProxy was made without a transport");
}

}  // namespace

absl::StatusOr<RpcProxy::Ready> RpcProxy::PrepareSend(const Context& context, Message message,
                                                      const ProxyCallOptions& options) const {
  if (transport_ == nullptr) return NoTransport();
  absl::StatusOr<Message> ready = Prepare(context, std::move(message), options.version);
  if (!ready.ok()) return ready.status();
  Context sent = ready->context;
  return Ready{std::move(sent), *std::move(ready), options.topic.empty() ? topic_ : options.topic};
}

absl::StatusOr<Value> RpcProxy::Call(const Context& context, Message message,
                                     ProxyCallOptions options) const {
  absl::StatusOr<Ready> r = PrepareSend(context, std::move(message), options);
  if (!r.ok()) return r.status();
  absl::StatusOr<Value> result =
      transport_->Call(r->context, r->topic, std::move(r->message), {.timeout = options.timeout});
  if (!result.ok()) return result;
  return serializer_->DeserializeEntity(context, *std::move(result));
}

absl::StatusOr<std::unique_ptr<ReplyStream>> RpcProxy::MultiCall(const Context& context,
                                                                 Message message,
                                                                 ProxyCallOptions options) const {
  absl::StatusOr<Ready> r = PrepareSend(context, std::move(message), options);
  if (!r.ok()) return r.status();
  return transport_->MultiCall(r->context, r->topic, std::move(r->message),
                               {.timeout = options.timeout});
}

absl::Status RpcProxy::Cast(const Context& context, Message message,
                            ProxyCallOptions options) const {
  absl::StatusOr<Ready> r = PrepareSend(context, std::move(message), options);
  if (!r.ok()) return r.status();
  return transport_->Cast(r->context, r->topic, std::move(r->message));
}

absl::Status RpcProxy::FanoutCast(const Context& context, Message message,
                                  ProxyCallOptions options) const {
  absl::StatusOr<Ready> r = PrepareSend(context, std::move(message), options);
  if (!r.ok()) return r.status();
  return transport_->FanoutCast(r->context, r->topic, std::move(r->message));
}

absl::Status RpcProxy::CastToServer(const Context& context, std::string_view server_endpoint,
                                    Message message, ProxyCallOptions options) const {
  absl::StatusOr<Ready> r = PrepareSend(context, std::move(message), options);
  if (!r.ok()) return r.status();
  return transport_->CastToServer(r->context, server_endpoint, r->topic, std::move(r->message));
}

absl::Status RpcProxy::FanoutCastToServer(const Context& context, std::string_view server_endpoint,
                                          Message message, ProxyCallOptions options) const {
  absl::StatusOr<Ready> r = PrepareSend(context, std::move(message), options);
  if (!r.ok()) return r.status();
  return transport_->FanoutCastToServer(r->context, server_endpoint, r->topic,
                                        std::move(r->message));
}

std::string QueueGetFor(std::string_view topic, std::optional<std::string_view> host) {
  if (!host || host->empty()) return std::string(topic);
  return absl::StrCat(absl::string_view(topic.data(), topic.size()), ".",
                      absl::string_view(host->data(), host->size()));
}

}  // namespace zrpc
