// SPDX-License-Identifier: Apache-2.0
// Uses the installed zrpc: a service and a client in one process, one call through local://.
#include <cstdio>
#include <cstdlib>
#include <iostream>

#include "zrpc/zrpc.h"

// find_package(zrpc) must bring C++20 (target_compile_features), as the consumer asks for none.
static_assert(__cplusplus >= 202002L, "zrpc::zrpc did not bring C++20 to its consumer");

int main() {
  char dir[] = "/tmp/zrpc-consumer-XXXXXX";
  if (mkdtemp(dir) == nullptr) return 1;
  const std::string mm = std::string("local://") + dir;
  zrpc::Dispatcher d;
  if (!d.Add(zrpc::Endpoint{}.Method("add", {"a", "b"}, [](int64_t a, int64_t b) { return a + b; })).ok()) {
    return 1;
  }
  auto server = zrpc::Transport::Create({.host = "consumer-server", .matchmaker = mm});
  auto client = zrpc::Transport::Create({.host = "consumer-client", .matchmaker = mm});
  if (!server.ok() || !client.ok()) return 1;
  auto conn = (*server)->CreateConnection();
  if (!conn.ok() || !(*conn)->CreateConsumer("math", d).ok() || !(*conn)->ConsumeInThread().ok()) return 1;
  absl::StatusOr<zrpc::Value> sum =
      (*client)->Call(zrpc::Context(), "math", zrpc::Message{.method = "add", .args = {{"a", 40}, {"b", 2}}});
  if (!sum.ok()) {
    std::cerr << sum.status() << "\n";
    return 1;
  }
  std::cout << "consumer: 40 + 2 = " << sum->AsInt() << "\n";
  return sum->AsInt() == 42 ? 0 : 1;
}
