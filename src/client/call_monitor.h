// SPDX-License-Identifier: Apache-2.0
// The call monitor: the one place that decides how a call in flight ends besides its reply.
// It matches frames to calls by msg_id, keeps each call's deadline and silence limit (three of
// the *service's* heartbeat intervals, DESIGN §3), and turns the passage of time or a lost
// connection into Timeout or PeerLost. Every call path (Call, MultiCall, CallMany, CallAsync and
// the health prober) keeps its calls here. Pure logic on an injected clock: no sockets, no
// threads. Thread-compatible.
#ifndef ZRPC_SRC_CLIENT_CALL_MONITOR_H_
#define ZRPC_SRC_CLIENT_CALL_MONITOR_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/time/time.h"

namespace zrpc::internal {

class ClientMethodStats;

// How many silent heartbeat intervals make a peer lost.
inline constexpr int kSilentBeatsForPeerLost = 3;

class CallMonitor {
 public:
  // One call in flight, as the monitor tracks it.
  struct Call {
    uint64_t token = 0;     // the owner's handle (an index, a pointer-sized id)
    std::string endpoint;   // where the request went
    std::string host;       // that instance's host (for errors)
    std::string topic;      // what the caller asked for (for errors)
    std::string method;     // for errors
    absl::Time deadline = absl::InfiniteFuture();
    absl::Duration beat = absl::Seconds(1);  // the service's heartbeat interval
    absl::Time last_heard;  // the send, then every reply or beat
    // Where the attempt this call is (one request to one instance) is counted when it ends, and
    // when it was sent; null for calls nobody counts (probes).
    ClientMethodStats* stats = nullptr;
    absl::Time sent;
  };
  // How a call ended without its final reply.
  struct Ended {
    std::string msg_id;
    Call call;
    absl::Status status;  // Timeout or PeerLost
  };

  // Starts watching `msg_id` (its request was just queued at `now`).
  void Add(std::string msg_id, Call call, absl::Time now);
  // A reply or beat for `msg_id` arrived from `endpoint`: the call, or nullptr for a frame that
  // belongs to no call of ours (late, or from another peer: drop it). A beat may announce the
  // service's interval (`beat_ms` > 0).
  Call* Heard(std::string_view msg_id, std::string_view endpoint, absl::Time now,
              int64_t beat_ms = 0);
  // The call watched as `msg_id`, or nullptr.
  const Call* Find(std::string_view msg_id) const;
  // Stops watching (the call got its final reply, or its owner gave up).
  void Remove(std::string_view msg_id);
  // Ends every call whose deadline passed (Timeout) or whose peer fell silent (PeerLost).
  std::vector<Ended> Expire(absl::Time now);
  // Ends every call sent to `endpoint` with PeerLost (its connection died or broke).
  std::vector<Ended> LoseEndpoint(std::string_view endpoint);
  // No later than the earliest time Expire could end a call; InfiniteFuture when none is watched.
  absl::Time NextWake() const;
  // Calls currently watched on `endpoint`.
  bool HasCallsOn(std::string_view endpoint) const;

  size_t size() const { return calls_.size(); }
  bool empty() const { return calls_.empty(); }

  // The status a call gets at its deadline or when its peer is lost.
  static absl::Status TimeoutFor(const Call& call);
  static absl::Status PeerLostFor(const Call& call);

 private:
  void Erase(absl::flat_hash_map<std::string, Call>::iterator it);

  absl::flat_hash_map<std::string, Call> calls_;
  absl::flat_hash_map<std::string, int> per_endpoint_;  // calls watched on each endpoint
  // No call can end before this: Expire looks at the calls only from then on, so that a session
  // with many calls in flight does not visit each of them on every wake-up. A lower bound (a
  // reply or a removal only moves the true time later); the scan that Expire makes sets it anew.
  absl::Time next_check_ = absl::InfiniteFuture();
};

}  // namespace zrpc::internal

#endif  // ZRPC_SRC_CLIENT_CALL_MONITOR_H_
