// SPDX-License-Identifier: Apache-2.0
// A typed zrpc client: RpcProxy::Call<R> converts each result to a C++ type, or says why it
// could not. Works against the reference service (zrpc-service, API 1.3) and examples/service
// (API 1.0): both serve add(a, b) at a version that accepts 1.0 requests. The matchmaker is
// $ZRPC_MATCHMAKER, by default local://.
//
//   zrpc-service --topic compute &    # or: examples/service compute node1 &
//   examples/typed_client [TOPIC]     (default "compute")
//
// Exit codes: 0 when every step gave what was expected, 1 otherwise.
#include <cstdint>
#include <cstdlib>
#include <iostream>
#include <memory>
#include <string>

#include "zrpc/zrpc.h"

int main(int argc, char** argv) {
  const std::string topic = argc > 1 ? argv[1] : "compute";
  const char* url = std::getenv("ZRPC_MATCHMAKER");
  const std::string matchmaker = url != nullptr && *url != '\0' ? url : "local://";

  // A client-only transport: it never consumes, so it binds nothing.
  absl::StatusOr<std::unique_ptr<zrpc::Transport>> transport =
      zrpc::Transport::Create({.matchmaker = matchmaker});
  if (!transport.ok()) {
    std::cerr << "typed_client: " << zrpc::FormatError(transport.status()) << "\n";
    return 1;
  }
  zrpc::RpcProxy proxy(**transport, topic, /*default_version=*/"1.0");
  const zrpc::Context ctx;
  int failures = 0;

  // add(a, b) -> integer, as an int64_t.
  absl::StatusOr<int64_t> sum = proxy.Call<int64_t>(ctx, "add", {{"a", 40}, {"b", 2}});
  if (sum.ok()) {
    std::cout << "add(40, 2) = " << *sum << "\n";
  } else {
    // FormatError: the error's kind and text (a remote error's type, value and traceback).
    std::cerr << "add: " << zrpc::FormatError(sum.status()) << "\n";
    ++failures;
  }

  // Asking for another type is an error naming the method and both types, never a crash:
  // "result of add: expected string, got integer".
  absl::StatusOr<std::string> text = proxy.Call<std::string>(ctx, "add", {{"a", 1}, {"b", 2}});
  if (!text.ok() && text.status().code() == absl::StatusCode::kInvalidArgument) {
    std::cout << "as expected: " << text.status().message() << "\n";
  } else {
    std::cerr << "add as a string: " << (text.ok() ? *text : zrpc::FormatError(text.status()))
              << "\n";
    ++failures;
  }

  // An untyped result (zrpc::Value) read with the checked accessor Value::Get<T>.
  absl::StatusOr<zrpc::Value> raw = proxy.Call(ctx, "add", {{"a", 100}, {"b", 27}});
  absl::StatusOr<int8_t> small =
      raw.ok() ? raw->Get<int8_t>() : absl::StatusOr<int8_t>(raw.status());
  if (small.ok()) {
    std::cout << "add(100, 27) fits in an int8_t: " << static_cast<int>(*small) << "\n";
  } else {
    std::cerr << "add(100, 27): " << zrpc::FormatError(small.status()) << "\n";
    ++failures;
  }

  // Bad arguments are the service's typed-argument errors, naming the argument:
  // 'argument "a" of method "add": expected integer, got string'.
  absl::StatusOr<int64_t> bad = proxy.Call<int64_t>(ctx, "add", {{"a", "forty"}, {"b", 2}});
  if (!bad.ok() && bad.status().code() == absl::StatusCode::kInvalidArgument) {
    std::cout << "as expected: " << zrpc::FormatError(bad.status()) << "\n";
  } else {
    std::cerr << "add(\"forty\", 2): " << (bad.ok() ? "no error" : zrpc::FormatError(bad.status()))
              << "\n";
    ++failures;
  }

  (*transport)->Close();
  return failures == 0 ? 0 : 1;
}
