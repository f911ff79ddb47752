// SPDX-License-Identifier: Apache-2.0
#include "zrpc/service.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "zrpc/errors.h"
#include "zrpc/log.h"
#include "zrpc/proxy.h"

namespace zrpc {

absl::StatusOr<std::unique_ptr<Service>> Service::Create(Transport& transport,
                                                         ServiceOptions options,
                                                         const Dispatcher& dispatcher) {
  if (options.topic.empty()) {
    return absl::InvalidArgumentError("Service: ServiceOptions.topic is empty (name the topic to serve, e.g. \"compute\")");
  }
  if (absl::Status s = ValidateName("topic", options.topic); !s.ok()) return s;
  if (!options.host.empty()) {
    if (absl::Status s = ValidateName("host", options.host); !s.ok()) return s;
  }
  return std::unique_ptr<Service>(new Service(transport, std::move(options), &dispatcher, nullptr));
}

absl::StatusOr<std::unique_ptr<Service>> Service::Create(Transport& transport,
                                                         ServiceOptions options,
                                                         std::vector<Endpoint> endpoints,
                                                         std::shared_ptr<Serializer> serializer) {
  auto dispatcher = std::make_unique<Dispatcher>(std::move(serializer));
  for (Endpoint& e : endpoints) {
    if (absl::Status s = dispatcher->Add(std::move(e)); !s.ok()) return s;
  }
  absl::StatusOr<std::unique_ptr<Service>> service =
      Create(transport, std::move(options), *dispatcher);
  if (service.ok()) (*service)->owned_dispatcher_ = std::move(dispatcher);
  return service;
}

Service::Service(Transport& transport, ServiceOptions options, const Dispatcher* dispatcher,
                 std::unique_ptr<Dispatcher> owned)
    : transport_(transport),
      options_(std::move(options)),
      host_(options_.host.empty() ? transport.options().host : options_.host),
      owned_dispatcher_(std::move(owned)),
      dispatcher_(dispatcher) {}

Service::~Service() { Stop(); }

Connection* Service::connection() const {
  absl::MutexLock lock(&mu_);
  return connection_.get();
}

absl::Status Service::Start() {
  absl::MutexLock lifecycle(&lifecycle_mu_);
  {
    absl::MutexLock lock(&mu_);
    if (connection_) {
      return absl::FailedPreconditionError(
          absl::StrCat("service \"", options_.topic, "\" is already started (Stop() it first)"));
    }
  }
  absl::StatusOr<std::unique_ptr<Connection>> conn = transport_.CreateConnection();
  if (!conn.ok()) return conn.status();
  Connection* c = conn->get();
  {
    absl::MutexLock lock(&mu_);
    connection_ = *std::move(conn);
  }
  const ConsumerOptions plain{.exchange = options_.exchange};
  const ConsumerOptions fanout{.fanout = true, .exchange = options_.exchange};
  absl::Status s = c->CreateConsumer(options_.topic, *dispatcher_, plain);
  if (s.ok()) s = c->CreateConsumer(QueueGetFor(options_.topic, host_), *dispatcher_, plain);
  if (s.ok()) s = c->CreateConsumer(options_.topic, *dispatcher_, fanout);
  if (s.ok() && options_.initialize) s = options_.initialize(*this);
  if (s.ok()) s = c->ConsumeInThread();
  if (!s.ok()) {
    std::unique_ptr<Connection> failed;
    {
      absl::MutexLock lock(&mu_);
      failed = std::move(connection_);
    }
    failed->Close();
  }
  return s;
}

void Service::Stop() {
  absl::MutexLock lifecycle(&lifecycle_mu_);
  std::unique_ptr<Connection> conn;
  {
    absl::MutexLock lock(&mu_);
    conn = std::move(connection_);
  }
  if (conn) conn->Close();  // the seed ignores errors here; Close reports none
}

int Service::Run() {
  if (absl::Status s = Start(); !s.ok()) {
    Log(LogLevel::kError,
        absl::StrCat("cannot start service \"", options_.topic, "\": ", FormatError(s)));
    return 1;
  }
  WaitForShutdownSignal();
  Stop();
  return 0;
}

}  // namespace zrpc
