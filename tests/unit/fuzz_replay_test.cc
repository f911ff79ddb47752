// SPDX-License-Identifier: Apache-2.0
// Replays the checked-in fuzz corpora through the fuzz targets under the normal build, so every
// corpus entry (seeds, and crashers once fixed) stays a regression test: one test per target,
// each over tests/fuzz/corpus/<name>/.
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "fuzz/fuzz_targets.h"
#include "test_util.h"

namespace zrpc {
namespace {

struct Target {
  const char* name;
  void (*fn)(std::string_view);
};

class FuzzCorpusTest : public ::testing::TestWithParam<Target> {};

TEST_P(FuzzCorpusTest, EveryEntryOfTheCorpusRunsWithoutAFinding) {
  const std::filesystem::path dir = std::filesystem::path(ZRPC_FUZZ_CORPUS_DIR) / GetParam().name;
  ASSERT_TRUE(std::filesystem::is_directory(dir)) << dir;
  int count = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    std::ifstream in(entry.path(), std::ios::binary);
    std::stringstream buf;
    buf << in.rdbuf();
    SCOPED_TRACE(entry.path().string());
    GetParam().fn(buf.str());  // a finding aborts with the broken invariant
    ++count;
  }
  EXPECT_GE(count, 3) << "the corpus of " << GetParam().name << " is not there";
}

INSTANTIATE_TEST_SUITE_P(
    Targets, FuzzCorpusTest,
    ::testing::Values(Target{"decode", fuzz::DecodeOne}, Target{"header", fuzz::FuzzHeader},
                      Target{"request", fuzz::FuzzRequest}, Target{"reply", fuzz::FuzzReply},
                      Target{"sidecar", fuzz::FuzzSidecar}, Target{"registry", fuzz::FuzzRegistry},
                      Target{"ring", fuzz::FuzzRing},
                      Target{"notification", fuzz::FuzzNotification},
                      Target{"keys", fuzz::FuzzKeys}),
    [](const ::testing::TestParamInfo<Target>& info) { return std::string(info.param.name); });

}  // namespace
}  // namespace zrpc
