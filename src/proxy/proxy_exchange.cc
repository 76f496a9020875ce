#include "proxy/proxy_exchange.h"

#include <algorithm>

namespace till {

ProxyExchange::ProxyExchange(BudgetLedger& ledger, BudgetLedger::Hold hold,
                             UsageDialect usage_dialect, ErrorDialect error_dialect,
                             std::optional<ModelPrice> price)
    : ledger_(ledger),
      hold_(std::move(hold)),
      usage_dialect_(usage_dialect),
      error_dialect_(error_dialect),
      price_(price) {}

// A transport that broke its contract (no final call) still must not leak the hold: the hold's
// own destructor charges the reservation.
ProxyExchange::~ProxyExchange() = default;

void ProxyExchange::on_response_head(int status, HttpHeaders& headers) {
  status_ = status;
  const auto type = find_header(headers, "content-type");
  const bool event_stream = type && type->starts_with("text/event-stream");
  meter_ = make_usage_meter(usage_dialect_, event_stream);
}

void ProxyExchange::on_response_body(std::string_view chunk) {
  body_started_ = true;
  if (meter_) meter_->feed(chunk);
}

void ProxyExchange::on_complete() {
  std::optional<TokenUsage> tokens = meter_ ? meter_->finish() : std::nullopt;
  if (tokens) {
    settle(metered(*tokens));
  } else if (status_ >= 400) {
    settle(Usage{.requests = 1});
  } else {
    settle(reservation_as_charge());
  }
}

void ProxyExchange::on_failure(const Error& error) {
  if (!meter_ && error.code == ErrorCode::kUpstreamError && error.retryable) {
    settle(Usage{.requests = 1});  // the request never left till
    return;
  }
  Usage charge = reservation_as_charge();
  if (std::optional<TokenUsage> tokens = meter_ ? meter_->finish() : std::nullopt) {
    const Usage seen = metered(*tokens);
    if (seen.tokens() > charge.tokens() || seen.spend > charge.spend) charge = seen;
  }
  settle(charge);
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

void ProxyExchange::settle(const Usage& usage) {
  if (settled_) return;
  settled_ = true;
  ledger_.settle(hold_, usage);
}

}  // namespace till
