// Messages, replies and the envelope. Encoding writes JSON text directly (no intermediate Value);
// decoding parses into a Value and moves the fields out, so there is one validation path.
#include "zrpc/message.h"

#include <pthread.h>
#include <unistd.h>

#include <atomic>

#include <random>

#include "absl/strings/str_cat.h"
#include "json_internal.h"
#include "zrpc/errors.h"
#include "zrpc/version.h"

namespace zrpc {
namespace {

using internal::AppendQuoted;
using internal::AppendQuotedChecked;
using internal::ToAbsl;

absl::Status BadField(std::string_view field, std::string_view want, const Value& got) {
  return absl::InvalidArgumentError(absl::StrCat("message field \"", ToAbsl(field),
                                                 "\" must be ", ToAbsl(want), ", got ",
                                                 ToAbsl(TypeName(got.type()))));
}

// Moves an optional string field out of `dict` into `*out`; absent or null leaves it unchanged.
absl::Status TakeString(Object& dict, std::string_view field, std::string* out) {
  Value* v = dict.Find(field);
  if (v == nullptr || v->is_null()) return absl::OkStatus();
  if (!v->is_string()) return BadField(field, "a string", *v);
  *out = std::move(v->MutableString());
  return absl::OkStatus();
}

// Wraps the JSON text `inner` in the 2.0 envelope.
std::string Envelope(std::string_view inner) {
  std::string out;
  out.reserve(inner.size() + inner.size() / 8 + 48);
  out.append(R"({"oslo.version":"2.0","oslo.message":)");
  AppendQuoted(inner, &out);  // `inner` came from our writer: valid UTF-8
  out.push_back('}');
  return out;
}

// The inner JSON text of a message.
absl::StatusOr<std::string> MessageText(const Message& m) {
  std::string out;
  out.reserve(128 + m.args.size() * 24 + m.context.values().size() * 32);
  out.append(R"({"method":)");
  if (absl::Status s = AppendQuotedChecked(m.method, "method", &out); !s.ok()) return s;
  out.append(R"(,"args":)");
  // Object is not a Value; write it through a Value view without copying the entries.
  out.push_back('{');
  bool first = true;
  for (const auto& [key, value] : m.args) {
    if (!first) out.push_back(',');
    first = false;
    if (absl::Status s = AppendQuotedChecked(key, "argument name", &out); !s.ok()) return s;
    out.push_back(':');
    if (absl::Status s = AppendJson(value, &out); !s.ok()) return s;
  }
  out.push_back('}');
  if (!m.version.empty()) {
    out.append(R"(,"version":)");
    if (absl::Status s = AppendQuotedChecked(m.version, "version", &out); !s.ok()) return s;
  }
  if (m.ns) {
    out.append(R"(,"namespace":)");
    if (absl::Status s = AppendQuotedChecked(*m.ns, "namespace", &out); !s.ok()) return s;
  }
  if (!m.msg_id.empty()) {
    out.append(R"(,"_msg_id":)");
    if (absl::Status s = AppendQuotedChecked(m.msg_id, "_msg_id", &out); !s.ok()) return s;
  }
  if (!m.unique_id.empty()) {
    out.append(R"(,"_unique_id":)");
    if (absl::Status s = AppendQuotedChecked(m.unique_id, "_unique_id", &out); !s.ok()) return s;
  }
  if (m.timeout_ms) {
    out.append(R"(,"_timeout":)");
    internal::AppendInt(*m.timeout_ms, &out);
  }
  for (const auto& [key, value] : m.context.values()) {
    out.append(",\"_context_");
    // The prefix is ASCII, so checking the key alone suffices.
    std::string quoted;
    if (absl::Status s = AppendQuotedChecked(key, "context key", &quoted); !s.ok()) return s;
    out.append(quoted, 1, std::string::npos);  // drop the opening quote: it is already written
    out.push_back(':');
    if (absl::Status s = AppendJson(value, &out); !s.ok()) return s;
  }
  out.push_back('}');
  return out;
}

absl::StatusOr<std::string> ReplyText(const Reply& r) {
  std::string out;
  out.append(R"({"result":)");
  if (absl::Status s = AppendJson(r.result, &out); !s.ok()) return s;
  out.append(R"(,"failure":)");
  if (r.failure) {
    if (absl::Status s = AppendQuotedChecked(*r.failure, "failure", &out); !s.ok()) return s;
  } else {
    out.append("null");
  }
  out.append(r.ending ? R"(,"ending":true)" : R"(,"ending":false)");
  if (!r.msg_id.empty()) {
    out.append(R"(,"_msg_id":)");
    if (absl::Status s = AppendQuotedChecked(r.msg_id, "_msg_id", &out); !s.ok()) return s;
  }
  out.push_back('}');
  return out;
}

// Parses wire text and opens the envelope; the result must be an object.
absl::StatusOr<Object> OpenWire(std::string_view wire, const JsonLimits& limits,
                                std::string_view what) {
  absl::StatusOr<Value> outer = ParseJson(wire, limits);
  if (!outer.ok()) return outer.status();
  absl::StatusOr<Value> msg = DeserializeMsg(*std::move(outer), limits);
  if (!msg.ok()) return msg.status();
  if (!msg->is_object()) {
    return absl::InvalidArgumentError(absl::StrCat(ToAbsl(what), " must be a JSON object, got ",
                                                   ToAbsl(TypeName(msg->type()))));
  }
  return std::move(msg->MutableObject());
}

}  // namespace

absl::StatusOr<std::string> SerializeMsg(const Value& raw_msg) {
  absl::StatusOr<std::string> inner = ToJson(raw_msg);
  if (!inner.ok()) return inner.status();
  return Envelope(*inner);
}

absl::StatusOr<Value> DeserializeMsg(Value msg, const JsonLimits& limits) {
  if (!msg.is_object()) return msg;
  const Value* version = msg.Find(kEnvelopeVersionKey);
  const Value* inner = msg.Find(kEnvelopeMessageKey);
  if (version == nullptr || inner == nullptr) return msg;
  if (!version->is_string()) {
    absl::StatusOr<std::string> text = ToJson(*version);
    return UnsupportedRpcEnvelopeVersionError(text.ok() ? *text : "?");
  }
  absl::StatusOr<bool> compatible = VersionIsCompatible(kEnvelopeVersion, version->AsString());
  if (!compatible.ok() || !*compatible) {
    return UnsupportedRpcEnvelopeVersionError(version->AsString());
  }
  if (!inner->is_string()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "envelope field \"oslo.message\" must be a string of JSON text, got ",
        ToAbsl(TypeName(inner->type()))));
  }
  return ParseJson(inner->AsString(), limits);
}

