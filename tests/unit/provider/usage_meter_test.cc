#include "provider/usage_meter.h"

#include <gtest/gtest.h>

#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <vector>

namespace till {

// Found by argument-dependent lookup, so failures print the counts.
static void PrintTo(const TokenUsage& u, std::ostream* os) {
  *os << "{in=" << u.input_tokens << " cached=" << u.cached_input_tokens
      << " cache_write=" << u.cache_write_tokens << " out=" << u.output_tokens
      << " reasoning=" << u.reasoning_tokens << "}";
}

namespace {

using enum UsageDialect;
using namespace std::string_view_literals;

TokenUsage usage(int64_t in, int64_t cached, int64_t cache_write, int64_t out, int64_t reasoning) {
  return TokenUsage{in, cached, cache_write, out, reasoning};
}

std::optional<TokenUsage> meter_chunks(UsageDialect dialect, bool event_stream,
                                       const std::vector<std::string_view>& chunks) {
  auto meter = make_usage_meter(dialect, event_stream);
  for (std::string_view chunk : chunks) meter->feed(chunk);
  return meter->finish();
}

std::optional<TokenUsage> meter(UsageDialect dialect, bool event_stream, std::string_view body) {
  return meter_chunks(dialect, event_stream, {body});
}

// The body fed whole, cut at every point, byte by byte and in random pieces always meters the
// same.
void expect_metered(UsageDialect dialect, bool event_stream, std::string_view body,
                    const std::optional<TokenUsage>& expected) {
  ASSERT_EQ(meter(dialect, event_stream, body), expected) << "whole";
  for (size_t i = 0; i <= body.size(); ++i) {
    ASSERT_EQ(meter_chunks(dialect, event_stream, {body.substr(0, i), body.substr(i)}), expected)
        << "split at " << i;
  }
  std::vector<std::string_view> bytes;
  for (size_t i = 0; i < body.size(); ++i) bytes.push_back(body.substr(i, 1));
  ASSERT_EQ(meter_chunks(dialect, event_stream, bytes), expected) << "byte by byte";
  std::mt19937 rng(7);
  for (int round = 0; round < 50; ++round) {
    std::vector<std::string_view> chunks;
    for (size_t at = 0; at < body.size();) {
      size_t n = std::uniform_int_distribution<size_t>(1, 40)(rng);
      chunks.push_back(body.substr(at, n));
      at += n;
    }
    ASSERT_EQ(meter_chunks(dialect, event_stream, chunks), expected) << "random round " << round;
  }
}

// ---- OpenAI-compatible ------------------------------------------------------------------------
// Shapes from the OpenAI API reference (chat completion object, chunk object with
// stream_options.include_usage, Responses object and streaming events, embeddings).

constexpr std::string_view kOpenAiChat = R"({
  "id": "chatcmpl-B9MHDbslfkBeAs8l4bebGdFOJ6PeG",
  "object": "chat.completion",
  "created": 1741570283,
  "model": "o3-mini-2025-01-31",
  "choices": [{"index": 0, "message": {"role": "assistant", "content": "The image shows a wooden boardwalk \u00e9 \ud83d\ude00", "refusal": null, "annotations": []}, "logprobs": null, "finish_reason": "stop"}],
  "usage": {
    "prompt_tokens": 1486, "completion_tokens": 651, "total_tokens": 2137,
    "prompt_tokens_details": {"cached_tokens": 1408, "audio_tokens": 0},
    "completion_tokens_details": {"reasoning_tokens": 512, "audio_tokens": 0, "accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0}
  },
  "service_tier": "default",
  "system_fingerprint": "fp_fc9f1d7035"
})";

TEST(UsageMeter, OpenAiChatJson) {
  expect_metered(kOpenAi, false, kOpenAiChat, usage(1486, 1408, 0, 651, 512));
}

constexpr std::string_view kOpenAiChatStream =
    "data: {\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":"
    "\"gpt-4o-mini\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"},"
    "\"finish_reason\":null}],\"usage\":null}\n\n"
    "data: {\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":"
    "\"gpt-4o-mini\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hello\"},"
    "\"finish_reason\":null}],\"usage\":null}\n\n"
    "data: {\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":"
    "\"gpt-4o-mini\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}],"
    "\"usage\":null}\n\n"
    "data: {\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":"
    "\"gpt-4o-mini\",\"choices\":[],\"usage\":{\"prompt_tokens\":19,\"completion_tokens\":10,"
    "\"total_tokens\":29,\"prompt_tokens_details\":{\"cached_tokens\":0,\"audio_tokens\":0},"
    "\"completion_tokens_details\":{\"reasoning_tokens\":0,\"audio_tokens\":0,"
    "\"accepted_prediction_tokens\":0,\"rejected_prediction_tokens\":0}}}\n\n"
    "data: [DONE]\n\n";

