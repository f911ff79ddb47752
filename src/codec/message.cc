// SPDX-License-Identifier: Apache-2.0
// Messages, replies and the envelope. Encoding writes JSON text directly (no intermediate Value);
// decoding parses into a Value and moves the fields out, so there is one validation path.
#include "zrpc/message.h"

#include <algorithm>

#include <pthread.h>
#include <sys/random.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <optional>
#include <vector>

#include <random>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "codec/json_internal.h"
#include "zrpc/errors.h"
#include "zrpc/version.h"

namespace zrpc {
namespace {

using internal::ToAbsl;

absl::Status BadField(std::string_view field, std::string_view want, std::string_view got) {
  return absl::InvalidArgumentError(absl::StrCat("message field \"", ToAbsl(field),
                                                 "\" must be ", ToAbsl(want), ", got ",
                                                 ToAbsl(got)));
}

// The two sources a message is unpacked from, behind one interface: a parsed Value (whose parts
// are moved out) and a simdjson DOM element (converted straight from the parser).
class ValueField {
 public:
  explicit ValueField(Value& v) : v_(v) {}
  bool is_null() const { return v_.is_null(); }
  bool is_string() const { return v_.is_string(); }
  bool is_object() const { return v_.is_object(); }
  bool is_bool() const { return v_.is_bool(); }
  bool is_int() const { return v_.is_int(); }
  int64_t int_value() const { return v_.AsInt(); }
  bool bool_value() const { return v_.AsBool(); }
  std::string take_string() { return std::move(v_.MutableString()); }
  absl::Status take_object(Object* out) {
    *out = std::move(v_.MutableObject());
    return absl::OkStatus();
  }
  absl::Status take_value(Value* out) {
    *out = std::move(v_);
    return absl::OkStatus();
  }
  std::string_view type_name() const { return TypeName(v_.type()); }

 private:
  Value& v_;
};

class DomField {
 public:
  DomField(simdjson::dom::element e, const JsonLimits& limits, size_t* elements_left,
           bool* taken = nullptr)
      : e_(e), limits_(limits), elements_left_(elements_left), taken_(taken) {}
  bool is_null() const { return e_.is_null(); }
  bool is_string() const { return e_.is_string(); }
  bool is_object() const { return e_.is_object(); }
  bool is_bool() const { return e_.is_bool(); }
  bool is_int() const { return e_.type() == simdjson::dom::element_type::INT64; }
  int64_t int_value() const { return e_.get_int64().value_unsafe(); }
  bool bool_value() const { return e_.get_bool().value_unsafe(); }
  std::string take_string() {
    Taken();
    return std::string(e_.get_string().value_unsafe());
  }
  absl::Status take_object(Object* out) {
    Value v;
    Taken();
    if (absl::Status s = internal::FromDom(e_, 2, limits_, elements_left_, &v); !s.ok()) return s;
    *out = std::move(v.MutableObject());
    return absl::OkStatus();
  }
  absl::Status take_value(Value* out) {
    Taken();
    return internal::FromDom(e_, 2, limits_, elements_left_, out);
  }
  std::string_view type_name() const {
    using T = simdjson::dom::element_type;
    switch (e_.type()) {
      case T::NULL_VALUE: return "null";
      case T::BOOL: return "bool";
      case T::INT64:
      case T::UINT64: return "integer";
      case T::DOUBLE: return "double";
      case T::STRING: return "string";
      case T::ARRAY: return "array";
      case T::OBJECT: return "object";
    }
    return "unknown";
  }

