#include "proxy/proxy_handler.h"

#include <algorithm>
#include <limits>

#include "core/cidr.h"
#include "core/token.h"
#include "core/url.h"
#include "provider/provider_table.h"
#include "provider/request_rewrite.h"
#include "proxy/authenticator.h"
#include "proxy/error_response.h"
#include "proxy/proxy_exchange.h"

namespace till {
namespace {

// The most output a request without a cap is assumed to ask for when its model's maximum is
// unknown.
constexpr int64_t kDefaultMaxOutputTokens = 32'768;

ErrorDialect error_dialect_of(std::string_view provider) {
  return provider == "anthropic" ? ErrorDialect::kAnthropic : ErrorDialect::kOpenAi;
}

Error scope_denied(std::string message) {
  return Error::client(ErrorCode::kScopeDenied, std::move(message));
}

bool is_till_key(std::string_view value) { return value.starts_with("till_"); }

// The till key, from wherever the provider's SDK sends its key.
std::optional<std::string> client_key(const HttpRequest& request, std::string_view query) {
  if (auto auth = request.header("authorization")) {
    if (auto token = bearer_token(*auth); token && is_till_key(*token)) return std::string(*token);
  }
  for (std::string_view name : {"x-api-key", "x-goog-api-key"}) {
    if (auto value = request.header(name); value && is_till_key(*value)) {
      return std::string(*value);
    }
  }
  if (auto params = parse_query(query)) {
    for (const auto& [name, value] : *params) {
      if (name == "key" && is_till_key(value)) return value;
    }
  }
  return std::nullopt;
}

// The query string without `key` parameters (a client credential for Gemini's SDKs).
std::string query_without_key(std::string_view query) {
  std::string out;
  while (!query.empty()) {
    const size_t amp = query.find('&');
    const std::string_view part = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view{} : query.substr(amp + 1);
    const std::string_view name = part.substr(0, part.find('='));
    if (part.empty() || name == "key") continue;
    if (!out.empty()) out += '&';
    out += part;
  }
  return out;
}

// Request headers that never go upstream: client credentials, framing and hop-by-hop headers
// (the transport owns those), and Accept-Encoding (till must read the body to meter it).
bool is_dropped_header(std::string_view name) {
  static constexpr std::string_view kDropped[] = {
      "authorization",   "x-api-key",  "x-goog-api-key",    "host",   "content-length",
      "connection",      "keep-alive", "transfer-encoding", "te",     "trailer",
      "upgrade",         "expect",     "accept-encoding",   "cookie", "proxy-authorization",
      "proxy-connection"};
  return std::find(std::begin(kDropped), std::end(kDropped), name) != std::end(kDropped);
}

HttpHeaders upstream_headers(const HttpHeaders& client, const ProviderInfo& provider,
                             const std::string& credential) {
  HttpHeaders out;
  out.reserve(client.size() + 2);
  for (const HttpHeader& h : client) {
    if (!is_dropped_header(h.name)) out.push_back(h);
  }
  switch (provider.credential_style) {
    case CredentialStyle::kBearer:
      out.push_back({"authorization", "Bearer " + credential});
      break;
    case CredentialStyle::kXApiKey:
      out.push_back({"x-api-key", credential});
      if (!find_header(out, "anthropic-version")) {
        out.push_back({"anthropic-version", "2023-06-01"});
      }
      break;
    case CredentialStyle::kGoogApiKey:
      out.push_back({"x-goog-api-key", credential});
      break;
  }
  out.push_back({"accept-encoding", "identity"});
  return out;
}

bool address_allowed(const KeyRecord& key, std::string_view address) {
  if (key.scope.allowed_cidrs.empty()) return true;
  for (const std::string& text : key.scope.allowed_cidrs) {
    if (auto cidr = Cidr::parse(text, "allowed_cidrs"); cidr && cidr->contains(address)) {
      return true;
    }
  }
  return false;
}

}  // namespace

ProxyHandler::ProxyHandler(KeyCache& keys, BudgetLedger& ledger, const PricingTable& pricing,
                           const UpstreamMap& upstreams, const Clock& clock, EventSink& events,
                           const AddressBlocklist& blocked)
    : keys_(keys),
      ledger_(ledger),
      pricing_(pricing),
      upstreams_(upstreams),
      clock_(clock),
      events_(events),
      blocked_(blocked) {}

// The largest output cap per generation that the key's remaining tokens and spend can pay for,
// after `input_bound` input tokens; kLimitExhausted if not even one token.
Result<int64_t> ProxyHandler::affordable_output(const KeyRecord& key, const ModelPrice* price,
                                                int64_t input_bound, int64_t choices) {
  auto live = ledger_.find_key(key.id);
  if (!live) return fail(live.error());
  int64_t affordable = std::numeric_limits<int64_t>::max();
  if (key.limits.max_tokens) {
    affordable = *key.limits.max_tokens - live->used.tokens() - live->reserved.tokens - input_bound;
  }
  if (key.limits.max_spend && price) {
    const Money left = *key.limits.max_spend - live->used.spend - live->reserved.spend;
    affordable = std::min(affordable, affordable_output_tokens(*price, input_bound, left));
  }
  affordable /= std::max<int64_t>(1, choices);
  if (affordable < 1) {
    return fail(Error::client(ErrorCode::kLimitExhausted,
                              "till: key " + key.id +
                                  " has not enough budget left for even a short answer to this "
                                  "request; ask for a new key",
                              key.limits.max_spend ? "max_spend" : "max_tokens"));
  }
  return affordable;
}

HandlerResult ProxyHandler::handle(HttpRequest& request) {
  const SteadyTime received = std::chrono::steady_clock::now();
  UsageEvent event;
  event.client_address = request.remote_address;
  auto route = parse_proxy_route(request.target);
  const ErrorDialect dialect = error_dialect_of(route ? route->provider : "");
  Result<Forward> forward =
      route ? prepare(request, *route, event, received) : Result<Forward>(fail(route.error()));
  if (forward) return std::move(*forward);

  event.at = clock_.now();
  event.status = http_status(forward.error().code);
  event.error_code = std::string(to_string(forward.error().code));
  event.latency = std::chrono::duration_cast<std::chrono::microseconds>(
      std::chrono::steady_clock::now() - received);
  events_.record(std::move(event));
  return error_response(forward.error(), dialect);
}

Result<Forward> ProxyHandler::prepare(HttpRequest& request, const ProxyRoute& route,
                                      UsageEvent& event, SteadyTime received) {
  const Timestamp now = clock_.now();
  event.provider = route.provider;
  if (auto until = blocked_.blocked_until(request.remote_address, now)) {
    Error refused = Error::client(ErrorCode::kRateLimited,
                                  "till: too many invalid keys came from this address; it is "
                                  "refused for a while");
    refused.retry_after_seconds =
        static_cast<int>(std::chrono::ceil<std::chrono::seconds>(*until - now).count());
    return fail(std::move(refused));
  }

  // Authenticate.
  const std::optional<std::string> token = client_key(request, route.query);
  if (!token) {
    return fail(Error::client(ErrorCode::kInvalidApiKey,
                              "till: no till key (till_sk_…) in the request; send it as the "
                              "API key your SDK uses"));
  }
  auto authenticated = keys_.authenticate(*token);
  if (!authenticated) {
    // The key a well-formed token names, for the alert rules (a stale or guessed token).
    if (events_.enabled()) {
      auto parsed = parse_token(*token);
      if (parsed && parsed->kind == TokenKind::kScoped) event.key_id = parsed->key_id;
    }
    return fail(authenticated.error());
  }
  const KeyRecord& key = (*authenticated)->record;
  event.key_id = key.id;

  // Authorize.
  if (auto usable = check_key_usable(key, now); !usable) return fail(usable.error());
  const std::string provider_name = route.provider.empty() ? key.provider : route.provider;
  event.provider = provider_name;
  if (provider_name != key.provider) {
    return fail(scope_denied("till: key " + key.id + " is for " + key.provider + ", not " +
                             provider_name + "; use /proxy/" + key.provider + "/… or a key for " +
                             provider_name));
  }
  const ProviderInfo& provider = *find_provider(provider_name);
  if (!address_allowed(key, request.remote_address)) {
    return fail(scope_denied("till: key " + key.id +
                             " may not be used from this address; see its allowed_cidrs"));
  }
  auto inspected =
      inspect_request(provider.dialect, route.upstream_path, request.method, request.body);
  if (!inspected) return fail(inspected.error());
  const std::string& model = inspected->facts().model;  // "" if the request names none
  event.model = model;
  event.streaming = inspected->facts().streaming;
  if (!key.scope.models.empty() && !model.empty() &&
      std::find(key.scope.models.begin(), key.scope.models.end(), model) ==
          key.scope.models.end()) {
    std::string allowed;
    for (const auto& m : key.scope.models) allowed += (allowed.empty() ? "" : ", ") + m;
    return fail(scope_denied("till: model " + model + " is not allowed for key " + key.id +
                             "; allowed: " + allowed));
  }
  if (!key.scope.models.empty() && model.empty() && request.method != "GET") {
    return fail(scope_denied("till: key " + key.id +
                             " is limited to certain models and this request names none"));
  }
  const ModelPrice* price = model.empty() ? nullptr : pricing_.find(provider.name, model);
  if (key.limits.max_spend && request.method != "GET" && !price) {
    return fail(scope_denied(
        "till: key " + key.id + " has a spend limit and till has no price for " +
        (model.empty() ? std::string("this request") : "model " + model) + " of " +
        std::string(provider.name) +
        "; add one with `till serve --pricing FILE` (see docs/pricing.md) or use a priced model"));
  }

  // Reserve the worst case: input tokens are bounded by the body's bytes; output by the
  // request's cap (times the generations it asks for), or the model's maximum, which a tight
  // budget lowers in the request itself (strict mode).
  const RequestFacts& facts = inspected->facts();
  const int64_t input_bound = static_cast<int64_t>(request.body.size());
  int64_t output_bound = 0;
  if (produces_output(facts.api) || facts.api == RequestApi::kUnknown) {
    if (facts.max_output_tokens) {
      output_bound = *facts.max_output_tokens;
    } else {
      output_bound = price && price->max_output_tokens > 0 ? price->max_output_tokens
                                                           : kDefaultMaxOutputTokens;
      if (produces_output(facts.api) && (key.limits.max_tokens || key.limits.max_spend)) {
        auto affordable = affordable_output(key, price, input_bound, facts.choices);
        if (!affordable) return fail(affordable.error());
        if (*affordable < output_bound) {
          output_bound = *affordable;
          inspected->set_max_output_tokens(output_bound, chat_cap_field_for(provider.name));
        }
      }
    }
    output_bound *= std::max<int64_t>(1, facts.choices);
  }
  // Counting tokens is free; other requests may consume their input and output bounds.
  const bool free =
      facts.api == RequestApi::kAnthropicCountTokens || facts.api == RequestApi::kGeminiCountTokens;
  const bool consumes = !free && (!facts.model.empty() || output_bound > 0);
  const Budget amount{
      1, consumes ? input_bound + output_bound : 0,
      consumes && price ? worst_case_cost(*price, input_bound, output_bound) : Money()};
  auto hold = ledger_.reserve(key, amount);
  if (!hold) return fail(hold.error());

  // Build the upstream request.
  if (facts.streaming && provider.dialect == UsageDialect::kOpenAi) {
    inspected->ensure_stream_usage();
  }
  const UpstreamEndpoint& endpoint = upstreams_.at(provider.name);
  Forward forward;
  UpstreamRequest& up = forward.request;
  up.upstream = endpoint;
  up.method = request.method;
  up.target = endpoint.base_path + route.upstream_path;
  if (std::string query = query_without_key(route.query); !query.empty()) up.target += "?" + query;
  up.headers = upstream_headers(request.headers, provider, (*authenticated)->credential);
  if (events_.enabled() && !request.body.empty()) {
    event.body_hash = std::hash<std::string_view>{}(request.body);
  }
  up.body = inspected->modified() ? inspected->body() : std::move(request.body);
  up.idempotent = request.method == "GET" || request.method == "HEAD";
  std::optional<ModelPrice> price_copy;
  if (price) price_copy = *price;
  forward.observer = std::make_unique<ProxyExchange>(
      ledger_, std::move(*hold), facts.dialect, error_dialect_of(provider.name), price_copy,
      EventReport{events_, clock_, std::move(event), received});
  return forward;
}

}  // namespace till
