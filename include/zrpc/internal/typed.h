// SPDX-License-Identifier: Apache-2.0
// Internal: the machinery behind typed handlers (Endpoint::Method with argument names). Include
// zrpc/dispatcher.h instead of this file.
#ifndef ZRPC_INTERNAL_TYPED_H_
#define ZRPC_INTERNAL_TYPED_H_

#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>
#include <optional>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "zrpc/value.h"

namespace zrpc {
class CallContext;
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

// The name of the JSON type a C++ argument type expects, for error texts.
template <typename T>
constexpr const char* ExpectedName() {
  if constexpr (std::is_same_v<T, bool>) return "a bool";
  else if constexpr (std::is_integral_v<T>) return "an integer";
  else if constexpr (std::is_floating_point_v<T>) return "a number";
  else if constexpr (std::is_same_v<T, std::string>) return "a string";
  else if constexpr (std::is_same_v<T, Object>) return "an object";
  else if constexpr (std::is_same_v<T, Array> || IsVector<T>::value) return "an array";
  else if constexpr (IsOptional<T>::value) return ExpectedName<typename T::value_type>();
  else return "a value";
}

// Converts `v` to T. Returns false when `v` does not hold a T (or is out of T's range).
template <typename T>
bool FromValue(const Value& v, T* out) {
  if constexpr (std::is_same_v<T, Value>) {
    *out = v;
    return true;
  } else if constexpr (std::is_same_v<T, bool>) {
    if (!v.is_bool()) return false;
    *out = v.AsBool();
    return true;
  } else if constexpr (std::is_integral_v<T>) {
    if (v.is_int()) {
      const int64_t i = v.AsInt();
      if constexpr (std::is_signed_v<T>) {
        if (i < static_cast<int64_t>(std::numeric_limits<T>::min()) ||
            i > static_cast<int64_t>(std::numeric_limits<T>::max())) {
          return false;
        }
      } else {
        if (i < 0 || static_cast<uint64_t>(i) > std::numeric_limits<T>::max()) return false;
      }
      *out = static_cast<T>(i);
      return true;
    }
    if (v.is_uint()) {
      if (static_cast<uint64_t>(std::numeric_limits<T>::max()) < v.AsUint()) return false;
      *out = static_cast<T>(v.AsUint());
      return true;
    }
    return false;
  } else if constexpr (std::is_floating_point_v<T>) {
    if (v.is_double()) *out = static_cast<T>(v.AsDouble());
    else if (v.is_int()) *out = static_cast<T>(v.AsInt());
    else if (v.is_uint()) *out = static_cast<T>(v.AsUint());
    else return false;
    return true;
  } else if constexpr (std::is_same_v<T, std::string>) {
    if (!v.is_string()) return false;
    *out = v.AsString();
    return true;
  } else if constexpr (std::is_same_v<T, Object>) {
    if (!v.is_object()) return false;
    *out = v.AsObject();
    return true;
  } else if constexpr (std::is_same_v<T, Array>) {
    if (!v.is_array()) return false;
    *out = v.AsArray();
    return true;
  } else if constexpr (IsVector<T>::value) {
    if (!v.is_array()) return false;
    out->clear();
    out->reserve(v.AsArray().size());
    for (const Value& item : v.AsArray()) {
      typename T::value_type x{};
      if (!FromValue(item, &x)) return false;
      out->push_back(std::move(x));
    }
    return true;
  } else if constexpr (IsOptional<T>::value) {
    if (v.is_null()) {
      out->reset();
      return true;
    }
    typename T::value_type x{};
    if (!FromValue(v, &x)) return false;
    *out = std::move(x);
    return true;
  } else {
    static_assert(sizeof(T) == 0, "unsupported typed-handler argument type");
  }
}

// Converts a handler's return value to a Value.
template <typename T>
Value ToValue(T&& t) {
  using D = std::decay_t<T>;
  if constexpr (std::is_constructible_v<Value, D>) {
    return Value(std::forward<T>(t));
  } else if constexpr (IsVector<D>::value) {
    Array a;
    a.reserve(t.size());
    for (auto& item : t) a.push_back(ToValue(item));
    return Value(std::move(a));
  } else if constexpr (IsOptional<D>::value) {
    return t ? ToValue(*std::forward<T>(t)) : Value();
  } else {
    static_assert(sizeof(D) == 0, "unsupported typed-handler result type");
  }
}

template <typename R>
absl::StatusOr<Value> ToResult(R&& r) {
  using D = std::decay_t<R>;
  if constexpr (std::is_same_v<D, absl::Status>) {
    if (!r.ok()) return r;
    return Value();
  } else if constexpr (IsStatusOr<D>::value) {
    if (!r.ok()) return r.status();
    return ToValue(*std::forward<R>(r));
  } else {
    return ToValue(std::forward<R>(r));
  }
}

template <typename F>
struct Signature : Signature<decltype(std::function{std::declval<F>()})> {};
template <typename R, typename... A>
struct Signature<std::function<R(A...)>> {
  using Result = R;
  using Args = std::tuple<A...>;
  static constexpr bool kTakesContext =
      sizeof...(A) > 0 &&
      std::is_same_v<std::tuple_element_t<0, std::tuple<A..., void>>, CallContext&>;
  static constexpr size_t kValueArgs = sizeof...(A) - (kTakesContext ? 1 : 0);
};

// `problem`: nullptr for a missing argument or a wrong type, or a short reason.
absl::Status TypedArgError(const CallContext& ctx, std::string_view name, const char* problem,
                           const char* expected, const Value* got);
absl::Status TypedExtraArg(const CallContext& ctx, std::string_view name);

// "" when `names` fits F, else why not.
template <typename F>
std::string CheckTypedNames(const std::vector<std::string>& names) {
  using S = Signature<F>;
  if (names.size() != S::kValueArgs) {
    return "has " + std::to_string(S::kValueArgs) + " parameters but " +
           std::to_string(names.size()) + " argument names";
  }
  for (size_t i = 0; i < names.size(); ++i) {
    if (names[i].empty()) return "empty argument name";
    for (size_t j = 0; j < i; ++j) {
      if (names[i] == names[j]) return "argument name \"" + names[i] + "\" given twice";
    }
  }
  return "";
}

// Converts the named arguments into `values`.
template <typename Tuple, size_t... I>
absl::Status FillArgs(const CallContext& ctx, const std::vector<std::string>& names,
                      const Object& args, Tuple& values, std::index_sequence<I...>) {
  absl::Status status;
  auto fill = [&](auto& slot, const std::string& name) {
    if (!status.ok()) return;
    using T = std::decay_t<decltype(slot)>;
    const Value* v = args.Find(name);
    if (v == nullptr) {
      if constexpr (!IsOptional<T>::value) {
        status = TypedArgError(ctx, name, nullptr, ExpectedName<T>(), nullptr);
      }
      return;
    }
    if (!FromValue(*v, &slot)) {
      const bool range = v->is_integer() && std::is_integral_v<T> && !std::is_same_v<T, bool>;
      status = TypedArgError(ctx, name, range ? "out of range" : nullptr, ExpectedName<T>(), v);
    }
  };
  (void)fill;  // unused when the method takes no arguments
  (fill(std::get<I>(values), names[I]), ...);
  return status;
}

template <typename F>
std::function<absl::StatusOr<Value>(CallContext&, const Object&)> BindTyped(
    std::vector<std::string> names, F f) {
  using S = Signature<F>;
  return [names = std::move(names), f = std::move(f)](
             CallContext& ctx, const Object& args) -> absl::StatusOr<Value> {
    if (names.size() != S::kValueArgs) {
      return absl::InternalError("typed method registered with the wrong number of names");
    }
    for (const auto& entry : args) {
      if (std::find(names.begin(), names.end(), entry.first) == names.end()) {
        return TypedExtraArg(ctx, entry.first);
      }
    }
    return [&]<typename... A>(std::tuple<A...>*) -> absl::StatusOr<Value> {
      if constexpr (S::kTakesContext) {
        return [&]<typename C, typename... V>(std::tuple<C, V...>*) -> absl::StatusOr<Value> {
          std::tuple<std::decay_t<V>...> values;
          absl::Status s = FillArgs(ctx, names, args, values, std::index_sequence_for<V...>{});
          if (!s.ok()) return s;
          auto call = [&](auto&&... xs) { return f(ctx, std::move(xs)...); };
          if constexpr (std::is_void_v<typename S::Result>) {
            std::apply(call, std::move(values));
            return Value();
          } else {
            return ToResult(std::apply(call, std::move(values)));
          }
        }(static_cast<std::tuple<A...>*>(nullptr));
      } else {
        std::tuple<std::decay_t<A>...> values;
        absl::Status s = FillArgs(ctx, names, args, values, std::index_sequence_for<A...>{});
        if (!s.ok()) return s;
        if constexpr (std::is_void_v<typename S::Result>) {
          std::apply(f, std::move(values));
          return Value();
        } else {
          return ToResult(std::apply(f, std::move(values)));
        }
      }
    }(static_cast<typename S::Args*>(nullptr));
  };
}

}  // namespace internal
}  // namespace zrpc

#endif  // ZRPC_INTERNAL_TYPED_H_
