// Encoding of a list of strings (a key's allowed models and CIDRs) as one TEXT column: a JSON
// array of JSON strings, readable with the sqlite3 shell. Any list of valid UTF-8 strings
// round-trips exactly (the control plane only accepts UTF-8, since its bodies are JSON).
//
// Thread-safety: pure functions.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace till::sqlite {

std::string encode_string_list(const std::vector<std::string>& list);

// The list encoded in `text`; std::nullopt if `text` is not a JSON array of strings.
std::optional<std::vector<std::string>> decode_string_list(std::string_view text);

}  // namespace till::sqlite
