// SPDX-License-Identifier: Apache-2.0
#include "server/inbound.h"

#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "codec/json_internal.h"

namespace zrpc::internal {

Inbound ClassifyInbound(std::span<const std::string_view> frames, size_t max_message_size) {
  Inbound in;
  if (frames.size() < 2 || frames.size() > 3) {
    in.reason = absl::InvalidArgumentError(
        // The engine keeps at most 4 frames (routing id + 3): more reads as "more than 2".
        absl::StrFormat("a message of %s frames (zrpc messages have 2: header, body)",
                        frames.size() > 3 ? std::string("more than 2")
                                          : std::to_string(static_cast<int>(frames.size()) - 1)));
    return in;
  }
  absl::StatusOr<Header> header = ParseHeader(frames[1]);
  if (!header.ok()) {
    in.reason = absl::Status(header.status().code(), absl::StrCat("a message with a bad header: ",
                                                                  header.status().message()));
    return in;
  }
  in.header = *header;
  if (header->kind == FrameKind::kCancel) {
    in.action = Inbound::Action::kCancel;
    return in;
  }
  if (header->kind != FrameKind::kCast && header->kind != FrameKind::kCall &&
      header->kind != FrameKind::kMultiCall) {
    in.reason = absl::InvalidArgumentError(
        absl::StrCat("a \"", ToAbsl(FrameKindName(header->kind)), "\" frame sent to a service"));
    return in;
  }
  const std::string_view body = frames.size() == 3 ? frames[2] : std::string_view();
  const size_t total = frames[1].size() + body.size();
  if (total > max_message_size) {
    in.action = Inbound::Action::kRefuse;
    in.reason = absl::ResourceExhaustedError(absl::StrCat("message of ", total,
                                                          " bytes exceeds the service's limit of ",
                                                          max_message_size, " bytes"));
    return in;
  }
  in.action = Inbound::Action::kRequest;
  in.body = body;
  return in;
}

}  // namespace zrpc::internal
