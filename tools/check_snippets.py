# SPDX-License-Identifier: Apache-2.0
"""Compiles every C++ block of a Markdown file (README.md), so the README cannot drift from the API.

    check_snippets.py --cxx g++ --include include [--link build/libzrpc.so] README.md [extra.cc ...]

Each ```cpp (or ```c++) block is compiled as follows:
  * a block that defines `int main(` is a whole program: compiled (and linked) as written;
  * any other block is the body of a function returning absl::Status (so it may `return s;` on
    an error), after `#include "zrpc/zrpc.h"` and a few standard headers. `#include` lines at
    the top of a block stay at file scope.
  * an HTML comment right before the block, `<!-- snippet: preamble=NAME -->`, declares what the
    block uses without showing it (PREAMBLES below: e.g. `transport` and `ctx`).
Extra .cc files on the command line are compiled (and linked) as they are.

Every returned absl::Status must be used: Abseil 20220623 marks absl::StatusOr [[nodiscard]] but
not absl::Status, so the check compiles against a copy of absl/status/status.h whose Status is
[[nodiscard]], with -Werror=unused-result. Compiler messages point at README.md:LINE (#line), and
the check fails naming the README line of each block that does not compile.
"""
import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile

# What a block may use without declaring it: the parameters of its function.
PREAMBLES = {
    # A transport (as the quick start makes it) and the caller's context.
    "transport": "std::unique_ptr<zrpc::Transport>& transport, const zrpc::Context& ctx",
    # The caller's context only.
    "ctx": "const zrpc::Context& ctx",
}

STD_HEADERS = ["cstdint", "iostream", "memory", "optional", "string", "utility", "vector"]

FENCE = re.compile(r"^(\s*)```\s*(\S*)\s*$")  # also indented, as in a list item
DIRECTIVE = re.compile(r"^<!--\s*snippet:\s*(.*?)\s*-->\s*$")
MAIN = re.compile(r"\bint\s+main\s*\(")


class Snippet:
    def __init__(self, path, first_line, lines, options):
        self.path = path
        self.first_line = first_line  # README line of the block's first code line
        self.lines = lines
        self.options = options

    def where(self):
        return f"{self.path}:{self.first_line - 1}"  # the opening ``` line


def extract(path):
    """The C++ blocks of a Markdown file, with the options of their snippet comment."""
    snippets = []
    with open(path, encoding="utf-8") as f:
        text = f.read().splitlines()
    i = 0
    options = {}
    while i < len(text):
        directive = DIRECTIVE.match(text[i])
        fence = FENCE.match(text[i])
        if directive:
            options = dict(
                kv.split("=", 1) if "=" in kv else (kv, "")
                for kv in directive.group(1).split())
        elif fence and fence.group(2):
            indent, lang = len(fence.group(1)), fence.group(2).lower()
            start = i + 1
            i += 1
            while i < len(text) and not re.match(r"^\s*```\s*$", text[i]):
                i += 1
            if i == len(text):
                sys.exit(f"{path}:{start}: code block never closed")
            if lang in ("cpp", "c++"):
                lines = [line[indent:] if line[:indent].isspace() else line
                         for line in text[start:i]]
                snippets.append(Snippet(path, start + 1, lines, options))
            options = {}
        elif text[i].strip():
            options = {}  # a directive applies only to the block right after it
        i += 1
    return snippets


def render(snippet):
    """The translation unit of one snippet, #line-mapped to the README."""
    path = os.path.abspath(snippet.path)
    if MAIN.search("\n".join(snippet.lines)):
        return f'#line {snippet.first_line} "{path}"\n' + "\n".join(snippet.lines) + "\n"
    unknown = set(snippet.options) - {"preamble"}
    if unknown:
        raise ValueError(f"unknown snippet option(s) {sorted(unknown)}; known: preamble")
    preamble = snippet.options.get("preamble", "")
    if preamble and preamble not in PREAMBLES:
        raise ValueError(f"unknown preamble {preamble!r}; known: {sorted(PREAMBLES)}")
    # Leading #include lines stay at file scope; the rest is the function body.
    n = 0
    while n < len(snippet.lines) and (snippet.lines[n].startswith("#include")
                                      or not snippet.lines[n].strip()):
        n += 1
    out = ['#include "zrpc/zrpc.h"']
    out += [f"#include <{h}>" for h in STD_HEADERS]
    out.append(f'#line {snippet.first_line} "{path}"')
    out += snippet.lines[:n]
    out.append(f"absl::Status Snippet({PREAMBLES.get(preamble, '')}) {{")
    out.append(f'#line {snippet.first_line + n} "{path}"')
    out += snippet.lines[n:]
    out.append("#line 1 \"<snippet wrapper>\"")
    out.append("  return absl::OkStatus();")
    out.append("}")
    out.append("int main() { return 0; }")
    return "\n".join(out) + "\n"


