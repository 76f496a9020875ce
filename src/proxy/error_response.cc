#include "proxy/error_response.h"

#include <algorithm>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>
#include <string>

namespace till {
namespace {

namespace json = boost::json;

// OpenAI's "type" family for a code, so SDKs classify the error sensibly.
std::string_view openai_type(ErrorCode code) {
  switch (code) {
    case ErrorCode::kInvalidApiKey:
      return "authentication_error";
    case ErrorCode::kKeyRevoked:
    case ErrorCode::kKeyExpired:
    case ErrorCode::kKeySuspended:
    case ErrorCode::kScopeDenied:
      return "permission_error";
    case ErrorCode::kLimitExhausted:
      return "insufficient_quota";
    case ErrorCode::kRateLimited:
    case ErrorCode::kConcurrencyLimited:
      return "rate_limit_error";
    case ErrorCode::kNotFound:
      return "not_found_error";
    case ErrorCode::kUpstreamError:
    case ErrorCode::kUpstreamTimeout:
    case ErrorCode::kUnavailable:
    case ErrorCode::kInternal:
      return "api_error";
    default:
      return "invalid_request_error";
  }
}

// Anthropic's error types (docs: "Errors").
std::string_view anthropic_type(ErrorCode code) {
  switch (code) {
    case ErrorCode::kInvalidApiKey:
      return "authentication_error";
    case ErrorCode::kKeyRevoked:
    case ErrorCode::kKeyExpired:
    case ErrorCode::kKeySuspended:
    case ErrorCode::kScopeDenied:
      return "permission_error";
    case ErrorCode::kLimitExhausted:
      return "billing_error";
    case ErrorCode::kRateLimited:
    case ErrorCode::kConcurrencyLimited:
      return "rate_limit_error";
    case ErrorCode::kNotFound:
      return "not_found_error";
    case ErrorCode::kRequestTooLarge:
      return "request_too_large";
    case ErrorCode::kUpstreamTimeout:
    case ErrorCode::kUpstreamError:
    case ErrorCode::kUnavailable:
    case ErrorCode::kInternal:
      return "api_error";
    default:
      return "invalid_request_error";
  }
}

}  // namespace

HttpResponse error_response(const Error& error, ErrorDialect dialect) {
  json::object body;
  const json::value param = error.field.empty() ? json::value(nullptr) : json::value(error.field);
  if (dialect == ErrorDialect::kAnthropic) {
    body = {{"type", "error"},
            {"error",
             {{"type", anthropic_type(error.code)},
              {"message", error.message},
              {"code", to_string(error.code)}}}};
  } else {
    body = {{"error",
             {{"message", error.message},
              {"type", openai_type(error.code)},
              {"code", to_string(error.code)},
              {"param", param}}}};
  }
  HttpResponse response = json_response(http_status(error.code), json::serialize(body));
  if (error.code == ErrorCode::kRateLimited || error.code == ErrorCode::kConcurrencyLimited) {
    response.headers.push_back(
        {"retry-after", std::to_string(std::max(1, error.retry_after_seconds))});
  }
  return response;
}

HttpResponse json_response(int status, std::string body) {
  HttpResponse response;
  response.status = status;
  response.headers.push_back({"content-type", "application/json"});
  response.body = std::move(body);
  return response;
}

}  // namespace till
