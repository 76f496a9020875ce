// Incremental token metering of provider responses, per usage dialect.
//
// A UsageMeter is fed every chunk of one response body as it arrives, in any split, and at the end
// reports the tokens the provider said the request consumed. It keeps only usage numbers, never
// content: JSON is read with a SAX parser that stores nothing but the usage fields it meets, so
// memory stays small however large the body (event streams hold at most one event, see
// kMaxEventSize).
//
// What is read, by dialect (TokenUsage fields on the left; "a ?? b" = a, or b when a is absent):
//
//   OpenAI-compatible (openai, openrouter, mistral, groq, together, fireworks, perplexity,
//   deepseek, xai; and any provider's …/chat/completions, …/embeddings path)
//     objects: usage, response.usage (Responses API stream events), x_groq.usage (Groq streams)
//     input     = prompt_tokens ?? input_tokens
//     cached    = prompt_tokens_details.cached_tokens ?? input_tokens_details.cached_tokens
//                 ?? prompt_cache_hit_tokens (DeepSeek)
//     reasoning = completion_tokens_details.reasoning_tokens
//                 ?? output_tokens_details.reasoning_tokens ?? reasoning_tokens
//     output    = completion_tokens ?? output_tokens; plus a top-level reasoning_tokens (reported
//                 outside completion_tokens, as Perplexity does); at least total_tokens - input
//                 (xAI counts reasoning in total_tokens but not in completion_tokens)
//   Anthropic
//     objects: usage (Message, message_delta), message.usage (message_start)
//     input     = input_tokens + cache_read_input_tokens + cache_creation_input_tokens
//     cached    = cache_read_input_tokens;  cache_write = cache_creation_input_tokens
//     output    = output_tokens (includes thinking; Anthropic reports no separate count)
//   Gemini
//     objects: usageMetadata (of the response, of each streamed chunk, of each element of the
//              JSON array streamGenerateContent returns without alt=sse)
//     input     = promptTokenCount + toolUsePromptTokenCount;  cached = cachedContentTokenCount
//     reasoning = thoughtsTokenCount;  output = candidatesTokenCount + thoughtsTokenCount, at
//                 least totalTokenCount - input
//   Cohere
//     objects: usage (v2 response), delta.usage (v2 message-end event), meta (v1 response),
//              response.meta (v1 stream-end event)
//     input     = billed_units.input_tokens ?? tokens.input_tokens
//     output    = billed_units.output_tokens ?? tokens.output_tokens
//     `billed_units` is what Cohere invoices, so budgets and spend match the provider's bill;
//     `tokens` also counts tokens Cohere adds itself (its preamble, special tokens: 215 processed
//     for 17 billed in Cohere's own example) and is the fallback when billed_units is absent.
//
// Only those anchored places count: a "usage" key anywhere else (inside tool-call arguments the
// model wrote, say) is ignored, so a response cannot steer its own metering. Every usage object
// seen replaces the previous one (streams report cumulative counts), except for Anthropic, whose
// message_start and message_delta usages are merged field by field taking the larger value; an
// Anthropic stream counts only once its closing usage (message_delta) has arrived. A usage object
// counts only when the JSON document holding it parsed completely. Counts above kMaxTokenCount, or
// negative, make the whole response's usage unreliable (nullopt); a fraction rounds up. Finally
// cached + cache_write ≤ input and reasoning ≤ output are enforced by raising input / output.
//
// Body framing: with event_stream (Content-Type text/event-stream) each event's data is one JSON
// document; "[DONE]" and other non-JSON data are skipped. Otherwise the body is one JSON document
// or several (newline-delimited JSON, as Cohere v1 streams). A body announced as JSON whose first
// non-blank byte is neither '{' nor '[' is read as an event stream.
//
// Thread-safety: none; one meter per response.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string_view>

#include "provider/provider_table.h"
#include "provider/token_usage.h"

namespace till {

class UsageMeter {
 public:
  // Larger counts are treated as garbage: no request consumes a trillion tokens.
  static constexpr int64_t kMaxTokenCount = 1'000'000'000'000;
  // Events with more data than this are skipped (counted in dropped_events()).
  static constexpr size_t kMaxEventSize = size_t{16} << 20;

  virtual ~UsageMeter() = default;

  // Reads the next bytes of the body. Never fails: malformed input only means less usage found.
  virtual void feed(std::string_view chunk) = 0;

  // Ends the body and returns the usage it reported, or nullopt if it reported none (or none that
  // can be trusted); the caller then settles at the reservation. If the body was cut short (client
  // disconnect, upstream reset, timeout), a returned usage is what the provider had reported so
  // far — for OpenAI-compatible providers that stream cumulative counts, and for Gemini, a lower
  // bound — so settle such a request at no less than its reservation. Call once; feed() must not
  // be called afterwards.
  virtual std::optional<TokenUsage> finish() = 0;

  // Stream events skipped for exceeding kMaxEventSize.
  virtual uint64_t dropped_events() const = 0;
};

// A meter for one response of `dialect`. `event_stream`: the response's Content-Type is
// text/event-stream. Never returns null.
std::unique_ptr<UsageMeter> make_usage_meter(UsageDialect dialect, bool event_stream);

}  // namespace till
