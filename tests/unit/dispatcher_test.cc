// SPDX-License-Identifier: Apache-2.0
#include "zrpc/dispatcher.h"

#include <optional>
#include <stdexcept>

#include "test_util.h"

namespace zrpc {
namespace {

using ::testing::HasSubstr;
constexpr auto kInvalid = absl::StatusCode::kInvalidArgument;

// Runs `method` and collects every emitted value.
struct Outcome {
  absl::Status status;
  std::vector<Value> values;
};

Outcome RunMethod(const Dispatcher& d, Message m) {
  CallContext ctx;
  Outcome out;
  out.status = d.Dispatch(ctx, m, [&](Value v) {
    out.values.push_back(std::move(v));
    return true;
  });
  return out;
}

Message Msg(std::string method, std::string version = "", Object args = {},
            std::optional<std::string> ns = std::nullopt) {
  Message m;
  m.method = std::move(method);
  m.version = std::move(version);
  m.args = std::move(args);
  m.ns = std::move(ns);
  return m;
}

UnaryHandler Returns(Value v) {
  return [v](CallContext&, const Object&) -> absl::StatusOr<Value> { return v; };
}

// The seed's test: callbacks at 2.1 and 3.5.
class SeedDispatcherTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ZRPC_ASSERT_OK(d_.Add(Endpoint{.version = "2.1"}.Method("test_method", Returns("v2.1"))));
    ZRPC_ASSERT_OK(d_.Add(Endpoint{.version = "3.5"}.Method("test_method", Returns("v3.5"))));
  }
  Dispatcher d_;
};

TEST_F(SeedDispatcherTest, PicksTheCompatibleEndpoint) {
  Outcome a = RunMethod(d_, Msg("test_method", "2.0"));
  ZRPC_ASSERT_OK(a.status);
  EXPECT_EQ(a.values, std::vector<Value>{Value("v2.1")});
  Outcome b = RunMethod(d_, Msg("test_method", "3.1"));
  ZRPC_ASSERT_OK(b.status);
  EXPECT_EQ(b.values, std::vector<Value>{Value("v3.5")});
}

TEST_F(SeedDispatcherTest, IncompatibleVersionsAreUnsupported) {
  for (const char* v : {"2.6", "3.6", "1.0", "4.0"}) {
    Outcome o = RunMethod(d_, Msg("test_method", v));
    EXPECT_TRUE(IsErrorKind(o.status, ErrorKind::kUnsupportedRpcVersion)) << v << o.status;
    EXPECT_EQ(GetErrorField(o.status, "version"), v);
    EXPECT_TRUE(o.values.empty());
  }
  // A missing version means 1.0, which neither endpoint serves.
  EXPECT_TRUE(IsErrorKind(RunMethod(d_, Msg("test_method")).status, ErrorKind::kUnsupportedRpcVersion));
}

TEST_F(SeedDispatcherTest, MissingMethodAtAMatchingVersionIsNoSuchMethod) {
  Outcome o = RunMethod(d_, Msg("no_such", "3.1"));
  EXPECT_TRUE(IsErrorKind(o.status, ErrorKind::kNoSuchMethod)) << o.status;
  EXPECT_EQ(o.status.message(), "Endpoint does not support RPC method no_such");
  // ... and UnsupportedRpcVersion at a version no endpoint serves.
  EXPECT_TRUE(IsErrorKind(RunMethod(d_, Msg("no_such", "4.0")).status, ErrorKind::kUnsupportedRpcVersion));
}

TEST(DispatcherTest, FirstCompatibleEndpointWithTheMethodWins) {
  Dispatcher d;
  ZRPC_ASSERT_OK(d.Add(Endpoint{.version = "1.5"}.Method("other", Returns(0))));
  ZRPC_ASSERT_OK(d.Add(Endpoint{.version = "1.2"}.Method("m", Returns("first"))));
  ZRPC_ASSERT_OK(d.Add(Endpoint{.version = "1.9"}.Method("m", Returns("second"))));
  EXPECT_EQ(RunMethod(d, Msg("m", "1.1")).values, std::vector<Value>{Value("first")});
  EXPECT_EQ(RunMethod(d, Msg("m", "1.4")).values, std::vector<Value>{Value("second")});
  EXPECT_EQ(RunMethod(d, Msg("m")).values, std::vector<Value>{Value("first")});  // "" = 1.0
}

