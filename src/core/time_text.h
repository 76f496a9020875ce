// Durations and timestamps as users write them: "90m", "24h", "7d", RFC 3339.
#pragma once

#include <chrono>
#include <string>
#include <string_view>

#include "till/clock.h"
#include "till/error.h"

namespace till {

// Parses a positive duration made of number+unit parts: "30s", "90m", "24h", "7d", "1h30m".
// Units: ms, s, m, h, d, w. At most 100 years. Errors are kInvalidRequest naming `field`.
Result<std::chrono::milliseconds> parse_duration(std::string_view text, std::string_view field);

// Formats a duration compactly, largest units first: 5400000 ms → "1h30m".
std::string format_duration(std::chrono::milliseconds d);

// Parses an RFC 3339 timestamp: "2026-12-04T15:00:00Z", "2026-12-04T15:00:00.123+01:00".
// Errors are kInvalidRequest naming `field`.
Result<Timestamp> parse_rfc3339(std::string_view text, std::string_view field);

// Formats as UTC RFC 3339: "2026-12-04T15:00:00Z" (with ".mmm" only when milliseconds are set).
std::string format_rfc3339(Timestamp t);

}  // namespace till
