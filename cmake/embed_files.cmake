# Turns every file under a folder into a C++ source that holds their bytes, so the dashboard's
# built files (web/ → <build>/web) are compiled into the binary and need no install step.
#
# Run in script mode:
#   cmake -DINPUT_DIR=<dir> -DOUTPUT=<file.cc> -DNAMESPACE=<ns> -DFUNCTION=<name> -P embed_files.cmake
# The output defines `std::span<const till::EmbeddedFile> NAMESPACE::FUNCTION()` (EmbeddedFile is
# declared in src/api/embedded_file.h): one entry per file, `path` relative to INPUT_DIR with "/"
# separators, sorted, and `content` its bytes. Bytes are emitted as hex, so any file (an image, a
# file with a raw-string delimiter in it) embeds the same way.

foreach(var INPUT_DIR OUTPUT NAMESPACE FUNCTION)
  if(NOT DEFINED ${var})
    message(FATAL_ERROR "embed_files.cmake: -D${var}=... is required")
  endif()
endforeach()

file(GLOB_RECURSE files LIST_DIRECTORIES false RELATIVE "${INPUT_DIR}" "${INPUT_DIR}/*")
list(SORT files)
if(NOT files)
  message(FATAL_ERROR "embed_files.cmake: ${INPUT_DIR} has no files")
endif()

set(out "// Generated from the files under ${INPUT_DIR} by cmake/embed_files.cmake. Do not edit.\n")
string(APPEND out "#include <span>\n\n#include \"api/embedded_file.h\"\n\n")
string(APPEND out "namespace ${NAMESPACE} {\nnamespace {\n\n")
set(entries "")
set(index 0)
foreach(path IN LISTS files)
  file(READ "${INPUT_DIR}/${path}" hex HEX)
  string(LENGTH "${hex}" hex_length)
  math(EXPR size "${hex_length} / 2")
  # Sixty-four bytes to a line keeps the generated file readable in a diff tool.
  string(REGEX REPLACE "([0-9a-f][0-9a-f])" "'\\\\x\\1'," bytes "${hex}")
  string(REGEX REPLACE "(('[^']+',){64})" "\\1\n    " bytes "${bytes}")
  string(APPEND out "// ${path}, ${size} bytes\nconstexpr char kFile${index}[] = {\n    ${bytes}'\\0'};\n\n")
  string(APPEND entries "    {\"${path}\", {kFile${index}, ${size}}},\n")
  math(EXPR index "${index} + 1")
endforeach()
string(APPEND out "constexpr till::EmbeddedFile kFiles[] = {\n${entries}};\n\n}  // namespace\n\n")
string(APPEND out "std::span<const till::EmbeddedFile> ${FUNCTION}() { return kFiles; }\n\n")
string(APPEND out "}  // namespace ${NAMESPACE}\n")

# Write only when the bytes changed, so an unchanged build does not trigger a recompile.
if(EXISTS "${OUTPUT}")
  file(READ "${OUTPUT}" previous)
  if(previous STREQUAL out)
    return()
  endif()
endif()
file(WRITE "${OUTPUT}" "${out}")
