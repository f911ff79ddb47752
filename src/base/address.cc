// SPDX-License-Identifier: Apache-2.0
#include "base/address.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <sys/socket.h>

#include <algorithm>
#include <memory>
#include <optional>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "base/thread.h"

namespace zrpc::internal {
namespace {

// Lookups in flight at once: a ring lists tens of hosts, not thousands.
constexpr size_t kMaxParallelLookups = 16;

bool IsIpv4(const std::string& text) {
  in_addr a;
  return inet_pton(AF_INET, text.c_str(), &a) == 1;
}

bool IsIpv6(const std::string& text) {
  in6_addr a;
  return inet_pton(AF_INET6, text.c_str(), &a) == 1;
}

absl::StatusOr<std::string> Lookup(const std::string& host) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* list = nullptr;
  const int rc = getaddrinfo(host.c_str(), nullptr, &hints, &list);
  if (rc != 0) {
    return absl::NotFoundError(absl::StrCat("\"", host, "\" does not resolve: ", gai_strerror(rc)));
  }
  std::string v4, v6;
  for (const addrinfo* i = list; i != nullptr; i = i->ai_next) {
    char text[INET6_ADDRSTRLEN] = {};
    if (i->ai_family == AF_INET && v4.empty()) {
      const auto* a = reinterpret_cast<const sockaddr_in*>(i->ai_addr);
      if (inet_ntop(AF_INET, &a->sin_addr, text, sizeof(text)) != nullptr) v4 = text;
    } else if (i->ai_family == AF_INET6 && v6.empty()) {
      const auto* a = reinterpret_cast<const sockaddr_in6*>(i->ai_addr);
      if (inet_ntop(AF_INET6, &a->sin6_addr, text, sizeof(text)) != nullptr) v6 = text;
    }
  }
  freeaddrinfo(list);
  if (!v4.empty()) return v4;
  if (!v6.empty()) return absl::StrCat("[", v6, "]");
  return absl::NotFoundError(absl::StrCat("\"", host, "\" has no IPv4 or IPv6 address"));
}

// What the lookup threads and the caller share; outlives the caller when a lookup is late.
struct Lookups {
  absl::Mutex mu;
  std::vector<std::string> hosts;
  std::vector<std::optional<absl::StatusOr<std::string>>> results ABSL_GUARDED_BY(mu);
  size_t next ABSL_GUARDED_BY(mu) = 0;
  size_t done ABSL_GUARDED_BY(mu) = 0;
};

}  // namespace

bool IsNumericHost(std::string_view host) {
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') {
    return IsIpv6(std::string(host.substr(1, host.size() - 2)));
  }
  return IsIpv4(std::string(host));
}

std::string_view TcpHostOf(std::string_view endpoint) {
  if (!endpoint.starts_with("tcp://")) return "";
  const size_t colon = endpoint.rfind(':');
  if (colon <= 6) return "";
  return endpoint.substr(6, colon - 6);
}

std::vector<absl::StatusOr<std::string>> ResolveHosts(const std::vector<std::string>& hosts,
                                                      absl::Duration timeout) {
  auto work = std::make_shared<Lookups>();
  work->hosts = hosts;
  size_t names = 0;
  {
    absl::MutexLock lock(&work->mu);
    work->results.resize(hosts.size());
    // Numeric addresses need no lookup (and no thread).
    for (size_t i = 0; i < hosts.size(); ++i) {
      if (IsIpv4(hosts[i]) || IsNumericHost(hosts[i])) {
        work->results[i] = hosts[i];
      } else if (IsIpv6(hosts[i])) {
        work->results[i] = absl::StrCat("[", hosts[i], "]");
      }
      work->done += work->results[i].has_value() ? 1 : 0;
    }
    names = hosts.size() - work->done;
  }
  // getaddrinfo cannot be cancelled: each thread owns a share of `work` and exits after its
  // lookup even when the caller stopped waiting.
  for (size_t t = 0; t < std::min(names, kMaxParallelLookups); ++t) {
    StartThread([work] {
      while (true) {
        size_t i;
        {
          absl::MutexLock lock(&work->mu);
          while (work->next < work->hosts.size() && work->results[work->next].has_value()) {
            ++work->next;
          }
          if (work->next >= work->hosts.size()) return;
          i = work->next++;
        }
        absl::StatusOr<std::string> r = Lookup(work->hosts[i]);
        absl::MutexLock lock(&work->mu);
        work->results[i] = std::move(r);
        ++work->done;
      }
    }).detach();
  }
  std::vector<absl::StatusOr<std::string>> out;
  out.reserve(hosts.size());
  Lookups* w = work.get();
  absl::MutexLock lock(&w->mu);
  auto all_done = [w]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(w->mu) { return w->done == w->hosts.size(); };
  w->mu.AwaitWithTimeout(absl::Condition(&all_done), timeout);
  for (size_t i = 0; i < hosts.size(); ++i) {
    if (w->results[i].has_value()) {
      out.push_back(*w->results[i]);
    } else {
      out.push_back(absl::DeadlineExceededError(absl::StrCat(
          "\"", hosts[i], "\" did not resolve within ", absl::FormatDuration(timeout))));
    }
  }
  return out;
}

}  // namespace zrpc::internal
