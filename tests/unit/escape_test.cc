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
