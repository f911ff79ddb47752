// SPDX-License-Identifier: Apache-2.0
// zrpc-faults: the fault matrix. For each matchmaker (local://, the sidecar over memory,
// redis://, the sidecar over Redis) it starts three zrpc-service instances and the matchmaker's
// processes, drives them with client threads of this process (4 × 50 calls/s of `whoami`, which
// returns the answering host), makes one fault per scenario and prints one row per scenario:
//
//   build/bench/zrpc-faults [--matchmakers local,sidecar,redis,sidecar-redis]
//                           [--scenarios kill,stop-long,stop,...] [--soak-minutes 10] [--quick]
//                           [--json]
//
// Scenarios (node2 is the faulty instance):
//   kill              kill -9 under load; restarted on its port after the fault phase
//   stop-long         SIGSTOP while every client thread is in a long call (sleep 2 s, deadline
//                     20 s, back to back); SIGCONT after the fault phase
//   stop              SIGSTOP under load; SIGCONT after the fault phase
//   redis-kill        kill -9 of redis-server under load; restarted empty (redis matchmakers)
//   sidecar-kill      kill -9 of zrpc-matchmaker under load; restarted (sidecar matchmakers)
//   client-teardown   the client's Transport closed while every thread is in a call (sleep 300 ms)
//   service-teardown  SIGTERM to node2 while calls are in flight (sleep 300 ms); restarted
//   soak              4 client processes (this tool with --client) for --soak-minutes; every 10 s
//                     an instance is killed, and restarted on a new ephemeral port 5 s later
// It reports what today's engine does, good or bad; every wait is bounded, and it stops only
// the processes it started (by PID), also on SIGINT/SIGTERM.
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <iostream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "bench/fault_cluster.h"
#include "bench/fault_load.h"
#include "bench/fault_report.h"
#include "testing/child_process.h"
#include "bench/flags.h"
#include "zrpc/zrpc.h"

namespace zrpc::faults {
namespace {

std::atomic<bool> interrupted{false};

void OnSignal(int) { interrupted = true; }

void InstallSignalHandlers() {
  struct sigaction sa = {};
  sa.sa_handler = OnSignal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
}

constexpr int kInstances = 3;
constexpr int kFaulty = 1;  // node2
const char* const kScenarios[] = {"kill",
                                  "stop-long",
                                  "stop",
                                  "redis-kill",
                                  "sidecar-kill",
                                  "client-teardown",
                                  "service-teardown",
                                  "soak"};

struct Settings {
  absl::Duration warmup, before, during, stop_during, after;
  absl::Duration call_timeout;
  absl::Duration long_call = absl::Seconds(2), long_timeout = absl::Seconds(20);
  double soak_minutes = 10;
  Binaries binaries;
  std::string self;     // this executable, for --client
  std::string run_dir;  // private; removed at exit
  std::string child_stderr;
};

// Sleeps `d` unless interrupted; false when interrupted.
bool Pause(absl::Duration d) { return SleepUntil(absl::Now() + d, interrupted); }

// One scenario's processes and clients.
class Env {
 public:
  Env(const Settings& settings, MatchmakerKind kind, const std::string& dir)
      : settings_(settings), cluster_(kind, settings.binaries, dir, settings.child_stderr) {}

  absl::Status Start() { return cluster_.Start(kInstances); }
  Cluster& cluster() { return cluster_; }
  const Settings& settings() const { return settings_; }

  absl::StatusOr<std::shared_ptr<Transport>> NewClient() {
    TransportOptions options;
    options.host = "faults-client";
    options.matchmaker = cluster_.url();
    absl::StatusOr<std::unique_ptr<Transport>> t = Transport::Create(std::move(options));
    if (!t.ok()) return t.status();
    return std::shared_ptr<Transport>(*std::move(t));
  }

  // Closes `client` within 15 s, or leaves it behind; returns how long it took.
  static absl::Duration CloseClient(std::shared_ptr<Transport> client) {
    const absl::Time t0 = absl::Now();
    if (!RunBounded([client] { client->Close(); }, absl::Seconds(15)))
      return absl::InfiniteDuration();
    return absl::Now() - t0;
  }

  Snapshot Snap(const std::vector<pid_t>& clients) const {
    return Snapshot{.client = SumProcStats(clients),
                    .services = SumProcStats(cluster_.ServicePids()),
                    .sidecar = ReadProcStats(cluster_.SidecarPid())};
  }

