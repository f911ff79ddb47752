// SPDX-License-Identifier: Apache-2.0
// zrpc/dispatcher.h — maps method names to handlers, by API namespace and version.
//
// An Endpoint is a set of methods implementing one API namespace at one version. The Dispatcher
// holds endpoints in order; a request goes to the first endpoint of its namespace whose version
// is compatible and which has the method (the seed's RpcDispatcher):
//
//   zrpc::Dispatcher dispatcher;
//   dispatcher.Add(zrpc::Endpoint{.version = "1.3"}
//       .Method("echo", [](zrpc::CallContext&, const zrpc::Object& args)
//                           -> absl::StatusOr<zrpc::Value> { return zrpc::Value(args); })
//       .Method("add", {"a", "b"}, [](int64_t a, int64_t b) { return a + b; })  // typed
//       .Stream("count", [](zrpc::CallContext&, const zrpc::Object& args,
//                           zrpc::StreamWriter& out) -> absl::Status {
//         for (int i = 0; i < 3; ++i) if (!out.Write(i)) break;
//         return absl::OkStatus();
//       }));
//
// Errors from dispatch: NoSuchMethod (some endpoint of the namespace was version-compatible, none
// has the method; or no endpoint serves the namespace at all: the text names the namespaces
// served), UnsupportedRpcVersion (none was compatible: the text names the versions served for
// the namespace), INVALID_ARGUMENT (malformed version, bad typed arguments: the text names the
// argument and the element, e.g. 'argument "xs"[1] of method "sum": expected integer, got
// string'). A handler's failed status or thrown exception becomes the call's
// error; it never escapes Dispatch.
#ifndef ZRPC_DISPATCHER_H_
#define ZRPC_DISPATCHER_H_

#include <atomic>
#include <exception>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <typeinfo>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "zrpc/context.h"
#include "zrpc/errors.h"
#include "zrpc/message.h"
#include "zrpc/serializer.h"
#include "zrpc/value.h"
#include "zrpc/version.h"

namespace zrpc {

namespace internal {
class ServerEngine;
}  // namespace internal

// The namespace zrpc keeps for its own introspection methods; user endpoints may not use it.
inline constexpr std::string_view kReservedNamespace = "_zrpc";

// What a handler knows about the request it serves. Created by the transport (or by tests) for
// each request; lives until the handler returns. Thread-safe: Cancel() may be called from any
// thread while the handler runs.
class CallContext {
 public:
  explicit CallContext(Context context = {}, absl::Time deadline = absl::InfiniteFuture(),
                       std::string topic = {}, std::string method = {})
      : context_(std::move(context)),
        deadline_(deadline),
        topic_(std::move(topic)),
        method_(std::move(method)) {}
  CallContext(const CallContext&) = delete;
  CallContext& operator=(const CallContext&) = delete;

  // The caller's context (after the serializer's DeserializeContext).
  const Context& context() const { return context_; }
  Context& mutable_context() { return context_; }
  // When the caller stops waiting (InfiniteFuture for casts without a deadline). Pass the
  // remaining time on to nested calls.
  absl::Time deadline() const { return deadline_; }
  absl::Duration remaining() const { return deadline_ - absl::Now(); }
  // The caller's identity (its name in the service's authorized_keys; CurveZMQ), or "" when the
  // service runs without keys.
  const std::string& peer_identity() const { return peer_identity_; }
  // The topic the request arrived on and the method it names.
  const std::string& topic() const { return topic_; }
  const std::string& method() const { return method_; }
  void set_method(std::string method) { method_ = std::move(method); }
  // True once the caller has gone: it cancelled, its deadline passed, or the service is closing.
  bool cancelled() const {
    return cancelled_.load(std::memory_order_relaxed) || absl::Now() > deadline_;
  }
  void Cancel() { cancelled_.store(true, std::memory_order_relaxed); }

  // The CallContext of the handler running on this thread, or nullptr outside handlers.
  static const CallContext* Current();

