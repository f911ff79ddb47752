#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# zrpc set-up: installs the Debian packages that are missing, builds with -j2, then runs
# the demo (`tools/setup.sh demo`, the default) or the whole test suite (`tools/setup.sh test`).
# Safe to run again: when everything is installed it goes straight to the (incremental) build.
#
#   tools/setup.sh [demo|test|build|fuzz|fuzz-run [SECONDS]|sanitize]
#
# fuzz: the libFuzzer targets (one per decoder a peer or a file reaches: tests/fuzz/), built with
# clang against a library instrumented for coverage, ASan and UBSan, in build-fuzz/.
# fuzz-run [SECONDS]: builds them and runs each for SECONDS (default 30) from its corpus
# (tests/fuzz/corpus/<name>/, read only: new inputs go to build-fuzz/fuzz-work/<name>/); fails
# when any target finds a crash, a leak, a timeout or a broken invariant (the input is saved in
# build-fuzz/fuzz-artifacts/). CI runs it after sanitize.
#
# sanitize: the whole suite built with clang, AddressSanitizer + UndefinedBehaviorSanitizer
# (any finding fails the test) and -Wthread-safety -Werror, in build-asan/ (CI runs it after
# the README's test command).
#
# Environment: ZRPC_BUILD_DIR (default: build), ZRPC_CMAKE_ARGS (extra cmake arguments).
set -euo pipefail

mode="${1:-demo}"
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${ZRPC_BUILD_DIR:-$root/build}"

packages=(g++ cmake make pkg-config libzmq3-dev cppzmq-dev libsimdjson-dev libabsl-dev
          libgtest-dev libgmock-dev libbenchmark-dev libhiredis-dev redis-server python3-zmq
          libcli11-dev dpkg-dev prometheus-cpp-dev prometheus)
if [[ "$mode" == fuzz || "$mode" == fuzz-run || "$mode" == sanitize ]]; then
  packages+=(clang libclang-rt-14-dev)
fi

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
if ((${#missing[@]})); then
  echo "zrpc setup: installing ${missing[*]}"
  if [[ $(id -u) -ne 0 ]]; then
    echo "zrpc setup: run as root (apt-get install needs it), or install: ${missing[*]}" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# Tests, benchmarks and -Werror are asked for explicitly: their defaults follow whether zrpc is
# the top-level project, and CI must not depend on that.
configure() {
  local dir="$1"; shift
  cmake -S "$root" -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DZRPC_BUILD_TESTS=ON \
    -DZRPC_BUILD_BENCH=ON -DZRPC_WERROR=ON "$@" ${ZRPC_CMAKE_ARGS:-} >/dev/null
}

case "$mode" in
  demo|build|test)
    configure "$build"
    cmake --build "$build" -j2
    ;;
  fuzz|fuzz-run)
    build="${ZRPC_BUILD_DIR:-$root/build-fuzz}"
    # The whole library is instrumented for coverage (fuzzer-no-link), so libFuzzer is guided by
    # the decoders' own branches, not only the target's.
    configure "$build" -DCMAKE_CXX_COMPILER=clang++ -DZRPC_BUILD_FUZZ=ON \
      -DZRPC_BUILD_BENCH=OFF -DZRPC_SANITIZE=address,undefined,fuzzer-no-link
    cmake --build "$build" -j2 --target zrpc_fuzzers
    targets=(decode header request reply sidecar registry ring notification keys)
    if [[ "$mode" == fuzz ]]; then
      echo "zrpc setup: fuzz targets built in $build/tests; run one (a scratch corpus first, so"
      echo "  that the checked-in one stays as it is), for example:"
      echo "  mkdir -p /tmp/zrpc-fuzz/request && $build/tests/zrpc_request_fuzzer /tmp/zrpc-fuzz/request \\"
      echo "    $root/tests/fuzz/corpus/request -max_total_time=60"
      echo "  targets: ${targets[*]} (or: tools/setup.sh fuzz-run [SECONDS] runs them all)"
      exit 0
    fi
    seconds="${2:-30}"
    if ! [[ "$seconds" =~ ^[1-9][0-9]*$ ]]; then
      echo "usage: tools/setup.sh fuzz-run [SECONDS] (a whole number of seconds, default 30)" >&2
      exit 2
    fi
    export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1}"
    export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
    mkdir -p "$build/fuzz-artifacts"
    failed=()
    for t in "${targets[@]}"; do
      work="$build/fuzz-work/$t"
      mkdir -p "$work"
      echo "zrpc setup: fuzzing $t for ${seconds}s"
      if ! nice "$build/tests/zrpc_${t}_fuzzer" "$work" "$root/tests/fuzz/corpus/$t" \
          -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=16384 \
          -print_final_stats=1 -artifact_prefix="$build/fuzz-artifacts/$t-" \
          >"$build/fuzz-artifacts/$t.log" 2>&1; then
        tail -n 60 "$build/fuzz-artifacts/$t.log" >&2
        failed+=("$t")
      else
        grep -E "^stat::number_of_executed_units|^#[0-9]+.*DONE" "$build/fuzz-artifacts/$t.log" | tail -n 2
      fi
    done
    if ((${#failed[@]})); then
      echo "zrpc setup: fuzzing found something in: ${failed[*]} (inputs in $build/fuzz-artifacts/;" >&2
      echo "  replay one with $build/tests/zrpc_<target>_fuzzer <file>)" >&2
      exit 1
    fi
    echo "zrpc setup: no findings in ${#targets[@]} targets, ${seconds}s each"
    exit 0
    ;;
  sanitize)
    build="${ZRPC_BUILD_DIR:-$root/build-asan}"
    configure "$build" -DCMAKE_CXX_COMPILER=clang++ -DZRPC_BUILD_BENCH=OFF \
      -DZRPC_SANITIZE=address,undefined -DZRPC_WERROR=ON
    cmake --build "$build" -j2
    cd "$build"
    export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}"
    export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
    exec ctest --output-on-failure -j2 --timeout 300
    ;;
  *)
    echo "usage: tools/setup.sh [demo|test|build|fuzz|fuzz-run [SECONDS]|sanitize]" >&2
    exit 2
    ;;
esac

case "$mode" in
  demo) exec "$build/tools/zrpc-demo" ;;
  test) cd "$build" && exec ctest --output-on-failure -j2 --timeout 300 ;;
esac
