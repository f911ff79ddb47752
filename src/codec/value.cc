// SPDX-License-Identifier: Apache-2.0
#include "zrpc/value.h"

#include <algorithm>
#include <cstdint>

#include "absl/container/flat_hash_map.h"
#include "absl/hash/hash.h"

namespace zrpc {

struct Object::Index {
  // Hash of a key -> its position. Another key with the same hash (absl's hash is seeded per
  // process, so a peer cannot aim for one) is found by a linear search instead.
  absl::flat_hash_map<size_t, uint32_t> positions;
  bool collisions = false;
};

void Object::IndexDeleter::operator()(Index* index) const { delete index; }

Object::Object(std::initializer_list<Entry> entries) {
  entries_.reserve(entries.size());
  for (const Entry& e : entries) Set(e.first, e.second);
}

Object::Object(const Object& other) : entries_(other.entries_) {
  if (other.index_) Reindex();
}

Object& Object::operator=(const Object& other) {
  if (this != &other) {
    entries_ = other.entries_;
    index_.reset();
    if (other.index_) Reindex();
  }
  return *this;
}

void Object::IndexLast() {
  if (!index_) return Reindex();
  const size_t pos = entries_.size() - 1;
  auto [it, fresh] = index_->positions.try_emplace(absl::HashOf(std::string_view(entries_[pos].first)),
                                                   static_cast<uint32_t>(pos));
  if (!fresh) index_->collisions = true;
}

void Object::Reindex() {
  index_.reset(new Index);
  index_->positions.reserve(entries_.size());
  for (size_t pos = 0; pos < entries_.size(); ++pos) {
    auto [it, fresh] = index_->positions.try_emplace(
        absl::HashOf(std::string_view(entries_[pos].first)), static_cast<uint32_t>(pos));
    if (!fresh) index_->collisions = true;
  }
}

size_t Object::Position(std::string_view key) const {
  if (index_) {
    auto it = index_->positions.find(absl::HashOf(key));
    if (it != index_->positions.end() && it->second < entries_.size() &&
        entries_[it->second].first == key) {
      return it->second;
    }
    if (!index_->collisions) return entries_.size();
  }
  for (size_t pos = 0; pos < entries_.size(); ++pos) {
    if (entries_[pos].first == key) return pos;
  }
  return entries_.size();
}

const Value* Object::Find(std::string_view key) const {
  const size_t pos = Position(key);
  return pos < entries_.size() ? &entries_[pos].second : nullptr;
}

Value* Object::Find(std::string_view key) {
  const size_t pos = Position(key);
  return pos < entries_.size() ? &entries_[pos].second : nullptr;
}

Value& Object::operator[](std::string_view key) {
  if (Value* v = Find(key)) return *v;
  return EmplaceUnchecked(key);
}

void Object::Set(std::string key, Value value) {
  if (Value* v = Find(key)) {
    *v = std::move(value);
    return;
  }
  AppendUnchecked(std::move(key), std::move(value));
}

void Object::AppendUnchecked(std::string key, Value value) {
  entries_.emplace_back(std::move(key), std::move(value));
  if (index_ || entries_.size() >= kIndexFrom) IndexLast();
}

bool Object::Erase(std::string_view key) {
  const size_t pos = Position(key);
  if (pos == entries_.size()) return false;
  entries_.erase(entries_.begin() + static_cast<ptrdiff_t>(pos));
  if (index_) {
    if (entries_.size() < kIndexFrom) {
      index_.reset();
    } else {
      Reindex();
    }
  }
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
