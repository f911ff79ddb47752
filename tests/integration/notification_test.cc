// SPDX-License-Identifier: Apache-2.0
// Notifications across processes: publishers are zrpc-service processes (method emit), listeners
// live in the test process.
#include <atomic>
#include <zmq.hpp>

#include "absl/cleanup/cleanup.h"
#include "absl/synchronization/notification.h"

#include "testing/harness.h"
#include "unit/test_util.h"

namespace zrpc::testing {
namespace {

// Collects what a listener receives.
struct Inbox {
  absl::Mutex mu;
  std::vector<Notification> got ABSL_GUARDED_BY(mu);
  std::function<void(const Notification&)> Handler() {
    return [this](const Notification& n) {
      absl::MutexLock lock(&mu);
      got.push_back(n);
    };
  }
  size_t size() {
    absl::MutexLock lock(&mu);
    return got.size();
  }
  size_t Count(const std::string& type) {
    absl::MutexLock lock(&mu);
    size_t n = 0;
    for (const Notification& e : got) n += e.event_type == type;
    return n;
  }
  void Clear() {
    absl::MutexLock lock(&mu);
    got.clear();
  }
  std::multiset<std::string> Types() {
    absl::MutexLock lock(&mu);
    std::multiset<std::string> out;
    for (const Notification& n : got) out.insert(n.event_type);
    return out;
  }
};

class NotificationTest : public IntegrationTest {
 protected:
  // PUB/SUB: a subscription takes a moment to reach a publisher. Emits "warmup" from `host`
  // until one arrives (bounded), so that the test's own events are not lost to that moment.
  void WarmUp(Transport& t, const std::string& host, Inbox& inbox, const std::string& priority = "info") {
    const absl::Time until = absl::Now() + absl::Seconds(10);
    while (absl::Now() < until && inbox.Count("warmup") == 0) {
      ASSERT_TRUE(Emit(t, host, "warmup", priority).ok());
      Eventually([&] { return inbox.Count("warmup") > 0; }, absl::Milliseconds(200));
    }
    ASSERT_GT(inbox.Count("warmup"), 0u) << "no event from " << host << " reached the listener";
    absl::SleepFor(absl::Milliseconds(50));  // stragglers of the warm-up
    inbox.Clear();
  }
  absl::Status Emit(Transport& t, const std::string& host, const std::string& type,
                    const std::string& priority = "info") {
    return t.Call(Context(Object{{"request_id", "r-" + type}}), "compute." + host,
                  Msg("emit", {{"event_type", type}, {"priority", priority}, {"payload", Object{{"n", 1}}}}))
        .status();
  }
};

TEST_F(NotificationTest, AListenerHearsTwoPublishersAndALateOne) {
  StartService("node1");
  StartService("node2");
  auto client = Client();
  Inbox inbox;
  auto listener = NotificationListener::Create(*client, {"notifications.info"}, inbox.Handler());
  ZRPC_ASSERT_OK(listener);
  ASSERT_TRUE(Eventually([&] { return (*listener)->publishers() == 2; }));
  WarmUp(*client, "node1", inbox);
  WarmUp(*client, "node2", inbox);
  ZRPC_ASSERT_OK(Emit(*client, "node1", "a.created"));
  ZRPC_ASSERT_OK(Emit(*client, "node2", "b.created"));
  ZRPC_ASSERT_OK(Emit(*client, "node2", "b.failed", "error"));  // another priority: not for us
  ASSERT_TRUE(Eventually([&] { return inbox.size() == 2; }));
  {
    absl::MutexLock lock(&inbox.mu);
    std::set<std::string> publishers;
    for (const Notification& n : inbox.got) {
      publishers.insert(n.publisher_id);
      EXPECT_EQ(n.priority, Priority::kInfo);
      EXPECT_EQ(n.topic, "notifications");
      EXPECT_EQ(n.payload, Value(Object{{"n", 1}}));
      EXPECT_EQ(n.message_id.size(), 32u);
      EXPECT_EQ(n.timestamp.size(), 26u);  // YYYY-MM-DD HH:MM:SS.ffffff
      EXPECT_EQ(n.context.Find("request_id")->AsString(), "r-" + n.event_type);
    }
    EXPECT_EQ(publishers, (std::set<std::string>{"compute.node1", "compute.node2"}));
  }
  // A publisher that appears later is picked up.
  StartService("node3");
  ASSERT_TRUE(Eventually([&] { return (*listener)->publishers() == 3; }));
  WarmUp(*client, "node3", inbox);
  ZRPC_ASSERT_OK(Emit(*client, "node3", "c.created"));
  EXPECT_TRUE(Eventually([&] { return inbox.Types().count("c.created") == 1; }));
  absl::SleepFor(absl::Milliseconds(100));
  EXPECT_EQ(inbox.Types().count("b.failed"), 0u);
}

TEST_F(NotificationTest, ALateListenerMissesEarlierEvents) {
  StartService("node1");
  auto client = Client();
  ZRPC_ASSERT_OK(Emit(*client, "node1", "before"));
  Inbox inbox;
  auto listener = NotificationListener::Create(*client, {"notifications"}, inbox.Handler());
  ZRPC_ASSERT_OK(listener);
  ASSERT_TRUE(Eventually([&] { return (*listener)->publishers() == 1; }));
  WarmUp(*client, "node1", inbox, "warn");
  ZRPC_ASSERT_OK(Emit(*client, "node1", "after", "warn"));
  ASSERT_TRUE(Eventually([&] { return inbox.size() == 1; }));
  EXPECT_EQ(inbox.Types(), std::multiset<std::string>{"after"});  // not "before"
}

TEST_F(NotificationTest, EachListenerPoolGetsEachEventOnce) {
  StartService("node1");
  auto client = Client();
  Inbox audit1, audit2, billing;
  std::vector<std::unique_ptr<Transport>> transports;
  std::vector<std::unique_ptr<NotificationListener>> listeners;
  for (auto [inbox, pool] : {std::pair{&audit1, "audit"}, std::pair{&audit2, "audit"},
                             std::pair{&billing, "billing"}}) {
    transports.push_back(Client(ClientOptions(std::string("listener-") + pool)));
    auto l = NotificationListener::Create(*transports.back(), {"notifications.info"},
                                          inbox->Handler(), {.pool = pool});
    ZRPC_ASSERT_OK(l);
    listeners.push_back(*std::move(l));
  }
  for (int i = 0; i < 6; ++i) ZRPC_ASSERT_OK(Emit(*client, "node1", "e" + std::to_string(i)));
  EXPECT_TRUE(Eventually([&] { return audit1.size() + audit2.size() == 6 && billing.size() == 6; }));
  absl::SleepFor(absl::Milliseconds(200));
  EXPECT_EQ(audit1.size() + audit2.size(), 6u);  // each event once in the pool
  EXPECT_EQ(audit1.size(), 3u);                  // shared round-robin
  EXPECT_EQ(billing.size(), 6u);
  listeners.clear();
}

TEST_F(NotificationTest, BadPrioritiesAndTargetsAreClearErrors) {
  auto t = Client();
  auto notifier = Notifier::Create(*t, "me");
  ZRPC_ASSERT_OK(notifier);
  ZRPC_EXPECT_ERROR((*notifier)->Notify(Context(), "x", std::string_view("loud"), Value()),
                    absl::StatusCode::kInvalidArgument, "unknown notification priority \"loud\"");
  EXPECT_EQ(ParsePriority("WARNING").value_or(Priority::kDebug), Priority::kWarn);
  ZRPC_EXPECT_ERROR(NotificationListener::Create(*t, {"notifications.loud"}, [](const Notification&) {}).status(),
                    absl::StatusCode::kInvalidArgument, "loud");
  ZRPC_EXPECT_ERROR(Notifier::Create(*t, "me", {.topics = {"a.b"}}).status(),
                    absl::StatusCode::kInvalidArgument, "must not contain '.'");
}

TEST_F(NotificationTest, ASlowListenerMakesDropsThatAreCounted) {
  auto publisher = Client(ClientOptions("pub"));
  auto notifier = Notifier::Create(*publisher, "flood");
  ZRPC_ASSERT_OK(notifier);
  auto listening = Client(ClientOptions("sub"));
  std::atomic<int> seen{0};
  absl::Notification stalled, release;
  auto listener = NotificationListener::Create(*listening, {"notifications.debug"}, [&](const Notification&) {
    if (seen++ == 0) {
      stalled.Notify();
      release.WaitForNotificationWithTimeout(absl::Seconds(60));  // stall: queues fill up
    }
  });
  ZRPC_ASSERT_OK(listener);
  // Declared after the listener, so it runs first: the listener's stop never waits on the stall.
  absl::Cleanup unstall = [&] { release.Notify(); };
  ASSERT_TRUE(Eventually([&] { return (*listener)->publishers() == 1; }));
  // Publish until the listener has taken an event and stalled in its handler.
  const absl::Time until = absl::Now() + absl::Seconds(20);
  while (!stalled.HasBeenNotified() && absl::Now() < until) {
    ZRPC_ASSERT_OK((*notifier)->Debug(Context(), "flood", Value("first")));
    stalled.WaitForNotificationWithTimeout(absl::Milliseconds(50));
  }
  ASSERT_TRUE(stalled.HasBeenNotified()) << "the listener never received an event";
  // Now flood: with the listener stalled, its queues and the publisher's fill up and drop.
  const std::string blob(2000, 'x');
  for (int i = 0; (*notifier)->dropped() == 0 && absl::Now() < until; ++i) {
    ZRPC_ASSERT_OK((*notifier)->Debug(Context(), "flood", Value(blob)));
    if (i % 1000 == 999) absl::SleepFor(absl::Milliseconds(5));  // let the I/O thread publish
  }
  EXPECT_TRUE(Eventually([&] { return (*notifier)->dropped() > 0; }, absl::Seconds(5)));
}

}  // namespace
}  // namespace zrpc::testing

