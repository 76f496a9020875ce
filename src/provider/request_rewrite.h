// What a proxied request asks for, and the only edits till makes to a request body (DESIGN.md,
// "The budget invariant"): capping its output, and asking an OpenAI-compatible stream to report
// usage.
//
// inspect_request reads the body once, with a validating scanner that allocates nothing and keeps
// byte offsets; the edits (InspectedRequest, or the pure rewrite_request underneath) then splice
// into the original text at those offsets. Nothing is re-serialized: every byte the edits do not
// touch — number spellings such as 1e400 or 12345678901234567890, escapes, key order, whitespace —
// reaches the provider exactly as the client sent it.
//
// Security: the fields till reads are the ones a provider acts on, so a client must not be able to
// show till one value and the provider another. Keys are compared after unescaping ("m\u006fdel"
// is "model"), a field named twice is refused rather than guessing which copy the provider's
// parser keeps, and Gemini's proto-JSON aliases (generation_config / generationConfig,
// max_output_tokens / maxOutputTokens, candidate_count / candidateCount) count as one field.
//
// Thread-safety: the functions are pure and may be called concurrently; an InspectedRequest is
// used by one thread at a time.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "provider/provider_table.h"
#include "till/error.h"

namespace till {

// The endpoint a request calls, from its path (and, for Gemini, its method suffix).
enum class RequestApi {
  kUnknown,               // an endpoint till does not model: it cannot bound the output
  kChatCompletions,       // …/chat/completions of any provider (OpenAI-compatible)
  kCompletions,           // …/completions: legacy text completions, Mistral FIM
  kResponses,             // OpenAI-compatible …/responses
  kEmbeddings,            // …/embeddings (OpenAI-compatible)
  kAnthropicMessages,     // /v1/messages
  kAnthropicCountTokens,  // /v1/messages/count_tokens
  kAnthropicComplete,     // legacy /v1/complete
  kGeminiGenerate,        // models/{model}:generateContent, :streamGenerateContent
  kGeminiCountTokens,     // models/{model}:countTokens
  kGeminiEmbed,           // models/{model}:embedContent, :batchEmbedContents
  kCohereChat,            // /v1/chat, /v2/chat
  kCohereGenerate,        // legacy /v1/generate
  kCohereNoOutput,        // /v{1,2}/embed, /rerank, /classify, /tokenize, /detokenize
};

// True if responses of `api` are generated tokens that an output cap bounds.
bool produces_output(RequestApi api);

// The field an OpenAI-compatible chat request gets for its output cap when it names none.
enum class ChatCapField {
  kMaxCompletionTokens,  // OpenAI: the only one its reasoning models (o-series, gpt-5) accept
  kMaxTokens,            // providers that do not know max_completion_tokens (Mistral, DeepSeek…)
};

// kMaxCompletionTokens for "openai", kMaxTokens for every other provider.
ChatCapField chat_cap_field_for(std::string_view provider_name);

// A byte range [begin, end) of a request body.
struct BodySpan {
  size_t begin = 0;
  size_t end = 0;
  bool present() const { return end > begin; }
};

// Where rewrite_request puts its edits. Filled by inspect_request; callers need not look inside.
struct EditAnchors {
  bool valid = false;       // the body was read (edits need it)
  size_t root_insert = 0;   // just after the root object's last member (or its '{')
  bool root_empty = true;   // the root object has no members
  BodySpan caps[2];         // values of the output-cap fields the request names
  BodySpan stream_options;  // its value (an object or null)
  size_t stream_options_insert = 0;
  bool stream_options_empty = true;
  BodySpan include_usage;      // stream_options.include_usage's value
  BodySpan generation_config;  // Gemini generationConfig's value (an object or null)
  size_t generation_config_insert = 0;
  bool generation_config_empty = true;
};

struct RequestFacts {
  UsageDialect dialect = UsageDialect::kOpenAi;  // what the request and its response speak:
                                                 // kOpenAi for any provider's …/chat/completions
  RequestApi api = RequestApi::kUnknown;
  std::string model;       // "" if the request names none; Gemini: "gemini-2.0-flash" (without
                           // "models/"), "tunedModels/x"
  bool streaming = false;  // body "stream": true; Gemini: the streamGenerateContent method
  // The output cap the request sets (the larger, if it sets two), or nullopt if none. For reasoning
  // models it also bounds the reasoning (OpenAI max_completion_tokens and max_output_tokens,
  // Gemini maxOutputTokens, Anthropic max_tokens include it). Clamped to INT64_MAX.
  std::optional<int64_t> max_output_tokens;
  // Generations per request (n, best_of, candidateCount, num_generations): the output may reach
  // choices × max_output_tokens.
  int64_t choices = 1;
  // The request pulls in input its body does not carry (Responses previous_response_id,
  // conversation or prompt; Gemini cachedContent): its input tokens are not bounded by body_bytes.
  bool stored_context = false;
  size_t body_bytes = 0;
  EditAnchors anchors;
};

class InspectedRequest;

// Reads the facts of one request. `path` is the upstream path, with or without a query string
// ("/v1/chat/completions", "/v1beta/models/gemini-2.0-flash:streamGenerateContent?alt=sse").
// The body of a GET or HEAD request, or an empty body, is not read. The body of an endpoint till
// models must be a JSON object; the body of an endpoint it does not model (RequestApi::kUnknown)
// is read only if it looks like JSON, so multipart uploads pass through with no facts.
// REQUIRES: `body` outlives the returned object's edits (it is borrowed, not copied).
// Errors (all kInvalidRequest, field set to the offending key): a body that should be JSON but is
// not valid JSON ("request body is not valid JSON") or not a JSON object; a field till reads that
// is named twice; "model" that is not a string; "stream" that is not a boolean or null; an output
// cap that is not a non-negative integer or null; a generation count that is not a positive
// integer or null; stream_options or generationConfig that is not an object or null; a malformed
// Gemini model name in the path.
Result<InspectedRequest> inspect_request(UsageDialect dialect, std::string_view path,
                                         std::string_view method, std::string_view body);

struct RequestEdits {
  // Set the request's output cap to this (REQUIRES: >= 0). Every cap field the request names is
  // overwritten; if it names none, the API's field is added (chat: chat_cap_field).
  std::optional<int64_t> max_output_tokens;
  ChatCapField chat_cap_field = ChatCapField::kMaxCompletionTokens;
  // Chat and legacy completions only (a no-op for other APIs): set stream_options.include_usage to
  // true, keeping the other stream_options. Only for providers that accept stream_options.
  bool include_stream_usage = false;
};

// The body with `edits` applied.
// REQUIRES: `body` is the text `facts` were inspected from.
// Errors: kInternal if max_output_tokens is set for an API that produces no output or that till
// does not model (check produces_output(facts.api) first), if edits are asked of a body that was
// not read (GET, empty), or on a REQUIRES violation that can be detected (a body of another
// length).
Result<std::string> rewrite_request(const RequestFacts& facts, std::string_view body,
                                    const RequestEdits& edits);

// A request read by inspect_request, with the edits till may make to it. Edits accumulate and are
// spliced into the original body in one pass each time; the original is never modified.
class InspectedRequest {
 public:
  // What the request asks for. After set_max_output_tokens, max_output_tokens is the new cap.
  const RequestFacts& facts() const { return facts_; }