TEST(DispatcherTest, NamespacesMustMatchExactly) {
  Dispatcher d;
  ZRPC_ASSERT_OK(d.Add(Endpoint{.version = "1.0"}.Method("m", Returns("default"))));
  ZRPC_ASSERT_OK(d.Add(Endpoint{.ns = "admin", .version = "1.0"}.Method("m", Returns("admin"))));
  EXPECT_EQ(RunMethod(d, Msg("m", "1.0")).values, std::vector<Value>{Value("default")});
  EXPECT_EQ(RunMethod(d, Msg("m", "1.0", {}, "admin")).values, std::vector<Value>{Value("admin")});
  // A namespace nobody serves is reported as such (NoSuchMethod), naming those served.
  absl::Status other = RunMethod(d, Msg("m", "1.0", {}, "other")).status;
  EXPECT_TRUE(IsErrorKind(other, ErrorKind::kNoSuchMethod)) << other;
  EXPECT_EQ(other.message(), "Endpoint does not support RPC method m: namespace \"other\" is not "
                             "served here (it serves \"\", \"admin\")");
}

TEST(DispatcherTest, UnsupportedVersionNamesTheVersionsServedForTheNamespace) {
  Dispatcher d;
  ZRPC_ASSERT_OK(d.Add(Endpoint{.version = "1.3"}.Method("m", Returns(1))));
  ZRPC_ASSERT_OK(d.Add(Endpoint{.version = "2.0"}.Method("m", Returns(2))));
  ZRPC_ASSERT_OK(d.Add(Endpoint{.ns = "admin", .version = "5.0"}.Method("m", Returns(3))));
  absl::Status s = RunMethod(d, Msg("m", "2.1")).status;
  EXPECT_TRUE(IsErrorKind(s, ErrorKind::kUnsupportedRpcVersion)) << s;
  EXPECT_EQ(s.message(), "Specified RPC version, 2.1, not supported by this endpoint. This "
                         "service serves namespace \"\" at 1.3, 2.0.");
  EXPECT_EQ(GetErrorField(s, "version"), "2.1");
  EXPECT_EQ(GetErrorField(s, "served"), "1.3, 2.0");
  absl::Status admin = RunMethod(d, Msg("m", "4.0", {}, "admin")).status;
  EXPECT_THAT(std::string(admin.message()), HasSubstr("serves namespace \"admin\" at 5.0."));
}

TEST(DispatcherTest, NestedContainerArgumentsNameTheElement) {
  Dispatcher d;
  ZRPC_ASSERT_OK(d.Add(Endpoint{}.Method(
      "sum", {"xs", "grid", "tag"},
      [](std::vector<int64_t> xs, std::optional<std::vector<std::vector<double>>> grid,
         std::optional<std::string> tag) { return static_cast<int64_t>(xs.size()); })));
  EXPECT_EQ(RunMethod(d, Msg("sum", "", {{"xs", Array{1, 2}}})).values, std::vector<Value>{2});
  EXPECT_EQ(RunMethod(d, Msg("sum", "", {{"xs", Array{1, "x"}}})).status.message(),
            "argument \"xs\"[1] of method \"sum\": expected integer, got string");
  EXPECT_EQ(
      RunMethod(d, Msg("sum", "", {{"xs", Array{}}, {"grid", Array{Array{1.5}, Array{2, nullptr}}}}))
          .status.message(),
      "argument \"grid\"[1][1] of method \"sum\": expected number, got null");
  EXPECT_EQ(RunMethod(d, Msg("sum", "", {{"xs", "1,2"}})).status.message(),
            "argument \"xs\" of method \"sum\": expected array of integer, got string");
  EXPECT_EQ(RunMethod(d, Msg("sum", "", {{"xs", Array{}}, {"tag", 5}})).status.message(),
            "argument \"tag\" of method \"sum\": expected string or null, got integer");
  EXPECT_EQ(RunMethod(d, Msg("sum")).status.message(),
            "missing argument \"xs\" of method \"sum\" (expected array of integer)");
}

