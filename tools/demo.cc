// The zrpc demo (README's first command). This version shows the message core in one process:
// a call is encoded as it travels, dispatched to a handler, and its reply (or remote error)
// decoded on the way back.
#include <iostream>
#include <stdexcept>

#include "zrpc/zrpc.h"

namespace {

// What the network would do: carry bytes from client to server and back.
absl::StatusOr<zrpc::Value> RoundTrip(const zrpc::Dispatcher& server, const zrpc::RpcProxy& proxy,
                                      const zrpc::Context& ctx, zrpc::Message msg,
                                      std::string_view version = {}) {
  absl::StatusOr<zrpc::Message> ready = proxy.Prepare(ctx, std::move(msg), version);
  if (!ready.ok()) return ready.status();
  absl::StatusOr<std::string> request = zrpc::EncodeMessage(*ready);
  if (!request.ok()) return request.status();
  std::cout << "  -> " << *request << "\n";

  // Server side.
  absl::StatusOr<zrpc::Message> received = zrpc::DecodeMessage(*request);
  zrpc::Reply reply{.ending = true};
  if (received.ok()) {
    zrpc::CallContext call;
    absl::Status s = server.Dispatch(call, *received, [&](zrpc::Value v) {
      reply.result = std::move(v);
      return true;
    });
    if (!s.ok()) reply.failure = zrpc::SerializeRemoteException(s);
  } else {
    reply.failure = zrpc::SerializeRemoteException(received.status());
  }
  absl::StatusOr<std::string> response = zrpc::EncodeReply(reply);
  if (!response.ok()) return response.status();
  std::cout << "  <- " << *response << "\n";

  // Client side again.
  absl::StatusOr<zrpc::Reply> back = zrpc::DecodeReply(*response);
  if (!back.ok()) return back.status();
  if (back->failure) return zrpc::DeserializeRemoteException(*back->failure);
  return back->result;
}

void Show(const char* what, const absl::StatusOr<zrpc::Value>& r) {
  std::cout << what << ": ";
  if (r.ok()) {
    std::cout << zrpc::ToJson(*r).value_or("?") << "\n\n";
  } else {
    std::cout << "error " << absl::StatusCodeToString(r.status().code()) << " ["
              << (zrpc::GetErrorKind(r.status())
                      ? zrpc::ErrorKindName(*zrpc::GetErrorKind(r.status()))
                      : "plain")
              << (zrpc::IsRemote(r.status()) ? ", remote" : "") << "]: " << r.status().message()
              << "\n\n";
  }
}

}  // namespace

int main() {
  zrpc::Dispatcher server;
  absl::Status added = server.Add(
      zrpc::Endpoint{.version = "1.3"}
          .Method("add", {"a", "b"}, [](int64_t a, int64_t b) { return a + b; })
          .Method("fail", [](zrpc::CallContext&, const zrpc::Object&) -> absl::StatusOr<zrpc::Value> {
            throw std::runtime_error("disk on fire");
          }));
  if (!added.ok()) {
    std::cerr << added << "\n";
    return 1;
  }
  zrpc::RpcProxy compute("compute", "1.0", {.version_cap = "1.3"});
  zrpc::Context ctx(zrpc::Object{{"user", "alice"}, {"request_id", "req-1"}});

  Show("add(2, 40)", RoundTrip(server, compute, ctx, compute.MakeMsg("add", {{"a", 2}, {"b", 40}})));
  Show("fail()", RoundTrip(server, compute, ctx, compute.MakeMsg("fail")));
  Show("add at version 1.4 (cap 1.3)", RoundTrip(server, compute, ctx, compute.MakeMsg("add"), "1.4"));
  Show("add with a string", RoundTrip(server, compute, ctx,
                                      compute.MakeMsg("add", {{"a", "2"}, {"b", 1}})));
  Show("no such method", RoundTrip(server, compute, ctx, compute.MakeMsg("sub")));
  return 0;
}
