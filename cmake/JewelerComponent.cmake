# jeweler_library(NAME SOURCES ... DEPS ... [PRIVATE_DEPS ...])
# Defines library jeweler_NAME (alias jeweler::NAME), exported and installed with
# its public headers (every *.hpp of the folder except those under detail/) as
# the package component NAME (find_package(jeweler COMPONENTS NAME)).
function(jeweler_library name)
  cmake_parse_arguments(ARG "" "" "SOURCES;DEPS;PRIVATE_DEPS" ${ARGN})
  add_library(jeweler_${name} ${ARG_SOURCES})
  add_library(jeweler::${name} ALIAS jeweler_${name})
  set_target_properties(jeweler_${name} PROPERTIES EXPORT_NAME ${name} OUTPUT_NAME jeweler_${name})
  target_include_directories(jeweler_${name} PUBLIC
    $<BUILD_INTERFACE:${JEWELER_INCLUDE_ROOT}>
    $<INSTALL_INTERFACE:${CMAKE_INSTALL_INCLUDEDIR}>)
  target_link_libraries(jeweler_${name} PUBLIC ${ARG_DEPS} PRIVATE ${ARG_PRIVATE_DEPS})
  # One export set per component (jeweler_<name>Targets.cmake), so that
  # find_package(jeweler COMPONENTS ...) loads only what was asked for and
  # looks only for those components' dependencies (jewelerConfig.cmake.in).
  install(TARGETS jeweler_${name} EXPORT jeweler_${name}Targets
    ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
    LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR})
  set_property(GLOBAL APPEND PROPERTY JEWELER_COMPONENTS ${name})
  file(GLOB headers RELATIVE ${CMAKE_CURRENT_SOURCE_DIR} ${CMAKE_CURRENT_SOURCE_DIR}/*.hpp)
  install(FILES ${headers} DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/jeweler/${name})
endfunction()

# jeweler_test(NAME SOURCES ... DEPS ... [LABELS ...])
# A GoogleTest binary registered with CTest. *_redistest binaries start their
# own redis-server through tests/support; they never use a system Redis.
function(jeweler_test name)
  cmake_parse_arguments(ARG "" "TIMEOUT" "SOURCES;DEPS;LABELS" ${ARGN})
  add_executable(${name} ${ARG_SOURCES})
  target_link_libraries(${name} PRIVATE ${ARG_DEPS} GTest::gtest GTest::gmock GTest::gtest_main)
  if(NOT ARG_TIMEOUT)
    set(ARG_TIMEOUT 300)
  endif()
  add_test(NAME ${name} COMMAND ${name})
  set_tests_properties(${name} PROPERTIES TIMEOUT ${ARG_TIMEOUT} LABELS "${ARG_LABELS}")
endfunction()
