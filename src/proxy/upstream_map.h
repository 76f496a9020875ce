// Where each provider's requests go: the provider table's base URLs, with per-deployment
// overrides (`till serve --upstream NAME=URL`).
#pragma once

#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "till/error.h"
#include "till/forward.h"

namespace till {

class UpstreamMap {
 public:
  // The built-in base URL of every provider, then each "NAME=URL" override in order. Errors
  // (kInvalidRequest, field "upstream") name the bad override: unknown provider, malformed URL.
  static Result<UpstreamMap> create(const std::vector<std::string>& overrides);

  // The endpoint for `provider`; REQUIRES: a provider of the provider table.
  const UpstreamEndpoint& at(std::string_view provider) const;

 private:
  std::map<std::string, UpstreamEndpoint, std::less<>> endpoints_;
};

}  // namespace till
