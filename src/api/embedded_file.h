// A file compiled into the binary by cmake/embed_files.cmake.
#pragma once

#include <string_view>

namespace till {

struct EmbeddedFile {
  std::string_view path;     // relative to the embedded folder, "/"-separated: "assets/app.js"
  std::string_view content;  // its bytes; static storage
};

}  // namespace till
