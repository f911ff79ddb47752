// SPDX-License-Identifier: Apache-2.0
// Fuzz target: authorized_keys files (ParseAuthorizedKeys, what every keyed process reads at start
// and on every change, and the roles its lookups check). Invariants: a file that parses lists
// valid identities and keys, no name is both an identity and a group, and the role checks answer
// for any topic without crashing; migrating a file keeps it valid, is idempotent, and keeps every
// key's identity; errors are INVALID_ARGUMENT statuses that name the file.
#include <set>
#include <string>

#include "fuzz/fuzz_targets.h"
#include "zrpc/matchmaker.h"
#include "zrpc/security.h"

namespace zrpc::fuzz {

void FuzzKeys(std::string_view data) {
  absl::StatusOr<std::vector<AuthorizedKey>> keys = ParseAuthorizedKeys(data, "/fuzz/ak");
  if (!keys.ok()) {
    ZRPC_FUZZ_CHECK(keys.status().code() == absl::StatusCode::kInvalidArgument);
    ZRPC_FUZZ_CHECK(keys.status().message().find("/fuzz/ak") != std::string_view::npos);
    return;
  }
  std::set<std::string> identities, groups;
  for (const AuthorizedKey& k : *keys) {
    ZRPC_FUZZ_CHECK(ValidateName("identity", k.identity).ok());
    ZRPC_FUZZ_CHECK(IsCurveKey(k.public_key));
    ZRPC_FUZZ_CHECK(identities.insert(k.identity).second);
    for (const std::string& g : k.groups) groups.insert(g);
  }
  for (const std::string& g : groups) ZRPC_FUZZ_CHECK(!identities.contains(g));
  // The role checks take any topic a registration or a subscription may name.
  static const char* const kTopics[] = {"compute", "compute.node1", "publisher~compute",
                                        "notify~compute~info", "notify~", "", "a.b.",
                                        "notifications.info"};
  for (const AuthorizedKey& k : *keys) {
    for (const char* t : kTopics) {
      (void)MayServe(k, t);
      (void)MayPublish(k, t);
      (void)MayListen(k, t);
    }
    // A key with no role may do nothing but call.
    if (k.roles.empty()) {
      ZRPC_FUZZ_CHECK(!MayServe(k, "compute") && !MayPublish(k, "compute") &&
                      !MayListen(k, "compute."));
    }
  }
  absl::StatusOr<std::string> migrated = MigrateAuthorizedKeys(data, "/fuzz/ak");
  ZRPC_FUZZ_CHECK(migrated.ok());
  absl::StatusOr<std::vector<AuthorizedKey>> after = ParseAuthorizedKeys(*migrated, "/fuzz/ak");
  // Appending roles can make a line (or the file) longer than the limits: then it is refused,
  // never misread.
  if (!after.ok()) {
    ZRPC_FUZZ_CHECK(after.status().code() == absl::StatusCode::kInvalidArgument);
    return;
  }
  ZRPC_FUZZ_CHECK(after->size() == keys->size());
  for (size_t i = 0; i < keys->size(); ++i) {
    ZRPC_FUZZ_CHECK((*after)[i].identity == (*keys)[i].identity);
    ZRPC_FUZZ_CHECK((*after)[i].public_key == (*keys)[i].public_key);
    ZRPC_FUZZ_CHECK(!(*after)[i].roles.empty());
  }
  absl::StatusOr<std::string> twice = MigrateAuthorizedKeys(*migrated, "/fuzz/ak");
  ZRPC_FUZZ_CHECK(twice.ok() && *twice == *migrated);
}

}  // namespace zrpc::fuzz

ZRPC_FUZZ_ENTRY(zrpc::fuzz::FuzzKeys)
