#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Installs zrpc from BUILD_DIR into a temporary prefix, checks that the installed tools start
# with no LD_LIBRARY_PATH (their RPATH), then builds and runs a separate consumer project against
# it twice: with find_package(zrpc CONFIG) and with pkg-config. Every step is bounded in time.
set -euo pipefail
build_dir="$1"; src_dir="$2"
prefix="$(mktemp -d /tmp/zrpc-install-XXXXXX)"
work="$(mktemp -d /tmp/zrpc-consumer-build-XXXXXX)"
trap 'rm -rf "$prefix" "$work"' EXIT
fail() { echo "FAIL: $*"; exit 1; }

timeout 120 cmake --install "$build_dir" --prefix "$prefix" > /dev/null
lib="$(ls "$prefix"/lib*/libzrpc.so.0 "$prefix"/lib/*/libzrpc.so.0 2>/dev/null | head -1 || true)"
[[ -n "$lib" ]] || fail "no libzrpc.so.0 installed"
libdir="$(dirname "$lib")"
soname="$(objdump -p "$lib" | awk '/SONAME/ {print $2}')"
[[ "$soname" == "libzrpc.so.0" ]] || fail "SONAME is '$soname'"
[[ -f "$prefix/include/zrpc/zrpc.h" ]] || fail "headers not installed"
[[ -f "$libdir/cmake/zrpc/zrpcConfig.cmake" ]] || fail "no CMake package in $libdir/cmake/zrpc"
[[ -f "$libdir/pkgconfig/zrpc.pc" ]] || fail "no zrpc.pc in $libdir/pkgconfig"

# The tools, if built, find libzrpc through their RPATH.
if [[ -x "$prefix/bin/zrpc" ]]; then
  out="$(env -u LD_LIBRARY_PATH timeout 20 "$prefix/bin/zrpc" --help 2>&1)" ||
    fail "the installed zrpc does not start without LD_LIBRARY_PATH: $out"
fi

# 1. CMake package (C++20 comes from the target: the consumer does not ask for it).
timeout 120 cmake -S "$src_dir/tests/packaging/consumer" -B "$work/cmake" \
  -DCMAKE_PREFIX_PATH="$prefix" > /dev/null
timeout 240 cmake --build "$work/cmake" > /dev/null
LD_LIBRARY_PATH="$libdir" timeout 60 "$work/cmake/consumer"

# 2. pkg-config (the consumer chooses the standard: the .pc has no -std).
export PKG_CONFIG_PATH="$libdir/pkgconfig"
timeout 240 g++ -std=c++20 -o "$work/pc-consumer" "$src_dir/tests/packaging/consumer/main.cc" \
  $(pkg-config --cflags --libs zrpc)
LD_LIBRARY_PATH="$libdir" timeout 60 "$work/pc-consumer"
echo "1 passed, 0 failed"
