// SPDX-License-Identifier: Apache-2.0
#include "bench/e2e_servers.h"

#include <unistd.h>

#include <atomic>
#include <iostream>
#include <string_view>
#include <vector>
#include <zmq.hpp>

#include "absl/time/clock.h"
#include "zrpc/zrpc.h"

namespace zrpc::bench {

int ServeZrpc(const std::string& matchmaker, const std::string& ipc_dir,
              const SecurityOptions& security, const TransportOptions& tuning) {
  std::atomic<int64_t> sunk{0};
  Dispatcher inline_d, pool_d;
  auto methods = [&](Endpoint ep) {
    return std::move(ep)
        .Method("echo",
                [](CallContext&, const Object& args) -> absl::StatusOr<Value> {
                  const Value* p = args.Find("p");
                  return p ? *p : Value();
                })
        .Method("sink",
                [&sunk](CallContext&, const Object&) -> absl::StatusOr<Value> {
                  sunk.fetch_add(1, std::memory_order_relaxed);
                  return Value();
                })
        .Method("sunk",
                [&sunk](CallContext&, const Object&) -> absl::StatusOr<Value> {
                  return Value(sunk.load());
                })
        .Method("work", [](CallContext&, const Object& args) -> absl::StatusOr<Value> {
          const Value* sleep_us = args.Find("sleep_us");
          if (sleep_us != nullptr && sleep_us->is_int() && sleep_us->AsInt() > 0) {
            absl::SleepFor(absl::Microseconds(sleep_us->AsInt()));
          }
          const Value* p = args.Find("p");
          return p ? *p : Value();
        });
  };
  if (!inline_d.Add(methods(Endpoint{.inline_handlers = true})).ok()) return 1;
  if (!pool_d.Add(methods(Endpoint{})).ok()) return 1;
  TransportOptions options = tuning;
  options.host = "bench-server";
  options.security = security;
  options.ipc_dir = ipc_dir;
  options.matchmaker = matchmaker;
  auto t = Transport::Create(std::move(options));
  if (!t.ok()) {
    std::cerr << "zrpc server: " << t.status() << "\n";
    return 1;
  }
  auto conn = (*t)->CreateConnection();
  if (!conn.ok() || !(*conn)->CreateConsumer(kInlineTopic, inline_d).ok() ||
      !(*conn)->CreateConsumer(kPoolTopic, pool_d).ok() || !(*conn)->ConsumeInThread().ok()) {
    std::cerr << "zrpc server: cannot consume the bench topics\n";
    return 1;
  }
  std::cout << "READY " << (*t)->endpoint() << std::endl;
  char c;
  while (read(STDIN_FILENO, &c, 1) > 0) {
  }
  pause();
  return 0;
}

int ServeRaw(const std::string& router_ep, const std::string& pull_ep,
             const std::string& key_file) {
  zmq::context_t ctx;
  zmq::socket_t router(ctx, zmq::socket_type::router), pull(ctx, zmq::socket_type::pull);
  if (!key_file.empty()) {
    absl::StatusOr<CurveKeyPair> keys = ReadCurveKeyFile(key_file);
    if (!keys.ok()) {
      std::cerr << "raw server: " << keys.status() << "\n";
      return 1;
    }
    for (zmq::socket_t* s : {&router, &pull}) {
      s->set(zmq::sockopt::curve_server, 1);
      s->set(zmq::sockopt::curve_secretkey, keys->secret_key);
    }
  }
  router.set(zmq::sockopt::rcvhwm, 100000);
  router.set(zmq::sockopt::sndhwm, 100000);
  pull.set(zmq::sockopt::rcvhwm, 100000);
  router.bind(router_ep);
  pull.bind(pull_ep);
  std::cout << "READY " << router.get(zmq::sockopt::last_endpoint) << " "
            << pull.get(zmq::sockopt::last_endpoint) << std::endl;
  int64_t casts = 0, pushed = 0;
  std::vector<zmq::pollitem_t> items = {{router.handle(), 0, ZMQ_POLLIN, 0},
                                        {pull.handle(), 0, ZMQ_POLLIN, 0}};
  std::vector<zmq::message_t> frames;
  while (true) {
    zmq::poll(items, std::chrono::milliseconds(-1));
    if (items[1].revents & ZMQ_POLLIN) {
      zmq::message_t m;
      while (pull.recv(m, zmq::recv_flags::dontwait)) ++pushed;
    }
    if (items[0].revents & ZMQ_POLLIN) {
      while (true) {
        frames.clear();
        zmq::message_t m;
        if (!router.recv(m, zmq::recv_flags::dontwait)) break;
        frames.push_back(std::move(m));
        while (frames.back().more()) {
          zmq::message_t part;
          (void)router.recv(part);
          frames.push_back(std::move(part));
        }
        if (frames.size() == 3) {  // routing id + header + body: a cast to count
          ++casts;
          continue;
        }
        if (frames.size() != 2) continue;
        std::string_view body(static_cast<const char*>(frames[1].data()), frames[1].size());
        router.send(frames[0], zmq::send_flags::sndmore);
        if (body == "?") {
          router.send(zmq::buffer(std::to_string(casts)));
        } else if (body == "?p") {
          router.send(zmq::buffer(std::to_string(pushed)));
        } else {
          router.send(frames[1], zmq::send_flags::none);
        }
      }
    }
  }
}

}  // namespace zrpc::bench
