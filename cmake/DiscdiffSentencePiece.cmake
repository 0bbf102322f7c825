# cmake/DiscdiffSentencePiece.cmake: optional SentencePiece (Debian libsentencepiece-dev) for
# subword tokenizers (target discdiff_sentencepiece).
#
# discdiff_sentencepiece is an INTERFACE target that links libsentencepiece and
# libsentencepiece_train and defines DISCDIFF_HAVE_SENTENCEPIECE=1, which compiles in
# include/discdiff/data/sentencepiece.hpp. Without it (library absent, or
# -DDISCDIFF_ENABLE_SENTENCEPIECE=OFF) everything builds and SentencePiece entry points throw
# "built without SentencePiece"; the SentencePiece tests skip themselves.
include_guard(GLOBAL)

option(DISCDIFF_ENABLE_SENTENCEPIECE "Use SentencePiece (libsentencepiece-dev) when it is installed" ON)

if(DISCDIFF_ENABLE_SENTENCEPIECE)
  find_path(DISCDIFF_SPM_INCLUDE_DIR sentencepiece_processor.h)
  find_library(DISCDIFF_SPM_LIBRARY sentencepiece)
  find_library(DISCDIFF_SPM_TRAIN_LIBRARY sentencepiece_train)
  mark_as_advanced(DISCDIFF_SPM_INCLUDE_DIR DISCDIFF_SPM_LIBRARY DISCDIFF_SPM_TRAIN_LIBRARY)
endif()

if(DISCDIFF_ENABLE_SENTENCEPIECE AND DISCDIFF_SPM_INCLUDE_DIR AND DISCDIFF_SPM_LIBRARY
   AND DISCDIFF_SPM_TRAIN_LIBRARY)
  add_library(discdiff_sentencepiece INTERFACE)
  target_include_directories(discdiff_sentencepiece INTERFACE ${DISCDIFF_SPM_INCLUDE_DIR})
  target_link_libraries(discdiff_sentencepiece INTERFACE ${DISCDIFF_SPM_TRAIN_LIBRARY}
    ${DISCDIFF_SPM_LIBRARY})
  target_compile_definitions(discdiff_sentencepiece INTERFACE DISCDIFF_HAVE_SENTENCEPIECE=1)
  message(STATUS "discdiff: SentencePiece found (${DISCDIFF_SPM_LIBRARY}); spm tokenizers enabled (discdiff_sentencepiece)")
else()
  message(STATUS "discdiff: SentencePiece not used; spm tokenizers give 'built without SentencePiece'")
endif()