TEST(UsageMeter, OpenAiChatStreamWithIncludeUsage) {
  expect_metered(kOpenAi, true, kOpenAiChatStream, usage(19, 0, 0, 10, 0));
}

TEST(UsageMeter, OpenAiChatStreamWithoutUsageIsNullopt) {
  std::string stream(kOpenAiChatStream);
  stream.erase(
      stream.find("data: {\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\","
                  "\"created\":1,\"model\":\"gpt-4o-mini\",\"choices\":[],"));
  stream += "data: [DONE]\n\n";
  expect_metered(kOpenAi, true, stream, std::nullopt);
}

constexpr std::string_view kOpenAiResponses = R"({
  "id": "resp_67ccd3a9da748190baa7f1570fe91ac604becb25c45c1d41",
  "object": "response", "created_at": 1741476777, "status": "completed",
  "error": null, "incomplete_details": null, "max_output_tokens": null, "model": "o4-mini-2025-04-16",
  "output": [{"type": "reasoning", "id": "rs_1", "summary": []},
             {"type": "message", "id": "msg_1", "status": "completed", "role": "assistant",
              "content": [{"type": "output_text", "text": "usage: {\"input_tokens\": 0}", "annotations": []}]}],
  "usage": {"input_tokens": 328, "input_tokens_details": {"cached_tokens": 128},
            "output_tokens": 1152, "output_tokens_details": {"reasoning_tokens": 1024},
            "total_tokens": 1480}
})";

TEST(UsageMeter, OpenAiResponsesJson) {
  expect_metered(kOpenAi, false, kOpenAiResponses, usage(328, 128, 0, 1152, 1024));
}

constexpr std::string_view kOpenAiResponsesStream =
    "event: response.created\n"
    "data: {\"type\":\"response.created\",\"sequence_number\":0,\"response\":{\"id\":\"resp_1\","
    "\"object\":\"response\",\"status\":\"in_progress\",\"output\":[],\"usage\":null}}\n\n"
    "event: response.output_text.delta\n"
    "data: {\"type\":\"response.output_text.delta\",\"sequence_number\":4,\"item_id\":\"msg_1\","
    "\"output_index\":0,\"content_index\":0,\"delta\":\"Hi\"}\n\n"
    "event: response.completed\n"
    "data: {\"type\":\"response.completed\",\"sequence_number\":9,\"response\":{\"id\":\"resp_1\","
    "\"object\":\"response\",\"status\":\"completed\",\"output\":[{\"type\":\"message\","
    "\"content\":[{\"type\":\"output_text\",\"text\":\"Hi\"}]}],\"usage\":{\"input_tokens\":37,"
    "\"input_tokens_details\":{\"cached_tokens\":0},\"output_tokens\":11,"
    "\"output_tokens_details\":{\"reasoning_tokens\":0},\"total_tokens\":48}}}\n\n";

TEST(UsageMeter, OpenAiResponsesStream) {
  expect_metered(kOpenAi, true, kOpenAiResponsesStream, usage(37, 0, 0, 11, 0));
}

TEST(UsageMeter, OpenAiEmbeddings) {
  expect_metered(kOpenAi, false,
                 R"({"object":"list","data":[{"object":"embedding","index":0,"embedding":)"
                 R"([0.0023064255,-0.009327292,-0.0028842222]}],"model":"text-embedding-3-small",)"
                 R"("usage":{"prompt_tokens":8,"total_tokens":8}})",
                 usage(8, 0, 0, 0, 0));
}

