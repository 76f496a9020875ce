#include "till/error.h"

namespace till {

std::string_view to_string(ErrorCode code) {
  switch (code) {
    case ErrorCode::kInvalidApiKey: return "invalid_api_key";
    case ErrorCode::kKeyRevoked: return "key_revoked";
    case ErrorCode::kKeyExpired: return "key_expired";
    case ErrorCode::kKeySuspended: return "key_suspended";
    case ErrorCode::kScopeDenied: return "scope_denied";
    case ErrorCode::kLimitExhausted: return "limit_exhausted";
    case ErrorCode::kRateLimited: return "rate_limited";
    case ErrorCode::kConcurrencyLimited: return "concurrency_limited";
    case ErrorCode::kRequestTooLarge: return "request_too_large";
    case ErrorCode::kInvalidRequest: return "invalid_request";
    case ErrorCode::kRequestTimeout: return "request_timeout";
    case ErrorCode::kNotFound: return "not_found";
    case ErrorCode::kMethodNotAllowed: return "method_not_allowed";
    case ErrorCode::kConflict: return "conflict";
    case ErrorCode::kUpstreamError: return "upstream_error";
    case ErrorCode::kUpstreamTimeout: return "upstream_timeout";
    case ErrorCode::kUnavailable: return "unavailable";
    case ErrorCode::kInternal: return "internal_error";
  }
  return "internal_error";
}

int http_status(ErrorCode code) {
  switch (code) {
    case ErrorCode::kInvalidApiKey: return 401;
    case ErrorCode::kKeyRevoked:
    case ErrorCode::kKeyExpired:
    case ErrorCode::kKeySuspended:
    case ErrorCode::kScopeDenied: return 403;
    case ErrorCode::kLimitExhausted: return 402;
    case ErrorCode::kRateLimited:
    case ErrorCode::kConcurrencyLimited: return 429;
    case ErrorCode::kRequestTooLarge: return 413;
    case ErrorCode::kInvalidRequest: return 400;
    case ErrorCode::kRequestTimeout: return 408;
    case ErrorCode::kNotFound: return 404;
    case ErrorCode::kMethodNotAllowed: return 405;
    case ErrorCode::kConflict: return 409;
    case ErrorCode::kUpstreamError: return 502;
    case ErrorCode::kUpstreamTimeout: return 504;
    case ErrorCode::kUnavailable: return 503;
    case ErrorCode::kInternal: return 500;
  }
  return 500;
}

}  // namespace till
