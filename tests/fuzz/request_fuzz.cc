// SPDX-License-Identifier: Apache-2.0
// Fuzz target: the whole request path of a service, in-process and without sockets. The input
// is the frames after the routing id, split at NUL bytes ("HEADER\0BODY"). It runs what the
// server engine runs for one ROUTER message: ClassifyInbound (frame count, header, size), the
// consumer lookup, DecodeMessage, the duplicate window, introspection (_zrpc), the deadline
// check, Dispatcher::Resolve and Run on registered handlers (typed, raw, streaming, failing), and
// the encoding of every reply the engine would send. Invariants: every call gets an encodable
// answer (a failed StatusOr is never what the engine sends), decoded messages encode and decode
// to the same message, errors are statuses.
#include <memory>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "codec/wire.h"
#include "fuzz/fuzz_targets.h"
#include "server/admission.h"
#include "server/consumer.h"
#include "server/inbound.h"
#include "server/introspection.h"
#include "zrpc/dispatcher.h"
#include "zrpc/errors.h"
#include "zrpc/message.h"

namespace zrpc::fuzz {
namespace {

using internal::Consumer;
using internal::FrameKind;
using internal::Inbound;

// Small, so that the fuzzer reaches the refusal of oversized messages.
constexpr size_t kMaxMessageSize = 8192;

std::unique_ptr<Dispatcher> MakeDispatcher() {
  auto d = std::make_unique<Dispatcher>();
  Endpoint v1{.version = "1.3"};
  v1.Method("echo",
            [](CallContext&, const Object& args) -> absl::StatusOr<Value> { return Value(args); })
      .Method("add", {"a", "b"},
              [](int64_t a, int64_t b) -> absl::StatusOr<int64_t> {
                int64_t sum;
                if (__builtin_add_overflow(a, b, &sum)) {
                  return absl::OutOfRangeError("a + b overflows a 64-bit integer");
                }
                return sum;
              })
      .Method("concat", {"parts", "sep"},
              [](std::vector<std::string> parts, std::optional<std::string> sep) {
                std::string out;
                for (size_t i = 0; i < parts.size() && i < 64; ++i) {
                  if (i > 0) out += sep.value_or(",");
                  out += parts[i];
                }
                return out;
              })
      .Method("scale", {"x", "factor", "flag"},
              [](double x, double factor, bool flag) { return flag ? x * factor : x; })
      .Method("whole", {"value", "object", "array"},
              [](Value value, Object object, Array array) {
                return Value(Object{{"value", std::move(value)},
                                    {"n", static_cast<int64_t>(object.size() + array.size())}});
              })
      .Method("fail", {"message"},
              [](std::string message) -> absl::Status {
                return absl::FailedPreconditionError(message);
              })
      .Method("throw", {"message"},
              [](std::string message) -> int { throw std::runtime_error(message); })
      .Method("context",
              [](CallContext& ctx, const Object&) -> absl::StatusOr<Value> {
                return Value(ctx.context().values());
              })
      .Stream("count", [](CallContext&, const Object& args, StreamWriter& out) -> absl::Status {
        const Value* n = args.Find("n");
        const int64_t count = n != nullptr && n->is_int() ? n->AsInt() : 3;
        for (int64_t i = 0; i < count && i < 16; ++i) {
          if (!out.Write(i)) break;
        }
        if (count < 0) return absl::InvalidArgumentError("n must not be negative");
        return absl::OkStatus();
      });
  Endpoint v2{.ns = "admin", .version = "2.1"};
  v2.Method("echo",
            [](CallContext&, const Object& args) -> absl::StatusOr<Value> { return Value(args); });
  Endpoint fast{.ns = "fast", .version = "1.0", .inline_handlers = true};
  fast.Method("echo", [](CallContext&, const Object& args) -> absl::StatusOr<Value> {
    return Value(args);
  });
  for (Endpoint* ep : {&v1, &v2, &fast}) {
    if (!d->Add(std::move(*ep)).ok()) std::abort();
  }
  return d;
}

struct Service {
  std::unique_ptr<Dispatcher> dispatcher = MakeDispatcher();
  absl::flat_hash_map<std::string, std::shared_ptr<Consumer>> consumers;
  std::string host = "node1";
  std::string endpoint = "tcp://127.0.0.1:9501";

