// SPDX-License-Identifier: Apache-2.0
// zrpc/serializer.h — hooks that turn application entities into JSON values and back.
//
// The seed's Serializer: the dispatcher deserializes each argument and serializes each result;
// RpcProxy serializes arguments and deserializes results. The base class does nothing (the
// seed's NoOpSerializer). Override what you need:
//
//   class DateSerializer : public zrpc::Serializer {
//     absl::StatusOr<zrpc::Value> SerializeEntity(const zrpc::Context&, zrpc::Value v) override;
//   };
//
// Implementations must be thread-safe: one serializer serves every thread.
#ifndef ZRPC_SERIALIZER_H_
#define ZRPC_SERIALIZER_H_

#include "absl/status/statusor.h"
#include "zrpc/context.h"
#include "zrpc/value.h"

namespace zrpc {

class Serializer {
 public:
  virtual ~Serializer() = default;
  // Application entity → primitive JSON value. An error fails the call or send.
  virtual absl::StatusOr<Value> SerializeEntity(const Context& context, Value entity) {
    return entity;
  }
  // Primitive JSON value → application entity. An error fails the call (INVALID_ARGUMENT).
  virtual absl::StatusOr<Value> DeserializeEntity(const Context& context, Value entity) {
    return entity;
  }
  // Context → the values sent as "_context_<key>".
  virtual Object SerializeContext(const Context& context) { return context.ToDict(); }
  // Received "_context_<key>" values → the context handlers see.
  virtual Context DeserializeContext(Object values) { return Context(std::move(values)); }
};

// The seed's NoOpSerializer: passes everything through.
using NoOpSerializer = Serializer;

}  // namespace zrpc

#endif  // ZRPC_SERIALIZER_H_