 private:
  friend class Dispatcher;
  friend class internal::ServerEngine;  // sets the deadline of a request it decodes late
  void set_deadline(absl::Time deadline) { deadline_ = deadline; }
  void set_peer_identity(std::string identity) { peer_identity_ = std::move(identity); }
  Context context_;
  std::string peer_identity_;
  absl::Time deadline_;
  std::string topic_;
  std::string method_;
  std::atomic<bool> cancelled_{false};
};

// Where a streaming handler sends its values, one at a time.
class StreamWriter {
 public:
  virtual ~StreamWriter() = default;
  // Sends one value to the caller now. Returns false when the caller has gone (cancelled, timed
  // out, or the value could not be serialized): the handler should stop then.
  virtual bool Write(Value value) = 0;
};

// A request/response handler: returns the result (null for none) or an error.
using UnaryHandler = std::function<absl::StatusOr<Value>(CallContext&, const Object& args)>;
// A streaming handler (for multicall): writes any number of values, then returns a status.
using StreamHandler =
    std::function<absl::Status(CallContext&, const Object& args, StreamWriter& out)>;

// A status for a caught exception: its type travels as class and module ("runtime_error", "std").
absl::Status StatusFromException(const std::exception& e);

// Wraps `handler` so that exceptions of exactly the types E... (not subclasses, as in the seed's
// client_exceptions) become expected errors: returned to the caller, not logged as server errors.
template <typename... E>
UnaryHandler ClientExceptions(UnaryHandler handler);

// One argument of a typed method: its name, its JSON type name ("integer", "array of string",
// "any", ...) and whether it may be left out (std::optional).
struct ArgSignature {
  std::string name;
  std::string type;
  bool optional = false;
};

// What a method takes and returns, as `_zrpc.describe` reports it. Only typed methods
// (Method with argument names) know their types; for the others `typed` is false.
struct MethodSignature {
  bool typed = false;
  std::vector<ArgSignature> args;
  // The result's JSON type name ("integer", "null" for void/absl::Status, "any" for Value).
  std::string returns;
};

// One API namespace at one version, with its methods. An aggregate: set the fields with
// designated initializers, then add methods.
struct Endpoint {
  // The API namespace; "" is the default namespace (a request with no or a null namespace).
  std::string ns;
  // The version implemented, "X.Y" or "X.Y.Z".
  std::string version = "1.0";
  // When true, handlers run on the service's I/O thread with no hand-off (lowest latency). They
  // must not block: a blocking inline handler stalls every request of the service.
  bool inline_handlers = false;
  // Who may call this endpoint's methods (CurveZMQ, zrpc/security.h): identities and groups of
  // the service's authorized_keys file. Empty: every peer that may connect. A caller not listed
  // gets NotAuthorized and nothing runs; a service without keys has no authenticated callers, so
  // a non-empty list refuses everyone there.
  std::vector<std::string> allowed;

  struct MethodEntry {
    UnaryHandler unary;    // set for Method()
    StreamHandler stream;  // set for Stream()
    std::vector<std::string> allowed;  // set by Allow(): who may call this method (besides `allowed`)
    MethodSignature signature;         // set for typed methods
  };
  // Filled by Method() and Stream().
  absl::flat_hash_map<std::string, MethodEntry> methods;
  // The first registration error (reported by Dispatcher::Add).
  std::string error;

  // Adds a request/response method (a later one of the same name replaces it).
  Endpoint& Method(std::string name, UnaryHandler handler) &;
  Endpoint&& Method(std::string name, UnaryHandler handler) && {
    return std::move(Method(std::move(name), std::move(handler)));
  }
  // Adds a typed method: `f` takes its arguments by the given names (optionally preceded by a
  // CallContext&), each converted from JSON (bool, integers, floating point, std::string,
  // Value, Object, Array, std::vector<T>, std::optional<T> for optional arguments), and returns
  // such a value, void, absl::Status or absl::StatusOr<T>. A missing, extra or wrongly typed
  // argument is an INVALID_ARGUMENT naming it, and the element inside it:
  // 'argument "xs"[1] of method "sum": expected integer, got string'. The argument names and
  // types are what `_zrpc.describe` reports (Signatures()).
  template <typename F>
  Endpoint& Method(std::string name, std::vector<std::string> arg_names, F f) &;
  template <typename F>
  Endpoint&& Method(std::string name, std::vector<std::string> arg_names, F f) && {
    return std::move(Method(std::move(name), std::move(arg_names), std::move(f)));
  }
  // Restricts method `name` (added before) to these identities and groups; a caller must be
  // admitted by the endpoint's `allowed` too. An unknown method, an empty `who` (it would leave
  // the method open) or a name that is not a valid identity or group is a registration error:
  // Dispatcher::Add then returns INVALID_ARGUMENT.
  Endpoint& Allow(const std::string& name, std::vector<std::string> who) &;
  Endpoint&& Allow(const std::string& name, std::vector<std::string> who) && {
    return std::move(Allow(name, std::move(who)));
  }
  // Adds a streaming method (for MultiCall; Call gets its last value).
  Endpoint& Stream(std::string name, StreamHandler handler) &;
  Endpoint&& Stream(std::string name, StreamHandler handler) && {
    return std::move(Stream(std::move(name), std::move(handler)));
  }

