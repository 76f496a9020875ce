// ProxyExchange: the request path's view of one forwarded request (an ExchangeObserver, see
// include/till/forward.h). It meters the response as it streams through and settles the
// request's budget hold exactly once, whatever happens:
//
//   response with usage          → the metered tokens, priced
//   response without usage       → the reservation stands as the charge (tokens unmetered)
//   upstream answered 4xx/5xx    → one request, no tokens (providers do not bill failures),
//                                   unless the body reported usage
//   failure before any response  → one request, no tokens, if the request certainly never
//                                   left (connect failed); otherwise the reservation stands
//   failure mid-body             → the reservation stands (the provider bills what it
//                                   generated, and usage arrives only at the end), or the
//                                   metered usage if that is larger
//
// When it settles it also completes the request's usage event (status, usage, latencies) and
// hands it to the event sink.
//
// Thread-safety: used on one I/O thread (the transport's contract); the ledger it settles into
// and the sink it reports to are thread-safe.
#pragma once

#include <chrono>
#include <memory>
#include <optional>

#include "provider/pricing.h"
#include "provider/provider_table.h"
#include "provider/usage_meter.h"
#include "proxy/budget_ledger.h"
#include "proxy/error_response.h"
#include "till/clock.h"
#include "till/forward.h"
#include "till/usage_event.h"

namespace till {

using SteadyTime = std::chrono::steady_clock::time_point;

// Where and how an exchange reports its usage event.
struct EventReport {
  EventSink& sink;
  const Clock& clock;   // for UsageEvent::at
  UsageEvent event;     // what is known before forwarding: key, provider, model, address, …
  SteadyTime received;  // when the request arrived
};

class ProxyExchange final : public ExchangeObserver {
 public:
  // `price` may be null (an unpriced model on a key without a spend limit): spend is then 0.
  ProxyExchange(BudgetLedger& ledger, BudgetLedger::Hold hold, UsageDialect usage_dialect,
                ErrorDialect error_dialect, std::optional<ModelPrice> price, EventReport report);
  ~ProxyExchange() override;

  void on_response_head(int status, HttpHeaders& headers) override;
  void on_response_body(std::string_view chunk) override;
  void on_complete() override;
  void on_failure(const Error& error) override;
  HttpResponse render_error(const Error& error) override;

 private:
  Usage metered(const TokenUsage& tokens) const;
  Usage reservation_as_charge() const;
  // Settles the hold (once) and reports the event with what the client got.
  void finish(const Usage& usage, int client_status, const Error* error);

  BudgetLedger& ledger_;
  BudgetLedger::Hold hold_;
  UsageDialect usage_dialect_;
  ErrorDialect error_dialect_;
  std::optional<ModelPrice> price_;
  std::unique_ptr<UsageMeter> meter_;  // created with the response head
  EventReport report_;
  SteadyTime forwarded_;  // when the exchange started (the request left for the provider)
  int status_ = 0;
  bool body_started_ = false;
  bool settled_ = false;
};

}  // namespace till
