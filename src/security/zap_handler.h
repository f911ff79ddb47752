// SPDX-License-Identifier: Apache-2.0
// The ZAP handler of one ZeroMQ context (RFC 27): answers libzmq's authentication requests for
// every CURVE server socket of the context, admitting only keys of the keyring. Each connection's
// ZAP user id (each message's "User-Id" property) is its public key in Z85, which the receiver
// looks up in the keyring for every request (Keyring::FindKey): authorization follows the current
// file, open connections included.
//
// Stable libzmq admits every key when no handler answers, so zrpc fails closed: the handler is
// started, and proven to answer, before any CURVE server socket binds; when its thread stops, the
// sockets are not served (ZapHandler::running() turns false and the owner closes them). A
// stopped handler keeps the endpoint bound until it is destroyed, so meanwhile new handshakes
// wait unanswered (and time out) rather than being admitted.
#ifndef ZRPC_SRC_SECURITY_ZAP_HANDLER_H_
#define ZRPC_SRC_SECURITY_ZAP_HANDLER_H_

#include <atomic>
#include <memory>
#include <thread>
#include <zmq.hpp>

#include "absl/status/statusor.h"
#include "security/keyring.h"

namespace zrpc::internal {

// The ZAP domain zrpc's server sockets use.
inline constexpr std::string_view kZapDomain = "zrpc";
// The ZAP domain of a service's notification (XPUB) socket: it admits only keys that have a
// listen role (AuthorizedKey::roles.listen).
inline constexpr std::string_view kZapListenDomain = "zrpc-listen";

class ZapHandler {
 public:
  // Binds inproc://zeromq.zap.01 in `ctx` (FAILED_PRECONDITION when another handler holds it),
  // starts the thread and checks that it answers a request. `ctx` and `keyring` outlive it.
  static absl::StatusOr<std::unique_ptr<ZapHandler>> Start(zmq::context_t& ctx,
                                                           std::shared_ptr<Keyring> keyring);
  ~ZapHandler();  // stops the thread and unbinds
  ZapHandler(const ZapHandler&) = delete;
  ZapHandler& operator=(const ZapHandler&) = delete;

  // False once the thread has stopped (after an error it could not survive, or for tests).
  bool running() const { return running_.load(); }
  // Stops the thread now, as a crash of it would (tests of failing closed): running() is false on
  // return; the endpoint stays bound, unanswered, until destruction.
  void StopForTesting();

 private:
  explicit ZapHandler(std::shared_ptr<Keyring> keyring) : keyring_(std::move(keyring)) {}
  void Run(zmq::socket_t socket);

  std::shared_ptr<Keyring> keyring_;
  std::atomic<bool> running_{false};
  std::atomic<bool> stop_{false};
  std::thread thread_;
  // The thread's socket once it stopped (written by the thread before it ends, read after join).
  zmq::socket_t stopped_socket_;
};

}  // namespace zrpc::internal

#endif  // ZRPC_SRC_SECURITY_ZAP_HANDLER_H_
