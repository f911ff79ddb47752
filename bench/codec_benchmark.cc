// SPDX-License-Identifier: Apache-2.0
// Encoding and decoding a typical call message (envelope, nested JSON text, a context of 5 keys,
// two ids, _timeout) and its reply, with a string payload of 100 B, 1 KiB and 64 KiB in the
// arguments (the call) and the result (the reply). Reports time per message and wire bytes per
// second; `wire_bytes` is the size of one encoded message.
//
//   build/bench/zrpc_codec_benchmark --benchmark_min_time=0.5
//   build/bench/zrpc_codec_benchmark --benchmark_filter='Call/1024'
#include <benchmark/benchmark.h>

#include <string>

#include "zrpc/message.h"
#include "zrpc/value.h"

namespace zrpc {
namespace {

// The payload sizes swept: a small call, a typical one, a large one.
void PayloadSizes(benchmark::internal::Benchmark* b) {
  b->ArgName("payload")->Arg(100)->Arg(1024)->Arg(64 << 10);
}

Message TypicalCall(size_t payload) {
  Message m;
  m.method = "resize";
  m.args = Object{{"id", "i-5a"},
                  {"flavor", Object{{"vcpus", 4}, {"ram", 8192}}},
                  {"data", std::string(payload, 'x')}};
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

Reply TypicalReply(size_t payload) {
  return Reply{.result = Value(Object{
                   {"status", "resized"}, {"vcpus", 4}, {"data", std::string(payload, 'x')}}),
               .failure = std::nullopt,
               .ending = true,
               .msg_id = NewUniqueId()};
}

// Skips the benchmark with the error when `v` failed (its figures would be meaningless).
template <typename T>
bool Check(benchmark::State& state, const absl::StatusOr<T>& v) {
  if (v.ok()) return true;
  state.SkipWithError(std::string(v.status().message()).c_str());
  return false;
}

void Finish(benchmark::State& state, size_t wire_bytes) {
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * wire_bytes));
  state.counters["wire_bytes"] = static_cast<double>(wire_bytes);
}

void BM_EncodeCall(benchmark::State& state) {
  const Message m = TypicalCall(state.range(0));
  const absl::StatusOr<std::string> once = EncodeMessage(m);
  if (!Check(state, once)) return;
  for (auto _ : state) {
    absl::StatusOr<std::string> wire = EncodeMessage(m);
    benchmark::DoNotOptimize(wire);
  }
  Finish(state, once->size());
}
BENCHMARK(BM_EncodeCall)->Apply(PayloadSizes);

// Decodes `wire`, one form of a typical call, in the benchmark loop.
void DecodeCallLoop(benchmark::State& state, const absl::StatusOr<std::string>& wire) {
  if (!Check(state, wire)) return;
  if (!Check(state, DecodeMessage(*wire))) return;
  for (auto _ : state) {
    absl::StatusOr<Message> m = DecodeMessage(*wire);
    benchmark::DoNotOptimize(m);
  }
  Finish(state, wire->size());
}

void BM_DecodeCall(benchmark::State& state) {
  DecodeCallLoop(state, EncodeMessage(TypicalCall(state.range(0))));
}
BENCHMARK(BM_DecodeCall)->Apply(PayloadSizes);

// The same call sent as the message object itself (the negotiated bare form: one parse, no
// nested escaping).
void BM_DecodeCallBare(benchmark::State& state) {
  const absl::StatusOr<Value> packed = PackMessage(TypicalCall(state.range(0)));
  DecodeCallLoop(state, packed.ok() ? ToJson(*packed) : absl::StatusOr<std::string>(packed.status()));
}
BENCHMARK(BM_DecodeCallBare)->Apply(PayloadSizes);

void BM_EncodeReply(benchmark::State& state) {
  const Reply r = TypicalReply(state.range(0));
  const absl::StatusOr<std::string> once = EncodeReply(r);
  if (!Check(state, once)) return;
  for (auto _ : state) {
    absl::StatusOr<std::string> wire = EncodeReply(r);
    benchmark::DoNotOptimize(wire);
  }
  Finish(state, once->size());
}
BENCHMARK(BM_EncodeReply)->Apply(PayloadSizes);

void BM_DecodeReply(benchmark::State& state) {
  const absl::StatusOr<std::string> wire = EncodeReply(TypicalReply(state.range(0)));
  if (!Check(state, wire)) return;
  if (!Check(state, DecodeReply(*wire))) return;
  for (auto _ : state) {
    absl::StatusOr<Reply> r = DecodeReply(*wire);
    benchmark::DoNotOptimize(r);
  }
  Finish(state, wire->size());
}
BENCHMARK(BM_DecodeReply)->Apply(PayloadSizes);

// Parsing the inner message's JSON text alone (no envelope, no unpacking), for scale.
void BM_ParseJsonOnly(benchmark::State& state) {
  const absl::StatusOr<Value> packed = PackMessage(TypicalCall(state.range(0)));
  if (!Check(state, packed)) return;
  const absl::StatusOr<std::string> text = ToJson(*packed);
  if (!Check(state, text)) return;
  for (auto _ : state) {
    absl::StatusOr<Value> v = ParseJson(*text);
    benchmark::DoNotOptimize(v);
  }
  Finish(state, text->size());
}
BENCHMARK(BM_ParseJsonOnly)->Apply(PayloadSizes);

}  // namespace
}  // namespace zrpc

BENCHMARK_MAIN();
