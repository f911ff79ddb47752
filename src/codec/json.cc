// SPDX-License-Identifier: Apache-2.0
// JSON for zrpc::Value: simdjson's DOM parser for reading (it rejects trailing content and bad
// UTF-8 itself; we add the depth limit and duplicate-key checks) and our own writer.
#include <array>
#include <charconv>
#include <cmath>
#include <cstring>
#include <string>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "base/escape.h"
#include "codec/json_internal.h"
#include "zrpc/value.h"

namespace zrpc {
namespace internal {

namespace {

constexpr char kHex[] = "0123456789abcdef";


}  // namespace

// True for the bytes JSON strings must escape: control characters, '"' and '\\'.
constexpr std::array<bool, 256> kNeedsEscape = [] {
  std::array<bool, 256> t{};
  for (int c = 0; c < 0x20; ++c) t[c] = true;
  t['"'] = true;
  t['\\'] = true;
  return t;
}();

// For the 8 bytes at `p`: a mask whose lowest set bit lies in the first byte that needs
// escaping (control characters, '"', '\\'), or 0. The "has byte" tests can also flag bytes
// after the first true one (borrows), but never one before it, so the lowest flag is exact.
inline uint64_t EscapeMask(const unsigned char* p) {
  uint64_t w;
  std::memcpy(&w, p, 8);
  constexpr uint64_t kOnes = 0x0101010101010101ULL, kHigh = 0x8080808080808080ULL;
  const uint64_t below_space = (w - kOnes * 0x20) & ~w & kHigh;
  const uint64_t q = w ^ (kOnes * '"');
  const uint64_t b = w ^ (kOnes * '\\');
  return below_space | ((q - kOnes) & ~q & kHigh) | ((b - kOnes) & ~b & kHigh);
}

void AppendEscaped(std::string_view s, bool nested, std::string* out) {
  const unsigned char* p = reinterpret_cast<const unsigned char*>(s.data());
  const size_t n = s.size();
  // In nested text each escape's backslash is itself escaped: \" becomes \\\", \n becomes \\n.
  const std::string_view bs = nested ? "\\\\" : "\\";
  size_t run = 0;  // start of the pending run of bytes that need no escaping
  size_t i = 0;
  while (true) {
    // Find the next byte to escape: 8 bytes at a time, then the tail one by one.
    bool found = false;
    while (i + 8 <= n) {
      if (const uint64_t m = EscapeMask(p + i); m != 0) {
        i += static_cast<size_t>(__builtin_ctzll(m)) >> 3;
        found = true;
        break;
      }
      i += 8;
    }
    if (!found) {
      while (i < n && !kNeedsEscape[p[i]]) ++i;
      if (i >= n) break;
    }
    const unsigned char c = p[i];
    out->append(s.data() + run, i - run);
    out->append(bs);
    switch (c) {
      case '"':
        if (nested) out->append("\\");  // the quote itself is escaped in the outer string too
        out->push_back('"');
        break;
      case '\\': out->append(bs); break;
      case '\n': out->push_back('n'); break;
      case '\r': out->push_back('r'); break;
      case '\t': out->push_back('t'); break;
      case '\b': out->push_back('b'); break;
      case '\f': out->push_back('f'); break;
      default: {
        const char esc[] = {'u', '0', '0', kHex[c >> 4], kHex[c & 0xf]};
        out->append(esc, sizeof(esc));
      }
    }
    run = ++i;
  }
  out->append(s.data() + run, n - run);
}

absl::Status JsonSink::String(std::string_view prefix, std::string_view s, std::string_view what) {
  if (!simdjson::validate_utf8(s.data(), s.size())) {
    return absl::InvalidArgumentError(absl::StrCat(ToAbsl(what), " is not valid UTF-8"));
  }
  Quote();
  Raw(prefix);
  AppendEscaped(s, nested_, out_);
  Quote();
  return absl::OkStatus();
}

void JsonSink::Int(int64_t i) { AppendInt(i, out_); }

absl::Status JsonSink::Value(const zrpc::Value& value) {
  switch (value.type()) {
    case zrpc::Value::Type::kNull: Raw("null"); return absl::OkStatus();
    case zrpc::Value::Type::kBool: Raw(value.AsBool() ? "true" : "false"); return absl::OkStatus();
    case zrpc::Value::Type::kInt: Int(value.AsInt()); return absl::OkStatus();
    case zrpc::Value::Type::kUint: {
      char buf[24];
      auto r = std::to_chars(buf, buf + sizeof(buf), value.AsUint());
      out_->append(buf, r.ptr);
      return absl::OkStatus();
    }
    case zrpc::Value::Type::kDouble: return AppendDouble(value.AsDouble(), out_);
    case zrpc::Value::Type::kString: return String(value.AsString(), "string");
    case zrpc::Value::Type::kArray: {
      Raw('[');
      bool first = true;
      for (const zrpc::Value& item : value.AsArray()) {
        if (!first) Raw(',');
        first = false;
        if (absl::Status s = Value(item); !s.ok()) return s;
      }
      Raw(']');
      return absl::OkStatus();
    }
    case zrpc::Value::Type::kObject: {
      Raw('{');
      bool first = true;
      for (const auto& [key, item] : value.AsObject()) {
        if (!first) Raw(',');
        first = false;
        if (absl::Status s = String(key, "object key"); !s.ok()) return s;
        Raw(':');
        if (absl::Status s = Value(item); !s.ok()) return s;
      }
      Raw('}');
      return absl::OkStatus();
    }
  }
  return absl::InternalError("unknown value type");
}


void AppendInt(int64_t i, std::string* out) {
  char buf[24];
  auto r = std::to_chars(buf, buf + sizeof(buf), i);
  out->append(buf, r.ptr);
}

absl::Status AppendDouble(double d, std::string* out) {
  if (!std::isfinite(d)) {
    return absl::InvalidArgumentError("JSON cannot hold NaN or Infinity");
  }
  char buf[40];
  auto r = std::to_chars(buf, buf + sizeof(buf), d);
  std::string_view text(buf, r.ptr - buf);
  out->append(text);
  if (text.find_first_of(".e") == std::string_view::npos) out->append(".0");
  return absl::OkStatus();
}

absl::Status JsonError(simdjson::error_code error, int max_depth) {
  if (error == simdjson::DEPTH_ERROR) {
    return absl::InvalidArgumentError(
        absl::StrCat("invalid JSON: nesting deeper than ", max_depth, " levels"));
  }
  std::string_view reason;
  switch (error) {
    case simdjson::EMPTY: reason = "empty input"; break;
    case simdjson::UTF8_ERROR: reason = "invalid UTF-8"; break;
    case simdjson::STRING_ERROR: reason = "bad string (invalid escape or lone surrogate)"; break;
    case simdjson::NUMBER_ERROR:
      reason = "number is malformed or out of range (integers must fit 64 bits, doubles be finite)";
      break;
    case simdjson::CAPACITY: reason = "document too large"; break;
    case simdjson::UNCLOSED_STRING: reason = "unclosed string"; break;
    case simdjson::T_ATOM_ERROR:
    case simdjson::F_ATOM_ERROR:
    case simdjson::N_ATOM_ERROR:
      reason = "unknown literal (only true, false and null; no NaN or Infinity)";
      break;
    default: reason = simdjson::error_message(error); break;
  }
  return absl::InvalidArgumentError(absl::StrCat("invalid JSON: ", ToAbsl(reason)));
}

namespace {
constexpr size_t kKeptParserCapacity = 1 << 20;
thread_local simdjson::dom::parser parsers[2];
}  // namespace

void TrimJsonParsers(size_t size) {
  if (size <= kKeptParserCapacity) return;
  for (simdjson::dom::parser& p : parsers) {
    if (p.capacity() > kKeptParserCapacity) p = simdjson::dom::parser();
  }
}

absl::StatusOr<simdjson::dom::element> ParseDom(std::string_view text, const JsonLimits& limits,
                                                int slot) {
  // An empty text (a missing body frame) may have a null data pointer: never hand it on.
  if (text.empty()) return absl::InvalidArgumentError("invalid JSON: empty text");
  auto result = parsers[slot].parse(text.data(), text.size(), /*realloc_if_needed=*/true);
  if (result.error()) return JsonError(result.error(), limits.max_depth);
  return result.value_unsafe();
}

absl::Status TooManyMembers(size_t members, const JsonLimits& limits) {
  return absl::InvalidArgumentError(absl::StrCat("invalid JSON: an object has ", members,
                                                 " members, more than the receiver's limit of ",
                                                 limits.max_object_members));
}

absl::Status TooManyElements(const JsonLimits& limits) {
  return absl::InvalidArgumentError(absl::StrCat("invalid JSON: more than ", limits.max_elements,
                                                 " values in one document (the receiver's limit)"));
}

absl::Status DuplicateKeyError(std::string_view key) {
  return absl::InvalidArgumentError(
      absl::StrCat("invalid JSON: duplicate key \"", internal::BoundedEcho(key), "\""));
}

bool KeySet::Insert(std::string_view key) {
  if (!linear_) return many_.insert(key).second;
  const auto end = few_.begin() + count_;
  if (std::find(few_.begin(), end, key) != end) return false;
  if (count_ == kFew) {  // more members than announced: cannot happen; stay correct anyway
    linear_ = false;
    many_.insert(few_.begin(), few_.end());
    return many_.insert(key).second;
  }
  few_[count_++] = key;
  return true;
}

absl::Status FromDom(simdjson::dom::element element, int depth, const JsonLimits& limits,
                     size_t* elements_left, Value* out) {
  using simdjson::dom::element_type;
  if (*elements_left == 0) return TooManyElements(limits);
  --*elements_left;
  const element_type type = element.type();
  if (type != element_type::ARRAY && type != element_type::OBJECT) {
    if (out == nullptr) return absl::OkStatus();
    switch (type) {
      case element_type::BOOL: *out = Value(element.get_bool().value_unsafe()); break;
      case element_type::INT64: *out = Value(element.get_int64().value_unsafe()); break;
      case element_type::UINT64: *out = Value(element.get_uint64().value_unsafe()); break;
      case element_type::DOUBLE: *out = Value(element.get_double().value_unsafe()); break;
      case element_type::STRING: *out = Value(element.get_string().value_unsafe()); break;
      default: *out = Value(); break;
    }
    return absl::OkStatus();
  }
  if (depth > limits.max_depth) {
    return absl::InvalidArgumentError(
        absl::StrCat("invalid JSON: nesting deeper than ", limits.max_depth, " levels"));
  }
  if (type == element_type::ARRAY) {
    simdjson::dom::array in = element.get_array().value_unsafe();
    const size_t n = in.size();
    if (n > *elements_left) return TooManyElements(limits);
    Array* array = nullptr;
    if (out != nullptr) {
      *out = Value(Array{});
      array = &out->MutableArray();
      array->reserve(n);
    }
    for (simdjson::dom::element item : in) {
      Value* slot = array != nullptr ? &array->emplace_back() : nullptr;
      if (absl::Status s = FromDom(item, depth + 1, limits, elements_left, slot); !s.ok()) return s;
    }
    return absl::OkStatus();
  }
  simdjson::dom::object in = element.get_object().value_unsafe();
  const size_t n = in.size();
  if (n > limits.max_object_members) return TooManyMembers(n, limits);
  if (n > *elements_left) return TooManyElements(limits);
  Object* object = nullptr;
  if (out != nullptr) {
    *out = Value(Object{});
    object = &out->MutableObject();
    object->reserve(n);
  }
  KeySet seen(n);
  for (simdjson::dom::key_value_pair field : in) {
    if (!seen.Insert(field.key)) return DuplicateKeyError(field.key);
    Value* slot = object != nullptr ? &object->EmplaceUnchecked(field.key) : nullptr;
    if (absl::Status s = FromDom(field.value, depth + 1, limits, elements_left, slot); !s.ok()) {
      return s;
    }
  }
  return absl::OkStatus();
}

}  // namespace internal

absl::StatusOr<Value> ParseJson(std::string_view text, const JsonLimits& limits) {
  absl::StatusOr<simdjson::dom::element> dom = internal::ParseDom(text, limits);
  if (!dom.ok()) return dom.status();
  Value v;
  size_t elements_left = limits.max_elements;
  if (absl::Status s = internal::FromDom(*dom, 1, limits, &elements_left, &v); !s.ok()) return s;
  return v;
}

absl::Status AppendJson(const Value& value, std::string* out) {
  const size_t mark = out->size();
  internal::JsonSink sink(out, /*nested=*/false);
  absl::Status s = sink.Value(value);
  if (!s.ok()) out->resize(mark);
  return s;
}

absl::StatusOr<std::string> ToJson(const Value& value) {
  std::string out;
  internal::JsonSink sink(&out, /*nested=*/false);
  if (absl::Status s = sink.Value(value); !s.ok()) return s;
  return out;
}

}  // namespace zrpc
