// SPDX-License-Identifier: Apache-2.0
// Reading zrpc's Prometheus metrics in integration tests: GET /metrics over HTTP, sum the samples
// of a metric by labels, and ask promtool whether it accepts the text.
#ifndef ZRPC_TESTS_INTEGRATION_METRICS_SCRAPE_H_
#define ZRPC_TESTS_INTEGRATION_METRICS_SCRAPE_H_

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace zrpc::testing {

// GET http://127.0.0.1:`port`/metrics: the body ("" on failure). Bounded: 10 s.
inline std::string ScrapeMetrics(int port) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    close(fd);
    return "";
  }
  const std::string request = "GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n";
  (void)!write(fd, request.data(), request.size());
  std::string response;
  char buf[65536];
  const absl::Time until = absl::Now() + absl::Seconds(10);
  while (absl::Now() < until) {
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, 200) <= 0) continue;
    const ssize_t n = read(fd, buf, sizeof(buf));
    if (n <= 0) break;
    response.append(buf, static_cast<size_t>(n));
  }
  close(fd);
  const size_t body = response.find("\r\n\r\n");
  return body == std::string::npos ? "" : response.substr(body + 4);
}

// The sum of the samples of `name` whose labels include every `labels` pair (k="v"); -1 when
// there is no such sample (so that "absent" and "0" differ).
inline double MetricSample(const std::string& text, std::string_view name,
                           const std::vector<std::pair<std::string, std::string>>& labels) {
  double sum = 0;
  bool found = false;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    if (line.empty() || line[0] == '#') continue;
    if (!absl::StartsWith(line, absl::string_view(name.data(), name.size()))) continue;
    const absl::string_view rest = line.substr(name.size());
    if (rest.empty() || (rest[0] != '{' && rest[0] != ' ')) continue;  // another metric
    bool all = true;
    for (const auto& [k, v] : labels) {
      all &= absl::StrContains(rest, absl::StrCat(k, "=\"", v, "\""));
    }
    if (!all) continue;
    double value = 0;
    if (absl::SimpleAtod(rest.substr(rest.rfind(' ') + 1), &value)) {
      sum += value;
      found = true;
    }
  }
  return found ? sum : -1;
}

// The output and exit status of `/bin/sh -c command` (stderr included).
struct CommandResult {
  std::string output;
  int status = -1;  // as pclose returns it
};
inline CommandResult RunCommand(const std::string& command) {
  CommandResult r;
  FILE* p = popen((command + " 2>&1").c_str(), "r");
  if (p == nullptr) return r;
  char buf[4096];
  while (size_t n = fread(buf, 1, sizeof(buf), p)) r.output.append(buf, n);
  r.status = pclose(p);
  return r;
}

// promtool's verdict on the exposition `text` ("" when it accepts it; lint advice, printed with
// exit status 0, does not count).
inline std::string PromtoolCheckMetrics(const std::string& text) {
  char path[] = "/tmp/zrpc-metrics-XXXXXX";
  const int fd = mkstemp(path);
  if (fd < 0) return "cannot write a temporary file";
  (void)!write(fd, text.data(), text.size());
  close(fd);
  const CommandResult r = RunCommand(absl::StrCat("/usr/bin/promtool check metrics < ", path));
  unlink(path);
  if (r.status != 0) return absl::StrCat("promtool failed (", r.status, "): ", r.output);
  return "";
}

}  // namespace zrpc::testing

#endif  // ZRPC_TESTS_INTEGRATION_METRICS_SCRAPE_H_