TEST(UsageMeter, XaiStreamsCumulativeUsageWithReasoningOutsideCompletionTokens) {
  // xAI puts usage on every chunk; reasoning_tokens is counted in total_tokens but not in
  // completion_tokens (docs.x.ai, "Reasoning").
  constexpr std::string_view stream =
      "data: {\"id\":\"x\",\"object\":\"chat.completion.chunk\",\"model\":\"grok-3-mini\","
      "\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Coca\",\"role\":\"assistant\"}}],"
      "\"usage\":{\"prompt_tokens\":38,\"completion_tokens\":1,\"total_tokens\":339,"
      "\"prompt_tokens_details\":{\"text_tokens\":38,\"audio_tokens\":0,\"image_tokens\":0,"
      "\"cached_tokens\":6},\"completion_tokens_details\":{\"reasoning_tokens\":300}}}\n\n"
      "data: {\"id\":\"x\",\"object\":\"chat.completion.chunk\",\"model\":\"grok-3-mini\","
      "\"choices\":[{\"index\":0,\"delta\":{\"content\":\"-Cola\"},\"finish_reason\":\"stop\"}],"
      "\"usage\":{\"prompt_tokens\":38,\"completion_tokens\":2,\"total_tokens\":340,"
      "\"prompt_tokens_details\":{\"text_tokens\":38,\"audio_tokens\":0,\"image_tokens\":0,"
      "\"cached_tokens\":6},\"completion_tokens_details\":{\"reasoning_tokens\":300}}}\n\n"
      "data: [DONE]\n\n";
  expect_metered(kOpenAi, true, stream, usage(38, 6, 0, 302, 300));
}

TEST(UsageMeter, GeminiOpenAiEndpointLeavesThinkingOutOfCompletionTokens) {
  // Reported on discuss.ai.google.dev: completion_tokens excludes the thinking tokens that
  // total_tokens counts.
  expect_metered(kOpenAi, false,
                 R"({"id":"x","object":"chat.completion","model":"gemini-2.5-pro","choices":[],)"
                 R"("usage":{"completion_tokens":102,"prompt_tokens":758,"total_tokens":1725}})",
                 usage(758, 0, 0, 967, 0));
}

TEST(UsageMeter, GroqStreamUsageInXGroq) {
  constexpr std::string_view stream =
      "data: {\"id\":\"chatcmpl-e7f8\",\"object\":\"chat.completion.chunk\",\"created\":1729171479,"
      "\"model\":\"gemma2-9b-it\",\"system_fingerprint\":\"fp_10c08bf97d\",\"choices\":[{\"index\":"
      "0,"
      "\"delta\":{\"content\":\"hi\"},\"logprobs\":null,\"finish_reason\":null}],"
      "\"x_groq\":{\"id\":\"req_01jadadp0femyae9kav1gpkhe8\"}}\n\n"
      "data: {\"id\":\"chatcmpl-e7f8\",\"object\":\"chat.completion.chunk\",\"created\":1729171479,"
      "\"model\":\"gemma2-9b-it\",\"system_fingerprint\":\"fp_10c08bf97d\",\"choices\":[{\"index\":"
      "0,"
      "\"delta\":{},\"logprobs\":null,\"finish_reason\":\"stop\"}],\"x_groq\":{\"id\":"
      "\"req_01jadadp0femyae9kav1gpkhe8\",\"usage\":{\"queue_time\":0.061348671,\"prompt_tokens\":"
      "18,"
      "\"prompt_time\":0.000211569,\"completion_tokens\":439,\"completion_time\":0.798181818,"
      "\"total_tokens\":457,\"total_time\":0.798393387}}}\n\n"
      "data: [DONE]\n\n";
  expect_metered(kOpenAi, true, stream, usage(18, 0, 0, 439, 0));
}

TEST(UsageMeter, DeepSeekCacheHitTokens) {
  expect_metered(kOpenAi, false,
                 R"({"id":"d","object":"chat.completion","model":"deepseek-reasoner","choices":[],)"
                 R"("usage":{"prompt_tokens":100,"completion_tokens":20,"total_tokens":120,)"
                 R"("prompt_cache_hit_tokens":64,"prompt_cache_miss_tokens":36,)"
                 R"("completion_tokens_details":{"reasoning_tokens":5}}})",
                 usage(100, 64, 0, 20, 5));
}

