// SPDX-License-Identifier: Apache-2.0
// zrpc-matchmaker: the matchmaker sidecar, run beside the services of a host.
//
//   zrpc-matchmaker --endpoint ipc:///run/zrpc/mm.sock --backend redis://10.0.0.9:6379 --ttl 5
//   zrpc-matchmaker --endpoint ipc:///srv/zrpc/mm.sock --socket-group zrpc --socket-mode 0660
//   zrpc-matchmaker --tcp tcp://0.0.0.0:7400 --key-file mm.key --authorized-keys authorized_keys
//   zrpc-matchmaker --metrics-listen 127.0.0.1:9465
//
// Services and clients of the host use it with TransportOptions.matchmaker = the endpoint (with
// keys: the endpoint + "?key=<the sidecar's public key>" or "?key_file=/path/mm.pub"). The
// sidecar itself is matchmaker/sidecar/server.h; this is its command line. Prints
// "READY <endpoint> <pub>" once listening (after "METRICS port N" with --metrics-listen); stops on
// SIGTERM/SIGINT.
#include <signal.h>
#include <unistd.h>

#include <cstdlib>
#include <iostream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "cli_common.h"
#include "matchmaker/sidecar/protocol.h"
#include "matchmaker/sidecar/server.h"
#include "src/base/secure_fs.h"
#include "zrpc/log.h"
#include "zrpc/matchmaker.h"

