# cmake/ConsumerTest.cmake: install discdiff into a fresh temporary prefix, then
# configure, build and run the standalone project examples/consumer against it
# (find_package(discdiff CONFIG REQUIRED), nothing from the source tree).
#
#   cmake -DDISCDIFF_BINARY_DIR=<build dir> -DCONSUMER_SOURCE_DIR=<src>/examples/consumer
#         -DWORK_DIR=<scratch dir> [-DCMAKE_CXX_COMPILER=g++] [-DCONFIG=Release]
#         -P cmake/ConsumerTest.cmake
#
# Registered as the CTest `install.consumer`; `make consumer` runs it directly.
cmake_minimum_required(VERSION 3.21)
foreach(var DISCDIFF_BINARY_DIR CONSUMER_SOURCE_DIR WORK_DIR)
  if(NOT DEFINED ${var} OR "${${var}}" STREQUAL "")
    message(FATAL_ERROR "ConsumerTest: -D${var}=... is required")
  endif()
endforeach()
if(NOT DEFINED CONFIG OR CONFIG STREQUAL "")
  set(CONFIG Release)
endif()

set(prefix "${WORK_DIR}/prefix")
set(build "${WORK_DIR}/build")
file(REMOVE_RECURSE "${WORK_DIR}")
file(MAKE_DIRECTORY "${WORK_DIR}")

function(dd_run step)
  message(STATUS "consumer: ${step}: ${ARGN}")
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "ConsumerTest: ${step} failed (${rc})")
  endif()
endfunction()

dd_run(install ${CMAKE_COMMAND} --install "${DISCDIFF_BINARY_DIR}" --prefix "${prefix}" --config ${CONFIG})
if(NOT EXISTS "${prefix}/share/cmake/discdiff/discdiffConfig.cmake")
  message(FATAL_ERROR "ConsumerTest: no discdiffConfig.cmake under ${prefix}/share/cmake/discdiff")
endif()

set(configure_args -S "${CONSUMER_SOURCE_DIR}" -B "${build}"
  -DCMAKE_BUILD_TYPE=${CONFIG}
  -DCMAKE_PREFIX_PATH=${prefix}
  # Only the temporary prefix: never the build tree's package registry.
  -DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF
  -DCMAKE_FIND_USE_SYSTEM_PACKAGE_REGISTRY=OFF)
if(DEFINED CMAKE_CXX_COMPILER AND NOT CMAKE_CXX_COMPILER STREQUAL "")
  list(APPEND configure_args -DCMAKE_CXX_COMPILER=${CMAKE_CXX_COMPILER})
endif()
dd_run(configure ${CMAKE_COMMAND} ${configure_args})
dd_run(build ${CMAKE_COMMAND} --build "${build}" --config ${CONFIG})

# The consumer must have found the installed copy, not the source tree.
file(STRINGS "${build}/CMakeCache.txt" found_dir REGEX "^discdiff_DIR:")
string(REGEX REPLACE "^discdiff_DIR:[A-Z]+=" "" found_dir "${found_dir}")
file(REAL_PATH "${found_dir}" found_dir)
file(REAL_PATH "${prefix}" real_prefix)
string(FIND "${found_dir}" "${real_prefix}/" at)
if(NOT at EQUAL 0)
  message(FATAL_ERROR "ConsumerTest: discdiff_DIR=${found_dir} is not inside ${real_prefix}")
endif()

dd_run(run "${build}/discdiff_consumer")
message(STATUS "consumer: OK (installed to ${prefix}, found at ${found_dir})")
