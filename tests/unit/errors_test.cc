// SPDX-License-Identifier: Apache-2.0
#include "zrpc/errors.h"

#include "test_util.h"
#include "zrpc/value.h"

namespace zrpc {
namespace {

using ::testing::HasSubstr;

TEST(ErrorsTest, KindsHaveTheSeedTextsFieldsAndCodes) {
  struct Case {
    absl::Status status;
    ErrorKind kind;
    absl::StatusCode code;
    std::string text;
  } cases[] = {
      {RpcExceptionError(), ErrorKind::kRpcException, absl::StatusCode::kInternal,
       "An unknown RPC related exception occurred."},
      {RemoteError("ValueError", "bad", "tb1\ntb2"), ErrorKind::kRemoteError,
       absl::StatusCode::kUnknown, "Remote error: ValueError bad\ntb1\ntb2."},
      {TimeoutError("compute", "add", "slow"), ErrorKind::kTimeout,
       absl::StatusCode::kDeadlineExceeded,
       "Timeout while waiting on RPC response - topic: \"compute\", RPC method: \"add\" info: \"slow\""},
      {TimeoutError("", "", ""), ErrorKind::kTimeout, absl::StatusCode::kDeadlineExceeded,
       "Timeout while waiting on RPC response - topic: \"<unknown>\", RPC method: \"<unknown>\" "
       "info: \"<unknown>\""},
      {NoConsumerError("compute"), ErrorKind::kNoConsumer, absl::StatusCode::kNotFound,
       "No consumer registered for topic \"compute\""},
      {PeerLostError("compute", "node1"), ErrorKind::kPeerLost, absl::StatusCode::kUnavailable,
       "Lost contact with \"node1\" while waiting on RPC response for topic \"compute\""},
      {NoSuchMethodError("frob"), ErrorKind::kNoSuchMethod, absl::StatusCode::kUnimplemented,
       "Endpoint does not support RPC method frob"},
      {UnsupportedRpcVersionError("4.0"), ErrorKind::kUnsupportedRpcVersion,
       absl::StatusCode::kFailedPrecondition,
       "Specified RPC version, 4.0, not supported by this endpoint."},
      {UnsupportedRpcEnvelopeVersionError("3.0"), ErrorKind::kUnsupportedRpcEnvelopeVersion,
       absl::StatusCode::kFailedPrecondition,
       "Specified RPC envelope version, 3.0, not supported by this endpoint."},
      {RpcVersionCapError("1.2"), ErrorKind::kRpcVersionCapError,
       absl::StatusCode::kFailedPrecondition, "Specified RPC version cap, 1.2, is too low"},
      {DuplicateMessageError("abc"), ErrorKind::kDuplicateMessage,
       absl::StatusCode::kAlreadyExists, "Found duplicate message(abc). Skipping it."},
      {InvalidRpcConnectionReuseError(), ErrorKind::kInvalidRpcConnectionReuse,
       absl::StatusCode::kFailedPrecondition, "Invalid reuse of an RPC connection."},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.text);
    EXPECT_EQ(GetErrorKind(c.status), c.kind);
    EXPECT_EQ(c.status.code(), c.code);
    EXPECT_EQ(c.status.message(), c.text);
    EXPECT_FALSE(IsRemote(c.status));
    EXPECT_EQ(ErrorKindFromName(ErrorKindName(c.kind)), c.kind);
  }
  EXPECT_EQ(GetErrorField(TimeoutError("t", "m", "i"), "method"), "m");
  EXPECT_EQ(GetErrorField(PeerLostError("t", "h"), "host"), "h");
  EXPECT_EQ(GetErrorField(RemoteError("T", "v", "tb"), "exc_type"), "T");
  EXPECT_EQ(GetErrorField(NoConsumerError("t"), "nothing"), "");
  EXPECT_EQ(GetErrorKind(absl::OkStatus()), std::nullopt);
  EXPECT_EQ(GetErrorKind(absl::NotFoundError("x")), std::nullopt);
}

TEST(RemoteExceptionTest, ZrpcKindsComeBackAsTheSameKindMarkedRemote) {
  absl::Status original = TimeoutError("compute", "add", "nested call");
  std::string wire = SerializeRemoteException(original);
  absl::StatusOr<Value> json = ParseJson(wire);
  ZRPC_ASSERT_OK(json);
  EXPECT_EQ(json->Find("class")->AsString(), "Timeout");
  EXPECT_EQ(json->Find("module")->AsString(), "zrpc");
  for (const char* key : {"message", "tb", "args", "kwargs"}) EXPECT_NE(json->Find(key), nullptr);
  EXPECT_EQ(json->Find("kwargs")->Find("topic")->AsString(), "compute");

  absl::Status back = DeserializeRemoteException(wire);
  EXPECT_TRUE(IsErrorKind(back, ErrorKind::kTimeout));
  EXPECT_TRUE(IsRemote(back));
  EXPECT_EQ(back.code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_EQ(back.message(), original.message());
  EXPECT_EQ(GetErrorField(back, "method"), "add");
}

TEST(RemoteExceptionTest, PlainStatusesKeepTheirCode) {
  absl::Status back = DeserializeRemoteException(
      SerializeRemoteException(absl::PermissionDeniedError("not yours")));
  EXPECT_TRUE(IsErrorKind(back, ErrorKind::kRemoteError));
  EXPECT_EQ(back.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(GetErrorField(back, "exc_type"), "PERMISSION_DENIED");
  EXPECT_EQ(GetErrorField(back, "value"), "not yours");
}

TEST(RemoteExceptionTest, ExceptionsTravelWithTheirType) {
  absl::Status local = ExceptionError("std", "runtime_error", "boom");
  absl::StatusOr<Value> json = ParseJson(SerializeRemoteException(local));
  ZRPC_ASSERT_OK(json);
  EXPECT_EQ(json->Find("class")->AsString(), "runtime_error");
  EXPECT_EQ(json->Find("module")->AsString(), "std");
  EXPECT_EQ(json->Find("message")->AsString(), "boom");
  absl::Status back = DeserializeRemoteException(SerializeRemoteException(local));
  EXPECT_TRUE(IsErrorKind(back, ErrorKind::kRemoteError));
  EXPECT_EQ(back.message(), "Remote error: runtime_error boom");  // no stray "\n." without a traceback
}

TEST(RemoteExceptionTest, AFailureWithoutAMessageIsARemoteErrorWithAnEmptyValue) {
  absl::Status back = DeserializeRemoteException(R"({"class":"KeyError","module":"exceptions","tb":[]})");
  EXPECT_TRUE(IsErrorKind(back, ErrorKind::kRemoteError)) << back;
  EXPECT_EQ(GetErrorField(back, "exc_type"), "KeyError");
  EXPECT_EQ(GetErrorField(back, "value"), "");
  EXPECT_TRUE(IsErrorKind(DeserializeRemoteException(R"({"class":"X","message":5})"),
                          ErrorKind::kRpcException));
}

TEST(RemoteExceptionTest, ForeignFailuresBecomeRemoteErrorsWithTraceback) {
  // What a Python service of the seed sends.
  absl::Status back = DeserializeRemoteException(
      R"({"class":"FakeIDontExistException","module":"nova.exception","message":"it broke",)"
      R"("tb":["Traceback:","  line 1"],"args":[],"kwargs":{}})");
  EXPECT_TRUE(IsErrorKind(back, ErrorKind::kRemoteError));
  EXPECT_TRUE(IsRemote(back));
  EXPECT_EQ(back.code(), absl::StatusCode::kUnknown);
  EXPECT_THAT(std::string(back.message()), ::testing::StartsWith("Remote error: FakeIDontExistException"));
  EXPECT_EQ(GetErrorField(back, "traceback"), "Traceback:\n  line 1");
}

TEST(RemoteExceptionTest, ResentRemoteErrorsKeepTheirOriginalClass) {
  // The cell-hop rule: a failure passed on by a middle service still names the first class.
  absl::Status first = DeserializeRemoteException(
      R"({"class":"ValueError","module":"exceptions","message":"bad","tb":["l1"],"args":[],"kwargs":{}})");
  absl::StatusOr<Value> resent = ParseJson(SerializeRemoteException(first));
  ZRPC_ASSERT_OK(resent);
  EXPECT_EQ(resent->Find("class")->AsString(), "ValueError");
  EXPECT_EQ(resent->Find("module")->AsString(), "exceptions");
  EXPECT_EQ(resent->Find("message")->AsString(), "bad");
  absl::Status second = DeserializeRemoteException(SerializeRemoteException(first));
  EXPECT_EQ(second.message(), first.message());
  // Python's dynamic "<Class>_Remote" subclasses lose the suffix.
  absl::Status hop = DeserializeRemoteException(
      R"({"class":"ValueError_Remote","module":"exceptions_Remote","message":"bad","tb":[],"args":[],"kwargs":{}})");
  EXPECT_EQ(GetErrorField(hop, "exc_type"), "ValueError");
}

TEST(RemoteExceptionTest, MalformedFailuresAreClearErrors) {
  for (const char* bad : {"", "not json", "[]", R"({"class":1,"message":"x"})", R"({"class":"X","message":5})"}) {
    absl::Status s = DeserializeRemoteException(bad);
    EXPECT_TRUE(IsErrorKind(s, ErrorKind::kRpcException)) << bad;
    EXPECT_THAT(std::string(s.message()), HasSubstr("malformed remote failure"));
  }
}

TEST(ExpectedErrorTest, MarkExpectedKeepsKindAndFields) {
  absl::Status s = MarkExpected(NoSuchMethodError("x"));
  EXPECT_TRUE(IsExpected(s));
  EXPECT_TRUE(IsErrorKind(s, ErrorKind::kNoSuchMethod));
  EXPECT_EQ(GetErrorField(s, "method"), "x");
  EXPECT_TRUE(IsExpected(MarkExpected(absl::NotFoundError("y"))));
  EXPECT_FALSE(IsExpected(absl::NotFoundError("y")));
  EXPECT_TRUE(MarkExpected(absl::OkStatus()).ok());
}

TEST(RemoteExceptionTest, ArgsAndKwargsAreReadableAndSentOnWhenPassedThrough) {
  absl::Status received = DeserializeRemoteException(
      R"({"class":"QuotaError","module":"billing.errors","message":"over quota","tb":["l1"],)"
      R"("args":["acct-7",3],"kwargs":{"limit":10,"unit":"GB"}})");
  EXPECT_EQ(RemoteErrorArgs(received), Value(Array{"acct-7", 3}));
  EXPECT_EQ(RemoteErrorKwargs(received), Value(Object{{"limit", 10}, {"unit", "GB"}}));
  // A handler returning the status to its own caller sends them on unchanged.
  absl::StatusOr<Value> resent = ParseJson(SerializeRemoteException(received));
  ZRPC_ASSERT_OK(resent);
  EXPECT_EQ(*resent->Find("args"), Value(Array{"acct-7", 3}));
  EXPECT_EQ(*resent->Find("kwargs"), Value(Object{{"limit", 10}, {"unit", "GB"}}));
  absl::Status again = DeserializeRemoteException(SerializeRemoteException(received));
  EXPECT_EQ(RemoteErrorKwargs(again), RemoteErrorKwargs(received));
  EXPECT_EQ(RemoteErrorArgs(again), RemoteErrorArgs(received));
  // zrpc's own kinds keep extra kwargs beside their fields.
  absl::Status kind = DeserializeRemoteException(
      R"({"class":"NoSuchMethod","module":"zrpc","message":"m","tb":[],"args":[1],)"
      R"("kwargs":{"method":"frob","code":12,"hint":"try add"}})");
  EXPECT_TRUE(IsErrorKind(kind, ErrorKind::kNoSuchMethod));
  EXPECT_EQ(RemoteErrorKwargs(kind).Find("hint")->AsString(), "try add");
  absl::StatusOr<Value> kind_resent = ParseJson(SerializeRemoteException(kind));
  ZRPC_ASSERT_OK(kind_resent);
  EXPECT_EQ(kind_resent->Find("kwargs")->Find("hint")->AsString(), "try add");
  EXPECT_EQ(kind_resent->Find("kwargs")->Find("method")->AsString(), "frob");
  EXPECT_EQ(*kind_resent->Find("args"), Value(Array{1}));
  // Local statuses have none, unless given.
  EXPECT_EQ(RemoteErrorArgs(absl::NotFoundError("x")), Value(Array{}));
  EXPECT_EQ(RemoteErrorKwargs(TimeoutError("t", "m", "i")), Value(Object{}));
  absl::Status mine = WithErrorArgs(absl::NotFoundError("no user"), Array{"bob"}, {{"id", 7}});
  absl::StatusOr<Value> sent = ParseJson(SerializeRemoteException(mine));
  ZRPC_ASSERT_OK(sent);
  EXPECT_EQ(*sent->Find("args"), Value(Array{"bob"}));
  EXPECT_EQ(sent->Find("kwargs")->Find("id")->AsInt(), 7);
  EXPECT_EQ(sent->Find("kwargs")->Find("code")->AsInt(), 5);
  EXPECT_TRUE(WithErrorArgs(absl::OkStatus(), Array{1}, {}).ok());
}

TEST(FormatErrorTest, ShowsTypeValueAndTracebackWithoutThePayload) {
  absl::Status remote = DeserializeRemoteException(
      R"({"class":"ValueError","module":"exceptions","message":"bad input",)"
      R"("tb":["Traceback (most recent call last):","  File \"x.py\", line 1"],"args":[],"kwargs":{}})");
  EXPECT_EQ(FormatError(remote),
            "ValueError: bad input\nTraceback (most recent call last):\n  File \"x.py\", line 1");
  EXPECT_EQ(FormatError(DeserializeRemoteException(R"({"class":"KeyError","tb":[]})")), "KeyError");
  EXPECT_EQ(FormatError(NoSuchMethodError("frob")),
            "NoSuchMethod: Endpoint does not support RPC method frob");
  EXPECT_EQ(FormatError(ExceptionError("std", "runtime_error", "boom")), "runtime_error: boom");
  EXPECT_EQ(FormatError(absl::InvalidArgumentError("no")), "INVALID_ARGUMENT: no");
  EXPECT_EQ(FormatError(absl::OkStatus()), "OK");
  for (const absl::Status& s : {remote, NoSuchMethodError("frob")}) {
    EXPECT_THAT(FormatError(s), ::testing::Not(HasSubstr("zrpc.dev")));
  }
}

TEST(ErrorsTest, VersionAndNamespaceErrorsSayWhatIsServed) {
  absl::Status v = UnsupportedRpcVersionError("2.1", "", "1.3");
  EXPECT_EQ(v.message(),
            "Specified RPC version, 2.1, not supported by this endpoint. This service serves "
            "namespace \"\" at 1.3.");
  EXPECT_EQ(GetErrorField(v, "served"), "1.3");
  absl::Status ns = NamespaceNotServedError("other", "m", "\"\", \"admin\"");
  EXPECT_TRUE(IsErrorKind(ns, ErrorKind::kNoSuchMethod));
  EXPECT_EQ(ns.message(),
            "Endpoint does not support RPC method m: namespace \"other\" is not served here (it "
            "serves \"\", \"admin\")");
  EXPECT_EQ(GetErrorField(ns, "namespace"), "other");
}

}  // namespace
}  // namespace zrpc
