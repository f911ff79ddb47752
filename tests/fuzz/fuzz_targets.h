// SPDX-License-Identifier: Apache-2.0
// The fuzz targets: one plain function per decoder a peer or a file can reach. Each is built
// as a libFuzzer binary (tools/setup.sh fuzz) and called by the corpus replay unit test
// (tests/unit/fuzz_replay_test.cc) on tests/fuzz/corpus/<name>/. A function returns normally
// for any input; a broken invariant aborts with a message (a finding).
#ifndef ZRPC_TESTS_FUZZ_FUZZ_TARGETS_H_
#define ZRPC_TESTS_FUZZ_FUZZ_TARGETS_H_

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string_view>
#include <vector>

namespace zrpc::fuzz {

void DecodeOne(std::string_view data);         // corpus/decode: JSON, messages, replies
void FuzzHeader(std::string_view data);        // corpus/header: the wire header
void FuzzRequest(std::string_view data);       // corpus/request: header + body → dispatch
void FuzzReply(std::string_view data);         // corpus/reply: replies and beats (client)
void FuzzSidecar(std::string_view data);       // corpus/sidecar: the sidecar protocol
void FuzzRegistry(std::string_view data);      // corpus/registry: registrations, registry files
void FuzzRing(std::string_view data);          // corpus/ring: ring files
void FuzzNotification(std::string_view data);  // corpus/notification: event frames
void FuzzKeys(std::string_view data);          // corpus/keys: authorized_keys files and roles

// Splits `data` into at most `max` frames at NUL bytes (the last frame keeps the rest). Empty
// input is no frame at all. Seeds are readable: "zrpc1 call zrpc svc m1\0{...}".
inline std::vector<std::string_view> SplitFrames(std::string_view data, size_t max) {
  std::vector<std::string_view> frames;
  if (data.empty()) return frames;
  while (frames.size() + 1 < max) {
    const size_t nul = data.find('\0');
    if (nul == std::string_view::npos) break;
    frames.push_back(data.substr(0, nul));
    data.remove_prefix(nul + 1);
  }
  frames.push_back(data);
  return frames;
}

}  // namespace zrpc::fuzz

// An invariant of a target: on failure, says which and aborts (libFuzzer keeps the input).
#define ZRPC_FUZZ_CHECK(cond)                                                                \
  do {                                                                                       \
    if (!(cond)) {                                                                           \
      std::fprintf(stderr, "%s:%d: fuzz invariant failed: %s\n", __FILE__, __LINE__, #cond); \
      std::abort();                                                                          \
    }                                                                                        \
  } while (0)

// The libFuzzer entry points, only in the fuzzer binaries (the unit test links every target).
// Log lines are still formatted (and escaped) but not written: millions of inputs would bury
// the fuzzer's own report.
#ifdef ZRPC_FUZZER_MAIN
#include "zrpc/log.h"
#define ZRPC_FUZZ_ENTRY(fn)                                                 \
  extern "C" int LLVMFuzzerInitialize(int*, char***) {                      \
    zrpc::SetLogSink([](zrpc::LogLevel, std::string_view) {});              \
    return 0;                                                               \
  }                                                                         \
  extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) { \
    fn(std::string_view(reinterpret_cast<const char*>(data), size));        \
    return 0;                                                               \
  }
#else
#define ZRPC_FUZZ_ENTRY(fn)
#endif

#endif  // ZRPC_TESTS_FUZZ_FUZZ_TARGETS_H_