def nodiscard_status_dir(cxx, flags, workdir):
    """A directory whose absl/status/status.h is the real one with a [[nodiscard]] Status."""
    probe = subprocess.run([cxx, *flags, "-x", "c++", "-E", "-H", "-o", os.devnull, "-"],
                           input='#include "absl/status/status.h"\n', text=True,
                           capture_output=True)
    real = None
    for line in probe.stderr.splitlines():
        m = re.match(r"^\.+ (.*absl/status/status\.h)$", line)
        if m:
            real = m.group(1)
            break
    if real is None:
        sys.exit("cannot find absl/status/status.h with " + " ".join([cxx, *flags]) + ":\n"
                 + probe.stderr)
    with open(real, encoding="utf-8") as f:
        text = f.read()
    if "class Status final {" not in text:
        if re.search(r"class\s+(\[\[nodiscard\]\]|ABSL_MUST_USE_RESULT)\s+Status\b", text):
            return None  # a newer Abseil: already [[nodiscard]]
        sys.exit(f"{real}: no 'class Status final {{' to mark [[nodiscard]]; update {__file__}")
    shadow = os.path.join(workdir, "nodiscard", "absl", "status")
    os.makedirs(shadow)
    with open(os.path.join(shadow, "status.h"), "w", encoding="utf-8") as f:
        f.write(text.replace("class Status final {", "class [[nodiscard]] Status final {", 1))
    return os.path.join(workdir, "nodiscard")


def compile_one(cxx, flags, link, source, output):
    if link:
        # libzrpc's own dependencies (Abseil) resolve what the program uses of them.
        cmd = [cxx, *flags, source, "-o", output, "-Wl,--copy-dt-needed-entries", *link,
               "-pthread"]
    else:
        cmd = [cxx, *flags, "-c", source, "-o", output]
    result = subprocess.run(cmd, text=True, capture_output=True)
    return result.returncode == 0, result.stderr, cmd


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="+", help="Markdown files (.md) and C++ files (.cc)")
    parser.add_argument("--cxx", default=os.environ.get("CXX", "c++"))
    parser.add_argument("--include", action="append", default=[], help="include directory")
    parser.add_argument("--link", action="append", default=[],
                        help="library to link each program with (e.g. libzrpc.so); "
                             "without it, compile only")
    parser.add_argument("--std", default="c++20")
    parser.add_argument("--keep", help="write the generated sources to this directory")
    parser.add_argument("--expect-failures", metavar="LINE,...",
                        help="self-test: succeed only if exactly the blocks opening at these "
                             "lines fail")
    args = parser.parse_args()

    flags = [f"-std={args.std}", "-Wall", "-Wextra", "-Wno-unused-parameter",
             "-Wno-unused-variable", "-Wno-unused-but-set-variable",
             "-Wno-missing-field-initializers", "-Werror", "-Werror=unused-result"]
    flags += [f"-I{d}" for d in args.include]
    workdir = tempfile.mkdtemp(prefix="zrpc-snippets-")
    try:
        shadow = nodiscard_status_dir(args.cxx, flags, workdir)
        if shadow:
            flags = [f"-I{shadow}"] + flags  # searched before every other directory
        failures = []  # (where, errors)
        count = 0
        for path in args.files:
            if path.endswith(".md"):
                units = []
                for snippet in extract(path):
                    try:
                        units.append((snippet.where(), render(snippet)))
                    except ValueError as e:
                        units.append((snippet.where(), e))
                if not units:
                    failures.append((path, "no ```cpp blocks found"))
            else:
                with open(path, encoding="utf-8") as f:
                    units = [(path, f'#line 1 "{os.path.abspath(path)}"\n' + f.read())]
            for where, source in units:
                count += 1
                if isinstance(source, ValueError):
                    ok, errors = False, str(source)
                else:
                    name = os.path.join(workdir, f"snippet{count}.cc")
                    with open(name, "w", encoding="utf-8") as f:
                        f.write(source)
                    if args.keep:
                        os.makedirs(args.keep, exist_ok=True)
                        shutil.copy(name, args.keep)
                    ok, errors, cmd = compile_one(args.cxx, flags, args.link, name,
                                                  os.path.join(workdir, f"snippet{count}.out"))
                    errors = errors.strip() or " ".join(cmd)
                print(f"{where}: {'ok' if ok else 'FAILED'}", flush=True)
                if not ok:
                    failures.append((where, errors))
        if args.expect_failures is not None:
            # Self-test: exactly these blocks (by the line of their opening ```) must fail.
            failed = sorted(int(where.rsplit(":", 1)[1]) for where, _ in failures)
            expected = sorted(int(n) for n in args.expect_failures.split(","))
            if failed != expected:
                print(f"expected the blocks at lines {expected} to fail, but {failed} failed",
                      file=sys.stderr)
                for where, errors in failures:
                    print(f"\n== {where}:\n{errors}", file=sys.stderr)
                return 1
            print(f"the blocks at lines {expected} fail, as expected")
            return 0
        if failures:
            print(f"\n{len(failures)} of {count} C++ snippet(s) do not compile:", file=sys.stderr)
            for where, errors in failures:
                print(f"\n== {where}: does not compile (the block starting at this line)\n"
                      f"{errors}", file=sys.stderr)
            print("\nFix the block (see tools/check_snippets.py for how blocks are wrapped).",
                  file=sys.stderr)
            return 1
        print(f"all {count} C++ snippet(s) compile")
        return 0
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
