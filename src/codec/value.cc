// SPDX-License-Identifier: Apache-2.0
#include "zrpc/value.h"

#include <algorithm>

namespace zrpc {

Object::Object(std::initializer_list<Entry> entries) {
  entries_.reserve(entries.size());
  for (const Entry& e : entries) Set(e.first, e.second);
}

const Value* Object::Find(std::string_view key) const {
  for (const Entry& e : entries_) {
    if (e.first == key) return &e.second;
  }
  return nullptr;
}

Value* Object::Find(std::string_view key) {
  for (Entry& e : entries_) {
    if (e.first == key) return &e.second;
  }
  return nullptr;
}

Value& Object::operator[](std::string_view key) {
  if (Value* v = Find(key)) return *v;
  entries_.emplace_back(std::string(key), Value());
  return entries_.back().second;
}

void Object::Set(std::string key, Value value) {
  if (Value* v = Find(key)) {
    *v = std::move(value);
    return;
  }
  entries_.emplace_back(std::move(key), std::move(value));
}

void Object::AppendUnchecked(std::string key, Value value) {
  entries_.emplace_back(std::move(key), std::move(value));
}

bool Object::Erase(std::string_view key) {
  auto it = std::find_if(entries_.begin(), entries_.end(),
                         [&](const Entry& e) { return e.first == key; });
  if (it == entries_.end()) return false;
  entries_.erase(it);
  return true;
}

// Objects are equal when they hold the same keys with equal values, in any order.
bool operator==(const Object& a, const Object& b) {
  if (a.size() != b.size()) return false;
  for (const Object::Entry& e : a) {
    const Value* other = b.Find(e.first);
    if (other == nullptr || !(*other == e.second)) return false;
  }
  return true;
}

bool operator==(const Value& a, const Value& b) {
  using T = Value::Type;
  if (a.is_integer() && b.is_integer()) {
    if (a.type() == b.type()) return a.is_int() ? a.AsInt() == b.AsInt() : a.AsUint() == b.AsUint();
    return false;  // an int64 and a uint64 above INT64_MAX never hold the same number
  }
  if (a.type() != b.type()) return false;
  switch (a.type()) {
    case T::kNull:
      return true;
    case T::kBool:
      return a.AsBool() == b.AsBool();
    case T::kDouble:
      return a.AsDouble() == b.AsDouble();
    case T::kString:
      return a.AsString() == b.AsString();
    case T::kArray:
      return a.AsArray() == b.AsArray();
    case T::kObject:
      return a.AsObject() == b.AsObject();
    default:
      return false;
  }
}

std::string_view TypeName(Value::Type type) {
  switch (type) {
    case Value::Type::kNull:
      return "null";
    case Value::Type::kBool:
      return "bool";
    case Value::Type::kInt:
    case Value::Type::kUint:
      return "integer";
    case Value::Type::kDouble:
      return "double";
    case Value::Type::kString:
      return "string";
    case Value::Type::kArray:
      return "array";
    case Value::Type::kObject:
      return "object";
  }
  return "unknown";
}

}  // namespace zrpc
