// SPDX-License-Identifier: Apache-2.0
// Encoding and decoding a typical call message (~300 bytes on the wire: envelope, nested JSON
// text, a context of 5 keys) and its reply. Reports ns per message and bytes per second.
//
//   build/bench/zrpc_codec_benchmark --benchmark_min_time=0.5
#include <benchmark/benchmark.h>

#include "zrpc/message.h"
#include "zrpc/value.h"

namespace zrpc {
namespace {

Message TypicalCall() {
  Message m;
  m.method = "resize";
  m.args = Object{{"id", "i-5a"}, {"flavor", Object{{"vcpus", 4}, {"ram", 8192}}}};
  m.version = "1.3";
  m.msg_id = NewUniqueId();
  m.unique_id = NewUniqueId();
  m.timeout_ms = 60000;
  m.context = Context(Object{{"user", "alice"},
                             {"project", "demo"},
                             {"roles", Array{"member"}},
                             {"req", "r-42"},
                             {"admin", false}});
  return m;
}

Reply TypicalReply() {
  return Reply{.result = Value(Object{{"status", "resized"}, {"vcpus", 4}}),
               .failure = std::nullopt,
               .ending = true,
               .msg_id = NewUniqueId()};
}

void BM_EncodeCall(benchmark::State& state) {
  Message m = TypicalCall();
  size_t bytes = 0;
  for (auto _ : state) {
    absl::StatusOr<std::string> wire = EncodeMessage(m);
    bytes += wire->size();
    benchmark::DoNotOptimize(wire);
  }
  state.SetBytesProcessed(static_cast<int64_t>(bytes));
  state.counters["wire_bytes"] = static_cast<double>(EncodeMessage(m)->size());
}
BENCHMARK(BM_EncodeCall);

void BM_DecodeCall(benchmark::State& state) {
  const std::string wire = *EncodeMessage(TypicalCall());
  for (auto _ : state) {
    absl::StatusOr<Message> m = DecodeMessage(wire);
    benchmark::DoNotOptimize(m);
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * wire.size()));
  state.counters["wire_bytes"] = static_cast<double>(wire.size());
}
BENCHMARK(BM_DecodeCall);

void BM_EncodeReply(benchmark::State& state) {
  Reply r = TypicalReply();
  size_t bytes = 0;
  for (auto _ : state) {
    absl::StatusOr<std::string> wire = EncodeReply(r);
    bytes += wire->size();
    benchmark::DoNotOptimize(wire);
  }
  state.SetBytesProcessed(static_cast<int64_t>(bytes));
}
BENCHMARK(BM_EncodeReply);

void BM_DecodeReply(benchmark::State& state) {
  const std::string wire = *EncodeReply(TypicalReply());
  for (auto _ : state) {
    absl::StatusOr<Reply> r = DecodeReply(wire);
    benchmark::DoNotOptimize(r);
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * wire.size()));
  state.counters["wire_bytes"] = static_cast<double>(wire.size());
}
BENCHMARK(BM_DecodeReply);

// Raw JSON parse + write of the inner message, for scale.
void BM_ParseJsonOnly(benchmark::State& state) {
  const std::string text = *ToJson(*PackMessage(TypicalCall()));
  for (auto _ : state) {
    absl::StatusOr<Value> v = ParseJson(text);
    benchmark::DoNotOptimize(v);
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * text.size()));
}
BENCHMARK(BM_ParseJsonOnly);

}  // namespace
}  // namespace zrpc

BENCHMARK_MAIN();
