#include "core/time_text.h"

#include <charconv>
#include <cstdio>

namespace till {
namespace {

using std::chrono::milliseconds;

constexpr int64_t kMaxDurationMs = 100LL * 366 * 24 * 3600 * 1000;

struct Unit {
  std::string_view suffix;
  int64_t ms;
};
// Longer suffixes first so "ms" is not read as "m" followed by garbage.
constexpr Unit kUnits[] = {{"ms", 1},           {"s", 1000},           {"m", 60'000},
                           {"h", 3'600'000},    {"d", 86'400'000},     {"w", 604'800'000}};

bool parse_fixed_digits(std::string_view text, size_t pos, size_t count, int& out) {
  if (pos + count > text.size()) return false;
  int value = 0;
  for (size_t i = pos; i < pos + count; ++i) {
    if (text[i] < '0' || text[i] > '9') return false;
    value = value * 10 + (text[i] - '0');
  }
  out = value;
  return true;
}

}  // namespace

Result<milliseconds> parse_duration(std::string_view text, std::string_view field) {
  auto invalid = [&](std::string_view why) {
    return fail(Error::invalid(std::string(field), std::string(field) + ": " + std::string(why)));
  };
  if (text.empty()) return invalid("expected a duration such as \"90m\", \"24h\" or \"7d\"");
  int64_t total = 0;
  std::string_view rest = text;
  while (!rest.empty()) {
    int64_t number = 0;
    auto [end, ec] = std::from_chars(rest.data(), rest.data() + rest.size(), number);
    if (ec != std::errc() || end == rest.data() || number < 0 || rest.front() == '+') {
      return invalid("expected a duration such as \"90m\", \"24h\" or \"7d\"");
    }
    rest.remove_prefix(static_cast<size_t>(end - rest.data()));
    const Unit* unit = nullptr;
    for (const Unit& u : kUnits) {
      if (rest.starts_with(u.suffix)) {
        unit = &u;
        break;
      }
    }
    if (unit == nullptr) return invalid("each number needs a unit: ms, s, m, h, d or w");
    rest.remove_prefix(unit->suffix.size());
    if (number > kMaxDurationMs / unit->ms || total + number * unit->ms > kMaxDurationMs) {
      return invalid("must be at most 100 years");
    }
    total += number * unit->ms;
  }
  if (total <= 0) return invalid("must be longer than zero");
  return milliseconds(total);
}

std::string format_duration(milliseconds d) {
  int64_t ms = d.count();
  if (ms <= 0) return "0s";
  std::string out;
  for (const Unit* u = std::end(kUnits) - 1; u >= std::begin(kUnits); --u) {
    if (u->suffix == "w") continue;  // "14d" reads better than "2w"
    if (ms >= u->ms) {
      out += std::to_string(ms / u->ms) + std::string(u->suffix);
      ms %= u->ms;
    }
  }
  return out;
}

Result<Timestamp> parse_rfc3339(std::string_view text, std::string_view field) {
  auto invalid = [&] {
    return fail(Error::invalid(std::string(field),
                               std::string(field) +
                                   ": expected an RFC 3339 time such as \"2026-12-04T15:00:00Z\""));
  };
  int year, month, day, hour, minute, second;
  if (text.size() < 20 || !parse_fixed_digits(text, 0, 4, year) || text[4] != '-' ||
      !parse_fixed_digits(text, 5, 2, month) || text[7] != '-' ||
      !parse_fixed_digits(text, 8, 2, day) || (text[10] != 'T' && text[10] != 't') ||
      !parse_fixed_digits(text, 11, 2, hour) || text[13] != ':' ||
      !parse_fixed_digits(text, 14, 2, minute) || text[16] != ':' ||
      !parse_fixed_digits(text, 17, 2, second)) {
    return invalid();
  }
  size_t pos = 19;
  int64_t millis = 0;
  if (pos < text.size() && text[pos] == '.') {
    ++pos;
    size_t digits = 0;
    while (pos < text.size() && text[pos] >= '0' && text[pos] <= '9') {
      if (digits < 3) millis = millis * 10 + (text[pos] - '0');
      ++digits;
      ++pos;
    }
    if (digits == 0) return invalid();
    for (size_t i = digits; i < 3; ++i) millis *= 10;
  }
  int64_t offset_minutes = 0;
  if (pos < text.size() && (text[pos] == 'Z' || text[pos] == 'z')) {
    ++pos;
  } else if (pos < text.size() && (text[pos] == '+' || text[pos] == '-')) {
    int oh, om;
    if (!parse_fixed_digits(text, pos + 1, 2, oh) || pos + 3 >= text.size() ||
        text[pos + 3] != ':' || !parse_fixed_digits(text, pos + 4, 2, om) || oh > 23 || om > 59) {
      return invalid();
    }
    offset_minutes = (text[pos] == '+' ? 1 : -1) * (oh * 60 + om);
    pos += 6;
  } else {
    return invalid();
  }
  if (pos != text.size()) return invalid();
  const std::chrono::year_month_day ymd{std::chrono::year(year),
                                        std::chrono::month(static_cast<unsigned>(month)),
                                        std::chrono::day(static_cast<unsigned>(day))};
  if (!ymd.ok() || hour > 23 || minute > 59 || second > 60) return invalid();
  const auto days = std::chrono::sys_days(ymd);
  return std::chrono::time_point_cast<milliseconds>(days) + std::chrono::hours(hour) +
         std::chrono::minutes(minute) + std::chrono::seconds(second) + milliseconds(millis) -
         std::chrono::minutes(offset_minutes);
}

std::string format_rfc3339(Timestamp t) {
  const auto days = std::chrono::floor<std::chrono::days>(t);
  const std::chrono::year_month_day ymd{days};
  const std::chrono::hh_mm_ss hms{t - days};
  char buf[40];
  const int ms = static_cast<int>(hms.subseconds().count());
  const int n = std::snprintf(buf, sizeof buf, "%04d-%02u-%02uT%02d:%02d:%02d", int(ymd.year()),
                              unsigned(ymd.month()), unsigned(ymd.day()), int(hms.hours().count()),
                              int(hms.minutes().count()), int(hms.seconds().count()));
  std::string out(buf, static_cast<size_t>(n));
  if (ms != 0) {
    std::snprintf(buf, sizeof buf, ".%03d", ms);
    out += buf;
  }
  return out + "Z";
}

}  // namespace till
