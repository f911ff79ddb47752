// SPDX-License-Identifier: Apache-2.0
// ring:///path/ring.json — the seed's static ring file, re-read when it changes.
//
//   {
//     "compute":   ["node1", "node2"],            // topic → hosts (round-robin, fanout to all)
//     "scheduler": ["node1"],
//     "_endpoints": {                             // optional: where each host listens
//       "node1": "tcp://10.0.0.1:9501",
//       "node2": {"router": "tcp://10.0.0.2:9501", "pub": "tcp://10.0.0.2:9502"}
//     },
//     "_port": 9501                               // optional: hosts not in _endpoints listen on
//   }                                             //   tcp://HOST:_port (default 9501)
//
// Registration is a no-op (the ring is static); services must listen where the ring says.
// Host names in endpoints ("node1" above, as in the seed's rings) are resolved when the file is
// read, all at once within 2 s, and lookups answer with the addresses: clients never resolve a
// name. A name that does not resolve in time makes the file invalid (an error at Create, naming
// the host; on a reload the last good ring is kept): list that host's address in _endpoints.
#ifndef ZRPC_MATCHMAKER_RING_H_
#define ZRPC_MATCHMAKER_RING_H_

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "zrpc/matchmaker.h"

namespace zrpc::internal {

class RingMatchmaker : public Matchmaker {
 public:
  // Reads and checks `path`: a missing, empty, invalid or duplicate-host file is an error.
  static absl::StatusOr<std::unique_ptr<Matchmaker>> Create(std::string path);

  absl::Status Register(const Registration& r) override;
  absl::Status Unregister(const Registration& r) override { return absl::OkStatus(); }
  absl::Status Heartbeat() override { return absl::OkStatus(); }
  absl::StatusOr<std::vector<Registration>> Resolve(std::string_view exchange,
                                                    std::string_view key) override;
  absl::StatusOr<std::vector<Registration>> List(std::string_view exchange) override;
  absl::StatusOr<std::unique_ptr<WatchHandle>> Watch(std::function<void()> on_change) override;
  std::string url() const override { return "ring://" + path_; }

  struct Host {
    std::string router;
    std::string pub;
  };
  struct Ring {
    std::map<std::string, std::vector<std::string>> topics;  // topic → hosts, in file order
    std::map<std::string, Host> hosts;                       // every host's endpoints
  };
  // Parses ring file text; errors name `path`.
  static absl::StatusOr<Ring> Parse(const std::string& path, std::string_view text);

 private:
  RingMatchmaker(std::string path, std::shared_ptr<const Ring> ring, std::string stamp)
      : path_(std::move(path)), ring_(std::move(ring)), stamp_(std::move(stamp)) {}
  // The ring, re-read first when the file changed (a bad edit keeps the last good ring).
  std::shared_ptr<const Ring> Current();

  const std::string path_;
  absl::Mutex mu_;
  std::shared_ptr<const Ring> ring_ ABSL_GUARDED_BY(mu_);
  std::string stamp_ ABSL_GUARDED_BY(mu_);  // mtime, size and inode of what ring_ was read from
  std::string bad_stamp_ ABSL_GUARDED_BY(mu_);  // a stamp already reported as unreadable
  std::string loading_ ABSL_GUARDED_BY(mu_);  // a stamp being read (and resolved) right now
};

}  // namespace zrpc::internal

#endif  // ZRPC_MATCHMAKER_RING_H_
