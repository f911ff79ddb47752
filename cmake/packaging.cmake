# SPDX-License-Identifier: Apache-2.0
# A Debian package of the install (cpack -G DEB in the build directory): one package, zrpc,
# holding the library, headers, CMake and pkg-config files, the tools, the systemd units and the
# docs. For the Debian layout (lib/x86_64-linux-gnu) configure with -DCMAKE_INSTALL_PREFIX=/usr.
# Depends is computed by dpkg-shlibdeps (package dpkg-dev) from the binaries, plus the -dev
# packages that the installed headers and CMake package need.
set(CPACK_PACKAGE_NAME zrpc)
set(CPACK_PACKAGE_VENDOR "zrpc authors")
set(CPACK_PACKAGE_CONTACT "zrpc maintainers <zrpc@localhost>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "Brokerless RPC for C++ services over ZeroMQ")
set(CPACK_PACKAGE_DESCRIPTION
    "zrpc: RPC, casts, fanout and notifications between C++ services over ZeroMQ, with a\n"
    "matchmaker sidecar (zrpc-matchmaker), a reference service and the zrpc CLI.")
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_RESOURCE_FILE_LICENSE ${CMAKE_CURRENT_SOURCE_DIR}/LICENSE)
set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION libdevel)
set(CPACK_DEBIAN_PACKAGE_HOMEPAGE "https://github.com/zrpc/zrpc")
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
# What a consumer of the headers and of find_package(zrpc) / pkg-config needs besides the
# shared libraries dpkg-shlibdeps finds.
set(CPACK_DEBIAN_PACKAGE_DEPENDS "libabsl-dev, pkg-config")
set(CPACK_DEBIAN_PACKAGE_RECOMMENDS "systemd")
# postinst creates the zrpc group (tools/systemd/zrpc.sysusers) and reloads systemd.
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA ${CMAKE_CURRENT_SOURCE_DIR}/tools/systemd/postinst)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
include(CPack)
