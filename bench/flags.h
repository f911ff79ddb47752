// SPDX-License-Identifier: Apache-2.0
// A tiny command-line parser for zrpc's benchmark tools (zrpc-faults, zrpc-matchmaker-bench):
// --name=value or --name value, and --flag. A copy of the tools' former parser, so that bench/
// does not depend on tools/.
#ifndef ZRPC_BENCH_FLAGS_H_
#define ZRPC_BENCH_FLAGS_H_

#include <signal.h>

#include <cmath>
#include <cstdlib>

#include "absl/synchronization/mutex.h"
#include <iostream>
#include <map>
#include <string>
#include <vector>

#include "zrpc/security.h"

namespace zrpc::bench {

class Flags {
 public:
  // `known` maps each flag to its help text; flags ending in '!' take no value.
  Flags(std::string usage, std::map<std::string, std::string> known)
      : usage_(std::move(usage)), known_(std::move(known)) {}

  // Adds a flag before Parse (shared groups of flags, e.g. SecurityFlags()).
  void Add(const std::string& name, const std::string& help) { known_[name] = help; }

  // Parses argv; on --help prints usage and exits 0; on a bad flag prints why and exits 2.
  void Parse(int argc, char** argv) {
    for (int i = 1; i < argc; ++i) {
      std::string arg = argv[i];
      if (arg == "--help" || arg == "-h") {
        PrintUsage(std::cout);
        std::exit(0);
      }
      if (arg.rfind("--", 0) != 0) {
        positional_.push_back(arg);
        continue;
      }
      std::string name = arg.substr(2), value;
      const size_t eq = name.find('=');
      if (eq != std::string::npos) {
        value = name.substr(eq + 1);
        name = name.substr(0, eq);
      }
      if (known_.count(name + "!")) {
        values_[name] = "true";
        continue;
      }
      if (!known_.count(name)) Fail("unknown flag --" + name);
      if (eq == std::string::npos) {
        if (i + 1 >= argc) Fail("--" + name + " needs a value");
        value = argv[++i];
      }
      values_[name] = value;
    }
  }

  std::string Get(const std::string& name, const std::string& fallback = "") const {
    auto it = values_.find(name);
    return it == values_.end() ? fallback : it->second;
  }
  bool Has(const std::string& name) const { return values_.count(name) > 0; }
  long GetInt(const std::string& name, long fallback) const {
    auto it = values_.find(name);
    if (it == values_.end()) return fallback;
    char* end = nullptr;
    long v = std::strtol(it->second.c_str(), &end, 10);
    if (end == it->second.c_str() || *end != '\0') Fail("--" + name + " needs a number");
    return v;
  }
  // A duration in seconds: a finite number in (0, 1e7] (or [0, 1e7] with allow_zero); anything
  // else (nan, inf, -1, "10s") fails with the usage.
  double GetSeconds(const std::string& name, double fallback, bool allow_zero = false) const {
    auto it = values_.find(name);
    if (it == values_.end()) return fallback;
    char* end = nullptr;
    const double v = std::strtod(it->second.c_str(), &end);
    if (end == it->second.c_str() || *end != '\0' || !std::isfinite(v) || v > 1e7 ||
        (allow_zero ? v < 0 : v <= 0)) {
      Fail("--" + name + " needs a number of seconds, " + (allow_zero ? "0" : "above 0") +
           " to 10000000");
    }
    return v;
  }
  const std::vector<std::string>& positional() const { return positional_; }

  [[noreturn]] void Fail(const std::string& why) const {
    std::cerr << "error: " << why << "\n";
    PrintUsage(std::cerr);
    std::exit(2);
  }

 private:
  void PrintUsage(std::ostream& out) const {
    out << usage_ << "\n\nFlags:\n";
    for (const auto& [name, help] : known_) {
      std::string shown = name.back() == '!' ? name.substr(0, name.size() - 1) : name + " VALUE";
      out << "  --" << shown << "\n      " << help << "\n";
    }
  }

  std::string usage_;
  std::map<std::string, std::string> known_;
  std::map<std::string, std::string> values_;
  std::vector<std::string> positional_;
};

// zrpc's programs run with Abseil's mutex deadlock detection off: Debian's Abseil keeps it on in
// release builds, where it makes every lock about four times as expensive (30 ns vs 8 ns here).
inline void UseReleaseMutexes() {
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
}

// The CurveZMQ flags every zrpc tool takes (zrpc/security.h).
inline std::map<std::string, std::string> SecurityFlags() {
  return {{"key-file", "this process's CURVE key pair, NAME.key from `zrpc keygen NAME` "
                       "(default $ZRPC_KEY_FILE; none: plain, unauthenticated ZeroMQ)"},
          {"authorized-keys", "the keys this process admits and trusts, `IDENTITY KEY [GROUPS]` "
                              "lines (default $ZRPC_AUTHORIZED_KEYS)"}};
}

// Reads --key-file and --authorized-keys, or the environment variables.
inline zrpc::SecurityOptions SecurityFromFlags(const Flags& flags) {
  auto pick = [&](const std::string& flag, const char* env) {
    if (flags.Has(flag)) return flags.Get(flag);
    const char* v = std::getenv(env);
    return std::string(v != nullptr ? v : "");
  };
  return zrpc::SecurityOptions{.key_file = pick("key-file", "ZRPC_KEY_FILE"),
                               .authorized_keys_file = pick("authorized-keys", "ZRPC_AUTHORIZED_KEYS")};
}

}  // namespace zrpc::bench

#endif  // ZRPC_BENCH_FLAGS_H_
