// SPDX-License-Identifier: Apache-2.0
// What zrpc's programs (zrpc, zrpc-service, zrpc-matchmaker) share on top of CLI11: one-line
// usage errors with a pointer to --help and a "did you mean" for misspelt flags and commands,
// --version, the security flags and their environment fallbacks, and checked numbers.
//
//   zrpc::tools::ToolApp app("zrpc-service", "zrpc-service [flags]", "The reference service.");
//   std::string topic = "compute";
//   app.app().add_option("--topic", topic, "topic to consume");
//   app.Parse(argc, argv);   // --help: prints it, exits 0; a bad flag: one line, exits 2
#ifndef ZRPC_TOOLS_CLI_COMMON_H_
#define ZRPC_TOOLS_CLI_COMMON_H_

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/mutex.h"
#include "zrpc/security.h"
#include "zrpc/version.h"

namespace zrpc::tools {

// zrpc's release, printed by `--version` on every tool (zrpc/version.h).
inline constexpr char kZrpcVersion[] = ZRPC_VERSION_STRING;

// The exit code of every usage error (DESIGN §5).
inline constexpr int kUsageExitCode = 2;

// zrpc's programs run with Abseil's mutex deadlock detection off: Debian's Abseil keeps it on in
// release builds, where it makes every lock about four times as expensive (30 ns vs 8 ns here).
inline void UseReleaseMutexes() {
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
}

// The Levenshtein distance between `a` and `b` (insertions, deletions, substitutions).
inline size_t EditDistance(std::string_view a, std::string_view b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diagonal = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      const size_t above = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diagonal = above;
    }
  }
  return row[b.size()];
}

// The known name closest to `typed`, if it is close enough to be a likely typo: at most a third
// of its length away (at least 1, at most 3 edits), or `typed` is a prefix of exactly one name.
inline std::optional<std::string> Suggest(std::string_view typed,
                                          const std::vector<std::string>& known) {
  if (typed.size() < 3) return std::nullopt;  // "-x": any one-letter flag would be "close"
  std::optional<std::string> best;
  size_t best_distance = std::min<size_t>(3, std::max<size_t>(1, typed.size() / 3)) + 1;
  for (const std::string& name : known) {
    const size_t d = EditDistance(typed, name);
    if (d < best_distance) {
      best_distance = d;
      best = name;
    }
  }
  if (best) return best;
  std::vector<std::string> prefixed;
  for (const std::string& name : known) {
    if (typed.size() >= 2 && name.rfind(typed, 0) == 0) prefixed.push_back(name);
  }
  if (prefixed.size() == 1) return prefixed[0];
  return std::nullopt;
}

// How a tool reports a usage error: one line on stderr (or, with --json, one JSON object on
// stderr), then exit 2. Set once in main().
struct UsageReporter {
  std::string program = "zrpc";  // prefix of the line: "zrpc: ..."
  bool json = false;
  static UsageReporter& Get() {
    static UsageReporter reporter;
    return reporter;
  }
};

// A JSON string literal of `s` (quotes included); `s` is text the tool wrote or has escaped.
inline std::string JsonQuote(std::string_view s) {
  std::string out = "\"";
  for (const char c : s) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          static constexpr char kHex[] = "0123456789abcdef";
          out += "\\u00";
          out += kHex[(c >> 4) & 0xf];
          out += kHex[c & 0xf];
        } else {
          out += c;
        }
    }
  }
  return out + "\"";
}

// One error line, `{"error": {...}}` with --json (see the README's CLI section).
inline void PrintError(int exit_code, std::string_view status, std::string_view kind,
                       std::string_view message) {
  const UsageReporter& r = UsageReporter::Get();
  if (r.json) {
    std::cerr << "{\"error\":{\"code\":" << exit_code << ",\"status\":" << JsonQuote(status)
              << ",\"kind\":" << (kind.empty() ? "null" : JsonQuote(kind))
              << ",\"message\":" << JsonQuote(message) << "}}" << std::endl;
  } else {
    std::cerr << r.program << ": " << message << std::endl;
  }
}

