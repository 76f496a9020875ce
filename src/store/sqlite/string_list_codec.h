// Encoding of a list of strings (a key's allowed models and CIDRs) as one TEXT column: a JSON
// array of JSON strings, so that the database stays readable with the sqlite3 shell and any list,
// including empty strings and strings with quotes, newlines or arbitrary bytes, round-trips
// exactly. Bytes other than '"', '\' and control characters are stored as they are (the encoder
// does not validate UTF-8).
//
// Thread-safety: pure functions.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace till::sqlite {

std::string encode_string_list(const std::vector<std::string>& list);

// The list encoded in `text`; std::nullopt if `text` is not a JSON array of strings. Accepts any
// such array (standard escapes, \u escapes with surrogate pairs, whitespace), not only the
// encoder's output.
std::optional<std::vector<std::string>> decode_string_list(std::string_view text);

}  // namespace till::sqlite
