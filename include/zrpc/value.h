// SPDX-License-Identifier: Apache-2.0
// zrpc/value.h — the public JSON value that carries arguments, results and contexts.
//
// A `zrpc::Value` is null, a bool, an int64, a uint64 (only for integers above INT64_MAX), a
// double, a UTF-8 string, an array or an object. Objects keep their keys in insertion order and
// never hold a key twice. Build values with initializer lists:
//
//   zrpc::Value v = zrpc::Object{{"a", 1}, {"b", zrpc::Array{1.5, "x", nullptr}}};
//   if (const zrpc::Value* a = v.Find("a"); a && a->is_int()) use(a->AsInt());
//   absl::StatusOr<int64_t> a = v.Find("a")->Get<int64_t>();  // checked: an error says why
//   absl::StatusOr<std::string> text = zrpc::ToJson(v);      // {"a":1,"b":[1.5,"x",null]}
//   absl::StatusOr<zrpc::Value> back = zrpc::ParseJson(*text);
//
// Values are regular types: copies are deep, equality is structural. Thread-compatible.
#ifndef ZRPC_VALUE_H_
#define ZRPC_VALUE_H_

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include "absl/status/statusor.h"

namespace zrpc {

class Value;

// A JSON array.
using Array = std::vector<Value>;

// A JSON object: keys in insertion order, each key at most once. Small objects (the usual few
// keys) are searched linearly; from 32 keys on, a hash index keeps Find, Set and operator[] at
// constant time, so building or reading an object of n keys is linear in n. Change values
// through iterators freely, but never a key: Erase and Set/operator[] are the way to rename.
class Object {
 public:
  using Entry = std::pair<std::string, Value>;
  using const_iterator = std::vector<Entry>::const_iterator;
  using iterator = std::vector<Entry>::iterator;

  Object() = default;
  // Later duplicates of a key replace earlier ones.
  Object(std::initializer_list<Entry> entries);
  Object(const Object& other);
  Object& operator=(const Object& other);
  Object(Object&&) noexcept = default;
  Object& operator=(Object&&) noexcept = default;
  ~Object() = default;

  // Returns the value at `key`, or nullptr.
  const Value* Find(std::string_view key) const;
  Value* Find(std::string_view key);
  bool Contains(std::string_view key) const;
  // Returns the value at `key`, inserting null first if it is absent.
  Value& operator[](std::string_view key);
  // Sets `key` to `value` (replacing any earlier value).
  void Set(std::string key, Value value);
  // Appends without checking for an existing key: the caller guarantees `key` is new.
  void AppendUnchecked(std::string key, Value value);
  // Appends `key` with a null value and returns that value to fill in place; the caller
  // guarantees `key` is new.
  Value& EmplaceUnchecked(std::string_view key);
  // Removes `key`; returns whether it was there. Linear in the object's size.
  bool Erase(std::string_view key);

  size_t size() const;
  bool empty() const;
  void reserve(size_t n);
  const_iterator begin() const;
  const_iterator end() const;
  iterator begin();
  iterator end();

  friend bool operator==(const Object& a, const Object& b);

 private:
  // Key hash -> position, built once an object holds kIndexFrom keys.
  struct Index;
  struct IndexDeleter {
    void operator()(Index* index) const;
  };
  static constexpr size_t kIndexFrom = 32;
  // Keeps the index in step after entries_.back() was appended.
  void IndexLast();
  void Reindex();
  size_t Position(std::string_view key) const;  // size() when absent

  std::vector<Entry> entries_;
  std::unique_ptr<Index, IndexDeleter> index_;
};

class Value {
 public:
  enum class Type { kNull, kBool, kInt, kUint, kDouble, kString, kArray, kObject };

  Value() = default;
  Value(std::nullptr_t) {}
  Value(bool b) : data_(b) {}
  // Any integer type. Unsigned values above INT64_MAX are kept as uint64.
  template <typename T, std::enable_if_t<std::is_integral_v<T> && !std::is_same_v<T, bool>, int> = 0>
  Value(T i) {
    if constexpr (std::is_unsigned_v<T>) {
      if (static_cast<uint64_t>(i) > static_cast<uint64_t>(INT64_MAX)) {
        data_ = static_cast<uint64_t>(i);
        return;
      }
    }
    data_ = static_cast<int64_t>(i);
  }
  Value(double d) : data_(d) {}
  Value(float f) : data_(static_cast<double>(f)) {}
  Value(const char* s) : data_(std::string(s)) {}
  Value(std::string s) : data_(std::move(s)) {}
  Value(std::string_view s) : data_(std::string(s)) {}
  Value(Array a) : data_(std::move(a)) {}
  Value(Object o) : data_(std::move(o)) {}

  Type type() const { return static_cast<Type>(data_.index()); }
  bool is_null() const { return type() == Type::kNull; }
  bool is_bool() const { return type() == Type::kBool; }
  // True for int64 and for uint64 values (integers of either representation).
  bool is_integer() const { return type() == Type::kInt || type() == Type::kUint; }
  bool is_int() const { return type() == Type::kInt; }
  bool is_uint() const { return type() == Type::kUint; }
  bool is_double() const { return type() == Type::kDouble; }
  bool is_number() const { return is_integer() || is_double(); }
  bool is_string() const { return type() == Type::kString; }
  bool is_array() const { return type() == Type::kArray; }
  bool is_object() const { return type() == Type::kObject; }