int main(int argc, char** argv) {
  using zrpc::internal::sidecar::SidecarServer;
  zrpc::tools::UsageReporter::Get().program = "zrpc-matchmaker";
  zrpc::tools::ToolApp app(
      "zrpc-matchmaker", "zrpc-matchmaker [flags]",
      "The zrpc matchmaker sidecar: services and clients of this host use --endpoint as their\n"
      "matchmaker URL.");
  struct {
    std::string endpoint, socket_mode, socket_group, tcp, registrars, pub, backend = "memory";
    std::string metrics_listen;
    std::string ttl = "5";
    bool insecure = false;
    zrpc::tools::SecurityFlags security;
  } f;
  CLI::App& a = app.app();
  a.add_option("--endpoint", f.endpoint,
               "where to listen (default ipc://RUNTIME_DIR/matchmaker.sock, RUNTIME_DIR being "
               "/run/zrpc for root, else $XDG_RUNTIME_DIR/zrpc, else /tmp/zrpc-UID); an ipc:// "
               "socket's directory is created, or must be yours and writable by you alone (see "
               "--socket-group)")
      ->type_name("URL");
  a.add_option("--socket-mode", f.socket_mode,
               "octal mode of the ipc:// sockets (default 0600: only you may connect)")
      ->type_name("MODE");
  a.add_option("--socket-group", f.socket_group,
               "group of the ipc:// sockets; their directory may then be shared with that group "
               "(owned by you or root, of that group, not writable by others); use "
               "--socket-mode 0660")
      ->type_name("GROUP");
  a.add_option("--tcp", f.tcp,
               "also listen here, e.g. tcp://10.0.0.5:7400 (every interface: needs keys or "
               "--insecure)")
      ->type_name("URL");
  a.add_flag("--insecure", f.insecure,
             "allow --tcp/--pub on every interface (*, 0.0.0.0, ::) without keys: anyone who "
             "reaches the port can then register and unregister instances; and "
             "--metrics-listen on every interface");
  a.add_option("--metrics-listen", f.metrics_listen,
               "serve Prometheus metrics at http://HOST:PORT/metrics (e.g. 127.0.0.1:9465; every "
               "interface only with --insecure): registrations, watchers, requests by operation "
               "and result, Redis round trips")
      ->type_name("HOST:PORT");
  a.add_option("--registrars", f.registrars,
               "with keys: only this identity or authorized_keys group may register (default: "
               "every admitted key); everyone admitted may still resolve")
      ->type_name("WHO");
  a.add_option("--pub", f.pub,
               "where to publish changes (default: the endpoint + \".pub\" for ipc, else tcp "
               "ephemeral)")
      ->type_name("URL");
  a.add_option("--backend", f.backend,
               "memory (default), ring:///path/ring.json or "
               "redis://[[user]:password@]host[:port][/db][?password_file=/abs/path]. Keep the "
               "Redis password off this command line (every local user can read it in /proc): "
               "give password_file=PATH (a file only its owner may read: chmod 600) or set "
               "$ZRPC_REDIS_PASSWORD; the URL is logged with its password masked")
      ->type_name("URL");
  a.add_option("--ttl", f.ttl,
               "seconds without a heartbeat before a registration expires (default 5)")
      ->type_name("SECONDS");
  f.security.AddTo(app);
  app.AddVersionFlag();
  std::vector<std::string> positionals;
  app.Positionals(&positionals);
  app.Parse(argc, argv);
  if (!positionals.empty()) {
    app.Fail("zrpc-matchmaker takes no arguments, only flags (got '" + positionals[0] + "')");
  }
  zrpc::tools::UseReleaseMutexes();
  // Blocked before any thread starts, so that every thread inherits the mask and sigwait gets them.
  zrpc::BlockShutdownSignals();

  SidecarServer::Options options;
  options.endpoints = {
      app.Has("--endpoint")
          ? f.endpoint
          : absl::StrCat("ipc://", zrpc::internal::DefaultRuntimeDir(), "/matchmaker.sock")};
  if (app.Has("--socket-mode")) {
    const std::string& mode = f.socket_mode;
    char* end = nullptr;
    const unsigned long v = std::strtoul(mode.c_str(), &end, 8);
    if (mode.empty() || *end != '\0' || v > 0777) {
      app.Fail("--socket-mode needs an octal mode 0..0777, e.g. 0600 or 0660");
    }
    options.socket_mode = static_cast<mode_t>(v);
  }
  if (app.Has("--socket-group")) {
    absl::StatusOr<gid_t> gid = zrpc::internal::LookupGroup(f.socket_group);
    if (!gid.ok()) app.Fail(absl::StrCat("--socket-group: ", gid.status().message()));
    options.socket_group = *gid;
    options.socket_group_name = f.socket_group;
  }
  if (app.Has("--tcp")) options.endpoints.push_back(f.tcp);
  options.pub = f.pub;
  options.security = f.security.Resolve(app);
  options.registrars = f.registrars;
  if (!options.registrars.empty() && !options.security.enabled()) {
    app.Fail("--registrars needs keys (--key-file and --authorized-keys)");
  }
  if (options.security.enabled() != !options.security.authorized_keys_file.empty()) {
    app.Fail(
        "with keys, give both --key-file and --authorized-keys (or $ZRPC_KEY_FILE and "
        "$ZRPC_AUTHORIZED_KEYS)");
  }
  // With keys only admitted keys get in (CurveZMQ): every interface is then fine.
  for (const std::string& ep : {f.tcp, options.pub}) {
    const bool everywhere =
        absl::StartsWith(ep, "tcp://*:") || absl::StartsWith(ep, "tcp://0.0.0.0:") ||
        absl::StartsWith(ep, "tcp://[::]:") || absl::StartsWith(ep, "tcp://:::");
    if (everywhere && !f.insecure && !options.security.enabled()) {
      app.Fail(absl::StrCat(ep,
                            " listens on every interface: add --insecure (without keys anyone "
                            "who reaches it can register and unregister instances), or give "
                            "--key-file and --authorized-keys (CurveZMQ: only admitted keys get "
                            "in), or listen on one private address"));
    }
  }
  options.backend = f.backend;
  options.metrics_listen = f.metrics_listen;
  options.metrics_insecure = f.insecure;
  const long ttl_s = app.Integer("--ttl", f.ttl, 1, 86400);
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
            absl::StrFormat(
                "zrpc-matchmaker listening on %s (changes on %s), backend %s, ttl %ds, %s",
                endpoint, (*server)->pub_endpoint(), zrpc::RedactUrl(options.backend), ttl_s,
                options.security.enabled() ? "CurveZMQ on (clients pin this sidecar's public key)"
                                           : "no keys (plain ZeroMQ)"));
  if ((*server)->metrics_port() > 0) {
    std::cout << "METRICS port " << (*server)->metrics_port() << std::endl;
  }
  std::cout << "READY " << endpoint << " " << (*server)->pub_endpoint() << std::endl;
  std::thread serving([&] { (*server)->Run(); });
  zrpc::WaitForShutdownSignal();
  (*server)->Stop();
  serving.join();
  return 0;
}
