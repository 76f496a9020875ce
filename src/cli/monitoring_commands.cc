// `till usage`, `till alerts` and `till top`: the monitoring endpoints over HTTP
// (GET /api/v1/usage, GET /api/v1/alerts, POST /api/v1/alerts/{id}/acknowledge, and
// GET /api/v1/keys/{id} for the names and budgets `top` shows).
//
// `alerts --follow` and `top` poll until SIGINT or SIGTERM. A thread takes the signal with
// sigwait and wakes the poll loop from its wait, so Ctrl-C ends the command at once (exit 0)
// rather than after the current interval.
#include <pthread.h>
#include <unistd.h>

#include <algorithm>
#include <boost/json/serialize.hpp>
#include <cctype>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <iostream>
#include <mutex>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "cli/api_client.h"
#include "cli/commands.h"
#include "cli/json_display.h"
#include "cli/shutdown_signals.h"
#include "cli/table.h"
#include "core/time_text.h"
#include "core/url.h"

namespace till {
namespace {

namespace json = boost::json;
using std::chrono::milliseconds;

constexpr size_t kTrendColumns = 40;     // widest sparkline
constexpr size_t kAlertLineWidth = 120;  // an alert row, MESSAGE truncated to fit
constexpr size_t kMinMessageWidth = 24;  // narrower than this, MESSAGE overflows the line instead
constexpr milliseconds kFollowInterval{2'000};
// How far before the newest alert seen `alerts --follow` asks again from, so an alert stored a
// little out of created_at order is not missed; the ids already printed are skipped.
constexpr milliseconds kFollowOverlap{5'000};

// Display width in code points, as Table counts it.
size_t display_width(std::string_view s) {
  return static_cast<size_t>(
      std::count_if(s.begin(), s.end(), [](char c) { return (c & 0xC0) != 0x80; }));
}

// `s` cut to at most `width` code points, the last one "…" when something was cut.
std::string truncate_to(std::string_view s, size_t width) {
  if (display_width(s) <= width) return std::string(s);
  if (width == 0) return "";
  size_t points = 0;
  size_t end = 0;
  for (; end < s.size(); ++end) {
    if ((s[end] & 0xC0) != 0x80 && points++ == width - 1) break;
  }
  return std::string(s.substr(0, end)) + "…";
}

// An integer member (or member of a member) of `v`; 0 when absent or not an integer.
int64_t int_at(const json::value& v, std::string_view a, std::string_view b = {}) {
  const json::value* x = json_at(v, a, b);
  if (x == nullptr) return 0;
  if (x->is_int64()) return x->as_int64();
  if (x->is_uint64()) return static_cast<int64_t>(x->as_uint64());
  return 0;
}

// Text members of `v` as a cell; an empty string (events that named no key, say) as "(none)".
std::string group_text(const json::value* v) {
  if (v != nullptr && v->is_string() && v->as_string().empty()) return "(none)";
  return cell_text(v);
}

// A time the server sent, to the second: "2026-12-04T18:52:31Z".
std::string second_text(const json::value* v) {
  if (v == nullptr || !v->is_string()) return cell_text(v);
  auto t = parse_rfc3339(v->as_string(), "time");
  if (!t) return cell_text(v);
  return format_rfc3339(std::chrono::floor<std::chrono::seconds>(*t));
}

std::string now_text() {
  return format_rfc3339(std::chrono::floor<std::chrono::seconds>(system_clock().now()));
}

// Requests per bucket as one line of ▁▂▃▄▅▆▇█, scaled to the busiest column; a space for a
// column without requests. More than kTrendColumns buckets are summed in equal groups counted
// from the newest bucket, so a steady rate draws a flat line (only the oldest column may hold
// fewer buckets).
std::string sparkline(const json::value* series) {
  static constexpr std::string_view kLevels[] = {"▁", "▂", "▃", "▄", "▅", "▆", "▇", "█"};
  std::vector<int64_t> buckets;
  if (series != nullptr && series->is_array()) {
    for (const auto& point : series->as_array()) buckets.push_back(int_at(point, "requests"));
  }
  if (buckets.empty()) return "";
  const size_t n = buckets.size();
  const size_t per_column = (n + kTrendColumns - 1) / kTrendColumns;
  const size_t columns = (n + per_column - 1) / per_column;
  std::vector<int64_t> sums(columns, 0);
  for (size_t j = 0; j < columns; ++j) {
    const size_t end = n - (columns - 1 - j) * per_column;
    const size_t begin = end > per_column ? end - per_column : 0;
    for (size_t i = begin; i < end; ++i) sums[j] += buckets[i];
  }
  const int64_t peak = *std::max_element(sums.begin(), sums.end());
  std::string line;
  for (int64_t sum : sums) {
    if (sum <= 0 || peak <= 0) {
      line += ' ';
      continue;
    }
    const int64_t level = std::clamp<int64_t>((sum * 8 + peak - 1) / peak, 1, 8);
    line += kLevels[level - 1];
  }
  return line;
}

// "1234 (1000/200)": all tokens, then input/output.
std::string tokens_text(const json::value& totals) {
  return std::to_string(int_at(totals, "tokens")) + " (" +
         std::to_string(int_at(totals, "input_tokens")) + "/" +
         std::to_string(int_at(totals, "output_tokens")) + ")";
}

std::string spend_text(const json::value* spend) { return "$" + cell_text(spend); }

// "1 request", "5 requests".
std::string count_text(int64_t n, std::string_view noun) {
  return std::to_string(n) + " " + std::string(noun) + (n == 1 ? "" : "s");
}

// SIGINT and SIGTERM as a stop request that poll loops wait on. Construct before starting any
// other thread (see ShutdownSignals); until destruction the signals no longer end the process.
class StopSignal {
 public:
  StopSignal()
      : waiter_([this] {
          signals_.wait();
          {
            std::lock_guard lock(mutex_);
            stopped_ = true;
          }
          woken_.notify_all();
        }) {}
  ~StopSignal() {
    // Wake the waiter if no signal came: SIGINT directed at that thread, which blocks it, is
    // taken by its sigwait like one from outside (and ends nothing).
    if (!stopped()) pthread_kill(waiter_.native_handle(), SIGINT);
    waiter_.join();
  }
  StopSignal(const StopSignal&) = delete;
  StopSignal& operator=(const StopSignal&) = delete;

  bool stopped() {
    std::lock_guard lock(mutex_);
    return stopped_;
  }
  // Waits `timeout` or until a signal came; returns whether one came.
  bool wait_for(milliseconds timeout) {
    std::unique_lock lock(mutex_);
    return woken_.wait_for(lock, timeout, [this] { return stopped_; });
  }

 private:
  ShutdownSignals signals_;  // first: the signals are blocked before the waiter starts
  std::mutex mutex_;
  std::condition_variable woken_;
  bool stopped_ = false;  // GUARDED_BY(mutex_)
  std::thread waiter_;    // last: starts once the members it uses exist
};

// How a poll loop treats a failed poll: a server that cannot be reached (restarting, say) is
// tried again at the next poll, said once on stderr; any other error ends the command.
class PollErrors {
 public:
  bool retry(const Error& error) {
    if (error.code != ErrorCode::kUnavailable) return false;
    if (!down_) {
      const std::string_view message = error.message;
      std::cerr << (message.starts_with("till: ") ? "" : "till: ") << message << "; trying again\n";
      down_ = true;
    }
    return true;
  }
  void succeeded() {
    if (down_) std::cerr << "till: reached the server again\n";
    down_ = false;
  }

 private:
  bool down_ = false;
};

// --- usage ------------------------------------------------------------------------------------

// The bucket for a period of `span` when none is given: at most ~170 points on the trend.
std::string default_bucket(milliseconds span) {
  if (span <= std::chrono::hours(2)) return "minute";
  if (span <= std::chrono::days(7)) return "hour";
  return "day";
}

// A row of the usage table for `totals` and `series`.
std::vector<std::string> usage_row(std::string label, const json::value& entry) {
  const json::value* totals = json_at(entry, "totals");
  const json::value empty;
  const json::value& t = totals != nullptr ? *totals : empty;
  return {
      std::move(label), std::to_string(int_at(t, "requests")), std::to_string(int_at(t, "refused")),
      tokens_text(t),   spend_text(json_at(t, "spend_usd")),   sparkline(json_at(entry, "series"))};
}

// --- alerts -----------------------------------------------------------------------------------

// The fixed columns of an alert row (MESSAGE, the last, is fitted to the line). ACKED is shown
// only when acknowledged alerts are listed too.
std::vector<std::string> alert_header(bool with_acknowledged) {
  std::vector<std::string> header{"ID", "TIME", "SEVERITY", "RULE", "KEY", "ACTION"};
  if (with_acknowledged) header.emplace_back("ACKED");
  header.emplace_back("MESSAGE");
  return header;
}

std::vector<std::string> alert_cells(const json::value& alert, bool with_acknowledged) {
  std::vector<std::string> cells{
      cell_text(json_at(alert, "id")),       second_text(json_at(alert, "created_at")),
      cell_text(json_at(alert, "severity")), cell_text(json_at(alert, "rule")),
      cell_text(json_at(alert, "key_id")),   cell_text(json_at(alert, "action"))};
  if (with_acknowledged) {
    const json::value* acknowledged = json_at(alert, "acknowledged");
    cells.emplace_back(acknowledged != nullptr && acknowledged->is_bool() && acknowledged->as_bool()
                           ? "yes"
                           : "no");
  }
  cells.push_back(cell_text(json_at(alert, "message")));
  return cells;
}

// What MESSAGE may take of a kAlertLineWidth line after the other columns and their gaps.
size_t message_width(const std::vector<size_t>& widths) {
  size_t used = 0;
  for (size_t i = 0; i + 1 < widths.size(); ++i) used += widths[i] + 2;
  return std::max(kMinMessageWidth, used < kAlertLineWidth ? kAlertLineWidth - used : 0);
}

// One row padded to `widths` (two spaces between columns, no trailing spaces), MESSAGE cut to
// fit the line. For --follow, whose rows are printed as they come, so Table cannot size them.
std::string alert_line(std::vector<std::string> cells, const std::vector<size_t>& widths) {
  cells.back() = truncate_to(cells.back(), message_width(widths));
  std::string line;
  for (size_t i = 0; i < cells.size(); ++i) {
    line += cells[i];
    if (i + 1 < cells.size()) {
      line.append(std::max(widths[i], display_width(cells[i])) - display_width(cells[i]) + 2, ' ');
    }
  }
  return line;
}

// The query of GET /api/v1/alerts for the options, without cursor, since and limit.
std::string alerts_query(const AlertsOptions& o) {
  std::string query = o.all ? "" : "&acknowledged=false";
  if (o.key) query += "&key=" + percent_encode(*o.key);
  if (o.rule) query += "&rule=" + percent_encode(*o.rule);
  return query;
}

// Every alert matching `query` (all pages), newest first.
Result<json::array> fetch_alerts(const ApiClient& client, const std::string& query) {
  json::array all;
  std::string cursor;
  do {
    std::string target = "/api/v1/alerts?limit=1000" + query;
    if (!cursor.empty()) target += "&cursor=" + percent_encode(cursor);
    auto page = client.call("GET", target);
    if (!page) return fail(page.error());
    if (const json::value* alerts = json_at(*page, "alerts"); alerts && alerts->is_array()) {
      for (const auto& a : alerts->as_array()) all.push_back(a);
    }
    const json::value* next = json_at(*page, "next_cursor");
    cursor = next && next->is_string() ? std::string(next->as_string()) : "";
  } while (!cursor.empty());
  return all;
}

int acknowledge_alert(const AlertsOptions& o) {
  auto alert = ApiClient::from_environment().call(
      "POST", "/api/v1/alerts/" + std::to_string(*o.ack) + "/acknowledge");
  if (!alert) return report_error(alert.error());
  if (o.json) {
    std::cout << json::serialize(*alert) << std::endl;
    return kExitOk;
  }
  Table table({"FIELD", "VALUE"});
  for (const char* field : {"id", "created_at", "severity", "rule", "key_id", "action", "message",
                            "acknowledged", "acknowledged_at"}) {
    table.add_row({field, cell_text(json_at(*alert, field))});
  }
  table.print(std::cout);
  std::cerr << "till: acknowledged alert " << *o.ack << "\n";
  return kExitOk;
}

int list_alerts(const AlertsOptions& o) {
  auto alerts = fetch_alerts(ApiClient::from_environment(), alerts_query(o));
  if (!alerts) return report_error(alerts.error());
  if (o.json) {
    std::cout << json::serialize(json::object{{"alerts", std::move(*alerts)}}) << std::endl;
    return kExitOk;
  }
  std::vector<std::vector<std::string>> rows;
  std::vector<std::string> header = alert_header(o.all);
  std::vector<size_t> widths(header.size(), 0);
  rows.push_back(std::move(header));
  for (const auto& a : *alerts) rows.push_back(alert_cells(a, o.all));
  for (const auto& row : rows) {
    for (size_t i = 0; i < row.size(); ++i) widths[i] = std::max(widths[i], display_width(row[i]));
  }
  const size_t fit = message_width(widths);
  Table table(rows.front());
  for (size_t r = 1; r < rows.size(); ++r) {
    rows[r].back() = truncate_to(rows[r].back(), fit);
    table.add_row(std::move(rows[r]));
  }
  table.print(std::cout);
  std::cerr << "till: " << alerts->size() << (o.all ? "" : " unacknowledged")
            << (alerts->size() == 1 ? " alert" : " alerts") << "\n";
  return kExitOk;
}

// Prints the matching alerts oldest first, then each new one as the server raises it, until
// SIGINT or SIGTERM.
int follow_alerts(const AlertsOptions& o) {
  StopSignal stop;  // before anything else: a signal during the first request must not kill us
  const ApiClient client = ApiClient::from_environment();
  const std::string query = alerts_query(o);
  // Wide enough for ids up to 6 digits, RFC 3339 seconds, every rule name and key id.
  std::vector<size_t> widths{6, 20, 8, 20, 20, 7};
  if (o.all) widths.push_back(5);
  widths.push_back(0);
  if (!o.json) {
    const std::vector<std::string> header = alert_header(o.all);
    for (size_t i = 0; i < header.size(); ++i) {
      widths[i] = std::max(widths[i], display_width(header[i]));
    }
    std::cout << alert_line(header, widths) << std::endl;
  }

  std::set<int64_t> printed;
  std::optional<int64_t> newest_ms;  // the latest created_at printed, Unix milliseconds
  std::optional<std::chrono::steady_clock::time_point> last_poll;
  PollErrors errors;
  for (;;) {
    // The first poll takes every matching alert; later ones those from a little before the
    // newest printed (server time), or, until there is one, from a little before the last poll.
    std::string since;
    if (newest_ms) {
      since = "&since=" + percent_encode(format_rfc3339(from_unix_ms(*newest_ms) - kFollowOverlap));
    } else if (last_poll) {
      const auto elapsed = std::chrono::ceil<std::chrono::seconds>(
          std::chrono::steady_clock::now() - *last_poll + kFollowOverlap);
      since = "&since=" + format_duration(elapsed);
    }
    const auto started = std::chrono::steady_clock::now();
    auto alerts = fetch_alerts(client, query + since);
    if (!alerts) {
      if (!last_poll || !errors.retry(alerts.error())) return report_error(alerts.error());
    } else {
      errors.succeeded();
      last_poll = started;
      for (auto it = alerts->rbegin(); it != alerts->rend(); ++it) {
        const int64_t id = int_at(*it, "id");
        if (!printed.insert(id).second) continue;
        if (const json::value* created = json_at(*it, "created_at");
            created && created->is_string()) {
          if (auto t = parse_rfc3339(created->as_string(), "created_at"); t) {
            newest_ms = std::max(newest_ms.value_or(0), to_unix_ms(*t));
          }
        }
        if (o.json) {
          std::cout << json::serialize(*it) << "\n";
        } else {
          std::cout << alert_line(alert_cells(*it, o.all), widths) << "\n";
        }
      }
      std::cout << std::flush;
    }
    if (stop.wait_for(kFollowInterval)) return kExitOk;
  }
}

// --- top --------------------------------------------------------------------------------------

// What a key's limits still allow: "3 req, 1200 tok, $0.45"; "unlimited" when it has none.
std::string remaining_text(const json::value& key) {
  std::vector<std::string> parts;
  if (const json::value* r = json_at(key, "remaining", "requests"); r && !r->is_null()) {
    parts.push_back(cell_text(r) + " req");
  }
  if (const json::value* t = json_at(key, "remaining", "tokens"); t && !t->is_null()) {
    parts.push_back(cell_text(t) + " tok");
  }
  if (const json::value* s = json_at(key, "remaining", "spend_usd"); s && !s->is_null()) {
    parts.push_back("$" + cell_text(s));
  }
  if (parts.empty()) return "unlimited";
  std::string out;
  for (const auto& p : parts) out += (out.empty() ? "" : ", ") + p;
  return out;
}

// One screen of `top`: the header line and the table of the busiest keys.
Result<std::string> top_frame(const ApiClient& client, const TopOptions& o) {
  auto usage = client.call("GET", "/api/v1/usage?from=1m&bucket=minute&group_by=key");
  if (!usage) return fail(usage.error());
  std::vector<const json::value*> groups;
  if (const json::value* g = json_at(*usage, "groups"); g && g->is_array()) {
    for (const auto& group : g->as_array()) groups.push_back(&group);
  }
  // Busiest first: requests answered or refused, then tokens.
  const auto activity = [](const json::value* g) {
    return int_at(*g, "totals", "requests") + int_at(*g, "totals", "refused");
  };
  std::stable_sort(groups.begin(), groups.end(), [&](const json::value* a, const json::value* b) {
    if (activity(a) != activity(b)) return activity(a) > activity(b);
    return int_at(*a, "totals", "tokens") > int_at(*b, "totals", "tokens");
  });
  const size_t shown = std::min(groups.size(), static_cast<size_t>(o.limit));

  Table table({"KEY", "NAME", "REQ/MIN", "TOKENS/MIN", "SPEND/MIN", "REMAINING", "STATUS"});
  for (size_t i = 0; i < shown; ++i) {
    const json::value& g = *groups[i];
    const json::value* id = json_at(g, "key_id");
    std::string name = "-";
    std::string remaining = "-";
    std::string status = "-";
    if (id != nullptr && id->is_string() && !id->as_string().empty()) {
      auto key = client.call("GET", "/api/v1/keys/" + percent_encode(id->as_string()));
      if (key) {
        name = cell_text(json_at(*key, "name"));
        remaining = remaining_text(*key);
        status = cell_text(json_at(*key, "status"));
      } else if (key.error().code == ErrorCode::kNotFound) {
        status = "deleted";
      } else {
        return fail(key.error());
      }
    }
    std::string requests = std::to_string(int_at(g, "totals", "requests"));
    if (const int64_t refused = int_at(g, "totals", "refused"); refused > 0) {
      requests += " (+" + std::to_string(refused) + " refused)";
    }
    // Requests that named no valid key (a guessed or mistyped one) have no key id.
    const bool keyless = id != nullptr && id->is_string() && id->as_string().empty();
    table.add_row({keyless ? "(no key)" : cell_text(id), name, requests,
                   std::to_string(int_at(g, "totals", "tokens")),
                   spend_text(json_at(g, "totals", "spend_usd")), remaining, status});
  }

  std::ostringstream frame;
  frame << "till top  " << now_text()
        << "  last 60s: " << count_text(int_at(*usage, "totals", "requests"), "request") << ", "
        << int_at(*usage, "totals", "refused") << " refused, "
        << count_text(int_at(*usage, "totals", "tokens"), "token") << ", "
        << spend_text(json_at(*usage, "totals", "spend_usd")) << "; "
        << count_text(static_cast<int64_t>(groups.size()), "key") << " active";
  if (shown < groups.size()) frame << ", top " << shown << " shown";
  frame << "\n\n";
  table.print(frame);
  return frame.str();
}

}  // namespace

int run_usage(const UsageOptions& o) {
  // The period's start as the server takes it (RFC 3339 normalised) and its length for the
  // default bucket.
  std::string from = o.since;
  std::string period = "last " + o.since;
  milliseconds span{0};
  if (o.since.find_first_of("Tt") != std::string::npos) {
    auto t = parse_rfc3339(o.since, "--since");
    if (!t) return report_error(t.error());
    from = format_rfc3339(*t);
    period = "since " + from;
    span = std::chrono::duration_cast<milliseconds>(system_clock().now() - *t);
  } else {
    auto d = parse_duration(o.since, "--since");
    if (!d) return report_error(d.error());
    span = *d;
  }
  const std::string bucket = o.bucket ? *o.bucket : default_bucket(span);

  std::string target = "/api/v1/usage?from=" + percent_encode(from) + "&bucket=" + bucket;
  if (o.by) target += "&group_by=" + *o.by;
  if (o.key) target += "&key=" + percent_encode(*o.key);
  if (o.provider) target += "&provider=" + percent_encode(*o.provider);
  if (o.model) target += "&model=" + percent_encode(*o.model);
  auto usage = ApiClient::from_environment().call("GET", target);
  if (!usage) return report_error(usage.error());
  if (o.json) {
    std::cout << json::serialize(*usage) << std::endl;
    return kExitOk;
  }

  std::string first = "GROUP";
  if (o.by) {
    first.clear();
    for (char c : *o.by) first += static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  }
  Table table({first, "REQUESTS", "REFUSED", "TOKENS (IN/OUT)", "SPEND", "TREND"});
  if (o.by) {
    const std::string field = *o.by == "key" ? "key_id" : *o.by;
    std::vector<const json::value*> groups;
    if (const json::value* g = json_at(*usage, "groups"); g && g->is_array()) {
      for (const auto& group : g->as_array()) groups.push_back(&group);
    }
    // Busiest first.
    std::stable_sort(groups.begin(), groups.end(), [](const json::value* a, const json::value* b) {
      return int_at(*a, "totals", "requests") + int_at(*a, "totals", "refused") >
             int_at(*b, "totals", "requests") + int_at(*b, "totals", "refused");
    });
    for (const json::value* g : groups) {
      table.add_row(usage_row(group_text(json_at(*g, field)), *g));
    }
  } else {
    table.add_row(usage_row("total", *usage));
  }
  table.print(std::cout);
  std::cerr << "till: " << period << ", "
            << count_text(int_at(*usage, "totals", "requests"), "request") << ", "
            << spend_text(json_at(*usage, "totals", "spend_usd")) << "\n";
  return kExitOk;
}

int run_alerts(const AlertsOptions& o) {
  if (o.ack) return acknowledge_alert(o);
  if (o.follow) return follow_alerts(o);
  return list_alerts(o);
}

int run_top(const TopOptions& o) {
  const ApiClient client = ApiClient::from_environment();
  if (o.once) {
    auto frame = top_frame(client, o);
    if (!frame) return report_error(frame.error());
    std::cout << *frame << std::flush;
    return kExitOk;
  }
  StopSignal stop;
  const bool terminal = isatty(STDOUT_FILENO) == 1;
  PollErrors errors;
  bool first = true;
  for (;;) {
    auto frame = top_frame(client, o);
    if (!frame) {
      if (first || !errors.retry(frame.error())) return report_error(frame.error());
    } else {
      errors.succeeded();
      if (terminal) {
        std::cout << "\x1b[H\x1b[2J";
      } else if (!first) {
        std::cout << "\n";
      }
      std::cout << *frame << std::flush;
      first = false;
    }
    if (stop.wait_for(o.interval)) return kExitOk;
  }
}

}  // namespace till