  LoadSpec Spec() const { return LoadSpec{.timeout = settings_.call_timeout}; }
  // Every thread keeps one call of `ms` in flight.
  LoadSpec BusySpec(absl::Duration sleep, absl::Duration timeout) const {
    return LoadSpec{.method = "sleep",
                    .sleep_ms = absl::ToInt64Milliseconds(sleep),
                    .rate = 0,
                    .timeout = timeout};
  }

 private:
  const Settings& settings_;
  Cluster cluster_;
};

// A fault and its undoing (a restart, which can fail).
struct Fault {
  std::string host;  // the instance it hits, "" for none
  std::function<void(std::vector<std::string>* notes)> make;
  std::function<absl::Status()> undo;
};

std::string Secs(absl::Duration d) {
  return d == absl::InfiniteDuration() ? "never"
                                       : absl::StrFormat("%.2f s", absl::ToDoubleSeconds(d));
}

// When the matchmaker lists every instance again after `since` (polled until `until`).
void NoteRegistrationsBack(Env& env, absl::Time since, absl::Time until,
                           std::vector<std::string>* notes) {
  while (absl::Now() < until && !interrupted.load()) {
    if (env.cluster().VisibleInstances() == kInstances) {
      notes->push_back("all 3 registered again " + Secs(absl::Now() - since) +
                       " after the restart");
      return;
    }
    absl::SleepFor(absl::Milliseconds(100));
  }
  notes->push_back("not all 3 registered again within the after phase");
}

// A client Transport of this process with its load.
struct LoadedClient {
  std::shared_ptr<Transport> transport;
  std::unique_ptr<Load> load;

