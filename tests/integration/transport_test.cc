// SPDX-License-Identifier: Apache-2.0
// Services in child processes (zrpc-service), clients in the test process, real sockets.
#include <sched.h>
#include <signal.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <functional>
#include <set>
#include <thread>

#include <zmq.hpp>
#include <zmq_addon.hpp>

#include "absl/synchronization/notification.h"
#include "codec/json_internal.h"
#include "testing/harness.h"
#include "unit/test_util.h"

namespace zrpc::testing {
namespace {

using ::testing::HasSubstr;

class TransportTest : public IntegrationTest {};

std::string Host(const absl::StatusOr<Value>& v) {
  return v.ok() && v->is_string() ? v->AsString() : v.status().ToString();
}

// The notes a service counted, as {kind: count}.
Object Notes(Transport& t, const std::string& host) {
  absl::StatusOr<Value> s = t.Call(Context(), "compute." + host, IntegrationTest::Msg("stats"));
  if (!s.ok() || !s->Find("notes")) return Object{};
  return s->Find("notes")->AsObject();
}

int64_t NoteCount(Transport& t, const std::string& host, const std::string& kind) {
  Object notes = Notes(t, host);
  const Value* v = notes.Find(kind);
  return v && v->is_int() ? v->AsInt() : 0;
}

TEST_F(TransportTest, CallsToATopicGoRoundRobin) {
  for (const char* h : {"node1", "node2", "node3"}) StartService(h);
  auto client = Client();
  std::map<std::string, int> seen;
  std::vector<std::string> order;
  for (int i = 0; i < 9; ++i) {
    absl::StatusOr<Value> who = client->Call(Context(), "compute", Msg("whoami"));
    ZRPC_ASSERT_OK(who);
    seen[who->AsString()]++;
    order.push_back(who->AsString());
  }
  EXPECT_EQ(seen, (std::map<std::string, int>{{"node1", 3}, {"node2", 3}, {"node3", 3}}));
  // Round-robin: each window of three consecutive calls hits all three instances.
  for (int i = 0; i + 3 <= 9; i += 3) {
    std::set<std::string> window(order.begin() + i, order.begin() + i + 3);
    EXPECT_EQ(window.size(), 3u);
  }
}

TEST_F(TransportTest, DirectTopicReachesThatInstanceOnly) {
  for (const char* h : {"node1", "node2", "node3"}) StartService(h);
  auto client = Client();
  for (int i = 0; i < 5; ++i) {
    EXPECT_EQ(Host(client->Call(Context(), "compute.node2", Msg("whoami"))), "node2");
  }
  absl::StatusOr<Value> sum = client->Call(Context(), "compute.node3", Msg("add", {{"a", 2}, {"b", 40}}));
  ZRPC_ASSERT_OK(sum);
  EXPECT_EQ(sum->AsInt(), 42);
}

TEST_F(TransportTest, FanoutReachesEveryInstanceOnce) {
  for (const char* h : {"node1", "node2", "node3"}) StartService(h);
  auto client = Client();
  ZRPC_ASSERT_OK(client->FanoutCast(Context(), "compute", Msg("note", {{"kind", "fanout"}})));
  for (const char* h : {"node1", "node2", "node3"}) {
    EXPECT_TRUE(Eventually([&] { return NoteCount(*client, h, "fanout") == 1; })) << h;
  }
  absl::SleepFor(absl::Milliseconds(200));  // a second copy would have arrived by now
  for (const char* h : {"node1", "node2", "node3"}) EXPECT_EQ(NoteCount(*client, h, "fanout"), 1);
}

TEST_F(TransportTest, CastsGoToExactlyOneInstanceRoundRobin) {
  for (const char* h : {"node1", "node2", "node3"}) StartService(h);
  auto client = Client();
  for (int i = 0; i < 6; ++i) {
    ZRPC_ASSERT_OK(client->Cast(Context(), "compute", Msg("note", {{"kind", "cast"}})));
  }
  EXPECT_TRUE(Eventually([&] {
    return NoteCount(*client, "node1", "cast") + NoteCount(*client, "node2", "cast") +
               NoteCount(*client, "node3", "cast") ==
           6;
  }));
  for (const char* h : {"node1", "node2", "node3"}) EXPECT_EQ(NoteCount(*client, h, "cast"), 2) << h;
}

TEST_F(TransportTest, MultiCallDeliversEachValueAsItIsYielded) {
  StartService("node1");
  auto client = Client();
  const absl::Time start = absl::Now();
  absl::StatusOr<std::unique_ptr<ReplyStream>> stream =
      client->MultiCall(Context(), "compute", Msg("count", {{"n", 3}, {"delay_ms", 400}}));
  ZRPC_ASSERT_OK(stream);
  std::vector<absl::Duration> arrivals;
  std::vector<int64_t> values;
  while (true) {
    absl::StatusOr<std::optional<Value>> v = (*stream)->Next();
    ZRPC_ASSERT_OK(v);
    if (!v->has_value()) break;
    values.push_back((*v)->AsInt());
    arrivals.push_back(absl::Now() - start);
  }
  EXPECT_EQ(values, (std::vector<int64_t>{0, 1, 2}));
  ASSERT_EQ(arrivals.size(), 3u);
  // The first value arrives long before the handler finishes (~800 ms): it was streamed.
  EXPECT_LT(arrivals[0], absl::Milliseconds(350));
  EXPECT_GE(arrivals[2], absl::Milliseconds(700));
  // After the end, Next keeps saying so.
  absl::StatusOr<std::optional<Value>> after = (*stream)->Next();
  ZRPC_ASSERT_OK(after);
  EXPECT_FALSE(after->has_value());
}

TEST_F(TransportTest, HandlerFailureArrivesAsRemoteErrorWithTypeAndMessage) {
  StartService("node1");
  auto client = Client();
  absl::StatusOr<Value> r = client->Call(Context(), "compute", Msg("fail", {{"message", "disk on fire"}}));
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(IsErrorKind(r.status(), ErrorKind::kRemoteError)) << r.status();
  EXPECT_TRUE(IsRemote(r.status()));
  EXPECT_EQ(GetErrorField(r.status(), "exc_type"), "runtime_error");
  EXPECT_EQ(GetErrorField(r.status(), "value"), "disk on fire");
  EXPECT_THAT(std::string(r.status().message()), HasSubstr("Remote error: runtime_error disk on fire"));
  // Typed-argument errors keep their code.
  absl::StatusOr<Value> bad = client->Call(Context(), "compute", Msg("add", {{"a", "x"}, {"b", 1}}));
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(bad.status().message()), HasSubstr("argument \"a\" of method \"add\""));
}

TEST_F(TransportTest, VersionAndMethodErrorsComeBackAsTheirKinds) {
  StartService("node1");
  auto client = Client();
  ZRPC_EXPECT_OK(client->Call(Context(), "compute", Msg("whoami", {}, "1.2")));
  absl::Status v = client->Call(Context(), "compute", Msg("whoami", {}, "2.0")).status();
  EXPECT_TRUE(IsErrorKind(v, ErrorKind::kUnsupportedRpcVersion)) << v;
  EXPECT_TRUE(IsRemote(v));
  EXPECT_EQ(GetErrorField(v, "version"), "2.0");
  absl::Status m = client->Call(Context(), "compute", Msg("frobnicate", {}, "1.0")).status();
  EXPECT_TRUE(IsErrorKind(m, ErrorKind::kNoSuchMethod)) << m;
  // A proxy's version cap stops the call before it is sent.
  RpcProxy capped(*client, "compute", "1.0", {.version_cap = "1.1"});
  EXPECT_TRUE(IsErrorKind(capped.Call(Context(), capped.MakeMsg("whoami"), {.version = "1.3"}).status(),
                          ErrorKind::kRpcVersionCapError));
}

TEST_F(TransportTest, NoConsumerIsAnImmediateDistinctError) {
  StartService("node1");
  auto client = Client();
  const absl::Time start = absl::Now();
  absl::Status call = client->Call(Context(), "storage", Msg("whoami")).status();
  absl::Status cast = client->Cast(Context(), "storage", Msg("whoami"));
  absl::Status fanout = client->FanoutCast(Context(), "storage", Msg("whoami"));
  absl::Status direct = client->Call(Context(), "compute.node9", Msg("whoami")).status();
  EXPECT_LT(absl::Now() - start, absl::Seconds(1));
  for (const absl::Status& s : {call, cast, fanout, direct}) {
    EXPECT_TRUE(IsErrorKind(s, ErrorKind::kNoConsumer)) << s;
    EXPECT_EQ(s.code(), absl::StatusCode::kNotFound);
  }
  // It names the registry asked: a different XDG_RUNTIME_DIR or URL is a different world.
  // ... and how much that registry holds (here: the compute services, none for "storage").
  EXPECT_THAT(std::string(call.message()),
              ::testing::MatchesRegex("No consumer registered for topic \"storage\" \\(matchmaker " +
                                      client->matchmaker().url() +
                                      " holds [1-9][0-9]* registrations?, none for this topic\\)"));
  EXPECT_THAT(std::string(call.message()), HasSubstr(registry_));
}

TEST_F(TransportTest, ServerKilledMidCallGivesPeerLostWellBeforeTheDeadline) {
  ChildProcess& service = StartService("node1");
  auto client = Client();
  std::thread killer([&] {
    absl::SleepFor(absl::Milliseconds(300));
    service.Kill();
  });
  const absl::Time start = absl::Now();
  absl::Status s = client->Call(Context(), "compute", Msg("sleep", {{"ms", 20000}}),
                                {.timeout = absl::Seconds(30)})
                       .status();
  const absl::Duration took = absl::Now() - start;
  killer.join();
  EXPECT_TRUE(IsErrorKind(s, ErrorKind::kPeerLost)) << s;
  EXPECT_EQ(s.code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(GetErrorField(s, "host"), "node1");
  EXPECT_LT(took, absl::Seconds(5));  // 3 silent heartbeat intervals (0.6 s) after the kill
}

TEST_F(TransportTest, SlowHandlerLongerThanTheHeartbeatStillCompletes) {
  StartService("node1");
  auto client = Client();
  absl::StatusOr<Value> r = client->Call(Context(), "compute", Msg("sleep", {{"ms", 1500}}));
  ZRPC_ASSERT_OK(r);
  EXPECT_EQ(r->AsString(), "node1");
}

TEST_F(TransportTest, TheCallersRemainingTimeReachesTheHandler) {
  StartService("node1");
  auto client = Client();
  absl::StatusOr<Value> left =
      client->Call(Context(), "compute", Msg("deadline"), {.timeout = absl::Seconds(5)});
  ZRPC_ASSERT_OK(left);
  EXPECT_GT(left->AsInt(), 4000);
  EXPECT_LE(left->AsInt(), 5000);
}

TEST_F(TransportTest, TimeoutThenLateReplyIsNeverMatchedToTheNextCall) {
  StartService("node1");
  auto client = Client();
  absl::Status s = client->Call(Context(), "compute.node1", Msg("sleep", {{"ms", 600}}),
                                {.timeout = absl::Milliseconds(200)})
                       .status();
  EXPECT_TRUE(IsErrorKind(s, ErrorKind::kTimeout)) << s;
  EXPECT_THAT(std::string(s.message()), HasSubstr("RPC method: \"sleep\""));
  // The late "sleep" reply (the host name) arrives during these calls and must be dropped.
  for (int i = 0; i < 8; ++i) {
    absl::StatusOr<Value> sum =
        client->Call(Context(), "compute.node1", Msg("add", {{"a", i}, {"b", 1}}));
    ZRPC_ASSERT_OK(sum);
    EXPECT_EQ(sum->AsInt(), i + 1);
    absl::SleepFor(absl::Milliseconds(100));
  }
}

TEST_F(TransportTest, OversizedMessagesAreRefusedBeforeSending) {
  StartService("node1");
  auto client = Client();
  const std::string big(5 << 20, 'x');
  absl::Status s = client->Call(Context(), "compute", Msg("echo", {{"blob", big}})).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kResourceExhausted) << s;
  EXPECT_THAT(std::string(s.message()), HasSubstr("exceeds the limit"));
  EXPECT_EQ(client->Cast(Context(), "compute", Msg("echo", {{"blob", big}})).code(),
            absl::StatusCode::kResourceExhausted);
  // Just under the limit still works.
  const std::string fits(3 << 20, 'y');
  absl::StatusOr<Value> echoed = client->Call(Context(), "compute", Msg("echo", {{"blob", fits}}));
  ZRPC_ASSERT_OK(echoed);
  EXPECT_EQ(echoed->Find("blob")->AsString().size(), fits.size());
}

TEST_F(TransportTest, BadTopicNamesAreRefused) {
  auto client = Client();
  for (const std::string& topic : {std::string("a/b"), std::string("..\\x"), std::string("a\nb"),
                                   std::string("a b"), std::string(300, 'a'), std::string("")}) {
    absl::Status s = client->Call(Context(), topic, Msg("whoami")).status();
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << topic;
    EXPECT_EQ(client->Cast(Context(), topic, Msg("whoami")).code(), absl::StatusCode::kInvalidArgument);
  }
  TransportOptions bad_host = ClientOptions("bad/host");
  EXPECT_EQ(Transport::Create(bad_host).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(TransportTest, AServerRestartedOnTheSameEndpointServesNewCalls) {
  StartService("node1");
  const std::string endpoint = endpoints_["node1"];
  const std::string port = endpoint.substr(endpoint.rfind(':') + 1);
  auto client = Client();
  EXPECT_EQ(Host(client->Call(Context(), "compute", Msg("whoami"))), "node1");
  services_.back()->Kill();
  services_.clear();
  StartService("node1", {"--port", port});
  EXPECT_EQ(endpoints_["node1"], endpoint);
  EXPECT_TRUE(Eventually([&] { return Host(client->Call(Context(), "compute", Msg("whoami"))) == "node1"; }));
}

TEST_F(TransportTest, EightThreadsOfAThousandCallsEachGetExactlyTheirReplies) {
  StartService("node1");
  StartService("node2");
  auto client = Client();
  std::atomic<int> ok{0}, wrong{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 1000; ++i) {
        absl::StatusOr<Value> r =
            client->Call(Context(), "compute", Msg("add", {{"a", t * 100000}, {"b", i}}));
        if (r.ok() && r->AsInt() == t * 100000 + i) {
          ok++;
        } else {
          wrong++;
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(ok.load(), 8000);
  EXPECT_EQ(wrong.load(), 0);
}

TEST_F(TransportTest, CloseWithCallsInFlightReturnsPromptly) {
  StartService("node1");
  auto client = Client();
  absl::Status in_flight;
  std::thread caller([&] {
    in_flight = client->Call(Context(), "compute", Msg("sleep", {{"ms", 10000}})).status();
  });
  absl::SleepFor(absl::Milliseconds(300));
  const absl::Time start = absl::Now();
  client->Close();
  caller.join();
  EXPECT_LT(absl::Now() - start, absl::Seconds(3));
  EXPECT_TRUE(IsErrorKind(in_flight, ErrorKind::kTransportClosed)) << in_flight;
  EXPECT_TRUE(IsErrorKind(client->Call(Context(), "compute", Msg("whoami")).status(),
                          ErrorKind::kTransportClosed));
  client->Close();  // idempotent
}

TEST_F(TransportTest, DestroyingATransportWithUnsentMessagesDoesNotHang) {
  ChildProcess& service = StartService("node1");
  TransportOptions o = ClientOptions();
  o.cast_timeout = absl::Milliseconds(300);
  auto client = Client(o);
  ZRPC_ASSERT_OK(client->Call(Context(), "compute", Msg("whoami")));
  service.Signal(SIGSTOP);  // alive but not reading: queues fill up
  const std::string blob(256 << 10, 'z');
  int queued = 0;
  for (int i = 0; i < 200; ++i) {
    if (client->Cast(Context(), "compute", Msg("echo", {{"blob", blob}})).ok()) ++queued;
  }
  EXPECT_GT(queued, 0);
  const absl::Time start = absl::Now();
  client.reset();
  EXPECT_LT(absl::Now() - start, absl::Seconds(3));
  service.Signal(SIGCONT);
}

TEST_F(TransportTest, CastToServerAndFanoutCastToServerUseTheGivenEndpoint) {
  StartService("node1");
  StartService("node2");
  auto client = Client();
  ZRPC_ASSERT_OK(client->CastToServer(Context(), endpoints_["node2"], "compute",
                                      Msg("note", {{"kind", "direct"}})));
  ZRPC_ASSERT_OK(client->FanoutCastToServer(Context(), endpoints_["node2"], "compute",
                                            Msg("note", {{"kind", "fan"}})));
  EXPECT_TRUE(Eventually([&] {
    return NoteCount(*client, "node2", "direct") == 1 && NoteCount(*client, "node2", "fan") == 1;
  }));
  EXPECT_EQ(NoteCount(*client, "node1", "direct"), 0);
}

TEST_F(TransportTest, RpcProxySendsThroughTheTransport) {
  StartService("node1");
  auto client = Client();
  RpcProxy compute(*client, "compute", "1.1");
  absl::StatusOr<Value> sum = compute.Call(Context(), compute.MakeMsg("add", {{"a", 1}, {"b", 2}}));
  ZRPC_ASSERT_OK(sum);
  EXPECT_EQ(sum->AsInt(), 3);
  ZRPC_EXPECT_OK(compute.Cast(Context(), compute.MakeMsg("note", {{"kind", "proxy"}})));
  ZRPC_EXPECT_OK(compute.FanoutCast(Context(), compute.MakeMsg("note", {{"kind", "proxyfan"}})));
  EXPECT_TRUE(Eventually([&] {
    return NoteCount(*client, "node1", "proxy") == 1 && NoteCount(*client, "node1", "proxyfan") == 1;
  }));
  absl::StatusOr<std::unique_ptr<ReplyStream>> s =
      compute.MultiCall(Context(), compute.MakeMsg("count", {{"n", 2}}));
  ZRPC_ASSERT_OK(s);
  absl::StatusOr<std::optional<Value>> first = (*s)->Next();
  ZRPC_ASSERT_OK(first);
  ASSERT_TRUE(first->has_value());
  EXPECT_EQ((*first)->AsInt(), 0);
}

TEST_F(TransportTest, AsyncCallsCompleteOnceEach) {
  StartService("node1");
  auto client = Client();
  constexpr int kCalls = 500;
  absl::Mutex mu;
  int done = 0, correct = 0;
  for (int i = 0; i < kCalls; ++i) {
    client->CallAsync(Context(), "compute", Msg("add", {{"a", i}, {"b", i}}),
                      [&, i](absl::StatusOr<Value> r) {
                        absl::MutexLock lock(&mu);
                        ++done;
                        if (r.ok() && r->AsInt() == 2 * i) ++correct;
                      });
  }
  absl::MutexLock lock(&mu);
  EXPECT_TRUE(mu.AwaitWithTimeout(absl::Condition(+[](int* d) { return *d == kCalls; }, &done),
                                  absl::Seconds(20)));
  EXPECT_EQ(correct, kCalls);
  EXPECT_EQ(done, kCalls);
}

TEST_F(TransportTest, AsyncCallsFromManyThreadsNeverWaitOnAMissedWakeUp) {
  // Chains of calls, each issued from the previous call's callback (on a worker thread), so
  // requests arrive while the async thread takes its queue: none may wait for the async thread's
  // next one-second round (a wake-up swallowed between taking the queue and clearing the eventfd
  // would do that when no other call is in flight to wake it): one chain, then several.
  StartService("node1");
  auto client = Client();
  constexpr int kCallsPerChain = 1000;
  // Shared with the callbacks: the last one may still be returning when the wait ends.
  struct State {
    absl::Mutex mu;
    int done ABSL_GUARDED_BY(mu) = 0;
    int failed ABSL_GUARDED_BY(mu) = 0;
    int target = 0;
    absl::Duration slowest ABSL_GUARDED_BY(mu);
    std::function<void(int)> issue;
  };
  for (int chains : {1, 4}) {
    auto st = std::make_shared<State>();
    st->target = chains * kCallsPerChain;
    Transport* t = client.get();
    st->issue = [t, w = std::weak_ptr<State>(st)](int left) {
      const absl::Time start = absl::Now();
      t->CallAsync(Context(), "compute", IntegrationTest::Msg("whoami"),
                   [w, left, start](absl::StatusOr<Value> r) {
                     std::shared_ptr<State> s = w.lock();
                     if (s == nullptr) return;
                     {
                       absl::MutexLock lock(&s->mu);
                       ++s->done;
                       if (!r.ok()) ++s->failed;
                       s->slowest = std::max(s->slowest, absl::Now() - start);
                     }
                     if (left > 1) s->issue(left - 1);
                   });
    };
    std::vector<std::thread> threads;
    for (int c = 0; c < chains; ++c) threads.emplace_back([st] { st->issue(kCallsPerChain); });
    for (std::thread& th : threads) th.join();
    absl::MutexLock lock(&st->mu);
    EXPECT_TRUE(st->mu.AwaitWithTimeout(
        absl::Condition(+[](State* s) ABSL_EXCLUSIVE_LOCKS_REQUIRED(s->mu) {
          return s->done == s->target;
        }, st.get()),
        absl::Seconds(60)));
    EXPECT_EQ(st->failed, 0);
    // Generous for a loaded machine, and well under the async thread's one-second round.
    EXPECT_LT(st->slowest, absl::Milliseconds(700)) << st->slowest << " with " << chains
                                                     << " chains";
  }
}

TEST_F(TransportTest, CallManyReturnsEveryOutcomeInOrder) {
  StartService("node1");
  StartService("node2");
  auto client = Client();
  std::vector<Message> messages;
  for (int i = 0; i < 300; ++i) messages.push_back(Msg("add", {{"a", i}, {"b", 1}}));
  messages[7] = Msg("fail", {{"message", "seven"}});
  messages[8] = Msg("nosuch");
  std::vector<absl::StatusOr<Value>> results =
      client->CallMany(Context(), "compute", std::move(messages), {.window = 16});
  ASSERT_EQ(results.size(), 300u);
  for (int i = 0; i < 300; ++i) {
    if (i == 7) {
      EXPECT_EQ(GetErrorField(results[i].status(), "value"), "seven");
    } else if (i == 8) {
      EXPECT_TRUE(IsErrorKind(results[i].status(), ErrorKind::kNoSuchMethod)) << results[i].status();
    } else {
      ASSERT_TRUE(results[i].ok()) << i << results[i].status();
      EXPECT_EQ(results[i]->AsInt(), i + 1);
    }
  }
}

TEST_F(TransportTest, CallManyTimesOutSlowCallsAndKeepsTheRest) {
  StartService("node1");
  auto client = Client();
  std::vector<Message> messages = {Msg("sleep", {{"ms", 2000}}), Msg("add", {{"a", 1}, {"b", 2}})};
  const absl::Time start = absl::Now();
  std::vector<absl::StatusOr<Value>> results =
      client->CallMany(Context(), "compute", std::move(messages), {.timeout = absl::Milliseconds(300)});
  EXPECT_LT(absl::Now() - start, absl::Seconds(2));
  EXPECT_TRUE(IsErrorKind(results[0].status(), ErrorKind::kTimeout)) << results[0].status();
  ZRPC_ASSERT_OK(results[1]);
  EXPECT_EQ(results[1]->AsInt(), 3);
  EXPECT_TRUE(IsErrorKind(client->CallMany(Context(), "nobody", {Msg("x")})[0].status(),
                          ErrorKind::kNoConsumer));
}

TEST_F(TransportTest, AsyncCallToAKilledServerFailsWithPeerLost) {
  ChildProcess& service = StartService("node1");
  auto client = Client();
  absl::Notification finished;
  absl::Status result;
  client->CallAsync(Context(), "compute", Msg("sleep", {{"ms", 20000}}),
                    [&](absl::StatusOr<Value> r) {
                      result = r.status();
                      finished.Notify();
                    },
                    {.timeout = absl::Seconds(30)});
  absl::SleepFor(absl::Milliseconds(300));
  service.Kill();
  EXPECT_TRUE(finished.WaitForNotificationWithTimeout(absl::Seconds(5)));
  EXPECT_TRUE(IsErrorKind(result, ErrorKind::kPeerLost)) << result;
}


TEST_F(TransportTest, LargeRequestsDoNotHoldUpOtherClients) {
  StartService("node1");
  auto big_client = Client();
  auto quick_client = Client();
  // ~1 MB of 400,000 values each: decoded by workers, not by the service's I/O thread.
  Array zeros(400000, Value(0));
  std::atomic<int> big_done{0};
  std::vector<std::thread> senders;
  for (int i = 0; i < 4; ++i) {
    senders.emplace_back([&] {
      absl::StatusOr<Value> echoed =
          big_client->Call(Context(), "compute", Msg("echo", {{"a", zeros}}));
      if (echoed.ok() && echoed->Find("a") && echoed->Find("a")->AsArray().size() == 400000) {
        big_done.fetch_add(1);
      }
    });
  }
  for (int i = 0; i < 20; ++i) {
    CallOptions quick{.timeout = absl::Seconds(5)};
    const absl::Time start = absl::Now();
    ZRPC_EXPECT_OK(quick_client->Call(Context(), "compute", Msg("whoami"), quick));
    // Generous: a quick call never waits behind a whole large decode.
    EXPECT_LT(absl::Now() - start, absl::Seconds(2));
  }
  for (std::thread& t : senders) t.join();
  EXPECT_EQ(big_done.load(), 4);
  // Past the value limit: a clear error naming it, and the service goes on.
  Array too_many(600000, Value(0));
  EXPECT_THAT(quick_client->Call(Context(), "compute", Msg("echo", {{"a", too_many}})).status().message(),
              HasSubstr("more than 524288 values"));
  ZRPC_EXPECT_OK(quick_client->Call(Context(), "compute", Msg("whoami")));
}

// libzmq's I/O threads of this process (named "ZMQbg/IO/N"), by thread id.
std::set<pid_t> IoThreads() {
  std::set<pid_t> tids;
  for (const auto& entry : std::filesystem::directory_iterator("/proc/self/task")) {
    std::ifstream comm(entry.path() / "comm");
    std::string name;
    std::getline(comm, name);
    if (name.rfind("ZMQbg/IO", 0) == 0) tids.insert(std::stoi(entry.path().filename().string()));
  }
  return tids;
}

// The scheduling policy of the I/O thread a transport made by `make` starts.
int NewIoThreadPolicy(const std::function<std::unique_ptr<Transport>()>& make) {
  const std::set<pid_t> before = IoThreads();
  std::unique_ptr<Transport> t = make();
  // The I/O thread starts with the first socket: a call makes one.
  EXPECT_TRUE(t->Call(Context(), "compute", IntegrationTest::Msg("whoami")).ok());
  int policy = -1;
  for (pid_t tid : IoThreads()) {
    if (!before.contains(tid)) policy = sched_getscheduler(tid);
  }
  return policy;
}

TEST_F(TransportTest, TheIoThreadRunsAsBatchOnlyWhenAskedTo) {
  StartService("node1");
  EXPECT_EQ(NewIoThreadPolicy([&] { return Client(); }), SCHED_OTHER);
  TransportOptions o = ClientOptions();
  o.io_thread_batch = true;
  EXPECT_EQ(NewIoThreadPolicy([&] { return Client(o); }), SCHED_BATCH);
  // Calls work as before, pipelined ones included (the client lets the I/O thread run).
  auto client = Client(o);
  std::vector<Message> msgs(200, Msg("whoami"));
  for (const absl::StatusOr<Value>& r : client->CallMany(Context(), "compute", msgs)) {
    EXPECT_EQ(Host(r), "node1");
  }
}

// The body of each request a ROUTER registered as "compute" in the test's matchmaker receives,
// with `accepts` in its registration.
class BodyFormTest : public IntegrationTest {
 protected:
  // Registers a raw ROUTER listening on loopback as an instance of "compute".
  void RegisterRouter(std::vector<std::string> accepts) {
    router_.bind("tcp://127.0.0.1:*");
    router_.set(zmq::sockopt::rcvtimeo, 5000);
    absl::StatusOr<std::unique_ptr<Matchmaker>> mm = CreateMatchmaker(matchmaker_);
    ZRPC_ASSERT_OK(mm);
    mm_ = *std::move(mm);
    Registration r{.topic = "compute", .host = "raw",
                   .endpoint = router_.get(zmq::sockopt::last_endpoint)};
    r.accepts = std::move(accepts);
    ZRPC_ASSERT_OK(mm_->Register(r));
  }
  // The body frame of the next request (identity, header, body); cancels (a call that timed
  // out here) are skipped.
  std::string NextBody() {
    while (true) {
      std::vector<zmq::message_t> frames;
      if (!zmq::recv_multipart(router_, std::back_inserter(frames)) || frames.size() != 3) {
        return "";
      }
      if (frames[1].to_string().rfind("zrpc1 cancel ", 0) == 0) continue;
      return frames[2].to_string();
    }
  }
  zmq::context_t ctx_;
  zmq::socket_t router_{ctx_, zmq::socket_type::router};
  std::unique_ptr<Matchmaker> mm_;
};

TEST_F(BodyFormTest, ABareMessageGoesOnlyToAnInstanceThatAcceptsIt) {
  RegisterRouter({"some-future-form", std::string(kBareMessageForm)});
  auto client = Client();
  ZRPC_ASSERT_OK(client->Cast(Context(), "compute", Msg("note", {{"kind", "bare \"q\""}})));
  const std::string body = NextBody();
  EXPECT_EQ(body.rfind(R"({"method":"note")", 0), 0u) << body;
  absl::StatusOr<Message> m = DecodeMessage(body);
  ZRPC_ASSERT_OK(m);
  EXPECT_EQ(m->args.Find("kind")->AsString(), "bare \"q\"");
  EXPECT_FALSE(m->bare_reply);  // a cast has no replies to ask about
  // A call asks for bare replies (its reply never comes here: the deadline ends it).
  EXPECT_FALSE(client->Call(Context(), "compute", Msg("whoami"), {.timeout = absl::Milliseconds(100)}).ok());
  const std::string call_body = NextBody();
  EXPECT_EQ(call_body.rfind(R"({"method":"whoami")", 0), 0u) << call_body;
  EXPECT_NE(call_body.find(R"("_reply_form":"message")"), std::string::npos) << call_body;
  // A client told not to: the envelope.
  TransportOptions o = ClientOptions("enveloping");
  o.send_bare_messages = false;
  auto enveloping = Client(o);
  ZRPC_ASSERT_OK(enveloping->Cast(Context(), "compute", Msg("note", {{"kind", "x"}})));
  EXPECT_EQ(NextBody().rfind(R"({"oslo.version":"2.0","oslo.message":")", 0), 0u);
}

TEST_F(BodyFormTest, AnInstanceThatDoesNotListTheBareFormGetsTheEnvelope) {
  RegisterRouter({"some-future-form"});
  auto client = Client();
  ZRPC_ASSERT_OK(client->Cast(Context(), "compute", Msg("note", {{"kind", "bare \"q\""}})));
  const std::string body = NextBody();
  EXPECT_EQ(body.rfind(R"({"oslo.version":"2.0","oslo.message":")", 0), 0u) << body;
  absl::StatusOr<Message> m = DecodeMessage(body);
  ZRPC_ASSERT_OK(m);
  EXPECT_EQ(m->args.Find("kind")->AsString(), "bare \"q\"");
  // A call too (its reply never comes: the deadline ends it).
  absl::StatusOr<Value> r =
      client->Call(Context(), "compute", Msg("whoami"), {.timeout = absl::Milliseconds(100)});
  EXPECT_FALSE(r.ok());
  EXPECT_EQ(NextBody().rfind(R"({"oslo.version":"2.0","oslo.message":")", 0), 0u);
}

TEST_F(BodyFormTest, ZrpcServicesAdvertiseAndDecodeTheBareForm) {
  StartService("node1");
  absl::StatusOr<std::unique_ptr<Matchmaker>> mm = CreateMatchmaker(matchmaker_);
  ZRPC_ASSERT_OK(mm);
  absl::StatusOr<std::vector<Registration>> regs = (*mm)->Resolve(kDefaultExchange, "compute");
  ZRPC_ASSERT_OK(regs);
  ASSERT_EQ(regs->size(), 1u);
  EXPECT_EQ((*regs)[0].accepts, std::vector<std::string>{std::string(kBareMessageForm)});
  for (bool bare : {true, false}) {
    TransportOptions o = ClientOptions();
    o.send_bare_messages = bare;
    auto client = Client(o);
    EXPECT_EQ(Host(client->Call(Context(), "compute", Msg("whoami"))), "node1");
  }
}

TEST_F(BodyFormTest, AServiceRepliesBareOnlyToARequestThatAsksForIt) {
  StartService("node1");
  zmq::context_t ctx;
  zmq::socket_t dealer(ctx, zmq::socket_type::dealer);
  dealer.set(zmq::sockopt::rcvtimeo, 5000);
  dealer.connect(endpoints_["node1"]);
  // The same call, as the bare message, asking for a bare reply or not (by a raw DEALER).
  for (bool ask : {true, false}) {
    Message m = Msg("whoami");
    m.msg_id = ask ? "asks" : "does-not-ask";
    m.unique_id = NewUniqueId();
    m.bare_reply = ask;
    absl::StatusOr<std::string> body = internal::EncodeBareMessage(m);
    ZRPC_ASSERT_OK(body);
    const std::string header = "zrpc1 call openstack compute " + m.msg_id;
    dealer.send(zmq::buffer(header), zmq::send_flags::sndmore);
    dealer.send(zmq::buffer(*body));
    std::vector<zmq::message_t> frames;
    ASSERT_TRUE(zmq::recv_multipart(dealer, std::back_inserter(frames)));
    ASSERT_EQ(frames.size(), 2u);
    EXPECT_EQ(frames[0].to_string(), "zrpc1 reply " + m.msg_id);
    const std::string reply = frames[1].to_string();
    EXPECT_EQ(reply.rfind(ask ? R"({"result":)" : R"({"oslo.version":"2.0")", 0), 0u) << reply;
    absl::StatusOr<Reply> r = DecodeReply(reply);
    ZRPC_ASSERT_OK(r);
    EXPECT_EQ(r->result, Value("node1"));
  }
  // A refusal the service sends itself (no handler ran) stays in the envelope, asked or not.
  Message m = Msg("no_such_method");
  m.msg_id = "refused";
  m.unique_id = NewUniqueId();
  m.bare_reply = true;
  dealer.send(zmq::str_buffer("zrpc1 call openstack compute refused"), zmq::send_flags::sndmore);
  dealer.send(zmq::buffer(*internal::EncodeBareMessage(m)));
  std::vector<zmq::message_t> frames;
  ASSERT_TRUE(zmq::recv_multipart(dealer, std::back_inserter(frames)));
  ASSERT_EQ(frames.size(), 2u);
  const std::string reply = frames[1].to_string();
  EXPECT_EQ(reply.rfind(R"({"oslo.version":"2.0")", 0), 0u) << reply;
  absl::StatusOr<Reply> r = DecodeReply(reply);
  ZRPC_ASSERT_OK(r);
  EXPECT_TRUE(r->failure.has_value());
}

}  // namespace
}  // namespace zrpc::testing
