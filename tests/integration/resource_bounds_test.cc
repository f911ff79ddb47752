// SPDX-License-Identifier: Apache-2.0
// Resource bounds against hostile peers (issue 18): real zrpc-service and zrpc-matchmaker
// processes, raw TCP sockets and raw ZeroMQ DEALERs as attackers. Each test fails without the
// bound it checks.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <map>
#include <filesystem>
#include <fstream>
#include <thread>
#include <zmq.hpp>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "matchmaker/sidecar/protocol.h"
#include "integration/metrics_scrape.h"
#include "testing/harness.h"
#include "testing/redis_server.h"
#include "testing/log_capture.h"
#include "unit/test_util.h"
#include "zrpc/security.h"

namespace zrpc::testing {
namespace {

using ::testing::HasSubstr;

// "tcp://127.0.0.1:41234" → 41234 (0 when it is not a tcp endpoint).
int PortOf(const std::string& endpoint) {
  int port = 0;
  const size_t colon = endpoint.rfind(':');
  if (colon == std::string::npos || !absl::SimpleAtoi(endpoint.substr(colon + 1), &port)) return 0;
  return port;
}

// A plain TCP connection to 127.0.0.1:`port` that never says anything (a peer stuck before the
// ZMTP greeting). -1 when it cannot connect.
int ConnectSilently(int port) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return -1;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

// How long until the other end closes `fd` (reading what it sends, e.g. its greeting), or
// `limit` when it is still open then.
absl::Duration TimeUntilClosed(int fd, absl::Duration limit) {
  const absl::Time start = absl::Now();
  char buf[512];
  while (absl::Now() - start < limit) {
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, 100) <= 0) continue;
    const ssize_t n = read(fd, buf, sizeof(buf));
    if (n <= 0) return absl::Now() - start;
  }
  return limit;
}


// A raw DEALER, as an attacker (or a client in another language) uses it. `from`, when set, is
// the source address of its TCP connection (127.0.0.2: another caller than this process's
// zrpc clients, which connect from 127.0.0.1).
class RawPeer {
 public:
  RawPeer(zmq::context_t& ctx, const std::string& endpoint, const std::string& from = "")
      : socket_(ctx, zmq::socket_type::dealer) {
    socket_.set(zmq::sockopt::linger, 0);
    socket_.set(zmq::sockopt::maxmsgsize, int64_t{-1});
    socket_.set(zmq::sockopt::sndhwm, 0);
    socket_.connect(from.empty() ? endpoint
                                 : absl::StrCat("tcp://", from, ":0;", endpoint.substr(6)));
  }
  void Send(const std::string& header, const std::string& body) {
    socket_.send(zmq::buffer(header), zmq::send_flags::sndmore);
    socket_.send(zmq::buffer(body), zmq::send_flags::none);
  }
  // Reads replies until one's header ends with " `id`" and returns its body; "" after `timeout`.
  // Replies to other ids that arrive meanwhile are kept for their own ReplyTo (calls answered
  // out of order are not lost).
  std::string ReplyTo(const std::string& id, absl::Duration timeout = absl::Seconds(10)) {
    if (auto kept = stash_.find(id); kept != stash_.end()) {
      std::string body = std::move(kept->second);
      stash_.erase(kept);
      return body;
    }
    const absl::Time until = absl::Now() + timeout;
    while (absl::Now() < until) {
      socket_.set(zmq::sockopt::rcvtimeo, static_cast<int>(std::max<int64_t>(
                                              1, absl::ToInt64Milliseconds(until - absl::Now()))));
      zmq::message_t header, body;
      if (!socket_.recv(header)) return "";
      if (!header.more() || !socket_.recv(body)) continue;
      const std::string h = header.to_string();
      if (h.size() > id.size() &&
          h.compare(h.size() - id.size() - 1, std::string::npos, " " + id) == 0) {
        return body.to_string();
      }
      // Another call's final reply ("zrpc1 reply ID"): kept; beats are dropped.
      if (h.rfind("zrpc1 reply ", 0) == 0) stash_[h.substr(12)] = body.to_string();
    }
    return "";
  }
  zmq::socket_t& socket() { return socket_; }

