// SPDX-License-Identifier: Apache-2.0
#include "src/base/escape.h"

#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "zrpc/log.h"

namespace zrpc::internal {
namespace {

TEST(EscapeTest, PrintableTextAndValidUtf8PassUnchanged) {
  for (std::string s : {"", "compute.host-1 called add", "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80"}) {
    EXPECT_TRUE(IsTerminalSafe(s)) << s;
    EXPECT_EQ(EscapeForTerminal(s), s);
  }
}

TEST(EscapeTest, ControlBytesAndBadUtf8AreHexEscaped) {
  EXPECT_EQ(EscapeForTerminal("a\nzrpc ERROR: forged"), "a\\x0azrpc ERROR: forged");
  EXPECT_EQ(EscapeForTerminal("\x1b[2J"), "\\x1b[2J");
  EXPECT_EQ(EscapeForTerminal(std::string("\0\x7f", 2)), "\\x00\\x7f");
  EXPECT_EQ(EscapeForTerminal("\xc2\x9b"), "\\xc2\\x9b");          // C1 CSI
  EXPECT_EQ(EscapeForTerminal("\xc0\xaf"), "\\xc0\\xaf");          // overlong
  EXPECT_EQ(EscapeForTerminal("\xed\xa0\x80"), "\\xed\\xa0\\x80");  // surrogate
  EXPECT_EQ(EscapeForTerminal("\xe2\x82"), "\\xe2\\x82");          // truncated
  EXPECT_EQ(EscapeForTerminal("a\\x0a"), "a\\\\x0a");              // unambiguous
  EXPECT_FALSE(IsTerminalSafe("a\tb"));
}

TEST(EscapeTest, EveryLogLineReachesTheSinkAsOneLine) {
  std::vector<std::string> lines;
  SetLogSink([&](LogLevel, std::string_view line) { lines.emplace_back(line); });
  Log(LogLevel::kError, "peer sent \"x\ny\"\r\x1b]0;title\x07");
  SetLogSink(nullptr);
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_EQ(lines[0], "peer sent \"x\\x0ay\"\\x0d\\x1b]0;title\\x07");
}

// Each invisible format, bidi and separator character, at both ends of its range, and in the
// middle of text: one \u{XXXX} each, the text around it kept.
TEST(EscapeTest, FormatBidiAndSeparatorCharactersAreEscapedAsCodePoints) {
  const std::pair<const char*, const char*> cases[] = {
      {"\xd8\x9c", "\\u{061C}"},      // ARABIC LETTER MARK
      {"\xe1\xa0\x8e", "\\u{180E}"},  // MONGOLIAN VOWEL SEPARATOR
      {"\xe2\x80\x8b", "\\u{200B}"},  // ZERO WIDTH SPACE
      {"\xe2\x80\x8f", "\\u{200F}"},  // RIGHT-TO-LEFT MARK
      {"\xe2\x80\xa8", "\\u{2028}"},  // LINE SEPARATOR
      {"\xe2\x80\xa9", "\\u{2029}"},  // PARAGRAPH SEPARATOR
      {"\xe2\x80\xaa", "\\u{202A}"},  // LEFT-TO-RIGHT EMBEDDING
      {"\xe2\x80\xae", "\\u{202E}"},  // RIGHT-TO-LEFT OVERRIDE
      {"\xe2\x81\xa0", "\\u{2060}"},  // WORD JOINER
      {"\xe2\x81\xa6", "\\u{2066}"},  // LEFT-TO-RIGHT ISOLATE
      {"\xe2\x81\xaf", "\\u{206F}"},  // NOMINAL DIGIT SHAPES
      {"\xef\xbb\xbf", "\\u{FEFF}"},  // BYTE ORDER MARK
      {"\xef\xbf\xb9", "\\u{FFF9}"},  // INTERLINEAR ANNOTATION ANCHOR
      {"\xef\xbf\xbb", "\\u{FFFB}"},  // INTERLINEAR ANNOTATION TERMINATOR
  };
  for (const auto& [raw, shown] : cases) {
    const std::string text = std::string("user ") + raw + "admin";
    EXPECT_FALSE(IsTerminalSafe(text)) << shown;
    EXPECT_EQ(EscapeForTerminal(text), std::string("user ") + shown + "admin");
  }
  // Neighbours of the ranges are ordinary characters.
  for (std::string s : {"\xe2\x80\x8a", "\xe2\x80\x90", "\xe2\x80\xa7", "\xe2\x80\xaf",
                        "\xe2\x81\x9f", "\xe2\x81\xb0", "\xef\xbf\xb8", "\xef\xbf\xbc"}) {
    EXPECT_TRUE(IsTerminalSafe(s)) << EscapeForTerminal(s);
  }
}

TEST(EscapeTest, AccentsCjkAndEmojiStayAsTheyAre) {
  const std::string text = "Jos\xc3\xa9 \xe6\x9d\xb1\xe4\xba\xac \xd9\x85\xd8\xb1\xd8\xad\xd8\xa8\xd8\xa7 \xf0\x9f\x9a\x80";
  EXPECT_TRUE(IsTerminalSafe(text));
  EXPECT_EQ(EscapeForTerminal(text), text);
}

TEST(EscapeTest, AppendEscapedStopsBeforeAnEscapeOrCharacterThatWouldNotFit) {
  std::string out = "ab";
  // "\n" needs 4 bytes, the euro sign 3, U+202E 8: none is ever split.
  EXPECT_EQ(AppendEscaped(&out, "cd\n", 5), 2u);
  EXPECT_EQ(out, "abcd");
  out.clear();
  EXPECT_EQ(AppendEscaped(&out, "x\xe2\x82\xac", 3), 1u);
  EXPECT_EQ(out, "x");
  out.clear();
  EXPECT_EQ(AppendEscaped(&out, "\xe2\x80\xae", 7), 0u);
  EXPECT_EQ(out, "");
  EXPECT_EQ(AppendEscaped(&out, "a\"b", 100, "\""), 3u);
  EXPECT_EQ(out, "a\\x22b");
}

TEST(EscapeTest, LineSeparatorsAndBidiOverridesInALogLineAreEscaped) {
  std::vector<std::string> lines;
  SetLogSink([&](LogLevel, std::string_view line) { lines.emplace_back(line); });
  Log(LogLevel::kError, "login ok user=\xe2\x80\xae""nimda\xe2\x80\xac\xe2\x80\xa8""forged", {{"who", "\xe2\x80\xa9x"}});
  SetLogSink(nullptr);
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_EQ(lines[0], "login ok user=\\u{202E}nimda\\u{202C}\\u{2028}forged who=\\u{2029}x");
}

TEST(LogLevelTest, LevelsParseInAnyCaseAndWarnMeansWarning) {
  EXPECT_EQ(ParseLogLevel("WARN"), LogLevel::kWarning);
  EXPECT_EQ(ParseLogLevel("warning"), LogLevel::kWarning);
  EXPECT_EQ(ParseLogLevel("Debug"), LogLevel::kDebug);
  EXPECT_EQ(ParseLogLevel("error"), LogLevel::kError);
  EXPECT_EQ(ParseLogLevel("info"), LogLevel::kInfo);
  EXPECT_EQ(ParseLogLevel("loud"), std::nullopt);
}

}  // namespace
}  // namespace zrpc::internal
