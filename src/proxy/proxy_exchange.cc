#include "proxy/proxy_exchange.h"

#include <algorithm>

namespace till {

namespace {

std::chrono::microseconds since(SteadyTime start, SteadyTime end) {
  return std::chrono::duration_cast<std::chrono::microseconds>(end - start);
}

}  // namespace

ProxyExchange::ProxyExchange(BudgetLedger& ledger, BudgetLedger::Hold hold,
                             UsageDialect usage_dialect, ErrorDialect error_dialect,
                             std::optional<ModelPrice> price, EventReport report)
    : ledger_(ledger),
      hold_(std::move(hold)),
      usage_dialect_(usage_dialect),
      error_dialect_(error_dialect),
      price_(price),
      report_(std::move(report)),
      forwarded_(std::chrono::steady_clock::now()) {}

// A transport that broke its contract (no final call) still must not leak the hold: the hold's
// own destructor charges the reservation.
ProxyExchange::~ProxyExchange() = default;

void ProxyExchange::on_response_head(int status, HttpHeaders& headers) {
  status_ = status;
  report_.event.upstream_status = status;
  report_.event.upstream_latency = since(forwarded_, std::chrono::steady_clock::now());
  const auto type = find_header(headers, "content-type");
  const bool event_stream = type && type->starts_with("text/event-stream");
  meter_ = make_usage_meter(usage_dialect_, event_stream);
}

void ProxyExchange::on_response_body(std::string_view chunk) {
  if (!body_started_) {
    report_.event.time_to_first_byte = since(forwarded_, std::chrono::steady_clock::now());
  }
  body_started_ = true;
  if (meter_) meter_->feed(chunk);
}

void ProxyExchange::on_complete() {
  std::optional<TokenUsage> tokens = meter_ ? meter_->finish() : std::nullopt;
  if (tokens) {
    finish(metered(*tokens), status_, nullptr);
  } else if (status_ >= 400) {
    finish(Usage{.requests = 1}, status_, nullptr);
  } else {
    finish(reservation_as_charge(), status_, nullptr);
  }
}

void ProxyExchange::on_failure(const Error& error) {
  // A response head already on its way to the client fixed the status it sees.
  const int client_status = status_ != 0 ? status_ : http_status(error.code);
  if (!meter_ && error.code == ErrorCode::kUpstreamError && error.retryable) {
    finish(Usage{.requests = 1}, client_status, &error);  // the request never left till
    return;
  }
  Usage charge = reservation_as_charge();
  if (std::optional<TokenUsage> tokens = meter_ ? meter_->finish() : std::nullopt) {
    const Usage seen = metered(*tokens);
    if (seen.tokens() > charge.tokens() || seen.spend > charge.spend) charge = seen;
  }
  finish(charge, client_status, &error);
}

HttpResponse ProxyExchange::render_error(const Error& error) {
  return error_response(error, error_dialect_);
}

Usage ProxyExchange::metered(const TokenUsage& tokens) const {
  return Usage{.requests = 1,
               .input_tokens = tokens.input_tokens,
               .cached_input_tokens = tokens.cached_input_tokens,
               .output_tokens = tokens.output_tokens,
               .reasoning_tokens = tokens.reasoning_tokens,
               .spend = price_ ? cost_of(*price_, tokens) : Money()};
}

Usage ProxyExchange::reservation_as_charge() const {
  const Budget& held = hold_.amount();
  return Usage{.requests = held.requests, .unmetered_tokens = held.tokens, .spend = held.spend};
}

void ProxyExchange::finish(const Usage& usage, int client_status, const Error* error) {
  if (settled_) return;
  settled_ = true;
  ledger_.settle(hold_, usage);

  UsageEvent& event = report_.event;
  event.at = report_.clock.now();
  event.forwarded = true;
  event.status = client_status;
  if (error) event.error_code = std::string(to_string(error->code));
  event.usage = usage;
  event.latency = since(report_.received, std::chrono::steady_clock::now());
  report_.sink.record(std::move(event));
}

}  // namespace till
