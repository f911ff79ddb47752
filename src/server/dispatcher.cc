// SPDX-License-Identifier: Apache-2.0
#include "zrpc/dispatcher.h"

#include <cxxabi.h>

#include <algorithm>
#include <cstdlib>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "base/escape.h"
#include "codec/json_internal.h"
#include "zrpc/matchmaker.h"
#include "zrpc/version.h"

namespace zrpc {
namespace {

using internal::ToAbsl;

thread_local const CallContext* current_call = nullptr;

// Sets the thread's current CallContext for the scope.
class CurrentCallScope {
 public:
  explicit CurrentCallScope(const CallContext* ctx) : saved_(current_call) { current_call = ctx; }
  ~CurrentCallScope() { current_call = saved_; }

 private:
  const CallContext* saved_;
};

// Serializes each written value, then hands it on; stops once the caller has gone.
class SerializingWriter : public StreamWriter {
 public:
  SerializingWriter(const CallContext& ctx, Serializer& serializer,
                    const std::function<bool(Value)>& emit)
      : ctx_(ctx), serializer_(serializer), emit_(emit) {}

  bool Write(Value value) override {
    if (!status_.ok() || ctx_.cancelled()) return false;
    absl::StatusOr<Value> out = serializer_.SerializeEntity(ctx_.context(), std::move(value));
    if (!out.ok()) {
      status_ = out.status();
      return false;
    }
    return emit_(*std::move(out));
  }
  const absl::Status& status() const { return status_; }

 private:
  const CallContext& ctx_;
  Serializer& serializer_;
  const std::function<bool(Value)>& emit_;
  absl::Status status_;
};

std::string Demangle(const char* mangled) {
  int rc = 0;
  char* name = abi::__cxa_demangle(mangled, nullptr, nullptr, &rc);
  std::string out = rc == 0 && name ? name : mangled;
  std::free(name);
  return out;
}

}  // namespace

const CallContext* CallContext::Current() { return current_call; }

absl::Status StatusFromException(const std::exception& e) {
  // "std::runtime_error" → module "std", class "runtime_error" (a nested type keeps its
  // enclosing scopes in the module: "a::b::C" → "a::b", "C").
  std::string full = Demangle(typeid(e).name());
  std::string module, class_name = full;
  if (size_t pos = full.rfind("::"); pos != std::string::npos) {
    module = full.substr(0, pos);
    class_name = full.substr(pos + 2);
  }
  return ExceptionError(module, class_name, e.what());
}

Endpoint& Endpoint::Method(std::string name, UnaryHandler handler) & {
  if (!handler && error.empty()) error = "method \"" + name + "\" has no handler";
  methods[std::move(name)] = MethodEntry{std::move(handler), nullptr};
  return *this;
}

Endpoint& Endpoint::Stream(std::string name, StreamHandler handler) & {
  if (!handler && error.empty()) error = "stream \"" + name + "\" has no handler";
  methods[std::move(name)] = MethodEntry{nullptr, std::move(handler)};
  return *this;
}

Endpoint& Endpoint::Allow(const std::string& name, std::vector<std::string> who) & {
  auto it = methods.find(name);
  if (it == methods.end()) {
    if (error.empty()) error = "Allow(\"" + name + "\"): no such method (add it first)";
    return *this;
  }
  // An empty list would leave the method open to everyone who may connect: never what a
  // restriction means (typically a configuration that lost its names).
  if (who.empty()) {
    if (error.empty()) {
      error = "Allow(\"" + name +
              "\"): an empty list of identities and groups; name at least one (to leave the "
              "method open to every caller, do not call Allow)";
    }
    return *this;
  }
  for (const std::string& w : who) {
    if (absl::Status s = ValidateName("allowed identity or group", w); !s.ok() && error.empty()) {
      error = std::string(s.message());
    }
  }
  it->second.allowed = std::move(who);
  return *this;
}

Array Endpoint::Signatures() const {
  std::vector<const std::pair<const std::string, MethodEntry>*> sorted;
  for (const auto& entry : methods) sorted.push_back(&entry);
  std::sort(sorted.begin(), sorted.end(), [](auto* a, auto* b) { return a->first < b->first; });
  Array out;
  out.reserve(sorted.size());
  for (const auto* entry : sorted) {
    const MethodSignature& sig = entry->second.signature;
    Object o{{"name", entry->first}};
    if (sig.typed) {
      Array args;
      for (const ArgSignature& a : sig.args) {
        Object arg{{"name", a.name}, {"type", a.type}};
        if (a.optional) arg.Set("optional", true);
        args.push_back(Value(std::move(arg)));
      }
      o.Set("args", std::move(args));
      o.Set("returns", sig.returns);
    }
    o.Set("stream", static_cast<bool>(entry->second.stream));
    out.push_back(Value(std::move(o)));
  }
  return out;
}

Dispatcher::Dispatcher(std::shared_ptr<Serializer> serializer)
    : serializer_(serializer ? std::move(serializer) : std::make_shared<Serializer>()) {
  const Serializer& s = *serializer_;
  serializer_is_noop_ = typeid(s) == typeid(Serializer);
}

absl::Status Dispatcher::Add(Endpoint endpoint) {
  if (endpoint.ns.compare(0, kReservedNamespace.size(), kReservedNamespace) == 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "namespace \"", endpoint.ns, "\" is reserved for zrpc (names starting with \"",
        ToAbsl(kReservedNamespace), "\")"));
  }
  absl::StatusOr<Version> version = ParseVersion(endpoint.version);
  if (!version.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("endpoint of namespace \"", endpoint.ns, "\": ", version.status().message()));
  }
  if (!endpoint.error.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("endpoint of namespace \"", endpoint.ns, "\": ", endpoint.error));
  }
  if (endpoint.methods.contains(absl::string_view())) {
    return absl::InvalidArgumentError("method names must not be empty");
  }
  for (const std::string& w : endpoint.allowed) {
    if (absl::Status s = ValidateName("allowed identity or group", w); !s.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("endpoint of namespace \"", endpoint.ns, "\": ", s.message()));
    }
  }
  endpoints_.push_back(std::make_unique<Endpoint>(std::move(endpoint)));
  versions_.push_back(*version);
  return absl::OkStatus();
}

