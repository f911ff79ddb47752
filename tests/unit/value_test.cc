// SPDX-License-Identifier: Apache-2.0
#include "zrpc/value.h"

#include <cmath>
#include <limits>
#include <optional>
#include <string>
#include <vector>

#include "absl/time/clock.h"
#include "test_util.h"

namespace zrpc {
namespace {

using ::testing::HasSubstr;
constexpr auto kInvalid = absl::StatusCode::kInvalidArgument;

TEST(ValueTest, BuildsFromInitializerLists) {
  Value v = Object{{"a", 1}, {"b", Array{1.5, "x", nullptr, true}}, {"c", Object{}}};
  ASSERT_TRUE(v.is_object());
  EXPECT_EQ(v.AsObject().size(), 3u);
  ASSERT_NE(v.Find("a"), nullptr);
  EXPECT_EQ(v.Find("a")->AsInt(), 1);
  const Array& b = v.Find("b")->AsArray();
  EXPECT_TRUE(b[0].is_double());
  EXPECT_EQ(b[1].AsString(), "x");
  EXPECT_TRUE(b[2].is_null());
  EXPECT_TRUE(b[3].AsBool());
  EXPECT_EQ(v.Find("missing"), nullptr);
  EXPECT_EQ(Value(3).Find("a"), nullptr);
}

TEST(ValueTest, UnsignedAboveInt64MaxStaysUnsigned) {
  EXPECT_TRUE(Value(uint64_t{5}).is_int());
  Value big(std::numeric_limits<uint64_t>::max());
  EXPECT_TRUE(big.is_uint());
  EXPECT_EQ(*ToJson(big), "18446744073709551615");
  EXPECT_EQ(ParseJson("18446744073709551615")->AsUint(), std::numeric_limits<uint64_t>::max());
}

TEST(ValueTest, ObjectKeepsOrderAndReplacesDuplicates) {
  Object o{{"z", 1}, {"a", 2}, {"z", 3}};
  ASSERT_EQ(o.size(), 2u);
  EXPECT_EQ(o.begin()->first, "z");
  EXPECT_EQ(o.Find("z")->AsInt(), 3);
  o["new"] = "v";
  EXPECT_EQ(*ToJson(Value(o)), R"({"z":3,"a":2,"new":"v"})");
  EXPECT_TRUE(o.Erase("a"));
  EXPECT_FALSE(o.Erase("a"));
}

TEST(ValueTest, EqualityIsStructural) {
  EXPECT_EQ(Value(Object{{"a", 1}, {"b", 2}}), Value(Object{{"b", 2}, {"a", 1}}));
  EXPECT_FALSE(Value(1) == Value(1.0));
  EXPECT_FALSE(Value(Array{1}) == Value(Array{1, 2}));
  EXPECT_EQ(Value(int64_t{7}), Value(uint64_t{7}));
}

TEST(JsonTest, RoundTripsEveryType) {
  const std::string text =
      R"({"n":null,"t":true,"f":false,"i":-42,"u":18446744073709551615,"d":0.1,)"
      R"("e":1e+300,"s":"a\"b\\c\n\u0001é😀","a":[[],{}],"o":{"k":[1,2.5]}})";
  absl::StatusOr<Value> v = ParseJson(text);
  ZRPC_ASSERT_OK(v);
  absl::StatusOr<std::string> out = ToJson(*v);
  ZRPC_ASSERT_OK(out);
  absl::StatusOr<Value> again = ParseJson(*out);
  ZRPC_ASSERT_OK(again);
  EXPECT_EQ(*again, *v);
  EXPECT_EQ(v->Find("d")->AsDouble(), 0.1);
  EXPECT_EQ(v->Find("s")->AsString(), "a\"b\\c\n\x01\xc3\xa9\xf0\x9f\x98\x80");
}

