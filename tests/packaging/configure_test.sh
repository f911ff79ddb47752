#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Configuring zrpc for an install needs none of the test tools: with ZRPC_BUILD_TESTS=OFF and
# ZRPC_BUILD_BENCH=OFF (and as a subproject, where they and -Werror default to OFF) CMake must not
# look for GoogleTest or Google Benchmark (both are made unfindable here), and a /usr prefix gets
# Debian's multiarch library directory.
set -euo pipefail
src_dir="$1"
work="$(mktemp -d /tmp/zrpc-configure-XXXXXX)"
trap 'rm -rf "$work"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
hide=(-DCMAKE_DISABLE_FIND_PACKAGE_GTest=ON -DCMAKE_DISABLE_FIND_PACKAGE_benchmark=ON)
cache() { sed -n "s/^$2:[A-Z]*=//p" "$1/CMakeCache.txt"; }

# 1. zrpc on its own, as the README's install does.
timeout 120 cmake -S "$src_dir" -B "$work/top" -DCMAKE_INSTALL_PREFIX=/usr -DZRPC_BUILD_TESTS=OFF \
  -DZRPC_BUILD_BENCH=OFF "${hide[@]}" > "$work/top.log" 2>&1 ||
  { cat "$work/top.log"; fail "configuring for an install failed"; }
libdir="$(cache "$work/top" CMAKE_INSTALL_LIBDIR)"
if command -v dpkg-architecture >/dev/null; then
  multiarch="$(dpkg-architecture -qDEB_HOST_MULTIARCH)"
  [[ "$libdir" == "lib/$multiarch" ]] || fail "LIBDIR for /usr is '$libdir', not lib/$multiarch"
fi
[[ -z "$(cache "$work/top" GTest_DIR)" ]] || fail "GoogleTest was looked for"

# 2. zrpc as a subproject: tests, benchmarks and -Werror default to OFF.
mkdir -p "$work/outer"
cat > "$work/outer/CMakeLists.txt" <<CMAKE
cmake_minimum_required(VERSION 3.22)
project(outer LANGUAGES CXX)
add_subdirectory("$src_dir" zrpc)
CMAKE
timeout 120 cmake -S "$work/outer" -B "$work/sub" "${hide[@]}" > "$work/sub.log" 2>&1 ||
  { cat "$work/sub.log"; fail "configuring zrpc as a subproject failed"; }
for option in ZRPC_BUILD_TESTS ZRPC_BUILD_BENCH ZRPC_WERROR; do
  [[ "$(cache "$work/sub" "$option")" == OFF ]] ||
    fail "$option is '$(cache "$work/sub" "$option")' in a subproject, not OFF"
done
echo "1 passed, 0 failed"
