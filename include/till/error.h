// Error values for every layer of till.
//
// Our code does not throw: fallible functions return Result<T> (std::expected<T, Error>). An Error
// carries what went wrong (code), whose fault it was (source), whether retrying the same call can
// succeed (retryable), a message written for the person or agent that will read it, and, for
// validation errors, the offending field. The mapping from ErrorCode to HTTP status lives in exactly
// one place: http_status() below.
#pragma once

#include <expected>
#include <string>
#include <string_view>
#include <utility>

namespace till {

enum class ErrorCode {
  // Client-facing codes of DESIGN.md's error table.
  kInvalidApiKey,        // 401 invalid_api_key: missing, malformed or unknown key
  kKeyRevoked,           // 403 key_revoked
  kKeyExpired,           // 403 key_expired
  kKeySuspended,         // 403 key_suspended
  kScopeDenied,          // 403 scope_denied: model, path, method or address not in scope
  kLimitExhausted,       // 402 limit_exhausted
  kRateLimited,          // 429 rate_limited
  kConcurrencyLimited,   // 429 concurrency_limited
  kRequestTooLarge,      // 413 request_too_large
  kInvalidRequest,       // 400 invalid_request: malformed JSON, invalid field
  kRequestTimeout,       // 408 request_timeout: the client was too slow to send its request
  kNotFound,             // 404 not_found
  kMethodNotAllowed,     // 405 method_not_allowed
  kConflict,             // 409 conflict: e.g. an id that already exists
  kUpstreamError,        // 502 upstream_error
  kUpstreamTimeout,      // 504 upstream_timeout
  kUnavailable,          // 503 unavailable: shutting down, store unreachable
  kInternal,             // 500 internal_error: a bug or an environment failure
};

enum class ErrorSource { kClient, kUpstream, kInternal };

struct Error {
  ErrorCode code = ErrorCode::kInternal;
  ErrorSource source = ErrorSource::kInternal;
  bool retryable = false;
  std::string message;  // never contains a secret
  std::string field;    // the request field at fault, for validation errors; empty otherwise
  int retry_after_seconds = 0;  // for kRateLimited / kConcurrencyLimited: when to retry

  // Shorthands for the common cases.
  static Error client(ErrorCode code, std::string message, std::string field = {}) {
    return Error{code, ErrorSource::kClient, false, std::move(message), std::move(field)};
  }
  static Error invalid(std::string field, std::string message) {
    return client(ErrorCode::kInvalidRequest, std::move(message), std::move(field));
  }
  static Error internal(std::string message) {
    return Error{ErrorCode::kInternal, ErrorSource::kInternal, false, std::move(message), {}};
  }
};

template <typename T>
using Result = std::expected<T, Error>;

// Returns the unexpected value of a Result; lets functions write `return fail(err);`.
inline std::unexpected<Error> fail(Error error) { return std::unexpected<Error>(std::move(error)); }

// Wire name of a code: "invalid_api_key", "limit_exhausted", …
std::string_view to_string(ErrorCode code);

// The one mapping from error code to HTTP status.
int http_status(ErrorCode code);

}  // namespace till
