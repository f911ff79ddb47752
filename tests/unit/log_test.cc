// SPDX-License-Identifier: Apache-2.0
// zrpc's log lines: the default line's prefix (RFC 3339 UTC time with microseconds, pid, thread,
// level), key=value fields, and which level applies by default (warnings for client-only
// processes, info once a process serves or routes lines to its own sink).
#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <cstdlib>
#include <memory>
#include <regex>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "src/base/log_internal.h"
#include "testing/log_capture.h"
#include "zrpc/log.h"

namespace zrpc {
namespace {

TEST(LogTest, DefaultLineHasRfc3339UtcMicrosecondsPidThreadAndLevel) {
  const std::string line = internal::FormatLogLine(LogLevel::kWarning, "disk full path=/x");
  const std::regex shape("^(\\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\d\\.\\d{6}Z) zrpc\\[" +
                         std::to_string(getpid()) + ":(\\d+)\\] WARNING: disk full path=/x\\n$");
  std::smatch m;
  ASSERT_TRUE(std::regex_match(line, m, shape)) << line;
  absl::Time when;
  std::string err;
  ASSERT_TRUE(absl::ParseTime(absl::RFC3339_full, m[1].str(), &when, &err)) << err;
  EXPECT_LT(absl::AbsDuration(absl::Now() - when), absl::Seconds(60)) << m[1].str();
  EXPECT_GT(std::stol(m[2].str()), 0);
}

TEST(LogTest, FieldsFollowTheMessageAsKeyValueQuotedWhenNeeded) {
  testing::LogCapture log;
  Log(LogLevel::kWarning, "call answered",
      {{"msg_id", "m-1"}, {"topic", "a b"}, {"empty", ""}, {"said", "\"hi\""}, {"evil", "x\ny"}});
  ZRPC_LOG_FIELDS(kWarning, "chose", {"host", "n5"}, {"endpoint", "tcp://10.0.0.5:4000"});
  ASSERT_EQ(log.Lines().size(), 2u);
  EXPECT_EQ(log.Lines()[0],
            "call answered msg_id=m-1 topic=\"a b\" empty=\"\" said=\\x22hi\\x22 evil=x\\x0ay");
  EXPECT_EQ(log.Lines()[1], "chose host=n5 endpoint=tcp://10.0.0.5:4000");
}

TEST(LogTest, ALongLineIsCutAt8KiBAndSaysHowManyBytesWereCut) {
  testing::LogCapture log;
  const std::string big(100'000, 'a');
  Log(LogLevel::kWarning, big);
  Log(LogLevel::kWarning, "short", {{"blob", big}, {"after", "x"}});
  // Escaping counts: 5000 newlines are 20000 bytes once escaped.
  Log(LogLevel::kWarning, std::string(5000, '\n'));
  const std::vector<std::string> lines = log.Lines();
  ASSERT_EQ(lines.size(), 3u);
  for (const std::string& l : lines) EXPECT_LE(l.size(), internal::kMaxLogLineBytes);
  const std::regex cut("^(a+)\\.\\.\\.\\[(\\d+) bytes cut\\]$");
  std::smatch m;
  ASSERT_TRUE(std::regex_match(lines[0], m, cut)) << lines[0].substr(0, 80);
  EXPECT_EQ(m[1].length() + std::stoul(m[2].str()), big.size());
  EXPECT_EQ(lines[1].rfind("short blob=", 0), 0u);
  EXPECT_NE(lines[1].find("bytes cut]"), std::string::npos);
  EXPECT_EQ(lines[1].find("after="), std::string::npos);  // a prefix of the line, nothing after
  ASSERT_TRUE(std::regex_match(lines[2], m, std::regex("^((\\\\x0a)+)\\.\\.\\.\\[(\\d+) bytes cut\\]$")))
      << lines[2].substr(0, 80);
  EXPECT_EQ(m[1].length() / 4 + std::stoul(m[3].str()), 5000u);  // no escape split
}

// The count in "N more lines like this suppressed ..." summaries that mention `where`.
int Suppressed(const std::vector<std::string>& lines, const std::string& where) {
  int n = 0;
  for (const std::string& l : lines) {
    if (l.find(" like this suppressed in the last second (" + where) == std::string::npos) continue;
    int count = 0;
    if (absl::SimpleAtoi(l.substr(0, l.find(' ')), &count)) n += count;
  }
  return n;
}

// Waits (bounded) until summaries account for all `total` lines of lines starting with `text`.
std::vector<std::string> AwaitSummaries(const testing::LogCapture& log, const std::string& text,
                                        const std::string& where, int total) {
  const absl::Time until = absl::Now() + absl::Seconds(5);
  std::vector<std::string> lines = log.Lines();
  while (absl::Now() < until) {
    int written = 0;
    for (const std::string& l : lines) written += l.rfind(text, 0) == 0;
    if (written + Suppressed(lines, where) >= total) break;
    absl::SleepFor(absl::Milliseconds(20));
    lines = log.Lines();
  }
  return lines;
}

// A flood from one call site: 20 lines a second get through, the rest are counted and summed up
// in one line once the second is over, with nothing else logged (the site went quiet).
TEST(LogTest, ACallSiteWritesTwentyLinesASecondAndSumsUpTheRest) {
  testing::LogCapture log;
  constexpr int kFlood = 500;
  for (int i = 0; i < kFlood; ++i) ZRPC_LOG(kWarning, "refused peer %d", i);
  const std::string where = "log_test.cc:" + std::to_string(__LINE__ - 1);
  const std::vector<std::string> lines = AwaitSummaries(log, "refused peer ", where, kFlood);
  int written = 0;
  for (const std::string& l : lines) written += l.rfind("refused peer ", 0) == 0;
  // The loop takes well under a second; at most two seconds' worth if it crosses into the next.
  EXPECT_GE(written, static_cast<int>(internal::kLogLinesPerSecond)) << absl::StrJoin(lines, "\n");
  EXPECT_LE(written, 2 * static_cast<int>(internal::kLogLinesPerSecond));
  EXPECT_EQ(written + Suppressed(lines, where), kFlood) << absl::StrJoin(lines, "\n");
}

TEST(LogTest, EachCallSiteHasItsOwnLimitAndErrorsAHigherOne) {
  // Owned by the sink too: a zrpc thread still inside it after the test writes to live memory.
  struct Seen {
    absl::Mutex mu;
    std::vector<std::pair<LogLevel, std::string>> lines ABSL_GUARDED_BY(mu);
  };
  auto state = std::make_shared<Seen>();
  SetLogSink([state](LogLevel level, std::string_view line) {
    absl::MutexLock lock(&state->mu);
    state->lines.emplace_back(level, line);
  });
  for (int i = 0; i < 300; ++i) {
    ZRPC_LOG(kError, "error %d", i);
    ZRPC_LOG_FIELDS(kInfo, "info", {"i", std::to_string(i)});
  }
  const int error_line = __LINE__ - 3, info_line = __LINE__ - 2;
  for (int i = 0; i < 3; ++i) ZRPC_LOG(kWarning, "elsewhere %d", i);  // its own budget
  const absl::Time until = absl::Now() + absl::Seconds(5);
  auto count = [&](LogLevel level, const std::string& prefix) {
    absl::MutexLock lock(&state->mu);
    int n = 0;
    for (const auto& [l, text] : state->lines) n += l == level && text.rfind(prefix, 0) == 0;
    return n;
  };
  auto summed = [&](LogLevel level, int line) {
    absl::MutexLock lock(&state->mu);
    std::vector<std::string> lines;
    for (const auto& [l, text] : state->lines) if (l == level) lines.push_back(text);
    return Suppressed(lines, "log_test.cc:" + std::to_string(line));
  };
  while (absl::Now() < until &&
         (count(LogLevel::kError, "error ") + summed(LogLevel::kError, error_line) < 300 ||
          count(LogLevel::kInfo, "info ") + summed(LogLevel::kInfo, info_line) < 300)) {
    absl::SleepFor(absl::Milliseconds(20));
  }
  SetLogSink(nullptr);
  EXPECT_GE(count(LogLevel::kError, "error "), static_cast<int>(internal::kErrorLinesPerSecond));
  EXPECT_LE(count(LogLevel::kError, "error "), 2 * static_cast<int>(internal::kErrorLinesPerSecond));
  EXPECT_EQ(count(LogLevel::kError, "error ") + summed(LogLevel::kError, error_line), 300);
  EXPECT_LE(count(LogLevel::kInfo, "info "), 2 * static_cast<int>(internal::kLogLinesPerSecond));
  EXPECT_EQ(count(LogLevel::kInfo, "info ") + summed(LogLevel::kInfo, info_line), 300);
  EXPECT_EQ(count(LogLevel::kWarning, "elsewhere "), 3);
}

// A process that exits within the second of a flood still writes the count (at exit).
TEST(LogTest, SuppressedLinesAreSummedUpWhenTheProcessExitsWithinTheSecond) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(
      {
        SetLogLevel(LogLevel::kWarning);
        for (int i = 0; i < 100; ++i) ZRPC_LOG(kWarning, "flood %d", i);
        std::exit(0);
      },
      ::testing::ExitedWithCode(0),
      "WARNING: [0-9]+ more lines like this suppressed in the last second \\(log_test\\.cc:[0-9]+\\)");
}

// zrpc::Log is limited per caller: a loop that logs varying text is one source.
TEST(LogTest, PublicLogIsRateLimitedPerCallerWhateverItsText) {
  testing::LogCapture log;
  for (int i = 0; i < 300; ++i) Log(LogLevel::kWarning, "order " + std::to_string(i) + " failed");
  Log(LogLevel::kWarning, "another caller");
  const std::vector<std::string> lines =
      AwaitSummaries(log, "order ", "a caller of zrpc::Log", 300);
  int written = 0;
  for (const std::string& l : lines) written += l.rfind("order ", 0) == 0;
  EXPECT_LE(written, 2 * static_cast<int>(internal::kLogLinesPerSecond));
  EXPECT_EQ(written + Suppressed(lines, "a caller of zrpc::Log"), 300) << absl::StrJoin(lines, "\n");
  EXPECT_EQ(log.Count("another caller"), 1);
}

// The default level is process state: each case runs in a fresh process (death-test style
// "threadsafe" re-runs the test binary), with ZRPC_LOG_LEVEL as the case sets it.
TEST(LogTest, ClientOnlyProcessesDefaultToWarningsAndServingOnesToInfo) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  unsetenv("ZRPC_LOG_LEVEL");
  EXPECT_EXIT(
      {
        if (GetLogLevel() != LogLevel::kWarning) _exit(1);
        SetLogSink([](LogLevel, std::string_view) {});  // the application routes the lines
        if (GetLogLevel() != LogLevel::kInfo) _exit(2);
        SetLogSink(nullptr);  // back to stderr
        if (GetLogLevel() != LogLevel::kWarning) _exit(3);
        internal::NoteServing();
        if (GetLogLevel() != LogLevel::kInfo) _exit(4);
        SetLogLevel(LogLevel::kError);  // a choice wins
        if (GetLogLevel() != LogLevel::kError) _exit(5);
        _exit(0);
      },
      ::testing::ExitedWithCode(0), "");
}

TEST(LogTest, ZrpcLogLevelInAnyCaseOverridesTheDefault) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  setenv("ZRPC_LOG_LEVEL", "Debug", 1);
  EXPECT_EXIT(
      {
        if (GetLogLevel() != LogLevel::kDebug) _exit(1);
        internal::NoteServing();
        if (GetLogLevel() != LogLevel::kDebug) _exit(2);
        _exit(0);
      },
      ::testing::ExitedWithCode(0), "");
  unsetenv("ZRPC_LOG_LEVEL");
}

TEST(LogTest, AnUnknownZrpcLogLevelIsReportedAndIgnored) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  setenv("ZRPC_LOG_LEVEL", "loud", 1);
  EXPECT_EXIT(
      {
        if (GetLogLevel() != LogLevel::kWarning) _exit(1);
        _exit(0);
      },
      ::testing::ExitedWithCode(0), "ZRPC_LOG_LEVEL=\"loud\" is not debug, info, warning");
  unsetenv("ZRPC_LOG_LEVEL");
}

}  // namespace
}  // namespace zrpc