// Prints `why` and "see '<help_of> --help'" in one line, and exits 2.
[[noreturn]] inline void UsageFail(const std::string& why, const std::string& help_of) {
  PrintError(kUsageExitCode, "INVALID_ARGUMENT", "UsageError",
             absl::StrCat(why, "; see '", help_of, " --help'"));
  std::exit(kUsageExitCode);
}

// Help text laid out as zrpc's tools have always shown it: "usage: ..." first, then what the
// command does, then its flags.
class ToolFormatter : public CLI::Formatter {
 public:
  ToolFormatter(std::string usage, std::string description)
      : usage_(std::move(usage)), description_(std::move(description)) {
    column_width(34);
  }
  std::string make_description(const CLI::App*) const override { return ""; }
  // Descriptions wrapped to fit 100 columns beside the flag column.
  std::string make_option_desc(const CLI::Option* opt) const override {
    constexpr size_t kWidth = 100 - 34;
    std::string out, line;
    for (const std::string& word : CLI::detail::split(CLI::Formatter::make_option_desc(opt), ' ')) {
      if (!line.empty() && line.size() + 1 + word.size() > kWidth) {
        out += line + "\n";
        line.clear();
      }
      line += line.empty() ? word : " " + word;
    }
    return out + line;
  }
  std::string make_usage(const CLI::App*, std::string) const override {
    return absl::StrCat("usage: ", usage_, "\n", description_, description_.empty() ? "" : "\n");
  }

 private:
  std::string usage_;
  std::string description_;
};

// One program or command line: a CLI11 app whose errors are one line and whose unknown flags
// get a suggestion.
class ToolApp {
 public:
  // `name` is what --help points to ("zrpc call", "zrpc-service"); `usage` the usage line
  // without "usage: "; `description` a few lines on what it does.
  ToolApp(std::string name, std::string usage, std::string description)
      : name_(std::move(name)), app_(std::make_unique<CLI::App>("", name_)) {
    app_->formatter(std::make_shared<ToolFormatter>(std::move(usage), std::move(description)));
    app_->allow_extras();  // unknown flags are reported by Parse, with a suggestion
    app_->positionals_at_end(false);
  }

  CLI::App& app() { return *app_; }
  const std::string& name() const { return name_; }

  // Adds the positional arguments, kept in `args`; their count is the caller's to check.
  void Positionals(std::vector<std::string>* args) {
    app_->add_option("args", *args)->expected(0, 1 << 20)->group("");
  }

  // Adds --version (prints zrpc's version, exits 0).
  void AddVersionFlag() {
    version_ = app_->add_flag("--version")->description("print zrpc's version and exit");
  }

  // Whether `--flag` was given.
  bool Has(const std::string& flag) const {
    const CLI::Option* o = app_->get_option_no_throw(flag);
    return o != nullptr && o->count() > 0;
  }

  // The long flag names this app takes ("--timeout", ...).
  std::vector<std::string> FlagNames() const {
    std::vector<std::string> names;
    for (const CLI::Option* o : app_->get_options()) {
      if (o->get_group().empty()) continue;  // hidden
      for (const std::string& l : o->get_lnames()) names.push_back("--" + l);
      for (const std::string& s : o->get_snames()) names.push_back("-" + s);
    }
    return names;
  }

  // Parses argv[1..] (argv[0] is the program or the command). --help prints the help on stdout
  // and exits 0; any usage error prints one line and exits 2. `hints` maps flags this app does
  // not take to what to say about them ("--count does not apply to ...").
  void Parse(int argc, const char* const* argv,
             const std::map<std::string, std::string>& hints = {}) {
    try {
      app_->parse(argc, argv);
    } catch (const CLI::CallForHelp&) {
      std::cout << app_->help() << std::flush;
      std::exit(0);
    } catch (const CLI::ParseError& e) {
      UsageFail(Reword(e.what()), name_);
    }
    for (const std::string& extra : app_->remaining()) {
      if (extra == "--") continue;  // CLI11 keeps the marker; what follows went to positionals
      if (extra.size() < 2 || extra[0] != '-') {
        UsageFail(absl::StrCat("unexpected argument '", extra, "'"), name_);
      }
      const std::string flag = extra.substr(0, extra.find('='));
      if (auto hint = hints.find(flag); hint != hints.end()) UsageFail(hint->second, name_);
      std::optional<std::string> near = Suggest(flag, FlagNames());
      UsageFail(absl::StrCat("unknown flag ", flag,
                             near ? absl::StrCat(" (did you mean ", *near, "?)") : ""),
                name_);
    }
    if (version_ != nullptr && version_->count() > 0) {
      std::cout << app_->get_name() << " " << kZrpcVersion << std::endl;
      std::exit(0);
    }
  }

