// SPDX-License-Identifier: Apache-2.0
// What the server engine does with one message from its ROUTER, decided from its frames alone
// (frame count, header, size), before any state is looked at. Pure: no sockets, no state, so the
// request fuzz target runs exactly the engine's checks.
#ifndef ZRPC_SRC_SERVER_INBOUND_H_
#define ZRPC_SRC_SERVER_INBOUND_H_

#include <cstddef>
#include <span>
#include <string_view>

#include "absl/status/status.h"
#include "codec/wire.h"

namespace zrpc::internal {

struct Inbound {
  enum class Action {
    kDrop,     // not a request: log `reason` as a warning ("dropping ..."), send nothing
    kCancel,   // cancel the call `header.msg_id` of this client, if it has one running
    kRefuse,   // too big: a call gets `reason` as its error; a cast is dropped with it logged
    kRequest,  // a request (cast, call or multicall) for HandleRequest with `body`
  };
  Action action = Action::kDrop;
  Header header;          // valid unless kDrop; views into the header frame
  std::string_view body;  // kRequest: the body frame ("" when the message had none)
  absl::Status reason;    // kDrop, kRefuse: what is wrong
};

// `frames` as the ROUTER received them: the routing id, the header, the optional body (at most
// 4 are looked at). `max_message_size` bounds header plus body.
Inbound ClassifyInbound(std::span<const std::string_view> frames, size_t max_message_size);

}  // namespace zrpc::internal

#endif  // ZRPC_SRC_SERVER_INBOUND_H_
