#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Installs zrpc from BUILD_DIR into a temporary prefix, then builds and runs a separate consumer
# project against it twice: with find_package(zrpc CONFIG) and with pkg-config.
set -euo pipefail
build_dir="$1"; src_dir="$2"
prefix="$(mktemp -d /tmp/zrpc-install-XXXXXX)"
work="$(mktemp -d /tmp/zrpc-consumer-build-XXXXXX)"
trap 'rm -rf "$prefix" "$work"' EXIT

cmake --install "$build_dir" --prefix "$prefix" > /dev/null
lib="$(ls "$prefix"/lib*/libzrpc.so.0* 2>/dev/null | head -1 || true)"
[[ -n "$lib" ]] || { echo "FAIL: no libzrpc.so.0 installed"; exit 1; }
soname="$(objdump -p "$lib" | awk '/SONAME/ {print $2}')"
[[ "$soname" == "libzrpc.so.0" ]] || { echo "FAIL: SONAME is '$soname'"; exit 1; }
[[ -f "$prefix/include/zrpc/zrpc.h" ]] || { echo "FAIL: headers not installed"; exit 1; }

# 1. CMake package.
cmake -S "$src_dir/tests/packaging/consumer" -B "$work/cmake" -DCMAKE_PREFIX_PATH="$prefix" > /dev/null
cmake --build "$work/cmake" -j2 > /dev/null
LD_LIBRARY_PATH="$(dirname "$lib")" "$work/cmake/consumer"

# 2. pkg-config.
export PKG_CONFIG_PATH="$(dirname "$lib")/pkgconfig"
g++ -o "$work/pc-consumer" "$src_dir/tests/packaging/consumer/main.cc" $(pkg-config --cflags --libs zrpc)
LD_LIBRARY_PATH="$(dirname "$lib")" "$work/pc-consumer"
echo "1 passed, 0 failed"
