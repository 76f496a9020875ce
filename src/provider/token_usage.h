// Tokens one provider response consumed, as metered from its body (JSON or SSE).
#pragma once

#include <cstdint>

namespace till {

struct TokenUsage {
  int64_t input_tokens = 0;         // all input tokens, including cached and cache-write ones
  int64_t cached_input_tokens = 0;  // part of input_tokens read from the provider's cache
  int64_t cache_write_tokens = 0;   // part of input_tokens written to the cache (Anthropic)
  int64_t output_tokens = 0;        // all output tokens, including reasoning ones
  int64_t reasoning_tokens = 0;     // part of output_tokens spent on reasoning
  bool operator==(const TokenUsage&) const = default;
};

}  // namespace till
