// SPDX-License-Identifier: Apache-2.0
#include "zrpc/context.h"

#include "absl/strings/str_cat.h"

namespace zrpc {
namespace {

thread_local std::shared_ptr<const Context> current_context;

}  // namespace

Context Context::Elevated(std::optional<std::string> read_deleted) const {
  Context copy = *this;
  copy.values_.Set("is_admin", true);
  Value& roles = copy.values_["roles"];
  if (!roles.is_array()) roles = Array{};
  bool has_admin = false;
  for (const Value& r : roles.AsArray()) {
    if (r.is_string() && r.AsString() == "admin") has_admin = true;
  }
  if (!has_admin) roles.MutableArray().emplace_back("admin");
  if (read_deleted) copy.values_.Set("read_deleted", *std::move(read_deleted));
  return copy;
}

absl::StatusOr<Value> Context::Get(std::string_view key) const {
  if (const Value* v = values_.Find(key)) return *v;
  return absl::NotFoundError(
      absl::StrCat("context has no key \"", absl::string_view(key.data(), key.size()), "\""));
}

void Context::UpdateStore() const { current_context = std::make_shared<const Context>(*this); }

std::shared_ptr<const Context> Context::Current() { return current_context; }

void Context::ClearStore() { current_context.reset(); }

}  // namespace zrpc
