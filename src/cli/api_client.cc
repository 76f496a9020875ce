#include "cli/api_client.h"

#include <cstdlib>

#include <boost/json/parse.hpp>

#include "http/client.h"

namespace till {
namespace {

namespace json = boost::json;

ErrorCode code_from_wire(std::string_view code) {
  for (int i = 0; i <= static_cast<int>(ErrorCode::kInternal); ++i) {
    if (to_string(static_cast<ErrorCode>(i)) == code) return static_cast<ErrorCode>(i);
  }
  return ErrorCode::kInternal;
}

}  // namespace

ApiClient ApiClient::from_environment() {
  const char* url = std::getenv("TILL_URL");
  const char* admin = std::getenv("TILL_ADMIN_KEY");
  return ApiClient(url && *url ? url : "http://127.0.0.1:4100", admin ? admin : "");
}

Result<json::value> ApiClient::call(std::string_view method, std::string_view target,
                                    std::string_view body) const {
  if (admin_key_.empty()) {
    return fail(Error::client(ErrorCode::kInvalidApiKey,
                              "TILL_ADMIN_KEY is not set; export the admin key that `till init` "
                              "or the first `till serve` printed"));
  }
  std::vector<HttpHeader> headers{{"authorization", "Bearer " + admin_key_}};
  if (!body.empty()) headers.push_back({"content-type", "application/json"});
  auto response = http_call(url_, method, target, headers, body);
  if (!response) return fail(response.error());
  boost::system::error_code ec;
  json::value parsed = json::parse(response->body, ec);
  if (response->status >= 200 && response->status < 300) {
    if (ec) return fail(Error::internal("the server at " + url_ + " sent a response that is not JSON"));
    return parsed;
  }
  Error error = Error::client(ErrorCode::kInternal, "the server answered HTTP " +
                                                        std::to_string(response->status));
  if (!ec && parsed.is_object()) {
    if (const json::value* err = parsed.as_object().if_contains("error"); err && err->is_object()) {
      const json::object& e = err->as_object();
      if (auto* m = e.if_contains("message"); m && m->is_string()) error.message = m->as_string();
      if (auto* c = e.if_contains("code"); c && c->is_string()) {
        error.code = code_from_wire(c->as_string());
      }
      if (auto* p = e.if_contains("param"); p && p->is_string()) error.field = p->as_string();
    }
  }
  return fail(std::move(error));
}

}  // namespace till
