// SPDX-License-Identifier: Apache-2.0
// zrpc: the command line for zrpc services (like grpcurl). See `zrpc --help`.
#include <signal.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <functional>
#include <iostream>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_format.h"
#include "cli_common.h"
#include "describe_format.h"
#include "src/base/escape.h"
#include "src/base/secure_fs.h"
#include "zrpc/security.h"
#include "zrpc/zrpc.h"

namespace {

using zrpc::tools::ToolApp;

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
    "  ping TOPIC [--all]                  is an instance (or every instance) of TOPIC there?\n"
    "  describe TOPIC                      an instance's topics, API versions and signatures\n"
    "  metrics TOPIC [--host H]            print an instance's Prometheus metrics\n"
    "  keygen NAME [--dir DIR]             write a CURVE key pair (NAME.key and NAME.pub)\n"
    "  migrate-keys FILE                   print FILE with the key roles it meant before roles\n"
    "  version                             print zrpc's version (also: zrpc --version)\n\n"
    "ARGS_JSON and PAYLOAD_JSON: a JSON text, @FILE or @- (standard input); or -d/--data.\n"
    "Flags go after the command; `--` ends them. With --json, errors are one JSON object on\n"
    "stderr: {\"error\": {\"code\": EXIT_CODE, \"status\", \"kind\", \"message\"}}.\n\n"
    "Exit codes: 0 success, 1 remote error, 2 bad usage, 3 timeout, 4 no consumer,\n"
    "5 lost contact with the service, 6 any other error, 7 not authorized (or not\n"
    "permitted to use the matchmaker).";

// The DESIGN §5 exit code of a failure.
int ExitCode(const absl::Status& s) {
  if (s.ok()) return 0;
  switch (zrpc::GetErrorKind(s).value_or(zrpc::ErrorKind::kRpcException)) {
    case zrpc::ErrorKind::kTimeout:
      return 3;
    case zrpc::ErrorKind::kNoConsumer:
      return 4;
    case zrpc::ErrorKind::kPeerLost:
      return 5;
    case zrpc::ErrorKind::kNotAuthorized:
      return 7;
    case zrpc::ErrorKind::kRemoteError:
    case zrpc::ErrorKind::kUnsupportedRpcEnvelopeVersion:
      return 1;
    default:
      break;
  }
  if (zrpc::IsRemote(s)) return 1;
  // Refused locally: a matchmaker socket this user may not use, a sidecar that refuses the key.
  if (s.code() == absl::StatusCode::kPermissionDenied || s.code() == absl::StatusCode::kUnauthenticated) {
    return 7;
  }
  return 6;
}

// Text from a service or a registry, safe for the terminal (no control bytes or escapes).
std::string Safe(std::string_view text) { return zrpc::internal::EscapeForTerminal(text); }

std::string OneLine(absl::string_view message) {
  std::string text(message);
  for (size_t p; (p = text.find('\n')) != std::string::npos;) text.replace(p, 1, " | ");
  return Safe(text);
}

std::string KindName(const absl::Status& s) {
  std::optional<zrpc::ErrorKind> kind = zrpc::GetErrorKind(s);
  return kind ? std::string(zrpc::ErrorKindName(*kind)) : "";
}

// Prints a failure in one line (a JSON object with --json) and returns its exit code.
int Fail(const absl::Status& s) {
  const std::string kind = KindName(s);
  const std::string status = absl::StatusCodeToString(s.code());
  const std::string text = OneLine(s.message());
  zrpc::tools::PrintError(ExitCode(s), status, kind,
                          zrpc::tools::UsageReporter::Get().json
                              ? text
                              : absl::StrCat(kind.empty() ? status : kind, ": ", text));
  return ExitCode(s);
}

// A JSON parse error without ParseJson's own "invalid JSON: " prefix (the caller says it).
std::string JsonError(const absl::Status& s) {
  std::string text = OneLine(s.message());
  constexpr std::string_view kPrefix = "invalid JSON: ";
  if (text.rfind(kPrefix, 0) == 0) text.erase(0, kPrefix.size());
  return text;
}

std::string Json(const zrpc::Value& v) { return zrpc::ToJson(v).value_or("null"); }

// A failure as the "error" member of a JSON line.
zrpc::Value ErrorValue(const absl::Status& s) {
  const std::string kind = KindName(s);
  return zrpc::Value(zrpc::Object{{"code", ExitCode(s)},
                                  {"status", absl::StatusCodeToString(s.code())},
                                  {"kind", kind.empty() ? zrpc::Value() : zrpc::Value(kind)},
                                  {"message", OneLine(s.message())}});
}

// Every flag of every command; each command binds the ones it takes.
struct Values {
  std::vector<std::string> args;
  std::string matchmaker, host, api_version, ns, timeout = "10", context, exchange, data;
  std::string topic = "notifications", publisher_id = "zrpc-cli", wait = "1";
  std::string count, for_seconds, pool, dir = ".";
  std::vector<std::string> legacy_version;
  bool json = false, all = false;
  zrpc::tools::SecurityFlags security;
};

// --- Flags, by group ------------------------------------------------------------------------

void AddConnectionFlags(ToolApp& a, Values& v) {
  CLI::App& app = a.app();
  app.add_option("--matchmaker", v.matchmaker,
                 "matchmaker URL (default: $ZRPC_MATCHMAKER, else local://); for redis:// keep "
                 "the password off argv: ?password_file=PATH (mode 0600) or $ZRPC_REDIS_PASSWORD")
      ->type_name("URL");
  app.add_option("--timeout", v.timeout, "seconds to wait for replies (default 10)")
      ->type_name("SECONDS");
  app.add_option("--exchange", v.exchange, "exchange (default openstack)")->type_name("NAME");
  app.add_flag("--json", v.json,
               "machine-readable output: one JSON document per line; errors as a JSON object on "
               "stderr");
  v.security.AddTo(a, "this client's");
}

void AddContextFlag(ToolApp& a, Values& v) {
  a.app().add_option("--context", v.context, "request context as a JSON object")->type_name("JSON");
}

void AddHostFlag(ToolApp& a, Values& v) {
  a.app().add_option("--host", v.host, "send to TOPIC.HOST, that instance")->type_name("HOST");
}

void AddDataFlag(ToolApp& a, Values& v, std::string_view what) {
  a.app()
      .add_option("-d,--data", v.data,
                  absl::StrCat(std::string(what),
                               " as JSON, @FILE or @- (standard input); instead of the "
                               "positional argument, for large ones"))
      ->type_name("JSON|@FILE|@-");
}

void AddMessageFlags(ToolApp& a, Values& v) {
  CLI::App& app = a.app();
  app.add_option("--api-version", v.api_version, "API version to ask for (default 1.0)")
      ->type_name("X.Y");
  app.add_option("--namespace", v.ns, "API namespace")->type_name("NAME");
  // The old spelling of --api-version: refused with a pointer (it now means zrpc's version).
  app.add_option("--version", v.legacy_version)->expected(0, 1)->group("");
  AddContextFlag(a, v);
  AddDataFlag(a, v, "ARGS_JSON");
}

// --- Arguments --------------------------------------------------------------------------------

// The largest argument document read from a flag, a file or stdin: what a service accepts by
// default (TransportOptions::max_message_size).
const size_t kMaxArgumentBytes = zrpc::TransportOptions{}.max_message_size;

// Reads `path` ("-" = stdin), at most kMaxArgumentBytes, or fails with a usage error.
std::string ReadArgumentFile(const ToolApp& a, const std::string& what, const std::string& path) {
  std::ifstream file;
  std::istream* in = &std::cin;
  if (path != "-") {
    file.open(path, std::ios::binary);
    if (!file) a.Fail(absl::StrCat(what, ": cannot read ", path, ": ", std::strerror(errno)));
    in = &file;
  }
  std::string text(kMaxArgumentBytes + 1, '\0');
  in->read(text.data(), static_cast<std::streamsize>(text.size()));
  if (in->bad()) {
    a.Fail(absl::StrCat(what, ": cannot read ", path == "-" ? "standard input" : path, ": ",
                        std::strerror(errno)));
  }
  text.resize(static_cast<size_t>(in->gcount()));
  if (text.size() > kMaxArgumentBytes) {
    a.Fail(
        absl::StrFormat("%s: %s is larger than %d bytes (4 MiB), the largest message a "
                        "service accepts by default",
                        what, path == "-" ? "standard input" : path, kMaxArgumentBytes));
  }
  return text;
}

// The JSON of the positional argument `pos_name` (args[index]) or of -d: text, @FILE or @-.
// Fails with a usage error when both are given, a file cannot be read or the JSON is invalid.
std::optional<zrpc::Value> JsonArgument(const ToolApp& a, const Values& v, size_t index,
                                        const std::string& pos_name, bool must_be_object) {
  const bool positional = v.args.size() > index;
  if (positional && a.Has("--data")) {
    a.Fail(absl::StrCat("give ", pos_name, " either as an argument or with -d, not both"));
  }
  if (!positional && !a.Has("--data")) return std::nullopt;
  std::string text = positional ? v.args[index] : v.data;
  std::string what = positional ? pos_name : "-d";
  if (absl::StartsWith(text, "@")) {
    what = absl::StrCat(what, " ", text);
    text = ReadArgumentFile(a, what, text.substr(1));
  }
  absl::StatusOr<zrpc::Value> parsed = zrpc::ParseJson(text);
  if (!parsed.ok()) {
    a.Fail(absl::StrCat(what, " is not valid JSON: ", JsonError(parsed.status())));
  }
  if (must_be_object && !parsed->is_object()) a.Fail(what + " must be a JSON object");
  return *std::move(parsed);
}

void ExpectArgs(const ToolApp& a, const Values& v, size_t min, size_t max, const char* shape) {
  if (v.args.size() < min || v.args.size() > max) a.Fail(absl::StrCat("expected ", shape));
}

// --- Connecting -------------------------------------------------------------------------------

struct Common {
  std::unique_ptr<zrpc::Transport> transport;
  zrpc::TransportOptions options;
  zrpc::Context context;
  std::string topic;
  absl::Duration timeout;
};

std::string MatchmakerUrl(const Values& v) {
  if (!v.matchmaker.empty()) return v.matchmaker;
  const char* env = getenv("ZRPC_MATCHMAKER");
  return env != nullptr && *env != '\0' ? env : "local://";
}

// Checks the flags every connecting command shares (exit 2 when wrong), before connecting.
void CheckCommon(const ToolApp& a, const Values& v, Common& c) {
  c.timeout = absl::Seconds(a.Seconds("--timeout", v.timeout));
  if (a.Has("--context")) {
    absl::StatusOr<zrpc::Value> ctx = zrpc::ParseJson(v.context);
    if (!ctx.ok()) a.Fail("--context is not valid JSON: " + JsonError(ctx.status()));
    if (!ctx->is_object()) a.Fail("--context must be a JSON object");
    c.context = zrpc::Context(ctx->AsObject());
  }
}

absl::Status Connect(const ToolApp& a, const Values& v, Common& c, const std::string& topic_arg) {
  CheckCommon(a, v, c);
  c.topic = a.Has("--host") ? zrpc::QueueGetFor(topic_arg, v.host) : topic_arg;
  zrpc::TransportOptions& o = c.options;
  o.host = absl::StrFormat("zrpc-cli-%d", getpid());
  o.matchmaker = MatchmakerUrl(v);
  if (a.Has("--exchange")) o.exchange = v.exchange;
  o.response_timeout = c.timeout;
  o.cast_timeout = c.timeout;
  o.linger = absl::Seconds(1);
  o.security = v.security.Resolve(a);
  absl::StatusOr<std::unique_ptr<zrpc::Transport>> t = zrpc::Transport::Create(o);
  if (!t.ok()) return t.status();
  c.transport = *std::move(t);
  return absl::OkStatus();
}

// Fails with exit code 2 (bad usage) unless `name` is a notification priority.
void CheckPriority(const ToolApp& a, std::string_view name) {
  if (absl::StatusOr<zrpc::Priority> p = zrpc::ParsePriority(name); !p.ok()) {
    a.Fail(std::string(p.status().message()));
  }
}

// --- Commands ---------------------------------------------------------------------------------

int Send(const std::string& cmd, ToolApp& a, Values& v) {
  if (a.Has("--version")) {
    a.Fail(
        "--version is now --api-version (the API version to ask for); zrpc's own version is "
        "'zrpc --version'");
  }
  ExpectArgs(a, v, 2, 3, "TOPIC METHOD [ARGS_JSON]");
  zrpc::Message m;
  m.method = v.args[1];
  if (std::optional<zrpc::Value> args = JsonArgument(a, v, 2, "ARGS_JSON", true)) {
    m.args = args->AsObject();
  }
  if (a.Has("--api-version")) m.version = v.api_version;
  if (a.Has("--namespace")) m.ns = v.ns;
  Common c;
  if (absl::Status s = Connect(a, v, c, v.args[0]); !s.ok()) return Fail(s);
  zrpc::Transport& t = *c.transport;
  if (cmd == "call") {
    absl::StatusOr<zrpc::Value> r =
        t.Call(c.context, c.topic, std::move(m), {.timeout = c.timeout});
    if (!r.ok()) return Fail(r.status());
    std::cout << Json(*r) << std::endl;
    return 0;
  }
  if (cmd == "multicall") {
    absl::StatusOr<std::unique_ptr<zrpc::ReplyStream>> s =
        t.MultiCall(c.context, c.topic, std::move(m), {.timeout = c.timeout});
    if (!s.ok()) return Fail(s.status());
    while (true) {
      absl::StatusOr<std::optional<zrpc::Value>> next = (*s)->Next();
      if (!next.ok()) return Fail(next.status());
      if (!next->has_value()) return 0;
      std::cout << Json(**next) << std::endl;
    }
  }
  absl::Status s = cmd == "cast" ? t.Cast(c.context, c.topic, std::move(m))
                                 : t.FanoutCast(c.context, c.topic, std::move(m));
  if (!s.ok()) return Fail(s);
  if (v.json) std::cout << "{\"ok\":true}" << std::endl;
  return 0;
}

zrpc::Message IntrospectionMessage(std::string method) {
  zrpc::Message m;
  m.method = std::move(method);
  m.ns = std::string(zrpc::kReservedNamespace);
  return m;
}

// A matchmaker that knows one registration: a transport using it reaches that one instance.
class PinnedMatchmaker : public zrpc::Matchmaker {
 public:
  explicit PinnedMatchmaker(zrpc::Registration r) : r_(std::move(r)) {}
  absl::Status Register(const zrpc::Registration&) override { return absl::OkStatus(); }
  absl::Status Unregister(const zrpc::Registration&) override { return absl::OkStatus(); }
  absl::Status Heartbeat() override { return absl::OkStatus(); }
  absl::StatusOr<std::vector<zrpc::Registration>> Resolve(std::string_view,
                                                          std::string_view) override {
    return std::vector<zrpc::Registration>{r_};
  }
  absl::StatusOr<std::vector<zrpc::Registration>> List(std::string_view) override {
    return std::vector<zrpc::Registration>{r_};
  }
  absl::StatusOr<std::unique_ptr<zrpc::WatchHandle>> Watch(std::function<void()>) override {
    return std::make_unique<zrpc::WatchHandle>();
  }
  std::string url() const override { return "instance " + r_.endpoint; }

