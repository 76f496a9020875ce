#include "provider/sdk_environment.h"

namespace till {

std::string sdk_base_url(const std::string& till_url, const ProviderInfo& provider) {
  const std::string base = till_url + "/proxy/" + std::string(provider.name);
  switch (provider.dialect) {
    case UsageDialect::kAnthropic:
    case UsageDialect::kGemini:
    case UsageDialect::kCohere:
      return base;
    case UsageDialect::kOpenAi:
      return provider.name == "perplexity" ? base : base + "/v1";
  }
  return base;
}

std::map<std::string, std::string> sdk_environment(const std::string& till_url,
                                                   const ProviderInfo& provider,
                                                   const std::string& key) {
  std::map<std::string, std::string> vars{{"TILL_KEY", key}, {"TILL_BASE_URL", till_url}};
  const std::string base = sdk_base_url(till_url, provider);
  const std::string key_var(provider.api_key_env);
  vars[key_var] = key;
  if (provider.name == "google") {
    vars["GOOGLE_API_KEY"] = key;
    vars["GOOGLE_GEMINI_BASE_URL"] = base;
  } else {
    // OPENAI_API_KEY → OPENAI_BASE_URL, GROQ_API_KEY → GROQ_BASE_URL, CO_API_KEY → CO_BASE_URL.
    const std::string prefix = key_var.substr(0, key_var.rfind("_API_KEY"));
    vars[prefix + "_BASE_URL"] = base;
  }
  if (provider.dialect == UsageDialect::kOpenAi && provider.name != "openai") {
    // Agents built on the OpenAI SDK talk to OpenAI-compatible providers through its variables.
    vars["OPENAI_API_KEY"] = key;
    vars["OPENAI_BASE_URL"] = base;
  }
  return vars;
}

}  // namespace till