  // The methods' signatures sorted by name, as `_zrpc.describe` returns them:
  //   {"name": "add", "args": [{"name": "a", "type": "integer"}, ...], "returns": "integer",
  //    "stream": false}
  // (an optional argument has "optional": true; an untyped method has only "name" and "stream").
  Array Signatures() const;
};

// Routes requests to endpoints. Add endpoints before the dispatcher serves requests; after that it
// is read-only, and Dispatch may be called from many threads at once.
class Dispatcher {
 public:
  // `serializer` may be null (no-op).
  explicit Dispatcher(std::shared_ptr<Serializer> serializer = nullptr);

  // Adds an endpoint after the ones already added. INVALID_ARGUMENT for a malformed version, a
  // reserved namespace, an empty method name, or a registration error of a typed method.
  absl::Status Add(Endpoint endpoint);

  // What a request resolves to.
  struct Target {
    const Endpoint* endpoint;
    const Endpoint::MethodEntry* method;
  };
  // The seed's dispatch algorithm without running anything. `version` "" means "1.0"; `ns` ""
  // is the default namespace.
  absl::StatusOr<Target> Resolve(std::string_view ns, std::string_view version,
                                 std::string_view method) const;

  // Runs `message` (its context and arguments are consumed): each result value goes to `emit`
  // (one for a plain method, one per Write for a stream; emit returns false to stop the stream).
  // Returns the final status. Sets ctx's context and method. Never throws.
  absl::Status Dispatch(CallContext& ctx, Message& message,
                        const std::function<bool(Value)>& emit) const;
  // Dispatch for a request already resolved to `target` (by Resolve on this dispatcher).
  absl::Status Run(const Target& target, CallContext& ctx, Message& message,
                   const std::function<bool(Value)>& emit) const;

  const std::vector<std::unique_ptr<Endpoint>>& endpoints() const { return endpoints_; }
  Serializer& serializer() const { return *serializer_; }

 private:
  std::shared_ptr<Serializer> serializer_;
  bool serializer_is_noop_;
  std::vector<std::unique_ptr<Endpoint>> endpoints_;
  std::vector<Version> versions_;  // parsed endpoint versions, parallel to endpoints_
};

}  // namespace zrpc

#include "zrpc/internal/typed.h"  // IWYU pragma: export

namespace zrpc {

template <typename... E>
UnaryHandler ClientExceptions(UnaryHandler handler) {
  return [handler = std::move(handler)](CallContext& ctx,
                                        const Object& args) -> absl::StatusOr<Value> {
    try {
      return handler(ctx, args);
    } catch (const std::exception& e) {
      if (((typeid(e) == typeid(E)) || ...)) return MarkExpected(StatusFromException(e));
      throw;
    }
  };
}

template <typename F>
Endpoint& Endpoint::Method(std::string name, std::vector<std::string> arg_names, F f) & {
  std::string problem = internal::CheckTypedNames<F>(arg_names);
  if (!problem.empty() && error.empty()) error = "method \"" + name + "\": " + problem;
  MethodSignature signature = internal::MakeSignature<F>(arg_names);
  const std::string key = name;
  Method(std::move(name), internal::BindTyped(std::move(arg_names), std::move(f)));
  methods[key].signature = std::move(signature);
  return *this;
}

}  // namespace zrpc

#endif  // ZRPC_DISPATCHER_H_