 private:
  zmq::socket_t socket_;
  std::map<std::string, std::string> stash_;  // replies read while waiting for another id
};

std::string Request(const std::string& method, Object args, const std::string& id,
                    const std::string& ns = "") {
  Object m{{"method", method}, {"args", std::move(args)}, {"_msg_id", id}};
  if (!ns.empty()) m.Set("namespace", ns);
  return *SerializeMsg(Value(std::move(m)));
}

class ResourceBoundsTest : public IntegrationTest {
 protected:
  // Calls compute.echo `n` times from this process (127.0.0.1); the slowest call's time, or
  // InfiniteDuration when one failed (its error in `failure`).
  absl::Duration SlowestOfCalls(int n, absl::Status* failure) {
    auto client = Client();
    absl::Duration slowest;
    for (int i = 0; i < n; ++i) {
      const absl::Time start = absl::Now();
      absl::StatusOr<Value> r = client->Call(Context(), "compute", Msg("echo", {{"i", i}}),
                                             {.timeout = absl::Seconds(4)});
      if (!r.ok()) {
        *failure = r.status();
        return absl::InfiniteDuration();
      }
      slowest = std::max(slowest, absl::Now() - start);
    }
    return slowest;
  }
};

TEST_F(ResourceBoundsTest, APeerThatNeverCompletesItsHandshakeIsDroppedWithinSeconds) {
  StartService("hs1");
  const int port = PortOf(endpoints_["hs1"]);
  ASSERT_GT(port, 0) << endpoints_["hs1"];
  const int fd = ConnectSilently(port);
  ASSERT_GE(fd, 0);
  // The service's handshake timeout is 5 s (libzmq's default, 30 s, fails this).
  const absl::Duration took = TimeUntilClosed(fd, absl::Seconds(12));
  close(fd);
  EXPECT_LT(took, absl::Seconds(9)) << "the half-done handshake was held for " << took;
  EXPECT_GE(took, absl::Seconds(3));
}

TEST_F(ResourceBoundsTest, ACallerWithManyConnectionsCannotStarveAnotherCaller) {
  StartService(
      "fair", {"--threads", "4", "--max-in-flight-per-peer", "40", "--max-queued-requests", "200"});
  const std::string endpoint = endpoints_["fair"];
  // The attacker: 64 connections from 127.0.0.2, each with 8 slow calls. Per connection it could
  // fill the whole queue (so that others were refused "overloaded") and get 64 turns of the pool
  // for every one of another caller's.
  zmq::context_t ctx;
  std::vector<std::unique_ptr<RawPeer>> attacker;
  for (int c = 0; c < 64; ++c) {
    attacker.push_back(std::make_unique<RawPeer>(ctx, endpoint, "127.0.0.2"));
    for (int i = 0; i < 8; ++i) {
      const std::string id = absl::StrCat("s", i);
      attacker.back()->Send("zrpc1 call openstack compute " + id,
                            Request("sleep", {{"ms", 400}}, id));
    }
    // Answered on the I/O thread after the calls before it on this connection were admitted.
    attacker.back()->Send("zrpc1 call openstack compute h", Request("health", {}, "h", "_zrpc"));
  }
  for (auto& peer : attacker) ASSERT_FALSE(peer->ReplyTo("h").empty()) << "the service is stuck";
  // Another caller (127.0.0.1) is served at once: it has its own share of the queue and of the
  // workers.
  absl::Status failure;
  const absl::Duration slowest = SlowestOfCalls(5, &failure);
  ZRPC_EXPECT_OK(failure);
  EXPECT_LT(slowest, absl::Seconds(1));
}

