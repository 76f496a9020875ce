// Paging of the SQLite store's listings (keys, usage events, alerts).
//
// A listing is ordered by an integer that only grows (keys.seq, usage event ids, alerts.id),
// newest first. Its cursor is the canonical decimal of that integer for the last row of the
// previous page, and the next page holds the rows below it, so a page stays stable while rows
// are added. Canonical means digits only, no sign, no leading zero, within 1..INT64_MAX: any
// other string is one this store did not hand out and is refused rather than misread.
#pragma once

#include <charconv>
#include <cstdint>
#include <limits>
#include <string>
#include <string_view>

#include "till/error.h"

namespace till::sqlite {

inline constexpr int kMaxListLimit = 1000;

// kInvalidRequest (field "limit") unless 1 <= limit <= kMaxListLimit.
inline Result<void> check_list_limit(int limit) {
  if (limit < 1 || limit > kMaxListLimit) {
    return fail(
        Error::invalid("limit", "limit must be between 1 and " + std::to_string(kMaxListLimit)));
  }
  return {};
}

// The value the next page's rows are below: INT64_MAX for an empty cursor (the first page).
// kInvalidRequest (field "cursor") for a cursor this store did not hand out.
inline Result<int64_t> parse_list_cursor(std::string_view cursor) {
  if (cursor.empty()) return std::numeric_limits<int64_t>::max();
  int64_t value = 0;
  if (cursor.front() >= '1' && cursor.front() <= '9') {
    auto [end, ec] = std::from_chars(cursor.data(), cursor.data() + cursor.size(), value);
    if (ec == std::errc() && end == cursor.data() + cursor.size()) return value;
  }
  return fail(Error::invalid("cursor", "cursor is not one this server handed out"));
}

}  // namespace till::sqlite
