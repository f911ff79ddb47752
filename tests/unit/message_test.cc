// SPDX-License-Identifier: Apache-2.0
#include "zrpc/message.h"

#include "codec/json_internal.h"
#include "test_util.h"
#include "zrpc/errors.h"

namespace zrpc {
namespace {

constexpr auto kInvalid = absl::StatusCode::kInvalidArgument;

Message SampleMessage() {
  Message m;
  m.method = "add";
  m.args = Object{{"a", 1}, {"b", Array{1.5, "x"}}};
  m.version = "1.3";
  m.ns = "compute";
  m.msg_id = "m1";
  m.unique_id = NewUniqueId();
  m.timeout_ms = 5000;
  m.context = Context(Object{{"user", "alice"}, {"roles", Array{"member"}}});
  return m;
}

TEST(EnvelopeTest, SerializeMsgAlwaysWritesThe20Envelope) {
  absl::StatusOr<std::string> wire = SerializeMsg(Value(Object{{"method", "x"}}));
  ZRPC_ASSERT_OK(wire);
  EXPECT_EQ(*wire, R"({"oslo.version":"2.0","oslo.message":"{\"method\":\"x\"}"})");
  absl::StatusOr<Value> outer = ParseJson(*wire);
  ZRPC_ASSERT_OK(outer);
  absl::StatusOr<Value> inner = DeserializeMsg(*outer);
  ZRPC_ASSERT_OK(inner);
  EXPECT_EQ(*inner, Value(Object{{"method", "x"}}));
}

TEST(EnvelopeTest, DeserializeMsgPassesNonEnvelopesThrough) {
  // The seed's test: 1, [], {}, 'foo' come back unchanged; so does a dict lacking either key.
  for (const Value& v : {Value(1), Value(Array{}), Value(Object{}), Value("foo"),
                         Value(Object{{"oslo.version", "2.0"}}),
                         Value(Object{{"oslo.message", "{}"}, {"method", "x"}})}) {
    absl::StatusOr<Value> out = DeserializeMsg(v);
    ZRPC_ASSERT_OK(out);
    EXPECT_EQ(*out, v);
  }
}

TEST(EnvelopeTest, RejectsUnknownEnvelopeVersions) {
  for (const char* version : {"8675309.0", "1.0", "3.0", "abc", "2.0.0.0"}) {
    absl::Status s = DeserializeMsg(Value(Object{{"oslo.version", version}, {"oslo.message", "{}"}}))
                         .status();
    EXPECT_TRUE(IsErrorKind(s, ErrorKind::kUnsupportedRpcEnvelopeVersion)) << s;
    EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
    EXPECT_EQ(s.message(), std::string("Specified RPC envelope version, ") + version +
                               ", not supported by this endpoint.");
    EXPECT_EQ(GetErrorField(s, "version"), version);
  }
  // A newer minor is refused too: this endpoint implements 2.0.
  EXPECT_FALSE(DeserializeMsg(Value(Object{{"oslo.version", "2.1"}, {"oslo.message", "{}"}})).ok());
  absl::Status numeric =
      DeserializeMsg(Value(Object{{"oslo.version", 2}, {"oslo.message", "{}"}})).status();
  EXPECT_TRUE(IsErrorKind(numeric, ErrorKind::kUnsupportedRpcEnvelopeVersion)) << numeric;
}

TEST(EnvelopeTest, RejectsNonTextOrInvalidInnerMessage) {
  ZRPC_EXPECT_ERROR(DeserializeMsg(Value(Object{{"oslo.version", "2.0"}, {"oslo.message", 5}})),
                    kInvalid, "oslo.message");
  ZRPC_EXPECT_ERROR(DeserializeMsg(Value(Object{{"oslo.version", "2.0"}, {"oslo.message", "{"}})),
                    kInvalid, "invalid JSON");
}

TEST(MessageTest, EncodeDecodeRoundTripsEveryField) {
  Message m = SampleMessage();
  absl::StatusOr<std::string> wire = EncodeMessage(m);
  ZRPC_ASSERT_OK(wire);
  absl::StatusOr<Message> back = DecodeMessage(*wire);
  ZRPC_ASSERT_OK(back);
  EXPECT_EQ(back->method, m.method);
  EXPECT_EQ(Value(back->args), Value(m.args));
  EXPECT_EQ(back->version, "1.3");
  EXPECT_EQ(back->ns, "compute");
  EXPECT_EQ(back->msg_id, "m1");
  EXPECT_EQ(back->unique_id, m.unique_id);
  EXPECT_EQ(back->timeout_ms, 5000);
  EXPECT_EQ(back->context, m.context);
}

TEST(MessageTest, EncodeMessageEqualsSerializeMsgOfPackMessage) {
  Message m = SampleMessage();
  absl::StatusOr<Value> packed = PackMessage(m);
  ZRPC_ASSERT_OK(packed);
  EXPECT_EQ(packed->Find("_context_user")->AsString(), "alice");
  EXPECT_EQ(packed->Find("_timeout")->AsInt(), 5000);
  EXPECT_EQ(*SerializeMsg(*packed), *EncodeMessage(m));
  absl::StatusOr<Message> unpacked = UnpackMessage(*packed);
  ZRPC_ASSERT_OK(unpacked);
  EXPECT_EQ(unpacked->context, m.context);
}

TEST(MessageTest, TheBareFormIsTheMessageObjectAndWrapsIntoTheSameEnvelope) {
  Message m = SampleMessage();
  m.args.Set("q", "quote \" backslash \\ newline \n tab \t nul \x01 \u00e9");
  absl::StatusOr<std::string> bare = internal::EncodeBareMessage(m);
  ZRPC_ASSERT_OK(bare);
  EXPECT_EQ(*bare, *ToJson(*PackMessage(m)));
  absl::StatusOr<Message> back = DecodeMessage(*bare);
  ZRPC_ASSERT_OK(back);
  EXPECT_EQ(Value(back->args), Value(m.args));
  EXPECT_EQ(back->context, m.context);
  // Wrapped afterwards, it is byte for byte what EncodeMessage writes in one pass.
  std::string wrapped = "kept:";
  internal::AppendEnvelope(*bare, &wrapped);
  EXPECT_EQ(wrapped, "kept:" + *EncodeMessage(m));
}

TEST(MessageTest, TheReplyFormAskedForTravelsAndUnknownFormsAreIgnored) {
  Message m = SampleMessage();
  m.bare_reply = true;
  absl::StatusOr<std::string> wire = internal::EncodeBareMessage(m);
  ZRPC_ASSERT_OK(wire);
  EXPECT_NE(wire->find(R"("_reply_form":"message")"), std::string::npos) << *wire;
  absl::StatusOr<Message> back = DecodeMessage(*wire);
  ZRPC_ASSERT_OK(back);
  EXPECT_TRUE(back->bare_reply);
  // Not asked: not written, not set.
  m.bare_reply = false;
  back = DecodeMessage(*EncodeMessage(m));
  ZRPC_ASSERT_OK(back);
  EXPECT_FALSE(back->bare_reply);
  // A form this side does not know: the envelope; a non-string: an error naming the field.
  back = DecodeMessage(R"({"method":"m","_reply_form":"cbor-2030"})");
  ZRPC_ASSERT_OK(back);
  EXPECT_FALSE(back->bare_reply);
  absl::StatusOr<Message> bad = DecodeMessage(R"({"method":"m","_reply_form":1})");
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(std::string(bad.status().message()).find("_reply_form"), std::string::npos);
}

TEST(ReplyTest, ABareReplyDecodesAsTheEnvelopedOne) {
  for (const Reply& r : {Reply{.result = Value(Object{{"x", "quote \" \n"}}), .ending = true,
                               .msg_id = "m1"},
                         Reply{.failure = std::string(R"({"class":"E","message":"m"})"),
                               .ending = true, .msg_id = "m2"}}) {
    absl::StatusOr<std::string> bare = internal::EncodeBareReply(r);
    ZRPC_ASSERT_OK(bare);
    EXPECT_EQ(bare->rfind(R"({"result":)", 0), 0u) << *bare;
    absl::StatusOr<Reply> a = DecodeReply(*bare);
    absl::StatusOr<Reply> b = DecodeReply(*EncodeReply(r));
    ZRPC_ASSERT_OK(a);
    ZRPC_ASSERT_OK(b);
    EXPECT_EQ(a->result, b->result);
    EXPECT_EQ(a->failure, b->failure);
    EXPECT_EQ(a->ending, b->ending);
    EXPECT_EQ(a->msg_id, b->msg_id);
  }
}

TEST(MessageTest, AcceptsBare10MessagesAndMissingArgs) {
  absl::StatusOr<Message> m = DecodeMessage(R"({"method":"ping"})");
  ZRPC_ASSERT_OK(m);
  EXPECT_EQ(m->method, "ping");
  EXPECT_TRUE(m->args.empty());
  EXPECT_EQ(m->version, "");
  EXPECT_FALSE(m->ns.has_value());
  EXPECT_FALSE(m->timeout_ms.has_value());
  m = DecodeMessage(R"({"method":"ping","args":null,"namespace":null,"_reply_q":"x"})");
  ZRPC_ASSERT_OK(m);
  EXPECT_FALSE(m->ns.has_value());
}

TEST(MessageTest, RejectsMalformedFieldsNamingThem) {
  struct Case {
    const char* json;
    const char* expect;
  } cases[] = {
      {R"({"args":{}})", "no \"method\""},
      {R"({"method":""})", "empty"},
      {R"({"method":7})", "\"method\" must be a string, got integer"},
      {R"({"method":"x","args":[1,2]})", "\"args\" must be an object, got array"},
      {R"({"method":"x","args":"a"})", "\"args\" must be an object, got string"},
      {R"({"method":"x","version":1.0})", "\"version\" must be a string"},
      {R"({"method":"x","namespace":[]})", "\"namespace\" must be a string or null"},
      {R"({"method":"x","_msg_id":1})", "\"_msg_id\" must be a string"},
      {R"({"method":"x","_unique_id":{}})", "\"_unique_id\" must be a string"},
      {R"({"method":"x","_timeout":-1})", "\"_timeout\" must be a non-negative integer"},
      {R"({"method":"x","_timeout":1.5})", "\"_timeout\" must be a non-negative integer"},
      {R"([1,2])", "message must be a JSON object, got array"},
      {R"("text")", "message must be a JSON object, got string"},
      {R"({"method":"x","method":"y"})", "duplicate key"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.json);
    ZRPC_EXPECT_ERROR(DecodeMessage(c.json), kInvalid, c.expect);
    // The same inside an envelope.
    absl::StatusOr<std::string> wrapped = ToJson(Value(Object{{"oslo.version", "2.0"}, {"oslo.message", c.json}}));
    ZRPC_ASSERT_OK(wrapped);
    ZRPC_EXPECT_ERROR(DecodeMessage(*wrapped), kInvalid, c.expect);
  }
}

TEST(MessageTest, DecodeRejectsBadWireInput) {
  ZRPC_EXPECT_ERROR(DecodeMessage(R"({"oslo.version":"2.0","oslo.mess)"), kInvalid, "invalid JSON");
  ZRPC_EXPECT_ERROR(DecodeMessage("\xff\xfe"), kInvalid, "UTF-8");
  ZRPC_EXPECT_ERROR(DecodeMessage(std::string(2000, '[') + std::string(2000, ']')), kInvalid,
                    "deeper than 64");
  ZRPC_EXPECT_ERROR(DecodeMessage(R"({"method":"x","args":{"n":1e400}})"), kInvalid, "out of range");
  ZRPC_EXPECT_ERROR(DecodeMessage(R"({"method":"x","args":{"n":18446744073709551616}})"), kInvalid,
                    "out of range");
  absl::Status v = DecodeMessage(R"({"oslo.version":"8675309.0","oslo.message":"{}"})").status();
  EXPECT_TRUE(IsErrorKind(v, ErrorKind::kUnsupportedRpcEnvelopeVersion)) << v;
}

TEST(MessageTest, EncodeRefusesUnencodableValues) {
  Message m;
  m.method = "x";
  m.args.Set("bad", std::string("\xff"));
  ZRPC_EXPECT_ERROR(EncodeMessage(m), kInvalid, "UTF-8");
  m.args = Object{{"d", std::numeric_limits<double>::quiet_NaN()}};
  ZRPC_EXPECT_ERROR(EncodeMessage(m), kInvalid, "NaN");
}

TEST(ReplyTest, RoundTripsResultsAndFailures) {
  Reply r{.result = Value(Array{1, "two"}), .failure = std::nullopt, .ending = true, .msg_id = "m"};
  absl::StatusOr<Reply> back = DecodeReply(*EncodeReply(r));
  ZRPC_ASSERT_OK(back);
  EXPECT_EQ(back->result, r.result);
  EXPECT_TRUE(back->ending);
  EXPECT_EQ(back->msg_id, "m");
  EXPECT_FALSE(back->failure.has_value());

  Reply f{.result = Value(), .failure = SerializeRemoteException(absl::NotFoundError("gone"))};
  back = DecodeReply(*EncodeReply(f));
  ZRPC_ASSERT_OK(back);
  ASSERT_TRUE(back->failure.has_value());
  EXPECT_FALSE(back->ending);
  absl::Status remote = DeserializeRemoteException(*back->failure);
  EXPECT_EQ(remote.code(), absl::StatusCode::kNotFound);
}

TEST(ReplyTest, RejectsMalformedReplies) {
  ZRPC_EXPECT_ERROR(DecodeReply(R"({"result":1,"ending":"yes"})"), kInvalid, "\"ending\" must be a bool");
  ZRPC_EXPECT_ERROR(DecodeReply(R"({"result":1,"failure":3})"), kInvalid, "\"failure\"");
  ZRPC_EXPECT_ERROR(DecodeReply(R"([])"), kInvalid, "reply must be a JSON object");
}

TEST(UniqueIdTest, IsHexAndUnique) {
  std::string a = NewUniqueId(), b = NewUniqueId();
  EXPECT_EQ(a.size(), 32u);
  EXPECT_EQ(a.find_first_not_of("0123456789abcdef"), std::string::npos);
  EXPECT_NE(a, b);
}


TEST(MessageTest, DecodeAppliesJsonLimitsInsideTheEnvelope) {
  Message m;
  m.method = "echo";
  for (int i = 0; i < 70000; ++i) m.args.AppendUnchecked("k" + std::to_string(i), 1);
  absl::StatusOr<std::string> wire = EncodeMessage(m);
  ZRPC_ASSERT_OK(wire);
  ZRPC_EXPECT_ERROR(DecodeMessage(*wire), absl::StatusCode::kInvalidArgument,
                    "an object has 70000 members, more than the receiver's limit of 65536");
  Message deep;
  deep.method = "echo";
  deep.args.Set("a", Array{Array{1, 2}, Array{3}});
  deep.context.Set("user", "u");
  wire = EncodeMessage(deep);
  ZRPC_ASSERT_OK(wire);
  // The whole message counts: args (1) + a (1) + 2 arrays + 3 numbers + the context string.
  ZRPC_EXPECT_OK(DecodeMessage(*wire, {.max_elements = 8}));
  ZRPC_EXPECT_ERROR(DecodeMessage(*wire, {.max_elements = 6}), absl::StatusCode::kInvalidArgument, "more than 6 values");
}

}  // namespace
}  // namespace zrpc
