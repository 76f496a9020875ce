// libFuzzer target for usage metering (src/provider/usage_meter.h): it reads the bytes of every
// provider response, in whatever pieces the network delivers them.
//
// Input: byte 0 picks the dialect (bits 0-1: OpenAI, Anthropic, Gemini, Cohere) and the framing
// (bit 2: text/event-stream); byte 1 seeds how the body is cut; the rest is the body. Beyond "no
// crash, no sanitizer report", every input checks:
//  1. Feeding the body whole or in random pieces of 0-24 bytes (steered by byte 1) meters the
//     same.
//  2. A metered usage keeps TokenUsage's invariants: counts are non-negative and bounded (a few
//     times UsageMeter::kMaxTokenCount at most), cached + cache_write <= input, reasoning <=
//     output.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <random>
#include <string_view>
#include <vector>

#include "provider/usage_meter.h"

namespace {

using till::TokenUsage;
using till::UsageDialect;
using till::UsageMeter;

[[noreturn]] void violated(const char* what, int line) {
  std::fprintf(stderr, "usage_fuzz: invariant violated at line %d: %s\n", line, what);
  std::abort();
}

#define FUZZ_CHECK(cond)                    \
  do {                                      \
    if (!(cond)) violated(#cond, __LINE__); \
  } while (0)

std::optional<TokenUsage> run(UsageDialect dialect, bool event_stream,
                              const std::vector<std::string_view>& chunks) {
  auto meter = till::make_usage_meter(dialect, event_stream);
  FUZZ_CHECK(meter != nullptr);
  for (std::string_view chunk : chunks) meter->feed(chunk);
  return meter->finish();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  static constexpr UsageDialect kDialects[] = {UsageDialect::kOpenAi, UsageDialect::kAnthropic,
                                               UsageDialect::kGemini, UsageDialect::kCohere};
  const UsageDialect dialect = kDialects[data[0] & 3];
  const bool event_stream = (data[0] >> 2) & 1;
  std::minstd_rand rng(data[1]);
  std::string_view body(reinterpret_cast<const char*>(data + 2), size - 2);

  const std::optional<TokenUsage> whole = run(dialect, event_stream, {body});
  if (whole) {
    constexpr int64_t kBound = 5 * UsageMeter::kMaxTokenCount;
    for (int64_t count :
         {whole->input_tokens, whole->cached_input_tokens, whole->cache_write_tokens,
          whole->output_tokens, whole->reasoning_tokens}) {
      FUZZ_CHECK(count >= 0 && count <= kBound);
    }
    FUZZ_CHECK(whole->cached_input_tokens + whole->cache_write_tokens <= whole->input_tokens);
    FUZZ_CHECK(whole->reasoning_tokens <= whole->output_tokens);
  }

  std::vector<std::string_view> pieces;
  for (size_t at = 0; at < body.size();) {
    size_t n = std::uniform_int_distribution<size_t>(0, 24)(rng);
    n = std::min(n, body.size() - at);
    pieces.push_back(body.substr(at, n));
    at += n;
  }
  FUZZ_CHECK(run(dialect, event_stream, pieces) == whole);
  return 0;
}
