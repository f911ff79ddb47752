// SPDX-License-Identifier: Apache-2.0
#include "matchmaker/sidecar/protocol.h"

#include <unistd.h>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "matchmaker/process.h"
#include "matchmaker/registration_json.h"
#include "src/codec/json_internal.h"

namespace zrpc::internal::sidecar {

bool IsSidecarUrl(std::string_view url) {
  return absl::StartsWith(ToAbsl(url), "ipc://") || absl::StartsWith(ToAbsl(url), "tcp://");
}

std::string RequestHeader(std::string_view op, uint64_t id) {
  return absl::StrCat(ToAbsl(kProtocol), " ", ToAbsl(op), " ", id);
}

std::optional<RequestLine> ParseRequestHeader(std::string_view header) {
  const size_t s1 = header.find(' ');
  const size_t s2 = s1 == std::string_view::npos ? s1 : header.find(' ', s1 + 1);
  if (s2 == std::string_view::npos || header.substr(0, s1) != kProtocol) return std::nullopt;
  return RequestLine{std::string(header.substr(s1 + 1, s2 - s1 - 1)),
                     std::string(header.substr(s2 + 1))};
}

std::string ReplyHeader(std::string_view id) {
  return absl::StrCat(ToAbsl(kProtocol), " reply ", ToAbsl(id));
}

std::string ChangeNotice(std::string_view key) {
  return absl::StrCat(ToAbsl(kProtocol), " change ", ToAbsl(key));
}

std::string EncodeReply(const absl::StatusOr<Value>& result, std::string_view boot) {
  Object reply;
  if (result.ok()) {
    reply.Set("ok", true);
    reply.Set("result", *result);
  } else {
    reply.Set("ok", false);
    reply.Set("error", Object{{"code", static_cast<int>(result.status().code())},
                              {"message", std::string(result.status().message())}});
  }
  reply.Set("boot", std::string(boot));
  absl::StatusOr<std::string> text = ToJson(Value(std::move(reply)));
  if (text.ok()) return *std::move(text);
  return ToJson(
             Value(Object{{"ok", false},
                          {"error", Object{{"code", static_cast<int>(absl::StatusCode::kInternal)},
                                           {"message", std::string(text.status().message())}}},
                          {"boot", std::string(boot)}}))
      .value_or("{\"ok\":false}");
}

Reply DecodeReply(std::string_view body) {
  absl::StatusOr<Value> reply = ParseJson(body);
  if (!reply.ok()) return {reply.status(), ""};
  const Value* boot = reply->Find("boot");
  Reply out{Value(), boot && boot->is_string() ? boot->AsString() : ""};
  const Value* ok = reply->Find("ok");
  if (ok && ok->is_bool() && ok->AsBool()) {
    const Value* result = reply->Find("result");
    out.result = result ? *result : Value(Object{});
    return out;
  }
  const Value* err = reply->Find("error");
  const Value* code = err ? err->Find("code") : nullptr;
  const Value* message = err ? err->Find("message") : nullptr;
  // Only a canonical error code (1..16) is taken: 0 would make an error reply an OK status (which
  // StatusOr refuses), and other numbers are codes no caller knows.
  const int64_t n = code && code->is_int() ? code->AsInt() : 0;
  const absl::StatusCode status_code =
      n >= static_cast<int64_t>(absl::StatusCode::kCancelled) &&
              n <= static_cast<int64_t>(absl::StatusCode::kUnauthenticated)
          ? static_cast<absl::StatusCode>(n)
          : absl::StatusCode::kInternal;
  out.result = absl::Status(
      status_code, absl::StrCat("matchmaker sidecar: ",
                                message && message->is_string() ? message->AsString() : "error"));
  return out;
}

Owner Self(std::string client) {
  const pid_t pid = getpid();
  return Owner{.client = std::move(client), .pid = pid, .start = ProcessStartTime(pid)};
}

void AddOwner(const Owner& owner, Object* body) {
  body->Set("client", owner.client);
  body->Set("pid", static_cast<int64_t>(owner.pid));
  body->Set("start", static_cast<int64_t>(owner.start));
}

Owner OwnerOf(const Value& body) {
  Owner owner;
  const Value* client = body.Find("client");
  const Value* pid = body.Find("pid");
  const Value* start = body.Find("start");
  if (client && client->is_string()) owner.client = client->AsString();
  if (pid && pid->is_int() && pid->AsInt() > 0 && pid->AsInt() <= INT32_MAX) {
    owner.pid = static_cast<pid_t>(pid->AsInt());
  }
  if (start && start->is_int() && start->AsInt() > 0)
    owner.start = static_cast<uint64_t>(start->AsInt());
  return owner;
}

Value RegistrationsToValue(const std::vector<Registration>& regs) {
  Array out;
  out.reserve(regs.size());
  for (const Registration& r : regs) out.push_back(RegistrationToValue(r));
  return Value(std::move(out));
}

absl::StatusOr<std::vector<Registration>> RegistrationsFromValue(const Value* array) {
  if (array == nullptr || !array->is_array()) {
    return absl::InvalidArgumentError("\"registrations\" must be an array");
  }
  std::vector<Registration> out;
  out.reserve(array->AsArray().size());
  for (const Value& v : array->AsArray()) {
    absl::StatusOr<Registration> r = RegistrationFromValue(v);
    if (!r.ok()) return r.status();
    out.push_back(*std::move(r));
  }
  return out;
}

}  // namespace zrpc::internal::sidecar
