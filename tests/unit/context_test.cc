// SPDX-License-Identifier: Apache-2.0
#include "zrpc/context.h"

#include <thread>

#include "test_util.h"

namespace zrpc {
namespace {

TEST(ContextTest, ToDictFromDictAndDeepCopy) {
  Context ctx = Context::FromDict(Object{{"user", "alice"}, {"roles", Array{"member"}}});
  Object dict = ctx.ToDict();
  dict.Set("user", "mallory");
  EXPECT_EQ(ctx.Find("user")->AsString(), "alice");  // ToDict is a copy
  Context copy = ctx.DeepCopy();
  copy.Set("user", "bob");
  EXPECT_EQ(ctx.Find("user")->AsString(), "alice");
  EXPECT_EQ(Context::FromDict(ctx.ToDict()), ctx);
}

TEST(ContextTest, GetNamesAMissingKey) {
  Context ctx(Object{{"a", 1}});
  EXPECT_EQ(ctx.Get("a")->AsInt(), 1);
  ZRPC_EXPECT_ERROR(ctx.Get("nope"), absl::StatusCode::kNotFound, "\"nope\"");
}

TEST(ContextTest, ElevatedAddsAdminOnceAndLeavesTheOriginal) {
  Context ctx(Object{{"roles", Array{"member"}}, {"is_admin", false}});
  Context admin = ctx.Elevated("yes");
  EXPECT_TRUE(admin.Find("is_admin")->AsBool());
  EXPECT_EQ(*admin.Find("roles"), Value(Array{"member", "admin"}));
  EXPECT_EQ(admin.Find("read_deleted")->AsString(), "yes");
  EXPECT_EQ(*admin.Elevated().Find("roles"), Value(Array{"member", "admin"}));
  EXPECT_FALSE(ctx.Find("is_admin")->AsBool());
  EXPECT_EQ(ctx.Find("read_deleted"), nullptr);
  Context bare = Context().Elevated();
  EXPECT_EQ(*bare.Find("roles"), Value(Array{"admin"}));
  EXPECT_EQ(bare.Find("read_deleted"), nullptr);
}

TEST(ContextTest, UpdateStoreIsPerThread) {
  Context::ClearStore();
  EXPECT_EQ(Context::Current(), nullptr);
  Context(Object{{"request_id", "r1"}}).UpdateStore();
  ASSERT_NE(Context::Current(), nullptr);
  EXPECT_EQ(Context::Current()->Find("request_id")->AsString(), "r1");
  std::thread([] { EXPECT_EQ(Context::Current(), nullptr); }).join();
  Context::ClearStore();
  EXPECT_EQ(Context::Current(), nullptr);
}

}  // namespace
}  // namespace zrpc
