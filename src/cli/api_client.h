// The CLI's view of a till server: TILL_URL (default http://127.0.0.1:4100) and TILL_ADMIN_KEY.
#pragma once

#include <string>
#include <string_view>
#include <utility>

#include <boost/json/value.hpp>

#include "till/error.h"

namespace till {

class ApiClient {
 public:
  ApiClient(std::string url, std::string admin_key)
      : url_(std::move(url)), admin_key_(std::move(admin_key)) {}

  // Reads TILL_URL and TILL_ADMIN_KEY from the environment.
  static ApiClient from_environment();

  // Sends a request with the admin key and returns the parsed JSON body of a 2xx answer.
  // A non-2xx answer becomes an Error carrying the server's code and message; an unreachable
  // server is kUnavailable; a missing TILL_ADMIN_KEY is kInvalidApiKey saying how to set it.
  Result<boost::json::value> call(std::string_view method, std::string_view target,
                                  std::string_view body = {}) const;

  const std::string& url() const { return url_; }

 private:
  std::string url_;
  std::string admin_key_;
};

}  // namespace till
