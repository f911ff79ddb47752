// SPDX-License-Identifier: Apache-2.0
#include "zrpc/proxy.h"

#include "test_util.h"
#include "zrpc/errors.h"

namespace zrpc {
namespace {

TEST(QueueGetForTest, MatchesTheSeed) {
  EXPECT_EQ(QueueGetFor("a", "b"), "a.b");
  EXPECT_EQ(QueueGetFor("a", std::nullopt), "a");
  EXPECT_EQ(QueueGetFor("a", ""), "a");
}

TEST(RpcProxyTest, MakeMsgUsesTheProxyNamespace) {
  RpcProxy plain("compute", "1.0");
  Message m = plain.MakeMsg("add", {{"a", 1}});
  EXPECT_EQ(m.method, "add");
  EXPECT_FALSE(m.ns.has_value());
  EXPECT_EQ(m.args.Find("a")->AsInt(), 1);
  RpcProxy spaced("compute", "1.0", {.ns = "admin"});
  EXPECT_EQ(spaced.MakeMsg("x").ns, "admin");
  EXPECT_EQ(RpcProxy::MakeNamespacedMsg("y", "other").ns, "other");
}

TEST(RpcProxyTest, PrepareSetsDefaultOrPerCallVersion) {
  RpcProxy p("compute", "1.1");
  absl::StatusOr<Message> m = p.Prepare(Context(), p.MakeMsg("x"));
  ZRPC_ASSERT_OK(m);
  EXPECT_EQ(m->version, "1.1");
  m = p.Prepare(Context(), p.MakeMsg("x"), "1.7");
  ZRPC_ASSERT_OK(m);
  EXPECT_EQ(m->version, "1.7");
  ZRPC_EXPECT_ERROR(p.Prepare(Context(), p.MakeMsg("x"), "1.x"), absl::StatusCode::kInvalidArgument,
                    "invalid RPC version");
}

TEST(RpcProxyTest, VersionCapIsEnforced) {
  RpcProxy p("compute", "1.0", {.version_cap = "1.3"});
  EXPECT_TRUE(p.CanSendVersion("1.3"));
  EXPECT_TRUE(p.CanSendVersion("1.0"));
  EXPECT_FALSE(p.CanSendVersion("1.4"));
  EXPECT_FALSE(p.CanSendVersion("2.0"));
  EXPECT_FALSE(p.CanSendVersion("junk"));
  ZRPC_EXPECT_OK(p.Prepare(Context(), p.MakeMsg("x"), "1.2"));
  absl::Status s = p.Prepare(Context(), p.MakeMsg("x"), "1.4").status();
  EXPECT_TRUE(IsErrorKind(s, ErrorKind::kRpcVersionCapError)) << s;
  EXPECT_EQ(s.message(), "Specified RPC version cap, 1.3, is too low");
  EXPECT_TRUE(RpcProxy("t", "1.0").CanSendVersion("99.0"));
}

class Tagger : public Serializer {
 public:
  absl::StatusOr<Value> SerializeEntity(const Context&, Value v) override {
    if (v.is_null()) return absl::InvalidArgumentError("cannot send null");
    return Value(Array{"tagged", std::move(v)});
  }
  Object SerializeContext(const Context& ctx) override {
    Object o = ctx.ToDict();
    o.Set("serialized", true);
    return o;
  }
};

TEST(RpcProxyTest, PrepareSerializesArgumentsAndContext) {
  RpcProxy p("compute", "1.0", {.serializer = std::make_shared<Tagger>()});
  absl::StatusOr<Message> m = p.Prepare(Context(Object{{"user", "u"}}), p.MakeMsg("x", {{"a", 1}}));
  ZRPC_ASSERT_OK(m);
  EXPECT_EQ(*m->args.Find("a"), Value(Array{"tagged", 1}));
  EXPECT_TRUE(m->context.Find("serialized")->AsBool());
  EXPECT_EQ(m->context.Find("user")->AsString(), "u");
  ZRPC_EXPECT_ERROR(p.Prepare(Context(), p.MakeMsg("x", {{"a", nullptr}})),
                    absl::StatusCode::kInvalidArgument, "cannot send null");
}

}  // namespace
}  // namespace zrpc
