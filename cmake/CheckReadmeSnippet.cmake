# cmake/CheckReadmeSnippet.cmake: the README's usage example must equal the
# marked region of the example program that CI compiles and runs.
#
#   cmake -DREADME=README.md -DSOURCE=examples/quickstart.cpp -P cmake/CheckReadmeSnippet.cmake
#
# README.md: the first ```cpp fenced block after the line
#   <!-- snippet: examples/quickstart.cpp -->
# SOURCE: the lines strictly between `// [readme:begin]` and `// [readme:end]`.
# Trailing whitespace on each line is ignored; anything else must match.
cmake_minimum_required(VERSION 3.21)
foreach(var README SOURCE)
  if(NOT DEFINED ${var} OR NOT EXISTS "${${var}}")
    message(FATAL_ERROR "CheckReadmeSnippet: ${var}='${${var}}' does not exist")
  endif()
endforeach()
get_filename_component(source_name "${SOURCE}" NAME)

# Text of `file` strictly between the first `begin` and the next `end` that
# follows it; trailing blanks of every line removed. Fails if either is missing.
function(dd_between file begin end out)
  file(READ "${file}" text)
  string(REGEX REPLACE "[ \t\r]+\n" "\n" text "${text}")
  string(FIND "${text}" "${begin}" b)
  if(b LESS 0)
    message(FATAL_ERROR "CheckReadmeSnippet: '${begin}' not found in ${file}")
  endif()
  string(LENGTH "${begin}" blen)
  math(EXPR b "${b} + ${blen}")
  string(SUBSTRING "${text}" ${b} -1 rest)
  string(FIND "${rest}" "${end}" e)
  if(e LESS 0)
    message(FATAL_ERROR "CheckReadmeSnippet: '${end}' not found after '${begin}' in ${file}")
  endif()
  string(SUBSTRING "${rest}" 0 ${e} body)
  set(${out} "${body}" PARENT_SCOPE)
endfunction()

# README: the marker, optional blank lines, then the ```cpp fence.
file(READ "${README}" readme_text)
string(FIND "${readme_text}" "<!-- snippet: examples/${source_name} -->" m)
if(m LESS 0)
  message(FATAL_ERROR "CheckReadmeSnippet: no '<!-- snippet: examples/${source_name} -->' in ${README}")
endif()
dd_between("${README}" "<!-- snippet: examples/${source_name} -->" "\n```\n" marked)
string(REGEX REPLACE "^\n*```cpp\n" "" readme_block "${marked}")
if(readme_block STREQUAL marked)
  message(FATAL_ERROR "CheckReadmeSnippet: the snippet marker in ${README} must be followed by a ```cpp block")
endif()
string(APPEND readme_block "\n")

dd_between("${SOURCE}" "// [readme:begin]\n" "// [readme:end]" source_block)

if(NOT readme_block STREQUAL source_block)
  set(dir "${CMAKE_CURRENT_BINARY_DIR}")
  file(WRITE "${dir}/readme_snippet.txt" "${readme_block}")
  file(WRITE "${dir}/source_snippet.txt" "${source_block}")
  execute_process(COMMAND diff -u "${dir}/readme_snippet.txt" "${dir}/source_snippet.txt")
  message(FATAL_ERROR "CheckReadmeSnippet: the README's example differs from ${SOURCE} "
                      "(diff above: README first, source second); keep them identical")
endif()
string(REGEX MATCHALL "\n" nl "${source_block}")
list(LENGTH nl n)
message(STATUS "README snippet == ${source_name} (${n} lines)")