TEST(JsonTest, DoublesStayDoublesAndRoundTripExactly) {
  for (double d : {1.0, -0.0, 0.1, 1e21, 1e-7, 123456789.125, 5e-324, 1.7976931348623157e308}) {
    absl::StatusOr<std::string> text = ToJson(Value(d));
    ZRPC_ASSERT_OK(text);
    absl::StatusOr<Value> back = ParseJson(*text);
    ZRPC_ASSERT_OK(back);
    ASSERT_TRUE(back->is_double()) << *text;
    EXPECT_EQ(back->AsDouble(), d) << *text;
    EXPECT_EQ(std::signbit(back->AsDouble()), std::signbit(d)) << *text;
  }
  EXPECT_EQ(*ToJson(Value(1.0)), "1.0");
  EXPECT_EQ(*ToJson(Value(int64_t{-9223372036854775807 - 1})), "-9223372036854775808");
}

TEST(JsonTest, EscapesEveryControlCharacter) {
  std::string s;
  for (int c = 0; c < 0x20; ++c) s.push_back(static_cast<char>(c));
  absl::StatusOr<std::string> text = ToJson(Value(s));
  ZRPC_ASSERT_OK(text);
  for (char c : *text) EXPECT_GE(static_cast<unsigned char>(c), 0x20);
  EXPECT_THAT(*text, HasSubstr("\\u0000"));
  EXPECT_THAT(*text, HasSubstr("\\u001f"));
  EXPECT_EQ(ParseJson(*text)->AsString(), s);
}

TEST(JsonTest, EscapesSpecialBytesAtEveryOffset) {
  // The escaper scans 8 bytes at a time: put each special byte at every offset around the
  // word boundaries, next to plain and multi-byte UTF-8 text, and check the round trip.
  for (char special : {'"', '\\', '\n', '\x01', '\x1f', '\t'}) {
    for (size_t before = 0; before < 20; ++before) {
      for (const std::string& filler : {std::string("a"), std::string("\xc3\xa9")}) {
        std::string text;
        for (size_t i = 0; i < before; ++i) text += filler;
        text += special;
        text += std::string(before % 9, 'b');
        text += special;
        absl::StatusOr<std::string> json = ToJson(Value(text));
        ZRPC_ASSERT_OK(json);
        for (char c : *json) EXPECT_GE(static_cast<unsigned char>(c), 0x20);
        absl::StatusOr<Value> back = ParseJson(*json);
        ZRPC_ASSERT_OK(back);
        EXPECT_EQ(back->AsString(), text) << *json;
      }
    }
  }
  // Dense quoting, as in an envelope's inner JSON.
  const std::string inner = R"({"a":"b","c":["d","e"],"f":"\"g\""})";
  absl::StatusOr<Value> wrapped = ParseJson(*ToJson(Value(inner)));
  ZRPC_ASSERT_OK(wrapped);
  EXPECT_EQ(wrapped->AsString(), inner);
}

TEST(JsonTest, WriterRefusesWhatJsonCannotHold) {
  ZRPC_EXPECT_ERROR(ToJson(Value(std::nan(""))), kInvalid, "NaN");
  ZRPC_EXPECT_ERROR(ToJson(Value(std::numeric_limits<double>::infinity())), kInvalid, "Infinity");
  ZRPC_EXPECT_ERROR(ToJson(Value(std::string("\xff"))), kInvalid, "UTF-8");
  ZRPC_EXPECT_ERROR(ToJson(Value(Object{{"\xc3", 1}})), kInvalid, "object key");
  std::string out = "keep";
  EXPECT_FALSE(AppendJson(Value(Array{1, std::nan("")}), &out).ok());
  EXPECT_EQ(out, "keep");
}

struct BadJson {
  const char* name;
  std::string text;
  const char* expect;
};

TEST(JsonTest, RejectsBadInputWithClearErrors) {
  const BadJson cases[] = {
      {"empty", "", "empty"},
      {"truncated", R"({"a": [1, 2)", "invalid JSON"},
      {"trailing garbage", R"({"a":1}{})", "invalid JSON"},
      {"trailing word", "[1] x", "invalid JSON"},
      {"invalid utf8", "\"\xff\"", "UTF-8"},
      {"overlong utf8", "\"\xc0\xaf\"", "UTF-8"},
      {"lone surrogate", R"("\ud800")", "surrogate"},
      {"nan", "NaN", "invalid JSON"},
      {"nan in array", "[NaN]", "invalid JSON"},
      {"infinity", "[Infinity]", "invalid JSON"},
      {"1e400", "1e400", "out of range"},
      {"2^64", "18446744073709551616", "out of range"},
      {"below int64", "-9223372036854775809", "out of range"},
      {"duplicate keys", R"({"a":1,"b":2,"a":3})", "duplicate key \"a\""},
      {"single quotes", "{'a':1}", "invalid JSON"},
      {"depth 2000", std::string(2000, '[') + std::string(2000, ']'), "deeper than 64"},
      {"depth 65", std::string(65, '[') + std::string(65, ']'), "deeper than 64"},
  };
  for (const BadJson& c : cases) {
    SCOPED_TRACE(c.name);
    ZRPC_EXPECT_ERROR(ParseJson(c.text), kInvalid, c.expect);
  }
}

