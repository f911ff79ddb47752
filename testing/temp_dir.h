// SPDX-License-Identifier: Apache-2.0
// A private directory for one test: made under /tmp with mkdtemp (mode 0700), removed with
// everything in it when the object goes.
#ifndef ZRPC_TESTING_TEMP_DIR_H_
#define ZRPC_TESTING_TEMP_DIR_H_

#include <stdlib.h>

#include <filesystem>
#include <string>
#include <string_view>
#include <system_error>

namespace zrpc::testing {

class TempDir {
 public:
  // "/tmp/<prefix>-XXXXXX"; path() is "" when mkdtemp failed.
  explicit TempDir(std::string_view prefix) {
    std::string tmpl = "/tmp/" + std::string(prefix) + "-XXXXXX";
    if (mkdtemp(tmpl.data()) != nullptr) path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    if (!path_.empty()) std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

}  // namespace zrpc::testing

#endif  // ZRPC_TESTING_TEMP_DIR_H_
