// SPDX-License-Identifier: Apache-2.0
// Internal JSON helpers shared by the Value codec and the message codec.
#ifndef ZRPC_SRC_CODEC_JSON_INTERNAL_H_
#define ZRPC_SRC_CODEC_JSON_INTERNAL_H_

#include <simdjson.h>

#include <array>
#include <string>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_set.h"

#include "absl/status/status.h"
#include "zrpc/message.h"
#include "zrpc/value.h"

namespace zrpc::internal {

// Appends the JSON-escaped body of `s` (no quotes). `nested`: escaped once more, for JSON text
// that is itself inside a JSON string (the envelope's "oslo.message").
void AppendEscaped(std::string_view s, bool nested, std::string* out);

// Writes JSON text, either plain or already escaped as the body of an enclosing JSON string, so
// that the envelope is written in one pass instead of writing the message and escaping it again.
class JsonSink {
 public:
  JsonSink(std::string* out, bool nested) : out_(out), nested_(nested) {}
  void Raw(std::string_view s) { out_->append(s); }  // structural text: never needs escaping
  void Raw(char c) { out_->push_back(c); }
  void Quote() {
    if (nested_) {
      out_->append("\\\"");
    } else {
      out_->push_back('"');
    }
  }
  // "key": for keys known to be plain ASCII.
  void Key(std::string_view key) {
    Quote();
    Raw(key);
    Quote();
    Raw(':');
  }
  // A string value; INVALID_ARGUMENT naming `what` when it is not UTF-8.
  absl::Status String(std::string_view s, std::string_view what) { return String({}, s, what); }
  // A string value made of an ASCII `prefix` and `s` (only `s` is checked).
  absl::Status String(std::string_view prefix, std::string_view s, std::string_view what);
  void Int(int64_t i);
  absl::Status Value(const zrpc::Value& v);
  std::string* out() { return out_; }

 private:
  std::string* out_;
  bool nested_;
};
void AppendInt(int64_t i, std::string* out);
// Shortest round-trip form; always reads back as a double. INVALID_ARGUMENT if not finite.
absl::Status AppendDouble(double d, std::string* out);

// Parses `text` with this thread's DOM parser. The element lives until the next parse on this
// thread with the same `slot` (0 or 1: two documents may be open at once, e.g. an envelope and
// the message inside it).
absl::StatusOr<simdjson::dom::element> ParseDom(std::string_view text, const JsonLimits& limits,
                                                int slot = 0);
// Converts a DOM element to a Value, enforcing the depth, member and element limits and unique
// keys. `depth` is the depth of `element` itself (the top level is 1); `*elements_left` is what
// remains of limits.max_elements for the whole document, and is decreased by the values taken.
// With `out` null it only checks (for members a decoder ignores: the rules hold for the whole
// document).
absl::Status FromDom(simdjson::dom::element element, int depth, const JsonLimits& limits,
                     size_t* elements_left, Value* out);
// The keys of one object, to refuse duplicates in linear time: a list for the usual handful, a
// hash set past 16 (a peer may send 180,000).
class KeySet {
 public:
  explicit KeySet(size_t members) : linear_(members <= kFew) {
    if (!linear_) many_.reserve(members);
  }
  // False when `key` is there already.
  bool Insert(std::string_view key);

 private:
  // Up to kFew keys are compared in place: no allocation for the objects of a typical message.
  static constexpr size_t kFew = 16;
  bool linear_;
  size_t count_ = 0;
  std::array<std::string_view, kFew> few_;
  absl::flat_hash_set<std::string_view> many_;
};
absl::Status DuplicateKeyError(std::string_view key);
// The errors of the member and element limits.
absl::Status TooManyMembers(size_t members, const JsonLimits& limits);
absl::Status TooManyElements(const JsonLimits& limits);
// DecodeMessage that also tells how many JSON values the message held: its decoded form takes
// about that many Values (whatever the text's size), which admission counts.
absl::StatusOr<Message> DecodeMessageCounting(std::string_view wire, const JsonLimits& limits,
                                              size_t* values);
// The message as the request body of its bare form (the message object itself, no envelope:
// PROTOCOL.md section 3), for services whose registration accepts "message".
absl::StatusOr<std::string> EncodeBareMessage(const Message& message);
// The reply object itself, for a caller whose message asked for it (Message::bare_reply).
absl::StatusOr<std::string> EncodeBareReply(const Reply& reply);
// Appends the 2.0 envelope around `bare` (JSON text this process wrote: valid UTF-8) to `out`.
void AppendEnvelope(std::string_view bare, std::string* out);
// After a document of `size` bytes: frees this thread's parser buffers if it grew them past
// 1 MiB, so that a worker thread does not keep the largest message's buffers for good.
void TrimJsonParsers(size_t size);
// INVALID_ARGUMENT "invalid JSON: <reason>" for a simdjson error.
absl::Status JsonError(simdjson::error_code error, int max_depth);

inline std::string_view ToStd(absl::string_view s) { return {s.data(), s.size()}; }
inline absl::string_view ToAbsl(std::string_view s) { return {s.data(), s.size()}; }

}  // namespace zrpc::internal

#endif  // ZRPC_SRC_CODEC_JSON_INTERNAL_H_