 private:
  simdjson::dom::element e_;
  const JsonLimits& limits_;
  void Taken() {
    if (taken_ != nullptr) *taken_ = true;
  }
  size_t* elements_left_;  // of the whole document
  bool* taken_;            // set when the value was taken (and so checked)
};

bool IsContextKey(std::string_view key) {
  return key.size() > kContextPrefix.size() && key.substr(0, kContextPrefix.size()) == kContextPrefix;
}

// Takes one member of a message object into `m` (the context members into `context`).
template <typename Field>
absl::Status UnpackMessageField(std::string_view key, Field f, Message& m, Object& context) {
  auto optional_string = [&](std::string* out) -> absl::Status {
    if (f.is_null()) return absl::OkStatus();
    if (!f.is_string()) return BadField(key, "a string", f.type_name());
    *out = f.take_string();
    return absl::OkStatus();
  };
  if (key == "method") {
    if (f.is_null()) return absl::OkStatus();
    if (!f.is_string()) return BadField(key, "a string", f.type_name());
    m.method = f.take_string();
    if (m.method.empty()) return absl::InvalidArgumentError("message \"method\" is empty");
  } else if (key == "args") {
    if (f.is_null()) return absl::OkStatus();
    if (!f.is_object()) return BadField(key, "an object", f.type_name());
    return f.take_object(&m.args);
  } else if (key == "version") {
    return optional_string(&m.version);
  } else if (key == "namespace") {
    if (f.is_null()) return absl::OkStatus();
    if (!f.is_string()) return BadField(key, "a string or null", f.type_name());
    m.ns = f.take_string();
  } else if (key == "_msg_id") {
    return optional_string(&m.msg_id);
  } else if (key == "_unique_id") {
    return optional_string(&m.unique_id);
  } else if (key == "_reply_form") {
    // A name this service does not know asks for a form it cannot send: the envelope, then.
    if (f.is_null()) return absl::OkStatus();
    if (!f.is_string()) return BadField(key, "a string", f.type_name());
    m.bare_reply = f.take_string() == "message";
  } else if (key == "_timeout") {
    if (f.is_null()) return absl::OkStatus();
    if (!f.is_int() || f.int_value() < 0) {
      return absl::InvalidArgumentError(
          "message field \"_timeout\" must be a non-negative integer (milliseconds)");
    }
    m.timeout_ms = f.int_value();
  } else if (IsContextKey(key)) {
    Value v;
    if (absl::Status s = f.take_value(&v); !s.ok()) return s;
    context.AppendUnchecked(std::string(key.substr(kContextPrefix.size())), std::move(v));
  }
  return absl::OkStatus();
}

absl::Status FinishMessage(Message& m, Object context) {
  if (m.method.empty()) return absl::InvalidArgumentError("message has no \"method\"");
  m.context = Context(std::move(context));
  return absl::OkStatus();
}

template <typename Field>
absl::Status UnpackReplyField(std::string_view key, Field f, Reply& r) {
  if (key == "result") return f.take_value(&r.result);
  if (key == "failure") {
    if (f.is_null()) return absl::OkStatus();
    if (f.is_string()) {
      r.failure = f.take_string();
      return absl::OkStatus();
    }
    if (f.is_object()) {  // tolerate peers that embed the object itself
      Value v;
      if (absl::Status s = f.take_value(&v); !s.ok()) return s;
      absl::StatusOr<std::string> text = ToJson(v);
      if (!text.ok()) return text.status();
      r.failure = *std::move(text);
      return absl::OkStatus();
    }
    return BadField(key, "null or a string of JSON text", f.type_name());
  }
  if (key == "ending") {
    if (f.is_null()) return absl::OkStatus();
    if (!f.is_bool()) return BadField(key, "a bool", f.type_name());
    r.ending = f.bool_value();
    return absl::OkStatus();
  }
  if (key == "_msg_id") {
    if (f.is_null()) return absl::OkStatus();
    if (!f.is_string()) return BadField(key, "a string", f.type_name());
    r.msg_id = f.take_string();
  }
  return absl::OkStatus();
}

// Unpacks the members of a DOM object with `unpack(key, DomField)`, refusing duplicate keys.
// Members `unpack` leaves are still checked against the rules (depth, duplicates, limits).
template <typename F>
absl::Status ForEachDomMember(simdjson::dom::object object, const JsonLimits& limits,
                              size_t& elements_left, F unpack) {
  const size_t n = object.size();
  if (n > limits.max_object_members) return internal::TooManyMembers(n, limits);
  internal::KeySet seen(n);
  for (simdjson::dom::key_value_pair field : object) {
    if (!seen.Insert(field.key)) return internal::DuplicateKeyError(field.key);
    bool taken = false;
    if (absl::Status s = unpack(field.key, DomField(field.value, limits, &elements_left, &taken));
        !s.ok()) {
      return s;
    }
    if (!taken) {
      if (absl::Status s = internal::FromDom(field.value, 2, limits, &elements_left, nullptr);
          !s.ok()) {
        return s;
      }
    }
  }
  return absl::OkStatus();
}

// Parses wire text and finds the message object: inside a 2.0 envelope, or the text itself (1.0).
// The element lives in this thread's parser slot 1 (envelope) or 0 (bare).
absl::StatusOr<simdjson::dom::object> OpenWireDom(std::string_view wire, const JsonLimits& limits,
                                                  std::string_view what) {
  auto not_object = [&](std::string_view got) {
    return absl::InvalidArgumentError(
        absl::StrCat(ToAbsl(what), " must be a JSON object, got ", ToAbsl(got)));
  };
  absl::StatusOr<simdjson::dom::element> outer = internal::ParseDom(wire, limits, 0);
  if (!outer.ok()) return outer.status();
  if (!outer->is_object()) return not_object(DomField(*outer, limits, nullptr).type_name());
  simdjson::dom::object object = outer->get_object().value_unsafe();
  if (object.size() > limits.max_object_members) {
    return internal::TooManyMembers(object.size(), limits);
  }
  std::optional<simdjson::dom::element> version, inner;
  for (simdjson::dom::key_value_pair field : object) {
    if (field.key == kEnvelopeVersionKey || field.key == kEnvelopeMessageKey) {
      auto& slot = field.key == kEnvelopeVersionKey ? version : inner;
      if (slot) {
        return absl::InvalidArgumentError(
            absl::StrCat("invalid JSON: duplicate key \"", ToAbsl(field.key), "\""));
      }
      slot = field.value;
    }
  }
  if (!version || !inner) return object;  // a 1.0 message
  {
    // The envelope's other members are ignored, but the rules hold for the whole document.
    internal::KeySet seen(object.size());
    size_t elements_left = limits.max_elements;
    for (simdjson::dom::key_value_pair field : object) {
      if (!seen.Insert(field.key)) return internal::DuplicateKeyError(field.key);
      if (field.key == kEnvelopeVersionKey || field.key == kEnvelopeMessageKey) continue;
      if (absl::Status s = internal::FromDom(field.value, 2, limits, &elements_left, nullptr);
          !s.ok()) {
        return s;
      }
    }
  }
  if (!version->is_string()) {
    Value v;
    size_t elements_left = 64;  // only to name it in the error
    (void)internal::FromDom(*version, 2, limits, &elements_left, &v);
    return UnsupportedRpcEnvelopeVersionError(ToJson(v).value_or("?"));
  }
  const std::string_view v = version->get_string().value_unsafe();
  absl::StatusOr<bool> compatible = VersionIsCompatible(kEnvelopeVersion, v);
  if (!compatible.ok() || !*compatible) return UnsupportedRpcEnvelopeVersionError(v);
  if (!inner->is_string()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "envelope field \"oslo.message\" must be a string of JSON text, got ",
        ToAbsl(DomField(*inner, limits, nullptr).type_name())));
  }
  absl::StatusOr<simdjson::dom::element> message =
      internal::ParseDom(inner->get_string().value_unsafe(), limits, 1);
  if (!message.ok()) return message.status();
  if (!message->is_object()) return not_object(DomField(*message, limits, nullptr).type_name());
  return message->get_object().value_unsafe();
}

