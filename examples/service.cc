// SPDX-License-Identifier: Apache-2.0
// A complete zrpc service: typed handlers, the three standard consumers, a clean stop.
//
//   examples/service [TOPIC [HOST]]      (defaults: "example", the machine's host name)
//
// It serves, at API version 1.0:
//   add(a, b)      -> a + b (integers; OUT_OF_RANGE when the sum does not fit)
//   hello(name)    -> "hello NAME, from HOST"
//   count(n)       -> streams 0 .. n-1 (for a multicall)
//   note(text)     -> counts the casts and fanouts it receives
//   notes()        -> how many notes this instance has received
// on TOPIC (round-robin between instances), TOPIC.HOST (this instance) and fanout TOPIC (every
// instance), registered with the matchmaker named by $ZRPC_MATCHMAKER (as for the zrpc command
// line), by default local:// (the processes of one machine).
//
// Prints "ready TOPIC HOST ENDPOINT" on stdout once it serves. SIGINT or SIGTERM stops it: it
// unregisters, lets running handlers finish and exits 0. A start-up failure exits 1 with a
// message on stderr; bad usage exits 2.
#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <iostream>
#include <memory>
#include <string>

#include "zrpc/zrpc.h"

namespace {

constexpr int kExitStartFailed = 1;
constexpr int kExitUsage = 2;

// The matchmaker URL: $ZRPC_MATCHMAKER, as the zrpc command line reads it, or local://.
std::string MatchmakerUrl() {
  const char* url = std::getenv("ZRPC_MATCHMAKER");
  return url != nullptr && *url != '\0' ? url : "local://";
}

// The API this service implements. `host` and `notes` must outlive the endpoint.
zrpc::Endpoint ExampleEndpoint(const std::string* host, std::atomic<int64_t>* notes) {
  zrpc::Endpoint endpoint{.version = "1.0"};
  endpoint
      .Method("add", {"a", "b"},
              [](int64_t a, int64_t b) -> absl::StatusOr<int64_t> {
                int64_t sum;
                if (__builtin_add_overflow(a, b, &sum)) {
                  return absl::OutOfRangeError("add: the sum does not fit in 64 bits");
                }
                return sum;
              })
      .Method("hello", {"name"},
              [host](std::string name) { return "hello " + name + ", from " + *host; })
      .Stream("count",
              [](zrpc::CallContext& call, const zrpc::Object& args,
                 zrpc::StreamWriter& out) -> absl::Status {
                const zrpc::Value* n = args.Find("n");
                if (n == nullptr || !n->is_int() || n->AsInt() < 0) {
                  return absl::InvalidArgumentError("count needs a non-negative integer \"n\"");
                }
                for (int64_t i = 0; i < n->AsInt(); ++i) {
                  if (!out.Write(i)) break;  // the caller has gone
                }
                return absl::OkStatus();
              })
      .Method("note", {"text"}, [notes](std::string /*text*/) { ++*notes; })
      .Method("notes", {}, [notes] { return notes->load(); });
  return endpoint;
}

int Fail(const std::string& what, const absl::Status& status) {
  // zrpc::Log escapes the text (it may hold names from the command line or the registry).
  zrpc::Log(zrpc::LogLevel::kError,
            "example service: " + what + ": " + std::string(status.message()));
  return kExitStartFailed;
}

}  // namespace

int main(int argc, char** argv) {
  // First, before zrpc starts any thread: every thread inherits the blocked SIGINT and SIGTERM,
  // so they wait for WaitForShutdownSignal below instead of killing the process mid-Close.
  zrpc::BlockShutdownSignals();

  if (argc > 3 || (argc > 1 && argv[1][0] == '-')) {
    std::cerr << "usage: " << argv[0] << " [TOPIC [HOST]]\n";
    return kExitUsage;
  }
  const std::string topic = argc > 1 ? argv[1] : "example";

  // Declared before the transport: the dispatcher and what its handlers use must outlive it.
  std::string host;
  std::atomic<int64_t> notes{0};
  zrpc::Dispatcher dispatcher;

  absl::StatusOr<std::unique_ptr<zrpc::Transport>> created =
      zrpc::Transport::Create({.host = argc > 2 ? argv[2] : "", .matchmaker = MatchmakerUrl()});
  if (!created.ok()) return Fail("cannot start the transport", created.status());
  std::unique_ptr<zrpc::Transport> transport = *std::move(created);
  host = transport->options().host;  // the machine's host name when none was given

  absl::Status s = dispatcher.Add(ExampleEndpoint(&host, &notes));
  if (!s.ok()) return Fail("cannot add the endpoint", s);
  absl::StatusOr<std::unique_ptr<zrpc::Connection>> conn = transport->CreateConnection();
  if (!conn.ok()) return Fail("cannot create a connection", conn.status());
  s = (*conn)->CreateConsumer(topic, dispatcher);  // round-robin
  if (s.ok()) s = (*conn)->CreateConsumer(zrpc::QueueGetFor(topic, host), dispatcher);  // direct
  if (s.ok()) s = (*conn)->CreateConsumer(topic, dispatcher, {.fanout = true});         // fanout
  if (!s.ok()) return Fail("cannot consume topic \"" + topic + "\"", s);
  s = (*conn)->ConsumeInThread();  // bind, register with the matchmaker, serve
  if (!s.ok()) return Fail("cannot start serving", s);
  std::cout << "ready " << topic << " " << host << " " << transport->endpoint() << std::endl;

  const int signal_number = zrpc::WaitForShutdownSignal();
  std::cerr << "example service: signal " << signal_number << ", stopping\n";
  (*conn)->Close();    // unregister, stop taking requests, let running handlers finish
  transport->Close();  // a second signal meanwhile is held, not fatal
  return 0;
}
