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
// Thread-safety: used on one I/O thread (the transport's contract); the ledger it settles into
// is thread-safe.
#pragma once

#include <memory>
#include <optional>

#include "provider/pricing.h"
#include "provider/provider_table.h"
#include "provider/usage_meter.h"
#include "proxy/budget_ledger.h"
#include "proxy/error_response.h"
#include "till/forward.h"

namespace till {

class ProxyExchange final : public ExchangeObserver {
 public:
  // `price` may be null (an unpriced model on a key without a spend limit): spend is then 0.
  ProxyExchange(BudgetLedger& ledger, BudgetLedger::Hold hold, UsageDialect usage_dialect,
                ErrorDialect error_dialect, std::optional<ModelPrice> price);
  ~ProxyExchange() override;

  void on_response_head(int status, HttpHeaders& headers) override;
  void on_response_body(std::string_view chunk) override;
  void on_complete() override;
  void on_failure(const Error& error) override;
  HttpResponse render_error(const Error& error) override;

 private:
  Usage metered(const TokenUsage& tokens) const;
  Usage reservation_as_charge() const;
  void settle(const Usage& usage);

  BudgetLedger& ledger_;
  BudgetLedger::Hold hold_;
  UsageDialect usage_dialect_;
  ErrorDialect error_dialect_;
  std::optional<ModelPrice> price_;
  std::unique_ptr<UsageMeter> meter_;  // created with the response head
  int status_ = 0;
  bool body_started_ = false;
  bool settled_ = false;
};

}  // namespace till
