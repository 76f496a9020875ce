// The environment variables that point a provider's SDKs at till with a scoped key:
// OPENAI_API_KEY + OPENAI_BASE_URL, ANTHROPIC_API_KEY + ANTHROPIC_BASE_URL, …, TILL_KEY and
// TILL_BASE_URL. Used by `till run` (the child's environment), `till env` (export lines) and
// GET /api/v1/providers (the dashboard's export snippet).
#pragma once

#include <map>
#include <string>

#include "provider/provider_table.h"

namespace till {

// The base URL an SDK of `provider` takes, through the till server at `till_url`.
std::string sdk_base_url(const std::string& till_url, const ProviderInfo& provider);

// Variable name → value, for a key of `provider` on the server at `till_url`.
std::map<std::string, std::string> sdk_environment(const std::string& till_url,
                                                   const ProviderInfo& provider,
                                                   const std::string& key);

}  // namespace till