  // A new client calling with `spec`; false (and r->error) when it cannot be made.
  bool Start(Env& env, const LoadSpec& spec, ScenarioResult* r) {
    absl::StatusOr<std::shared_ptr<Transport>> t = env.NewClient();
    if (!t.ok()) {
      r->error = "client: " + t.status().ToString();
      return false;
    }
    transport = *std::move(t);
    load = Load::Start(transport, spec);
    return true;
  }
  // Stops the load (its records join r's) and closes the client; notes what did not end well.
  // Returns how long Close took.
  absl::Duration Finish(ScenarioResult* r, bool interrupted) {
    for (CallRecord& c : load->Finish(interrupted ? absl::Seconds(1) : load->FinishBound())) {
      r->records.push_back(std::move(c));
    }
    if (const int overdue = load->Overdue(); overdue > 0) {
      r->notes.push_back(absl::StrCat(overdue, " client threads left stuck in a call"));
    }
    load.reset();
    return Env::CloseClient(std::move(transport));
  }
};

// Starts a client with `spec` and runs the warm-up and the phase before the fault (r->before,
// r->at_start). False when interrupted or the client could not be made.
bool RunBefore(Env& env, const LoadSpec& spec, LoadedClient* client, ScenarioResult* r) {
  if (!client->Start(env, spec, r)) return false;
  const bool ok = Pause(env.settings().warmup);
  r->before = absl::Now();
  r->at_start = env.Snap({getpid()});
  return ok && Pause(env.settings().before);
}

// Load from this process before, during and after one fault.
ScenarioResult RunUnderLoad(Env& env, ScenarioResult r, LoadSpec spec, absl::Duration during,
                            const Fault& fault, bool poll_registrations = false) {
  LoadedClient client;
  bool ok = RunBefore(env, spec, &client, &r);
  if (!client.load) return r;
  FaultEvent e{.fault = absl::Now(), .host = fault.host};
  if (ok) fault.make(&r.notes);
  ok = ok && Pause(during);
  if (ok) {
    if (absl::Status s = fault.undo(); !s.ok()) r.error = "recovery: " + s.ToString();
  }
  e.recover = absl::Now();
  r.events.push_back(e);
  if (ok && poll_registrations) {
    NoteRegistrationsBack(env, e.recover, e.recover + env.settings().after, &r.notes);
  }
  ok = ok && Pause(e.recover + env.settings().after - absl::Now());
  r.end = absl::Now();
  r.at_end = env.Snap({getpid()});
  const absl::Duration closed = client.Finish(&r, !ok);
  if (closed > absl::Seconds(1)) r.notes.push_back("client Close took " + Secs(closed));
  if (!ok && r.error.empty()) r.error = "interrupted";
  return r;
}

// The faults that hit the instance node2. Restarts reuse its port.
Fault KillFault(Cluster& c) {
  return Fault{.host = Cluster::Host(kFaulty),
               .make = [&c](auto*) { c.KillService(kFaulty); },
               .undo = [&c] { return c.RestartService(kFaulty, /*same_port=*/true); }};
}

Fault StopFault(Cluster& c) {
  return Fault{.host = Cluster::Host(kFaulty),
               .make = [&c](auto*) { c.SignalService(kFaulty, SIGSTOP); },
               .undo =
                   [&c] {
                     c.SignalService(kFaulty, SIGCONT);
                     return absl::OkStatus();
                   }};
}

Fault TermFault(Cluster& c) {
  Fault f = KillFault(c);
  f.make = [&c](std::vector<std::string>* notes) {
    const absl::Time t0 = absl::Now();
    c.SignalService(kFaulty, SIGTERM);
    const bool exited = c.ReapService(kFaulty, absl::Seconds(15));
    notes->push_back(exited ? "node2 exited " + Secs(absl::Now() - t0) + " after SIGTERM"
                            : "node2 still running 15 s after SIGTERM (killed)");
  };
  return f;
}

// Notes how the calls in flight at `at` ended.
void NoteInFlight(ScenarioResult* r, absl::Time at, const std::string& what) {
  int n = 0, unfinished = 0;
  absl::Duration longest;
  for (const CallRecord& c : r->records) {
    if (c.start >= at || c.end < at) continue;
    ++n;
    if (c.end == absl::InfiniteFuture()) {
      ++unfinished;
    } else {
      longest = std::max(longest, c.end - at);
    }
  }
  std::string note =
      absl::StrCat(n, " calls in flight at ", what, "; ended within ", Secs(longest));
  if (unfinished) absl::StrAppend(&note, " (", unfinished, " never ended)");
  r->notes.push_back(std::move(note));
}

ScenarioResult RunClientTeardown(Env& env, ScenarioResult r) {
  const LoadSpec spec = env.BusySpec(absl::Milliseconds(300), env.settings().call_timeout);
  LoadedClient client;
  bool ok = RunBefore(env, spec, &client, &r);
  if (!client.load) return r;
  FaultEvent e{.fault = absl::Now()};
  // The application tears down: its threads stop calling and the Transport closes under them.
  client.load->Stop();
  r.notes.push_back("Close took " + Secs(client.Finish(&r, !ok)));
  NoteInFlight(&r, e.fault, "teardown");
  // A new client takes over.
  if (!client.Start(env, spec, &r)) return r;
  e.recover = absl::Now();
  r.events.push_back(e);
  ok = ok && Pause(env.settings().after);
  r.end = absl::Now();
  r.at_end = env.Snap({getpid()});
  client.Finish(&r, !ok);
  if (!ok) r.error = "interrupted";
  return r;
}

// Client processes for the soak: each runs this tool with --client and prints its records, which
// a reader thread per process collects.
class ClientProcesses {
 public:
  ClientProcesses(const Settings& s, const std::string& url, int n, absl::Duration duration) {
    for (int i = 0; i < n; ++i) {
      auto p = std::make_unique<testing::ChildProcess>();
      const std::vector<std::string> argv = {
          s.self,
          "--client",
          "--url",
          url,
          "--seconds",
          absl::StrCat(absl::ToInt64Seconds(duration) + 60),
          "--call-timeout-ms",
          absl::StrCat(absl::ToInt64Milliseconds(s.call_timeout))};
      if (p->StartAndWaitForLine(argv, "READY", 15000, {.stderr_path = s.child_stderr}).empty()) {
        error_ = "client process " + std::to_string(i) + " did not start";
        return;  // the ChildProcess destructors stop those started
      }
      processes_.push_back(std::move(p));
    }
    for (auto& p : processes_) readers_.emplace_back([this, child = p.get()] { Read(child); });
  }
  ~ClientProcesses() { Finish(absl::Seconds(1)); }

  const std::string& error() const { return error_; }
  std::vector<pid_t> pids() const {
    std::vector<pid_t> out;
    for (const auto& p : processes_) out.push_back(p->pid());
    return out;
  }
  int killed() const { return killed_; }