// Writes `message` (through `w`, which may be nested in the envelope).
absl::Status WriteMessage(const Message& m, internal::JsonSink& w) {
  w.Raw('{');
  w.Key("method");
  if (absl::Status s = w.String(m.method, "method"); !s.ok()) return s;
  w.Raw(',');
  w.Key("args");
  w.Raw('{');
  bool first = true;
  for (const auto& [key, value] : m.args) {
    if (!first) w.Raw(',');
    first = false;
    if (absl::Status s = w.String(key, "argument name"); !s.ok()) return s;
    w.Raw(':');
    if (absl::Status s = w.Value(value); !s.ok()) return s;
  }
  w.Raw('}');
  auto optional_string = [&](std::string_view key, const std::string& v) -> absl::Status {
    if (v.empty()) return absl::OkStatus();
    w.Raw(',');
    w.Key(key);
    return w.String(v, key);
  };
  if (absl::Status s = optional_string("version", m.version); !s.ok()) return s;
  if (m.ns) {
    w.Raw(',');
    w.Key("namespace");
    if (absl::Status s = w.String(*m.ns, "namespace"); !s.ok()) return s;
  }
  if (absl::Status s = optional_string("_msg_id", m.msg_id); !s.ok()) return s;
  if (absl::Status s = optional_string("_unique_id", m.unique_id); !s.ok()) return s;
  if (m.timeout_ms) {
    w.Raw(',');
    w.Key("_timeout");
    w.Int(*m.timeout_ms);
  }
  if (m.bare_reply) {
    w.Raw(',');
    w.Key("_reply_form");
    w.Quote();
    w.Raw("message");
    w.Quote();
  }
  for (const auto& [key, value] : m.context.values()) {
    w.Raw(',');
    if (absl::Status s = w.String(kContextPrefix, key, "context key"); !s.ok()) return s;
    w.Raw(':');
    if (absl::Status s = w.Value(value); !s.ok()) return s;
  }
  w.Raw('}');
  return absl::OkStatus();
}

