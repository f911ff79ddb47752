// SPDX-License-Identifier: Apache-2.0
#include "security/zap_handler.h"

#include <zmq.h>

#include <chrono>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "base/log_internal.h"
#include "base/thread.h"

namespace zrpc::internal {
namespace {

// RFC 27: where libzmq sends its requests, and the only version it speaks.
constexpr char kZapEndpoint[] = "inproc://zeromq.zap.01";
constexpr std::string_view kZapVersion = "1.0";
// A request has 6 frames and the mechanism's credentials (CURVE: 1). More is malformed; the
// bound keeps a broken peer from making the handler hold or log much.
constexpr size_t kMaxRequestFrames = 16;
// How often the thread looks at stop_ while idle (StopForTesting and the destructor wait this).
constexpr auto kPollInterval = std::chrono::milliseconds(100);
// How long Start waits for the handler to answer its own request.
constexpr int kSelfTestTimeoutMs = 2000;
// At most this many refusals (and malformed requests) are logged a second; the rest are counted and
// summed up (an attacker reconnecting in a loop cannot flood the log).
constexpr int kMaxRefusalLinesPerSecond = 20;
// The request id of Start's own request.
constexpr std::string_view kSelfTestRequestId = "zrpc-zap-self-test";
constexpr size_t kCurveKeyBytes = 32;

struct Reply {
  std::string status_code;  // "200", "400" or "500"
  std::string status_text;
  std::string user_id;
};

std::string Str(const zmq::message_t& m) { return std::string(m.data<char>(), m.size()); }

}  // namespace

absl::StatusOr<std::unique_ptr<ZapHandler>> ZapHandler::Start(zmq::context_t& ctx,
                                                              std::shared_ptr<Keyring> keyring) {
  if (keyring == nullptr) return absl::InvalidArgumentError("ZapHandler::Start needs a keyring");
  std::unique_ptr<ZapHandler> handler(new ZapHandler(std::move(keyring)));
  try {
    zmq::socket_t socket(ctx, zmq::socket_type::rep);
    socket.set(zmq::sockopt::linger, 0);
    try {
      socket.bind(kZapEndpoint);
    } catch (const zmq::error_t& e) {
      if (e.num() == EADDRINUSE) {
        return absl::FailedPreconditionError(absl::StrCat(
            "another ZAP handler is bound at ", kZapEndpoint,
            " in this ZeroMQ context; use one zrpc security setting per context (one Transport)"));
      }
      throw;
    }
    handler->running_ = true;
    handler->thread_ = StartThread(&ZapHandler::Run, handler.get(), std::move(socket));
  } catch (const zmq::error_t& e) {
    return absl::InternalError(absl::StrCat("cannot start the ZAP handler: ", e.what()));
  }
  // Prove that it answers: a REQ socket of the same context asks as libzmq does (with a mechanism
  // the handler refuses, so the answer is "400" and nothing is admitted).
  try {
    zmq::socket_t req(ctx, zmq::socket_type::req);
    req.set(zmq::sockopt::linger, 0);
    req.set(zmq::sockopt::sndtimeo, kSelfTestTimeoutMs);
    req.set(zmq::sockopt::rcvtimeo, kSelfTestTimeoutMs);
    req.connect(kZapEndpoint);
    const std::vector<std::string> request = {std::string(kZapVersion),
                                              std::string(kSelfTestRequestId),
                                              std::string(kZapDomain),
                                              "",
                                              "",
                                              "NULL"};
    for (size_t i = 0; i < request.size(); ++i) {
      zmq::message_t frame(request[i].data(), request[i].size());
      if (!req.send(frame,
                    i + 1 < request.size() ? zmq::send_flags::sndmore : zmq::send_flags::none)) {
        throw zmq::error_t();
      }
    }
    std::vector<std::string> reply;
    do {
      zmq::message_t frame;
      if (!req.recv(frame)) break;  // timed out
      reply.push_back(Str(frame));
      if (!frame.more()) break;
    } while (reply.size() < kMaxRequestFrames);
    if (reply.size() != 6 || reply[0] != kZapVersion || reply[1] != kSelfTestRequestId ||
        reply[2] != "400") {
      handler->StopForTesting();
      return absl::InternalError(absl::StrCat(
          "the ZAP handler did not answer its start-up check within ", kSelfTestTimeoutMs,
          " ms; zrpc does not serve CURVE sockets without it (libzmq would admit every key)"));
    }
  } catch (const zmq::error_t& e) {
    handler->StopForTesting();
    return absl::InternalError(absl::StrCat("cannot check the ZAP handler: ", e.what()));
  }
  return handler;
}

ZapHandler::~ZapHandler() {
  StopForTesting();
  if (stopped_socket_.handle() != nullptr) {
    // Unbinding an inproc endpoint is immediate; closing alone frees it only later (libzmq's
    // reaper), and a new handler could not bind meanwhile.
    zmq_unbind(stopped_socket_.handle(), kZapEndpoint);
    stopped_socket_.close();
  }
}

void ZapHandler::StopForTesting() {
  stop_ = true;
  if (thread_.joinable() && thread_.get_id() != std::this_thread::get_id()) thread_.join();
}

void ZapHandler::Run(zmq::socket_t socket) {
  // Refusals logged in the current second, and those left unlogged (summed up when the second
  // is over, even if no other refusal comes).
  absl::Time window_start = absl::InfinitePast();
  int logged = 0;
  int suppressed = 0;
  auto next_window = [&](absl::Time now) {
    if (now - window_start < absl::Seconds(1)) return;
    if (suppressed > 0) {
      ZRPC_LOG(kWarning,
               "ZAP: %d more connections refused in the last second (not logged one by one)",
               suppressed);
    }
    window_start = now;
    logged = 0;
    suppressed = 0;
  };
  auto log_refusal = [&](const std::string& line) {
    next_window(absl::Now());
    if (logged < kMaxRefusalLinesPerSecond) {
      ++logged;
      ZRPC_LOG(kWarning, "%s", line);
    } else {
      ++suppressed;
    }
  };

  try {
    while (!stop_) {
      zmq::pollitem_t item{socket.handle(), 0, ZMQ_POLLIN, 0};
      zmq::poll(&item, 1, kPollInterval);
      if (!(item.revents & ZMQ_POLLIN)) {
        if (suppressed > 0) next_window(absl::Now());
        continue;
      }
      // Receive the whole request (REP needs it read before it may answer), keeping a bounded
      // number of frames.
      std::vector<zmq::message_t> frames;
      size_t total_frames = 0;
      while (true) {
        zmq::message_t frame;
        if (!socket.recv(frame, zmq::recv_flags::dontwait)) break;
        const bool more = frame.more();
        if (++total_frames <= kMaxRequestFrames) frames.push_back(std::move(frame));
        if (!more) break;
      }
      if (total_frames == 0) continue;

      const std::string request_id = frames.size() > 1 ? Str(frames[1]) : "";
      Reply reply;
      if (total_frames > kMaxRequestFrames || frames.size() < 6) {
        reply = {"500", "malformed ZAP request", ""};
        log_refusal(absl::StrCat("ZAP: malformed request (", total_frames, " frames); refused"));
      } else if (Str(frames[0]) != kZapVersion) {
        reply = {"500", "unsupported ZAP version", ""};
        log_refusal(absl::StrCat("ZAP: request of version \"", Str(frames[0]), "\"; refused"));
      } else {
        const std::string domain = Str(frames[2]);
        const std::string address = Str(frames[3]);
        const std::string mechanism = Str(frames[5]);
        if (mechanism != "CURVE") {
          reply = {"400", "zrpc admits CURVE connections only", ""};
          // Start's own request is answered like any other, just not logged.
          if (request_id != kSelfTestRequestId)
            log_refusal(absl::StrCat("ZAP: refused a ", mechanism, " connection from ", address,
                                     ": this socket requires CURVE keys"));
        } else if (domain != kZapDomain && domain != kZapListenDomain) {
          reply = {"400", "unknown ZAP domain", ""};
          log_refusal(absl::StrCat("ZAP: refused a connection from ", address, " to ZAP domain \"",
                                   domain, "\": zrpc's sockets use \"", std::string(kZapDomain),
                                   "\""));
        } else if (frames.size() != 7 || frames[6].size() != kCurveKeyBytes) {
          reply = {"500", "malformed CURVE credentials", ""};
          log_refusal(
              absl::StrCat("ZAP: CURVE request from ", address, " without a 32-byte key; refused"));
        } else {
          char z85[41];
          zmq_z85_encode(z85, frames[6].data<uint8_t>(), kCurveKeyBytes);
          // The user id is the key itself, not its identity: every request and subscription
          // is then authorized against the keyring as it is at that moment (a removed key loses
          // its open connections' power, a rotated identity its old groups), not as it was when
          // the connection was made.
          std::shared_ptr<const AuthorizedKey> entry = keyring_->FindKey(z85);
          if (entry != nullptr && domain == kZapListenDomain && entry->roles.listen.empty()) {
            reply = {"400", "key may not listen", ""};
            log_refusal(absl::StrCat("ZAP: refused CURVE key ", KeyFingerprint(z85), " (identity ",
                                     entry->identity, ") from ", address,
                                     " at a notification socket: it has no listen= role"));
          } else if (entry != nullptr) {
            reply = {"200", "OK", std::string(z85, kCurveKeyBytes * 5 / 4)};
          } else {
            reply = {"400", "key not authorized", ""};
            log_refusal(absl::StrCat("ZAP: refused CURVE key ", KeyFingerprint(z85), " from ",
                                     address, ": not in the authorized_keys file"));
          }
        }
      }
      const std::string fields[] = {std::string(kZapVersion), request_id,    reply.status_code,
                                    reply.status_text,        reply.user_id, ""};
      for (size_t i = 0; i < std::size(fields); ++i) {
        zmq::message_t frame(fields[i].data(), fields[i].size());
        socket.send(frame,
                    i + 1 < std::size(fields) ? zmq::send_flags::sndmore : zmq::send_flags::none);
      }
    }
  } catch (const zmq::error_t& e) {
    if (e.num() == ETERM) {
      // The context is ending: nothing more will connect, and it waits for this socket.
      socket.close();
      running_ = false;
      return;
    }
    ZRPC_LOG(kError, "ZAP handler stopped: %s; its sockets are no longer served", e.what());
  } catch (const std::exception& e) {
    ZRPC_LOG(kError, "ZAP handler stopped: %s; its sockets are no longer served", e.what());
  }
  // The socket stays bound (closed by the destructor): until then libzmq's requests wait
  // unanswered, so new handshakes stall and time out instead of being admitted, as they would be
  // with no handler bound at all. The owner sees running() false and stops serving.
  stopped_socket_ = std::move(socket);
  running_ = false;
}

}  // namespace zrpc::internal