  // SIGTERM: each finishes its calls, prints the rest and exits; those still running after
  // `bound` are killed. Returns every record read.
  std::vector<CallRecord> Finish(absl::Duration bound) {
    if (!readers_.empty()) {
      for (auto& p : processes_) p->Signal(SIGTERM);
      const absl::Time until = absl::Now() + bound;
      while (readers_finished_.load() < static_cast<int>(readers_.size()) && absl::Now() < until) {
        absl::SleepFor(absl::Milliseconds(20));
      }
      if (readers_finished_.load() < static_cast<int>(readers_.size())) {
        for (auto& p : processes_) {
          if (p->Reap(0) == -1) ++killed_;
        }
      }
      // The readers own the pipes until they see the end of them, which a kill brings at once.
      for (auto& p : processes_) p->Signal(SIGKILL);
      for (auto& r : readers_) r.join();
      readers_.clear();
      for (auto& p : processes_) p->Reap(5000);
    }
    absl::MutexLock lock(&mu_);
    return records_;
  }

 private:
  void Read(testing::ChildProcess* child) {
    std::string line;
    while (true) {
      if (!child->ReadLine(&line, 200)) {
        if (child->output_closed()) break;
        continue;
      }
      if (std::optional<CallRecord> r = ParseRecordLine(line)) {
        absl::MutexLock lock(&mu_);
        records_.push_back(*std::move(r));
      }
    }
    readers_finished_.fetch_add(1);
  }

