// SPDX-License-Identifier: Apache-2.0
// zrpc/proxy.h — the client-side helper for one topic: versioned messages and the calls that
// send them (the seed's RpcProxy).
//
//   zrpc::RpcProxy compute(*transport, "compute", /*default_version=*/"1.0", {.version_cap = "1.3"});
//   absl::StatusOr<int64_t> sum = compute.Call<int64_t>(ctx, "add", {{"a", 1}, {"b", 2}});
//   absl::StatusOr<zrpc::Value> any = compute.Call(ctx, compute.MakeMsg("echo", {{"x", 1}}));
//   absl::Status s = compute.Cast(ctx, compute.MakeMsg("note"), {.topic = "compute.node2"});
//   // {.version = "1.4"} gives RpcVersionCapError without sending anything.
//
// Thread-safe after construction (all methods are const).
#ifndef ZRPC_PROXY_H_
#define ZRPC_PROXY_H_

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

#include "absl/status/statusor.h"
#include "zrpc/context.h"
#include "zrpc/message.h"
#include "zrpc/serializer.h"
#include "zrpc/transport.h"
#include "zrpc/value.h"

namespace zrpc {

struct ProxyOptions {
  // Highest version this client may send; "" = no cap.
  std::string version_cap;
  // Serializes arguments and contexts, deserializes results; null = pass through.
  std::shared_ptr<Serializer> serializer;
  // The API namespace MakeMsg puts in messages (the seed's RPC_API_NAMESPACE); nullopt = none.
  std::optional<std::string> ns;
};

// Per-send settings of RpcProxy's methods.
struct ProxyCallOptions {
  // Send to this topic instead of the proxy's (e.g. "compute.node2").
  std::string topic;
  // Request this version instead of the default.
  std::string version;
  // Call deadline; zero = the transport's default.
  absl::Duration timeout = absl::ZeroDuration();
};

class RpcProxy {
 public:
  // A proxy that sends through `transport` (which must outlive it).
  RpcProxy(Transport& transport, std::string topic, std::string default_version,
           ProxyOptions options = {});
  // A proxy that only builds messages (its send methods fail with FAILED_PRECONDITION).
  RpcProxy(std::string topic, std::string default_version, ProxyOptions options = {});

  // Prepare, then Transport::Call; the result goes through the serializer's DeserializeEntity.
  // Blocks until the outcome (see Transport::Call for the errors).
  absl::StatusOr<Value> Call(const Context& context, Message message,
                             ProxyCallOptions options = {}) const;
  // A typed call: calls `method` (in this proxy's namespace) with `args` and converts the
  // result to R with the rules of typed handler arguments (zrpc/dispatcher.h: bool, integer
  // types, floating point, std::string, Value, Object, Array, std::vector<T>, std::optional<T>).
  // A result of another type is INVALID_ARGUMENT naming the method and the element:
  // "result of add: expected integer, got string". Other errors are Call's.
  //   absl::StatusOr<int64_t> sum = proxy.Call<int64_t>(ctx, "add", {{"a", 1}, {"b", 2}});
  template <typename R = Value>
  absl::StatusOr<R> Call(const Context& context, std::string method, Object args = {},
                         ProxyCallOptions options = {}) const;
  // As above, for a message made by MakeMsg or MakeNamespacedMsg.
  template <typename R>
  absl::StatusOr<R> Call(const Context& context, Message message,
                         ProxyCallOptions options = {}) const;
  // Prepare, then Transport::MultiCall.
  absl::StatusOr<std::unique_ptr<ReplyStream>> MultiCall(const Context& context, Message message,
                                                         ProxyCallOptions options = {}) const;
  // Prepare, then Transport::Cast.
  absl::Status Cast(const Context& context, Message message, ProxyCallOptions options = {}) const;
  // Prepare, then Transport::FanoutCast.
  absl::Status FanoutCast(const Context& context, Message message,
                          ProxyCallOptions options = {}) const;
  // The seed's cast_to_server: Prepare (this proxy's version, cap and serializer), then
  // Transport::CastToServer: a cast to the topic (options.topic or the proxy's) delivered to the
  // service at `server_endpoint` ("tcp://10.0.0.5:40711", as its registration or `zrpc topics`
  // shows), without asking the matchmaker. To reach one host by name, Cast with
  // {.topic = QueueGetFor(topic, host)} instead. Returns once queued; PeerLost when the endpoint
  // cannot be reached within the transport's connect_timeout.
  absl::Status CastToServer(const Context& context, std::string_view server_endpoint,
                            Message message, ProxyCallOptions options = {}) const;
  // The seed's fanout_cast_to_server: as CastToServer, to the fanout consumer of the topic at
  // `server_endpoint`.
  absl::Status FanoutCastToServer(const Context& context, std::string_view server_endpoint,
                                  Message message, ProxyCallOptions options = {}) const;

  // {method, args} in this proxy's namespace.
  Message MakeMsg(std::string method, Object args = {}) const;
  // {method, namespace, args}.
  static Message MakeNamespacedMsg(std::string method, std::optional<std::string> ns,
                                   Object args = {});

  // True when there is no cap or `version` is compatible with the cap. A malformed version is
  // false.
  bool CanSendVersion(std::string_view version) const;

  // Makes `message` ready to send: sets its version (`version`, or the default when empty),
  // checks the cap (RpcVersionCapError), serializes each argument and `context` into it
  // (the serializer's errors are returned as they are). INVALID_ARGUMENT for a malformed version.
  absl::StatusOr<Message> Prepare(const Context& context, Message message,
                                  std::string_view version = {}) const;

  const std::string& topic() const { return topic_; }
  const std::string& default_version() const { return default_version_; }
  const ProxyOptions& options() const { return options_; }
  Serializer& serializer() const { return *serializer_; }

 private:
  // A message ready to send, its (serialized) context and its topic.
  struct Ready {
    Context context;
    Message message;
    std::string topic;
  };
  absl::StatusOr<Ready> PrepareSend(const Context& context, Message message,
                                    const ProxyCallOptions& options) const;

  Transport* transport_ = nullptr;
  std::string topic_;
  std::string default_version_;
  ProxyOptions options_;
  std::shared_ptr<Serializer> serializer_;
};

// The seed's queue_get_for: "topic.host", or "topic" when there is no host (or it is empty).
std::string QueueGetFor(std::string_view topic, std::optional<std::string_view> host);

// Implementation details below.

template <typename R>
absl::StatusOr<R> RpcProxy::Call(const Context& context, std::string method, Object args,
                                 ProxyCallOptions options) const {
  return Call<R>(context, MakeMsg(std::move(method), std::move(args)), std::move(options));
}

template <typename R>
absl::StatusOr<R> RpcProxy::Call(const Context& context, Message message,
                                 ProxyCallOptions options) const {
  std::string method = message.method;
  absl::StatusOr<Value> result = Call(context, std::move(message), std::move(options));
  if (!result.ok()) return result.status();
  if constexpr (std::is_same_v<R, Value>) {
    return result;
  } else {
    R out{};
    internal::ConversionError error;
    if (!internal::FromValue(*result, &out, &error)) {
      return absl::InvalidArgumentError(error.Text("result of " + method));
    }
    return out;
  }
}

}  // namespace zrpc

#endif  // ZRPC_PROXY_H_
