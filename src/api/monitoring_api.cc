#include "api/monitoring_api.h"

#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>
#include <charconv>

#include "api/json_fields.h"
#include "api/request_auth.h"
#include "api/route_helpers.h"
#include "core/time_text.h"
#include "core/url.h"
#include "proxy/error_response.h"

namespace till {
namespace {

namespace json = boost::json;

constexpr std::string_view kUsagePath = "/api/v1/usage";
constexpr std::string_view kEventsPath = "/api/v1/usage/events";
constexpr std::string_view kAlertsPath = "/api/v1/alerts";
constexpr std::string_view kMetricsPath = "/metrics";
constexpr int64_t kMaxPoints = 10'000;

using json_fields::invalid;

// A time bound: RFC 3339, or a duration before now ("24h" = 24 hours ago).
Result<Timestamp> parse_time(std::string_view value, std::string_view field, Timestamp now) {
  if (!value.empty() && value.find('T') == std::string_view::npos) {
    auto ago = parse_duration(value, field);
    if (!ago) return fail(ago.error());
    return now - *ago;
  }
  return parse_rfc3339(value, field);
}

// The query parameters every usage route takes, and the ones a route adds (`extra` gets them).
struct UsageQuery {
  UsageFilter filter;
  UsageBucket bucket = UsageBucket::kHour;
  UsageGroup group = UsageGroup::kNone;
  std::string cursor;
  int limit = 100;
  bool csv = false;
};

Result<UsageQuery> parse_usage_query(std::string_view query, Timestamp now, bool events) {
  auto params = parse_query(query);
  if (!params) return fail(Error::invalid("", "malformed query string"));
  UsageQuery q;
  q.filter.from = now - std::chrono::hours(24);
  q.filter.to = now + std::chrono::milliseconds(1);  // the events of this very millisecond too
  for (const auto& [name, value] : *params) {
    if (name == "key") {
      q.filter.key_id = value;
    } else if (name == "provider") {
      q.filter.provider = value;
    } else if (name == "model") {
      q.filter.model = value;
    } else if (name == "from" || name == "to") {
      auto t = parse_time(value, name, now);
      if (!t) return fail(t.error());
      (name == "from" ? q.filter.from : q.filter.to) = *t;
    } else if (name == "bucket" && !events) {
      if (value == "minute") {
        q.bucket = UsageBucket::kMinute;
      } else if (value == "hour") {
        q.bucket = UsageBucket::kHour;
      } else if (value == "day") {
        q.bucket = UsageBucket::kDay;
      } else {
        return fail(invalid("bucket", "must be minute, hour or day"));
      }
    } else if (name == "group_by" && !events) {
      if (value == "key") {
        q.group = UsageGroup::kKey;
      } else if (value == "provider") {
        q.group = UsageGroup::kProvider;
      } else if (value == "model") {
        q.group = UsageGroup::kModel;
      } else {
        return fail(invalid("group_by", "must be key, provider or model"));
      }
    } else if (name == "cursor" && events) {
      q.cursor = value;
    } else if (name == "limit" && events) {
      auto limit = parse_page_limit(value);
      if (!limit) return fail(limit.error());
      q.limit = *limit;
    } else if (name == "format" && events) {
      if (value != "json" && value != "csv") return fail(invalid("format", "must be json or csv"));
      q.csv = value == "csv";
    } else {
      return fail(invalid(name, events ? "unknown query parameter; known: key, provider, model, "
                                         "from, to, cursor, limit, format"
                                       : "unknown query parameter; known: key, provider, model, "
                                         "from, to, bucket, group_by"));
    }
  }
  if (q.filter.to <= q.filter.from) return fail(invalid("to", "must be later than from"));
  return q;
}

json::object totals_json(const UsageTotals& t) {
  return json::object{{"requests", t.requests},
                      {"refused", t.refused},
                      {"input_tokens", t.input_tokens},
                      {"cached_input_tokens", t.cached_input_tokens},
                      {"output_tokens", t.output_tokens},
                      {"reasoning_tokens", t.reasoning_tokens},
                      {"unmetered_tokens", t.unmetered_tokens},
                      {"tokens", t.tokens()},
                      {"spend_usd", t.spend.to_usd_string()}};
}

// Every bucket from the one holding `from` to the one holding the last instant before `to`,
// zeros where the store had no events: charts need no gaps.
json::array dense_series(const UsageSeries& series, const UsageFilter& filter, UsageBucket bucket) {
  const int64_t length = bucket_length(bucket).count();
  const int64_t first = bucket_start_ms(to_unix_ms(filter.from), bucket_length(bucket));
  const int64_t last = to_unix_ms(filter.to) - 1;
  json::array points;
  size_t next = 0;
  for (int64_t start = first; start <= last; start += length) {
    UsageTotals totals;
    if (next < series.points.size() && to_unix_ms(series.points[next].start) == start) {
      totals = series.points[next++].totals;
    }
    json::object point = totals_json(totals);
    point["start"] = format_rfc3339(from_unix_ms(start));
    points.push_back(std::move(point));
  }
  return points;
}

std::string_view group_field(UsageGroup group) {
  switch (group) {
    case UsageGroup::kKey:
      return "key_id";
    case UsageGroup::kProvider:
      return "provider";
    case UsageGroup::kModel:
      return "model";
    case UsageGroup::kNone:
      break;
  }
  return "";
}

double milliseconds(std::chrono::microseconds us) { return static_cast<double>(us.count()) / 1000; }

json::object event_json(const UsageEvent& e) {
  return json::object{{"id", e.id},
                      {"at", format_rfc3339(e.at)},
                      {"key_id", e.key_id},
                      {"provider", e.provider},
                      {"model", e.model},
                      {"status", e.status},
                      {"error_code", e.error_code},
                      {"forwarded", e.forwarded},
                      {"stream", e.streaming},
                      {"upstream_status", e.upstream_status},
                      {"requests", e.usage.requests},
                      {"input_tokens", e.usage.input_tokens},
                      {"cached_input_tokens", e.usage.cached_input_tokens},
                      {"output_tokens", e.usage.output_tokens},
                      {"reasoning_tokens", e.usage.reasoning_tokens},
                      {"unmetered_tokens", e.usage.unmetered_tokens},
                      {"spend_usd", e.usage.spend.to_usd_string()},
                      {"latency_ms", milliseconds(e.latency)},
                      {"upstream_ms", milliseconds(e.upstream_latency)},
                      {"ttfb_ms", milliseconds(e.time_to_first_byte)},
                      {"client_address", e.client_address}};
}

// A CSV field: quoted when it holds a comma, quote or line break (RFC 4180).
std::string csv_field(std::string_view text) {
  if (text.find_first_of(",\"\r\n") == std::string_view::npos) return std::string(text);
  std::string out = "\"";
  for (char c : text) {
    if (c == '"') out += '"';
    out += c;
  }
  return out + "\"";
}

std::string events_csv(const UsageEventPage& page) {
  std::string out =
      "id,at,key_id,provider,model,status,error_code,forwarded,stream,upstream_status,requests,"
      "input_tokens,cached_input_tokens,output_tokens,reasoning_tokens,unmetered_tokens,"
      "spend_usd,latency_ms,upstream_ms,ttfb_ms,client_address\r\n";
  for (const UsageEvent& e : page.events) {
    const json::object o = event_json(e);
    bool first = true;
    for (const auto& [name, value] : o) {
      if (!first) out += ',';
      first = false;
      out += value.is_string() ? csv_field(value.as_string()) : json::serialize(value);
    }
    out += "\r\n";
  }
  return out;
}

json::object alert_json(const AlertRecord& a) {
  return json::object{
      {"id", a.id},
      {"key_id", a.key_id.empty() ? json::value(nullptr) : json::value(a.key_id)},
      {"rule", a.rule},
      {"severity", a.severity},
      {"message", a.message},
      {"action", a.action},
      {"created_at", format_rfc3339(a.created_at)},
      {"acknowledged", a.acknowledged},
      {"acknowledged_at",
       a.acknowledged_at ? json::value(format_rfc3339(*a.acknowledged_at)) : json::value(nullptr)}};
}

}  // namespace

bool MonitoringApi::owns(std::string_view path) {
  return path == kMetricsPath || path == kUsagePath || path == kEventsPath || path == kAlertsPath ||
         path.starts_with(std::string(kAlertsPath) + "/");
}

HttpResponse MonitoringApi::handle(const HttpRequest& request) {
  const RequestTarget target = split_target(request.target);
  auto response = route(request, target.path, target.query);
  if (!response) return error_response(response.error());
  return std::move(*response);
}

Result<HttpResponse> MonitoringApi::route(const HttpRequest& request, std::string_view path,
                                          std::string_view query) {
  const std::string_view method = request.method;
  if (path == kMetricsPath) {
    if (method != "GET") return fail(method_not_allowed(method, path));
    monitor_.flush();
    HttpResponse response;
    response.headers.push_back({"content-type", "text/plain; version=0.0.4; charset=utf-8"});
    response.body = metrics_.exposition();
    return response;
  }
  if (auto admin = require_admin(auth_, request); !admin) return fail(admin.error());
  if (path == kUsagePath || path == kEventsPath || path == kAlertsPath) {
    if (method != "GET") return fail(method_not_allowed(method, path));
    monitor_.flush();
    if (path == kUsagePath) return usage(query);
    if (path == kEventsPath) return usage_events(query);
    return alerts(query);
  }
  // /api/v1/alerts/{id}/acknowledge
  std::string_view rest = path.substr(kAlertsPath.size() + 1);
  const size_t slash = rest.find('/');
  if (slash == std::string_view::npos || rest.substr(slash + 1) != "acknowledge") {
    return fail(no_such_endpoint(path));
  }
  if (method != "POST") return fail(method_not_allowed(method, path));
  return acknowledge(rest.substr(0, slash));
}

Result<HttpResponse> MonitoringApi::usage(std::string_view query) {
  auto q = parse_usage_query(query, clock_.now(), /*events=*/false);
  if (!q) return fail(q.error());
  const int64_t span = to_unix_ms(q->filter.to) - to_unix_ms(q->filter.from);
  if (span / bucket_length(q->bucket).count() > kMaxPoints) {
    return fail(invalid("bucket",
                        "that range has more than 10000 buckets; use a larger bucket "
                        "or a shorter range"));
  }
  auto all = store_.usage_summary(q->filter, q->bucket, UsageGroup::kNone);
  if (!all) return fail(all.error());
  const UsageSeries overall = all->empty() ? UsageSeries{} : all->front();
  json::object body{{"from", format_rfc3339(q->filter.from)},
                    {"to", format_rfc3339(q->filter.to)},
                    {"bucket", q->bucket == UsageBucket::kMinute ? "minute"
                               : q->bucket == UsageBucket::kHour ? "hour"
                                                                 : "day"},
                    {"totals", totals_json(overall.totals)},
                    {"series", dense_series(overall, q->filter, q->bucket)}};
  if (q->group != UsageGroup::kNone) {
    auto grouped = store_.usage_summary(q->filter, q->bucket, q->group);
    if (!grouped) return fail(grouped.error());
    json::array groups;
    for (const UsageSeries& series : *grouped) {
      groups.push_back(json::object{{std::string(group_field(q->group)), series.group},
                                    {"totals", totals_json(series.totals)},
                                    {"series", dense_series(series, q->filter, q->bucket)}});
    }
    body["groups"] = std::move(groups);
  }
  return json_response(200, json::serialize(body));
}

Result<HttpResponse> MonitoringApi::usage_events(std::string_view query) {
  auto q = parse_usage_query(query, clock_.now(), /*events=*/true);
  if (!q) return fail(q.error());
  auto page = store_.list_usage_events(q->filter, q->cursor, q->limit);
  if (!page) return fail(page.error());
  if (q->csv) {
    HttpResponse response;
    response.headers.push_back({"content-type", "text/csv; charset=utf-8"});
    if (page->next_cursor) response.headers.push_back({"till-next-cursor", *page->next_cursor});
    response.body = events_csv(*page);
    return response;
  }
  json::array events;
  for (const UsageEvent& event : page->events) events.push_back(event_json(event));
  json::object body{
      {"events", std::move(events)},
      {"next_cursor", page->next_cursor ? json::value(*page->next_cursor) : json::value(nullptr)}};
  return json_response(200, json::serialize(body));
}

Result<HttpResponse> MonitoringApi::alerts(std::string_view query) {
  auto params = parse_query(query);
  if (!params) return fail(Error::invalid("", "malformed query string"));
  AlertFilter filter;
  for (const auto& [name, value] : *params) {
    if (name == "key") {
      filter.key_id = value;
    } else if (name == "rule") {
      filter.rule = value;
    } else if (name == "acknowledged") {
      if (value != "true" && value != "false") {
        return fail(invalid("acknowledged", "must be true or false"));
      }
      filter.acknowledged = value == "true";
    } else if (name == "since") {
      auto t = parse_time(value, name, clock_.now());
      if (!t) return fail(t.error());
      filter.since = *t;
    } else if (name == "cursor") {
      filter.cursor = value;
    } else if (name == "limit") {
      auto limit = parse_page_limit(value);
      if (!limit) return fail(limit.error());
      filter.limit = *limit;
    } else {
      return fail(invalid(name,
                          "unknown query parameter; known: key, rule, acknowledged, "
                          "since, cursor, limit"));
    }
  }
  auto page = store_.list_alerts(filter);
  if (!page) return fail(page.error());
  json::array alerts;
  for (const AlertRecord& alert : page->alerts) alerts.push_back(alert_json(alert));
  json::object body{
      {"alerts", std::move(alerts)},
      {"next_cursor", page->next_cursor ? json::value(*page->next_cursor) : json::value(nullptr)}};
  return json_response(200, json::serialize(body));
}

Result<HttpResponse> MonitoringApi::acknowledge(std::string_view id_text) {
  int64_t id = 0;
  auto [end, ec] = std::from_chars(id_text.data(), id_text.data() + id_text.size(), id);
  if (ec != std::errc() || end != id_text.data() + id_text.size() || id < 1) {
    return fail(Error::client(ErrorCode::kNotFound, "no alert " + std::string(id_text)));
  }
  auto alert = store_.acknowledge_alert(id, clock_.now());
  if (!alert) return fail(alert.error());
  return json_response(200, json::serialize(alert_json(*alert)));
}

}  // namespace till
