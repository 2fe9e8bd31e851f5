# pkg-config files for the installed static libraries: jeweler-<component>.pc
# per component and jeweler.pc for all of them. Relocatable (prefix from
# ${pcfiledir}), so `cmake --install build --prefix DIR` works anywhere:
#
#   PKG_CONFIG_PATH=DIR/lib/pkgconfig pkg-config --static --cflags --libs jeweler-redis
#
# Static libraries: pass --static, so the private dependencies are linked too.
file(RELATIVE_PATH _jeweler_pc_up "/root/${CMAKE_INSTALL_LIBDIR}/pkgconfig" "/root")
set(_jeweler_pc_dir ${CMAKE_BINARY_DIR}/pkgconfig)

function(jeweler_pkgconfig name)
  cmake_parse_arguments(ARG "" "DESCRIPTION" "REQUIRES;REQUIRES_PRIVATE;LIBS_PRIVATE" ${ARGN})
  list(JOIN ARG_REQUIRES ", " requires)
  list(JOIN ARG_REQUIRES_PRIVATE ", " requires_private)
  list(JOIN ARG_LIBS_PRIVATE " " libs_private)
  set(libs "")
  if(TARGET jeweler_${name})
    set(libs "-L\${libdir} -ljeweler_${name}")
  endif()
  set(pc_name jeweler-${name})
  if(name STREQUAL "all")
    set(pc_name jeweler)
  endif()
  file(WRITE ${_jeweler_pc_dir}/${pc_name}.pc
"prefix=\${pcfiledir}/${_jeweler_pc_up}
libdir=\${prefix}/${CMAKE_INSTALL_LIBDIR}
includedir=\${prefix}/${CMAKE_INSTALL_INCLUDEDIR}

Name: ${pc_name}
Description: ${ARG_DESCRIPTION}
Version: ${PROJECT_VERSION}
Requires: ${requires}
Requires.private: ${requires_private}
Cflags: -I\${includedir} -std=c++20
Libs: ${libs}
Libs.private: ${libs_private}
")
  install(FILES ${_jeweler_pc_dir}/${pc_name}.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)
endfunction()

get_property(_jeweler_components GLOBAL PROPERTY JEWELER_COMPONENTS)
set(_jeweler_all_pc "")
foreach(c ${_jeweler_components})
  list(APPEND _jeweler_all_pc jeweler-${c})
endforeach()

if("redis" IN_LIST _jeweler_components)
  jeweler_pkgconfig(redis DESCRIPTION "jeweler: async Redis client (Asio, RESP3, TLS)"
    REQUIRES spdlog fmt openssl LIBS_PRIVATE -lboost_url -pthread)
endif()
if("core" IN_LIST _jeweler_components)
  jeweler_pkgconfig(core DESCRIPTION "jeweler: ids and error codes" REQUIRES jeweler-redis)
endif()
if("session" IN_LIST _jeweler_components)
  jeweler_pkgconfig(session DESCRIPTION "jeweler: multi-device sessions on Redis"
    REQUIRES jeweler-core REQUIRES_PRIVATE libsodium LIBS_PRIVATE -lboost_json)
endif()
if("cache" IN_LIST _jeweler_components)
  jeweler_pkgconfig(cache DESCRIPTION "jeweler: tenant-isolated cache-aside on Redis"
    REQUIRES jeweler-core LIBS_PRIVATE -lboost_json)
endif()
if("ratelimit" IN_LIST _jeweler_components)
  jeweler_pkgconfig(ratelimit DESCRIPTION "jeweler: sliding-window rate limiting on Redis"
    REQUIRES jeweler-core LIBS_PRIVATE -lboost_json)
endif()
if("store" IN_LIST _jeweler_components)
  jeweler_pkgconfig(store DESCRIPTION "jeweler: the SQLite primary store"
    REQUIRES jeweler-core REQUIRES_PRIVATE sqlite3 libsodium libcrypto
    LIBS_PRIVATE -lboost_json -pthread)
endif()
if("http" IN_LIST _jeweler_components)
  jeweler_pkgconfig(http DESCRIPTION "jeweler: HTTP server framework (Beast)"
    REQUIRES jeweler-core LIBS_PRIVATE -lboost_json -pthread)
endif()
if("app" IN_LIST _jeweler_components)
  jeweler_pkgconfig(app DESCRIPTION "jeweler: the jeweler-server application shell"
    REQUIRES jeweler-http LIBS_PRIVATE -lboost_json)
endif()
jeweler_pkgconfig(all DESCRIPTION "jeweler: every component" REQUIRES ${_jeweler_all_pc})
