// SPDX-License-Identifier: Apache-2.0
// A real redis-server on a free loopback port, started and stopped by the test (by PID).
#ifndef ZRPC_TESTING_REDIS_SERVER_H_
#define ZRPC_TESTING_REDIS_SERVER_H_

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/time/clock.h"
#include "testing/child_process.h"

namespace zrpc::testing {

// 127.0.0.1:`port`.
inline sockaddr_in LoopbackAddress(int port) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(port);
  return a;
}

// A TCP port on 127.0.0.1 that nothing listens on right now.
inline int FreePort() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a = LoopbackAddress(0);
  socklen_t len = sizeof(a);
  if (bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0 ||
      getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
    close(fd);
    return 0;
  }
  close(fd);
  return ntohs(a.sin_port);
}

class RedisServer {
 public:
  // `binary`: the redis-server to run (the build passes ZRPC_REDIS_SERVER).
  explicit RedisServer(std::string binary = ZRPC_REDIS_SERVER) : binary_(std::move(binary)) {}
  RedisServer(const RedisServer&) = delete;
  RedisServer& operator=(const RedisServer&) = delete;
  ~RedisServer() { Stop(); }

  // Starts redis-server (no persistence) on a free port, or on the port it had before.
  bool Start(const std::string& password = "") {
    if (port_ == 0) port_ = FreePort();
    if (!password.empty()) password_ = password;
    std::vector<std::string> argv = {
        binary_,        "--port", std::to_string(port_), "--bind", "127.0.0.1",  "--save", "",
        "--appendonly", "no",     "--daemonize",         "no",     "--loglevel", "warning"};
    if (!password_.empty()) argv.insert(argv.end(), {"--requirepass", password_});
    process_ = std::make_unique<ChildProcess>();
    if (!process_->Start(argv)) return false;
    return WaitReady();
  }
  void Kill() {
    if (process_) process_->Kill();
  }
  void Stop() {
    if (process_) process_->Stop();
  }
  int port() const { return port_; }
  pid_t pid() const { return process_ ? process_->pid() : -1; }
  // redis://[:password@]127.0.0.1:PORT/DB?QUERY
  std::string Url(const std::string& query = "ttl=2&heartbeat=0.3", int db = 0) const {
    std::string url = "redis://";
    if (!password_.empty()) url += ":" + password_ + "@";
    url += "127.0.0.1:" + std::to_string(port_) + "/" + std::to_string(db);
    if (!query.empty()) url += "?" + query;
    return url;
  }

 private:
  // Ready once it accepts a connection and answers (even NOAUTH counts).
  bool WaitReady() {
    const absl::Time until = absl::Now() + absl::Seconds(10);
    while (absl::Now() < until) {
      int fd = socket(AF_INET, SOCK_STREAM, 0);
      const sockaddr_in a = LoopbackAddress(port_);
      if (connect(fd, reinterpret_cast<const sockaddr*>(&a), sizeof(a)) == 0) {
        const char ping[] = "PING\r\n";
        char buf[64] = {0};
        if (write(fd, ping, sizeof(ping) - 1) > 0 && read(fd, buf, sizeof(buf) - 1) > 0) {
          close(fd);
          return true;
        }
      }
      close(fd);
      absl::SleepFor(absl::Milliseconds(20));
    }
    return false;
  }

  std::string binary_;
  std::unique_ptr<ChildProcess> process_;
  int port_ = 0;
  std::string password_;
};

}  // namespace zrpc::testing

#endif  // ZRPC_TESTING_REDIS_SERVER_H_
