#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# zrpc set-up: installs the Debian packages that are missing, builds with -j2, then runs
# the demo (`tools/setup.sh demo`, the default) or the whole test suite (`tools/setup.sh test`).
# Safe to run again: when everything is installed it goes straight to the (incremental) build.
#
#   tools/setup.sh [demo|test|build|fuzz|sanitize]
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
          libgtest-dev libgmock-dev libbenchmark-dev libhiredis-dev redis-server python3-zmq)
if [[ "$mode" == fuzz || "$mode" == sanitize ]]; then
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

configure() {
  local dir="$1"; shift
  cmake -S "$root" -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo "$@" ${ZRPC_CMAKE_ARGS:-} >/dev/null
}

case "$mode" in
  demo|build|test)
    configure "$build"
    cmake --build "$build" -j2
    ;;
  fuzz)
    build="${ZRPC_BUILD_DIR:-$root/build-fuzz}"
    # The whole library is instrumented for coverage (fuzzer-no-link), so libFuzzer is guided by
    # the decoders' own branches, not only the target's.
    configure "$build" -DCMAKE_CXX_COMPILER=clang++ -DZRPC_BUILD_FUZZ=ON \
      -DZRPC_BUILD_BENCH=OFF -DZRPC_SANITIZE=address,undefined,fuzzer-no-link
    cmake --build "$build" -j2 --target zrpc_decode_fuzzer
    echo "zrpc setup: run $build/tests/zrpc_decode_fuzzer $root/tests/fuzz/corpus -max_total_time=60"
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
    echo "usage: tools/setup.sh [demo|test|build|fuzz|sanitize]" >&2
    exit 2
    ;;
esac

case "$mode" in
  demo) exec "$build/tools/zrpc-demo" ;;
  test) cd "$build" && exec ctest --output-on-failure -j2 --timeout 300 ;;
esac