 private:
  const zrpc::Registration r_;
};

struct PingResult {
  zrpc::Registration instance;
  absl::StatusOr<zrpc::Value> answer;
  double ms = 0;
};

// Pings every instance of the topic, each through its own transport, all at once.
int PingAll(const Values& v, Common& c) {
  absl::StatusOr<std::vector<zrpc::Registration>> regs =
      c.transport->matchmaker().Resolve(c.options.exchange, c.topic);
  if (!regs.ok()) return Fail(regs.status());
  std::vector<PingResult> results;
  for (const zrpc::Registration& r : *regs) {
    bool seen = false;
    for (const PingResult& p : results) seen = seen || p.instance.endpoint == r.endpoint;
    if (!seen) results.push_back({.instance = r, .answer = absl::UnknownError("not asked")});
  }
  if (results.empty()) {
    return Fail(zrpc::NoConsumerError(c.topic, "matchmaker " + c.transport->matchmaker().url()));
  }
  std::vector<std::thread> threads;
  for (PingResult& p : results) {
    threads.emplace_back([&c, &p] {
      zrpc::TransportOptions o = c.options;
      o.matchmaker_instance = std::make_shared<PinnedMatchmaker>(p.instance);
      absl::StatusOr<std::unique_ptr<zrpc::Transport>> t = zrpc::Transport::Create(o);
      if (!t.ok()) {
        p.answer = t.status();
        return;
      }
      const absl::Time start = absl::Now();
      p.answer =
          (*t)->Call(c.context, c.topic, IntrospectionMessage("ping"), {.timeout = c.timeout});
      p.ms = absl::ToDoubleMilliseconds(absl::Now() - start);
    });
  }
  for (std::thread& t : threads) t.join();
  int exit_code = 0;
  for (const PingResult& p : results) {
    const zrpc::Value* host = p.answer.ok() ? p.answer->Find("host") : nullptr;
    const std::string shown_host = host && host->is_string() ? host->AsString() : p.instance.host;
    if (v.json) {
      zrpc::Object line{{"host", shown_host}, {"endpoint", p.instance.endpoint}};
      if (p.answer.ok()) {
        const zrpc::Value* pid = p.answer->Find("pid");
        if (pid != nullptr) line.Set("pid", *pid);
        line.Set("latency_ms", p.ms);
      } else {
        line.Set("error", ErrorValue(p.answer.status()));
      }
      std::cout << Json(zrpc::Value(std::move(line))) << "\n";
    } else if (p.answer.ok()) {
      std::cout << absl::StrFormat("pong from %s at %s in %.2f ms\n", Safe(shown_host),
                                   Safe(p.instance.endpoint), p.ms);
    } else {
      std::cout << absl::StrFormat("no answer from %s at %s: %s: %s\n", Safe(shown_host),
                                   Safe(p.instance.endpoint), KindName(p.answer.status()),
                                   OneLine(p.answer.status().message()));
    }
    if (!p.answer.ok() && exit_code == 0) exit_code = ExitCode(p.answer.status());
  }
  std::cout << std::flush;
  return exit_code;
}

int Ping(ToolApp& a, Values& v) {
  ExpectArgs(a, v, 1, 1, "TOPIC");
  if (v.all && a.Has("--host"))
    a.Fail("--all pings every instance: it cannot be combined with --host");
  Common c;
  if (absl::Status s = Connect(a, v, c, v.args[0]); !s.ok()) return Fail(s);
  if (v.all) return PingAll(v, c);
  const absl::Time start = absl::Now();
  absl::StatusOr<zrpc::Value> r =
      c.transport->Call(c.context, c.topic, IntrospectionMessage("ping"), {.timeout = c.timeout});
  const double ms = absl::ToDoubleMilliseconds(absl::Now() - start);
  if (!r.ok()) return Fail(r.status());
  if (v.json) {
    // What a service answers is untrusted: any shape is printed, never trusted to have fields.
    zrpc::Object line = r->is_object() ? r->AsObject() : zrpc::Object{{"answer", *r}};
    line.Set("latency_ms", ms);
    std::cout << Json(zrpc::Value(std::move(line))) << std::endl;
    return 0;
  }
  const zrpc::Value* host = r->Find("host");
  std::cout << absl::StrFormat("pong from %s in %.2f ms",
                               host && host->is_string() ? Safe(host->AsString()) : "?", ms)
            << std::endl;
  return 0;
}

int Describe(ToolApp& a, Values& v) {
  ExpectArgs(a, v, 1, 1, "TOPIC");
  Common c;
  if (absl::Status s = Connect(a, v, c, v.args[0]); !s.ok()) return Fail(s);
  absl::StatusOr<zrpc::Value> r = c.transport->Call(
      c.context, c.topic, IntrospectionMessage("describe"), {.timeout = c.timeout});
  if (!r.ok()) return Fail(r.status());
  if (v.json) {
    std::cout << Json(*r) << std::endl;
    return 0;
  }
  std::optional<std::string> text = zrpc::tools::FormatDescribe(*r);
  if (!text) {
    std::cout << "unexpected answer: " << Safe(Json(*r)) << std::endl;
    return 6;
  }
  std::cout << *text << std::flush;
  return 0;
}

int Metrics(ToolApp& a, Values& v) {
  ExpectArgs(a, v, 1, 1, "TOPIC");
  Common c;
  if (absl::Status s = Connect(a, v, c, v.args[0]); !s.ok()) return Fail(s);
  absl::StatusOr<zrpc::Value> r = c.transport->Call(
      c.context, c.topic, IntrospectionMessage("metrics"), {.timeout = c.timeout});
  if (!r.ok()) return Fail(r.status());
  if (!r->is_string()) {
    std::cout << "unexpected answer: " << Safe(Json(*r)) << std::endl;
    return 6;
  }
  // The instance's own text (Prometheus exposition 0.0.4), as its /metrics would serve it.
  std::cout << r->AsString() << std::flush;
  return 0;
}

// The directory a local:// URL names ("" for any other URL).
std::string LocalDirectory(const std::string& url) {
  if (!absl::StartsWith(url, "local://")) return "";
  std::string dir = url.substr(std::strlen("local://"));
  dir = dir.substr(0, dir.find('?'));
  return dir.empty() ? zrpc::internal::DefaultRuntimeDir() : dir;
}

int Topics(ToolApp& a, Values& v) {
  ExpectArgs(a, v, 0, 0, "no arguments");
  // The local matchmaker creates its directory: a missing one would show an empty world.
  const std::string url = MatchmakerUrl(v);
  if (const std::string dir = LocalDirectory(url); !dir.empty()) {
    struct stat st;
    if (stat(dir.c_str(), &st) != 0) {
      const std::string rest = url.substr(std::strlen("local://"));
      zrpc::tools::PrintError(
          4, "NOT_FOUND", "",
          absl::StrCat("no registry at ", Safe(dir), " (no service has registered there; ",
                       !rest.empty() && rest[0] != '?'
                           ? "do the services use the matchmaker " + Safe(url) + "?)"
                       : geteuid() == 0 ? "do the services run as root too?)"
                                        : "is XDG_RUNTIME_DIR the same as the services'?)"));
      return 4;
    }
  }
  Common c;
  if (absl::Status s = Connect(a, v, c, "topics"); !s.ok()) return Fail(s);
  absl::StatusOr<std::vector<zrpc::Registration>> regs =
      c.transport->matchmaker().List(a.Has("--exchange") ? v.exchange : "");
  if (!regs.ok()) return Fail(regs.status());
  if (v.json) {
    for (const zrpc::Registration& r : *regs) {
      std::cout << Json(zrpc::Value(zrpc::Object{{"exchange", r.exchange},
                                                 {"topic", r.topic},
                                                 {"key", r.Key()},
                                                 {"host", r.host},
                                                 {"pool", r.pool},
                                                 {"fanout", r.fanout},
                                                 {"endpoint", r.endpoint},
                                                 {"pub_endpoint", r.pub_endpoint}}))
                << "\n";
    }
    std::cout << std::flush;
    return 0;
  }
  std::vector<std::vector<std::string>> rows = {
      {"TOPIC", "HOST", "POOL", "FANOUT", "ENDPOINT", "EXCHANGE"}};
  for (const zrpc::Registration& r : *regs) {
    rows.push_back({Safe(r.topic), Safe(r.host), r.pool.empty() ? "-" : Safe(r.pool),
                    r.fanout ? "yes" : "no", Safe(r.endpoint), Safe(r.exchange)});
  }
  std::vector<size_t> width(rows[0].size(), 0);
  for (const auto& row : rows) {
    for (size_t i = 0; i < row.size(); ++i) width[i] = std::max(width[i], row[i].size());
  }
  for (const auto& row : rows) {
    std::string line;
    for (size_t i = 0; i < row.size(); ++i) {
      line += row[i];
      if (i + 1 < row.size()) line += std::string(width[i] - row[i].size() + 2, ' ');
    }
    std::cout << line << "\n";
  }
  if (regs->empty())
    std::cerr << "zrpc: no registrations in " << Safe(c.transport->matchmaker().url()) << "\n";
  std::cout << std::flush;
  return 0;
}

int Notify(ToolApp& a, Values& v) {
  ExpectArgs(a, v, 2, 3, "EVENT_TYPE PRIORITY [PAYLOAD_JSON]");
  CheckPriority(a, v.args[1]);
  zrpc::Value payload = JsonArgument(a, v, 2, "PAYLOAD_JSON", false).value_or(zrpc::Value());
  const double wait = a.Seconds("--wait", v.wait, /*allow_zero=*/true);
  Common c;
  if (absl::Status s = Connect(a, v, c, "notify"); !s.ok()) return Fail(s);
  absl::StatusOr<std::unique_ptr<zrpc::Notifier>> n =
      zrpc::Notifier::Create(*c.transport, v.publisher_id, {.topics = {v.topic}});
  if (!n.ok()) return Fail(n.status());
  absl::SleepFor(absl::Seconds(wait));
  if (absl::Status s = (*n)->Notify(c.context, v.args[0], v.args[1], std::move(payload)); !s.ok()) {
    return Fail(s);
  }
  absl::SleepFor(absl::Milliseconds(100));  // let the I/O thread publish before closing
  if (v.json) std::cout << "{\"ok\":true}" << std::endl;
  return 0;
}

int Keygen(ToolApp& a, Values& v) {
  ExpectArgs(a, v, 1, 1, "NAME");
  const std::string& name = v.args[0];
  if (absl::Status s = zrpc::ValidateName("key name", name); !s.ok())
    a.Fail(std::string(s.message()));
  absl::StatusOr<zrpc::CurveKeyPair> keys = zrpc::GenerateCurveKeyPair();
  if (!keys.ok()) return Fail(keys.status());
  if (absl::Status s = zrpc::WriteCurveKeyPair(v.dir, name, *keys); !s.ok()) return Fail(s);
  const std::string base = Safe(v.dir + "/" + name);
  std::cout << "wrote " << base << ".key  (secret key, mode 0600: keep it private; key_file)\n"
            << "wrote " << base << ".pub  (public key, fingerprint "
            << zrpc::KeyFingerprint(keys->public_key)
            << ": add it to the authorized_keys of the peers that admit or trust " << Safe(name)
            << ")" << std::endl;
  return 0;
}

int MigrateKeys(ToolApp& a, Values& v) {
  ExpectArgs(a, v, 1, 1, "FILE");
  const std::string& path = v.args[0];
  std::ifstream in(path, std::ios::binary);
  if (!in) a.Fail(absl::StrCat("cannot read ", Safe(path), ": ", std::strerror(errno)));
  // One byte more than a valid file may have: the parser then names the limit.
  constexpr size_t kLimit = (1 << 20) + 1;
  std::string text(kLimit, '\0');
  in.read(text.data(), static_cast<std::streamsize>(kLimit));
  text.resize(static_cast<size_t>(in.gcount()));
  absl::StatusOr<std::string> migrated = zrpc::MigrateAuthorizedKeys(text, path);
  if (!migrated.ok()) return Fail(migrated.status());
  std::cout << *migrated << std::flush;
  return 0;
}

std::atomic<bool> interrupted{false};

int Listen(ToolApp& a, Values& v) {
  if (v.args.empty()) a.Fail("expected TOPIC[.PRIORITY] ...");
  for (const std::string& target : v.args) {
    const size_t dot = target.rfind('.');
    if (dot != std::string::npos) CheckPriority(a, std::string_view(target).substr(dot + 1));
  }
  const long count = a.Has("--count") ? a.Integer("--count", v.count, 1, 1L << 40) : -1;
  const absl::Time until = a.Has("--for")
                               ? absl::Now() + absl::Seconds(a.Seconds("--for", v.for_seconds))
                               : absl::InfiniteFuture();
  Common c;
  if (absl::Status s = Connect(a, v, c, "listen"); !s.ok()) return Fail(s);
  std::atomic<long> seen{0};
  absl::Mutex out_mu;
  auto listener = zrpc::NotificationListener::Create(
      *c.transport, v.args,
      [&](const zrpc::Notification& n) {
        absl::MutexLock lock(&out_mu);
        std::cout << Json(zrpc::Value(
                         zrpc::Object{{"topic", n.topic},
                                      {"priority", std::string(zrpc::PriorityName(n.priority))},
                                      {"event_type", n.event_type},
                                      {"publisher_id", n.publisher_id},
                                      {"message_id", n.message_id},
                                      {"timestamp", n.timestamp},
                                      {"payload", n.payload}}))
                  << std::endl;
        seen++;
      },
      {.pool = v.pool});
  if (!listener.ok()) return Fail(listener.status());
  signal(SIGINT, [](int) { interrupted = true; });
  signal(SIGTERM, [](int) { interrupted = true; });
  while (!interrupted && absl::Now() < until && (count < 0 || seen < count)) {
    absl::SleepFor(absl::Milliseconds(20));
  }
  return 0;
}

int Version(ToolApp& a, Values& v) {
  ExpectArgs(a, v, 0, 0, "no arguments");
  if (v.json) {
    std::cout << "{\"version\":\"" << zrpc::tools::kZrpcVersion << "\"}" << std::endl;
  } else {
    std::cout << "zrpc " << zrpc::tools::kZrpcVersion << std::endl;
  }
  return 0;
}

// --- The command table ------------------------------------------------------------------------

struct Command {
  std::string name;
  std::unique_ptr<ToolApp> app;
  std::function<int(ToolApp&, Values&)> run;
};

std::vector<Command> Commands(Values& v) {
  std::vector<Command> out;
  auto add = [&](std::string name, std::string usage, std::string description,
                 std::function<int(ToolApp&, Values&)> run) -> ToolApp& {
    auto app = std::make_unique<ToolApp>("zrpc " + name, "zrpc " + name + " " + usage,
                                         std::move(description));
    app->Positionals(&v.args);
    out.push_back({std::move(name), std::move(app), std::move(run)});
    return *out.back().app;
  };
  for (const char* cmd : {"call", "cast", "fanout", "multicall"}) {
    const std::string c = cmd;
    ToolApp& a =
        add(c, "TOPIC METHOD [ARGS_JSON] [flags]",
            c == "call" ? "Calls METHOD on one instance of TOPIC and prints its result as JSON."
            : c == "multicall"
                ? "Calls a streaming METHOD and prints each value as it arrives, one per line."
            : c == "cast" ? "Sends a one-way message to one instance of TOPIC."
                          : "Sends a one-way message to every instance of TOPIC.",
            [c](ToolApp& a, Values& v) { return Send(c, a, v); });
    AddConnectionFlags(a, v);
    AddMessageFlags(a, v);
    if (c != "fanout") AddHostFlag(a, v);
  }
  {
    ToolApp& a = add("ping", "TOPIC [flags]",
                     "Asks one instance of TOPIC (or TOPIC.HOST with --host; every instance with "
                     "--all) whether it is there, and how long the answer took.",
                     Ping);
    AddConnectionFlags(a, v);
    AddContextFlag(a, v);
    AddHostFlag(a, v);
    a.app().add_flag("--all", v.all, "ping every instance of TOPIC, one line each");
  }
  {
    ToolApp& a = add("metrics", "TOPIC [flags]",
                     "Prints an instance's metrics in the Prometheus text format (its\n"
                     "_zrpc.metrics: what its /metrics endpoint would serve).",
                     Metrics);
    AddConnectionFlags(a, v);
    AddContextFlag(a, v);
    AddHostFlag(a, v);
  }
  {
    ToolApp& a = add("describe", "TOPIC [flags]",
                     "Prints an instance's topics, API versions and method signatures.", Describe);
    AddConnectionFlags(a, v);
    AddContextFlag(a, v);
    AddHostFlag(a, v);
  }
  AddConnectionFlags(add("topics", "[flags]",
                         "Lists the registrations the matchmaker knows: topic, host, pool, "
                         "fanout, endpoint, exchange.",
                         Topics),
                     v);
  {
    ToolApp& a = add("notify", "EVENT_TYPE PRIORITY [PAYLOAD_JSON] [flags]",
                     "Publishes one notification. PRIORITY: debug, info, warn, error, critical, "
                     "audit, sample.\nListeners subscribed before it is published get it "
                     "(PUB/SUB keeps no history).",
                     Notify);
    AddConnectionFlags(a, v);
    AddContextFlag(a, v);
    AddDataFlag(a, v, "PAYLOAD_JSON");
    a.app()
        .add_option("--topic", v.topic, "notification topic (default notifications)")
        ->type_name("NAME");
    a.app()
        .add_option("--publisher-id", v.publisher_id, "publisher id (default zrpc-cli)")
        ->type_name("ID");
    a.app()
        .add_option("--wait", v.wait,
                    "seconds to let listeners subscribe before publishing (default 1)")
        ->type_name("SECONDS");
  }
  {
    ToolApp& a = add("listen", "TOPIC[.PRIORITY] ... [flags]",
                     "Prints notifications as they arrive, one JSON document per line. A listener "
                     "misses\nwhat was published before it subscribed.",
                     Listen);
    AddConnectionFlags(a, v);
    a.app().add_option("--count", v.count, "exit after this many notifications")->type_name("N");
    a.app()
        .add_option("--for", v.for_seconds, "exit after this many seconds")
        ->type_name("SECONDS");
    a.app()
        .add_option("--pool", v.pool, "share notifications with other listeners of this pool")
        ->type_name("NAME");
  }
  add("keygen", "NAME [--dir DIR]",
      "Writes a new CURVE key pair: DIR/NAME.key (public and secret key, mode 0600: point\n"
      "key_file at it) and DIR/NAME.pub (the line \"NAME PUBLIC-KEY\" to add to the\n"
      "authorized_keys file of every peer that admits or trusts NAME). Never replaces a file.",
      Keygen)
      .app()
      .add_option("--dir", v.dir, "directory to write into (default: the current directory)")
      ->type_name("DIR");
  add("migrate-keys", "FILE",
      "Prints an authorized_keys FILE written before key roles, with what it meant then:\n"
      "`serve=* publish=* listen=*` added to each key line without a role (README \"Key\n"
      "roles\"). Narrow the roles afterwards; other lines are printed as they are.",
      MigrateKeys);
  add("version", "[--json]", "Prints zrpc's version.", Version)
      .app()
      .add_flag("--json", v.json, "print {\"version\": \"X.Y.Z\"}");
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  // stderr is for the one-line error, unless ZRPC_LOG_LEVEL asks for more (e.g. "warning" to see
  // which registry files a lookup skipped).
  if (std::getenv("ZRPC_LOG_LEVEL") == nullptr) zrpc::SetLogLevel(zrpc::LogLevel::kError);
  zrpc::tools::UseReleaseMutexes();
  zrpc::tools::UsageReporter::Get().program = "zrpc";
  // --json before `--` makes even usage errors JSON.
  for (int i = 1; i < argc && std::string(argv[i]) != "--"; ++i) {
    if (std::string(argv[i]) == "--json") zrpc::tools::UsageReporter::Get().json = true;
  }
  Values values;
  std::vector<Command> commands = Commands(values);
  std::vector<std::string> names;
  std::map<std::string, std::vector<std::string>> flag_owners;  // flag → commands taking it
  for (const Command& c : commands) {
    names.push_back(c.name);
    for (const std::string& flag : c.app->FlagNames()) flag_owners[flag].push_back(c.name);
  }
  auto find = [&](const std::string& name) -> Command* {
    for (Command& c : commands) {
      if (c.name == name) return &c;
    }
    return nullptr;
  };
  const std::string first = argc < 2 ? "" : argv[1];
  if (first.empty()) {
    zrpc::tools::UsageFail("missing COMMAND (" + absl::StrJoin(names, ", ") + ")", "zrpc");
  }
  if (first == "--help" || first == "-h" || (first == "help" && argc == 2)) {
    std::cout << kOverview << std::endl;
    return 0;
  }
  if (first == "help") {
    Command* c = find(argv[2]);
    if (c == nullptr)
      zrpc::tools::UsageFail(absl::StrCat("unknown command '", argv[2], "'"), "zrpc");
    std::cout << c->app->app().help() << std::flush;
    return 0;
  }
  if (first == "--version" || first == "-V") {
    std::cout << "zrpc " << zrpc::tools::kZrpcVersion << std::endl;
    return 0;
  }
  if (first[0] == '-') {
    zrpc::tools::UsageFail(absl::StrCat("unknown flag ", first,
                                        " before the command (flags go "
                                        "after it: zrpc COMMAND ... ",
                                        first, ")"),
                           "zrpc");
  }
  Command* command = find(first);
  if (command == nullptr) {
    std::optional<std::string> near = zrpc::tools::Suggest(first, names);
    zrpc::tools::UsageFail(absl::StrCat("unknown command '", Safe(first), "'",
                                        near ? " (did you mean '" + *near + "'?)" : ""),
                           "zrpc");
  }
  // What to say about flags this command does not take.
  std::map<std::string, std::string> hints;
  const std::vector<std::string> own = command->app->FlagNames();
  for (const auto& [flag, owners] : flag_owners) {
    if (std::find(own.begin(), own.end(), flag) != own.end()) continue;
    hints[flag] =
        absl::StrCat(flag, " does not apply to 'zrpc ", command->name, "' (it is a flag of 'zrpc ",
                     absl::StrJoin(owners, "', 'zrpc "), "')");
  }
  if (command->app->app().get_option_no_throw("--version") == nullptr) {
    hints["--version"] =
        "zrpc's own version is 'zrpc --version' (the API version to ask for is "
        "--api-version, on call, cast, fanout and multicall)";
  }
  command->app->Parse(argc - 1, argv + 1, hints);
  return command->run(*command->app, values);
}