TEST(JsonTest, DuplicateKeysAreFoundInLargeObjectsToo) {
  std::string text = "{";
  for (int i = 0; i < 40; ++i) text += "\"k" + std::to_string(i) + "\":" + std::to_string(i) + ",";
  text += "\"k17\":0}";
  ZRPC_EXPECT_ERROR(ParseJson(text), kInvalid, "duplicate key \"k17\"");
}

TEST(JsonTest, DepthLimitIsExactAndConfigurable) {
  ZRPC_EXPECT_OK(ParseJson(std::string(64, '[') + std::string(64, ']')));
  const std::string ten = std::string(10, '[') + std::string(10, ']');
  ZRPC_EXPECT_OK(ParseJson(ten, {.max_depth = 10}));
  ZRPC_EXPECT_ERROR(ParseJson(ten, {.max_depth = 9}), kInvalid, "deeper than 9");
}


TEST(JsonTest, MemberAndElementLimitsApplyToTheWholeDocument) {
  std::string wide = "{";
  for (int i = 0; i < 11; ++i) wide += (i ? ",\"k" : "\"k") + std::to_string(i) + "\":1";
  wide += "}";
  ZRPC_EXPECT_OK(ParseJson(wide, {.max_object_members = 11}));
  ZRPC_EXPECT_ERROR(ParseJson(wide, {.max_object_members = 10}), kInvalid,
                    "an object has 11 members, more than the receiver's limit of 10");
  // Values are counted across every level: 1 array + 3 arrays + 6 numbers = 10.
  const std::string nested = "[[1,2],[3,4],[5,6]]";
  ZRPC_EXPECT_OK(ParseJson(nested, {.max_elements = 10}));
  ZRPC_EXPECT_ERROR(ParseJson(nested, {.max_elements = 9}), kInvalid,
                    "more than 9 values in one document");
  // The defaults: 2^19 values, 65536 members.
  std::string many = "[";
  for (int i = 0; i <= (1 << 19); ++i) many += i ? ",0" : "0";
  many += "]";
  ZRPC_EXPECT_ERROR(ParseJson(many), kInvalid, "more than 524288 values");
}

TEST(ObjectTest, LargeObjectsStayConsistentAndLinear) {
  // 200,000 keys: quadratic lookups would take minutes; the index keeps this well under a second.
  constexpr int kKeys = 200000;
  Object o;
  for (int i = 0; i < kKeys; ++i) o.Set("k" + std::to_string(i), i);
  for (int i = 0; i < kKeys; ++i) o["k" + std::to_string(i)] = Value(i + 1);  // replaces
  ASSERT_EQ(o.size(), static_cast<size_t>(kKeys));
  ASSERT_NE(o.Find("k199999"), nullptr);
  EXPECT_EQ(o.Find("k199999")->AsInt(), 200000);
  EXPECT_EQ(o.Find("nope"), nullptr);
  Object copy = o;
  EXPECT_TRUE(copy == o);
  EXPECT_TRUE(copy.Erase("k5"));
  EXPECT_FALSE(copy.Erase("k5"));
  EXPECT_EQ(copy.Find("k5"), nullptr);
  ASSERT_NE(copy.Find("k6"), nullptr);
  EXPECT_EQ(copy.Find("k6")->AsInt(), 7);  // positions after the erased key are found again
  EXPECT_FALSE(copy == o);
  Object moved = std::move(copy);
  EXPECT_EQ(moved.Find("k100")->AsInt(), 101);
  // Shrinking below the index size and growing again.
  Object small;
  for (int i = 0; i < 40; ++i) small.Set(std::to_string(i), i);
  for (int i = 0; i < 35; ++i) EXPECT_TRUE(small.Erase(std::to_string(i)));
  for (int i = 35; i < 40; ++i) EXPECT_EQ(small.Find(std::to_string(i))->AsInt(), i);
  for (int i = 0; i < 40; ++i) small.Set(std::to_string(i), -i);
  EXPECT_EQ(small.size(), 40u);
  for (int i = 0; i < 40; ++i) EXPECT_EQ(small.Find(std::to_string(i))->AsInt(), -i);
}

