// SPDX-License-Identifier: Apache-2.0
// Shared set-up for integration tests: a private local:// registry per test, reference services
// in child processes, and client transports.
#ifndef ZRPC_TESTING_HARNESS_H_
#define ZRPC_TESTING_HARNESS_H_

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "testing/child_process.h"
#include "testing/temp_dir.h"
#include "zrpc/zrpc.h"

namespace zrpc::testing {

class IntegrationTest : public ::testing::Test {
 public:
  static Message Msg(std::string method, Object args = {}, std::string version = "") {
    Message m;
    m.method = std::move(method);
    m.args = std::move(args);
    m.version = std::move(version);
    return m;
  }

 protected:
  void SetUp() override {
    ASSERT_FALSE(temp_.path().empty());
    registry_ = temp_.path();
    matchmaker_ = "local://" + registry_;
  }
  void TearDown() override { services_.clear(); }  // stops them (temp_ then goes)

  // Starts zrpc-service with `host` on this test's matchmaker; waits until it is registered.
  ChildProcess& StartService(const std::string& host, std::vector<std::string> extra = {}) {
    auto child = std::make_unique<ChildProcess>();
    std::vector<std::string> argv = {ZRPC_SERVICE_BINARY, "--host",         host, "--matchmaker",
                                     matchmaker_,         "--heartbeat-ms", "200"};
    argv.insert(argv.end(), extra.begin(), extra.end());
    const std::string ready = child->StartAndWaitForLine(argv, "READY ", 15000);
    EXPECT_FALSE(ready.empty()) << "service " << host << " did not start";
    endpoints_[host] = ready.size() > 6 ? ready.substr(6) : "";
    services_.push_back(std::move(child));
    return *services_.back();
  }

  TransportOptions ClientOptions(const std::string& host = "client") const {
    TransportOptions o;
    o.host = host;
    o.matchmaker = matchmaker_;
    o.call_heartbeat_interval = absl::Milliseconds(200);
    o.connect_timeout = absl::Milliseconds(500);
    return o;
  }

  std::unique_ptr<Transport> Client(TransportOptions options) {
    absl::StatusOr<std::unique_ptr<Transport>> t = Transport::Create(std::move(options));
    EXPECT_TRUE(t.ok()) << t.status();
    return t.ok() ? *std::move(t) : nullptr;
  }
  std::unique_ptr<Transport> Client() { return Client(ClientOptions()); }

  // Polls `fn` until it returns true or `timeout` passes.
  template <typename F>
  static bool Eventually(F fn, absl::Duration timeout = absl::Seconds(10)) {
    const absl::Time until = absl::Now() + timeout;
    while (absl::Now() < until) {
      if (fn()) return true;
      absl::SleepFor(absl::Milliseconds(10));
    }
    return fn();
  }

  TempDir temp_{"zrpc-test"};  // removed when the test ends
  std::string registry_;
  std::string matchmaker_;
  std::map<std::string, std::string> endpoints_;
  std::vector<std::unique_ptr<ChildProcess>> services_;
};

}  // namespace zrpc::testing

#endif  // ZRPC_TESTING_HARNESS_H_
