#include "provider/provider_table.h"

#include <array>

namespace till {
namespace {

using enum CredentialStyle;
using enum UsageDialect;
using enum ModelLocation;

constexpr std::array kProviders = {
    ProviderInfo{"openai", "OpenAI", "https://api.openai.com", kBearer, kOpenAi, kBodyField,
                 "OPENAI_API_KEY"},
    ProviderInfo{"anthropic", "Anthropic", "https://api.anthropic.com", kXApiKey, kAnthropic,
                 kBodyField, "ANTHROPIC_API_KEY"},
    ProviderInfo{"google", "Google Gemini", "https://generativelanguage.googleapis.com",
                 kGoogApiKey, kGemini, kUrlPath, "GEMINI_API_KEY"},
    ProviderInfo{"openrouter", "OpenRouter", "https://openrouter.ai/api", kBearer, kOpenAi,
                 kBodyField, "OPENROUTER_API_KEY"},
    ProviderInfo{"mistral", "Mistral", "https://api.mistral.ai", kBearer, kOpenAi, kBodyField,
                 "MISTRAL_API_KEY"},
    ProviderInfo{"groq", "Groq", "https://api.groq.com/openai", kBearer, kOpenAi, kBodyField,
                 "GROQ_API_KEY"},
    ProviderInfo{"together", "Together AI", "https://api.together.xyz", kBearer, kOpenAi,
                 kBodyField, "TOGETHER_API_KEY"},
    ProviderInfo{"fireworks", "Fireworks AI", "https://api.fireworks.ai/inference", kBearer,
                 kOpenAi, kBodyField, "FIREWORKS_API_KEY"},
    ProviderInfo{"perplexity", "Perplexity", "https://api.perplexity.ai", kBearer, kOpenAi,
                 kBodyField, "PERPLEXITY_API_KEY"},
    ProviderInfo{"deepseek", "DeepSeek", "https://api.deepseek.com", kBearer, kOpenAi, kBodyField,
                 "DEEPSEEK_API_KEY"},
    ProviderInfo{"xai", "xAI", "https://api.x.ai", kBearer, kOpenAi, kBodyField, "XAI_API_KEY"},
    ProviderInfo{"cohere", "Cohere", "https://api.cohere.com", kBearer, kCohere, kBodyField,
                 "CO_API_KEY"},
};

}  // namespace

std::span<const ProviderInfo> all_providers() { return kProviders; }

const ProviderInfo* find_provider(std::string_view name) {
  for (const ProviderInfo& p : kProviders) {
    if (p.name == name) return &p;
  }
  return nullptr;
}

}  // namespace till
