// The providers till knows, as data: where each lives, how it takes its credential, which usage
// dialect its responses speak and where a request names its model.
#pragma once

#include <span>
#include <string_view>

namespace till {

enum class CredentialStyle {
  kBearer,        // Authorization: Bearer <key>
  kXApiKey,       // x-api-key: <key> (Anthropic; also sends a default anthropic-version)
  kGoogApiKey,    // x-goog-api-key: <key> (Gemini)
};

enum class UsageDialect { kOpenAi, kAnthropic, kGemini, kCohere };

enum class ModelLocation {
  kBodyField,  // "model" in the JSON body
  kUrlPath,    // Gemini: /v1beta/models/{model}:generateContent
};

struct ProviderInfo {
  std::string_view name;          // "openai"
  std::string_view display_name;  // "OpenAI"
  std::string_view base_url;      // default upstream, overridable with --upstream NAME=URL
  CredentialStyle credential_style;
  UsageDialect dialect;
  ModelLocation model_location;
  std::string_view api_key_env;   // the variable the provider's SDKs read: "OPENAI_API_KEY"
};

// All providers, in a stable order.
std::span<const ProviderInfo> all_providers();

// The provider called `name`, or nullptr.
const ProviderInfo* find_provider(std::string_view name);

}  // namespace till