TEST(UsageMeter, PerplexityReasoningTokensOutsideCompletion) {
  expect_metered(kOpenAi, false,
                 R"({"id":"p","model":"sonar-deep-research","choices":[],"usage":{)"
                 R"("prompt_tokens":10,"completion_tokens":100,"total_tokens":110,)"
                 R"("citation_tokens":50,"num_search_queries":2,"reasoning_tokens":300}})",
                 usage(10, 0, 0, 400, 300));
}

// ---- Anthropic --------------------------------------------------------------------------------
// Shapes from the Messages API reference and the streaming guide.

constexpr std::string_view kAnthropicMessage = R"({
  "id": "msg_013Zva2CMHLNnXjNJJKqJ2EF", "type": "message", "role": "assistant",
  "model": "claude-sonnet-4-20250514",
  "content": [{"type": "text", "text": "Hi! My name is Claude."},
              {"type": "tool_use", "id": "toolu_01", "name": "record",
               "input": {"usage": {"input_tokens": 0, "output_tokens": 0}, "message": {"usage": {}}}}],
  "stop_reason": "end_turn", "stop_sequence": null,
  "usage": {"input_tokens": 2095, "cache_creation_input_tokens": 2051, "cache_read_input_tokens": 10,
            "cache_creation": {"ephemeral_5m_input_tokens": 2051, "ephemeral_1h_input_tokens": 0},
            "output_tokens": 503, "service_tier": "standard"}
})";

TEST(UsageMeter, AnthropicMessageJson) {
  // input excludes the cache tokens at Anthropic; ours includes them.
  expect_metered(kAnthropic, false, kAnthropicMessage, usage(2095 + 10 + 2051, 10, 2051, 503, 0));
}

constexpr std::string_view kAnthropicStream =
    "event: message_start\n"
    "data: "
    "{\"type\":\"message_start\",\"message\":{\"id\":\"msg_1nZdL29xx5MUA1yADyHTEsnR8uuvGzszyY\","
    "\"type\":\"message\",\"role\":\"assistant\",\"content\":[],\"model\":\"claude-sonnet-4-"
    "20250514\","
    "\"stop_reason\":null,\"stop_sequence\":null,\"usage\":{\"input_tokens\":25,"
    "\"cache_creation_input_tokens\":3,\"cache_read_input_tokens\":7,\"output_tokens\":1}}}\n\n"
    "event: content_block_start\n"
    "data: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\","
    "\"text\":\"\"}}\n\n"
    "event: ping\n"
    "data: {\"type\": \"ping\"}\n\n"
    "event: content_block_delta\n"
    "data: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\","
    "\"text\":\"Hello\"}}\n\n"
    "event: content_block_stop\n"
    "data: {\"type\":\"content_block_stop\",\"index\":0}\n\n"
    "event: message_delta\n"
    "data: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\","
    "\"stop_sequence\":null},\"usage\":{\"output_tokens\":15}}\n\n"
    "event: message_stop\n"
    "data: {\"type\":\"message_stop\"}\n\n";

TEST(UsageMeter, AnthropicStream) {
  expect_metered(kAnthropic, true, kAnthropicStream, usage(25 + 7 + 3, 7, 3, 15, 0));
}

TEST(UsageMeter, AnthropicStreamWithCumulativeInputInMessageDelta) {
  // Newer API versions repeat (and may raise, after server tool use) the input counts.
  std::string stream(kAnthropicStream);
  std::string from = "\"usage\":{\"output_tokens\":15}";
  stream.replace(stream.find(from), from.size(),
                 "\"usage\":{\"input_tokens\":40,\"cache_creation_input_tokens\":3,"
                 "\"cache_read_input_tokens\":7,\"output_tokens\":15,"
                 "\"server_tool_use\":{\"web_search_requests\":1}}");
  expect_metered(kAnthropic, true, stream, usage(40 + 7 + 3, 7, 3, 15, 0));
}

TEST(UsageMeter, AnthropicStreamCutBeforeMessageDeltaIsNullopt) {
  std::string stream(kAnthropicStream);
  stream.erase(stream.find("event: message_delta"));
  expect_metered(kAnthropic, true, stream, std::nullopt);
}

// ---- Gemini -----------------------------------------------------------------------------------
// Shapes from the Gemini API reference (GenerateContentResponse, UsageMetadata).