  // Fails with a usage error about this command.
  [[noreturn]] void Fail(const std::string& why) const { UsageFail(why, name_); }

  // A duration in seconds: a finite number in (0, 1e7] (or [0, 1e7] with allow_zero); anything
  // else (nan, inf, -1, "10s") is a usage error.
  double Seconds(const std::string& flag, const std::string& text, bool allow_zero = false) const {
    char* end = nullptr;
    const double v = std::strtod(text.c_str(), &end);
    if (text.empty() || *end != '\0' || !std::isfinite(v) || v > 1e7 ||
        (allow_zero ? v < 0 : v <= 0)) {
      Fail(absl::StrCat(flag, " needs a number of seconds, ", allow_zero ? "0" : "above 0",
                        " to 10000000 (got '", text, "')"));
    }
    return v;
  }

  // An integer in [min, max]; anything else is a usage error.
  long Integer(const std::string& flag, const std::string& text, long min, long max) const {
    char* end = nullptr;
    errno = 0;
    const long v = std::strtol(text.c_str(), &end, 10);
    if (text.empty() || *end != '\0' || errno != 0 || v < min || v > max) {
      Fail(absl::StrCat(flag, " needs a whole number from ", min, " to ", max, " (got '", text,
                        "')"));
    }
    return v;
  }

 private:
  // CLI11's messages in zrpc's words ("--timeout: 1 required TEXT missing" → "--timeout needs
  // a value").
  static std::string Reword(std::string what) {
    const size_t colon = what.find(':');
    if (colon != std::string::npos && what.rfind("--", 0) == 0) {
      const std::string flag = what.substr(0, colon);
      if (what.find("missing") != std::string::npos) return flag + " needs a value";
      if (what.find("received") != std::string::npos || what.find("At most") != std::string::npos) {
        return flag + " was given more than once";
      }
    }
    for (char& c : what) {
      if (c == '\n') c = ' ';
    }
    return what;
  }

  std::string name_;
  std::unique_ptr<CLI::App> app_;
  CLI::Option* version_ = nullptr;
};

// The CurveZMQ flags every zrpc tool takes (zrpc/security.h), and their environment fallbacks.
struct SecurityFlags {
  std::string key_file;
  std::string authorized_keys;

  void AddTo(ToolApp& app, std::string_view whose = "this process's") {
    app.app()
        .add_option("--key-file", key_file,
                    absl::StrCat(std::string(whose),
                                 " CURVE key pair, NAME.key from `zrpc keygen NAME` "
                                 "(default $ZRPC_KEY_FILE; none: plain ZeroMQ)"))
        ->type_name("FILE");
    app.app()
        .add_option("--authorized-keys", authorized_keys,
                    "the keys admitted and trusted, `IDENTITY KEY [GROUPS]` lines (default "
                    "$ZRPC_AUTHORIZED_KEYS)")
        ->type_name("FILE");
  }
  // The flags' values, or the environment's ($ZRPC_KEY_FILE, $ZRPC_AUTHORIZED_KEYS).
  zrpc::SecurityOptions Resolve(const ToolApp& app) const {
    auto pick = [&](const std::string& flag, const std::string& value, const char* env) {
      if (app.Has(flag)) return value;
      const char* v = std::getenv(env);
      return std::string(v != nullptr ? v : "");
    };
    return zrpc::SecurityOptions{
        .key_file = pick("--key-file", key_file, "ZRPC_KEY_FILE"),
        .authorized_keys_file = pick("--authorized-keys", authorized_keys, "ZRPC_AUTHORIZED_KEYS")};
  }
};

}  // namespace zrpc::tools

#endif  // ZRPC_TOOLS_CLI_COMMON_H_
