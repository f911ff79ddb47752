// SPDX-License-Identifier: Apache-2.0
// The topic-key grammar, in one place (DESIGN §4): what clients resolve and what request headers
// name besides plain topics and `topic.host`.
//   fanout~TOPIC            every fanout consumer of TOPIC (a matchmaker key and a target)
//   pool~POOL~TOPIC         a member of worker pool POOL (a target)
//   publisher~TOPIC         the notifiers publishing TOPIC (a matchmaker key)
//   notify~TOPIC~PRIORITY   a listener pool's events (a target)
#ifndef ZRPC_SRC_BASE_KEYS_H_
#define ZRPC_SRC_BASE_KEYS_H_

#include <string>
#include <string_view>

namespace zrpc::internal {

inline constexpr std::string_view kFanoutPrefix = "fanout~";
inline constexpr std::string_view kPoolPrefix = "pool~";
inline constexpr std::string_view kPublisherPrefix = "publisher~";
inline constexpr std::string_view kNotifyPrefix = "notify~";

inline bool IsFanoutKey(std::string_view key) { return key.starts_with(kFanoutPrefix); }
// The topic of a fanout key ("fanout~compute" → "compute"); other keys unchanged.
inline std::string_view StripFanout(std::string_view key) {
  return IsFanoutKey(key) ? key.substr(kFanoutPrefix.size()) : key;
}
inline std::string FanoutKey(std::string_view topic) {
  return std::string(kFanoutPrefix).append(topic);
}
inline std::string PoolTarget(std::string_view pool, std::string_view topic) {
  return std::string(kPoolPrefix).append(pool).append("~").append(topic);
}
inline std::string PublisherKey(std::string_view topic) {
  return std::string(kPublisherPrefix).append(topic);
}
inline std::string NotifyTarget(std::string_view topic, std::string_view priority) {
  return std::string(kNotifyPrefix).append(topic).append("~").append(priority);
}

}  // namespace zrpc::internal

#endif  // ZRPC_SRC_BASE_KEYS_H_