absl::StatusOr<Value> PackMessage(const Message& message) {
  absl::StatusOr<std::string> text = MessageText(message);
  if (!text.ok()) return text.status();
  return ParseJson(*text, JsonLimits{.max_depth = 1 << 20});
}

absl::StatusOr<Value> PackReply(const Reply& reply) {
  absl::StatusOr<std::string> text = ReplyText(reply);
  if (!text.ok()) return text.status();
  return ParseJson(*text, JsonLimits{.max_depth = 1 << 20});
}

absl::StatusOr<Message> UnpackMessage(Value value) {
  if (!value.is_object()) {
    return absl::InvalidArgumentError(
        absl::StrCat("message must be a JSON object, got ", ToAbsl(TypeName(value.type()))));
  }
  Object& dict = value.MutableObject();
  Message m;
  Value* method = dict.Find("method");
  if (method == nullptr || method->is_null()) {
    return absl::InvalidArgumentError("message has no \"method\"");
  }
  if (!method->is_string()) return BadField("method", "a string", *method);
  if (method->AsString().empty()) return absl::InvalidArgumentError("message \"method\" is empty");
  m.method = std::move(method->MutableString());
  if (Value* args = dict.Find("args"); args != nullptr && !args->is_null()) {
    if (!args->is_object()) return BadField("args", "an object", *args);
    m.args = std::move(args->MutableObject());
  }
  if (absl::Status s = TakeString(dict, "version", &m.version); !s.ok()) return s;
  if (Value* ns = dict.Find("namespace"); ns != nullptr && !ns->is_null()) {
    if (!ns->is_string()) return BadField("namespace", "a string or null", *ns);
    m.ns = std::move(ns->MutableString());
  }
  if (absl::Status s = TakeString(dict, "_msg_id", &m.msg_id); !s.ok()) return s;
  if (absl::Status s = TakeString(dict, "_unique_id", &m.unique_id); !s.ok()) return s;
  if (Value* t = dict.Find("_timeout"); t != nullptr && !t->is_null()) {
    if (!t->is_int() || t->AsInt() < 0) {
      return absl::InvalidArgumentError(
          "message field \"_timeout\" must be a non-negative integer (milliseconds)");
    }
    m.timeout_ms = t->AsInt();
  }
  Object context;
  for (auto& [key, v] : dict) {
    if (key.size() > kContextPrefix.size() && key.compare(0, kContextPrefix.size(), kContextPrefix) == 0) {
      context.AppendUnchecked(key.substr(kContextPrefix.size()), std::move(v));
    }
  }
  m.context = Context(std::move(context));
  return m;
}

