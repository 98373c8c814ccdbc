# CPack settings for prefsync_<version>_<arch>.deb. Build it with `cpack -G DEB` in the build
# directory; scripts/package-deb.sh builds it and runs lintian in one command.
set(PREFSYNC_DEB_MAINTAINER "prefsync maintainers <prefsync@example.com>"
    CACHE STRING "Maintainer field of the Debian package")
set(deb_dir ${CMAKE_CURRENT_LIST_DIR})

# Debian wants the changelog compressed and the copyright file as is, in the docs directory.
add_custom_command(
  OUTPUT ${PROJECT_BINARY_DIR}/packaging/changelog.gz
  COMMAND ${CMAKE_COMMAND} -E make_directory ${PROJECT_BINARY_DIR}/packaging
  COMMAND ${CMAKE_COMMAND} -E copy ${deb_dir}/changelog ${PROJECT_BINARY_DIR}/packaging/changelog
  COMMAND gzip -9 -n -f ${PROJECT_BINARY_DIR}/packaging/changelog
  DEPENDS ${deb_dir}/changelog
  VERBATIM)
add_custom_target(deb_changelog ALL DEPENDS ${PROJECT_BINARY_DIR}/packaging/changelog.gz)
install(FILES ${PROJECT_BINARY_DIR}/packaging/changelog.gz ${deb_dir}/copyright DESTINATION ${CMAKE_INSTALL_DOCDIR})

set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME prefsync)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_VENDOR "prefsync")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "bulk synchronisation with the MyPreferences Profiles v2 API")
# Lines under 80 columns: the Description field is shown as written.
set(CPACK_PACKAGE_DESCRIPTION "\
prefsync pushes rows from CSV files and SQL tables (SQLite, PostgreSQL) to
the PossibleNOW MyPreferences Profiles v2 API as Profile JSON, once, under
the API's rate limits, and pulls profiles back out into files and tables.
Every update is journaled before it is sent, so an interrupted run is
continued without losing or repeating confirmed work.

The package ships the prefsync command, systemd units for a daemon, a
nightly sync timer and a one-shot backfill, the prefsync system account,
an example configuration, man pages, and a Grafana dashboard with
Prometheus alert rules. Nothing is started or enabled on installation.")
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_MAINTAINER "${PREFSYNC_DEB_MAINTAINER}")
set(CPACK_DEBIAN_PACKAGE_SECTION net)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
# Depends computed by dpkg-shlibdeps from the libraries the binary really links.
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
# systemd-sysusers makes the account (else useradd); the units need systemd to be useful.
set(CPACK_DEBIAN_PACKAGE_RECOMMENDS "systemd")
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
    ${deb_dir}/conffiles ${deb_dir}/postinst ${deb_dir}/prerm ${deb_dir}/postrm)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
set(CPACK_STRIP_FILES ON)
# Install with DESTDIR and the real prefix, so install-prefix-paths.cmake writes
# ExecStart=/usr/bin/prefsync and puts the configuration in /etc, not in the staging tree.
set(CPACK_SET_DESTDIR ON)
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_INSTALL_PREFIX /usr)
set(CPACK_SOURCE_GENERATOR "")
include(CPack)