  // Sets the output cap to n (REQUIRES: n >= 0): every cap field the request names is overwritten,
  // or the API's field is added (chat: `chat_cap_field`; pass chat_cap_field_for(provider), since
  // providers other than OpenAI may ignore max_completion_tokens). Returns false, changing nothing,
  // if the request has no cap to set (!produces_output(facts().api), or no body).
  bool set_max_output_tokens(int64_t n,
                             ChatCapField chat_cap_field = ChatCapField::kMaxCompletionTokens);

  // Chat and legacy completions: sets stream_options.include_usage to true, keeping the other
  // stream_options. Returns false, changing nothing, for other APIs.
  bool ensure_stream_usage();

  // True if the edits changed the body.
  bool modified() const { return modified_; }

  // The edited body; empty unless modified().
  const std::string& body() const { return body_; }

 private:
  friend Result<InspectedRequest> inspect_request(UsageDialect, std::string_view, std::string_view,
                                                  std::string_view);
  bool apply(const RequestEdits& edits);

  RequestFacts facts_;
  std::string_view original_;
  RequestEdits edits_;
  std::string body_;
  bool modified_ = false;
};

// inspect_request (as a POST) + set_max_output_tokens; the edited body (or the body unchanged).
Result<std::string> set_max_output_tokens(
    UsageDialect dialect, std::string_view path, std::string_view body, int64_t n,
    ChatCapField chat_cap_field = ChatCapField::kMaxCompletionTokens);

// inspect_request of an OpenAI chat completions POST + ensure_stream_usage.
Result<std::string> ensure_stream_usage(std::string_view body);

}  // namespace till
