// SPDX-License-Identifier: Apache-2.0
// zrpc/context.h — the request context that travels with every message (the seed's
// CommonRpcContext).
//
// A context is a JSON object of caller facts (user, project, roles, request id, ...). It travels
// flattened into the message as "_context_<key>" fields and is rebuilt on the server:
//
//   zrpc::Context ctx = zrpc::Context::FromDict({{"user", "alice"}, {"roles", zrpc::Array{"member"}}});
//   zrpc::Context admin = ctx.Elevated();           // is_admin true, "admin" in roles
//   absl::StatusOr<zrpc::Value> user = ctx.Get("user");
//   ctx.UpdateStore();                                // this thread's current context
//
// Thread-compatible; Current()/UpdateStore() are per thread.
#ifndef ZRPC_CONTEXT_H_
#define ZRPC_CONTEXT_H_

#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "zrpc/value.h"

namespace zrpc {

class Context {
 public:
  Context() = default;
  explicit Context(Object values) : values_(std::move(values)) {}

  // The seed's from_dict: a context holding `values`.
  static Context FromDict(Object values) { return Context(std::move(values)); }
  // The seed's to_dict: a (deep) copy of the values.
  Object ToDict() const { return values_; }
  // Moves the values out, leaving this context empty.
  Object TakeDict() { return std::move(values_); }
  // The seed's deepcopy.
  Context DeepCopy() const { return *this; }
  // A copy with "is_admin" true and "admin" in "roles" (added once; "roles" is created when
  // missing or not an array), and "read_deleted" set when given.
  Context Elevated(std::optional<std::string> read_deleted = std::nullopt) const;

  // The value at `key`; NOT_FOUND naming the key when absent (the seed's AttributeError).
  absl::StatusOr<Value> Get(std::string_view key) const;
  // The value at `key`, or nullptr.
  const Value* Find(std::string_view key) const { return values_.Find(key); }
  void Set(std::string key, Value value) { values_.Set(std::move(key), std::move(value)); }
  const Object& values() const { return values_; }
  bool empty() const { return values_.empty(); }

  // Stores a copy of this context as the calling thread's current context (the seed's
  // update_store).
  void UpdateStore() const;
  // The calling thread's current context, or nullptr.
  static std::shared_ptr<const Context> Current();
  // Forgets the calling thread's current context.
  static void ClearStore();

  friend bool operator==(const Context& a, const Context& b) { return a.values_ == b.values_; }

 private:
  Object values_;
};

}  // namespace zrpc

#endif  // ZRPC_CONTEXT_H_
