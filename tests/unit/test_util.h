// SPDX-License-Identifier: Apache-2.0
// Small helpers for tests (Abseil 20220623 has no status matchers).
#ifndef ZRPC_TESTS_UNIT_TEST_UTIL_H_
#define ZRPC_TESTS_UNIT_TEST_UTIL_H_

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace zrpc::testing {

inline const absl::Status& GetStatus(const absl::Status& s) { return s; }
template <typename T>
const absl::Status& GetStatus(const absl::StatusOr<T>& s) {
  return s.status();
}
inline std::string Msg(const absl::Status& s) { return std::string(s.message()); }

}  // namespace zrpc::testing

#define ZRPC_ASSERT_OK(expr)                                          \
  do {                                                                \
    const auto& zrpc_s_ = (expr);                                     \
    ASSERT_TRUE(::zrpc::testing::GetStatus(zrpc_s_).ok())             \
        << ::zrpc::testing::GetStatus(zrpc_s_).ToString();            \
  } while (0)
#define ZRPC_EXPECT_OK(expr)                                          \
  do {                                                                \
    const auto& zrpc_s_ = (expr);                                     \
    EXPECT_TRUE(::zrpc::testing::GetStatus(zrpc_s_).ok())             \
        << ::zrpc::testing::GetStatus(zrpc_s_).ToString();            \
  } while (0)
// Expects `expr` to fail with `want_code` and a message containing `substr`.
#define ZRPC_EXPECT_ERROR(expr, want_code, substr)                                         \
  do {                                                                                \
    const auto& zrpc_s_ = (expr);                                                     \
    const absl::Status& zrpc_st_ = ::zrpc::testing::GetStatus(zrpc_s_);               \
    EXPECT_EQ(zrpc_st_.code(), want_code) << zrpc_st_.ToString();                          \
    EXPECT_THAT(std::string(zrpc_st_.message()), ::testing::HasSubstr(substr));       \
  } while (0)

#endif  // ZRPC_TESTS_UNIT_TEST_UTIL_H_
