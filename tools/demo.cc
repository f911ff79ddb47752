// SPDX-License-Identifier: Apache-2.0
// zrpc-demo (the README's first command): three instances of the reference `compute` service
// (hosts node1..node3) in separate processes, found through the embedded local:// matchmaker,
// and a client showing each messaging pattern. Stops everything it started and exits 0.
#include <stdlib.h>

#include <cstdio>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_format.h"
#include "cli_common.h"
#include "testing/child_process.h"
#include "zrpc/zrpc.h"

namespace {

const absl::Time kStart = absl::Now();

void Say(const std::string& line) {
  std::cout << absl::StrFormat("[%6.3fs] ", absl::ToDoubleSeconds(absl::Now() - kStart)) << line
            << std::endl;
}

std::string Show(const absl::StatusOr<zrpc::Value>& r) {
  if (r.ok()) return zrpc::ToJson(*r).value_or("?");
  std::optional<zrpc::ErrorKind> kind = zrpc::GetErrorKind(r.status());
  std::string text(r.status().message());
  for (size_t p; (p = text.find('\n')) != std::string::npos;) text.replace(p, 1, " | ");
  return absl::StrFormat("%s (%s%s): %s", kind ? std::string(zrpc::ErrorKindName(*kind)) : "error",
                         absl::StatusCodeToString(r.status().code()),
                         zrpc::IsRemote(r.status()) ? ", from the server" : "", text);
}

int Fail(const std::string& why) {
  std::cerr << "zrpc-demo: " << why << "\n";
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  zrpc::tools::UsageReporter::Get().program = "zrpc-demo";
  zrpc::tools::ToolApp app("zrpc-demo", "zrpc-demo",
                           "Starts three instances of the reference service and shows each "
                           "messaging pattern,\nthen stops them.");
  app.AddVersionFlag();
  std::vector<std::string> positionals;
  app.Positionals(&positionals);
  app.Parse(argc, argv);
  if (!positionals.empty()) app.Fail("zrpc-demo takes no arguments");
  // Keep the demo's output readable: only problems from zrpc itself and from the services.
  zrpc::SetLogLevel(zrpc::LogLevel::kError);
  zrpc::tools::UseReleaseMutexes();
  setenv("ZRPC_LOG_LEVEL", "error", /*overwrite=*/0);
  char dir_template[] = "/tmp/zrpc-demo-XXXXXX";
  if (mkdtemp(dir_template) == nullptr) return Fail("cannot create a registry directory");
  const std::string registry = dir_template;
  const std::string matchmaker = "local://" + registry;
  const std::string service = zrpc::testing::SelfDir() + "/zrpc-service";

  Say("starting 3 instances of the compute service (" + service + "), matchmaker " + matchmaker);
  std::vector<std::unique_ptr<zrpc::testing::ChildProcess>> services;
  for (int i = 1; i <= 3; ++i) {
    auto child = std::make_unique<zrpc::testing::ChildProcess>();
    const std::string host = "node" + std::to_string(i);
    const std::string ready = child->StartAndWaitForLine(
        {service, "--host", host, "--matchmaker", matchmaker, "--topic", "compute"}, "READY",
        15000);
    if (ready.empty()) return Fail(host + " (" + service + ") did not start");
    Say("  " + host + " pid " + std::to_string(child->pid()) + " listening on " + ready.substr(6));
    services.push_back(std::move(child));
  }

  int status = 0;
  {
    absl::StatusOr<std::unique_ptr<zrpc::Transport>> transport =
        zrpc::Transport::Create({.host = "demo-client", .matchmaker = matchmaker});
    if (!transport.ok()) return Fail(std::string(transport.status().message()));
    zrpc::Transport& t = **transport;
    zrpc::Context ctx(zrpc::Object{{"user", "demo"}, {"request_id", "req-1"}});
    zrpc::RpcProxy compute(t, "compute", "1.0");

    Say("");
    Say("1. calls to \"compute\" go round-robin over the three instances:");
    for (int i = 0; i < 6; ++i) {
      Say("   whoami() -> " + Show(compute.Call(ctx, compute.MakeMsg("whoami"))));
    }

    Say("2. a call to \"compute.node2\" reaches that instance only:");
    for (int i = 0; i < 2; ++i) {
      Say("   whoami() on compute.node2 -> " +
          Show(compute.Call(ctx, compute.MakeMsg("whoami"), {.topic = "compute.node2"})));
    }
    Say("   add(a=2, b=40) -> " +
        Show(compute.Call(ctx, compute.MakeMsg("add", {{"a", 2}, {"b", 40}}))));

    Say("3. a cast (one-way) goes to one instance; a fanout reaches all three:");
    absl::Status cast = compute.Cast(ctx, compute.MakeMsg("note", {{"kind", "cast"}}));
    Say("   cast note(kind=cast) -> " + (cast.ok() ? std::string("queued") : zrpc::FormatError(cast)));
    absl::Status fanout = compute.FanoutCast(ctx, compute.MakeMsg("note", {{"kind", "fanout"}}));
    Say("   fanout_cast note(kind=fanout) -> " + (fanout.ok() ? std::string("sent") : zrpc::FormatError(fanout)));
    absl::SleepFor(absl::Milliseconds(300));  // casts are one-way: give them a moment
    for (int i = 1; i <= 3; ++i) {
      const std::string topic = "compute.node" + std::to_string(i);
      Say("   stats() on " + topic + " -> " +
          Show(compute.Call(ctx, compute.MakeMsg("stats"), {.topic = topic})));
    }

    Say("4. a multicall streams each value as the handler yields it (one every 300 ms):");
    absl::StatusOr<std::unique_ptr<zrpc::ReplyStream>> stream =
        compute.MultiCall(ctx, compute.MakeMsg("count", {{"n", 4}, {"delay_ms", 300}}));
    if (!stream.ok()) {
      Say("   multicall failed: " + zrpc::FormatError(stream.status()));
      status = 1;
    } else {
      while (true) {
        absl::StatusOr<std::optional<zrpc::Value>> v = (*stream)->Next();
        if (!v.ok()) {
          Say("   error: " + Show(v.status()));
          status = 1;
          break;
        }
        if (!v->has_value()) {
          Say("   (end of stream)");
          break;
        }
        Say("   value " + Show(**v));
      }
    }

    Say("5. a handler's failure comes back as a RemoteError with the server's type and message:");
    Say("   fail(message=\"disk on fire\") -> " +
        Show(compute.Call(ctx, compute.MakeMsg("fail", {{"message", "disk on fire"}}))));

    Say("6. versions: the service implements 1.3");
    Say("   whoami() at version 1.2 -> " +
        Show(compute.Call(ctx, compute.MakeMsg("whoami"), {.version = "1.2"})));
    Say("   whoami() at version 2.0 -> " +
        Show(compute.Call(ctx, compute.MakeMsg("whoami"), {.version = "2.0"})));
    zrpc::RpcProxy capped(t, "compute", "1.0", {.version_cap = "1.1"});
    Say("   with version_cap 1.1, asking for 1.3 -> " +
        Show(capped.Call(ctx, capped.MakeMsg("whoami"), {.version = "1.3"})));
    Say("   unknown method frobnicate() -> " + Show(compute.Call(ctx, compute.MakeMsg("frobnicate"))));

    Say("7. a call that outlives its deadline times out (sleep 3 s, timeout 1 s):");
    Say("   sleep(ms=3000) -> " + Show(compute.Call(ctx, compute.MakeMsg("sleep", {{"ms", 3000}}),
                                                    {.timeout = absl::Seconds(1)})));

    Say("8. nobody consumes \"storage\": the error is immediate, not a 60 s wait:");
    Say("   whoami() on storage -> " +
        Show(compute.Call(ctx, compute.MakeMsg("whoami"), {.topic = "storage"})));
    t.Close();
  }

  Say("");
  Say("stopping the services");
  for (auto& child : services) {
    const int s = child->Stop();
    if (!(WIFEXITED(s) && WEXITSTATUS(s) == 0)) {
      Say("  a service did not exit cleanly (status " + std::to_string(s) + ")");
      status = 1;
    }
  }
  rmdir(registry.c_str());
  Say(status == 0 ? "demo finished" : "demo finished with errors");
  return status;
}
