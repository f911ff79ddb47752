// SPDX-License-Identifier: Apache-2.0
// The zrpc command line against a real service: output and exit codes.
#include <sys/stat.h>
#include <sys/wait.h>

#include <fstream>
#include <thread>

#include <zmq.hpp>
#include <zmq_addon.hpp>

#include "codec/wire.h"
#include "testing/harness.h"
#include "unit/test_util.h"
#include "zrpc/security.h"

namespace zrpc::testing {
namespace {

using ::testing::HasSubstr;

struct CliRun {
  int exit_code = -1;
  std::string output;  // stdout and stderr
};

class CliTest : public IntegrationTest {
 protected:
  CliRun Cli(std::vector<std::string> args, int timeout_ms = 20000) {
    std::vector<std::string> argv = {ZRPC_CLI_BINARY};
    argv.insert(argv.end(), args.begin(), args.end());
    argv.push_back("--matchmaker");
    argv.push_back(matchmaker_);
    ChildProcess p;
    EXPECT_TRUE(p.Start(argv, {.capture_stderr = true}));
    CliRun r;
    r.output = p.ReadAll(timeout_ms);
    const int status = p.Reap(timeout_ms);
    r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    return r;
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
  CliRun version = Cli({"call", "compute", "whoami", "--version", "2.0"});
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
  EXPECT_THAT(topics.output, HasSubstr("fanout~compute"));
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
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
}

}  // namespace
}  // namespace zrpc::testing
