// SPDX-License-Identifier: Apache-2.0
// Replays the checked-in fuzz corpus through the fuzz target under the normal build, so every
// corpus entry (including crashers once fixed) stays a regression test.
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "test_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

namespace zrpc {
namespace {

TEST(FuzzCorpusTest, EveryEntryDecodesWithoutCrashing) {
  int count = 0;
  for (const auto& entry : std::filesystem::directory_iterator(ZRPC_FUZZ_CORPUS_DIR)) {
    std::ifstream in(entry.path(), std::ios::binary);
    std::stringstream buf;
    buf << in.rdbuf();
    const std::string data = buf.str();
    SCOPED_TRACE(entry.path().string());
    EXPECT_EQ(LLVMFuzzerTestOneInput(reinterpret_cast<const uint8_t*>(data.data()), data.size()), 0);
    ++count;
  }
  EXPECT_GE(count, 10);  // the corpus is really there
}

}  // namespace
}  // namespace zrpc
