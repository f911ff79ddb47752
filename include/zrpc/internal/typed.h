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
#include "zrpc/internal/convert.h"
#include "zrpc/value.h"

namespace zrpc {
class CallContext;
namespace internal {

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

// INVALID_ARGUMENT naming the argument, its method and what was wrong (see ConversionError).
absl::Status TypedArgError(const CallContext& ctx, std::string_view name,
                           const ConversionError& error);
absl::Status TypedMissingArg(const CallContext& ctx, std::string_view name,
                             const std::string& expected);
absl::Status TypedExtraArg(const CallContext& ctx, std::string_view name);

// The JSON type name of what a handler returning R produces ("null" for void and absl::Status).
template <typename R>
std::string ResultName() {
  using D = std::decay_t<R>;
  if constexpr (std::is_void_v<D> || std::is_same_v<D, absl::Status>) return "null";
  else if constexpr (IsStatusOr<D>::value) return ExpectedName<typename D::value_type>();
  else return ExpectedName<D>();
}

// The argument and result types of a typed handler F taking `names`, for `_zrpc.describe`.
template <typename F>
MethodSignature MakeSignature(const std::vector<std::string>& names) {
  using S = Signature<F>;
  MethodSignature sig;
  sig.typed = true;
  sig.returns = ResultName<typename S::Result>();
  [&]<typename... A>(std::tuple<A...>*) {
    size_t i = 0;
    auto add = [&]<typename T>(T*) {
      using D = std::decay_t<T>;
      if constexpr (std::is_same_v<D, CallContext>) return;
      else {
        if (i < names.size()) {
          sig.args.push_back({names[i], ExpectedName<D>(), IsOptional<D>::value});
        }
        ++i;
      }
    };
    (void)add;  // unused when the method takes no arguments
    (add(static_cast<std::remove_reference_t<A>*>(nullptr)), ...);
  }(static_cast<typename S::Args*>(nullptr));
  return sig;
}

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
      if constexpr (!IsOptional<T>::value) status = TypedMissingArg(ctx, name, ExpectedName<T>());
      return;
    }
    ConversionError error;
    if (!FromValue(*v, &slot, &error)) status = TypedArgError(ctx, name, error);
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