  Service() {
    auto connection = std::make_shared<internal::ConnectionState>();
    auto add = [&](std::string topic, bool fanout, std::string pool, bool raw) {
      auto c = std::make_shared<Consumer>(16);
      c->connection = connection;
      if (raw) {
        c->callback = [](const Message& m) {
          if (m.method == "throw") throw std::runtime_error("raw consumer threw");
        };
      } else {
        c->dispatcher = dispatcher.get();
      }
      c->registration = Registration{.exchange = "zrpc",
                                     .topic = topic,
                                     .host = host,
                                     .endpoint = endpoint,
                                     .pool = pool,
                                     .fanout = fanout};
      std::string target = fanout ? "fanout~" + topic : topic;
      if (!pool.empty()) target = "pool~" + pool + "~" + topic;
      c->key = "zrpc " + target;
      consumers[c->key] = std::move(c);
    };
    add("svc", false, "", false);
    add("svc.node1", false, "", false);
    add("svc", true, "", false);
    add("svc", false, "workers", true);
  }
};

Service& TheService() {
  static Service* service = new Service();
  return *service;
}

// The engine's ReplyError / SendFinalReply: a call's error must always make a reply.
void CheckErrorReply(std::string_view msg_id, const absl::Status& status) {
  ZRPC_FUZZ_CHECK(!status.ok());
  Reply r{
      .failure = SerializeRemoteException(status), .ending = true, .msg_id = std::string(msg_id)};
  absl::StatusOr<std::string> body = EncodeReply(r);
  ZRPC_FUZZ_CHECK(body.ok());
  absl::StatusOr<Reply> back = DecodeReply(*body);
  ZRPC_FUZZ_CHECK(back.ok() && back->failure && back->msg_id == msg_id);
  ZRPC_FUZZ_CHECK(!DeserializeRemoteException(*back->failure).ok());
  const std::string header_frame = internal::ControlHeader(FrameKind::kReply, msg_id);
  absl::StatusOr<internal::Header> header = internal::ParseHeader(header_frame);
  ZRPC_FUZZ_CHECK(header.ok() && header->msg_id == msg_id);
}

// The engine's `send` in Execute: the reply, or (when it cannot be encoded or is too big) its
// error, which must encode.
void CheckSend(std::string_view msg_id, Reply reply) {
  reply.msg_id = std::string(msg_id);
  absl::StatusOr<std::string> body = EncodeReply(reply);
  if (body.ok() && body->size() > kMaxMessageSize) {
    body = absl::ResourceExhaustedError("reply exceeds the limit");
  }
  if (!body.ok()) {
    body = EncodeReply(Reply{.failure = SerializeRemoteException(body.status()),
                             .ending = reply.ending,
                             .msg_id = std::string(msg_id)});
  }
  ZRPC_FUZZ_CHECK(body.ok());
  ZRPC_FUZZ_CHECK(DecodeReply(*body).ok());
}

void CheckRoundTrip(const Message& m) {
  absl::StatusOr<std::string> wire = EncodeMessage(m);
  ZRPC_FUZZ_CHECK(wire.ok());
  absl::StatusOr<Message> back = DecodeMessage(*wire);
  ZRPC_FUZZ_CHECK(back.ok());
  ZRPC_FUZZ_CHECK(back->method == m.method && back->args == m.args && back->version == m.version &&
                  back->ns == m.ns && back->msg_id == m.msg_id && back->unique_id == m.unique_id &&
                  back->timeout_ms == m.timeout_ms && back->context == m.context);
}

// HandleRequest, then Admit and Execute, for one classified request.
void Handle(const Inbound& in) {
  Service& service = TheService();
  const internal::Header& header = in.header;
  const bool is_cast = header.kind == FrameKind::kCast;
  auto fail = [&](const absl::Status& status) {
    if (!is_cast) CheckErrorReply(header.msg_id, status);
  };
  auto it = service.consumers.find(std::string(header.exchange) + " " + std::string(header.target));
  if (it == service.consumers.end()) return fail(NoConsumerError(header.target));
  const Consumer& consumer = *it->second;
  absl::StatusOr<Message> message = DecodeMessage(in.body);
  if (!message.ok()) return fail(message.status());
  CheckRoundTrip(*message);
  internal::DuplicateWindow duplicates(16);
  if (!message->unique_id.empty()) {  // a fresh window: first seen, then a repeat
    ZRPC_FUZZ_CHECK(!duplicates.Seen(message->unique_id) && duplicates.Seen(message->unique_id));
  }
  // The engine's one admission decision (both body paths call it).
  auto decide = [&](bool duplicate) {
    return internal::DecideAdmission(
        {.message = *message,
         .is_cast = is_cast,
         .body_bytes = in.body.size(),
         .topic = consumer.registration.topic,
         .host = service.host,
         .draining = false,
         .duplicate = duplicate,
         .dispatcher = consumer.dispatcher},
        [](const Dispatcher::Target&) { return absl::OkStatus(); },
        [] { return absl::OkStatus(); });
  };
  using Verdict = internal::AdmissionDecision::Verdict;
  // A repeat is always dropped, counted as a duplicate, and answers nothing.
  const internal::AdmissionDecision repeat = decide(true);
  ZRPC_FUZZ_CHECK(repeat.verdict == Verdict::kDrop &&
                  repeat.refused == internal::RefusalReason::kDuplicate);
  const internal::AdmissionDecision decision = decide(false);
  switch (decision.verdict) {
    case Verdict::kIntrospect: {
      ZRPC_FUZZ_CHECK(!is_cast);
      absl::StatusOr<Value> answer = internal::Introspect(
          consumer, message->method,
          internal::ServiceView{service.host, service.endpoint, service.consumers});
      if (!answer.ok()) return fail(answer.status());
      absl::StatusOr<std::string> body = EncodeReply(Reply{
          .result = *std::move(answer), .ending = true, .msg_id = std::string(header.msg_id)});
      ZRPC_FUZZ_CHECK(body.ok());  // else the caller would get no answer at all
      return;
    }
    case Verdict::kAnswer:
      // Only calls are answered, always with an error that encodes.
      ZRPC_FUZZ_CHECK(!is_cast && !decision.status.ok());
      return CheckErrorReply(header.msg_id, decision.status);
    case Verdict::kDrop:
      // A cast, or a call whose caller stopped waiting.
      ZRPC_FUZZ_CHECK(!decision.status.ok());
      ZRPC_FUZZ_CHECK(is_cast || (message->timeout_ms && *message->timeout_ms == 0));
      return;
    case Verdict::kRun:
      break;
  }
  if (consumer.callback) {
    try {
      consumer.callback(*message);
    } catch (const std::exception& e) {
      ZRPC_FUZZ_CHECK(!StatusFromException(e).ok());
    }
    if (!is_cast) CheckSend(header.msg_id, Reply{.ending = true});
    return;
  }
  const Dispatcher::Target* target = &decision.target;
  ZRPC_FUZZ_CHECK(target->endpoint != nullptr && target->method != nullptr);
  CallContext ctx(Context(), absl::Now() + absl::Seconds(10), consumer.registration.topic);
  const bool is_stream = header.kind == FrameKind::kMultiCall;
  std::optional<Value> last;
  absl::Status status = consumer.dispatcher->Run(*target, ctx, *message, [&](Value v) {
    if (is_cast) return true;
    if (is_stream) {
      CheckSend(header.msg_id, Reply{.result = std::move(v)});
      return true;
    }
    last = std::move(v);
    return true;
  });
  if (is_cast) return;
  Reply final{.ending = true};
  if (status.ok()) {
    if (!is_stream) final.result = last ? *std::move(last) : Value();
  } else {
    final.failure = SerializeRemoteException(status);
  }
  CheckSend(header.msg_id, std::move(final));
}

}  // namespace

void FuzzRequest(std::string_view data) {
  std::vector<std::string_view> frames = SplitFrames(data, 3);
  frames.insert(frames.begin(), std::string_view("client-1"));  // the routing id
  const Inbound in = internal::ClassifyInbound(frames, kMaxMessageSize);
  switch (in.action) {
    case Inbound::Action::kDrop:
      ZRPC_FUZZ_CHECK(!in.reason.ok());
      return;
    case Inbound::Action::kCancel:
      ZRPC_FUZZ_CHECK(!in.header.msg_id.empty());
      return;
    case Inbound::Action::kRefuse:
      ZRPC_FUZZ_CHECK(in.reason.code() == absl::StatusCode::kResourceExhausted);
      if (in.header.kind != FrameKind::kCast) CheckErrorReply(in.header.msg_id, in.reason);
      return;
    case Inbound::Action::kRequest:
      ZRPC_FUZZ_CHECK(in.header.kind == FrameKind::kCast || in.header.kind == FrameKind::kCall ||
                      in.header.kind == FrameKind::kMultiCall);
      ZRPC_FUZZ_CHECK(in.header.kind == FrameKind::kCast || !in.header.msg_id.empty());
      return Handle(in);
  }
}

}  // namespace zrpc::fuzz

ZRPC_FUZZ_ENTRY(zrpc::fuzz::FuzzRequest)