TEST(DispatcherTest, TypedMethodsDescribeTheirSignatures) {
  Endpoint ep;
  ep.Method("add", {"a", "b"}, [](int64_t a, int64_t b) { return a + b; })
      .Method("greet", {"name", "loud"},
              [](CallContext&, const std::string& name, std::optional<bool> loud)
                  -> absl::StatusOr<std::string> { return name; })
      .Method("ids", {}, [] { return std::vector<uint32_t>{1}; })
      .Method("nothing", {"v"}, [](Value) -> absl::Status { return absl::OkStatus(); })
      .Method("echo", Returns(1))
      .Stream("count", [](CallContext&, const Object&, StreamWriter&) { return absl::OkStatus(); });
  absl::StatusOr<Value> got = ParseJson(*ToJson(Value(ep.Signatures())));
  ZRPC_ASSERT_OK(got);
  absl::StatusOr<Value> want = ParseJson(R"([
    {"name":"add","args":[{"name":"a","type":"integer"},{"name":"b","type":"integer"}],
     "returns":"integer","stream":false},
    {"name":"count","stream":true},
    {"name":"echo","stream":false},
    {"name":"greet","args":[{"name":"name","type":"string"},
                            {"name":"loud","type":"boolean","optional":true}],
     "returns":"string","stream":false},
    {"name":"ids","args":[],"returns":"array of integer","stream":false},
    {"name":"nothing","args":[{"name":"v","type":"any"}],"returns":"null","stream":false}])");
  ZRPC_ASSERT_OK(want);
  EXPECT_EQ(*got, *want) << *ToJson(*got);
}

TEST(DispatcherTest, MalformedRequestedVersionIsInvalidArgument) {
  Dispatcher d;
  ZRPC_ASSERT_OK(d.Add(Endpoint{}.Method("m", Returns(1))));
  ZRPC_EXPECT_ERROR(RunMethod(d, Msg("m", "abc")).status, kInvalid, "invalid RPC version \"abc\"");
}

TEST(DispatcherTest, AddRejectsBadEndpoints) {
  Dispatcher d;
  ZRPC_EXPECT_ERROR(d.Add(Endpoint{.version = "one"}), kInvalid, "invalid RPC version");
  ZRPC_EXPECT_ERROR(d.Add(Endpoint{.ns = "_zrpc"}), kInvalid, "reserved");
  ZRPC_EXPECT_ERROR(d.Add(Endpoint{}.Method("", Returns(1))), kInvalid, "must not be empty");
  ZRPC_EXPECT_ERROR(d.Add(Endpoint{}.Method("x", UnaryHandler())), kInvalid, "has no handler");
  ZRPC_EXPECT_ERROR(d.Add(Endpoint{}.Method("add", {"a"}, [](int a, int b) { return a + b; })),
                    kInvalid, "2 parameters but 1 argument names");
  ZRPC_EXPECT_ERROR(d.Add(Endpoint{}.Method("add", {"a", "a"}, [](int a, int b) { return a + b; })),
                    kInvalid, "given twice");
  EXPECT_TRUE(d.endpoints().empty());
}

// A restriction that lost its names must not leave the method open to every caller.
TEST(DispatcherTest, ARestrictionWithNoIdentitiesIsRejectedNotOpen) {
  Dispatcher d;
  ZRPC_EXPECT_ERROR(d.Add(Endpoint{}.Method("sleep", Returns(1)).Allow("sleep", {})), kInvalid,
                    "Allow(\"sleep\"): an empty list of identities and groups");
  ZRPC_EXPECT_ERROR(d.Add(Endpoint{}.Method("sleep", Returns(1)).Allow("nap", {"ops"})), kInvalid,
                    "no such method");
  ZRPC_EXPECT_ERROR(d.Add(Endpoint{}.Method("sleep", Returns(1)).Allow("sleep", {"ops", ""})),
                    kInvalid, "allowed identity or group");
  EXPECT_TRUE(d.endpoints().empty());
  ZRPC_ASSERT_OK(d.Add(Endpoint{}.Method("sleep", Returns(1)).Allow("sleep", {"ops"})));
  ASSERT_EQ(d.endpoints().size(), 1u);
  EXPECT_EQ(d.endpoints()[0]->methods.at("sleep").allowed, std::vector<std::string>{"ops"});
}

