# SPDX-License-Identifier: Apache-2.0
# systemd units (tools/systemd/): zrpc-matchmaker.service (the sidecar, Type=notify) and the
# zrpc-service@.service template, plus a sysusers.d file for the zrpc group whose members may use
# the sidecar's socket. Installed in lib/systemd/system under the prefix (/usr/lib/systemd/system
# for a /usr install, as Debian's packages do), not LIBDIR: systemd does not look in the
# multiarch directory. The ExecStart paths are written at install time, so a .deb made by CPack
# (which installs again under /usr) names /usr/bin.
set(ZRPC_SYSTEMD_UNIT_DIR "lib/systemd/system" CACHE STRING
    "Where systemd units are installed, relative to the prefix")
set(ZRPC_SYSUSERS_DIR "lib/sysusers.d" CACHE STRING
    "Where the sysusers.d file is installed, relative to the prefix")
set(ZRPC_SYSTEMD_SOURCES zrpc-matchmaker.service zrpc-service@.service)
set(ZRPC_SYSTEMD_BUILD_DIR ${CMAKE_CURRENT_BINARY_DIR}/systemd)
foreach(unit IN LISTS ZRPC_SYSTEMD_SOURCES)
  set(src ${CMAKE_CURRENT_SOURCE_DIR}/tools/systemd/${unit}.in)
  set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS ${src})
  install(CODE "
    set(bindir \"${CMAKE_INSTALL_BINDIR}\")
    if(NOT IS_ABSOLUTE \"\${bindir}\")
      set(bindir \"\${CMAKE_INSTALL_PREFIX}/\${bindir}\")
    endif()
    file(READ \"${src}\" text)
    string(REPLACE \"@BINDIR@\" \"\${bindir}\" text \"\${text}\")
    file(WRITE \"${ZRPC_SYSTEMD_BUILD_DIR}/${unit}\" \"\${text}\")
  ")
  install(FILES ${ZRPC_SYSTEMD_BUILD_DIR}/${unit} DESTINATION ${ZRPC_SYSTEMD_UNIT_DIR})
endforeach()
install(FILES ${CMAKE_CURRENT_SOURCE_DIR}/tools/systemd/zrpc.sysusers
        DESTINATION ${ZRPC_SYSUSERS_DIR} RENAME zrpc.conf)
