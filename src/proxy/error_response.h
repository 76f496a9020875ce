// Rendering an Error as an HTTP response in the dialect of the API the client speaks, so that the
// client's SDK shows till's message (DESIGN.md "Errors"). The one place errors become responses.
#pragma once

#include "till/error.h"
#include "till/http.h"

namespace till {

enum class ErrorDialect {
  kOpenAi,     // {"error":{"message","type","code","param"}} — also the control plane's shape
  kAnthropic,  // {"type":"error","error":{"type","message"}}
};

HttpResponse error_response(const Error& error, ErrorDialect dialect = ErrorDialect::kOpenAi);

// A JSON response with the given status and an already serialised body.
HttpResponse json_response(int status, std::string body);

}  // namespace till
