// SPDX-License-Identifier: Apache-2.0
// A typed client of the reference service (zrpc-service, or examples/service): calls with
// RpcProxy::Call<R>, which converts each result to a C++ type or says why it could not.
//
//   zrpc-service --topic compute &          # prints READY once registered
//   typed_client [topic] [matchmaker-url]   # defaults: compute, local://
//
// Exit code: 0 when every call gave what was expected, 1 otherwise.
#include <cstdint>
#include <iostream>
#include <string>

#include "zrpc/zrpc.h"

int main(int argc, char** argv) {
  const std::string topic = argc > 1 ? argv[1] : "compute";
  const std::string matchmaker = argc > 2 ? argv[2] : "local://";

  // A client-only transport: it never consumes, so it binds nothing.
  absl::StatusOr<std::unique_ptr<zrpc::Transport>> transport =
      zrpc::Transport::Create({.matchmaker = matchmaker});
  if (!transport.ok()) {
    std::cerr << "typed_client: " << zrpc::FormatError(transport.status()) << "\n";
    return 1;
  }
  // The reference service serves API version 1.3 in the default namespace.
  zrpc::RpcProxy compute(**transport, topic, "1.3");
  const zrpc::Context ctx;
  int failures = 0;

  // add(a, b) -> integer
  absl::StatusOr<int64_t> sum = compute.Call<int64_t>(ctx, "add", {{"a", 40}, {"b", 2}});
  if (sum.ok()) {
    std::cout << "add(40, 2) = " << *sum << "\n";
  } else {
    std::cerr << "add: " << zrpc::FormatError(sum.status()) << "\n";
    ++failures;
  }

  // whoami() -> string: which instance answered.
  absl::StatusOr<std::string> host = compute.Call<std::string>(ctx, "whoami");
  if (host.ok()) {
    std::cout << "answered by " << *host << "\n";
  } else {
    std::cerr << "whoami: " << zrpc::FormatError(host.status()) << "\n";
    ++failures;
  }

  // echo(any) -> object: read members with Value::Get<T>, which checks their types.
  absl::StatusOr<zrpc::Object> echoed =
      compute.Call<zrpc::Object>(ctx, "echo", {{"name", "zrpc"}, {"sizes", zrpc::Array{1, 2, 3}}});
  if (echoed.ok()) {
    const zrpc::Value* sizes = echoed->Find("sizes");
    absl::StatusOr<std::vector<int64_t>> numbers =
        sizes ? sizes->Get<std::vector<int64_t>>()
              : absl::StatusOr<std::vector<int64_t>>(absl::NotFoundError("no \"sizes\""));
    if (numbers.ok()) {
      std::cout << "echo returned " << numbers->size() << " sizes\n";
    } else {
      std::cerr << "echo: " << zrpc::FormatError(numbers.status()) << "\n";
      ++failures;
    }
  } else {
    std::cerr << "echo: " << zrpc::FormatError(echoed.status()) << "\n";
    ++failures;
  }

  // Asking for the wrong type is an error that names the method and both types, never a crash:
  // "result of whoami: expected integer, got string".
  absl::StatusOr<int64_t> wrong = compute.Call<int64_t>(ctx, "whoami");
  if (!wrong.ok()) {
    std::cout << "as expected: " << wrong.status().message() << "\n";
  } else {
    ++failures;
  }

  // A handler's failure arrives as a RemoteError; FormatError shows its type and text.
  absl::StatusOr<int64_t> failed = compute.Call<int64_t>(ctx, "fail", {{"message", "boom"}});
  if (!failed.ok()) {
    std::cout << "fail(\"boom\") -> " << zrpc::FormatError(failed.status()) << "\n";
  } else {
    ++failures;
  }

  (*transport)->Close();
  return failures == 0 ? 0 : 1;
}
