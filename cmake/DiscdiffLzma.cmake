# cmake/DiscdiffLzma.cmake: optional liblzma for reading .xz corpora (target discdiff_lzma).
#
# discdiff_lzma is an INTERFACE target that links LibLZMA::LibLZMA (CMake's
# FindLibLZMA) and defines DISCDIFF_HAVE_LZMA=1, which enables xz decoding in
# include/discdiff/data/corpus.hpp (read_text). Without it read_text rejects
# .xz files with a message asking to decompress them first (xz -dk FILE).
include_guard(GLOBAL)

find_package(LibLZMA)

if(LibLZMA_FOUND)
  add_library(discdiff_lzma INTERFACE)
  target_link_libraries(discdiff_lzma INTERFACE LibLZMA::LibLZMA)
  target_compile_definitions(discdiff_lzma INTERFACE DISCDIFF_HAVE_LZMA=1)
  if(LIBLZMA_VERSION)
    set(_dd_lzma_version ${LIBLZMA_VERSION})
  else()
    set(_dd_lzma_version ${LIBLZMA_VERSION_STRING})  # CMake < 3.26
  endif()
  message(STATUS "discdiff: liblzma ${_dd_lzma_version} found; .xz corpora are read directly (discdiff_lzma)")
else()
  message(STATUS "discdiff: liblzma not found; .xz corpora must be decompressed first (discdiff_lzma not defined)")
endif()
