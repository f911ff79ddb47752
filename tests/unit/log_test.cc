// SPDX-License-Identifier: Apache-2.0
// zrpc's log lines: the default line's prefix (RFC 3339 UTC time with microseconds, pid, thread,
// level), key=value fields, and which level applies by default (warnings for client-only
// processes, info once a process serves or routes lines to its own sink).
#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <regex>
#include <string>

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