constexpr std::string_view kGeminiResponse = R"({
  "candidates": [{"content": {"parts": [{"text": "Hello"}, {"functionCall": {"name": "f",
                  "args": {"usageMetadata": {"promptTokenCount": 0}}}}], "role": "model"},
                  "finishReason": "STOP", "index": 0}],
  "usageMetadata": {"promptTokenCount": 1200, "candidatesTokenCount": 300, "totalTokenCount": 2000,
                    "cachedContentTokenCount": 1000, "thoughtsTokenCount": 450,
                    "toolUsePromptTokenCount": 50,
                    "promptTokensDetails": [{"modality": "TEXT", "tokenCount": 1200}],
                    "cacheTokensDetails": [{"modality": "TEXT", "tokenCount": 1000}]},
  "modelVersion": "gemini-2.5-flash", "responseId": "mAitaLmkHPPlz7IPvtfUqQ4"
})";

TEST(UsageMeter, GeminiJson) {
  expect_metered(kGemini, false, kGeminiResponse, usage(1250, 1000, 0, 750, 450));
}

constexpr std::string_view kGeminiSse =
    "data: {\"candidates\": [{\"content\": {\"parts\": [{\"text\": \"The\"}],\"role\": \"model\"},"
    "\"index\": 0}],\"usageMetadata\": {\"promptTokenCount\": 8,\"totalTokenCount\": 8},"
    "\"modelVersion\": \"gemini-2.0-flash\"}\r\n\r\n"
    "data: {\"candidates\": [{\"content\": {\"parts\": [{\"text\": \" end\"}],\"role\": \"model\"},"
    "\"finishReason\": \"STOP\",\"index\": 0}],\"usageMetadata\": {\"promptTokenCount\": 8,"
    "\"candidatesTokenCount\": 12,\"totalTokenCount\": 20,\"promptTokensDetails\": "
    "[{\"modality\": \"TEXT\",\"tokenCount\": 8}]},\"modelVersion\": \"gemini-2.0-flash\"}\r\n\r\n";

TEST(UsageMeter, GeminiSseLastChunkWins) {
  expect_metered(kGemini, true, kGeminiSse, usage(8, 0, 0, 12, 0));
}

TEST(UsageMeter, GeminiJsonArrayStream) {
  // streamGenerateContent without alt=sse: one JSON array of chunks.
  constexpr std::string_view body =
      "[{\"candidates\": [{\"content\": {\"parts\": [{\"text\": \"The\"}],\"role\": \"model\"}}],"
      "\"usageMetadata\": {\"promptTokenCount\": 8,\"totalTokenCount\": 8}}\r\n,\r\n"
      "{\"candidates\": [{\"content\": {\"parts\": [{\"text\": \" end\"}],\"role\": \"model\"},"
      "\"finishReason\": \"STOP\"}],\"usageMetadata\": {\"promptTokenCount\": 8,"
      "\"candidatesTokenCount\": 12,\"totalTokenCount\": 20,\"thoughtsTokenCount\": 4}}\r\n]";
  expect_metered(kGemini, false, body, usage(8, 0, 0, 16, 4));
}

// ---- Cohere -----------------------------------------------------------------------------------
// Shapes from the Cohere v2 Chat API reference and streaming guide, and the v1 Chat API.

TEST(UsageMeter, CohereV2JsonPrefersBilledUnitsOverTokens) {
  expect_metered(kCohere, false,
                 R"({"id":"5a50480a-cf52-46f0-af01-53d18539bd31","message":{"role":"assistant",)"
                 R"("content":[{"type":"text","text":"The Art of API Design"}]},)"
                 R"("finish_reason":"COMPLETE","usage":{"billed_units":{"input_tokens":17,)"
                 R"("output_tokens":12},"tokens":{"input_tokens":215,"output_tokens":12}}})",
                 usage(17, 0, 0, 12, 0));
}

TEST(UsageMeter, CohereFallsBackToTokens) {
  expect_metered(kCohere, false,
                 R"({"id":"x","finish_reason":"COMPLETE","usage":{"tokens":)"
                 R"({"input_tokens":215,"output_tokens":12}}})",
                 usage(215, 0, 0, 12, 0));
}

