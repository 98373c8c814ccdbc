# Run at install time (`cmake --install`, and by CPack for the .deb), where the prefix is
# known: the units name the installed binary, and a /usr install keeps its configuration in
# /etc, not /usr/etc (GNUInstallDirs' rule, which at configure time would only see the
# configure-time prefix). Set by the caller: PREFSYNC_SOURCE_DIR, PREFSYNC_BINARY_DIR,
# PREFSYNC_BINDIR, PREFSYNC_UNIT_DIR.
if(CMAKE_INSTALL_PREFIX STREQUAL "/usr")
  set(sysconfdir "/etc")
else()
  set(sysconfdir "${CMAKE_INSTALL_PREFIX}/etc")
endif()
if(IS_ABSOLUTE "${PREFSYNC_UNIT_DIR}")
  set(unitdir "${PREFSYNC_UNIT_DIR}")
else()
  set(unitdir "${CMAKE_INSTALL_PREFIX}/${PREFSYNC_UNIT_DIR}")
endif()

# One staging directory per destination: installs into different places (a test's stage
# and the package, under ctest -j) may run at the same time.
string(MD5 destination "$ENV{DESTDIR}${CMAKE_INSTALL_PREFIX}")
set(staged "${PREFSYNC_BINARY_DIR}/systemd/${destination}")
foreach(unit prefsync.service prefsync-sync@.service prefsync-sync@.timer prefsync-backfill@.service)
  file(READ "${PREFSYNC_SOURCE_DIR}/systemd/${unit}" text)
  string(REPLACE "/usr/bin/prefsync" "${CMAKE_INSTALL_PREFIX}/${PREFSYNC_BINDIR}/prefsync" text "${text}")
  file(WRITE "${staged}/${unit}" "${text}")
  file(INSTALL "${staged}/${unit}" DESTINATION "${unitdir}"
       PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ)
endforeach()
# The example, not the live prefsync.yaml: the units start from the administrator's own
# file, and an upgrade that changes the example never asks about their configuration.
file(INSTALL "${PREFSYNC_SOURCE_DIR}/examples/prefsync.yaml" DESTINATION "${sysconfdir}/prefsync"
     RENAME prefsync.yaml.example PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ)