absl::Status WriteReply(const Reply& r, internal::JsonSink& w) {
  w.Raw('{');
  w.Key("result");
  if (absl::Status s = w.Value(r.result); !s.ok()) return s;
  w.Raw(',');
  w.Key("failure");
  if (r.failure) {
    if (absl::Status s = w.String(*r.failure, "failure"); !s.ok()) return s;
  } else {
    w.Raw("null");
  }
  w.Raw(',');
  w.Key("ending");
  w.Raw(r.ending ? "true" : "false");
  if (!r.msg_id.empty()) {
    w.Raw(',');
    w.Key("_msg_id");
    if (absl::Status s = w.String(r.msg_id, "_msg_id"); !s.ok()) return s;
  }
  w.Raw('}');
  return absl::OkStatus();
}

// About how many bytes `v` takes as JSON, looking one level deep only (cheap): enough to reserve
// the output once for typical messages instead of growing it two or three times.
size_t SizeHint(const Value& v) {
  if (v.is_string()) return v.AsString().size() + 2;
  size_t size = 16;
  if (v.is_object()) {
    for (const auto& [key, member] : v.AsObject()) {
      size += key.size() + 4 + (member.is_string() ? member.AsString().size() + 2 : 24);
    }
  } else if (v.is_array()) {
    for (const Value& element : v.AsArray()) {
      size += element.is_string() ? element.AsString().size() + 3 : 24;
    }
  }
  return size;
}

size_t MessageSizeHint(const Message& message) {
  // The fixed members with two 32-digit ids, a timeout and a reply form take about 200 bytes.
  size_t hint = 224 + message.method.size() + message.context.values().size() * 32;
  for (const auto& [key, value] : message.args) hint += key.size() + 4 + SizeHint(value);
  return hint;
}

size_t ReplySizeHint(const Reply& reply) {
  return 96 + SizeHint(reply.result) + (reply.failure ? reply.failure->size() : 0);
}

// What the 2.0 envelope puts around the escaped text of the message.
constexpr std::string_view kEnvelopeOpen = R"({"oslo.version":"2.0","oslo.message":")";
constexpr std::string_view kEnvelopeClose = "\"}";

// The 2.0 envelope around what `write` writes, in one pass: the message is written already
// escaped as the body of "oslo.message".
template <typename F>
absl::StatusOr<std::string> InEnvelope(size_t size_hint, F write) {
  std::string out;
  out.reserve(size_hint + size_hint / 4 + 48);
  out.append(kEnvelopeOpen);
  internal::JsonSink w(&out, /*nested=*/true);
  if (absl::Status s = write(w); !s.ok()) return s;
  out.append(kEnvelopeClose);
  return out;
}

// Plain JSON text of what `write` writes (the bare form).
template <typename F>
absl::StatusOr<std::string> Plain(size_t size_hint, F write) {
  std::string out;
  out.reserve(size_hint);
  internal::JsonSink w(&out, /*nested=*/false);
  if (absl::Status s = write(w); !s.ok()) return s;
  return out;
}

}  // namespace

