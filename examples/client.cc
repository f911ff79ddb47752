// SPDX-License-Identifier: Apache-2.0
// A zrpc client for examples/service: a call, a multicall, a cast and a fanout, with errors
// reported as a user needs them. The matchmaker is $ZRPC_MATCHMAKER, by default local://.
//
//   examples/client [TOPIC [NAME]]       (defaults: "example", "world")
//
// Prints one line per result on stdout. Exit codes: 0 success, 1 the service failed the request
// (a remote error), 2 bad usage, 3 timeout, 4 no service consumes TOPIC, 5 the service was lost
// during the call, 6 any other error.
#include <cstdint>
#include <cstdlib>
#include <iostream>
#include <memory>
#include <optional>
#include <string>

#include "zrpc/zrpc.h"

namespace {

constexpr int kExitRemoteError = 1;
constexpr int kExitUsage = 2;
constexpr int kExitTimeout = 3;
constexpr int kExitNoConsumer = 4;
constexpr int kExitPeerLost = 5;
constexpr int kExitOther = 6;

// The matchmaker URL: $ZRPC_MATCHMAKER, as the zrpc command line reads it, or local://.
std::string MatchmakerUrl() {
  const char* url = std::getenv("ZRPC_MATCHMAKER");
  return url != nullptr && *url != '\0' ? url : "local://";
}

// Prints what failed and what to do about it, and returns the exit code for it.
int Fail(const std::string& what, const absl::Status& status) {
  std::string hint;
  int code = kExitOther;
  if (zrpc::IsErrorKind(status, zrpc::ErrorKind::kNoConsumer)) {
    hint = " (is examples/service running, with this topic and matchmaker?)";
    code = kExitNoConsumer;
  } else if (zrpc::IsErrorKind(status, zrpc::ErrorKind::kTimeout)) {
    code = kExitTimeout;
  } else if (zrpc::IsErrorKind(status, zrpc::ErrorKind::kPeerLost)) {
    hint = " (the service stopped or hung during the call; try again)";
    code = kExitPeerLost;
  } else if (zrpc::IsRemote(status)) {
    code = kExitRemoteError;
  }
  // zrpc::Log escapes the text: an error may carry bytes from the service.
  zrpc::Log(zrpc::LogLevel::kError,
            "example client: " + what + ": " + std::string(status.message()) + hint);
  return code;
}

// A result as one line of JSON (strings quoted and escaped, so safe to print).
std::string Show(const zrpc::Value& value) {
  return zrpc::ToJson(value).value_or("<a value that is not valid JSON>");
}

}  // namespace

int main(int argc, char** argv) {
  if (argc > 3 || (argc > 1 && argv[1][0] == '-')) {
    std::cerr << "usage: " << argv[0] << " [TOPIC [NAME]]\n";
    return kExitUsage;
  }
  const std::string topic = argc > 1 ? argv[1] : "example";
  const std::string name = argc > 2 ? argv[2] : "world";
  // A client shows zrpc's warnings and errors only, unless ZRPC_LOG_LEVEL says otherwise.
  if (std::getenv("ZRPC_LOG_LEVEL") == nullptr) zrpc::SetLogLevel(zrpc::LogLevel::kWarning);

  absl::StatusOr<std::unique_ptr<zrpc::Transport>> transport = zrpc::Transport::Create(
      {.matchmaker = MatchmakerUrl(), .response_timeout = absl::Seconds(10)});
  if (!transport.ok()) return Fail("cannot start the transport", transport.status());
  zrpc::RpcProxy service(**transport, topic, /*default_version=*/"1.0");
  const zrpc::Context ctx = zrpc::Context::FromDict({{"user", "example"}});

  // A call: one instance answers.
  absl::StatusOr<zrpc::Value> greeting =
      service.Call(ctx, service.MakeMsg("hello", {{"name", name}}));
  if (!greeting.ok()) return Fail("hello", greeting.status());
  std::cout << "hello: " << Show(*greeting) << "\n";

  absl::StatusOr<zrpc::Value> sum =
      service.Call(ctx, service.MakeMsg("add", {{"a", 2}, {"b", 40}}));
  if (!sum.ok()) return Fail("add", sum.status());
  std::cout << "add: " << Show(*sum) << "\n";

  // A multicall: the values arrive one by one.
  absl::StatusOr<std::unique_ptr<zrpc::ReplyStream>> stream =
      service.MultiCall(ctx, service.MakeMsg("count", {{"n", 3}}));
  if (!stream.ok()) return Fail("count", stream.status());
  std::cout << "count:";
  while (true) {
    absl::StatusOr<std::optional<zrpc::Value>> value = (*stream)->Next();
    if (!value.ok()) {
      std::cout << "\n";
      return Fail("count", value.status());
    }
    if (!value->has_value()) break;
    std::cout << " " << Show(**value);
  }
  std::cout << "\n";

  // A cast (one instance) and a fanout (every instance): no reply, at most once.
  absl::Status s = service.Cast(ctx, service.MakeMsg("note", {{"text", "cast"}}));
  if (!s.ok()) return Fail("note (cast)", s);
  s = service.FanoutCast(ctx, service.MakeMsg("note", {{"text", "fanout"}}));
  if (!s.ok()) return Fail("note (fanout)", s);
  std::cout << "cast and fanout: sent\n";

  (*transport)->Close();
  return 0;
}
