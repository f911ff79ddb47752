// SPDX-License-Identifier: Apache-2.0
// zrpc-service: the reference service. The demo starts three of it; tests and benchmarks use it;
// users can start it by hand to try zrpc:
//
//   zrpc-service --host node1 --matchmaker local:// --topic compute
//
// It consumes TOPIC, TOPIC.HOST and fanout TOPIC at API version 1.3 with the methods:
//   echo(any args)        → the args object
//   add(a, b)             → a + b (integers)
//   count(n, delay_ms)    → streams 0..n-1, one value every delay_ms (for multicall)
//   fail(message)         → fails with a std::runtime_error(message) (a RemoteError for callers)
//   sleep(ms)             → sleeps, then returns the host (a slow handler)
//   whoami()              → this instance's host name
//   deadline()            → milliseconds left before the caller's deadline (-1: none)
//   note(kind)            → counts a cast or fanout of that kind ("cast", "fanout", ...)
//   stats()               → {"notes": {kind: count}} and the host
//   emit(event_type, priority, payload) → publishes a notification (publisher TOPIC.HOST)
// It prints "READY <endpoint>" on stdout once registered, and exits cleanly on SIGTERM/SIGINT.
#include <signal.h>

#include <iostream>
#include <map>
#include <stdexcept>
#include <thread>

#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "flags.h"
#include "zrpc/zrpc.h"
#include "zrpc/transport.h"

namespace {

struct Notes {
  absl::Mutex mu;
  std::map<std::string, int64_t> counts ABSL_GUARDED_BY(mu);
};

zrpc::Endpoint ReferenceEndpoint(const std::string& host, Notes* notes, bool inline_handlers,
                                 zrpc::Notifier* notifier) {
  zrpc::Endpoint ep{.version = "1.3", .inline_handlers = inline_handlers};
  ep.Method("echo",
            [](zrpc::CallContext&, const zrpc::Object& args) -> absl::StatusOr<zrpc::Value> {
              return zrpc::Value(args);
            })
      .Method("add", {"a", "b"},
              [](int64_t a, int64_t b) -> absl::StatusOr<int64_t> {
                int64_t sum;
                if (__builtin_add_overflow(a, b, &sum)) {
                  return absl::OutOfRangeError("add: the sum does not fit in a 64-bit integer");
                }
                return sum;
              })
      .Stream("count",
              [](zrpc::CallContext& ctx, const zrpc::Object& args,
                 zrpc::StreamWriter& out) -> absl::Status {
                const zrpc::Value* n = args.Find("n");
                const zrpc::Value* delay = args.Find("delay_ms");
                if (n == nullptr || !n->is_int()) {
                  return absl::InvalidArgumentError("count needs an integer \"n\"");
                }
                for (int64_t i = 0; i < n->AsInt(); ++i) {
                  if (i > 0 && delay && delay->is_int()) {
                    absl::SleepFor(absl::Milliseconds(delay->AsInt()));
                  }
                  if (!out.Write(i)) return absl::OkStatus();  // the caller has gone
                }
                return absl::OkStatus();
              })
      .Method("fail", {"message"},
              [](std::optional<std::string> message) -> int {
                throw std::runtime_error(message.value_or("the reference service failed"));
              })
      .Method("sleep", {"ms"},
              [host](zrpc::CallContext& ctx, int64_t ms) {
                const absl::Time until = absl::Now() + absl::Milliseconds(ms);
                while (absl::Now() < until && !ctx.cancelled()) absl::SleepFor(absl::Milliseconds(5));
                return host;
              })
      .Method("whoami", {}, [host] { return host; })
      .Method("caller",
              [](zrpc::CallContext& ctx, const zrpc::Object&) -> absl::StatusOr<zrpc::Value> {
                return zrpc::Value(ctx.peer_identity());  // who called (CurveZMQ identity)
              })
      .Method("deadline", {},
              [](zrpc::CallContext& ctx) -> int64_t {
                if (ctx.deadline() == absl::InfiniteFuture()) return -1;
                return absl::ToInt64Milliseconds(ctx.remaining());
              })
      .Method("note", {"kind"},
              [notes](std::string kind) {
                absl::MutexLock lock(&notes->mu);
                return ++notes->counts[kind];
              })
      .Method("emit", {"event_type", "priority", "payload"},
              [notifier](zrpc::CallContext& ctx, std::string event_type, std::string priority,
                         std::optional<zrpc::Value> payload) -> absl::Status {
                return notifier->Notify(ctx.context(), event_type, priority,
                                        payload.value_or(zrpc::Value()));
              })
      .Method("stats", {}, [notes, host] {
        zrpc::Object counts;
        absl::MutexLock lock(&notes->mu);
        for (const auto& [kind, n] : notes->counts) counts.Set(kind, n);
        return zrpc::Value(zrpc::Object{{"host", host}, {"notes", std::move(counts)}});
      });
  return ep;
}

}  // namespace

