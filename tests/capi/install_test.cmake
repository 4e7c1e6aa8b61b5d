# The installed C library, used from outside the source tree: installs this build's
# slope_c_api component into WORK/prefix, checks the files and the exported symbols, then builds
# tests/capi/example.c against the prefix twice — with pkg-config (when found) and with
# find_package(slope) — and runs both.
#   cmake -DBUILD_DIR= -DSOURCE_DIR= -DWORK= -DC_COMPILER= -DPKG_CONFIG= -DNM= -DGENERATOR=
#         -P install_test.cmake
cmake_minimum_required(VERSION 3.25)

function(run what)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "${what} failed (${rc}):\n${ARGN}\n${out}\n${err}")
  endif()
  message(STATUS "${what}: ok")
  set(run_out "${out}" PARENT_SCOPE)
endfunction()

file(REMOVE_RECURSE "${WORK}")
file(MAKE_DIRECTORY "${WORK}")
set(prefix "${WORK}/prefix")
run("cmake --install" "${CMAKE_COMMAND}" --install "${BUILD_DIR}" --prefix "${prefix}"
    --component slope_c_api)

# What a prefix holds: the shared library, the headers, the CMake package, the pkg-config file.
file(GLOB libdir_so LIST_DIRECTORIES false "${prefix}/lib*/libslope.so"
     "${prefix}/lib*/*/libslope.so")
list(LENGTH libdir_so n)
if(NOT n EQUAL 1)
  message(FATAL_ERROR "expected one libslope.so under ${prefix}, found: ${libdir_so}")
endif()
get_filename_component(libdir "${libdir_so}" DIRECTORY)
foreach(f "${prefix}/include/slope/slope.h" "${prefix}/include/slope/version.h"
          "${libdir}/cmake/slope/slopeConfig.cmake" "${libdir}/cmake/slope/slopeConfigVersion.cmake"
          "${libdir}/cmake/slope/slopeTargets.cmake" "${libdir}/pkgconfig/slope.pc")
  if(NOT EXISTS "${f}")
    message(FATAL_ERROR "not installed: ${f}")
  endif()
endforeach()

# Only the C interface is exported: every defined dynamic symbol is slope_*.
if(NM)
  run("nm -D" "${NM}" -D --defined-only "${libdir_so}")
  string(REPLACE "\n" ";" lines "${run_out}")
  set(n_slope 0)
  foreach(line IN LISTS lines)
    if(line MATCHES "^[0-9a-f]+ [A-Za-z] (.+)$")
      set(sym "${CMAKE_MATCH_1}")
      if(sym MATCHES "^slope_")
        math(EXPR n_slope "${n_slope} + 1")
      else()
        message(FATAL_ERROR "libslope.so exports ${sym}; only slope_* should be visible")
      endif()
    endif()
  endforeach()
  if(n_slope LESS 10)
    message(FATAL_ERROR "libslope.so exports only ${n_slope} slope_* symbols:\n${run_out}")
  endif()
  message(STATUS "exported symbols: ${n_slope}, all slope_*")
endif()

# The example, copied out of the source tree so that nothing finds slope's own headers.
file(COPY "${SOURCE_DIR}/tests/capi/example.c" DESTINATION "${WORK}/app")
file(COPY "${SOURCE_DIR}/tests/capi/consumer/CMakeLists.txt" DESTINATION "${WORK}/app")
set(example "${WORK}/app/example.c")

if(PKG_CONFIG)
  set(pc_env "${CMAKE_COMMAND}" -E env "PKG_CONFIG_PATH=${libdir}/pkgconfig")
  run("pkg-config" ${pc_env} "${PKG_CONFIG}" --cflags --libs slope)
  string(STRIP "${run_out}" flags)
  separate_arguments(flags UNIX_COMMAND "${flags}")
  run("cc with pkg-config" "${C_COMPILER}" -std=c99 -Wall -Wextra -Wpedantic -Werror
      "${example}" ${flags} -lm -o "${WORK}/app/example_pc")
  run("example (pkg-config)" "${CMAKE_COMMAND}" -E env "LD_LIBRARY_PATH=${libdir}"
      "${WORK}/app/example_pc")
  message(STATUS "${run_out}")
else()
  message(STATUS "pkg-config not found: checked find_package(slope) only")
endif()

run("configure with find_package" "${CMAKE_COMMAND}" -S "${WORK}/app"
    -B "${WORK}/consumer" -G "${GENERATOR}" "-DCMAKE_PREFIX_PATH=${prefix}"
    "-DCMAKE_C_COMPILER=${C_COMPILER}" "-DSLOPE_EXAMPLE=${example}" -DCMAKE_BUILD_TYPE=Release)
run("build with find_package" "${CMAKE_COMMAND}" --build "${WORK}/consumer")
run("example (find_package)" "${WORK}/consumer/example")
message(STATUS "${run_out}")