TEST_F(ResourceBoundsTest, ACallersCastsOfALongHandlerCannotHoldEveryWorker) {
  StartService("casts", {"--threads", "4"});
  zmq::context_t ctx;
  RawPeer attacker(ctx, endpoints_["casts"], "127.0.0.2");
  for (int i = 0; i < 8; ++i) {
    attacker.Send("zrpc1 cast openstack compute -", Request("sleep", {{"ms", 5000}}, "-"));
  }
  attacker.Send("zrpc1 call openstack compute h", Request("health", {}, "h", "_zrpc"));
  ASSERT_FALSE(attacker.ReplyTo("h").empty());
  // The casts run on at most half of the 4 workers: the other caller's calls are not queued
  // behind them for 5 s.
  absl::Status failure;
  const absl::Duration slowest = SlowestOfCalls(5, &failure);
  ZRPC_EXPECT_OK(failure);
  EXPECT_LT(slowest, absl::Seconds(1));
}

// The service's resident memory in KiB (VmRSS), or -1.
int64_t RssKib(pid_t pid) {
  std::ifstream in(absl::StrCat("/proc/", pid, "/status"));
  std::string line;
  while (std::getline(in, line)) {
    long long kib = 0;
    if (std::sscanf(line.c_str(), "VmRSS: %lld kB", &kib) == 1) return kib;
  }
  return -1;
}

TEST_F(ResourceBoundsTest, RepliesACallerNeverReadsDoNotGrowTheServicePastItsBudget) {
  // At most 16 requests of one caller are admitted at a time, so what the requests themselves
  // hold stays small and what grows is the replies.
  ChildProcess& service =
      StartService("unread", {"--threads", "4", "--max-in-flight-per-peer", "16"});
  const int64_t before = RssKib(service.pid());
  ASSERT_GT(before, 0);
  // A client that sends 400 calls whose replies are 1 MiB each, in waves the service admits, and
  // never reads one. Before the budget, libzmq queued all 400 replies for it (400 MiB, 1.5 GB
  // with 4 MiB replies); now at most 64 wait in libzmq and the rest in the service's own queue,
  // within its 16 MiB budget, beyond which they are dropped.
  zmq::context_t ctx;
  RawPeer greedy(ctx, endpoints_["unread"], "127.0.0.2");
  greedy.socket().set(zmq::sockopt::rcvhwm, 1);
  greedy.socket().set(zmq::sockopt::rcvbuf, 4096);
  auto client = Client();
  Message health = Msg("health");
  health.ns = "_zrpc";
  auto load = [&](const char* field) -> int64_t {
    absl::StatusOr<Value> h = client->Call(Context(), "compute.unread", health);
    return h.ok() ? h->Find("load")->Find(field)->AsInt() : -1;
  };
  const std::string big(1 << 20, 'x');
  for (int wave = 0; wave < 25; ++wave) {
    for (int i = 0; i < 16; ++i) {
      const std::string id = absl::StrCat("g", wave, "-", i);
      greedy.Send("zrpc1 call openstack compute " + id, Request("echo", {{"data", big}}, id));
    }
    // Every request of the wave taken in (started, or refused by admission) and none queued
    // before the next wave.
    const double sent = 16.0 * (wave + 1);
    ASSERT_TRUE(Eventually(
        [&] {
          Message m = Msg("metrics");
          m.ns = "_zrpc";
          absl::StatusOr<Value> text = client->Call(Context(), "compute.unread", m);
          if (!text.ok() || !text->is_string()) return false;
          const double started = std::max(0.0, MetricSample(text->AsString(),
                                                            "zrpc_server_requests_started_total",
                                                            {{"method", "echo"}}));
          const double refused = std::max(
              0.0, MetricSample(text->AsString(), "zrpc_server_requests_refused_total",
                                {{"reason", "admission"}}));
          return started + refused >= sent && load("queued_requests") == 0;
        },
        absl::Seconds(30)));
  }
  int64_t dropped = 0;
  ASSERT_TRUE(Eventually([&] { return (dropped = load("dropped_replies")) > 0; },
                         absl::Seconds(30)));
  // Another caller is served meanwhile, and the greedy one's replies were dropped and counted.
  absl::Status failure;
  EXPECT_LT(SlowestOfCalls(5, &failure), absl::Seconds(1));
  ZRPC_EXPECT_OK(failure);
  // Let the service take in everything that was sent (bounded by its admission either way).
  absl::SleepFor(absl::Seconds(2));
  const int64_t after = RssKib(service.pid());
  // 64 replies in libzmq + 16 MiB waiting + requests being decoded: well under 400 MiB, where
  // unbounded queueing reaches 400+ MiB (and 1.5 GB with 4 MiB replies).
  EXPECT_LT(after - before, 250 << 10) << "grew from " << before << " to " << after << " KiB";
}