TEST(ObjectTest, ParsingAHugeObjectIsLinear) {
  std::string text = "{";
  for (int i = 0; i < 60000; ++i) text += (i ? ",\"k" : "\"k") + std::to_string(i) + "\":1";
  text += "}";
  const absl::Time start = absl::Now();
  absl::StatusOr<Value> v = ParseJson(text);
  ZRPC_ASSERT_OK(v);
  EXPECT_EQ(v->AsObject().size(), 60000u);
  EXPECT_EQ(v->Find("k59999")->AsInt(), 1);
  // Generous: linear work is a few milliseconds; quadratic was over ten seconds.
  EXPECT_LT(absl::Now() - start, absl::Seconds(2));
}

TEST(ValueTest, AccessorsOfTheWrongTypeReturnEmptyValuesAndNeverThrow) {
  const Value text("x");
  EXPECT_EQ(text.AsInt(), 0);
  EXPECT_EQ(text.AsUint(), 0u);
  EXPECT_EQ(text.AsDouble(), 0.0);
  EXPECT_FALSE(text.AsBool());
  EXPECT_TRUE(text.AsArray().empty());
  EXPECT_TRUE(text.AsObject().empty());
  EXPECT_EQ(Value(7).AsString(), "");
  EXPECT_EQ(Value(7).AsDouble(), 0.0);  // AsDouble is for doubles; Get<double> converts
  EXPECT_EQ(Value(uint64_t{1} << 63).AsInt(), 0);
  EXPECT_EQ(text.AsString(), "x");
  Value v;  // null
  v.MutableObject().Set("a", 1);
  EXPECT_EQ(v, Value(Object{{"a", 1}}));
  v.MutableArray().push_back(2);  // an object becomes an (empty) array first
  EXPECT_EQ(v, Value(Array{2}));
}

TEST(ValueTest, GetConvertsOrSaysWhatIsWrongAndWhere) {
  EXPECT_EQ(*Value(5).Get<int64_t>(), 5);
  EXPECT_EQ(*Value(5).Get<double>(), 5.0);
  EXPECT_EQ(*Value("s").Get<std::string>(), "s");
  EXPECT_EQ(*Value(Array{1, 2}).Get<std::vector<int>>(), (std::vector<int>{1, 2}));
  EXPECT_EQ(*Value().Get<std::optional<int>>(), std::nullopt);
  EXPECT_EQ(*Value(Array{1, "x"}).Get<Value>(), Value(Array{1, "x"}));

  ZRPC_EXPECT_ERROR(Value("x").Get<int64_t>(), absl::StatusCode::kInvalidArgument,
                    "expected integer, got string");
  EXPECT_EQ(Value("x").Get<int64_t>().status().message(), "expected integer, got string");
  EXPECT_EQ(Value(300).Get<uint8_t>().status().message(),
            "expected integer in [0, 255], got 300");
  EXPECT_EQ(Value(-1).Get<uint64_t>().status().message(),
            "expected integer in [0, 18446744073709551615], got -1");
  EXPECT_EQ(Value(Array{1, "x"}).Get<std::vector<int64_t>>().status().message(),
            "value[1]: expected integer, got string");
  EXPECT_EQ(Value(Array{Array{1}, Array{2, true}}).Get<std::vector<std::vector<int>>>()
                .status()
                .message(),
            "value[1][1]: expected integer, got bool");
  EXPECT_EQ(Value(Array{1}).Get<std::vector<std::vector<int>>>().status().message(),
            "value[0]: expected array of integer, got integer");
  EXPECT_EQ(Value("x").Get<std::optional<bool>>().status().message(),
            "expected boolean or null, got string");
  EXPECT_EQ(Value(1.5).Get<Object>().status().message(), "expected object, got double");
}

}  // namespace
}  // namespace zrpc