absl::StatusOr<Reply> UnpackReply(Value value) {
  if (!value.is_object()) {
    return absl::InvalidArgumentError(
        absl::StrCat("reply must be a JSON object, got ", ToAbsl(TypeName(value.type()))));
  }
  Object& dict = value.MutableObject();
  Reply r;
  if (Value* result = dict.Find("result")) r.result = std::move(*result);
  if (Value* failure = dict.Find("failure"); failure != nullptr && !failure->is_null()) {
    if (failure->is_string()) {
      r.failure = std::move(failure->MutableString());
    } else if (failure->is_object()) {  // tolerate peers that embed the object itself
      absl::StatusOr<std::string> text = ToJson(*failure);
      if (!text.ok()) return text.status();
      r.failure = *std::move(text);
    } else {
      return BadField("failure", "null or a string of JSON text", *failure);
    }
  }
  if (Value* ending = dict.Find("ending"); ending != nullptr && !ending->is_null()) {
    if (!ending->is_bool()) return BadField("ending", "a bool", *ending);
    r.ending = ending->AsBool();
  }
  if (absl::Status s = TakeString(dict, "_msg_id", &r.msg_id); !s.ok()) return s;
  return r;
}

absl::StatusOr<std::string> EncodeMessage(const Message& message) {
  absl::StatusOr<std::string> inner = MessageText(message);
  if (!inner.ok()) return inner.status();
  return Envelope(*inner);
}

absl::StatusOr<std::string> EncodeReply(const Reply& reply) {
  absl::StatusOr<std::string> inner = ReplyText(reply);
  if (!inner.ok()) return inner.status();
  return Envelope(*inner);
}

absl::StatusOr<Message> DecodeMessage(std::string_view wire, const JsonLimits& limits) {
  absl::StatusOr<Object> dict = OpenWire(wire, limits, "message");
  if (!dict.ok()) return dict.status();
  return UnpackMessage(Value(*std::move(dict)));
}

absl::StatusOr<Reply> DecodeReply(std::string_view wire, const JsonLimits& limits) {
  absl::StatusOr<Object> dict = OpenWire(wire, limits, "reply");
  if (!dict.ok()) return dict.status();
  return UnpackReply(Value(*std::move(dict)));
}

namespace {

// Bumped in every child after fork(), so that each thread's generator reseeds there and a child
// never repeats its parent's ids; costs no system call per id.
std::atomic<uint64_t> fork_generation{1};
[[maybe_unused]] const int fork_hook_installed =
    pthread_atfork(nullptr, nullptr, [] { fork_generation.fetch_add(1); });

}  // namespace

std::string NewUniqueId() {
  thread_local std::mt19937_64 rng;
  thread_local uint64_t seeded_generation = 0;
  if (const uint64_t g = fork_generation.load(std::memory_order_relaxed); g != seeded_generation) {
    std::random_device rd;
    rng.seed((static_cast<uint64_t>(rd()) << 32) ^ rd() ^ (static_cast<uint64_t>(getpid()) << 17));
    seeded_generation = g;
  }
  static constexpr char kHexDigits[] = "0123456789abcdef";
  std::string id(32, '0');
  for (int half = 0; half < 2; ++half) {
    uint64_t bits = rng();
    for (int i = 0; i < 16; ++i) {
      id[half * 16 + i] = kHexDigits[bits & 0xf];
      bits >>= 4;
    }
  }
  return id;
}

}  // namespace zrpc
