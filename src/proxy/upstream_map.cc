#include "proxy/upstream_map.h"

#include "provider/provider_table.h"

namespace till {

Result<UpstreamMap> UpstreamMap::create(const std::vector<std::string>& overrides) {
  UpstreamMap map;
  for (const ProviderInfo& provider : all_providers()) {
    auto endpoint = UpstreamEndpoint::parse(provider.base_url);
    if (!endpoint) return fail(Error::internal("bad built-in base URL for " +
                                               std::string(provider.name)));
    map.endpoints_.emplace(std::string(provider.name), std::move(*endpoint));
  }
  for (const std::string& entry : overrides) {
    const size_t eq = entry.find('=');
    if (eq == std::string::npos) {
      return fail(Error::invalid("upstream", "--upstream " + entry +
                                                 ": expected NAME=URL, e.g. openai=http://127.0.0.1:9000"));
    }
    const std::string name = entry.substr(0, eq);
    if (!find_provider(name)) {
      return fail(Error::invalid("upstream", "--upstream " + entry + ": unknown provider \"" +
                                                 name + "\""));
    }
    auto endpoint = UpstreamEndpoint::parse(std::string_view(entry).substr(eq + 1));
    if (!endpoint) {
      return fail(Error::invalid("upstream", "--upstream " + name + ": " + endpoint.error().message));
    }
    map.endpoints_[name] = std::move(*endpoint);
  }
  return map;
}

const UpstreamEndpoint& UpstreamMap::at(std::string_view provider) const {
  return endpoints_.find(provider)->second;
}

}  // namespace till
