// SPDX-License-Identifier: Apache-2.0
#include "zrpc/version.h"

#include "test_util.h"

namespace zrpc {
namespace {

struct Compat {
  const char* implemented;
  const char* requested;
  bool expected;
};

// The seed's own table (oslo-incubator tests/unit/rpc/test_common.py).
TEST(VersionIsCompatibleTest, MatchesTheSeedTable) {
  const Compat table[] = {
      {"1.23", "1.23", true},     {"1.24", "1.23", true},     {"1.22", "1.23", false},
      {"2.23", "1.23", false},    {"1.23", "2.23", false},    {"1.23", "1.23.1", false},
      {"1.23.1", "1.23.2", false}, {"1.23.2", "1.23.1", true}, {"1.24", "1.23.1", true},
      {"1.23.0", "1.23", true},
  };
  for (const Compat& c : table) {
    absl::StatusOr<bool> r = VersionIsCompatible(c.implemented, c.requested);
    ZRPC_ASSERT_OK(r);
    EXPECT_EQ(*r, c.expected) << c.implemented << " vs " << c.requested;
  }
}

TEST(VersionIsCompatibleTest, MalformedVersionsAreErrorsNotCrashes) {
  for (const char* bad : {"", "abc", "1", "1.", ".1", "1.-1", " 1.0", "1.0 ", "1.2.3.4", "1..2",
                          "99999999999.0", "1.0x", "+1.0", "1,0", "１.0"}) {
    ZRPC_EXPECT_ERROR(VersionIsCompatible("1.0", bad), absl::StatusCode::kInvalidArgument,
                      "invalid RPC version");
    ZRPC_EXPECT_ERROR(VersionIsCompatible(bad, "1.0"), absl::StatusCode::kInvalidArgument,
                      "invalid RPC version");
  }
}

TEST(ParseVersionTest, ReadsTwoAndThreeParts) {
  absl::StatusOr<Version> v = ParseVersion("3.14.159");
  ZRPC_ASSERT_OK(v);
  EXPECT_EQ(v->major, 3u);
  EXPECT_EQ(v->minor, 14u);
  EXPECT_EQ(v->revision, 159u);
  EXPECT_TRUE(v->has_revision);
  v = ParseVersion("0.999999999");
  ZRPC_ASSERT_OK(v);
  EXPECT_EQ(v->minor, 999999999u);
  EXPECT_FALSE(v->has_revision);
}

}  // namespace
}  // namespace zrpc

namespace zrpc {
namespace {

TEST(ZrpcVersionTest, TheStringMatchesItsParts) {
  EXPECT_EQ(std::string(ZRPC_VERSION_STRING),
            std::to_string(ZRPC_VERSION_MAJOR) + "." + std::to_string(ZRPC_VERSION_MINOR) + "." +
                std::to_string(ZRPC_VERSION_PATCH));
  // zrpc's own version is itself a valid API version text.
  EXPECT_TRUE(ParseVersion(ZRPC_VERSION_STRING).ok());
}

}  // namespace
}  // namespace zrpc
