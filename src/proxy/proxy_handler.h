// ProxyHandler: the data plane's request path, up to the point where the transport takes over.
//
//   authenticate → authorize → reserve → build the upstream request → hand it to the transport
//   (which streams the answer back through a ProxyExchange that meters and settles).
//
// Each phase either passes or answers with an error in the client's dialect:
//   authenticate  the till key from wherever the provider's SDK sends its key (Authorization:
//                 Bearer, x-api-key, x-goog-api-key, ?key=) → 401 invalid_api_key
//   authorize     status and expiry (403 key_*), provider and model scope, client address
//                 (403 scope_denied), a price for the model if the key has a spend limit
//   reserve       the worst case on every budget dimension, atomically (402 limit_exhausted,
//                 429 rate_limited / concurrency_limited); a request with no output cap gets one
//                 when the remaining budget cannot pay for the model's maximum
//   forward       every client credential removed, the real one injected; OpenAI-compatible
//                 streams asked to include usage
//
// Thread-safety: handle() may be called concurrently from every I/O thread.
#pragma once

#include <string_view>

#include "provider/pricing.h"
#include "proxy/address_blocklist.h"
#include "proxy/budget_ledger.h"
#include "proxy/key_cache.h"
#include "proxy/proxy_exchange.h"
#include "proxy/proxy_route.h"
#include "proxy/upstream_map.h"
#include "till/clock.h"
#include "till/forward.h"
#include "till/usage_event.h"

namespace till {

class ProxyHandler {
 public:
  // All references must outlive the handler. Every request's usage event goes to `events`;
  // addresses in `blocked` are refused with 429 before anything else.
  ProxyHandler(KeyCache& keys, BudgetLedger& ledger, const PricingTable& pricing,
               const UpstreamMap& upstreams, const Clock& clock, EventSink& events,
               const AddressBlocklist& blocked);

  // REQUIRES: is_proxy_path(path of request.target).
  HandlerResult handle(HttpRequest& request);

 private:
  // Fills `event` with what it learns (key, provider, model) whether it succeeds or not.
  Result<Forward> prepare(HttpRequest& request, const ProxyRoute& route, UsageEvent& event,
                          SteadyTime received);
  Result<int64_t> affordable_output(const KeyRecord& key, const ModelPrice* price,
                                    int64_t input_bound, int64_t choices);

  KeyCache& keys_;
  BudgetLedger& ledger_;
  const PricingTable& pricing_;
  const UpstreamMap& upstreams_;
  const Clock& clock_;
  EventSink& events_;
  const AddressBlocklist& blocked_;
};

}  // namespace till
