// SPDX-License-Identifier: Apache-2.0
// zrpc/service.h — a service in a few lines: the seed's Service (start, the three standard
// consumers, an initialize hook, stop).
//
//   int main() {
//     zrpc::BlockShutdownSignals();  // first: zrpc's threads inherit the block
//     auto transport = zrpc::Transport::Create({.host = "node1"});
//     if (!transport.ok()) return 1;
//     auto service = zrpc::Service::Create(**transport, {.topic = "compute"},
//         {zrpc::Endpoint{.version = "1.3"}.Method("add", {"a", "b"},
//                                                   [](int64_t a, int64_t b) { return a + b; })});
//     if (!service.ok()) return 1;
//     return (*service)->Run();  // serves until SIGINT/SIGTERM, drains, returns the exit code
//   }
//
// Start() creates the consumers `topic` (round-robin among instances), `topic.host` (this
// instance) and a fanout consumer of `topic` (every instance), runs the initialize hook, then
// registers and serves (Connection::ConsumeInThread). Stop() unregisters and drains
// (Connection::Close). Thread-safe.
#ifndef ZRPC_SERVICE_H_
#define ZRPC_SERVICE_H_

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "zrpc/dispatcher.h"
#include "zrpc/serializer.h"
#include "zrpc/transport.h"

namespace zrpc {

class Service;

// Settings of a Service.
struct ServiceOptions {
  // The topic served (the seed's topic), e.g. "compute". Required.
  std::string topic;
  // This instance's host for the "topic.host" consumer; "" = the transport's host.
  std::string host;
  // The exchange of the consumers; "" = the transport's.
  std::string exchange;
  // Runs in Start() after the consumers are created and before they are registered (the seed's
  // initialize_service_hook): e.g. create more consumers through service.connection(). An error
  // stops Start(), which returns it. It runs on the thread calling Start() and must not call
  // Start() or Stop().
  std::function<absl::Status(Service& service)> initialize;
};

// The seed's Service. Created by Create; neither copyable nor movable. The transport (and a
// dispatcher passed by reference) must outlive it. Destroying it stops it.
class Service {
 public:
  // A service dispatching with `dispatcher`. INVALID_ARGUMENT for an empty or malformed topic.
  static absl::StatusOr<std::unique_ptr<Service>> Create(Transport& transport,
                                                         ServiceOptions options,
                                                         const Dispatcher& dispatcher);
  // A service with its own Dispatcher over `endpoints` (and `serializer`, null = none).
  // INVALID_ARGUMENT as above, or an endpoint that Dispatcher::Add refuses.
  static absl::StatusOr<std::unique_ptr<Service>> Create(
      Transport& transport, ServiceOptions options, std::vector<Endpoint> endpoints,
      std::shared_ptr<Serializer> serializer = nullptr);

  Service(const Service&) = delete;
  Service& operator=(const Service&) = delete;
  ~Service();  // Stop()

  // Creates the connection and the three consumers, runs the initialize hook, then registers
  // and serves. Blocks until serving. Errors: those of CreateConnection, CreateConsumer, the
  // hook and ConsumeInThread (UNAVAILABLE when the sockets cannot be bound or the matchmaker
  // refuses); FAILED_PRECONDITION when already started. After an error the service is stopped.
  absl::Status Start();
  // Unregisters, stops taking requests and waits up to the transport's close_timeout for
  // running handlers (Connection::Close). Idempotent; never hangs. The transport stays open.
  void Stop();
  // A main() in one call: Start(), then wait for SIGINT or SIGTERM (WaitForShutdownSignal),
  // then Stop(). Returns the process exit code: 0 after a clean stop, 1 when Start() failed
  // (the error is logged, see zrpc/log.h). Call BlockShutdownSignals() before creating the
  // transport so that no zrpc thread takes the signal. Blocks.
  int Run();

  const std::string& topic() const { return options_.topic; }
  // The host of the "topic.host" consumer.
  const std::string& host() const { return host_; }
  const Dispatcher& dispatcher() const { return *dispatcher_; }
  Transport& transport() const { return transport_; }
  // The connection while started (for the initialize hook: more consumers), else nullptr.
  Connection* connection() const;

 private:
  Service(Transport& transport, ServiceOptions options, const Dispatcher* dispatcher,
          std::unique_ptr<Dispatcher> owned);

  Transport& transport_;
  ServiceOptions options_;
  std::string host_;
  std::unique_ptr<Dispatcher> owned_dispatcher_;
  const Dispatcher* dispatcher_;
  // Held through Start and Stop (so they never interleave); the hook may call connection().
  absl::Mutex lifecycle_mu_;
  mutable absl::Mutex mu_;
  std::unique_ptr<Connection> connection_ ABSL_GUARDED_BY(mu_);
};

}  // namespace zrpc

#endif  // ZRPC_SERVICE_H_
