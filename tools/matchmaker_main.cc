// SPDX-License-Identifier: Apache-2.0
// zrpc-matchmaker: the matchmaker sidecar, run beside the services of a host.
//
//   zrpc-matchmaker --endpoint ipc:///run/zrpc/mm.sock --backend redis://10.0.0.9:6379 --ttl 5
//
// Services and clients of the host use it with TransportOptions.matchmaker = the endpoint. The
// sidecar itself is matchmaker/sidecar/server.h; this is its command line. Prints
// "READY <endpoint> <pub>" once listening; stops on SIGTERM/SIGINT.
#include <signal.h>
#include <unistd.h>

#include <iostream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "flags.h"
#include "matchmaker/sidecar/protocol.h"
#include "matchmaker/sidecar/server.h"
#include "zrpc/log.h"
#include "zrpc/matchmaker.h"

int main(int argc, char** argv) {
  using zrpc::internal::sidecar::SidecarServer;
  zrpc::tools::Flags flags(
      "usage: zrpc-matchmaker [flags]\n"
      "The zrpc matchmaker sidecar: services and clients of this host use --endpoint as their\n"
      "matchmaker URL.",
      {{"endpoint", "where to listen (default ipc:///tmp/zrpc-matchmaker-UID.sock)"},
       {"tcp", "also listen here, e.g. tcp://0.0.0.0:7400"},
       {"pub",
        "where to publish changes (default: the endpoint + \".pub\" for ipc, else tcp ephemeral)"},
       {"backend",
        "memory (default), ring:///path/ring.json or\n"
        "      redis://[[user]:password@]host[:port][/db][?password_file=/abs/path]. Keep the "
        "Redis\n"
        "      password off this command line (every local user can read it in /proc): give\n"
        "      password_file=PATH (a file only its owner may read: chmod 600) or set\n"
        "      $ZRPC_REDIS_PASSWORD; the URL is logged with its password masked"},
       {"ttl", "seconds without a heartbeat before a registration expires (default 5)"}});
  flags.Parse(argc, argv);
  zrpc::tools::UseReleaseMutexes();
  // Blocked before any thread starts, so that every thread inherits the mask and sigwait gets them.
  sigset_t signals = zrpc::tools::BlockTerminationSignals();

  SidecarServer::Options options;
  options.endpoints = {
      flags.Get("endpoint", absl::StrCat("ipc:///tmp/zrpc-matchmaker-", getuid(), ".sock"))};
  if (flags.Has("tcp")) options.endpoints.push_back(flags.Get("tcp"));
  options.pub = flags.Get("pub");
  options.backend = flags.Get("backend", "memory");
  const long ttl_s = flags.GetInt("ttl", 5);
  if (ttl_s < 1) flags.Fail("--ttl must be at least 1");
  options.ttl = absl::Seconds(ttl_s);
  if (zrpc::internal::sidecar::IsSidecarUrl(options.backend)) {
    std::cerr << "zrpc-matchmaker: a sidecar cannot use another sidecar as its backend\n";
    return 2;
  }

  absl::StatusOr<std::unique_ptr<SidecarServer>> server = SidecarServer::Create(options);
  if (!server.ok()) {
    std::cerr << "zrpc-matchmaker: " << server.status().message() << "\n";
    return 1;
  }
  const std::string& endpoint = options.endpoints.front();
  zrpc::Log(zrpc::LogLevel::kInfo,
            absl::StrFormat("zrpc-matchmaker listening on %s (changes on %s), backend %s, ttl %ds",
                            endpoint, (*server)->pub_endpoint(), zrpc::RedactUrl(options.backend),
                            ttl_s));
  std::cout << "READY " << endpoint << " " << (*server)->pub_endpoint() << std::endl;
  std::thread serving([&] { (*server)->Run(); });
  int sig = 0;
  sigwait(&signals, &sig);
  (*server)->Stop();
  serving.join();
  return 0;
}