absl::StatusOr<std::string> SerializeMsg(const Value& raw_msg) {
  return InEnvelope(256, [&](internal::JsonSink& w) { return w.Value(raw_msg); });
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

// For text this process wrote itself.
constexpr JsonLimits kUnlimited{.max_depth = 1 << 20,
                                .max_object_members = SIZE_MAX,
                                .max_elements = SIZE_MAX};

absl::StatusOr<Value> PackMessage(const Message& message) {
  absl::StatusOr<std::string> text = internal::EncodeBareMessage(message);
  if (!text.ok()) return text.status();
  return ParseJson(*text, kUnlimited);
}

absl::StatusOr<Value> PackReply(const Reply& reply) {
  absl::StatusOr<std::string> text = internal::EncodeBareReply(reply);
  if (!text.ok()) return text.status();
  return ParseJson(*text, kUnlimited);
}

absl::StatusOr<Message> UnpackMessage(Value value) {
  if (!value.is_object()) {
    return absl::InvalidArgumentError(
        absl::StrCat("message must be a JSON object, got ", ToAbsl(TypeName(value.type()))));
  }
  Message m;
  Object context;
  for (auto& [key, v] : value.MutableObject()) {
    if (absl::Status s = UnpackMessageField(key, ValueField(v), m, context); !s.ok()) return s;
  }
  if (absl::Status s = FinishMessage(m, std::move(context)); !s.ok()) return s;
  return m;
}

absl::StatusOr<Reply> UnpackReply(Value value) {
  if (!value.is_object()) {
    return absl::InvalidArgumentError(
        absl::StrCat("reply must be a JSON object, got ", ToAbsl(TypeName(value.type()))));
  }
  Reply r;
  for (auto& [key, v] : value.MutableObject()) {
    if (absl::Status s = UnpackReplyField(key, ValueField(v), r); !s.ok()) return s;
  }
  return r;
}



absl::StatusOr<std::string> EncodeMessage(const Message& message) {
  return InEnvelope(MessageSizeHint(message),
                    [&](internal::JsonSink& w) { return WriteMessage(message, w); });
}

namespace internal {

absl::StatusOr<std::string> EncodeBareMessage(const Message& message) {
  return Plain(MessageSizeHint(message),
               [&](internal::JsonSink& w) { return WriteMessage(message, w); });
}

absl::StatusOr<std::string> EncodeBareReply(const Reply& reply) {
  return Plain(ReplySizeHint(reply), [&](internal::JsonSink& w) { return WriteReply(reply, w); });
}

void AppendEnvelope(std::string_view bare, std::string* out) {
  out->reserve(out->size() + bare.size() + bare.size() / 4 + 48);
  out->append(kEnvelopeOpen);
  AppendEscaped(bare, /*nested=*/false, out);
  out->append(kEnvelopeClose);
}

}  // namespace internal

absl::StatusOr<std::string> EncodeReply(const Reply& reply) {
  return InEnvelope(ReplySizeHint(reply),
                    [&](internal::JsonSink& w) { return WriteReply(reply, w); });
}

absl::StatusOr<Message> DecodeMessage(std::string_view wire, const JsonLimits& limits) {
  size_t values = 0;
  return internal::DecodeMessageCounting(wire, limits, &values);
}

namespace internal {

absl::StatusOr<Message> DecodeMessageCounting(std::string_view wire, const JsonLimits& limits,
                                              size_t* values) {
  absl::StatusOr<simdjson::dom::object> object = OpenWireDom(wire, limits, "message");
  if (!object.ok()) return object.status();
  Message m;
  Object context;
  size_t elements_left = limits.max_elements;
  absl::Status s =
      ForEachDomMember(*object, limits, elements_left, [&](std::string_view key, DomField f) {
        return UnpackMessageField(key, f, m, context);
      });
  *values = limits.max_elements - elements_left;
  if (!s.ok()) return s;
  if (s = FinishMessage(m, std::move(context)); !s.ok()) return s;
  return m;
}

}  // namespace internal

absl::StatusOr<Reply> DecodeReply(std::string_view wire, const JsonLimits& limits) {
  absl::StatusOr<simdjson::dom::object> object = OpenWireDom(wire, limits, "reply");
  if (!object.ok()) return object.status();
  Reply r;
  size_t elements_left = limits.max_elements;
  absl::Status s =
      ForEachDomMember(*object, limits, elements_left, [&](std::string_view key, DomField f) {
        return UnpackReplyField(key, f, r);
      });
  if (!s.ok()) return s;
  return r;
}

namespace {

// Bumped in every child after fork(), so that each thread's generator reseeds there and a child
// never repeats its parent's ids; costs no system call per id.
std::atomic<uint64_t> fork_generation{1};
[[maybe_unused]] const int fork_hook_installed =
    pthread_atfork(nullptr, nullptr, [] { fork_generation.fetch_add(1); });

}  // namespace

std::string NewUniqueId() {
  // Ids come from the kernel's CSPRNG (getrandom), 512 bytes at a time per thread, so that no
  // peer can predict the next id from the ones it saw (a predicted id could be sent first and
  // have the real message dropped as a duplicate). A fork refills the buffer, so parent and child
  // never share ids.
  thread_local unsigned char pool[512];
  thread_local size_t used = sizeof(pool);
  thread_local uint64_t filled_generation = 0;
  const uint64_t g = fork_generation.load(std::memory_order_relaxed);
  if (used + 16 > sizeof(pool) || g != filled_generation) {
    size_t got = 0;
    while (got < sizeof(pool)) {
      const ssize_t n = getrandom(pool + got, sizeof(pool) - got, 0);
      if (n > 0) {
        got += static_cast<size_t>(n);
      } else if (errno != EINTR) {
        // No getrandom (very old kernels): fall back to the C++ library's random device.
        std::random_device rd;
        for (; got < sizeof(pool); ++got) pool[got] = static_cast<unsigned char>(rd());
      }
    }
    used = 0;
    filled_generation = g;
  }
  static constexpr char kHexDigits[] = "0123456789abcdef";
  std::string id(32, '0');
  for (int i = 0; i < 16; ++i) {
    const unsigned char byte = pool[used + i];
    id[2 * i] = kHexDigits[byte >> 4];
    id[2 * i + 1] = kHexDigits[byte & 0xf];
  }
  used += 16;
  return id;
}

}  // namespace zrpc
