#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Builds the .deb with CPack from BUILD_DIR, unpacks it into a scratch root (dpkg -x: nothing is
# installed on this machine), and checks it as a user of the package would: its control fields,
# the tools starting with no LD_LIBRARY_PATH (their RPATH), the systemd units (checked by
# check_units.sh, and by `systemd-analyze verify` when systemd is installed), and a separate
# project built against the package's CMake package and pkg-config file and run.
# Exit 77 (skipped) when dpkg-deb is not installed.
set -euo pipefail
build_dir="$1"; src_dir="$2"
command -v dpkg-deb >/dev/null || { echo "SKIP: dpkg-deb is not installed"; exit 77; }
work="$(mktemp -d /tmp/zrpc-deb-XXXXXX)"
trap 'rm -rf "$work"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
t() { timeout "$@"; }  # every step is bounded

# 1. The package.
t 240 cpack -G DEB -B "$work/cpack" --config "$build_dir/CPackConfig.cmake" > "$work/cpack.log" 2>&1 ||
  { tail -n 30 "$work/cpack.log"; fail "cpack -G DEB failed"; }
deb="$(ls "$work"/cpack/*.deb | head -1)"
[[ -f "$deb" ]] || fail "cpack made no .deb"
[[ "$(dpkg-deb -f "$deb" Package)" == zrpc ]] || fail "package name is '$(dpkg-deb -f "$deb" Package)'"
depends="$(dpkg-deb -f "$deb" Depends)"
for dep in libzmq5 libhiredis libsimdjson libabsl libstdc++6 libc6; do
  [[ "$depends" == *"$dep"* ]] || fail "Depends lacks $dep: $depends"
done
dpkg-deb -c "$deb" | awk '{print $6}' | sed 's|^\./||' > "$work/contents"
for f in usr/bin/zrpc usr/bin/zrpc-matchmaker usr/bin/zrpc-service usr/include/zrpc/zrpc.h \
         usr/lib/systemd/system/zrpc-matchmaker.service usr/lib/systemd/system/zrpc-service@.service \
         usr/lib/sysusers.d/zrpc.conf usr/share/doc/zrpc/README.md usr/share/doc/zrpc/LICENSE; do
  grep -qx "$f" "$work/contents" || fail "the package lacks /$f"
done
for f in 'lib.*/libzrpc\.so\.0$' 'lib.*/cmake/zrpc/zrpcConfig\.cmake$' 'lib.*/pkgconfig/zrpc\.pc$'; do
  grep -qE "^usr/$f" "$work/contents" || fail "the package lacks a file matching /usr/$f"
done
dpkg-deb -e "$deb" "$work/control"
[[ -x "$work/control/postinst" ]] || fail "the package has no executable postinst"

# 2. Unpacked into a scratch root; the tools start with no LD_LIBRARY_PATH.
root="$work/root"
dpkg -x "$deb" "$root"
for tool in zrpc zrpc-matchmaker zrpc-service; do
  out="$(env -u LD_LIBRARY_PATH timeout 20 "$root/usr/bin/$tool" --help 2>&1)" ||
    fail "$tool --help from the package failed: $out"
  [[ "$out" == *usage* ]] || fail "$tool --help printed no usage: $out"
  lib="$(env -u LD_LIBRARY_PATH ldd "$root/usr/bin/$tool" | awk '/libzrpc\.so/ {print $3}')"
  [[ -n "$lib" && "$(readlink -f "$lib")" == "$root"/usr/lib*/libzrpc.so.0* ]] ||
    fail "$tool loads libzrpc from '$lib', not from the package"
done

# 3. The systemd units.
bash "$src_dir/tests/packaging/check_units.sh" "$root"
if command -v systemd-analyze >/dev/null; then
  # Instances of the template, as systemd would load them; binaries are looked up in the root.
  units="$work/units"
  mkdir -p "$units"
  cp "$root/usr/lib/systemd/system/zrpc-matchmaker.service" "$units/"
  cp "$root/usr/lib/systemd/system/zrpc-service@.service" "$units/zrpc-service@compute.service"
  for u in "$units"/*.service; do
    sed -i "s|^ExecStart=/usr/bin/|ExecStart=$root/usr/bin/|" "$u"
  done
  if ! t 60 systemd-analyze verify --man=no "$units"/*.service > "$work/verify.log" 2>&1; then
    cat "$work/verify.log"; fail "systemd-analyze verify refused the units"
  fi
  # It exits 0 for some problems it only prints: none of ours may be mentioned.
  if grep -E "zrpc-(matchmaker|service)" "$work/verify.log"; then
    fail "systemd-analyze verify reported problems in the units"
  fi
  echo "systemd-analyze verify: the units are valid"
else
  echo "systemd-analyze is not installed: the units were checked by check_units.sh only"
fi

# 4. A separate project against the package: CMake package (C++20 comes from the target), then
# pkg-config (no -std in the .pc: the consumer chooses it).
prefix="$root/usr"
libdir="$(dirname "$(ls "$prefix"/lib*/libzrpc.so.0 "$prefix"/lib/*/libzrpc.so.0 2>/dev/null | head -1)")"
t 120 cmake -S "$src_dir/tests/packaging/consumer" -B "$work/cmake" -DCMAKE_PREFIX_PATH="$prefix" \
  > "$work/consumer.log" 2>&1 || { cat "$work/consumer.log"; fail "the consumer does not configure"; }
t 240 cmake --build "$work/cmake" > "$work/consumer.log" 2>&1 ||
  { cat "$work/consumer.log"; fail "the consumer does not build against the package's CMake files"; }
LD_LIBRARY_PATH="$libdir" timeout 60 "$work/cmake/consumer"
export PKG_CONFIG_PATH="$libdir/pkgconfig"
cflags="$(pkg-config --cflags zrpc)"
[[ "$cflags" != *-std=* ]] || fail "the .pc sets the C++ standard: $cflags"
incdir="$(sed -n 's/^-I\([^ ]*\).*/\1/p' <<< "$cflags")"
[[ "$(readlink -f "$incdir")" == "$(readlink -f "$prefix/include")" ]] ||
  fail "the .pc's include dir is not the package's: $cflags"
t 240 g++ -std=c++20 -o "$work/pc-consumer" "$src_dir/tests/packaging/consumer/main.cc" \
  $(pkg-config --cflags --libs zrpc) || fail "the consumer does not build with pkg-config"
LD_LIBRARY_PATH="$libdir" timeout 60 "$work/pc-consumer"
echo "1 passed, 0 failed"