  // Accessors that never throw nor fail: each returns the value when it has that type, and
  // otherwise an empty one: false, 0, 0.0, "", an empty array or object. AsInt is for int64
  // values (is_int()); integers above INT64_MAX are uint64 (is_uint(), AsUint). AsDouble is for
  // doubles only (an integer gives 0.0). Check the type first (is_int() ...), or use Get<T>,
  // which converts and says what is wrong. References stay valid while the value is unchanged.
  bool AsBool() const { return Or<bool>(false); }
  int64_t AsInt() const { return Or<int64_t>(0); }
  uint64_t AsUint() const { return Or<uint64_t>(0); }
  double AsDouble() const { return Or<double>(0.0); }
  const std::string& AsString() const { return OrEmpty<std::string>(); }
  const Array& AsArray() const { return OrEmpty<Array>(); }
  const Object& AsObject() const { return OrEmpty<Object>(); }
  // Mutable access: a value of another type is first replaced by an empty string, array or
  // object (so `v.MutableObject().Set(...)` on a null value makes it an object).
  std::string& MutableString() { return Mutable<std::string>(); }
  Array& MutableArray() { return Mutable<Array>(); }
  Object& MutableObject() { return Mutable<Object>(); }

  // Converts to T with the same rules and error texts as typed handler arguments
  // (zrpc/dispatcher.h): T is bool, an integer type (range-checked), a floating-point type
  // (integers convert), std::string, Value, Object, Array, std::vector<T> or std::optional<T>
  // (null gives nullopt). INVALID_ARGUMENT otherwise, saying where and why:
  //   Value(Array{1, "x"}).Get<std::vector<int>>()  // "value[1]: expected integer, got string"
  //   Value(300).Get<uint8_t>()                     // "expected integer in [0, 255], got 300"
  template <typename T>
  absl::StatusOr<T> Get() const;

  // Returns the member `key` of an object, or nullptr (also when this is not an object).
  const Value* Find(std::string_view key) const {
    return is_object() ? AsObject().Find(key) : nullptr;
  }

  // Structural equality. Integers compare by value whatever their representation; an integer
  // never equals a double.
  friend bool operator==(const Value& a, const Value& b);

 private:
  template <typename T>
  T Or(T fallback) const {
    const T* p = std::get_if<T>(&data_);
    return p ? *p : fallback;
  }
  template <typename T>
  const T& OrEmpty() const {
    if (const T* p = std::get_if<T>(&data_)) return *p;
    static const T* const kEmpty = new T();  // never destroyed: safe during static destruction
    return *kEmpty;
  }
  template <typename T>
  T& Mutable() {
    if (!std::holds_alternative<T>(data_)) data_ = T();
    return *std::get_if<T>(&data_);
  }

  std::variant<std::monostate, bool, int64_t, uint64_t, double, std::string, Array, Object> data_;
};

// Object's inline members need Value complete (clang instantiates std::pair eagerly).
inline bool Object::Contains(std::string_view key) const { return Find(key) != nullptr; }
inline Value& Object::EmplaceUnchecked(std::string_view key) {
  Value& v = entries_.emplace_back(std::piecewise_construct, std::forward_as_tuple(key),
                                   std::forward_as_tuple())
                 .second;
  if (index_ || entries_.size() >= kIndexFrom) IndexLast();
  return v;
}
inline size_t Object::size() const { return entries_.size(); }
inline bool Object::empty() const { return entries_.empty(); }
inline void Object::reserve(size_t n) { entries_.reserve(n); }
inline Object::const_iterator Object::begin() const { return entries_.begin(); }
inline Object::const_iterator Object::end() const { return entries_.end(); }
inline Object::iterator Object::begin() { return entries_.begin(); }
inline Object::iterator Object::end() { return entries_.end(); }

// "null", "bool", "integer", "integer", "double", "string", "array", "object".
std::string_view TypeName(Value::Type type);

// Limits applied when parsing untrusted JSON.
struct JsonLimits {
  // Deepest nesting of arrays and objects accepted (the top level counts as 1).
  int max_depth = 64;
  // Most members one object may have.
  size_t max_object_members = 65536;
  // Most values (of any type, containers included) in the whole document: bounds the memory a
  // decoded message takes (about 40 bytes per value) whatever its text holds.
  size_t max_elements = 1u << 19;
};

// Parses one JSON text. Errors (INVALID_ARGUMENT, with the reason): malformed JSON, trailing
// content, invalid UTF-8 or lone surrogates, NaN/Infinity, numbers out of range (1e400, 2^64),
// duplicate object keys, nesting deeper than `limits.max_depth`, more members or values than
// `limits` allows. Linear in the text's size. Thread-safe.
absl::StatusOr<Value> ParseJson(std::string_view text, const JsonLimits& limits = {});

// Writes `value` as compact JSON. Doubles are written so that they read back as the same double
// (and as a double: 1.0 is written "1.0"). Errors (INVALID_ARGUMENT): a non-finite double or a
// string that is not valid UTF-8. Thread-safe.
absl::StatusOr<std::string> ToJson(const Value& value);
// As ToJson, appending to `*out` (which is unchanged on error).
absl::Status AppendJson(const Value& value, std::string* out);

}  // namespace zrpc

// Value::Get's conversions, shared with typed handlers and RpcProxy::Call<R>.
#include "zrpc/internal/convert.h"  // IWYU pragma: export

#endif  // ZRPC_VALUE_H_
