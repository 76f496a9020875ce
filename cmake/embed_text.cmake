# Turns a text file into a C++ source that returns its bytes, so data files (data/pricing.json)
# are compiled into the binary and need no install step.
#
# Run in script mode:
#   cmake -DINPUT=<file> -DOUTPUT=<file.cc> -DNAMESPACE=<ns> -DFUNCTION=<name> -P embed_text.cmake
# The output defines `std::string NAMESPACE::FUNCTION()`, which returns the input byte for byte.
#
# The text is emitted as a sequence of raw string literals of at most kChunkBytes each, joined at
# run time: compilers cap the length of one string literal (MSVC at 16 KiB per piece and 64 KiB
# after concatenation; C++ only guarantees 65536), and separate literals are never concatenated.

foreach(var INPUT OUTPUT NAMESPACE FUNCTION)
  if(NOT DEFINED ${var})
    message(FATAL_ERROR "embed_text.cmake: -D${var}=... is required")
  endif()
endforeach()

set(kChunkBytes 16000)
set(delimiter "till_embed")

file(READ "${INPUT}" content)
string(LENGTH "${content}" size)
if(size EQUAL 0)
  message(FATAL_ERROR "embed_text.cmake: ${INPUT} is empty")
endif()
string(FIND "${content}" ")${delimiter}\"" clash)
if(NOT clash EQUAL -1)
  message(FATAL_ERROR
          "embed_text.cmake: ${INPUT} contains the raw-string delimiter )${delimiter}\"")
endif()

get_filename_component(input_name "${INPUT}" NAME)
set(out "// Generated from ${input_name} by cmake/embed_text.cmake. Do not edit.\n")
string(APPEND out "#include <array>\n#include <string>\n#include <string_view>\n\n")
string(APPEND out "namespace ${NAMESPACE} {\nnamespace {\n\n")
string(APPEND out "constexpr std::array<std::string_view, CHUNK_COUNT> kChunks = {\n")
set(offset 0)
set(chunks 0)
while(offset LESS size)
  string(SUBSTRING "${content}" ${offset} ${kChunkBytes} piece)
  string(APPEND out "    std::string_view(R\"${delimiter}(${piece})${delimiter}\"),\n")
  math(EXPR offset "${offset} + ${kChunkBytes}")
  math(EXPR chunks "${chunks} + 1")
endwhile()
string(APPEND out "};\n\n}  // namespace\n\n")
string(APPEND out "std::string ${FUNCTION}() {\n  std::string text;\n  text.reserve(${size});\n")
string(APPEND out "  for (std::string_view chunk : kChunks) text.append(chunk);\n")
string(APPEND out "  return text;\n}\n\n")
string(APPEND out "}  // namespace ${NAMESPACE}\n")
string(REPLACE "CHUNK_COUNT" "${chunks}" out "${out}")

# Write only when the text changed, so an unchanged input does not trigger a recompile.
if(EXISTS "${OUTPUT}")
  file(READ "${OUTPUT}" previous)
  if(previous STREQUAL out)
    return()
  endif()
endif()
file(WRITE "${OUTPUT}" "${out}")
