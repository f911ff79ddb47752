// The zrpc-matchmaker sidecar: its wire protocol, and the matchmaker backend that talks to it
// (URLs ipc://... and tcp://...).
//
// Requests, on a DEALER to the sidecar's ROUTER, are two frames: "zmm1 OP ID" and a JSON body;
// the answer is "zmm1 reply ID" and {"ok": true, "result": ...} or
// {"ok": false, "error": {"code": N, "message": "..."}}. OPs:
//   hello                                   → {"pub": PUB endpoint, "heartbeat_ms": N}
//   register   {"client", "registration"}   → {}
//   unregister {"client", "registration"}   → {}
//   heartbeat  {"client", "registrations"}  → {} (re-adds any the sidecar does not know)
//   resolve    {"exchange", "key"}          → {"registrations": [...]}
//   list       {"exchange"}                 → {"registrations": [...]}
// The sidecar publishes "zmm1 change KEY" on its PUB after every change ("*" when it cannot
// tell which key changed); clients drop their cached answers then.
#ifndef ZRPC_MATCHMAKER_SIDECAR_H_
#define ZRPC_MATCHMAKER_SIDECAR_H_

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <zmq.hpp>

#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "matchmaker/watchers.h"
#include "zrpc/matchmaker.h"
#include "zrpc/value.h"

namespace zrpc::internal {

inline constexpr std::string_view kSidecarProtocol = "zmm1";

class SidecarMatchmaker : public Matchmaker {
 public:
  // Does not fail when the sidecar is not running yet: requests fail with UNAVAILABLE until it is.
  static absl::StatusOr<std::unique_ptr<Matchmaker>> Create(std::string url);
  ~SidecarMatchmaker() override;

  absl::Status Register(const Registration& r) override;
  absl::Status Unregister(const Registration& r) override;
  absl::Status Heartbeat() override;
  absl::StatusOr<std::vector<Registration>> Resolve(std::string_view exchange,
                                                    std::string_view key) override;
  absl::StatusOr<std::vector<Registration>> List(std::string_view exchange) override;
  absl::StatusOr<std::unique_ptr<WatchHandle>> Watch(std::function<void()> on_change) override;
  std::string url() const override { return url_; }
  absl::Duration HeartbeatInterval() const override { return absl::Seconds(1); }

 private:
  explicit SidecarMatchmaker(std::string url);
  // One request; UNAVAILABLE naming the sidecar when it does not answer within a second.
  absl::StatusOr<Value> Request(std::string_view op, Value body) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status EnsureHello() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void ListenForChanges();
  void Changed();

  const std::string url_;
  const std::string client_id_;
  zmq::context_t ctx_;

  absl::Mutex mu_;
  std::unique_ptr<zmq::socket_t> dealer_ ABSL_GUARDED_BY(mu_);
  uint64_t next_request_ ABSL_GUARDED_BY(mu_) = 0;
  std::vector<Registration> own_ ABSL_GUARDED_BY(mu_);
  std::string pub_endpoint_ ABSL_GUARDED_BY(mu_);
  // After a request went unanswered, further ones fail at once until then (no pile-up of
  // timeouts while the sidecar is away, e.g. a service unregistering many consumers).
  absl::Time down_until_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();

  absl::Mutex cache_mu_;
  absl::flat_hash_map<std::string, std::pair<std::vector<Registration>, absl::Time>> cache_
      ABSL_GUARDED_BY(cache_mu_);
  WatcherList watchers_;

  std::atomic<bool> stop_{false};
  std::thread listener_;
};

}  // namespace zrpc::internal

#endif  // ZRPC_MATCHMAKER_SIDECAR_H_
