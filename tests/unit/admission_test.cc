// SPDX-License-Identifier: Apache-2.0
// The one admission decision (src/server/admission.h): each outcome, its order, and how it is
// counted.
#include "server/admission.h"

#include <gtest/gtest.h>

#include "unit/test_util.h"
#include "zrpc/errors.h"

namespace zrpc::internal {
namespace {

using Verdict = AdmissionDecision::Verdict;

class AdmissionTest : public ::testing::Test {
 protected:
  AdmissionTest() {
    Endpoint ep{.version = "1.3"};
    ep.Method("add", [](CallContext&, const Object&) -> absl::StatusOr<Value> { return Value(1); });
    ZRPC_EXPECT_OK(dispatcher_.Add(std::move(ep)));
    Endpoint fast{.ns = "fast", .version = "1.0", .inline_handlers = true};
    fast.Method("now", [](CallContext&, const Object&) -> absl::StatusOr<Value> { return Value(1); });
    ZRPC_EXPECT_OK(dispatcher_.Add(std::move(fast)));
  }

  AdmissionDecision Decide(const Message& m, bool is_cast = false, bool duplicate = false,
                           bool draining = false, size_t bytes = 100) {
    ++calls_;
    return DecideAdmission({.message = m,
                            .is_cast = is_cast,
                            .body_bytes = bytes,
                            .topic = "compute",
                            .host = "node1",
                            .draining = draining,
                            .duplicate = duplicate,
                            .dispatcher = &dispatcher_},
                           [&](const Dispatcher::Target&) {
                             ++authorized_;
                             return authorize_;
                           },
                           [&] {
                             ++load_checked_;
                             return load_;
                           });
  }
  static Message Msg(std::string method, std::string version = "1.0") {
    Message m;
    m.method = std::move(method);
    m.version = std::move(version);
    m.unique_id = "u1";
    return m;
  }

  Dispatcher dispatcher_;
  absl::Status authorize_;
  absl::Status load_;
  int calls_ = 0, authorized_ = 0, load_checked_ = 0;
};

TEST_F(AdmissionTest, AnAdmittedRequestRunsItsResolvedHandlerAfterAuthorizationAndLoad) {
  const AdmissionDecision d = Decide(Msg("add"));
  EXPECT_EQ(d.verdict, Verdict::kRun);
  ASSERT_NE(d.target.method, nullptr);
  EXPECT_EQ(authorized_, 1);
  EXPECT_EQ(load_checked_, 1);
}

TEST_F(AdmissionTest, ADuplicateIsDroppedAndCountedAsADuplicateForCallsAndCasts) {
  for (bool is_cast : {false, true}) {
    const AdmissionDecision d = Decide(Msg("add"), is_cast, /*duplicate=*/true);
    EXPECT_EQ(d.verdict, Verdict::kDrop);  // the first copy answers
    EXPECT_EQ(d.refused, RefusalReason::kDuplicate);
    EXPECT_EQ(GetErrorKind(d.status), ErrorKind::kDuplicateMessage);
  }
  EXPECT_EQ(load_checked_, 0);
}

TEST_F(AdmissionTest, IntrospectionIsAnsweredWithoutArgumentsOnly) {
  Message m = Msg("health");
  m.ns = "_zrpc";
  EXPECT_EQ(Decide(m).verdict, Verdict::kIntrospect);
  const AdmissionDecision big = Decide(m, false, false, false, kMaxIntrospectionBytes + 1);
  EXPECT_EQ(big.verdict, Verdict::kAnswer);
  EXPECT_EQ(big.refused, RefusalReason::kBadHeader);
  EXPECT_EQ(Decide(m, /*is_cast=*/true).verdict, Verdict::kDrop);
  // Introspection answers even a draining service (health says not_serving), and uses no load.
  EXPECT_EQ(Decide(m, false, false, /*draining=*/true).verdict, Verdict::kIntrospect);
  EXPECT_EQ(load_checked_, 0);
}

TEST_F(AdmissionTest, ADeadlinePassedOnArrivalIsATimeoutAndNothingRuns) {
  Message m = Msg("add");
  m.timeout_ms = 0;
  const AdmissionDecision d = Decide(m);
  EXPECT_EQ(d.verdict, Verdict::kDrop);  // its caller stopped waiting: nothing is sent
  EXPECT_EQ(GetErrorKind(d.status), ErrorKind::kTimeout);
  EXPECT_EQ(d.refused, RefusalReason::kExpired);
  EXPECT_EQ(Decide(m, /*is_cast=*/true).verdict, Verdict::kDrop);
}

TEST_F(AdmissionTest, ADrainingServiceRefusesWithATextThatSaysNothingRan) {
  const AdmissionDecision d = Decide(Msg("add"), false, false, /*draining=*/true);
  EXPECT_EQ(d.verdict, Verdict::kAnswer);
  EXPECT_EQ(d.status.code(), absl::StatusCode::kUnavailable);
  EXPECT_NE(d.status.message().find("try another instance"), std::string_view::npos);
  EXPECT_EQ(d.refused, RefusalReason::kDraining);
  EXPECT_EQ(authorized_, 0);
}

TEST_F(AdmissionTest, DispatchAnswersAreCountedAsHandledNotRefused) {
  const AdmissionDecision unknown = Decide(Msg("nosuch"));
  EXPECT_EQ(unknown.verdict, Verdict::kAnswer);
  EXPECT_EQ(GetErrorKind(unknown.status), ErrorKind::kNoSuchMethod);
  EXPECT_FALSE(unknown.refused.has_value());
  const AdmissionDecision version = Decide(Msg("add", "2.0"));
  EXPECT_EQ(GetErrorKind(version.status), ErrorKind::kUnsupportedRpcVersion);
  EXPECT_FALSE(version.refused.has_value());
  EXPECT_EQ(authorized_, 0);
}

TEST_F(AdmissionTest, AnUnauthorizedCallerIsRefusedBeforeItCostsLoad) {
  authorize_ = NotAuthorizedError("mallory", "add");
  const AdmissionDecision d = Decide(Msg("add"));
  EXPECT_EQ(d.verdict, Verdict::kAnswer);
  EXPECT_EQ(d.refused, RefusalReason::kNotAuthorized);
  EXPECT_EQ(load_checked_, 0);
}

TEST_F(AdmissionTest, AFullQueueIsARetryableRefusalAndInlineHandlersSkipTheLoadCheck) {
  load_ = absl::ResourceExhaustedError("overloaded; retry later");
  const AdmissionDecision d = Decide(Msg("add"));
  EXPECT_EQ(d.verdict, Verdict::kAnswer);
  EXPECT_EQ(d.refused, RefusalReason::kAdmission);
  EXPECT_EQ(d.status.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(Decide(Msg("add"), /*is_cast=*/true).verdict, Verdict::kDrop);
  Message now = Msg("now");
  now.ns = "fast";
  const int before = load_checked_;
  EXPECT_EQ(Decide(now).verdict, Verdict::kRun);  // inline: runs on the I/O thread, no queue
  EXPECT_EQ(load_checked_, before);
}

}  // namespace
}  // namespace zrpc::internal