TEST(DispatcherTest, HandlerFailuresBecomeStatusesNeverCrashes) {
  Dispatcher d;
  ZRPC_ASSERT_OK(d.Add(
      Endpoint{}
          .Method("status", [](CallContext&, const Object&) -> absl::StatusOr<Value> {
            return absl::NotFoundError("no such thing");
          })
          .Method("throws", [](CallContext&, const Object&) -> absl::StatusOr<Value> {
            throw std::invalid_argument("bad input");
          })
          .Method("throws_int", [](CallContext&, const Object&) -> absl::StatusOr<Value> {
            throw 42;
          })));
  Outcome s = RunMethod(d, Msg("status"));
  EXPECT_EQ(s.status.code(), absl::StatusCode::kNotFound);
  Outcome t = RunMethod(d, Msg("throws"));
  EXPECT_EQ(t.status.code(), absl::StatusCode::kUnknown);
  absl::StatusOr<Value> wire = ParseJson(SerializeRemoteException(t.status));
  ZRPC_ASSERT_OK(wire);
  EXPECT_EQ(wire->Find("class")->AsString(), "invalid_argument");
  EXPECT_EQ(wire->Find("module")->AsString(), "std");
  EXPECT_EQ(wire->Find("message")->AsString(), "bad input");
  EXPECT_EQ(RunMethod(d, Msg("throws_int")).status.code(), absl::StatusCode::kUnknown);
}

TEST(DispatcherTest, StreamsEmitEachValueInOrderAndStopWhenAsked) {
  Dispatcher d;
  ZRPC_ASSERT_OK(d.Add(Endpoint{}.Stream(
      "count", [](CallContext&, const Object& args, StreamWriter& out) -> absl::Status {
        for (int64_t i = 0; i < args.Find("n")->AsInt(); ++i) {
          if (!out.Write(i)) return absl::CancelledError("stopped");
        }
        return absl::OkStatus();
      })));
  Outcome o = RunMethod(d, Msg("count", "", {{"n", 3}}));
  ZRPC_ASSERT_OK(o.status);
  EXPECT_EQ(o.values, (std::vector<Value>{0, 1, 2}));

  CallContext ctx;
  Message m = Msg("count", "", {{"n", 100}});
  int seen = 0;
  absl::Status st = d.Dispatch(ctx, m, [&](Value) { return ++seen < 2; });
  EXPECT_EQ(seen, 2);
  EXPECT_EQ(st.code(), absl::StatusCode::kCancelled);
}

TEST(DispatcherTest, CancelledCallStopsAStream) {
  Dispatcher d;
  ZRPC_ASSERT_OK(d.Add(Endpoint{}.Stream(
      "forever", [](CallContext& ctx, const Object&, StreamWriter& out) -> absl::Status {
        for (int i = 0;; ++i) {
          if (i == 5) ctx.Cancel();
          if (!out.Write(i)) return absl::OkStatus();
        }
      })));
  Outcome o = RunMethod(d, Msg("forever"));
  ZRPC_EXPECT_OK(o.status);
  EXPECT_EQ(o.values.size(), 5u);
}

TEST(DispatcherTest, TypedHandlersConvertAndCheckArguments) {
  Dispatcher d;
  ZRPC_ASSERT_OK(d.Add(
      Endpoint{}
          .Method("add", {"a", "b"}, [](int a, int b) { return a + b; })
          .Method("scale", {"v", "by"},
                  [](std::vector<double> v, std::optional<double> by) {
                    for (double& x : v) x *= by.value_or(2.0);
                    return v;
                  })
          .Method("greet", {"name"},
                  [](CallContext& ctx, std::string name) -> absl::StatusOr<std::string> {
                    if (name.empty()) return absl::InvalidArgumentError("empty name");
                    return "hello " + name + " from " + ctx.method();
                  })
          .Method("nothing", {}, [] {})));
  EXPECT_EQ(RunMethod(d, Msg("add", "", {{"a", 2}, {"b", 40}})).values, std::vector<Value>{42});
  EXPECT_EQ(RunMethod(d, Msg("scale", "", {{"v", Array{1, 2.5}}})).values,
            std::vector<Value>{Value(Array{2.0, 5.0})});
  EXPECT_EQ(RunMethod(d, Msg("scale", "", {{"v", Array{1}}, {"by", 3}})).values,
            std::vector<Value>{Value(Array{3.0})});
  EXPECT_EQ(RunMethod(d, Msg("greet", "", {{"name", "bob"}})).values,
            std::vector<Value>{Value("hello bob from greet")});
  ZRPC_EXPECT_ERROR(RunMethod(d, Msg("greet", "", {{"name", ""}})).status, kInvalid, "empty name");
  EXPECT_EQ(RunMethod(d, Msg("nothing")).values, std::vector<Value>{Value()});

  ZRPC_EXPECT_ERROR(RunMethod(d, Msg("add", "", {{"a", 1}})).status, kInvalid,
                    "missing argument \"b\" of method \"add\"");
  ZRPC_EXPECT_ERROR(RunMethod(d, Msg("add", "", {{"a", 1}, {"b", 2}, {"c", 3}})).status, kInvalid,
                    "unexpected argument \"c\" of method \"add\"");
  ZRPC_EXPECT_ERROR(RunMethod(d, Msg("add", "", {{"a", "1"}, {"b", 2}})).status, kInvalid,
                    "argument \"a\" of method \"add\": expected integer, got string");
  ZRPC_EXPECT_ERROR(RunMethod(d, Msg("add", "", {{"a", 1.5}, {"b", 2}})).status, kInvalid,
                    "expected integer, got double");
  ZRPC_EXPECT_ERROR(RunMethod(d, Msg("add", "", {{"a", int64_t{1} << 40}, {"b", 2}})).status, kInvalid,
                    "expected integer in [-2147483648, 2147483647], got 1099511627776");
  // The element is named, not the array ("must be an array, got array" was the old text).
  EXPECT_EQ(RunMethod(d, Msg("scale", "", {{"v", Array{1, "x"}}})).status.message(),
            "argument \"v\"[1] of method \"scale\": expected number, got string");
}

