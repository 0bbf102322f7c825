# cmake/DiscdiffTesting.cmake: helpers shared by tests/, cuda/ and examples/.
# Included by the top-level CMakeLists.txt before any subdirectory, so every
# directory (cuda/ included) can register its doctest files the same way.
include_guard(GLOBAL)

# One CTest entry per test source file (doctest --source-file filter), labelled
# by `label` (unit, thrust, cuda, ...): robust to any characters in test-case
# names, and ctest -j spreads the files over the cores. main.cpp is skipped.
#   discdiff_add_doctest_files(<target> <label> <sources>...)
function(discdiff_add_doctest_files target label)
  foreach(src IN LISTS ARGN)
    get_filename_component(name ${src} NAME_WE)
    if(name STREQUAL "main")
      continue()
    endif()
    add_test(NAME ${label}.${name} COMMAND ${target} --source-file=*${name}.cpp --no-version)
    set_tests_properties(${label}.${name} PROPERTIES LABELS ${label})
  endforeach()
endfunction()

# All build-system targets defined in `dir` and its subdirectories (recursive).
function(discdiff_collect_targets out dir)
  get_property(targets DIRECTORY ${dir} PROPERTY BUILDSYSTEM_TARGETS)
  get_property(subdirs DIRECTORY ${dir} PROPERTY SUBDIRECTORIES)
  foreach(sub IN LISTS subdirs)
    discdiff_collect_targets(sub_targets ${sub})
    list(APPEND targets ${sub_targets})
  endforeach()
  set(${out} ${targets} PARENT_SCOPE)
endfunction()
