# Writes version.h at build time (cmake -P, from the supercluster_version target in
# CMakeLists.txt), so that `supercluster version` and the benchmarks' JSON name the tree
# that was really built: the commit, with "-dirty" when tracked files differ from it (a
# benchmark run on uncommitted changes then says so). configure_file rewrites the header
# only when its text changes, so an unchanged tree recompiles nothing.
#
# Inputs (-D): SOURCE_DIR (the repository), INPUT (version.h.in), OUTPUT (version.h),
# PROJECT_VERSION.
execute_process(COMMAND git -C ${SOURCE_DIR} rev-parse --short HEAD
                OUTPUT_VARIABLE SUPERCLUSTER_GIT_REVISION OUTPUT_STRIP_TRAILING_WHITESPACE
                RESULT_VARIABLE revision_result ERROR_QUIET)
if(NOT revision_result EQUAL 0 OR NOT SUPERCLUSTER_GIT_REVISION)
  set(SUPERCLUSTER_GIT_REVISION "unknown")  # not a git checkout (a source tarball)
else()
  # Untracked files are left out: build folders and benchmark output are not the source.
  execute_process(COMMAND git -C ${SOURCE_DIR} status --porcelain --untracked-files=no
                  OUTPUT_VARIABLE changed_files RESULT_VARIABLE status_result ERROR_QUIET)
  if(status_result EQUAL 0 AND NOT changed_files STREQUAL "")
    string(APPEND SUPERCLUSTER_GIT_REVISION "-dirty")
  endif()
endif()
configure_file(${INPUT} ${OUTPUT} @ONLY)