TEST_F(ResourceBoundsTest, AListenerThatGotAnOversizedEventHearsTheNextOne) {
  StartService("pub1");
  auto caller = Client();
  // The listener takes events of at most 64 KiB; the publisher sends one of 1 MiB (its own limit
  // is 4 MiB). libzmq cuts that connection and, by itself, never makes it again.
  TransportOptions small = ClientOptions("listener");
  small.max_message_size = 64 << 10;
  auto listening = Client(small);
  absl::Mutex mu;
  std::vector<std::string> got;
  LogCapture logs;
  auto listener =
      NotificationListener::Create(*listening, {"notifications.info"}, [&](const Notification& n) {
        absl::MutexLock lock(&mu);
        got.push_back(n.event_type);
      });
  ZRPC_ASSERT_OK(listener);
  auto heard = [&](const std::string& type) {
    absl::MutexLock lock(&mu);
    return std::find(got.begin(), got.end(), type) != got.end();
  };
  auto emit = [&](const std::string& type, Value payload) {
    return caller
        ->Call(Context(), "compute.pub1",
               Msg("emit", {{"event_type", type}, {"priority", "info"}, {"payload", payload}}))
        .status();
  };
  // Until the subscription reached the publisher (bounded).
  ASSERT_TRUE(Eventually([&] {
    (void)emit("warmup", Object{});
    return Eventually([&] { return heard("warmup"); }, absl::Milliseconds(200));
  }));
  ZRPC_ASSERT_OK(emit("huge", Value(std::string(1 << 20, 'x'))));
  // Later events arrive again (each emitted until one does: the reconnection takes a moment).
  EXPECT_TRUE(Eventually(
      [&] {
        (void)emit("after", Object{});
        return Eventually([&] { return heard("after"); }, absl::Milliseconds(200));
      },
      absl::Seconds(10)));
  EXPECT_FALSE(heard("huge"));
  EXPECT_TRUE(logs.Contains("lost its connection to the publisher"))
      << absl::StrJoin(logs.Lines(), "\n");
}

TEST_F(ResourceBoundsTest, ARefusalQuotesAtMostABoundedPrefixOfWhatItRefuses) {
  StartService("echo1");
  zmq::context_t ctx;
  RawPeer peer(ctx, endpoints_["echo1"]);
  const std::string huge(1 << 20, 'm');
  // An unknown method, and an unexpected argument, each named by 1 MiB: the answers quote 128
  // bytes of it (then "..."), not the whole name several times over.
  peer.Send("zrpc1 call openstack compute m1", Request(huge, {}, "m1"));
  peer.Send("zrpc1 call openstack compute m2",
            Request("add", {{"a", 1}, {"b", 2}, {huge, 3}}, "m2"));
  for (const char* id : {"m1", "m2"}) {
    const std::string reply = peer.ReplyTo(id);
    ASSERT_FALSE(reply.empty()) << id;
    EXPECT_LT(reply.size(), 4096u) << id;
    absl::StatusOr<Reply> decoded = DecodeReply(reply);
    ZRPC_ASSERT_OK(decoded);
    ASSERT_TRUE(decoded->failure.has_value()) << id;
    EXPECT_THAT(std::string(DeserializeRemoteException(*decoded->failure).message()),
                HasSubstr(std::string(128, 'm') + "..."))
        << id;
  }
}

