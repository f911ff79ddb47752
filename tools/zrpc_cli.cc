// SPDX-License-Identifier: Apache-2.0
// zrpc: the command line for zrpc services (like grpcurl). See `zrpc --help`.
#include <signal.h>
#include <stdlib.h>

#include <atomic>
#include <iostream>
#include <map>
#include <string>
#include <vector>

#include "absl/strings/str_format.h"
#include "flags.h"
#include "src/base/escape.h"
#include "zrpc/security.h"
#include "zrpc/zrpc.h"

namespace {

using zrpc::tools::Flags;

constexpr char kOverview[] =
    "usage: zrpc COMMAND [ARGS] [flags]      (zrpc COMMAND --help for one command)\n\n"
    "Commands:\n"
    "  call TOPIC METHOD [ARGS_JSON]       call a method and print its result\n"
    "  cast TOPIC METHOD [ARGS_JSON]       one-way message to one instance\n"
    "  fanout TOPIC METHOD [ARGS_JSON]     one-way message to every instance\n"
    "  multicall TOPIC METHOD [ARGS_JSON]  print each streamed value as it arrives\n"
    "  notify EVENT_TYPE PRIORITY [PAYLOAD_JSON]  publish a notification\n"
    "  listen TOPIC[.PRIORITY] ...         print notifications as they arrive\n"
    "  topics                              list the registrations the matchmaker knows\n"
    "  ping TOPIC                          is an instance of TOPIC there?\n"
    "  describe TOPIC                      an instance's topics, API versions and methods\n"
    "  keygen NAME [--dir DIR]             write a CURVE key pair (NAME.key and NAME.pub)\n\n"
    "Exit codes: 0 success, 1 remote error, 2 bad usage, 3 timeout, 4 no consumer,\n"
    "5 lost contact with the service, 6 any other error, 7 not authorized.";

// The DESIGN §5 exit code of a failure.
int ExitCode(const absl::Status& s) {
  if (s.ok()) return 0;
  switch (zrpc::GetErrorKind(s).value_or(zrpc::ErrorKind::kRpcException)) {
    case zrpc::ErrorKind::kTimeout: return 3;
    case zrpc::ErrorKind::kNoConsumer: return 4;
    case zrpc::ErrorKind::kPeerLost: return 5;
    case zrpc::ErrorKind::kNotAuthorized: return 7;
    case zrpc::ErrorKind::kRemoteError:
    case zrpc::ErrorKind::kUnsupportedRpcEnvelopeVersion: return 1;
    default: break;
  }
  return zrpc::IsRemote(s) ? 1 : 6;
}

// Text from a service or a registry, safe for the terminal (no control bytes or escapes).
std::string Safe(std::string_view text) { return zrpc::internal::EscapeForTerminal(text); }

int Fail(const absl::Status& s) {
  std::string text(s.message());
  for (size_t p; (p = text.find('\n')) != std::string::npos;) text.replace(p, 1, " | ");
  text = Safe(text);
  std::optional<zrpc::ErrorKind> kind = zrpc::GetErrorKind(s);
  std::cerr << "zrpc: " << (kind ? std::string(zrpc::ErrorKindName(*kind)) : absl::StatusCodeToString(s.code()))
            << ": " << text << std::endl;
  return ExitCode(s);
}

std::string Json(const zrpc::Value& v) { return zrpc::ToJson(v).value_or("null"); }

// The flags every command shares.
std::map<std::string, std::string> CommonFlags() {
  return {{"matchmaker",
           "matchmaker URL (default: $ZRPC_MATCHMAKER, else local://); for redis:// keep the\n"
           "      password off argv: ?password_file=PATH (mode 0600) or $ZRPC_REDIS_PASSWORD"},
          {"host", "send to TOPIC.HOST, that instance"},
          {"version", "API version to ask for (default 1.0)"},
          {"namespace", "API namespace"},
          {"timeout", "seconds to wait for replies (default 10)"},
          {"context", "request context as a JSON object"},
          {"exchange", "exchange (default openstack)"},
          {"json!", "machine-readable output (one JSON document per line)"},
          {"key-file", "this client's CURVE key pair, NAME.key (default $ZRPC_KEY_FILE)"},
          {"authorized-keys", "service keys this client trusts (default $ZRPC_AUTHORIZED_KEYS)"}};
}

struct Common {
  std::unique_ptr<zrpc::Transport> transport;
  zrpc::Context context;
  std::string topic;
  absl::Duration timeout;
  bool json = false;
};

// Parses a JSON argument or fails with exit code 2 (bad usage).
zrpc::Value ParseArg(const Flags& f, const std::string& what, const std::string& text,
                     bool must_be_object) {
  absl::StatusOr<zrpc::Value> v = zrpc::ParseJson(text);
  if (!v.ok()) f.Fail(what + " is not valid JSON: " + std::string(v.status().message()));
  if (must_be_object && !v->is_object()) f.Fail(what + " must be a JSON object");
  return *v;
}

absl::StatusOr<Common> Setup(const Flags& f, const std::string& topic_arg) {
  Common c;
  c.json = f.Has("json");
  std::string mm = f.Get("matchmaker");
  if (mm.empty()) mm = getenv("ZRPC_MATCHMAKER") ? getenv("ZRPC_MATCHMAKER") : "local://";
  c.timeout = absl::Seconds(f.GetSeconds("timeout", 10));
  if (f.Has("context")) c.context = zrpc::Context(ParseArg(f, "--context", f.Get("context"), true).AsObject());
  c.topic = f.Has("host") ? zrpc::QueueGetFor(topic_arg, f.Get("host")) : topic_arg;
  zrpc::TransportOptions o;
  o.host = absl::StrFormat("zrpc-cli-%d", getpid());
  o.matchmaker = mm;
  if (f.Has("exchange")) o.exchange = f.Get("exchange");
  o.response_timeout = c.timeout;
  o.cast_timeout = c.timeout;
  o.linger = absl::Seconds(1);
  o.security = zrpc::tools::SecurityFromFlags(f);
  absl::StatusOr<std::unique_ptr<zrpc::Transport>> t = zrpc::Transport::Create(o);
  if (!t.ok()) return t.status();
  c.transport = *std::move(t);
  return c;
}

// Fails with exit code 2 (bad usage) unless `name` is a notification priority.
void CheckPriority(const Flags& f, std::string_view name) {
  if (absl::StatusOr<zrpc::Priority> p = zrpc::ParsePriority(name); !p.ok()) {
    f.Fail(std::string(p.status().message()));
  }
}

zrpc::Message MakeMessage(const Flags& f, const std::string& method, const std::vector<std::string>& pos,
                          size_t args_index) {
  zrpc::Message m;
  m.method = method;
  if (pos.size() > args_index) m.args = ParseArg(f, "ARGS_JSON", pos[args_index], true).AsObject();
  if (f.Has("version")) m.version = f.Get("version");
  if (f.Has("namespace")) m.ns = f.Get("namespace");
  return m;
}

int Send(const std::string& cmd, int argc, char** argv) {
  Flags f(absl::StrFormat("usage: zrpc %s TOPIC METHOD [ARGS_JSON] [flags]\n%s", cmd,
                          cmd == "call"        ? "Calls METHOD on one instance of TOPIC and prints its result as JSON."
                          : cmd == "multicall" ? "Calls a streaming METHOD and prints each value as it arrives, one per line."
                          : cmd == "cast"      ? "Sends a one-way message to one instance of TOPIC."
                                               : "Sends a one-way message to every instance of TOPIC."),
          CommonFlags());
  f.Parse(argc, argv);
  const auto& pos = f.positional();
  if (pos.size() < 2 || pos.size() > 3) f.Fail("expected TOPIC METHOD [ARGS_JSON]");
  zrpc::Message m = MakeMessage(f, pos[1], pos, 2);
  absl::StatusOr<Common> c = Setup(f, pos[0]);
  if (!c.ok()) return Fail(c.status());
  zrpc::Transport& t = *c->transport;
  if (cmd == "call") {
    absl::StatusOr<zrpc::Value> r = t.Call(c->context, c->topic, std::move(m), {.timeout = c->timeout});
    if (!r.ok()) return Fail(r.status());
    std::cout << Json(*r) << std::endl;
    return 0;
  }
  if (cmd == "multicall") {
    absl::StatusOr<std::unique_ptr<zrpc::ReplyStream>> s =
        t.MultiCall(c->context, c->topic, std::move(m), {.timeout = c->timeout});
    if (!s.ok()) return Fail(s.status());
    while (true) {
      absl::StatusOr<std::optional<zrpc::Value>> v = (*s)->Next();
      if (!v.ok()) return Fail(v.status());
      if (!v->has_value()) return 0;
      std::cout << Json(**v) << std::endl;
    }
  }
  absl::Status s = cmd == "cast" ? t.Cast(c->context, c->topic, std::move(m))
                                 : t.FanoutCast(c->context, c->topic, std::move(m));
  if (!s.ok()) return Fail(s);
  if (c->json) std::cout << "{\"ok\":true}" << std::endl;
  return 0;
}

int Introspect(const std::string& cmd, int argc, char** argv) {
  Flags f(absl::StrFormat("usage: zrpc %s TOPIC [flags]\n%s", cmd,
                          cmd == "ping" ? "Asks one instance of TOPIC (or TOPIC.HOST with --host) whether it is there."
                                        : "Prints an instance's topics, API versions and methods."),
          CommonFlags());
  f.Parse(argc, argv);
  if (f.positional().size() != 1) f.Fail("expected TOPIC");
  absl::StatusOr<Common> c = Setup(f, f.positional()[0]);
  if (!c.ok()) return Fail(c.status());
  zrpc::Message m;
  m.method = cmd;
  m.ns = std::string(zrpc::kReservedNamespace);
  const absl::Time start = absl::Now();
  absl::StatusOr<zrpc::Value> r = c->transport->Call(c->context, c->topic, std::move(m), {.timeout = c->timeout});
  if (!r.ok()) return Fail(r.status());
  // What a service answers is untrusted: any shape is printed, never trusted to have fields.
  auto str = [](const zrpc::Value* v) { return v && v->is_string() ? Safe(v->AsString()) : "?"; };
  auto array = [](const zrpc::Value* v) -> const zrpc::Array& {
    static const zrpc::Array empty;
    return v && v->is_array() ? v->AsArray() : empty;
  };
  if (cmd == "ping" && !c->json) {
    std::cout << absl::StrFormat("pong from %s in %.2f ms", str(r->Find("host")),
                                 absl::ToDoubleMilliseconds(absl::Now() - start))
              << std::endl;
    return 0;
  }
  if (cmd == "describe" && !c->json) {
    if (!r->is_object() || !r->Find("topics") || !r->Find("endpoints")) {
      std::cout << "unexpected answer: " << Safe(Json(*r)) << std::endl;
      return 6;
    }
    std::cout << "host " << str(r->Find("host")) << " at " << str(r->Find("endpoint")) << "\n";
    for (const zrpc::Value& t : array(r->Find("topics"))) {
      const zrpc::Value* fanout = t.Find("fanout");
      std::cout << "  consumes " << str(t.Find("exchange")) << " " << str(t.Find("topic"))
                << (fanout && fanout->is_bool() && fanout->AsBool() ? " (fanout)" : "")
                << (t.Find("pool") ? " (pool " + str(t.Find("pool")) + ")" : "") << "\n";
    }
    for (const zrpc::Value& e : array(r->Find("endpoints"))) {
      const zrpc::Value* ns = e.Find("namespace");
      std::cout << "  namespace \"" << (ns && ns->is_string() ? Safe(ns->AsString()) : "")
                << "\" version " << str(e.Find("version")) << ":";
      for (const zrpc::Value& name : array(e.Find("methods"))) {
        std::cout << " " << (name.is_string() ? Safe(name.AsString()) : "?");
      }
      std::cout << "\n";
    }
    return 0;
  }
  std::cout << Json(*r) << std::endl;
  return 0;
}

int Topics(int argc, char** argv) {
  Flags f("usage: zrpc topics [flags]\nLists the registrations the matchmaker knows.", CommonFlags());
  f.Parse(argc, argv);
  if (!f.positional().empty()) f.Fail("topics takes no arguments");
  absl::StatusOr<Common> c = Setup(f, "topics");
  if (!c.ok()) return Fail(c.status());
  absl::StatusOr<std::vector<zrpc::Registration>> regs =
      c->transport->matchmaker().List(f.Has("exchange") ? f.Get("exchange") : "");
  if (!regs.ok()) return Fail(regs.status());
  for (const zrpc::Registration& r : *regs) {
    if (c->json) {
      std::cout << Json(zrpc::Value(zrpc::Object{{"exchange", r.exchange}, {"key", r.Key()}, {"host", r.host},
                                                 {"endpoint", r.endpoint}, {"pub_endpoint", r.pub_endpoint},
                                                 {"pool", r.pool}}))
                << "\n";
    } else {
      std::cout << absl::StrFormat("%-10s %-28s %-14s %s%s\n", Safe(r.exchange), Safe(r.Key()),
                                   Safe(r.host), Safe(r.endpoint),
                                   r.pool.empty() ? "" : "  pool " + Safe(r.pool));
    }
  }
  return 0;
}

int Notify(int argc, char** argv) {
  auto flags = CommonFlags();
  flags["topic"] = "notification topic (default notifications)";
  flags["publisher-id"] = "publisher id (default zrpc-cli)";
  flags["wait"] = "seconds to let listeners subscribe before publishing (default 1)";
  Flags f("usage: zrpc notify EVENT_TYPE PRIORITY [PAYLOAD_JSON] [flags]\n"
          "Publishes one notification. PRIORITY: debug, info, warn, error, critical, audit, sample.\n"
          "Listeners subscribed before it is published get it (PUB/SUB keeps no history).",
          flags);
  f.Parse(argc, argv);
  const auto& pos = f.positional();
  if (pos.size() < 2 || pos.size() > 3) f.Fail("expected EVENT_TYPE PRIORITY [PAYLOAD_JSON]");
  CheckPriority(f, pos[1]);
  zrpc::Value payload = pos.size() == 3 ? ParseArg(f, "PAYLOAD_JSON", pos[2], false) : zrpc::Value();
  absl::StatusOr<Common> c = Setup(f, "notify");
  if (!c.ok()) return Fail(c.status());
  absl::StatusOr<std::unique_ptr<zrpc::Notifier>> n = zrpc::Notifier::Create(
      *c->transport, f.Get("publisher-id", "zrpc-cli"), {.topics = {f.Get("topic", "notifications")}});
  if (!n.ok()) return Fail(n.status());
  absl::SleepFor(absl::Seconds(f.GetSeconds("wait", 1, /*allow_zero=*/true)));
  if (absl::Status s = (*n)->Notify(c->context, pos[0], pos[1], std::move(payload)); !s.ok()) return Fail(s);
  absl::SleepFor(absl::Milliseconds(100));  // let the I/O thread publish before closing
  if (c->json) std::cout << "{\"ok\":true}" << std::endl;
  return 0;
}

int Keygen(int argc, char** argv) {
  Flags f(
      "usage: zrpc keygen NAME [--dir DIR]\n"
      "Writes a new CURVE key pair: DIR/NAME.key (public and secret key, mode 0600: point\n"
      "key_file at it) and DIR/NAME.pub (the line \"NAME PUBLIC-KEY\" to add to the\n"
      "authorized_keys file of every peer that admits or trusts NAME). Never replaces a file.",
      {{"dir", "directory to write into (default: the current directory)"}});
  f.Parse(argc, argv);
  if (f.positional().size() != 1) f.Fail("expected NAME");
  const std::string& name = f.positional()[0];
  if (absl::Status s = zrpc::ValidateName("key name", name); !s.ok())
    f.Fail(std::string(s.message()));
  const std::string dir = f.Get("dir", ".");
  absl::StatusOr<zrpc::CurveKeyPair> keys = zrpc::GenerateCurveKeyPair();
  if (!keys.ok()) return Fail(keys.status());
  if (absl::Status s = zrpc::WriteCurveKeyPair(dir, name, *keys); !s.ok()) return Fail(s);
  const std::string base = Safe(dir + "/" + name);
  std::cout << "wrote " << base << ".key  (secret key, mode 0600: keep it private; key_file)\n"
            << "wrote " << base << ".pub  (public key, fingerprint "
            << zrpc::KeyFingerprint(keys->public_key)
            << ": add it to the authorized_keys of the peers that admit or trust " << Safe(name)
            << ")" << std::endl;
  return 0;
}

std::atomic<bool> interrupted{false};

int Listen(int argc, char** argv) {
  auto flags = CommonFlags();
  flags["count"] = "exit after this many notifications";
  flags["for"] = "exit after this many seconds";
  flags["pool"] = "share notifications with other listeners of this pool";
  Flags f("usage: zrpc listen TOPIC[.PRIORITY] ... [flags]\n"
          "Prints notifications as they arrive, one JSON document per line. A listener misses\n"
          "what was published before it subscribed.",
          flags);
  f.Parse(argc, argv);
  if (f.positional().empty()) f.Fail("expected TOPIC[.PRIORITY]");
  for (const std::string& target : f.positional()) {
    const size_t dot = target.rfind('.');
    if (dot != std::string::npos) CheckPriority(f, std::string_view(target).substr(dot + 1));
  }
  absl::StatusOr<Common> c = Setup(f, "listen");
  if (!c.ok()) return Fail(c.status());
  const long count = f.GetInt("count", -1);
  std::atomic<long> seen{0};
  absl::Mutex out_mu;
  auto listener = zrpc::NotificationListener::Create(
      *c->transport, f.positional(),
      [&](const zrpc::Notification& n) {
        absl::MutexLock lock(&out_mu);
        std::cout << Json(zrpc::Value(zrpc::Object{{"topic", n.topic},
                                                   {"priority", std::string(zrpc::PriorityName(n.priority))},
                                                   {"event_type", n.event_type},
                                                   {"publisher_id", n.publisher_id},
                                                   {"message_id", n.message_id},
                                                   {"timestamp", n.timestamp},
                                                   {"payload", n.payload}}))
                  << std::endl;
        seen++;
      },
      {.pool = f.Get("pool")});
  if (!listener.ok()) return Fail(listener.status());
  signal(SIGINT, [](int) { interrupted = true; });
  signal(SIGTERM, [](int) { interrupted = true; });
  const absl::Time until =
      f.Has("for") ? absl::Now() + absl::Seconds(f.GetSeconds("for", 0)) : absl::InfiniteFuture();
  while (!interrupted && absl::Now() < until && (count < 0 || seen < count)) absl::SleepFor(absl::Milliseconds(20));
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  // stderr is for the one-line error, unless ZRPC_LOG_LEVEL asks for more (e.g. "warning" to see
  // which registry files a lookup skipped).
  if (std::getenv("ZRPC_LOG_LEVEL") == nullptr) zrpc::SetLogLevel(zrpc::LogLevel::kError);
  zrpc::tools::UseReleaseMutexes();
  if (argc < 2 || std::string(argv[1]) == "--help" || std::string(argv[1]) == "-h" ||
      std::string(argv[1]) == "help") {
    std::cout << kOverview << std::endl;
    return argc < 2 ? 2 : 0;
  }
  const std::string cmd = argv[1];
  // The command's own flags parser sees argv without the command.
  argv[1] = argv[0];
  ++argv;
  --argc;
  if (cmd == "call" || cmd == "cast" || cmd == "fanout" || cmd == "multicall") return Send(cmd, argc, argv);
  if (cmd == "ping" || cmd == "describe") return Introspect(cmd, argc, argv);
  if (cmd == "topics") return Topics(argc, argv);
  if (cmd == "notify") return Notify(argc, argv);
  if (cmd == "listen") return Listen(argc, argv);
  if (cmd == "keygen") return Keygen(argc, argv);
  std::cerr << "zrpc: unknown command \"" << cmd << "\"\n" << kOverview << std::endl;
  return 2;
}