TEST(UsageMeter, CohereV2Stream) {
  constexpr std::string_view stream =
      "event: message-start\n"
      "data: {\"id\":\"a8fc192e\",\"type\":\"message-start\",\"delta\":{\"message\":{\"role\":"
      "\"assistant\",\"content\":[],\"tool_plan\":\"\",\"tool_calls\":[],\"citations\":[]}}}\n\n"
      "event: content-delta\n"
      "data: {\"type\":\"content-delta\",\"index\":0,\"delta\":{\"message\":{\"content\":{\"text\":"
      "\"Coca\"}}}}\n\n"
      "event: message-end\n"
      "data: {\"type\":\"message-end\",\"delta\":{\"finish_reason\":\"COMPLETE\",\"usage\":"
      "{\"billed_units\":{\"input_tokens\":21,\"output_tokens\":105},\"tokens\":{\"input_tokens\":"
      "186,\"output_tokens\":105}}}}\n\n";
  expect_metered(kCohere, true, stream, usage(21, 0, 0, 105, 0));
}

TEST(UsageMeter, CohereV1JsonAndNewlineDelimitedStream) {
  expect_metered(kCohere, false,
                 R"({"response_id":"r","text":"Hi","generation_id":"g","finish_reason":"COMPLETE",)"
                 R"("meta":{"api_version":{"version":"1"},"billed_units":{"input_tokens":17,)"
                 R"("output_tokens":12},"tokens":{"input_tokens":215,"output_tokens":12}}})",
                 usage(17, 0, 0, 12, 0));
  constexpr std::string_view ndjson =
      "{\"is_finished\":false,\"event_type\":\"stream-start\",\"generation_id\":\"g\"}\n"
      "{\"is_finished\":false,\"event_type\":\"text-generation\",\"text\":\"Hi\"}\n"
      "{\"is_finished\":true,\"event_type\":\"stream-end\",\"response\":{\"response_id\":\"r\","
      "\"text\":\"Hi\",\"meta\":{\"billed_units\":{\"input_tokens\":5,\"output_tokens\":2},"
      "\"tokens\":{\"input_tokens\":70,\"output_tokens\":2}}},\"finish_reason\":\"COMPLETE\"}\n";
  expect_metered(kCohere, false, ndjson, usage(5, 0, 0, 2, 0));
}

// ---- Robustness -------------------------------------------------------------------------------

TEST(UsageMeter, NoUsageIsNullopt) {
  expect_metered(kOpenAi, false, R"({"id":"x","choices":[]})", std::nullopt);
  expect_metered(kOpenAi, false, R"({"usage":null})", std::nullopt);
  expect_metered(kOpenAi, false, R"({"usage":{}})", std::nullopt);
  expect_metered(kOpenAi, false, "", std::nullopt);
  expect_metered(kAnthropic, false, R"({"type":"error","error":{"type":"overloaded_error"}})",
                 std::nullopt);
  expect_metered(kGemini, true, "data: {\"candidates\":[]}\n\n", std::nullopt);
}

TEST(UsageMeter, OnlyAnchoredUsageObjectsCount) {
  // Model-written JSON (tool arguments, nested objects) cannot steer the meter.
  expect_metered(kOpenAi, false,
                 R"({"choices":[{"message":{"tool_calls":[{"function":{"arguments":{"usage":)"
                 R"({"prompt_tokens":1}}}}]}}],"data":{"usage":{"prompt_tokens":2}},)"
                 R"("usage":{"prompt_tokens":5,"completion_tokens":6},)"
                 R"("extra":{"usage":{"prompt_tokens":1,"completion_tokens":1}}})",
                 usage(5, 0, 0, 6, 0));
  expect_metered(kGemini, false, R"({"candidates":[{"usageMetadata":{"promptTokenCount":1}}]})",
                 std::nullopt);
}

