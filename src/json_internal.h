// Internal JSON helpers shared by the Value codec and the message codec.
#ifndef ZRPC_SRC_JSON_INTERNAL_H_
#define ZRPC_SRC_JSON_INTERNAL_H_

#include <simdjson.h>

#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "zrpc/value.h"

namespace zrpc::internal {

// Appends `s` as a quoted JSON string. `s` must already be valid UTF-8.
void AppendQuoted(std::string_view s, std::string* out);
// Validates `s` as UTF-8 and appends it quoted; INVALID_ARGUMENT naming `what` otherwise.
absl::Status AppendQuotedChecked(std::string_view s, std::string_view what, std::string* out);
void AppendInt(int64_t i, std::string* out);
// Shortest round-trip form; always reads back as a double. INVALID_ARGUMENT if not finite.
absl::Status AppendDouble(double d, std::string* out);

// Parses `text` with this thread's DOM parser. The element lives until the next parse on this
// thread with the same `slot` (0 or 1: two documents may be open at once, e.g. an envelope and
// the message inside it).
absl::StatusOr<simdjson::dom::element> ParseDom(std::string_view text, const JsonLimits& limits,
                                                int slot = 0);
// Converts a DOM element to a Value, enforcing the depth limit and unique keys. `depth` is the
// depth of `element` itself (the top level is 1).
absl::Status FromDom(simdjson::dom::element element, int depth, const JsonLimits& limits,
                     Value* out);
// INVALID_ARGUMENT "invalid JSON: <reason>" for a simdjson error.
absl::Status JsonError(simdjson::error_code error, int max_depth);

inline std::string_view ToStd(absl::string_view s) { return {s.data(), s.size()}; }
inline absl::string_view ToAbsl(std::string_view s) { return {s.data(), s.size()}; }

}  // namespace zrpc::internal

#endif  // ZRPC_SRC_JSON_INTERNAL_H_