class Doubler : public Serializer {
 public:
  absl::StatusOr<Value> SerializeEntity(const Context&, Value v) override {
    if (v.is_int()) return Value(v.AsInt() * 10);
    return v;
  }
  absl::StatusOr<Value> DeserializeEntity(const Context&, Value v) override {
    if (v.is_string() && v.AsString() == "poison") return absl::InvalidArgumentError("poisoned");
    if (v.is_int()) return Value(v.AsInt() * 2);
    return v;
  }
  Context DeserializeContext(Object values) override {
    values.Set("seen_by_serializer", true);
    return Context(std::move(values));
  }
};

TEST(DispatcherTest, SerializerHooksWrapArgumentsResultsAndContext) {
  Dispatcher d(std::make_shared<Doubler>());
  ZRPC_ASSERT_OK(d.Add(Endpoint{}.Method(
      "echo", [](CallContext& ctx, const Object& args) -> absl::StatusOr<Value> {
        EXPECT_TRUE(ctx.context().Find("seen_by_serializer")->AsBool());
        EXPECT_EQ(CallContext::Current(), &ctx);
        return *args.Find("x");
      })));
  // x=2 → deserialized to 4 → serialized to 40.
  EXPECT_EQ(RunMethod(d, Msg("echo", "", {{"x", 2}})).values, std::vector<Value>{40});
  ZRPC_EXPECT_ERROR(RunMethod(d, Msg("echo", "", {{"x", "poison"}})).status, kInvalid,
                    "argument \"x\": poisoned");
  EXPECT_EQ(CallContext::Current(), nullptr);
}

struct MyExpected : std::runtime_error {
  using std::runtime_error::runtime_error;
};
struct MySubclass : MyExpected {
  using MyExpected::MyExpected;
};

TEST(DispatcherTest, ClientExceptionsMarksOnlyTheExactTypes) {
  Dispatcher d;
  ZRPC_ASSERT_OK(d.Add(
      Endpoint{}
          .Method("expected", ClientExceptions<MyExpected>(
                                  [](CallContext&, const Object&) -> absl::StatusOr<Value> {
                                    throw MyExpected("not found, as expected");
                                  }))
          .Method("subclass", ClientExceptions<MyExpected>(
                                  [](CallContext&, const Object&) -> absl::StatusOr<Value> {
                                    throw MySubclass("a subclass");
                                  }))));
  Outcome e = RunMethod(d, Msg("expected"));
  EXPECT_TRUE(IsExpected(e.status)) << e.status;
  EXPECT_THAT(SerializeRemoteException(e.status), HasSubstr("MyExpected"));
  Outcome s = RunMethod(d, Msg("subclass"));
  EXPECT_FALSE(s.status.ok());
  EXPECT_FALSE(IsExpected(s.status));
}

}  // namespace
}  // namespace zrpc