int main(int argc, char** argv) {
  zrpc::tools::Flags flags(
      "usage: zrpc-service [flags]\n"
      "The zrpc reference service: echo, add, count (stream), fail, sleep, whoami, caller, note,\n"
      "stats.",
      {{"host", "this instance's host name (default: the machine's)"},
       {"matchmaker",
        "matchmaker URL (default local://); for redis:// keep the password off argv:\n"
        "      ?password_file=PATH (mode 0600) or $ZRPC_REDIS_PASSWORD"},
       {"topic", "topic to consume (default compute)"},
       {"bind", "address to listen on (default 127.0.0.1; 0.0.0.0 or * for every interface, "
                "which needs --insecure)"},
       {"insecure!", "allow binding every interface although peers are not authenticated"},
       {"advertise", "address peers connect to (default: the bind address, or the host name for *)"},
       {"port", "ROUTER port (default ephemeral)"},
       {"ipc-dir", "listen on ipc:// sockets in this directory instead of TCP"},
       {"threads", "handler threads (default 8)"},
       {"heartbeat-ms", "call heartbeat interval in ms (default 1000)"},
       {"max-in-flight-per-peer",
        "requests one client may have queued or running at once (default 1000); beyond it calls "
        "get a retryable RESOURCE_EXHAUSTED and casts are dropped"},
       {"max-queued-requests",
        "requests all clients together may have queued or running (default 10000)"},
       {"inline!", "run handlers on the I/O thread (lowest latency; handlers must not block)"},
       {"also-plain!", "with keys: also serve plain (keyless) clients on a second endpoint, "
                       "registered beside the keyed one (a migration to CurveZMQ)"},
       {"restrict", "METHOD=WHO[,WHO...]: only these identities or groups may call METHOD "
                    "(CurveZMQ; repeatable as METHOD=..;METHOD2=..)"}});
  for (auto& [name, help] : zrpc::tools::SecurityFlags()) flags.Add(name, help);
  flags.Parse(argc, argv);
  zrpc::tools::UseReleaseMutexes();

  // Block the signals we wait for before any thread starts, so they all inherit the mask.
  zrpc::BlockShutdownSignals();

  zrpc::TransportOptions options;
  options.host = flags.Get("host");
  options.matchmaker = flags.Get("matchmaker", "local://");
  options.bind_address = flags.Get("bind", "127.0.0.1");
  options.insecure = flags.Has("insecure");
  options.security = zrpc::tools::SecurityFromFlags(flags);
  options.advertise_address = flags.Get("advertise");
  options.port = static_cast<int>(flags.GetInt("port", 0));
  options.ipc_dir = flags.Get("ipc-dir");
  options.thread_pool_size = static_cast<int>(flags.GetInt("threads", 8));
  options.call_heartbeat_interval = absl::Milliseconds(flags.GetInt("heartbeat-ms", 1000));
  options.max_in_flight_per_peer = static_cast<int>(
      flags.GetInt("max-in-flight-per-peer", options.max_in_flight_per_peer));
  options.max_queued_requests =
      static_cast<int>(flags.GetInt("max-queued-requests", options.max_queued_requests));
  if (options.max_in_flight_per_peer < 1 || options.max_queued_requests < 1) {
    flags.Fail("--max-in-flight-per-peer and --max-queued-requests need a number >= 1");
  }
  absl::StatusOr<std::unique_ptr<zrpc::Transport>> transport = zrpc::Transport::Create(options);
  if (!transport.ok()) {
    std::cerr << "zrpc-service: " << transport.status().message() << "\n";
    return 1;
  }
  const std::string host = (*transport)->options().host;
  const std::string topic = flags.Get("topic", "compute");

  Notes notes;
  absl::StatusOr<std::unique_ptr<zrpc::Notifier>> notifier =
      zrpc::Notifier::Create(**transport, zrpc::QueueGetFor(topic, host));
  if (!notifier.ok()) {
    std::cerr << "zrpc-service: " << notifier.status().message() << "\n";
    return 1;
  }
  zrpc::Dispatcher dispatcher;
  zrpc::Endpoint endpoint = ReferenceEndpoint(host, &notes, flags.Has("inline"), notifier->get());
  // --restrict "sleep=admin,ops;echo=alice": who may call which method.
  for (absl::string_view rule : absl::StrSplit(flags.Get("restrict"), ';', absl::SkipEmpty())) {
    std::pair<std::string, std::string> kv = absl::StrSplit(rule, absl::MaxSplits('=', 1));
    endpoint.Allow(kv.first, absl::StrSplit(kv.second, ',', absl::SkipEmpty()));
  }
  if (absl::Status s = dispatcher.Add(std::move(endpoint));
      !s.ok()) {
    std::cerr << "zrpc-service: " << s.message() << "\n";
    return 1;
  }
  absl::StatusOr<std::unique_ptr<zrpc::Connection>> conn = (*transport)->CreateConnection();
  absl::Status s = conn.status();
  if (s.ok()) s = (*conn)->CreateConsumer(topic, dispatcher);
  if (s.ok()) s = (*conn)->CreateConsumer(zrpc::QueueGetFor(topic, host), dispatcher);
  if (s.ok()) s = (*conn)->CreateConsumer(topic, dispatcher, {.fanout = true});
  if (s.ok()) s = (*conn)->ConsumeInThread();
  // A migration to CurveZMQ: the same handlers on a second, plain transport. Keyed clients use
  // only the keyed registrations, plain clients only the plain ones.
  std::unique_ptr<zrpc::Transport> plain;
  absl::StatusOr<std::unique_ptr<zrpc::Connection>> plain_conn = nullptr;
  if (s.ok() && flags.Has("also-plain")) {
    if (!options.security.enabled()) flags.Fail("--also-plain needs --key-file (it adds a plain endpoint to a keyed service)");
    zrpc::TransportOptions plain_options = options;
    plain_options.security = {};
    plain_options.port = 0;
    absl::StatusOr<std::unique_ptr<zrpc::Transport>> t = zrpc::Transport::Create(plain_options);
    s = t.status();
    if (s.ok()) {
      plain = *std::move(t);
      plain_conn = plain->CreateConnection();
      s = plain_conn.status();
    }
    if (s.ok()) s = (*plain_conn)->CreateConsumer(topic, dispatcher);
    if (s.ok()) s = (*plain_conn)->CreateConsumer(zrpc::QueueGetFor(topic, host), dispatcher);
    if (s.ok()) s = (*plain_conn)->CreateConsumer(topic, dispatcher, {.fanout = true});
    if (s.ok()) s = (*plain_conn)->ConsumeInThread();
  }
  if (!s.ok()) {
    std::cerr << "zrpc-service: " << s.message() << "\n";
    return 1;
  }
  std::cout << "READY " << (*transport)->endpoint() << std::endl;

  zrpc::WaitForShutdownSignal();
  (*conn)->Close();
  if (plain_conn.ok() && *plain_conn) (*plain_conn)->Close();
  if (plain) plain->Close();
  notifier->reset();
  (*transport)->Close();
  return 0;
}
