// SPDX-License-Identifier: Apache-2.0
// How `zrpc describe` prints a service's `_zrpc.describe` answer: its topics, and per endpoint
// one line per method with its signature when the service announces it:
//
//   add(a: integer, b: integer) -> integer
//   count(n: integer) -> stream of integer
//   echo(...)
//
// Pure functions of the answer (a Value a peer sent: any shape, never trusted, every text
// escaped for the terminal), so tests feed them JSON. Older services send only a "methods" list
// of names; those are printed as before.
#ifndef ZRPC_TOOLS_DESCRIBE_FORMAT_H_
#define ZRPC_TOOLS_DESCRIBE_FORMAT_H_

#include <optional>
#include <string>

#include "absl/strings/str_cat.h"
#include "src/base/escape.h"
#include "zrpc/value.h"

namespace zrpc::tools {

namespace describe_internal {

inline std::string Text(const Value* v, std::string_view fallback = "?") {
  return v != nullptr && v->is_string() ? internal::EscapeForTerminal(v->AsString())
                                        : std::string(fallback);
}

inline const Array& List(const Value* v) {
  static const Array kEmpty;
  return v != nullptr && v->is_array() ? v->AsArray() : kEmpty;
}

inline bool True(const Value* v) { return v != nullptr && v->is_bool() && v->AsBool(); }

}  // namespace describe_internal

// One method's signature: `{"name":"add","args":[{"name":"a","type":"integer"},...],
// "returns":"integer","stream":false}` → "add(a: integer, b: integer) -> integer". Without
// "args" the method is untyped: "echo(...)". A stream returns "-> stream of T" ("-> stream"
// when untyped); a method returning "null" (nothing) has no arrow. An argument with
// "optional": true is shown as "name?: type".
inline std::string FormatSignature(const Value& sig) {
  using namespace describe_internal;
  std::string out = Text(sig.is_object() ? sig.Find("name") : nullptr);
  const Value* args = sig.is_object() ? sig.Find("args") : nullptr;
  if (args == nullptr || !args->is_array()) {
    out += "(...)";
  } else {
    out += "(";
    bool first = true;
    for (const Value& a : args->AsArray()) {
      if (!first) out += ", ";
      first = false;
      const Value* name = a.is_object() ? a.Find("name") : nullptr;
      const Value* type = a.is_object() ? a.Find("type") : nullptr;
      out += Text(name);
      if (True(a.is_object() ? a.Find("optional") : nullptr)) out += "?";
      if (type != nullptr) out += ": " + Text(type);
    }
    out += ")";
  }
  const Value* returns = sig.is_object() ? sig.Find("returns") : nullptr;
  // "null" is what a method returning nothing (absl::Status, void) announces: no arrow.
  const bool has_returns = returns != nullptr && returns->is_string() &&
                           !returns->AsString().empty() && returns->AsString() != "null";
  if (True(sig.is_object() ? sig.Find("stream") : nullptr)) {
    out += has_returns ? " -> stream of " + Text(returns) : " -> stream";
  } else if (has_returns) {
    out += " -> " + Text(returns);
  }
  return out;
}

// The whole text of `zrpc describe` for a `_zrpc.describe` answer (lines ending in '\n'), or
// nullopt when the answer lacks "topics" and "endpoints" (not a describe answer).
inline std::optional<std::string> FormatDescribe(const Value& answer) {
  using namespace describe_internal;
  if (!answer.is_object() || answer.Find("topics") == nullptr ||
      answer.Find("endpoints") == nullptr) {
    return std::nullopt;
  }
  std::string out =
      absl::StrCat("host ", Text(answer.Find("host")), " at ", Text(answer.Find("endpoint")), "\n");
  for (const Value& t : List(answer.Find("topics"))) {
    const Value* pool = t.is_object() ? t.Find("pool") : nullptr;
    absl::StrAppend(&out, "  consumes ", Text(t.is_object() ? t.Find("exchange") : nullptr), " ",
                    Text(t.is_object() ? t.Find("topic") : nullptr),
                    True(t.is_object() ? t.Find("fanout") : nullptr) ? " (fanout)" : "",
                    pool != nullptr ? " (pool " + Text(pool) + ")" : "", "\n");
  }
  for (const Value& e : List(answer.Find("endpoints"))) {
    const Value* ns = e.is_object() ? e.Find("namespace") : nullptr;
    absl::StrAppend(&out, "  namespace \"", Text(ns, ""), "\" version ",
                    Text(e.is_object() ? e.Find("version") : nullptr), ":");
    const Value* signatures = e.is_object() ? e.Find("signatures") : nullptr;
    if (signatures != nullptr && signatures->is_array()) {
      out += "\n";
      for (const Value& sig : signatures->AsArray()) {
        absl::StrAppend(&out, "    ", FormatSignature(sig), "\n");
      }
      continue;
    }
    // An older service: method names only ("count (stream)").
    for (const Value& name : List(e.is_object() ? e.Find("methods") : nullptr)) {
      absl::StrAppend(&out, " ", Text(&name));
    }
    out += "\n";
  }
  return out;
}

}  // namespace zrpc::tools

#endif  // ZRPC_TOOLS_DESCRIBE_FORMAT_H_
