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

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "cli_common.h"
#include "src/base/escape.h"
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

// One --restrict rule: only `who` (identities or groups) may call `method`.
struct Restriction {
  std::string method;
  std::vector<std::string> who;
};

// --restrict "sleep=admin,ops;echo=alice". Every rule needs a method of `served`, '=' and at
// least one identity or group, each by the name rules: a rule that lost its names ("sleep=",
// "sleep") must not leave the method open to everyone. The error names the rule and the form.
absl::StatusOr<std::vector<Restriction>> ParseRestrictions(std::string_view flag,
                                                           const zrpc::Endpoint& served) {
  std::vector<Restriction> out;
  for (absl::string_view rule : absl::StrSplit(absl::string_view(flag.data(), flag.size()), ';',
                                               absl::SkipEmpty())) {
    auto bad = [&](std::string_view why) {
      return absl::InvalidArgumentError(absl::StrCat(
          "--restrict '", zrpc::internal::EscapeForTerminal(std::string_view(rule.data(), rule.size())),
          "': ",
          absl::string_view(why.data(), why.size()),
          "; expected METHOD=IDENT[,IDENT...] (several rules separated by ';')"));
    };
    const size_t eq = rule.find('=');
    if (eq == absl::string_view::npos) return bad("no '=' and no identities or groups");
    Restriction r{.method = std::string(rule.substr(0, eq))};
    if (r.method.empty()) return bad("no method");
    if (!served.methods.contains(r.method)) {
      return bad("this service has no method \"" + zrpc::internal::EscapeForTerminal(r.method) +
                 "\"");
    }
    const absl::string_view list = rule.substr(eq + 1);
    if (list.empty()) return bad("an empty list of identities or groups would leave it open");
    for (absl::string_view who : absl::StrSplit(list, ',')) {
      if (absl::Status s =
              zrpc::ValidateName("an identity or group", std::string_view(who.data(), who.size()));
          !s.ok()) {
        return bad(std::string_view(s.message().data(), s.message().size()));
      }
      r.who.emplace_back(who);
    }
    out.push_back(std::move(r));
  }
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  zrpc::tools::UsageReporter::Get().program = "zrpc-service";
  zrpc::tools::ToolApp app(
      "zrpc-service", "zrpc-service [flags]",
      "The zrpc reference service: echo, add, count (stream), fail, sleep, whoami, caller,\n"
      "deadline, note, stats, emit.");
  struct {
    std::string host, matchmaker = "local://", topic = "compute", bind = "127.0.0.1", advertise;
    std::string port = "0", ipc_dir, threads = "8", heartbeat_ms = "1000", restrict;
    std::string max_in_flight_per_peer, max_queued_requests, max_workers_per_caller;
    std::string metrics_listen;
    bool insecure = false, inline_handlers = false, also_plain = false;
    zrpc::tools::SecurityFlags security;
  } f;
  CLI::App& a = app.app();
  a.add_option("--host", f.host, "this instance's host name (default: the machine's)")->type_name("HOST");
  a.add_option("--matchmaker", f.matchmaker,
               "matchmaker URL (default local://); for redis:// keep the password off argv: "
               "?password_file=PATH (mode 0600) or $ZRPC_REDIS_PASSWORD")
      ->type_name("URL");
  a.add_option("--topic", f.topic, "topic to consume (default compute)")->type_name("NAME");
  a.add_option("--bind", f.bind,
               "address to listen on (default 127.0.0.1; 0.0.0.0 or * for every interface, which "
               "needs --insecure)")
      ->type_name("ADDRESS");
  a.add_flag("--insecure", f.insecure,
             "allow binding every interface although peers are not authenticated");
  a.add_option("--advertise", f.advertise,
               "address peers connect to (default: the bind address, or the host name for *)")
      ->type_name("ADDRESS");
  a.add_option("--port", f.port, "ROUTER port (default ephemeral)")->type_name("PORT");
  a.add_option("--ipc-dir", f.ipc_dir, "listen on ipc:// sockets in this directory instead of TCP")
      ->type_name("DIR");
  a.add_option("--threads", f.threads, "handler threads (default 8)")->type_name("N");
  a.add_option("--heartbeat-ms", f.heartbeat_ms, "call heartbeat interval in ms (default 1000)")
      ->type_name("MS");
  a.add_option("--max-in-flight-per-peer", f.max_in_flight_per_peer,
               "requests one client may have queued or running at once (default 1000); beyond "
               "it calls get a retryable RESOURCE_EXHAUSTED and casts are dropped")
      ->type_name("N");
  a.add_option("--metrics-listen", f.metrics_listen,
               "serve Prometheus metrics at http://HOST:PORT/metrics (e.g. 127.0.0.1:9464; every "
               "interface only with --insecure); also `zrpc metrics TOPIC`")
      ->type_name("HOST:PORT");
  a.add_option("--max-workers-per-caller", f.max_workers_per_caller,
               "handler threads one caller may hold at once (default: half of --threads, at "
               "least 1); its other requests wait their turn")
      ->type_name("N");
  a.add_option("--max-queued-requests", f.max_queued_requests,
               "requests all clients together may have queued or running (default 10000)")
      ->type_name("N");
  a.add_flag("--inline", f.inline_handlers,
             "run handlers on the I/O thread (lowest latency; handlers must not block)");
  a.add_flag("--also-plain", f.also_plain,
             "with keys: also serve plain (keyless) clients on a second endpoint, registered "
             "beside the keyed one (a migration to CurveZMQ)");
  a.add_option("--restrict", f.restrict,
               "METHOD=WHO[,WHO...]: only these identities or groups may call METHOD (CurveZMQ; "
               "several as METHOD=..;METHOD2=..)")
      ->type_name("RULES");
  f.security.AddTo(app);
  app.AddVersionFlag();
  std::vector<std::string> positionals;
  app.Positionals(&positionals);
  app.Parse(argc, argv);
  if (!positionals.empty()) app.Fail("zrpc-service takes no arguments, only flags (got '" + positionals[0] + "')");
  // Checked before anything starts (the methods are the reference endpoint's, whatever its host).
  Notes no_notes;
  absl::StatusOr<std::vector<Restriction>> restrictions =
      ParseRestrictions(f.restrict, ReferenceEndpoint("", &no_notes, false, nullptr));
  if (!restrictions.ok()) app.Fail(std::string(restrictions.status().message()));
  zrpc::tools::UseReleaseMutexes();

  // Block the signals we wait for before any thread starts, so they all inherit the mask.
  zrpc::BlockShutdownSignals();

  zrpc::TransportOptions options;
  options.host = f.host;
  options.matchmaker = f.matchmaker;
  options.bind_address = f.bind;
  options.insecure = f.insecure;
  options.security = f.security.Resolve(app);
  options.advertise_address = f.advertise;
  options.port = static_cast<int>(app.Integer("--port", f.port, 0, 65535));
  options.ipc_dir = f.ipc_dir;
  options.thread_pool_size = static_cast<int>(app.Integer("--threads", f.threads, 1, 4096));
  options.call_heartbeat_interval =
      absl::Milliseconds(app.Integer("--heartbeat-ms", f.heartbeat_ms,
                                     absl::ToInt64Milliseconds(zrpc::kMinCallHeartbeatInterval),
                                     absl::ToInt64Milliseconds(zrpc::kMaxCallHeartbeatInterval)));
  if (app.Has("--max-in-flight-per-peer")) {
    options.max_in_flight_per_peer = static_cast<int>(
        app.Integer("--max-in-flight-per-peer", f.max_in_flight_per_peer, 1, 1 << 30));
  }
  options.metrics_listen = f.metrics_listen;
  if (app.Has("--max-workers-per-caller")) {
    options.max_workers_per_caller = static_cast<int>(
        app.Integer("--max-workers-per-caller", f.max_workers_per_caller, 1, 1 << 20));
  }
  if (app.Has("--max-queued-requests")) {
    options.max_queued_requests =
        static_cast<int>(app.Integer("--max-queued-requests", f.max_queued_requests, 1, 1 << 30));
  }
  absl::StatusOr<std::unique_ptr<zrpc::Transport>> transport = zrpc::Transport::Create(options);
  if (!transport.ok()) {
    std::cerr << "zrpc-service: " << transport.status().message() << "\n";
    return 1;
  }
  const std::string host = (*transport)->options().host;
  const std::string topic = f.topic;

  Notes notes;
  absl::StatusOr<std::unique_ptr<zrpc::Notifier>> notifier =
      zrpc::Notifier::Create(**transport, zrpc::QueueGetFor(topic, host));
  if (!notifier.ok()) {
    std::cerr << "zrpc-service: " << notifier.status().message() << "\n";
    return 1;
  }
  zrpc::Dispatcher dispatcher;
  zrpc::Endpoint endpoint = ReferenceEndpoint(host, &notes, f.inline_handlers, notifier->get());
  for (Restriction& r : *restrictions) endpoint.Allow(r.method, std::move(r.who));
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
  if (s.ok() && f.also_plain) {
    if (!options.security.enabled()) app.Fail("--also-plain needs --key-file (it adds a plain endpoint to a keyed service)");
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
  if ((*transport)->metrics_port() > 0) {
    std::cout << "METRICS port " << (*transport)->metrics_port() << std::endl;
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