class SidecarBoundsTest : public IntegrationTest {
 protected:
  void StartSidecar(std::vector<std::string> extra = {}) {
    endpoint_ = "ipc://" + registry_ + "/mm.sock";
    std::vector<std::string> argv = {ZRPC_MATCHMAKER_BINARY, "--endpoint", endpoint_};
    argv.insert(argv.end(), extra.begin(), extra.end());
    ASSERT_FALSE(sidecar_.StartAndWaitForLine(argv, "READY ", 10000).empty())
        << "sidecar did not start";
  }
  // A heartbeat of client `client` carrying `n` registrations of its own.
  static std::string Heartbeat(const std::string& client, int n, const std::string& prefix) {
    std::vector<Registration> regs;
    for (int i = 0; i < n; ++i) {
      regs.push_back(Registration{
          .topic = absl::StrCat(prefix, i), .host = "h", .endpoint = "tcp://127.0.0.1:1"});
    }
    return *ToJson(Value(Object{{"client", client},
                                {"pid", 0},
                                {"start", 0},
                                {"registrations", internal::sidecar::RegistrationsToValue(regs)}}));
  }
  // The sidecar's answer: its error status, or OK.
  static absl::Status Outcome(const std::string& reply) {
    if (reply.empty()) return absl::DeadlineExceededError("no answer");
    return internal::sidecar::DecodeReply(reply).result.status();
  }

  std::string endpoint_;
  ChildProcess sidecar_;
};

TEST_F(SidecarBoundsTest, AnOversizedRequestGetsAClearError) {
  StartSidecar();
  zmq::context_t ctx;
  RawPeer peer(ctx, endpoint_);
  // 20 MiB: over the 16 MiB a request may have (and over the 16 MiB + 64 KiB at which libzmq
  // used to close the connection without a word).
  peer.Send("zmm1 register 1", std::string(20 << 20, ' '));
  const absl::Status s = Outcome(peer.ReplyTo("1"));
  EXPECT_EQ(s.code(), absl::StatusCode::kResourceExhausted) << s;
  EXPECT_THAT(s.message(), HasSubstr("at most"));
  // And the sidecar still serves that connection.
  peer.Send("zmm1 hello 2", "{}");
  ZRPC_EXPECT_OK(Outcome(peer.ReplyTo("2")));
}

TEST_F(SidecarBoundsTest, ConnectionsFromOneAddressShareOneCallersSlots) {
  const int port = FreePort();
  const std::string tcp = absl::StrCat("tcp://127.0.0.1:", port);
  StartSidecar({"--tcp", tcp});
  zmq::context_t ctx;
  RawPeer first(ctx, tcp), second(ctx, tcp), elsewhere(ctx, tcp, "127.0.0.2");
  first.Send("zmm1 heartbeat 1", Heartbeat("a", 20000, "a"));
  ZRPC_ASSERT_OK(Outcome(first.ReplyTo("1", absl::Seconds(30))));
  // A second connection from the same address (under another client name) gets nothing more.
  second.Send("zmm1 heartbeat 2", Heartbeat("b", 1, "b"));
  const absl::Status refused = Outcome(second.ReplyTo("2"));
  EXPECT_EQ(refused.code(), absl::StatusCode::kResourceExhausted) << refused;
  EXPECT_THAT(refused.message(), HasSubstr("per caller"));
  // Another address has a share of its own.
  elsewhere.Send("zmm1 heartbeat 3", Heartbeat("c", 10, "c"));
  ZRPC_EXPECT_OK(Outcome(elsewhere.ReplyTo("3")));
}

}  // namespace
}  // namespace zrpc::testing
