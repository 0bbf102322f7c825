# cmake/DiscdiffBlas.cmake: the optional OpenBLAS fast path (target discdiff_blas).
#
# discdiff_blas is an INTERFACE target with OpenBLAS's cblas.h and library and the
# definition DISCDIFF_HAVE_CBLAS=1; code that links it may call cblas_sgemm /
# cblas_dgemm (or define EIGEN_USE_BLAS), and falls back to Eigen's own GEMM where
# the target is absent. Debian ships OpenBLAS in three threading flavours; we
# prefer the OpenMP one (libopenblas-openmp-dev, runtime libopenblas0-openmp) so
# that OpenBLAS and our OpenMP regions share libgomp's thread pool instead of
# oversubscribing the cores, and take whichever libopenblas the system selects
# otherwise.
include_guard(GLOBAL)

if(CMAKE_LIBRARY_ARCHITECTURE)
  set(_dd_multiarch ${CMAKE_LIBRARY_ARCHITECTURE})
else()
  set(_dd_multiarch x86_64-linux-gnu)
endif()

find_library(DISCDIFF_OPENBLAS_LIBRARY NAMES openblas
  HINTS /usr/lib/${_dd_multiarch}/openblas-openmp
  DOC "OpenBLAS library (the OpenMP flavour where installed)")
find_path(DISCDIFF_CBLAS_INCLUDE_DIR NAMES cblas.h
  HINTS /usr/include/${_dd_multiarch}/openblas-openmp
        /usr/include/${_dd_multiarch}/openblas-pthread
        /usr/include/${_dd_multiarch}
  PATH_SUFFIXES openblas
  DOC "Directory with OpenBLAS's cblas.h")
mark_as_advanced(DISCDIFF_OPENBLAS_LIBRARY DISCDIFF_CBLAS_INCLUDE_DIR)

if(DISCDIFF_OPENBLAS_LIBRARY AND DISCDIFF_CBLAS_INCLUDE_DIR)
  add_library(discdiff_blas INTERFACE)
  target_include_directories(discdiff_blas SYSTEM INTERFACE ${DISCDIFF_CBLAS_INCLUDE_DIR})
  target_link_libraries(discdiff_blas INTERFACE ${DISCDIFF_OPENBLAS_LIBRARY})
  target_compile_definitions(discdiff_blas INTERFACE DISCDIFF_HAVE_CBLAS=1)
  message(STATUS "discdiff: OpenBLAS ${DISCDIFF_OPENBLAS_LIBRARY} (cblas.h in ${DISCDIFF_CBLAS_INCLUDE_DIR})")
else()
  message(STATUS "discdiff: OpenBLAS not found; Eigen's GEMM is used (discdiff_blas not defined)")
endif()