TEST(UsageMeter, UnreliableCountsGiveNullopt) {
  expect_metered(kOpenAi, false, R"({"usage":{"prompt_tokens":-1,"completion_tokens":5}})",
                 std::nullopt);
  expect_metered(kOpenAi, false, R"({"usage":{"prompt_tokens":1e13,"completion_tokens":5}})",
                 std::nullopt);
  expect_metered(kOpenAi, false,
                 R"({"usage":{"prompt_tokens":18446744073709551615,"completion_tokens":5}})",
                 std::nullopt);
  // A garbage count in an earlier stream event taints the response.
  expect_metered(kOpenAi, true,
                 "data: {\"usage\":{\"prompt_tokens\":-5}}\n\n"
                 "data: {\"usage\":{\"prompt_tokens\":5,\"completion_tokens\":1}}\n\n",
                 std::nullopt);
  // Non-numbers are simply not counts.
  expect_metered(kOpenAi, false, R"({"usage":{"prompt_tokens":"12","completion_tokens":5}})",
                 usage(0, 0, 0, 5, 0));
  // A fraction rounds up.
  expect_metered(kCohere, false, R"({"usage":{"tokens":{"input_tokens":2.0,"output_tokens":1.5}}})",
                 usage(2, 0, 0, 2, 0));
}

TEST(UsageMeter, KeepsTheInvariantsOfTokenUsage) {
  // cached <= input and reasoning <= output, whatever the provider claims.
  expect_metered(kOpenAi, false,
                 R"({"usage":{"prompt_tokens":5,"completion_tokens":2,)"
                 R"("prompt_tokens_details":{"cached_tokens":9},)"
                 R"("completion_tokens_details":{"reasoning_tokens":7}}})",
                 usage(9, 9, 0, 7, 7));
}

TEST(UsageMeter, TruncatedOrGarbageBodiesNeverCrash) {
  std::string body(kOpenAiChat);
  for (size_t cut = 0; cut < body.size(); ++cut) {
    auto metered = meter(kOpenAi, false, std::string_view(body).substr(0, cut));
    EXPECT_FALSE(metered.has_value()) << "cut at " << cut;
  }
  for (UsageDialect d : {kOpenAi, kAnthropic, kGemini, kCohere}) {
    for (bool es : {false, true}) {
      EXPECT_FALSE(meter(d, es, "\x00\xff{{[[\"\\u12"sv).has_value());
      EXPECT_FALSE(meter(d, es, std::string(100000, '[')).has_value());
      EXPECT_FALSE(meter(d, es, std::string(100000, '{')).has_value());
      EXPECT_FALSE(meter(d, es, "data: " + std::string(100000, '[') + "\n\n").has_value());
    }
  }
}

TEST(UsageMeter, JsonFollowedByGarbageKeepsEarlierDocuments) {
  expect_metered(kCohere, false,
                 "{\"meta\":{\"tokens\":{\"input_tokens\":3,\"output_tokens\":4}}}\n{garbage",
                 usage(3, 0, 0, 4, 0));
}

TEST(UsageMeter, SniffsAnEventStreamSentAsJson) {
  // Some gateways label a stream application/json.
  expect_metered(kOpenAi, false, kOpenAiChatStream, usage(19, 0, 0, 10, 0));
}

TEST(UsageMeter, SkipsOversizedEvents) {
  auto meter = make_usage_meter(kOpenAi, true);
  meter->feed("data: {\"usage\":{\"prompt_tokens\":1,\"completion_tokens\":2}}\n\n");
  meter->feed("data: {\"x\":\"");
  const std::string megabyte(1 << 20, 'a');
  for (size_t i = 0; i < (UsageMeter::kMaxEventSize >> 20) + 1; ++i) meter->feed(megabyte);
  meter->feed("\",\"usage\":{\"prompt_tokens\":1000}}\n\n");
  EXPECT_EQ(meter->dropped_events(), 1u);
  EXPECT_EQ(meter->finish(), usage(1, 0, 0, 2, 0));
}

TEST(UsageMeter, LargeJsonBodiesAreReadWithoutLimit) {
  // Nothing is accumulated in JSON mode, so a body far larger than any event still meters.
  auto meter = make_usage_meter(kAnthropic, false);
  meter->feed(R"({"content":[{"type":"text","text":")");
  const std::string megabyte(1 << 20, 'a');
  for (int i = 0; i < 20; ++i) meter->feed(megabyte);
  meter->feed(R"("}],"usage":{"input_tokens":1,"output_tokens":2}})");
  EXPECT_EQ(meter->finish(), usage(1, 0, 0, 2, 0));
}

}  // namespace
}  // namespace till