absl::StatusOr<Dispatcher::Target> Dispatcher::Resolve(std::string_view ns,
                                                       std::string_view version,
                                                       std::string_view method) const {
  if (version.empty()) version = "1.0";
  absl::StatusOr<Version> requested = ParseVersion(version);
  if (!requested.ok()) return requested.status();
  bool had_compatible = false;
  bool ns_served = false;
  for (size_t i = 0; i < endpoints_.size(); ++i) {
    const Endpoint& ep = *endpoints_[i];
    if (ep.ns != ns) continue;
    ns_served = true;
    // The seed's version_is_compatible, on parsed versions.
    const Version& imp = versions_[i];
    const bool compatible =
        imp.major == requested->major &&
        (requested->minor < imp.minor ||
         (requested->minor == imp.minor && requested->revision <= imp.revision));
    had_compatible |= compatible;
    if (!compatible) continue;
    auto it = ep.methods.find(ToAbsl(method));
    if (it == ep.methods.end()) continue;
    return Target{&ep, &it->second};
  }
  if (had_compatible) return NoSuchMethodError(method);
  // Say what is served, so the caller can fix the request.
  // The versions served for the namespace, or else the namespaces served.
  std::vector<std::string> served;
  for (const auto& ep : endpoints_) {
    if (ns_served && ep->ns != ns) continue;
    std::string item = ns_served ? ep->version : absl::StrCat("\"", ep->ns, "\"");
    if (std::find(served.begin(), served.end(), item) == served.end()) served.push_back(item);
  }
  if (!ns_served) return NamespaceNotServedError(ns, method, absl::StrJoin(served, ", "));
  return UnsupportedRpcVersionError(version, ns, absl::StrJoin(served, ", "));
}

absl::Status Dispatcher::Dispatch(CallContext& ctx, Message& message,
                                  const std::function<bool(Value)>& emit) const {
  ctx.method_ = message.method;
  absl::StatusOr<Target> target =
      Resolve(message.ns ? std::string_view(*message.ns) : std::string_view(), message.version,
              message.method);
  if (!target.ok()) return target.status();
  return Run(*target, ctx, message, emit);
}

absl::Status Dispatcher::Run(const Target& target, CallContext& ctx, Message& message,
                             const std::function<bool(Value)>& emit) const {
  if (ctx.method_.empty()) ctx.method_ = message.method;
  ctx.context_ = serializer_->DeserializeContext(message.context.TakeDict());
  // Deserialize each argument (nothing to do for the no-op serializer).
  Object deserialized;
  if (!serializer_is_noop_) {
    deserialized.reserve(message.args.size());
    for (auto& [key, value] : message.args) {
      absl::StatusOr<Value> v = serializer_->DeserializeEntity(ctx.context_, std::move(value));
      if (!v.ok()) {
        return absl::InvalidArgumentError(
            absl::StrCat("argument \"", key, "\": ", v.status().message()));
      }
      deserialized.AppendUnchecked(key, *std::move(v));
    }
  }
  const Object& args = serializer_is_noop_ ? message.args : deserialized;
  CurrentCallScope scope(&ctx);
  try {
    if (const UnaryHandler& unary = target.method->unary) {
      absl::StatusOr<Value> result = unary(ctx, args);
      if (!result.ok()) return result.status();
      if (serializer_is_noop_) {
        emit(*std::move(result));
        return absl::OkStatus();
      }
      absl::StatusOr<Value> out = serializer_->SerializeEntity(ctx.context_, *std::move(result));
      if (!out.ok()) return out.status();
      emit(*std::move(out));
      return absl::OkStatus();
    }
    SerializingWriter writer(ctx, *serializer_, emit);
    absl::Status status = target.method->stream(ctx, args, writer);
    if (!writer.status().ok()) return writer.status();
    return status;
  } catch (const std::exception& e) {
    return StatusFromException(e);
  } catch (...) {
    return ExceptionError("", "unknown", "a handler threw a non-standard exception");
  }
}

namespace internal {

namespace {
std::string OfMethod(const CallContext& ctx) {
  return ctx.method().empty() ? ""
                              : absl::StrCat(" of method \"", BoundedEcho(ctx.method()), "\"");
}
}  // namespace

absl::Status TypedArgError(const CallContext& ctx, std::string_view name,
                           const ConversionError& error) {
  // 'argument "xs"[1] of method "sum": expected integer, got string'
  return absl::InvalidArgumentError(absl::StrCat("argument \"", ToAbsl(name), "\"", error.path,
                                                 OfMethod(ctx), ": ", error.Problem()));
}

absl::Status TypedMissingArg(const CallContext& ctx, std::string_view name,
                             const std::string& expected) {
  return absl::InvalidArgumentError(absl::StrCat("missing argument \"", ToAbsl(name), "\"",
                                                 OfMethod(ctx), " (expected ", expected, ")"));
}

absl::Status TypedExtraArg(const CallContext& ctx, std::string_view name) {
  return absl::InvalidArgumentError(
      absl::StrCat("unexpected argument \"", BoundedEcho(name), "\"", OfMethod(ctx)));
}

}  // namespace internal
}  // namespace zrpc
