// SPDX-License-Identifier: Apache-2.0
// Internal: converting a zrpc::Value to C++ types, with errors that say where and why. One piece
// of code behind typed handler arguments (zrpc/dispatcher.h), Value::Get<T> (zrpc/value.h) and
// RpcProxy::Call<R> (zrpc/proxy.h). Include those headers instead of this file.
#ifndef ZRPC_INTERNAL_CONVERT_H_
#define ZRPC_INTERNAL_CONVERT_H_

#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "zrpc/value.h"

namespace zrpc {
namespace internal {

template <typename T>
struct IsOptional : std::false_type {};
template <typename T>
struct IsOptional<std::optional<T>> : std::true_type {};
template <typename T>
struct IsVector : std::false_type {};
template <typename T>
struct IsVector<std::vector<T>> : std::true_type {};
template <typename T>
struct IsStatusOr : std::false_type {};
template <typename T>
struct IsStatusOr<absl::StatusOr<T>> : std::true_type {};

// The name of the JSON type a C++ type converts from, as error texts and `_zrpc.describe`
// signatures show it: "boolean", "integer", "number", "string", "object", "array",
// "array of integer" (std::vector<T>), "any" (Value). std::optional<T> has T's name (optional
// arguments are marked separately).
template <typename T>
std::string ExpectedName() {
  if constexpr (std::is_same_v<T, bool>) return "boolean";
  else if constexpr (std::is_integral_v<T>) return "integer";
  else if constexpr (std::is_floating_point_v<T>) return "number";
  else if constexpr (std::is_same_v<T, std::string>) return "string";
  else if constexpr (std::is_same_v<T, Object>) return "object";
  else if constexpr (std::is_same_v<T, Array>) return "array";
  else if constexpr (IsVector<T>::value) return "array of " + ExpectedName<typename T::value_type>();
  else if constexpr (IsOptional<T>::value) return ExpectedName<typename T::value_type>();
  else if constexpr (std::is_convertible_v<T, std::string_view>) return "string";
  else return "any";
}

// Why a Value did not convert to a C++ type, and where inside it.
struct ConversionError {
  // Where below the converted value: "" for the value itself, "[1]", "[1][0]", ...
  std::string path;
  // What was expected there: "integer", "array of string", "integer in [0, 255]", ...
  std::string expected;
  // What was there: a type name ("string"), or the number when it was out of range.
  std::string got;

  // "expected <expected>, got <got>".
  std::string Problem() const { return "expected " + expected + ", got " + got; }
  // "<subject><path>: expected <expected>, got <got>" (`subject` e.g. "result of add"); just
  // the problem when both are empty.
  std::string Text(std::string_view subject) const {
    std::string out(subject);
    out += path;
    return out.empty() ? Problem() : out + ": " + Problem();
  }
};

// Fill `*err` for a value of the wrong type, or out of T's range; return false.
template <typename T>
bool SetTypeError(const Value& v, ConversionError* err) {
  err->path.clear();
  err->expected = ExpectedName<T>();
  err->got = std::string(TypeName(v.type()));
  return false;
}

template <typename T>
bool SetRangeError(const Value& v, ConversionError* err) {
  err->path.clear();
  err->expected = "integer in [" + std::to_string(std::numeric_limits<T>::min()) + ", " +
                  std::to_string(std::numeric_limits<T>::max()) + "]";
  err->got = v.is_int() ? std::to_string(v.AsInt()) : std::to_string(v.AsUint());
  return false;
}

// Converts `v` to T (bool, integers, floating point, std::string, Value, Object, Array,
// std::vector<T>, std::optional<T>; null gives an empty optional). Returns false, with `*err`
// saying where and why, when `v` does not hold a T or is out of T's range.
template <typename T>
bool FromValue(const Value& v, T* out, ConversionError* err) {
  if constexpr (std::is_same_v<T, Value>) {
    *out = v;
    return true;
  } else if constexpr (std::is_same_v<T, bool>) {
    if (!v.is_bool()) return SetTypeError<T>(v, err);
    *out = v.AsBool();
    return true;
  } else if constexpr (std::is_integral_v<T>) {
    if (v.is_int()) {
      const int64_t i = v.AsInt();
      if constexpr (std::is_signed_v<T>) {
        if (i < static_cast<int64_t>(std::numeric_limits<T>::min()) ||
            i > static_cast<int64_t>(std::numeric_limits<T>::max())) {
          return SetRangeError<T>(v, err);
        }
      } else {
        if (i < 0 || static_cast<uint64_t>(i) > std::numeric_limits<T>::max()) {
          return SetRangeError<T>(v, err);
        }
      }
      *out = static_cast<T>(i);
      return true;
    }
    if (v.is_uint()) {
      if (static_cast<uint64_t>(std::numeric_limits<T>::max()) < v.AsUint()) {
        return SetRangeError<T>(v, err);
      }
      *out = static_cast<T>(v.AsUint());
      return true;
    }
    return SetTypeError<T>(v, err);
  } else if constexpr (std::is_floating_point_v<T>) {
    if (v.is_double()) *out = static_cast<T>(v.AsDouble());
    else if (v.is_int()) *out = static_cast<T>(v.AsInt());
    else if (v.is_uint()) *out = static_cast<T>(v.AsUint());
    else return SetTypeError<T>(v, err);
    return true;
  } else if constexpr (std::is_same_v<T, std::string>) {
    if (!v.is_string()) return SetTypeError<T>(v, err);
    *out = v.AsString();
    return true;
  } else if constexpr (std::is_same_v<T, Object>) {
    if (!v.is_object()) return SetTypeError<T>(v, err);
    *out = v.AsObject();
    return true;
  } else if constexpr (std::is_same_v<T, Array>) {
    if (!v.is_array()) return SetTypeError<T>(v, err);
    *out = v.AsArray();
    return true;
  } else if constexpr (IsVector<T>::value) {
    if (!v.is_array()) return SetTypeError<T>(v, err);
    const Array& items = v.AsArray();
    out->clear();
    out->reserve(items.size());
    for (size_t i = 0; i < items.size(); ++i) {
      typename T::value_type x{};
      if (!FromValue(items[i], &x, err)) {
        err->path.insert(0, "[" + std::to_string(i) + "]");
        return false;
      }
      out->push_back(std::move(x));
    }
    return true;
  } else if constexpr (IsOptional<T>::value) {
    if (v.is_null()) {
      out->reset();
      return true;
    }
    typename T::value_type x{};
    if (!FromValue(v, &x, err)) {
      if (err->path.empty() && err->got == TypeName(v.type())) err->expected += " or null";
      return false;
    }
    *out = std::move(x);
    return true;
  } else {
    static_assert(sizeof(T) == 0, "unsupported conversion from zrpc::Value (see FromValue)");
  }
}

}  // namespace internal

template <typename T>
absl::StatusOr<T> Value::Get() const {
  T out{};
  internal::ConversionError error;
  if (!internal::FromValue(*this, &out, &error)) {
    return absl::InvalidArgumentError(error.Text(error.path.empty() ? "" : "value"));
  }
  return out;
}

}  // namespace zrpc

#endif  // ZRPC_INTERNAL_CONVERT_H_