namespace zrpc::testing {
namespace {

TEST_F(NotificationTest, AMalformedSubscriptionDropsNoOtherListener) {
  StartService("node1");
  auto client = Client();
  Inbox inbox;
  auto listener = NotificationListener::Create(*client, {"notifications.info"}, inbox.Handler());
  ZRPC_ASSERT_OK(listener);
  ASSERT_TRUE(Eventually([&] { return (*listener)->publishers() == 1; }));
  WarmUp(*client, "node1", inbox);
  absl::StatusOr<std::vector<Registration>> pubs =
      client->matchmaker().Resolve("openstack", "publisher~notifications");
  ZRPC_ASSERT_OK(pubs);
  ASSERT_EQ(pubs->size(), 1u);
  // A peer subscribes with forms zrpc's listeners never send (no priority, junk bytes).
  zmq::context_t ctx;
  zmq::socket_t attacker(ctx, zmq::socket_type::xsub);
  attacker.set(zmq::sockopt::linger, 0);
  attacker.connect((*pubs)[0].pub_endpoint);
  for (const std::string_view bad : {std::string_view("\x01" "bogus"),
                                     std::string_view("\x01" "a\xff.info")}) {
    ASSERT_TRUE(attacker.send(zmq::buffer(bad), zmq::send_flags::none));
  }
  Message health = Msg("health");
  health.ns = "_zrpc";
  ASSERT_TRUE(Eventually([&] {
    absl::StatusOr<Value> h = client->Call(Context(), "compute.node1", health);
    return h.ok() && h->Find("load")->Find("bad_subscriptions")->AsInt() >= 2;
  }));
  // The listener subscribed before stays subscribed: every event after the attack reaches it,
  // and the socket was never reset.
  for (int i = 0; i < 5; ++i) ZRPC_ASSERT_OK(Emit(*client, "node1", "after.attack"));
  ASSERT_TRUE(Eventually([&] { return inbox.Count("after.attack") == 5; }));
  absl::StatusOr<Value> h = client->Call(Context(), "compute.node1", health);
  ZRPC_ASSERT_OK(h);
  EXPECT_EQ(h->Find("load")->Find("subscription_resets")->AsInt(), 0);
}

}  // namespace
}  // namespace zrpc::testing