  std::string error_;
  std::vector<std::unique_ptr<testing::ChildProcess>> processes_;
  std::vector<std::thread> readers_;
  std::atomic<int> readers_finished_{0};
  int killed_ = 0;
  absl::Mutex mu_;
  std::vector<CallRecord> records_ ABSL_GUARDED_BY(mu_);
};

ScenarioResult RunSoak(Env& env, ScenarioResult r) {
  const Settings& s = env.settings();
  const absl::Duration faulting = absl::Seconds(s.soak_minutes * 60);
  const absl::Duration clean = absl::Seconds(10);
  ClientProcesses clients(s, env.cluster().url(), 4, s.warmup + clean + faulting + clean);
  if (!clients.error().empty()) {
    r.error = clients.error();
    return r;
  }
  bool ok = Pause(s.warmup);
  r.before = absl::Now();
  r.at_start = env.Snap(clients.pids());
  ok = ok && Pause(clean);
  const absl::Time faults_end = absl::Now() + faulting;
  for (int k = 0; ok && absl::Now() < faults_end; ++k) {
    const int victim = k % kInstances;
    FaultEvent e{.fault = absl::Now(), .host = Cluster::Host(victim)};
    env.cluster().KillService(victim);
    ok = Pause(absl::Seconds(5));
    if (absl::Status st = env.cluster().RestartService(victim, /*same_port=*/false); !st.ok()) {
      r.error = "restart: " + st.ToString();
      ok = false;
    }
    e.recover = absl::Now();
    r.events.push_back(e);
    ok = ok && Pause(e.fault + absl::Seconds(10) - absl::Now());
  }
  ok = ok && Pause(clean);
  r.end = absl::Now();
  r.at_end = env.Snap(clients.pids());
  r.records = clients.Finish(s.call_timeout + kOutcomeGrace + absl::Seconds(20));
  if (clients.killed() > 0)
    r.notes.push_back(absl::StrCat(clients.killed(), " client processes hung at exit (killed)"));
  r.notes.push_back(absl::StrCat(r.events.size(), " kills; clients are 4 processes"));
  if (!ok && r.error.empty()) r.error = "interrupted";
  return r;
}

bool Applies(MatchmakerKind kind, const std::string& scenario) {
  if (scenario == "redis-kill") return UsesRedis(kind);
  if (scenario == "sidecar-kill") return UsesSidecar(kind);
  return true;
}

ScenarioResult RunScenario(const Settings& s, MatchmakerKind kind, const std::string& scenario,
                           int index) {
  ScenarioResult r{.matchmaker = std::string(MatchmakerName(kind)), .scenario = scenario};
  const std::string dir = s.run_dir + "/" + std::to_string(index);
  std::filesystem::create_directories(dir);
  Env env(s, kind, dir);
  if (absl::Status st = env.Start(); !st.ok()) {
    r.error = st.ToString();
    return r;
  }
  Cluster& c = env.cluster();
  if (scenario == "kill") return RunUnderLoad(env, r, env.Spec(), s.during, KillFault(c));
  if (scenario == "stop") return RunUnderLoad(env, r, env.Spec(), s.stop_during, StopFault(c));
  if (scenario == "stop-long") {
    r = RunUnderLoad(env, r, env.BusySpec(s.long_call, s.long_timeout), s.stop_during,
                     StopFault(c));
    if (!r.events.empty()) NoteInFlight(&r, r.events[0].fault, "SIGSTOP");
    return r;
  }
  if (scenario == "service-teardown") {
    r = RunUnderLoad(env, r, env.BusySpec(absl::Milliseconds(300), s.call_timeout), s.during,
                     TermFault(c));
    if (!r.events.empty()) NoteInFlight(&r, r.events[0].fault, "SIGTERM");
    return r;
  }
  if (scenario == "redis-kill") {
    const Fault f{.make = [&c](auto*) { c.KillRedis(); },
                  .undo = [&c] { return c.RestartRedis(); }};
    return RunUnderLoad(env, r, env.Spec(), s.during, f, /*poll_registrations=*/true);
  }
  if (scenario == "sidecar-kill") {
    const Fault f{.make = [&c](auto*) { c.KillSidecar(); },
                  .undo = [&c] { return c.RestartSidecar(); }};
    return RunUnderLoad(env, r, env.Spec(), s.during, f, /*poll_registrations=*/true);
  }
  if (scenario == "client-teardown") return RunClientTeardown(env, r);
  return RunSoak(env, r);
}

// The compiled-in path when it exists, else `name` beside this executable (or one level up).
std::string FindBinary(const std::string& flag_value, const std::string& built,
                       const std::string& name) {
  if (!flag_value.empty()) return flag_value;
  if (access(built.c_str(), X_OK) == 0) return built;
  for (const std::string& dir :
       {testing::SelfDir(), testing::SelfDir() + "/..", testing::SelfDir() + "/../tools"}) {
    if (access((dir + "/" + name).c_str(), X_OK) == 0) return dir + "/" + name;
  }
  return built;
}

std::vector<std::string> SplitList(const std::string& list) {
  std::vector<std::string> out = absl::StrSplit(list, ',');
  return out;
}

int Main(int argc, char** argv) {
  bench::Flags flags(
      "usage: zrpc-faults [--matchmakers LIST] [--scenarios LIST] [--soak-minutes N] [--quick] "
      "[--json]\n"
      "Runs zrpc's fault matrix and prints one row per matchmaker and scenario.",
      {{"matchmakers", "comma-separated: local,sidecar,redis,sidecar-redis (default all)"},
       {"scenarios",
        "comma-separated: kill,stop-long,stop,redis-kill,sidecar-kill,client-teardown,"
        "service-teardown,soak (default all)"},
       {"soak-minutes", "how long the soak makes faults (default 10; may be fractional)"},
       {"quick!", "short phases (a smoke run)"},
       {"json!", "one JSON object per row instead of the table"},
       {"verbose!", "show zrpc's warnings and the children's stderr"},
       {"service-binary", "zrpc-service to run (default: the one built with this tool)"},
       {"matchmaker-binary", "zrpc-matchmaker to run"},
       {"redis-server", "redis-server to run"},
       {"client!", "internal: be a client process of the soak"},
       {"url", "internal (--client): the matchmaker URL"},
       {"seconds", "internal (--client): how long to call"},
       {"call-timeout-ms", "each call's deadline in ms (default 5000; 2000 with --quick)"}});
  flags.Parse(argc, argv);
  bench::UseReleaseMutexes();
  InstallSignalHandlers();
  const bool verbose = flags.Has("verbose");
  if (!verbose) SetLogLevel(LogLevel::kError);
  const bool quick = flags.Has("quick");
  const absl::Duration call_timeout =
      absl::Milliseconds(flags.GetInt("call-timeout-ms", quick ? 2000 : 5000));

  if (flags.Has("client")) {
    LoadSpec spec{.threads = 1, .timeout = call_timeout};
    const int rc = RunClientProcess(flags.Get("url"), spec,
                                    absl::Seconds(flags.GetInt("seconds", 60)), interrupted);
    if (LeftBehind() > 0) _exit(rc);  // see the end of Main
    return rc;
  }

  Settings s;
  s.warmup = absl::Seconds(quick ? 1 : 2);
  s.before = absl::Seconds(quick ? 2 : 5);
  s.during = absl::Seconds(quick ? 3 : 10);
  s.stop_during = absl::Seconds(quick ? 3 : 5);
  s.after = absl::Seconds(quick ? 3 : 10);
  s.call_timeout = call_timeout;
  if (quick) {
    s.long_call = absl::Seconds(1);
    s.long_timeout = absl::Seconds(10);
  }
  if (flags.Has("soak-minutes") && !absl::SimpleAtod(flags.Get("soak-minutes"), &s.soak_minutes)) {
    flags.Fail("--soak-minutes needs a number");
  }
  s.binaries = {
      .service = FindBinary(flags.Get("service-binary"), ZRPC_SERVICE_BINARY, "zrpc-service"),
      .sidecar =
          FindBinary(flags.Get("matchmaker-binary"), ZRPC_MATCHMAKER_BINARY, "zrpc-matchmaker"),
      .redis = FindBinary(flags.Get("redis-server"), ZRPC_REDIS_SERVER, "redis-server")};
  s.self = testing::SelfDir() + "/zrpc-faults";

  std::vector<MatchmakerKind> kinds;
  for (const std::string& name :
       SplitList(flags.Get("matchmakers", "local,sidecar,redis,sidecar-redis"))) {
    const auto* k = std::find_if(std::begin(kAllMatchmakers), std::end(kAllMatchmakers),
                                 [&name](MatchmakerKind k) { return MatchmakerName(k) == name; });
    if (k == std::end(kAllMatchmakers))
      flags.Fail(absl::StrCat("unknown matchmaker \"", name, "\""));
    kinds.push_back(*k);
  }
  std::vector<std::string> scenarios;
  for (const std::string& name :
       SplitList(flags.Get("scenarios", absl::StrJoin(kScenarios, ",")))) {
    if (std::find(std::begin(kScenarios), std::end(kScenarios), name) == std::end(kScenarios)) {
      flags.Fail(absl::StrCat("unknown scenario \"", name, "\""));
    }
    scenarios.push_back(name);
  }
  for (const std::string& bin : {s.binaries.service, s.binaries.sidecar}) {
    if (access(bin.c_str(), X_OK) != 0) {
      std::cerr << "zrpc-faults: cannot run " << bin << "\n";
      return 1;
    }
  }
  const bool have_redis = access(s.binaries.redis.c_str(), X_OK) == 0;

  char tmpl[] = "/tmp/zf-XXXXXX";  // short: ipc:// paths are limited to 107 bytes
  if (mkdtemp(tmpl) == nullptr) return 1;
  s.run_dir = tmpl;
  s.child_stderr = verbose ? "" : s.run_dir + "/children.log";
  setenv("ZRPC_LOG_LEVEL", verbose ? "warning" : "error", /*overwrite=*/0);

  const bool json = flags.Has("json");
  if (!json) {
    std::cout << absl::StrFormat(
        "zrpc-faults: %d instances of zrpc-service; 4 client threads × 50 calls/s of whoami "
        "(deadline %s); phases %s before, %s fault (SIGSTOP %s), %s after; node2 is the faulty "
        "instance; redis %s\n\n",
        kInstances, Secs(s.call_timeout), Secs(s.before), Secs(s.during), Secs(s.stop_during),
        Secs(s.after), kRedisQuery);
  }
  PrintHeader(json);
  int exit_code = 0, index = 0;
  for (MatchmakerKind kind : kinds) {
    for (const std::string& scenario : scenarios) {
      if (interrupted.load()) break;
      if (!Applies(kind, scenario)) continue;
      ScenarioResult r;
      if (UsesRedis(kind) && !have_redis) {
        r = ScenarioResult{.matchmaker = std::string(MatchmakerName(kind)),
                           .scenario = scenario,
                           .error = "redis-server not found"};
      } else {
        r = RunScenario(s, kind, scenario, index++);
      }
      if (!r.error.empty()) exit_code = 1;
      PrintRow(r, json);
    }
  }
  std::error_code ec;
  std::filesystem::remove_all(s.run_dir, ec);
  if (interrupted.load()) exit_code = 130;
  if (LeftBehind() > 0) {
    std::cerr << "zrpc-faults: " << LeftBehind() << " threads were left stuck in zrpc calls\n";
    std::cout << std::flush;
    _exit(exit_code);  // those threads may still touch zrpc's globals: skip static destructors
  }
  return exit_code;
}

}  // namespace
}  // namespace zrpc::faults

int main(int argc, char** argv) { return zrpc::faults::Main(argc, argv); }
