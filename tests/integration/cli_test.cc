// SPDX-License-Identifier: Apache-2.0
// The zrpc command line against a real service: output and exit codes.
#include <sys/stat.h>
#include <sys/wait.h>

#include <fstream>
#include <set>
#include <thread>

#include <zmq.hpp>
#include <zmq_addon.hpp>

#include "absl/strings/str_split.h"
#include "codec/wire.h"
#include "testing/harness.h"
#include "testing/redis_server.h"
#include "tools/describe_format.h"
#include "unit/test_util.h"
#include "zrpc/security.h"

namespace zrpc::testing {
namespace {

using ::testing::HasSubstr;

struct CliRun {
  int exit_code = -1;
  std::string output;  // stdout and stderr
};

// Runs `argv` (a program and its arguments) to its end: exit code and stdout + stderr.
CliRun RunTool(const std::vector<std::string>& argv, int timeout_ms = 20000) {
  ChildProcess p;
  EXPECT_TRUE(p.Start(argv, {.capture_stderr = true}));
  CliRun r;
  r.output = p.ReadAll(timeout_ms);
  const int status = p.Reap(timeout_ms);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

size_t Lines(const std::string& text) { return std::count(text.begin(), text.end(), '\n'); }

class CliTest : public IntegrationTest {
 protected:
  // Runs `zrpc args...`; commands that connect get this test's --matchmaker right after the
  // command's name (unless `args` has one), so that `--` in `args` still ends the flags.
  CliRun Cli(std::vector<std::string> args, int timeout_ms = 20000) {
    std::vector<std::string> argv = {ZRPC_CLI_BINARY};
    static const std::set<std::string> kConnecting = {"call",   "cast",  "fanout", "multicall",
                                                      "notify", "listen", "topics", "ping",
                                                      "describe"};
    const bool has_matchmaker = std::find(args.begin(), args.end(), "--matchmaker") != args.end();
    for (size_t i = 0; i < args.size(); ++i) {
      argv.push_back(args[i]);
      if (i == 0 && kConnecting.count(args[0]) && !has_matchmaker) {
        argv.push_back("--matchmaker");
        argv.push_back(matchmaker_);
      }
    }
    return RunTool(argv, timeout_ms);
  }
  // Runs a shell command line (for stdin); $ZRPC is the CLI, $MM this test's matchmaker.
  CliRun Shell(const std::string& script) {
    return RunTool({"/bin/sh", "-c", "ZRPC='" + std::string(ZRPC_CLI_BINARY) + "' MM='" + matchmaker_ +
                                     "'; " + script});
  }
  std::string WriteTemp(const std::string& name, const std::string& content) {
    const std::string path = registry_ + "/" + name;
    std::ofstream(path, std::ios::binary) << content;
    return path;
  }
};

TEST_F(CliTest, CallPrintsTheResultAndExitCodesTellWhatWentWrong) {
  StartService("node1");
  CliRun ok = Cli({"call", "compute", "add", R"({"a": 2, "b": 40})"});
  EXPECT_EQ(ok.exit_code, 0);
  EXPECT_EQ(ok.output, "42\n");
  CliRun remote = Cli({"call", "compute", "fail", R"({"message": "boom"})"});
  EXPECT_EQ(remote.exit_code, 1);
  EXPECT_THAT(remote.output, HasSubstr("RemoteError: Remote error: runtime_error boom"));
  EXPECT_EQ(std::count(remote.output.begin(), remote.output.end(), '\n'), 1);  // one line
  CliRun version = Cli({"call", "compute", "whoami", "--api-version", "2.0"});
  EXPECT_EQ(version.exit_code, 1);
  EXPECT_THAT(version.output, HasSubstr("UnsupportedRpcVersion"));
  CliRun timeout = Cli({"call", "compute", "sleep", R"({"ms": 3000})", "--timeout", "0.5"});
  EXPECT_EQ(timeout.exit_code, 3);
  EXPECT_THAT(timeout.output, HasSubstr("Timeout while waiting on RPC response"));
  CliRun nobody = Cli({"call", "storage", "whoami"});
  EXPECT_EQ(nobody.exit_code, 4);
  EXPECT_THAT(nobody.output, HasSubstr("No consumer registered for topic \"storage\""));
  CliRun usage = Cli({"call", "compute"});
  EXPECT_EQ(usage.exit_code, 2);
  EXPECT_THAT(usage.output, HasSubstr("expected TOPIC METHOD"));
  EXPECT_EQ(Cli({"call", "compute", "add", "{bad"}).exit_code, 2);
  EXPECT_EQ(Cli({"frobnicate"}).exit_code, 2);
  CliRun direct = Cli({"call", "compute", "whoami", "--host", "node1", "--context", R"({"user": "cli"})"});
  EXPECT_EQ(direct.output, "\"node1\"\n");
}

TEST_F(CliTest, PeerLostHasItsOwnExitCode) {
  ChildProcess& service = StartService("node1");
  std::thread killer([&] {
    absl::SleepFor(absl::Milliseconds(500));
    service.Kill();
  });
  CliRun lost = Cli({"call", "compute", "sleep", R"({"ms": 20000})", "--timeout", "30"});
  killer.join();
  EXPECT_EQ(lost.exit_code, 5) << lost.output;
  EXPECT_THAT(lost.output, HasSubstr("Lost contact"));
}

TEST_F(CliTest, CastFanoutAndMulticall) {
  StartService("node1");
  StartService("node2");
  EXPECT_EQ(Cli({"cast", "compute", "note", R"({"kind": "c"})"}).exit_code, 0);
  EXPECT_EQ(Cli({"fanout", "compute", "note", R"({"kind": "f"})"}).exit_code, 0);
  auto client = Client();
  auto count = [&](const std::string& host, const std::string& kind) -> int64_t {
    absl::StatusOr<Value> s = client->Call(Context(), "compute." + host, Msg("stats"));
    const Value* v = s.ok() ? s->Find("notes")->Find(kind) : nullptr;
    return v ? v->AsInt() : 0;
  };
  EXPECT_TRUE(Eventually([&] {
    return count("node1", "f") == 1 && count("node2", "f") == 1 &&
           count("node1", "c") + count("node2", "c") == 1;
  }));
  CliRun stream = Cli({"multicall", "compute", "count", R"({"n": 3})"});
  EXPECT_EQ(stream.exit_code, 0);
  EXPECT_EQ(stream.output, "0\n1\n2\n");
  EXPECT_EQ(Cli({"cast", "nobody", "x"}).exit_code, 4);
}

TEST_F(CliTest, TopicsPingAndDescribe) {
  StartService("node1");
  CliRun topics = Cli({"topics"});
  EXPECT_EQ(topics.exit_code, 0);
  EXPECT_THAT(topics.output, HasSubstr("compute.node1"));
  EXPECT_THAT(topics.output, ::testing::ContainsRegex("TOPIC +HOST +POOL +FANOUT +ENDPOINT"));
  EXPECT_THAT(topics.output, ::testing::ContainsRegex("\ncompute +node1 +- +yes +tcp://"));
  EXPECT_THAT(topics.output, ::testing::ContainsRegex("\ncompute +node1 +- +no +tcp://"));
  CliRun json = Cli({"topics", "--json"});
  EXPECT_THAT(json.output, HasSubstr("\"key\":\"compute\""));
  CliRun ping = Cli({"ping", "compute"});
  EXPECT_EQ(ping.exit_code, 0);
  EXPECT_THAT(ping.output, HasSubstr("pong from node1"));
  CliRun describe = Cli({"describe", "compute", "--json"});
  EXPECT_EQ(describe.exit_code, 0);
  absl::StatusOr<Value> d = ParseJson(describe.output);
  ZRPC_ASSERT_OK(d);
  EXPECT_EQ(d->Find("endpoints")->AsArray()[0].Find("version")->AsString(), "1.3");
  EXPECT_EQ(Cli({"ping", "storage"}).exit_code, 4);
}

TEST_F(CliTest, NotifyAndListen) {
  StartService("node1");
  auto listener = std::make_unique<ChildProcess>();
  ASSERT_TRUE(listener->Start({ZRPC_CLI_BINARY, "listen", "notifications.info", "--count", "2",
                               "--for", "15", "--matchmaker", matchmaker_}));
  absl::SleepFor(absl::Milliseconds(1200));  // discover the service's publisher and subscribe
  // --wait: the notify process is a new publisher the listener has to discover first.
  EXPECT_EQ(Cli({"notify", "cli.event", "info", R"({"x": 1})", "--wait", "2"}).exit_code, 0);
  auto client = Client();
  ZRPC_ASSERT_OK(client->Call(Context(), "compute", Msg("emit", {{"event_type", "svc.event"}, {"priority", "info"}})));
  const std::string out = listener->ReadAll(15000);
  EXPECT_EQ(WEXITSTATUS(listener->Reap(5000)), 0);
  EXPECT_THAT(out, HasSubstr("\"event_type\":\"cli.event\""));
  EXPECT_THAT(out, HasSubstr("\"event_type\":\"svc.event\""));
  EXPECT_THAT(out, HasSubstr("\"payload\":{\"x\":1}"));
  EXPECT_EQ(Cli({"notify", "x", "loud"}).exit_code, 2);
}

TEST_F(CliTest, EveryCommandHasHelp) {
  CliRun overview = Cli({"--help"});
  EXPECT_EQ(overview.exit_code, 0);
  EXPECT_THAT(overview.output, HasSubstr("Exit codes"));
  for (const char* cmd : {"call", "cast", "fanout", "multicall", "notify", "listen", "topics",
                          "ping", "describe"}) {
    CliRun help = Cli({cmd, "--help"});
    EXPECT_EQ(help.exit_code, 0) << cmd;
    EXPECT_THAT(help.output, HasSubstr(std::string("usage: zrpc ") + cmd)) << cmd;
  }
}


// A fake instance that answers every request with `result`, whatever was asked.
class FakeInstance {
 public:
  explicit FakeInstance(Value result) : router_(ctx_, zmq::socket_type::router) {
    router_.bind("tcp://127.0.0.1:*");
    endpoint_ = router_.get(zmq::sockopt::last_endpoint);
    thread_ = std::thread([this, result = std::move(result)] {
      while (!stop_) {
        zmq::pollitem_t item{router_.handle(), 0, ZMQ_POLLIN, 0};
        zmq::poll(&item, 1, std::chrono::milliseconds(20));
        std::vector<zmq::message_t> frames;
        if (!(item.revents & ZMQ_POLLIN) ||
            !zmq::recv_multipart(router_, std::back_inserter(frames), zmq::recv_flags::dontwait)) {
          continue;
        }
        if (frames.size() != 3) continue;
        absl::StatusOr<internal::Header> h = internal::ParseHeader(frames[1].to_string_view());
        if (!h.ok()) continue;
        const std::string id(h->msg_id);
        absl::StatusOr<std::string> body = EncodeReply(Reply{.result = result, .ending = true, .msg_id = id});
        router_.send(frames[0], zmq::send_flags::sndmore);
        router_.send(zmq::buffer(internal::ControlHeader(internal::FrameKind::kReply, id)),
                     zmq::send_flags::sndmore);
        router_.send(zmq::buffer(*body), zmq::send_flags::none);
      }
    });
  }
  ~FakeInstance() {
    stop_ = true;
    thread_.join();
  }
  const std::string& endpoint() const { return endpoint_; }

 private:
  zmq::context_t ctx_;
  zmq::socket_t router_;
  std::string endpoint_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

TEST_F(CliTest, MalformedAnswersAndBadFlagsAreClearErrorsNeverCrashes) {
  absl::StatusOr<std::unique_ptr<Matchmaker>> mm = CreateMatchmaker(matchmaker_);
  ZRPC_ASSERT_OK(mm);
  // A hostile instance: its "describe" is a string with terminal escapes, its ping lacks a host.
  FakeInstance evil(Value("\x1b[2Jgotcha\nzrpc ERROR: forged"));
  FakeInstance odd(Value(Object{{"host", 5}, {"topics", "not a list"}}));
  ZRPC_ASSERT_OK((*mm)->Register(Registration{.topic = "evil", .host = "evil", .endpoint = evil.endpoint()}));
  ZRPC_ASSERT_OK((*mm)->Register(Registration{.topic = "odd", .host = "odd", .endpoint = odd.endpoint()}));
  CliRun described = Cli({"describe", "evil"});
  EXPECT_EQ(described.exit_code, 6);
  EXPECT_THAT(described.output, HasSubstr("unexpected answer"));
  EXPECT_EQ(described.output.find('\x1b'), std::string::npos) << described.output;
  EXPECT_EQ(std::count(described.output.begin(), described.output.end(), '\n'), 1);
  CliRun pinged = Cli({"ping", "odd"});
  EXPECT_EQ(pinged.exit_code, 0);
  EXPECT_THAT(pinged.output, HasSubstr("pong from ?"));
  EXPECT_EQ(Cli({"describe", "odd"}).exit_code, 6);
  ZRPC_ASSERT_OK((*mm)->Unregister(Registration{.topic = "odd", .host = "odd", .endpoint = odd.endpoint()}));
  for (const char* bad : {"nan", "inf", "-1", "0", "10s", "1e300"}) {
    CliRun r = Cli({"listen", "notifications.info", "--for", bad});
    EXPECT_EQ(r.exit_code, 2) << bad;
    EXPECT_THAT(r.output, HasSubstr("--for needs a number of seconds")) << bad;
    EXPECT_EQ(Cli({"call", "compute", "whoami", "--timeout", bad}).exit_code, 2) << bad;
  }
}


TEST_F(CliTest, SidecarRefusesEveryInterfaceWithoutInsecure) {
  for (const char* ep : {"tcp://0.0.0.0:0", "tcp://*:0", "tcp://[::]:0"}) {
    ChildProcess p;
    ASSERT_TRUE(p.Start({ZRPC_MATCHMAKER_BINARY, "--endpoint", "tcp://127.0.0.1:0", "--tcp", ep},
                        {.capture_stderr = true}));
    const std::string out = p.ReadAll(10000);
    const int status = p.Reap(10000);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 2) << ep << ": " << out;
    EXPECT_THAT(out, HasSubstr("listens on every interface: add --insecure")) << ep;
  }
}

// keygen needs no matchmaker: its own process, its own directory.
TEST(CliKeygenTest, WritesAPrivateKeyPairAndRefusesToOverwriteIt) {
  char tmp[] = "/tmp/zrpc-keygen-XXXXXX";
  ASSERT_NE(mkdtemp(tmp), nullptr);
  const std::string dir = tmp;
  auto run = [&](std::vector<std::string> args) {
    args.insert(args.begin(), ZRPC_CLI_BINARY);
    ChildProcess p;
    EXPECT_TRUE(p.Start(args, {.capture_stderr = true}));
    CliRun r;
    r.output = p.ReadAll(10000);
    const int status = p.Reap(10000);
    r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    return r;
  };
  CliRun first = run({"keygen", "svc-1", "--dir", dir});
  EXPECT_EQ(first.exit_code, 0) << first.output;
  EXPECT_THAT(first.output, HasSubstr("wrote " + dir + "/svc-1.key"));
  EXPECT_THAT(first.output, HasSubstr("wrote " + dir + "/svc-1.pub"));
  struct stat key_st, pub_st;
  ASSERT_EQ(stat((dir + "/svc-1.key").c_str(), &key_st), 0);
  ASSERT_EQ(stat((dir + "/svc-1.pub").c_str(), &pub_st), 0);
  EXPECT_EQ(key_st.st_mode & 07777, 0600u);
  EXPECT_EQ(pub_st.st_mode & 07777, 0644u);
  absl::StatusOr<CurveKeyPair> keys = ReadCurveKeyFile(dir + "/svc-1.key");
  ZRPC_ASSERT_OK(keys);
  std::ifstream pub(dir + "/svc-1.pub");
  std::string pub_line;
  std::getline(pub, pub_line);
  EXPECT_EQ(pub_line, "svc-1 " + keys->public_key);
  EXPECT_THAT(first.output, HasSubstr(KeyFingerprint(keys->public_key)));

  CliRun second = run({"keygen", "svc-1", "--dir", dir});
  EXPECT_EQ(second.exit_code, 6) << second.output;
  EXPECT_THAT(second.output, HasSubstr("svc-1.key already exists"));
  absl::StatusOr<CurveKeyPair> still = ReadCurveKeyFile(dir + "/svc-1.key");
  ZRPC_ASSERT_OK(still);
  EXPECT_EQ(still->secret_key, keys->secret_key);

  EXPECT_EQ(run({"keygen", "bad/name", "--dir", dir}).exit_code, 2);
  EXPECT_EQ(run({"keygen"}).exit_code, 2);
  CliRun overview = run({"--help"});
  EXPECT_THAT(overview.output, HasSubstr("keygen NAME"));
  CliRun help = run({"keygen", "--help"});
  EXPECT_EQ(help.exit_code, 0);
  EXPECT_THAT(help.output, HasSubstr("usage: zrpc keygen NAME [--dir DIR]"));

  // migrate-keys: an old authorized_keys, printed with the roles it meant; errors name the file.
  {
    std::ofstream old(dir + "/authorized_keys");
    old << "# fleet\nsvc-1 " << keys->public_key << " ops  # the api\n@ops listen=x\n";
  }
  CliRun migrated = run({"migrate-keys", dir + "/authorized_keys"});
  EXPECT_EQ(migrated.exit_code, 0) << migrated.output;
  EXPECT_THAT(migrated.output,
              HasSubstr("svc-1 " + keys->public_key + " ops serve=* publish=* listen=* # the api"));
  EXPECT_THAT(migrated.output, HasSubstr("@ops listen=x"));
  {
    std::ofstream bad(dir + "/broken");
    bad << "svc-1 notakey\n";
  }
  CliRun broken = run({"migrate-keys", dir + "/broken"});
  EXPECT_EQ(broken.exit_code, 6) << broken.output;
  EXPECT_THAT(broken.output, HasSubstr("broken:1:"));
  EXPECT_EQ(run({"migrate-keys", dir + "/missing"}).exit_code, 2);  // like an unreadable -d @FILE
  EXPECT_EQ(run({"migrate-keys"}).exit_code, 2);
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
}


TEST_F(CliTest, UsageErrorsAreOneLineWithASuggestionAndAPointerToHelp) {
  CliRun typo = Cli({"call", "compute", "whoami", "--timout", "5"});
  EXPECT_EQ(typo.exit_code, 2);
  EXPECT_EQ(typo.output,
            "zrpc: unknown flag --timout (did you mean --timeout?); see 'zrpc call --help'\n");
  CliRun command = Cli({"cal", "compute", "whoami"});
  EXPECT_EQ(command.exit_code, 2);
  EXPECT_EQ(command.output,
            "zrpc: unknown command 'cal' (did you mean 'call'?); see 'zrpc --help'\n");
  // A flag of another command is an error, not silently ignored.
  CliRun elsewhere = Cli({"call", "compute", "whoami", "--count", "3"});
  EXPECT_EQ(elsewhere.exit_code, 2);
  EXPECT_THAT(elsewhere.output,
              HasSubstr("--count does not apply to 'zrpc call' (it is a flag of 'zrpc listen')"));
  EXPECT_EQ(Lines(elsewhere.output), 1u);
  CliRun topics_host = Cli({"topics", "--host", "node1"});
  EXPECT_EQ(topics_host.exit_code, 2);
  EXPECT_THAT(topics_host.output, HasSubstr("--host does not apply to 'zrpc topics'"));
  CliRun fanout_host = Cli({"fanout", "compute", "note", "--host", "node1"});
  EXPECT_EQ(fanout_host.exit_code, 2);
  // The API version is --api-version; --version names zrpc's own.
  CliRun old = Cli({"call", "compute", "whoami", "--version", "1.3"});
  EXPECT_EQ(old.exit_code, 2);
  EXPECT_THAT(old.output, HasSubstr("--version is now --api-version"));
  CliRun missing_value = Cli({"call", "compute", "whoami", "--timeout"});
  EXPECT_EQ(missing_value.exit_code, 2);
  EXPECT_THAT(missing_value.output, HasSubstr("--timeout needs a value; see 'zrpc call --help'"));
  EXPECT_EQ(Lines(missing_value.output), 1u);
  CliRun extra = Cli({"ping", "compute", "more"});
  EXPECT_EQ(extra.exit_code, 2);
  EXPECT_THAT(extra.output, HasSubstr("expected TOPIC; see 'zrpc ping --help'"));
  CliRun before = Cli({"--json", "call", "compute", "whoami"});
  EXPECT_EQ(before.exit_code, 2);
  CliRun nothing = Cli({});
  EXPECT_EQ(nothing.exit_code, 2);
  EXPECT_EQ(Lines(nothing.output), 1u);
  // The other tools too.
  CliRun service = RunTool({ZRPC_SERVICE_BINARY, "--tpic", "compute"});
  EXPECT_EQ(service.exit_code, 2);
  EXPECT_EQ(service.output,
            "zrpc-service: unknown flag --tpic (did you mean --topic?); see 'zrpc-service --help'\n");
  CliRun sidecar = RunTool({ZRPC_MATCHMAKER_BINARY, "--ttl", "0"});
  EXPECT_EQ(sidecar.exit_code, 2);
  EXPECT_THAT(sidecar.output, HasSubstr("--ttl needs a whole number from 1"));
  EXPECT_EQ(Lines(sidecar.output), 1u);
}

// A restriction that lost its names must stop the service at start, never leave the method open
// to every caller. (Without the check these start and serve: the 3 s limit fails the test.)
TEST_F(CliTest, ServiceRefusesARestrictionWithoutMethodOrNames) {
  const std::pair<std::string, std::string> cases[] = {
      {"sleep=", "--restrict 'sleep=': an empty list of identities or groups"},
      {"sleep", "--restrict 'sleep': no '=' and no identities or groups"},
      {"=ops", "--restrict '=ops': no method"},
      {"sleep=ops,", "--restrict 'sleep=ops,': an identity or group must not be empty"},
      {"sleep=o ps", "--restrict 'sleep=o ps': an identity or group \"o ps\" has a character"},
      {"echo=ops;nap=ops", "--restrict 'nap=ops': this service has no method \"nap\""},
  };
  for (const auto& [value, why] : cases) {
    CliRun r = RunTool({ZRPC_SERVICE_BINARY, "--matchmaker", matchmaker_, "--restrict", value},
                       3000);
    EXPECT_EQ(r.exit_code, 2) << value << ": " << r.output;
    EXPECT_THAT(r.output, HasSubstr("zrpc-service: " + why)) << value;
    EXPECT_THAT(r.output, HasSubstr("expected METHOD=IDENT[,IDENT...]")) << value;
    EXPECT_EQ(Lines(r.output), 1u) << r.output;
  }
}

TEST_F(CliTest, DoubleDashEndsTheFlags) {
  StartService("node1");
  // After --, "--help" is ARGS_JSON (not valid JSON), not a request for help.
  CliRun r = Cli({"call", "compute", "echo", "--", "--help"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.output, HasSubstr("ARGS_JSON is not valid JSON"));
  // And a negative number is a payload, not a flag.
  CliRun ok = Cli({"call", "compute", "add", "--timeout", "5", "--", R"({"a": -1, "b": 3})"});
  EXPECT_EQ(ok.exit_code, 0) << ok.output;
  EXPECT_EQ(ok.output, "2\n");
}

TEST_F(CliTest, ArgumentsComeFromAFileOrStandardInputWithClearErrors) {
  StartService("node1");
  const std::string args = WriteTemp("args.json", R"({"a": 2, "b": 40})");
  EXPECT_EQ(Cli({"call", "compute", "add", "-d", "@" + args}).output, "42\n");
  EXPECT_EQ(Cli({"call", "compute", "add", "@" + args}).output, "42\n");
  EXPECT_EQ(Cli({"call", "compute", "add", "--data", R"({"a": 1, "b": 1})"}).output, "2\n");
  CliRun in = Shell(R"(printf '{"a": 5, "b": 6}' | "$ZRPC" call compute add -d @- --matchmaker "$MM")");
  EXPECT_EQ(in.exit_code, 0) << in.output;
  EXPECT_EQ(in.output, "11\n");
  // An argument too large for argv on some systems (1 MiB) travels through a file.
  const std::string big(1 << 20, 'x');
  const std::string big_file = WriteTemp("big.json", R"({"s": ")" + big + R"("})");
  CliRun echoed = Cli({"call", "compute", "echo", "-d", "@" + big_file});
  EXPECT_EQ(echoed.exit_code, 0) << echoed.output.substr(0, 200);
  EXPECT_EQ(echoed.output, R"({"s":")" + big + "\"}\n");

  CliRun missing = Cli({"call", "compute", "add", "-d", "@" + registry_ + "/nope.json"});
  EXPECT_EQ(missing.exit_code, 2);
  EXPECT_THAT(missing.output, HasSubstr("-d @" + registry_ + "/nope.json: cannot read " +
                                        registry_ + "/nope.json: No such file or directory"));
  CliRun directory = Cli({"call", "compute", "add", "-d", "@" + registry_});
  EXPECT_EQ(directory.exit_code, 2);
  EXPECT_THAT(directory.output, HasSubstr("cannot read " + registry_ + ": Is a directory"));
  const std::string bad = WriteTemp("bad.json", R"({"a": 2,)");
  CliRun invalid = Cli({"call", "compute", "add", "-d", "@" + bad});
  EXPECT_EQ(invalid.exit_code, 2);
  EXPECT_THAT(invalid.output, HasSubstr("-d @" + bad + " is not valid JSON"));
  EXPECT_EQ(Lines(invalid.output), 1u);
  const std::string list = WriteTemp("list.json", "[1, 2]");
  CliRun not_object = Cli({"call", "compute", "add", "-d", "@" + list});
  EXPECT_EQ(not_object.exit_code, 2);
  EXPECT_THAT(not_object.output, HasSubstr("must be a JSON object"));
  const std::string huge = WriteTemp("huge.json", R"({"s": ")" + std::string(5 << 20, 'x') + R"("})");
  CliRun too_big = Cli({"call", "compute", "echo", "-d", "@" + huge});
  EXPECT_EQ(too_big.exit_code, 2);
  EXPECT_THAT(too_big.output, HasSubstr("is larger than 4194304 bytes"));
  CliRun both = Cli({"call", "compute", "add", R"({"a": 1})", "-d", "@" + args});
  EXPECT_EQ(both.exit_code, 2);
  EXPECT_THAT(both.output, HasSubstr("either as an argument or with -d, not both"));
  // notify takes its payload the same way.
  CliRun payload = Cli({"notify", "cli.event", "info", "-d", "@" + bad, "--wait", "0"});
  EXPECT_EQ(payload.exit_code, 2);
  EXPECT_THAT(payload.output, HasSubstr("is not valid JSON"));
}

TEST_F(CliTest, JsonFormatsErrorsToo) {
  StartService("node1");
  CliRun nobody = Cli({"call", "storage", "whoami", "--json"});
  EXPECT_EQ(nobody.exit_code, 4);
  absl::StatusOr<Value> e = ParseJson(nobody.output);
  ZRPC_ASSERT_OK(e);
  const Value* error = e->Find("error");
  ASSERT_NE(error, nullptr) << nobody.output;
  EXPECT_EQ(error->Find("code")->AsInt(), 4);
  EXPECT_EQ(error->Find("status")->AsString(), "NOT_FOUND");
  EXPECT_EQ(error->Find("kind")->AsString(), "NoConsumer");
  EXPECT_THAT(error->Find("message")->AsString(), HasSubstr("storage"));
  CliRun remote = Cli({"call", "compute", "fail", R"({"message": "boom"})", "--json"});
  EXPECT_EQ(remote.exit_code, 1);
  absl::StatusOr<Value> r = ParseJson(remote.output);
  ZRPC_ASSERT_OK(r);
  EXPECT_EQ(r->Find("error")->Find("kind")->AsString(), "RemoteError");
  EXPECT_THAT(r->Find("error")->Find("message")->AsString(), HasSubstr("boom"));
  CliRun usage = Cli({"call", "compute", "--json"});
  EXPECT_EQ(usage.exit_code, 2);
  absl::StatusOr<Value> u = ParseJson(usage.output);
  ZRPC_ASSERT_OK(u);
  EXPECT_EQ(u->Find("error")->Find("code")->AsInt(), 2);
  EXPECT_EQ(u->Find("error")->Find("kind")->AsString(), "UsageError");
  EXPECT_THAT(u->Find("error")->Find("message")->AsString(), HasSubstr("expected TOPIC METHOD"));
}

TEST_F(CliTest, EveryToolPrintsZrpcsVersion) {
  auto version_of = [](const CliRun& r, const std::string& tool) {
    EXPECT_EQ(r.exit_code, 0) << tool;
    EXPECT_THAT(r.output, ::testing::MatchesRegex(tool + " [0-9]+\\.[0-9]+\\.[0-9]+\n")) << tool;
    return r.output.substr(tool.size());
  };
  const std::string v = version_of(Cli({"version"}), "zrpc");
  EXPECT_EQ(version_of(Cli({"--version"}), "zrpc"), v);
  EXPECT_EQ(version_of(RunTool({ZRPC_SERVICE_BINARY, "--version"}), "zrpc-service"), v);
  EXPECT_EQ(version_of(RunTool({ZRPC_MATCHMAKER_BINARY, "--version"}), "zrpc-matchmaker"), v);
  CliRun json = Cli({"version", "--json"});
  absl::StatusOr<Value> j = ParseJson(json.output);
  ZRPC_ASSERT_OK(j);
  EXPECT_EQ(j->Find("version")->AsString() + "\n", v.substr(1));
}

TEST_F(CliTest, PingAllAnswersForEveryInstanceWithItsLatency) {
  StartService("node1");
  StartService("node2");
  CliRun all = Cli({"ping", "compute", "--all"});
  EXPECT_EQ(all.exit_code, 0) << all.output;
  EXPECT_EQ(Lines(all.output), 2u) << all.output;
  EXPECT_THAT(all.output, ::testing::ContainsRegex("pong from node1 at tcp://127.0.0.1:[0-9]+ in [0-9.]+ ms"));
  EXPECT_THAT(all.output, ::testing::ContainsRegex("pong from node2 at tcp://127.0.0.1:[0-9]+ in [0-9.]+ ms"));
  CliRun json = Cli({"ping", "compute", "--all", "--json"});
  EXPECT_EQ(json.exit_code, 0);
  std::set<std::string> hosts;
  for (absl::string_view line : absl::StrSplit(json.output, '\n', absl::SkipEmpty())) {
    absl::StatusOr<Value> v = ParseJson(std::string(line));
    ZRPC_ASSERT_OK(v);
    hosts.insert(v->Find("host")->AsString());
    EXPECT_TRUE(v->Find("latency_ms") && v->Find("latency_ms")->is_number()) << line;
    EXPECT_THAT(v->Find("endpoint")->AsString(), HasSubstr("tcp://127.0.0.1:"));
  }
  EXPECT_EQ(hosts, (std::set<std::string>{"node1", "node2"}));
  CliRun one = Cli({"ping", "compute", "--json"});
  EXPECT_EQ(one.exit_code, 0);
  absl::StatusOr<Value> o = ParseJson(one.output);
  ZRPC_ASSERT_OK(o);
  EXPECT_TRUE(o->Find("latency_ms") && o->Find("latency_ms")->is_number()) << one.output;
  EXPECT_TRUE(o->Find("pong")->AsBool());
  // An instance that is registered but gone: its own line, and the exit code says so.
  absl::StatusOr<std::unique_ptr<Matchmaker>> mm = CreateMatchmaker(matchmaker_);
  ZRPC_ASSERT_OK(mm);
  const Registration ghost{.topic = "compute", .host = "ghost",
                           .endpoint = "tcp://127.0.0.1:" + std::to_string(FreePort())};
  ZRPC_ASSERT_OK((*mm)->Register(ghost));
  CliRun partial = Cli({"ping", "compute", "--all", "--timeout", "3"});
  EXPECT_NE(partial.exit_code, 0) << partial.output;
  EXPECT_EQ(Lines(partial.output), 3u) << partial.output;
  EXPECT_THAT(partial.output, HasSubstr("no answer from ghost at " + ghost.endpoint));
  EXPECT_THAT(partial.output, HasSubstr("pong from node1"));
  EXPECT_EQ(Cli({"ping", "storage", "--all"}).exit_code, 4);
  EXPECT_EQ(Cli({"ping", "compute", "--all", "--host", "node1"}).exit_code, 2);
}

TEST_F(CliTest, TopicsOnAMissingRegistrySaysSoAndFails) {
  const std::string missing = registry_ + "/nobody-here";
  CliRun r = Cli({"topics", "--matchmaker", "local://" + missing});
  EXPECT_EQ(r.exit_code, 4);
  EXPECT_EQ(r.output, "zrpc: no registry at " + missing +
                          " (no service has registered there; do the services use the "
                          "matchmaker local://" + missing + "?)\n");
  EXPECT_FALSE(std::filesystem::exists(missing)) << "topics must not create the registry";
  // An existing but empty registry: the header, and a note on stderr.
  CliRun empty = Cli({"topics"});
  EXPECT_EQ(empty.exit_code, 0);
  EXPECT_THAT(empty.output, HasSubstr("TOPIC"));
  EXPECT_THAT(empty.output, HasSubstr("no registrations in local://" + registry_));
}

TEST_F(CliTest, TheMatchmakerComesFromTheEnvironmentWhenNotGiven) {
  StartService("node1");
  setenv("ZRPC_MATCHMAKER", matchmaker_.c_str(), 1);
  CliRun r = RunTool({ZRPC_CLI_BINARY, "call", "compute", "whoami"});
  unsetenv("ZRPC_MATCHMAKER");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(r.output, "\"node1\"\n");
}

TEST_F(CliTest, DescribeShowsMethodsOfAService) {
  StartService("node1");
  CliRun r = Cli({"describe", "compute"});
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_THAT(r.output, HasSubstr("host node1 at tcp://127.0.0.1:"));
  EXPECT_THAT(r.output, HasSubstr("namespace \"\" version 1.3:"));
  EXPECT_THAT(r.output, HasSubstr("    add(a: integer, b: integer) -> integer\n"));
  EXPECT_THAT(r.output, HasSubstr("    count(...) -> stream\n"));
  EXPECT_THAT(r.output, HasSubstr("    emit(event_type: string, priority: string, payload?: any)\n"));
  EXPECT_THAT(r.output, HasSubstr("    echo(...)\n"));
}

TEST_F(CliTest, DescribeOfAnOlderServiceWithoutSignaturesListsItsMethodNames) {
  absl::StatusOr<std::unique_ptr<Matchmaker>> mm = CreateMatchmaker(matchmaker_);
  ZRPC_ASSERT_OK(mm);
  absl::StatusOr<Value> answer = ParseJson(R"j({"host": "old", "endpoint": "tcp://127.0.0.1:1",
      "topics": [{"exchange": "openstack", "topic": "legacy", "fanout": false}],
      "endpoints": [{"namespace": "", "version": "1.0", "methods": ["add", "count (stream)"]}]})j");
  ZRPC_ASSERT_OK(answer);
  FakeInstance old(*answer);
  ZRPC_ASSERT_OK(
      (*mm)->Register(Registration{.topic = "legacy", .host = "old", .endpoint = old.endpoint()}));
  CliRun r = Cli({"describe", "legacy"});
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(r.output,
            "host old at tcp://127.0.0.1:1\n  consumes openstack legacy\n"
            "  namespace \"\" version 1.0: add count (stream)\n");
}

// The text of `zrpc describe`, from answers given as JSON (the formatter is a pure function).
std::string Describe(const std::string& json) {
  absl::StatusOr<Value> v = ParseJson(json);
  EXPECT_TRUE(v.ok()) << v.status();
  return v.ok() ? tools::FormatDescribe(*v).value_or("<not a describe answer>") : "";
}

TEST(DescribeFormatTest, SignaturesAreOneLineEachWithTypesAndStreamsMarked) {
  EXPECT_EQ(Describe(R"j({"host": "node1", "endpoint": "tcp://127.0.0.1:5000",
      "topics": [{"exchange": "openstack", "topic": "compute", "fanout": false},
                 {"exchange": "openstack", "topic": "compute", "fanout": true},
                 {"exchange": "openstack", "topic": "compute", "fanout": false, "pool": "w"}],
      "endpoints": [{"namespace": "", "version": "1.3", "methods": ["add", "count (stream)", "echo"],
        "signatures": [
          {"name": "add", "args": [{"name": "a", "type": "integer"}, {"name": "b", "type": "integer"}],
           "returns": "integer", "stream": false},
          {"name": "count", "args": [{"name": "n", "type": "integer"}], "returns": "integer", "stream": true},
          {"name": "tick", "stream": true},
          {"name": "whoami", "args": [], "returns": "string", "stream": false},
          {"name": "emit", "args": [{"name": "payload", "type": "any", "optional": true}],
           "returns": "null", "stream": false},
          {"name": "echo", "stream": false}]}]})j"),
            "host node1 at tcp://127.0.0.1:5000\n"
            "  consumes openstack compute\n"
            "  consumes openstack compute (fanout)\n"
            "  consumes openstack compute (pool w)\n"
            "  namespace \"\" version 1.3:\n"
            "    add(a: integer, b: integer) -> integer\n"
            "    count(n: integer) -> stream of integer\n"
            "    tick(...) -> stream\n"
            "    whoami() -> string\n"
            "    emit(payload?: any)\n"
            "    echo(...)\n");
}

TEST(DescribeFormatTest, OlderServicesWithoutSignaturesShowTheirMethodNames) {
  EXPECT_EQ(Describe(R"j({"host": "n", "endpoint": "e", "topics": [],
      "endpoints": [{"namespace": "ops", "version": "2.0", "methods": ["add", "count (stream)"]}]})j"),
            "host n at e\n  namespace \"ops\" version 2.0: add count (stream)\n");
}

TEST(DescribeFormatTest, HostileOrOddAnswersAreEscapedNeverTrusted) {
  const std::string text = Describe(R"j({"host": "\u001b[2Jx", "endpoint": 5, "topics": "no",
      "endpoints": [{"version": "1.0", "signatures": [{"name": "a\nb", "args": [7, {"name": "\u009b"}],
                     "returns": 3, "stream": "yes"}, 4]}]})j");
  EXPECT_EQ(text.find('\x1b'), std::string::npos) << text;
  EXPECT_EQ(text.find("\xc2\x9b"), std::string::npos) << text;
  EXPECT_EQ(text, "host \\x1b[2Jx at ?\n  namespace \"\" version 1.0:\n    a\\x0ab(?, \\xc2\\x9b)\n    ?(...)\n");
  EXPECT_EQ(Describe(R"j("just a string")j"), "<not a describe answer>");
  EXPECT_EQ(tools::FormatSignature(Value(5)), "?(...)");
}

}  // namespace
}  // namespace zrpc::testing
