// SPDX-License-Identifier: Apache-2.0
// zrpc error kinds. The kind and fields ride in one status payload as a small JSON object, so
// they survive copies of the status and can be read back by helpers.
#include "zrpc/errors.h"

#include <array>
#include <utility>

#include "absl/strings/cord.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/match.h"
#include "base/escape.h"
#include "codec/json_internal.h"
#include "zrpc/value.h"

namespace zrpc {
namespace {

using internal::BoundedEcho;
using internal::ToAbsl;

constexpr absl::string_view kPayloadUrl = "zrpc.dev/zrpc.Error";

struct KindInfo {
  ErrorKind kind;
  std::string_view name;
  absl::StatusCode code;
};

constexpr std::array<KindInfo, 13> kKinds = {{
    {ErrorKind::kRpcException, "RPCException", absl::StatusCode::kInternal},
    {ErrorKind::kRemoteError, "RemoteError", absl::StatusCode::kUnknown},
    {ErrorKind::kTimeout, "Timeout", absl::StatusCode::kDeadlineExceeded},
    {ErrorKind::kNoConsumer, "NoConsumer", absl::StatusCode::kNotFound},
    {ErrorKind::kPeerLost, "PeerLost", absl::StatusCode::kUnavailable},
    {ErrorKind::kNoSuchMethod, "NoSuchMethod", absl::StatusCode::kUnimplemented},
    {ErrorKind::kUnsupportedRpcVersion, "UnsupportedRpcVersion",
     absl::StatusCode::kFailedPrecondition},
    {ErrorKind::kUnsupportedRpcEnvelopeVersion, "UnsupportedRpcEnvelopeVersion",
     absl::StatusCode::kFailedPrecondition},
    {ErrorKind::kRpcVersionCapError, "RpcVersionCapError", absl::StatusCode::kFailedPrecondition},
    {ErrorKind::kDuplicateMessage, "DuplicateMessageError", absl::StatusCode::kAlreadyExists},
    {ErrorKind::kInvalidRpcConnectionReuse, "InvalidRPCConnectionReuse",
     absl::StatusCode::kFailedPrecondition},
    {ErrorKind::kTransportClosed, "TransportClosed", absl::StatusCode::kCancelled},
    {ErrorKind::kNotAuthorized, "NotAuthorized", absl::StatusCode::kPermissionDenied},
}};

const KindInfo& Info(ErrorKind kind) { return kKinds[static_cast<size_t>(kind)]; }

// What the payload holds.
struct Payload {
  std::optional<ErrorKind> kind;
  bool remote = false;
  bool expected = false;
  std::string class_name;  // original class, for failures that did not start as a zrpc kind
  std::string module;
  Object fields;
  // The failure's args and kwargs as received (or set by WithErrorArgs).
  Array args;
  Object kwargs;
};

Payload ReadPayload(const absl::Status& status) {
  Payload p;
  auto cord = status.GetPayload(kPayloadUrl);
  if (!cord) return p;
  absl::StatusOr<Value> v = ParseJson(std::string(*cord));
  if (!v.ok() || !v->is_object()) return p;
  if (const Value* k = v->Find("kind"); k && k->is_string()) p.kind = ErrorKindFromName(k->AsString());
  if (const Value* r = v->Find("remote"); r && r->is_bool()) p.remote = r->AsBool();
  if (const Value* e = v->Find("expected"); e && e->is_bool()) p.expected = e->AsBool();
  if (const Value* c = v->Find("class"); c && c->is_string()) p.class_name = c->AsString();
  if (const Value* m = v->Find("module"); m && m->is_string()) p.module = m->AsString();
  if (const Value* f = v->Find("fields"); f && f->is_object()) p.fields = f->AsObject();
  if (const Value* a = v->Find("args"); a && a->is_array()) p.args = a->AsArray();
  if (const Value* k = v->Find("kwargs"); k && k->is_object()) p.kwargs = k->AsObject();
  return p;
}

void WritePayload(absl::Status& status, const Payload& p) {
  Object o;
  if (p.kind) o.Set("kind", std::string(ErrorKindName(*p.kind)));
  if (p.remote) o.Set("remote", true);
  if (p.expected) o.Set("expected", true);
  if (!p.class_name.empty()) o.Set("class", p.class_name);
  if (!p.module.empty()) o.Set("module", p.module);
  if (!p.fields.empty()) o.Set("fields", p.fields);
  if (!p.args.empty()) o.Set("args", p.args);
  if (!p.kwargs.empty()) o.Set("kwargs", p.kwargs);
  absl::StatusOr<std::string> text = ToJson(Value(std::move(o)));
  if (text.ok()) status.SetPayload(kPayloadUrl, absl::Cord(*text));
}

// Makes a status of `kind` with `message` and `fields` (all strings; invalid UTF-8 is replaced so
// the payload always encodes).
absl::Status Make(ErrorKind kind, std::string_view message,
                  std::initializer_list<std::pair<std::string_view, std::string_view>> fields,
                  std::optional<absl::StatusCode> code = std::nullopt) {
  absl::Status status(code.value_or(Info(kind).code), ToAbsl(message));
  Payload p;
  p.kind = kind;
  for (const auto& [k, v] : fields) p.fields.Set(std::string(k), std::string(v));
  WritePayload(status, p);
  return status;
}

std::string_view OrUnknown(std::string_view s) { return s.empty() ? "<unknown>" : s; }

// The seed's cell-hop rule: a class and module that both end in "_Remote" lose the suffix.
void StripRemoteSuffix(std::string& class_name, std::string& module) {
  constexpr absl::string_view kSuffix = "_Remote";
  if (absl::EndsWith(class_name, kSuffix) && absl::EndsWith(module, kSuffix)) {
    class_name.resize(class_name.size() - kSuffix.size());
    module.resize(module.size() - kSuffix.size());
  }
}

std::string RemoteErrorText(std::string_view exc_type, std::string_view value,
                            std::string_view traceback) {
  // The seed's text, without its stray "\n." when there is no traceback.
  if (traceback.empty()) return absl::StrCat("Remote error: ", ToAbsl(exc_type), " ", ToAbsl(value));
  return absl::StrCat("Remote error: ", ToAbsl(exc_type), " ", ToAbsl(value), "\n",
                      ToAbsl(traceback), ".");
}

}  // namespace

std::string_view ErrorKindName(ErrorKind kind) { return Info(kind).name; }

std::optional<ErrorKind> ErrorKindFromName(std::string_view name) {
  for (const KindInfo& k : kKinds) {
    if (k.name == name) return k.kind;
  }
  return std::nullopt;
}

absl::Status RpcExceptionError(std::string_view message) {
  return Make(ErrorKind::kRpcException,
              message.empty() ? "An unknown RPC related exception occurred." : message, {});
}

absl::Status RemoteError(std::string_view exc_type, std::string_view value,
                         std::string_view traceback, absl::StatusCode code) {
  if (code == absl::StatusCode::kOk) code = absl::StatusCode::kUnknown;
  return Make(ErrorKind::kRemoteError, RemoteErrorText(exc_type, value, traceback),
              {{"exc_type", exc_type}, {"value", value}, {"traceback", traceback}}, code);
}

// Every text below may quote what a peer sent (a method, a version, an id): at most kMaxEchoBytes
// of each, in the message and in the fields alike (BoundedEcho).
absl::Status TimeoutError(std::string_view topic_in, std::string_view method_in,
                          std::string_view info) {
  const std::string topic = BoundedEcho(topic_in), method = BoundedEcho(method_in);
  return Make(ErrorKind::kTimeout,
              absl::StrCat("Timeout while waiting on RPC response - topic: \"",
                           ToAbsl(OrUnknown(topic)), "\", RPC method: \"", ToAbsl(OrUnknown(method)),
                           "\" info: \"", ToAbsl(OrUnknown(info)), "\""),
              {{"topic", topic}, {"method", method}, {"info", info}});
}

absl::Status NoConsumerError(std::string_view topic_in, std::string_view detail) {
  const std::string topic = BoundedEcho(topic_in);
  std::string text = absl::StrCat("No consumer registered for topic \"", ToAbsl(topic), "\"");
  if (!detail.empty()) absl::StrAppend(&text, " (", ToAbsl(detail), ")");
  return Make(ErrorKind::kNoConsumer, text, {{"topic", topic}});
}

absl::Status PeerLostError(std::string_view topic, std::string_view host,
                           std::string_view detail) {
  return Make(ErrorKind::kPeerLost,
              absl::StrCat("Lost contact with \"", ToAbsl(host),
                           "\" while waiting on RPC response for topic \"", ToAbsl(topic), "\"",
                           detail.empty() ? "" : " (", ToAbsl(detail), detail.empty() ? "" : ")"),
              {{"topic", topic}, {"host", host}});
}

absl::Status NoSuchMethodError(std::string_view method_in) {
  const std::string method = BoundedEcho(method_in);
  return Make(ErrorKind::kNoSuchMethod,
              absl::StrCat("Endpoint does not support RPC method ", ToAbsl(method)),
              {{"method", method}});
}

absl::Status UnsupportedRpcVersionError(std::string_view version_in, std::string_view ns_in,
                                        std::string_view served) {
  const std::string version = BoundedEcho(version_in), ns = BoundedEcho(ns_in);
  std::string text = absl::StrCat("Specified RPC version, ", ToAbsl(version),
                                  ", not supported by this endpoint.");
  if (served.empty()) return Make(ErrorKind::kUnsupportedRpcVersion, text, {{"version", version}});
  absl::StrAppend(&text, " This service serves namespace \"", ToAbsl(ns), "\" at ", ToAbsl(served),
                  ".");
  return Make(ErrorKind::kUnsupportedRpcVersion, text,
              {{"version", version}, {"namespace", ns}, {"served", served}});
}

absl::Status NamespaceNotServedError(std::string_view ns_in, std::string_view method_in,
                                     std::string_view served) {
  const std::string ns = BoundedEcho(ns_in), method = BoundedEcho(method_in);
  return Make(ErrorKind::kNoSuchMethod,
              absl::StrCat("Endpoint does not support RPC method ", ToAbsl(method),
                           ": namespace \"", ToAbsl(ns), "\" is not served here (it serves ",
                           served.empty() ? "none" : ToAbsl(served), ")"),
              {{"method", method}, {"namespace", ns}, {"served", served}});
}

absl::Status UnsupportedRpcEnvelopeVersionError(std::string_view version_in) {
  const std::string version = BoundedEcho(version_in);
  return Make(ErrorKind::kUnsupportedRpcEnvelopeVersion,
              absl::StrCat("Specified RPC envelope version, ", ToAbsl(version),
                           ", not supported by this endpoint."),
              {{"version", version}});
}

absl::Status RpcVersionCapError(std::string_view version_cap_in) {
  const std::string version_cap = BoundedEcho(version_cap_in);
  return Make(ErrorKind::kRpcVersionCapError,
              absl::StrCat("Specified RPC version cap, ", ToAbsl(version_cap), ", is too low"),
              {{"version_cap", version_cap}});
}

absl::Status DuplicateMessageError(std::string_view msg_id_in) {
  const std::string msg_id = BoundedEcho(msg_id_in);
  return Make(ErrorKind::kDuplicateMessage,
              absl::StrCat("Found duplicate message(", ToAbsl(msg_id), "). Skipping it."),
              {{"msg_id", msg_id}});
}

absl::Status InvalidRpcConnectionReuseError() {
  return Make(ErrorKind::kInvalidRpcConnectionReuse, "Invalid reuse of an RPC connection.", {});
}

absl::Status TransportClosedError() {
  return Make(ErrorKind::kTransportClosed, "Transport closed", {});
}

absl::Status NotAuthorizedError(std::string_view identity_in, std::string_view method_in) {
  const std::string identity = BoundedEcho(identity_in), method = BoundedEcho(method_in);
  return Make(ErrorKind::kNotAuthorized,
              absl::StrCat(identity.empty() ? std::string("An unauthenticated caller")
                                            : absl::StrCat("Caller \"", ToAbsl(identity), "\""),
                           " is not authorized to call ", ToAbsl(method)),
              {{"identity", identity}, {"method", method}});
}

absl::Status ExceptionError(std::string_view module, std::string_view class_name,
                            std::string_view what) {
  absl::Status status(absl::StatusCode::kUnknown,
                      absl::StrCat(ToAbsl(class_name), ": ", ToAbsl(what)));
  Payload p;
  p.class_name = std::string(class_name);
  p.module = std::string(module);
  p.fields.Set("value", std::string(what));
  WritePayload(status, p);
  return status;
}

std::optional<ErrorKind> GetErrorKind(const absl::Status& status) {
  if (status.ok()) return std::nullopt;
  return ReadPayload(status).kind;
}

std::string GetErrorField(const absl::Status& status, std::string_view field) {
  Payload p = ReadPayload(status);
  const Value* v = p.fields.Find(field);
  return v && v->is_string() ? v->AsString() : std::string();
}

bool IsRemote(const absl::Status& status) { return ReadPayload(status).remote; }

absl::Status MarkExpected(absl::Status status) {
  if (status.ok()) return status;
  Payload p = ReadPayload(status);
  p.expected = true;
  WritePayload(status, p);
  return status;
}

bool IsExpected(const absl::Status& status) { return ReadPayload(status).expected; }

std::string SerializeRemoteException(const absl::Status& status) {
  Payload p = ReadPayload(status);
  std::string class_name, module, message(status.message());
  Array tb;
  // A failure received from a remote is sent on with the args and kwargs it came with.
  Array args = p.args;
  Object kwargs = p.kwargs;
  if (p.kind == ErrorKind::kRemoteError) {
    // A remote error sent on again keeps the class it started with.
    const Value* exc_type = p.fields.Find("exc_type");
    const Value* value = p.fields.Find("value");
    const Value* traceback = p.fields.Find("traceback");
    class_name = exc_type && exc_type->is_string() ? exc_type->AsString() : "RemoteError";
    module = p.module;
    if (value && value->is_string()) message = value->AsString();
    if (traceback && traceback->is_string() && !traceback->AsString().empty()) {
      for (absl::string_view line : absl::StrSplit(traceback->AsString(), '\n')) {
        tb.emplace_back(std::string_view(line.data(), line.size()));
      }
    }
  } else if (p.kind) {
    class_name = std::string(ErrorKindName(*p.kind));
    module = "zrpc";
    for (const auto& [key, value] : p.fields) kwargs.Set(key, value);
  } else if (!p.class_name.empty()) {
    class_name = p.class_name;
    module = p.module;
    if (const Value* value = p.fields.Find("value"); value && value->is_string()) {
      message = value->AsString();
    }
  } else {
    class_name = absl::StatusCodeToString(status.code());
    module = "absl";
  }
  if (status.code() != absl::StatusCode::kUnknown) {
    kwargs.Set("code", static_cast<int>(status.code()));
  }
  StripRemoteSuffix(class_name, module);
  Object failure{{"class", class_name}, {"module", module}, {"message", message},
                 {"tb", std::move(tb)}, {"args", std::move(args)}, {"kwargs", std::move(kwargs)}};
  absl::StatusOr<std::string> text = ToJson(Value(std::move(failure)));
  if (text.ok()) return *std::move(text);
  // Only invalid UTF-8 in the texts can get here: send a plain description instead.
  return R"({"class":"RPCException","module":"zrpc","message":"remote failure text was not valid UTF-8","tb":[],"args":[],"kwargs":{}})";
}

absl::Status DeserializeRemoteException(std::string_view data) {
  absl::StatusOr<Value> parsed = ParseJson(data);
  if (!parsed.ok()) {
    return RpcExceptionError(
        absl::StrCat("malformed remote failure: ", parsed.status().message()));
  }
  const Value* cls = parsed->Find("class");
  const Value* msg = parsed->Find("message");
  if (!cls || !cls->is_string() || (msg && !msg->is_string())) {
    return RpcExceptionError(
        "malformed remote failure: needs a string \"class\" (and \"message\" a string if given)");
  }
  // The seed took a failure without "message" as an empty value.
  static const Value kNoMessage{""};
  if (msg == nullptr) msg = &kNoMessage;
  std::string class_name = cls->AsString();
  std::string module;
  if (const Value* m = parsed->Find("module"); m && m->is_string()) module = m->AsString();
  StripRemoteSuffix(class_name, module);

  std::vector<std::string> tb_lines;
  if (const Value* tb = parsed->Find("tb"); tb && tb->is_array()) {
    for (const Value& line : tb->AsArray()) {
      if (line.is_string()) tb_lines.push_back(line.AsString());
    }
  }
  const std::string traceback = absl::StrJoin(tb_lines, "\n");
  Object kwargs;
  if (const Value* k = parsed->Find("kwargs"); k && k->is_object()) kwargs = k->AsObject();
  Array args;
  if (const Value* a = parsed->Find("args"); a && a->is_array()) args = a->AsArray();
  std::optional<absl::StatusCode> code;
  if (const Value* c = kwargs.Find("code"); c && c->is_int() && c->AsInt() > 0 && c->AsInt() <= 16) {
    code = static_cast<absl::StatusCode>(c->AsInt());
  }

  absl::Status status;
  Payload p;
  std::optional<ErrorKind> kind = module == "zrpc" ? ErrorKindFromName(class_name) : std::nullopt;
  if (kind && *kind != ErrorKind::kRemoteError) {
    // One of our kinds: same kind, same text, same fields.
    status = absl::Status(code.value_or(Info(*kind).code), msg->AsString());
    p.kind = kind;
    for (const auto& [key, value] : kwargs) {
      if (value.is_string()) p.fields.Set(key, value);
    }
  } else {
    const std::string& value = msg->AsString();
    status = absl::Status(code.value_or(absl::StatusCode::kUnknown),
                          RemoteErrorText(class_name, value, traceback));
    p.kind = ErrorKind::kRemoteError;
    p.module = module;
    p.fields = Object{{"exc_type", class_name}, {"value", value}, {"traceback", traceback}};
  }
  p.remote = true;
  p.args = std::move(args);
  p.kwargs = std::move(kwargs);
  WritePayload(status, p);
  return status;
}

Value RemoteErrorArgs(const absl::Status& status) { return Value(ReadPayload(status).args); }

Value RemoteErrorKwargs(const absl::Status& status) { return Value(ReadPayload(status).kwargs); }

absl::Status WithErrorArgs(absl::Status status, Array args, Object kwargs) {
  if (status.ok()) return status;
  Payload p = ReadPayload(status);
  p.args = std::move(args);
  p.kwargs = std::move(kwargs);
  WritePayload(status, p);
  return status;
}

std::string FormatError(const absl::Status& status) {
  if (status.ok()) return "OK";
  Payload p = ReadPayload(status);
  auto field = [&](std::string_view name) {
    const Value* v = p.fields.Find(name);
    return v != nullptr ? v->AsString() : std::string();
  };
  if (p.kind == ErrorKind::kRemoteError) {
    std::string text = field("exc_type");
    if (text.empty()) text = "RemoteError";
    if (std::string value = field("value"); !value.empty()) absl::StrAppend(&text, ": ", value);
    if (std::string tb = field("traceback"); !tb.empty()) absl::StrAppend(&text, "\n", tb);
    return text;
  }
  if (p.kind) return absl::StrCat(ToAbsl(ErrorKindName(*p.kind)), ": ", status.message());
  if (!p.class_name.empty()) return absl::StrCat(p.class_name, ": ", field("value"));
  return absl::StrCat(absl::StatusCodeToString(status.code()), ": ", status.message());
}

}  // namespace zrpc
