#include "provider/request_rewrite.h"

#include <gtest/gtest.h>

#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>
#include <limits>
#include <string>
#include <string_view>

#include "provider/json_scanner.h"

namespace till {
namespace {

using enum UsageDialect;

constexpr std::string_view kChatPath = "/v1/chat/completions";

RequestFacts inspect_ok(UsageDialect dialect, std::string_view path, std::string_view body) {
  auto inspected = inspect_request(dialect, path, "POST", body);
  EXPECT_TRUE(inspected) << inspected.error().message;
  return inspected ? inspected->facts() : RequestFacts{};
}

Error inspect_error(UsageDialect dialect, std::string_view path, std::string_view body) {
  auto inspected = inspect_request(dialect, path, "POST", body);
  EXPECT_FALSE(inspected) << "accepted: " << body;
  return inspected ? Error{} : inspected.error();
}

std::string rewrite_ok(UsageDialect dialect, std::string_view path, std::string_view body,
                       const RequestEdits& edits) {
  RequestFacts facts = inspect_ok(dialect, path, body);
  auto out = rewrite_request(facts, body, edits);
  EXPECT_TRUE(out) << out.error().message;
  if (!out) return {};
  EXPECT_TRUE(is_valid_json(*out)) << *out;
  return *out;
}

// ---- Inspection -------------------------------------------------------------------------------

TEST(RequestInspect, OpenAiChat) {
  const std::string_view body =
      R"({"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}],"stream":true,)"
      R"("max_tokens":256,"n":3,"stream_options":{"include_usage":false}})";
  RequestFacts f = inspect_ok(kOpenAi, kChatPath, body);
  EXPECT_EQ(f.dialect, kOpenAi);
  EXPECT_EQ(f.api, RequestApi::kChatCompletions);
  EXPECT_EQ(f.model, "gpt-4o-mini");
  EXPECT_TRUE(f.streaming);
  EXPECT_EQ(f.max_output_tokens, 256);
  EXPECT_EQ(f.choices, 3);
  EXPECT_FALSE(f.stored_context);
  EXPECT_EQ(f.body_bytes, body.size());
}

TEST(RequestInspect, OpenAiChatTakesTheLargerOfTwoCaps) {
  RequestFacts f = inspect_ok(kOpenAi, kChatPath,
                              R"({"model":"o3","max_tokens":10,"max_completion_tokens":4000})");
  EXPECT_EQ(f.max_output_tokens, 4000);
  f = inspect_ok(kOpenAi, kChatPath, R"({"model":"o3","max_tokens":null,"stream":null})");
  EXPECT_EQ(f.max_output_tokens, std::nullopt);
  EXPECT_FALSE(f.streaming);
}

TEST(RequestInspect, ClassifiesPathsOfEveryDialect) {
  struct Case {
    UsageDialect dialect;
    std::string_view path;
    RequestApi api;
    UsageDialect speaks;
  };
  const Case cases[] = {
      {kOpenAi, "/v1/chat/completions", RequestApi::kChatCompletions, kOpenAi},
      {kOpenAi, "/chat/completions?x=1", RequestApi::kChatCompletions, kOpenAi},  // perplexity
      {kOpenAi, "/v1/completions", RequestApi::kCompletions, kOpenAi},
      {kOpenAi, "/v1/fim/completions", RequestApi::kCompletions, kOpenAi},  // mistral
      {kOpenAi, "/v1/responses", RequestApi::kResponses, kOpenAi},
      {kOpenAi, "/v1/embeddings/", RequestApi::kEmbeddings, kOpenAi},
      {kOpenAi, "/v1/audio/speech", RequestApi::kUnknown, kOpenAi},
      {kAnthropic, "/v1/messages", RequestApi::kAnthropicMessages, kAnthropic},
      {kAnthropic, "/v1/messages/count_tokens", RequestApi::kAnthropicCountTokens, kAnthropic},
      {kAnthropic, "/v1/complete", RequestApi::kAnthropicComplete, kAnthropic},
      {kAnthropic, "/v1/chat/completions", RequestApi::kChatCompletions, kOpenAi},
      {kAnthropic, "/v1/messages/batches", RequestApi::kUnknown, kAnthropic},
      {kGemini, "/v1beta/models/gemini-2.0-flash:generateContent", RequestApi::kGeminiGenerate,
       kGemini},
      {kGemini, "/v1beta/models/gemini-2.0-flash:countTokens", RequestApi::kGeminiCountTokens,
       kGemini},
      {kGemini, "/v1beta/models/text-embedding-004:embedContent", RequestApi::kGeminiEmbed,
       kGemini},
      {kGemini, "/v1beta/openai/chat/completions", RequestApi::kChatCompletions, kOpenAi},
      {kGemini, "/v1beta/openai/responses", RequestApi::kResponses, kOpenAi},
      {kGemini, "/v1beta/models/x:batchGenerateContent", RequestApi::kUnknown, kGemini},
      {kCohere, "/v2/chat", RequestApi::kCohereChat, kCohere},
      {kCohere, "/v1/chat", RequestApi::kCohereChat, kCohere},
      {kCohere, "/v1/generate", RequestApi::kCohereGenerate, kCohere},
      {kCohere, "/v2/embed", RequestApi::kCohereNoOutput, kCohere},
      {kCohere, "/v2/rerank", RequestApi::kCohereNoOutput, kCohere},
      {kCohere, "/compatibility/v1/chat/completions", RequestApi::kChatCompletions, kOpenAi},
  };
  for (const Case& c : cases) {
    RequestFacts f = inspect_ok(c.dialect, c.path, "");
    EXPECT_EQ(f.api, c.api) << c.path;
    EXPECT_EQ(f.dialect, c.speaks) << c.path;
  }
  EXPECT_TRUE(produces_output(RequestApi::kGeminiGenerate));
  EXPECT_FALSE(produces_output(RequestApi::kEmbeddings));
  EXPECT_FALSE(produces_output(RequestApi::kUnknown));
}

TEST(RequestInspect, GeminiModelAndStreamFromThePath) {
  RequestFacts f =
      inspect_ok(kGemini, "/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse",
                 R"({"contents":[{"parts":[{"text":"hi"}]}],)"
                 R"("generationConfig":{"maxOutputTokens":512,"candidateCount":2}})");
  EXPECT_EQ(f.model, "gemini-2.5-flash");
  EXPECT_TRUE(f.streaming);
  EXPECT_EQ(f.max_output_tokens, 512);
  EXPECT_EQ(f.choices, 2);

  f = inspect_ok(kGemini, "/v1beta/models/gemini-2.0-flash:generateContent", "");
  EXPECT_EQ(f.model, "gemini-2.0-flash");
  EXPECT_FALSE(f.streaming);
  EXPECT_EQ(inspect_ok(kGemini, "/v1/tunedModels/my-model-1x:generateContent", "").model,
            "tunedModels/my-model-1x");
  EXPECT_EQ(inspect_ok(kGemini, "/v1beta/models/gemini%2D2.0-flash:generateContent", "").model,
            "gemini-2.0-flash");
  EXPECT_EQ(inspect_ok(kGemini, "/v1beta/models", "").model, "");
  EXPECT_EQ(inspect_ok(kGemini, "/v1beta/cachedContents",
                       R"({"model":"models/gemini-1.5-flash-001","contents":[]})")
                .model,
            "gemini-1.5-flash-001");
  EXPECT_EQ(inspect_error(kGemini, "/v1beta/models/a%2Fb:generateContent", "").field, "model");
  EXPECT_EQ(inspect_error(kGemini, "/v1beta/models/a%zz:generateContent", "").field, "model");
  EXPECT_EQ(inspect_error(kGemini, "/v1beta/models/:generateContent", "").field, "model");
}

TEST(RequestInspect, GeminiAliasesCountAsOneField) {
  const std::string_view path = "/v1beta/models/gemini-2.0-flash:generateContent";
  EXPECT_EQ(inspect_ok(kGemini, path, R"({"generation_config":{"max_output_tokens":64}})")
                .max_output_tokens,
            64);
  EXPECT_EQ(inspect_error(kGemini, path,
                          R"({"generationConfig":{},"generation_config":{"maxOutputTokens":9}})")
                .field,
            "generation_config");
  EXPECT_EQ(inspect_error(kGemini, path,
                          R"({"generationConfig":{"maxOutputTokens":9,"max_output_tokens":99}})")
                .field,
            "max_output_tokens");
  EXPECT_TRUE(
      inspect_ok(kGemini, path, R"({"cachedContent":"cachedContents/abc"})").stored_context);
}

TEST(RequestInspect, OtherDialects) {
  RequestFacts f = inspect_ok(kAnthropic, "/v1/messages",
                              R"({"model":"claude-sonnet-4-20250514","max_tokens":1024,)"
                              R"("messages":[{"role":"user","content":"Hello"}],"stream":false})");
  EXPECT_EQ(f.model, "claude-sonnet-4-20250514");
  EXPECT_EQ(f.max_output_tokens, 1024);
  EXPECT_FALSE(f.streaming);
  EXPECT_EQ(
      inspect_ok(kAnthropic, "/v1/complete", R"({"model":"claude-2","max_tokens_to_sample":300})")
          .max_output_tokens,
      300);

  f = inspect_ok(kOpenAi, "/v1/responses",
                 R"({"model":"o4-mini","input":"hi","max_output_tokens":800,)"
                 R"("previous_response_id":"resp_123","stream":true})");
  EXPECT_EQ(f.max_output_tokens, 800);
  EXPECT_TRUE(f.stored_context);
  EXPECT_TRUE(f.streaming);
  EXPECT_FALSE(
      inspect_ok(kOpenAi, "/v1/responses", R"({"previous_response_id":null})").stored_context);

  f = inspect_ok(
      kOpenAi, "/v1/completions",
      R"({"model":"gpt-3.5-turbo-instruct","prompt":"x","max_tokens":7,"n":2,"best_of":5})");
  EXPECT_EQ(f.max_output_tokens, 7);
  EXPECT_EQ(f.choices, 5);
  EXPECT_FALSE(f.stored_context) << "a completions prompt is text, not a stored prompt";

  f = inspect_ok(kCohere, "/v2/chat",
                 R"({"model":"command-a-03-2025","messages":[],"max_tokens":100,"stream":true})");
  EXPECT_EQ(f.model, "command-a-03-2025");
  EXPECT_EQ(f.max_output_tokens, 100);
  EXPECT_TRUE(f.streaming);
  EXPECT_EQ(inspect_ok(kCohere, "/v1/generate", R"({"prompt":"x","num_generations":4})").choices,
            4);
}

TEST(RequestInspect, ReadsCountsTheWayProvidersDo) {
  auto cap = [](std::string_view value) {
    return inspect_ok(kOpenAi, kChatPath,
                      std::string(R"({"max_tokens":)") + std::string(value) + "}")
        .max_output_tokens;
  };
  EXPECT_EQ(cap("0"), 0);
  EXPECT_EQ(cap("100.0"), 100);
  EXPECT_EQ(cap("1e3"), 1000);
  EXPECT_EQ(cap("1.5e1"), 15);
  EXPECT_EQ(cap("-0"), 0);
  EXPECT_EQ(cap("0.0e-5"), 0);
  EXPECT_EQ(cap("12345678901234567890123"), std::numeric_limits<int64_t>::max());
  EXPECT_EQ(cap("1e400"), std::numeric_limits<int64_t>::max());
  EXPECT_EQ(cap("9223372036854775807"), std::numeric_limits<int64_t>::max());
  EXPECT_EQ(cap("999999999999999999"), 999999999999999999);
  for (std::string_view bad : {"1.5", "-1", "\"100\"", "true", "[1]", "{}", "1e-400", "-1e400"}) {
    Error e = inspect_error(kOpenAi, kChatPath,
                            std::string(R"({"max_tokens":)") + std::string(bad) + "}");
    EXPECT_EQ(e.code, ErrorCode::kInvalidRequest) << bad;
    EXPECT_EQ(e.field, "max_tokens") << bad;
    EXPECT_EQ(e.message, "\"max_tokens\" must be a non-negative integer") << bad;
  }
  EXPECT_EQ(inspect_error(kOpenAi, kChatPath, R"({"n":0})").message,
            "\"n\" must be a positive integer");
}

TEST(RequestInspect, RefusesBodiesItCannotReadSafely) {
  Error e = inspect_error(kOpenAi, kChatPath, R"({"model":"gpt-4o",})");
  EXPECT_EQ(e.code, ErrorCode::kInvalidRequest);
  EXPECT_EQ(e.message, "request body is not valid JSON");
  EXPECT_EQ(inspect_error(kOpenAi, kChatPath, "model=gpt-4o").message,
            "request body is not valid JSON");
  EXPECT_EQ(inspect_error(kOpenAi, kChatPath, "{} {}").message, "request body is not valid JSON");
  EXPECT_EQ(inspect_error(kOpenAi, kChatPath, " ").message, "request body is not valid JSON");
  EXPECT_EQ(inspect_error(kOpenAi, kChatPath, "[{\"model\":\"x\"}]").message,
            "request body must be a JSON object");
  EXPECT_EQ(inspect_error(kOpenAi, kChatPath, R"({"model":["gpt-4o"]})").message,
            "\"model\" must be a string");
  EXPECT_EQ(inspect_error(kOpenAi, kChatPath, R"({"stream":"true"})").message,
            "\"stream\" must be a boolean");
  EXPECT_EQ(inspect_error(kOpenAi, kChatPath, R"({"stream_options":true})").message,
            "\"stream_options\" must be an object");
  // Invalid UTF-8 and raw control characters in strings are not JSON.
  EXPECT_EQ(inspect_error(kOpenAi, kChatPath, "{\"model\":\"gpt\xC0\x80\"}").message,
            "request body is not valid JSON");
  EXPECT_EQ(inspect_error(kOpenAi, kChatPath, "{\"content\":\"a\nb\"}").message,
            "request body is not valid JSON");
}

TEST(RequestInspect, ADuplicatedFieldIsRefusedEvenWhenEscaped) {
  // Which copy would the provider use? Python and JS keep the last, some parsers the first or
  // fail: till refuses rather than guess.
  Error e = inspect_error(kOpenAi, kChatPath, R"({"model":"gpt-4o-mini","model":"gpt-4o"})");
  EXPECT_EQ(e.field, "model");
  EXPECT_EQ(e.message, "\"model\" appears twice in the request body");
  EXPECT_EQ(
      inspect_error(kOpenAi, kChatPath, R"({"model":"gpt-4o-mini","m\u006fdel":"gpt-4o"})").field,
      "model");
  EXPECT_EQ(inspect_error(kOpenAi, kChatPath, R"({"max_tokens":1,"max_tokens":100000})").field,
            "max_tokens");
  EXPECT_EQ(inspect_error(kOpenAi, kChatPath,
                          R"({"stream_options":{"include_usage":true,"include_usage":false}})")
                .field,
            "include_usage");
  // An escaped key is still read.
  EXPECT_EQ(inspect_ok(kOpenAi, kChatPath, R"({"\u006d\u006f\u0064\u0065\u006c":"o3"})").model,
            "o3");
  EXPECT_EQ(inspect_ok(kOpenAi, kChatPath, R"({"model":"caf\u00e9 \ud83d\ude00"})").model,
            "caf\xC3\xA9 \xF0\x9F\x98\x80");
  // Fields till does not read may repeat (that is the provider's business).
  EXPECT_TRUE(inspect_request(kOpenAi, kChatPath, "POST", R"({"user":"a","user":"b"})"));
  // Fields of other APIs are not read at all.
  EXPECT_TRUE(inspect_request(kAnthropic, "/v1/messages", "POST", R"({"n":"x","n":"y"})"));
}

TEST(RequestInspect, EmptyBodyHasNoFacts) {
  RequestFacts f = inspect_ok(kOpenAi, "/v1/models", "");
  EXPECT_EQ(f.model, "");
  EXPECT_EQ(f.max_output_tokens, std::nullopt);
  EXPECT_EQ(f.body_bytes, 0u);
}

TEST(RequestInspect, ReadsOnlyBodiesThatShouldBeJson) {
  // GET and HEAD bodies are ignored.
  auto get = inspect_request(kOpenAi, kChatPath, "GET", "not json");
  ASSERT_TRUE(get);
  EXPECT_EQ(get->facts().model, "");
  EXPECT_EQ(get->facts().body_bytes, 8u);
  EXPECT_FALSE(get->set_max_output_tokens(5));
  // An endpoint till does not model may take multipart uploads: no facts, no error.
  const std::string multipart =
      "--boundary\r\nContent-Disposition: form-data; "
      "name=\"model\"\r\n\r\nwhisper-1\r\n--boundary--";
  auto upload = inspect_request(kOpenAi, "/v1/audio/transcriptions", "POST", multipart);
  ASSERT_TRUE(upload);
  EXPECT_EQ(upload->facts().model, "");
  // ...but its JSON bodies are read.
  auto image = inspect_request(kOpenAi, "/v1/images/generations", "POST",
                               R"( {"model":"gpt-image-1","prompt":"x"})");
  ASSERT_TRUE(image);
  EXPECT_EQ(image->facts().model, "gpt-image-1");
  EXPECT_FALSE(inspect_request(kOpenAi, "/v1/images/generations", "POST", R"({"model":})"));
  // An endpoint till models must have a JSON body.
  EXPECT_FALSE(inspect_request(kOpenAi, kChatPath, "POST", multipart));
}

// ---- Rewriting --------------------------------------------------------------------------------

TEST(RequestRewrite, AddsTheChatCapWhereTheRequestHasNone) {
  const std::string body = R"({"model":"o3","messages":[{"role":"user","content":"hi"}]})";
  EXPECT_EQ(
      rewrite_ok(kOpenAi, kChatPath, body, {.max_output_tokens = 500}),
      R"({"model":"o3","messages":[{"role":"user","content":"hi"}],"max_completion_tokens":500})");
  EXPECT_EQ(rewrite_ok(kOpenAi, kChatPath, body,
                       {.max_output_tokens = 500, .chat_cap_field = ChatCapField::kMaxTokens}),
            R"({"model":"o3","messages":[{"role":"user","content":"hi"}],"max_tokens":500})");
  EXPECT_EQ(rewrite_ok(kOpenAi, kChatPath, "{}", {.max_output_tokens = 5}),
            R"({"max_completion_tokens":5})");
  EXPECT_EQ(rewrite_ok(kOpenAi, kChatPath, " {\n} ", {.max_output_tokens = 5}),
            " {\"max_completion_tokens\":5\n} ");
  EXPECT_EQ(rewrite_ok(kOpenAi, kChatPath, "{\n  \"model\": \"o3\"\n}\n", {.max_output_tokens = 5}),
            "{\n  \"model\": \"o3\",\"max_completion_tokens\":5\n}\n");
  EXPECT_EQ(chat_cap_field_for("openai"), ChatCapField::kMaxCompletionTokens);
  EXPECT_EQ(chat_cap_field_for("mistral"), ChatCapField::kMaxTokens);
}

TEST(RequestRewrite, OverwritesTheCapsTheRequestNames) {
  EXPECT_EQ(rewrite_ok(kOpenAi, kChatPath, R"({"max_tokens": 9000 ,"model":"gpt-4o"})",
                       {.max_output_tokens = 100}),
            R"({"max_tokens": 100 ,"model":"gpt-4o"})")
      << "the request already uses max_tokens: keep it";
  EXPECT_EQ(rewrite_ok(kOpenAi, kChatPath, R"({"max_tokens":null,"max_completion_tokens":1e5})",
                       {.max_output_tokens = 100}),
            R"({"max_tokens":100,"max_completion_tokens":100})");
}

TEST(RequestRewrite, WritesTheFieldOfEachApi) {
  EXPECT_EQ(rewrite_ok(kOpenAi, "/v1/responses", R"({"model":"o4-mini","input":"x"})",
                       {.max_output_tokens = 64}),
            R"({"model":"o4-mini","input":"x","max_output_tokens":64})");
  EXPECT_EQ(rewrite_ok(kOpenAi, "/v1/completions", R"({"prompt":"x"})", {.max_output_tokens = 64}),
            R"({"prompt":"x","max_tokens":64})");
  EXPECT_EQ(rewrite_ok(kAnthropic, "/v1/messages", R"({"model":"c","max_tokens":4096})",
                       {.max_output_tokens = 64}),
            R"({"model":"c","max_tokens":64})");
  EXPECT_EQ(rewrite_ok(kAnthropic, "/v1/complete", R"({"prompt":"x"})", {.max_output_tokens = 64}),
            R"({"prompt":"x","max_tokens_to_sample":64})");
  EXPECT_EQ(rewrite_ok(kCohere, "/v2/chat", R"({"messages":[]})", {.max_output_tokens = 64}),
            R"({"messages":[],"max_tokens":64})");
}

TEST(RequestRewrite, GeminiCapGoesIntoGenerationConfig) {
  const std::string_view path = "/v1beta/models/gemini-2.0-flash:generateContent";
  EXPECT_EQ(rewrite_ok(kGemini, path, R"({"contents":[]})", {.max_output_tokens = 64}),
            R"({"contents":[],"generationConfig":{"maxOutputTokens":64}})");
  EXPECT_EQ(rewrite_ok(kGemini, path, R"({"generationConfig":{}})", {.max_output_tokens = 64}),
            R"({"generationConfig":{"maxOutputTokens":64}})");
  EXPECT_EQ(rewrite_ok(kGemini, path, R"({"generationConfig":{"temperature":0.7},"contents":[]})",
                       {.max_output_tokens = 64}),
            R"({"generationConfig":{"temperature":0.7,"maxOutputTokens":64},"contents":[]})");
  EXPECT_EQ(rewrite_ok(kGemini, path, R"({"generationConfig":null})", {.max_output_tokens = 64}),
            R"({"generationConfig":{"maxOutputTokens":64}})");
  EXPECT_EQ(rewrite_ok(kGemini, path, R"({"generation_config":{"max_output_tokens":8192}})",
                       {.max_output_tokens = 64}),
            R"({"generation_config":{"max_output_tokens":64}})");
}

TEST(RequestRewrite, EnsuresStreamUsageKeepingOtherStreamOptions) {
  auto ensured = [](std::string_view body) {
    auto out = ensure_stream_usage(body);
    EXPECT_TRUE(out) << out.error().message;
    return out ? *out : std::string();
  };
  EXPECT_EQ(ensured(R"({"model":"gpt-4o","stream":true})"),
            R"({"model":"gpt-4o","stream":true,"stream_options":{"include_usage":true}})");
  EXPECT_EQ(
      ensured(R"({"stream":true,"stream_options":{"include_obfuscation":false}})"),
      R"({"stream":true,"stream_options":{"include_obfuscation":false,"include_usage":true}})");
  EXPECT_EQ(ensured(R"({"stream_options":{ }})"), R"({"stream_options":{"include_usage":true }})");
  EXPECT_EQ(ensured(R"({"stream_options":{"include_usage":false},"x":1})"),
            R"({"stream_options":{"include_usage":true},"x":1})");
  EXPECT_EQ(ensured(R"({"stream_options":null})"), R"({"stream_options":{"include_usage":true}})");
  const std::string already = R"({"stream_options": {"include_usage" : true}})";
  EXPECT_EQ(ensured(already), already);
  // Other APIs have no stream_options: nothing changes.
  EXPECT_EQ(
      rewrite_ok(kOpenAi, "/v1/responses", R"({"stream":true})", {.include_stream_usage = true}),
      R"({"stream":true})");
}

TEST(RequestRewrite, AppliesBothEditsInOnePass) {
  EXPECT_EQ(rewrite_ok(kOpenAi, kChatPath, R"({"model":"gpt-4o","stream":true})",
                       {.max_output_tokens = 7, .include_stream_usage = true}),
            R"({"model":"gpt-4o","stream":true,"max_completion_tokens":7,)"
            R"("stream_options":{"include_usage":true}})");
  EXPECT_EQ(rewrite_ok(kOpenAi, kChatPath, R"({"stream_options":null})",
                       {.max_output_tokens = 7, .include_stream_usage = true}),
            R"({"stream_options":{"include_usage":true},"max_completion_tokens":7})");
  EXPECT_EQ(rewrite_ok(kOpenAi, kChatPath, R"({"max_tokens":1})",
                       {.max_output_tokens = 7, .include_stream_usage = true}),
            R"({"max_tokens":7,"stream_options":{"include_usage":true}})");
}

TEST(RequestRewrite, PreservesEveryOtherByte) {
  // Numbers a DOM round trip would change (1e400 → "Infinity", big integers → doubles, 0.7 →
  // 7E-1), escapes, raw UTF-8, key order and whitespace all survive.
  const std::string body =
      "{ \"model\" : \"gpt-4o\",\n"
      "  \"temperature\": 0.7, \"seed\": 12345678901234567890123, \"x\": 1e400, \"y\": -0.0E+00,\n"
      "  \"messages\": [{\"role\": \"user\", \"content\": \"h\\u00e9llo \\ud83d\\ude00 caf\xC3\xA9 "
      "\xF0\x9F\x98\x80 \\\"q\\\" \\/ \\n\"}],\n"
      "  \"z\": {\"a\": [1, 2, {\"b\": null}]}, \"max_tokens\": 12 }\t\n";
  std::string out =
      rewrite_ok(kOpenAi, kChatPath, body, {.max_output_tokens = 99, .include_stream_usage = true});
  std::string expected = body;
  expected.replace(expected.find("12 }"), 2, "99,\"stream_options\":{\"include_usage\":true}");
  EXPECT_EQ(out, expected);
  // And the result reads back with the edits in place.
  RequestFacts again = inspect_ok(kOpenAi, kChatPath, out);
  EXPECT_EQ(again.max_output_tokens, 99);
  EXPECT_EQ(again.model, "gpt-4o");
  // Semantically only the edited fields differ.
  boost::json::value before = boost::json::parse(body);
  boost::json::value after = boost::json::parse(out);
  EXPECT_EQ(after.at("stream_options").at("include_usage"), true);
  after.as_object().erase("stream_options");
  after.as_object()["max_tokens"] = 12;
  EXPECT_EQ(before, after);
}

TEST(RequestRewrite, RefusesCallerMistakes) {
  RequestFacts unread = inspect_request(kOpenAi, kChatPath, "GET", "{}")->facts();
  EXPECT_FALSE(rewrite_request(unread, "{}", {.include_stream_usage = true}));
  RequestFacts embeddings = inspect_ok(kOpenAi, "/v1/embeddings", R"({"input":"x"})");
  auto out = rewrite_request(embeddings, R"({"input":"x"})", {.max_output_tokens = 5});
  ASSERT_FALSE(out);
  EXPECT_EQ(out.error().code, ErrorCode::kInternal);
  RequestFacts chat = inspect_ok(kOpenAi, kChatPath, R"({"model":"x"})");
  out = rewrite_request(chat, R"({"model":"xy"})", {.max_output_tokens = 5});
  ASSERT_FALSE(out);
  EXPECT_EQ(out.error().code, ErrorCode::kInternal);
  out = rewrite_request(chat, R"({"model":"x"})", {.max_output_tokens = -1});
  ASSERT_FALSE(out);
  // No edits: the body comes back unchanged.
  out = rewrite_request(chat, R"({"model":"x"})", {});
  ASSERT_TRUE(out);
  EXPECT_EQ(*out, R"({"model":"x"})");
}

TEST(RequestRewrite, TheHandleAccumulatesEdits) {
  const std::string body = R"({"model":"gpt-4o","stream":true})";
  auto inspected = inspect_request(kOpenAi, kChatPath, "POST", body);
  ASSERT_TRUE(inspected);
  EXPECT_FALSE(inspected->modified());
  EXPECT_EQ(inspected->body(), "");
  EXPECT_TRUE(inspected->ensure_stream_usage());
  EXPECT_TRUE(inspected->modified());
  EXPECT_EQ(inspected->body(),
            R"({"model":"gpt-4o","stream":true,"stream_options":{"include_usage":true}})");
  EXPECT_TRUE(inspected->set_max_output_tokens(300, ChatCapField::kMaxTokens));
  EXPECT_EQ(inspected->facts().max_output_tokens, 300);
  EXPECT_EQ(inspected->body(), R"({"model":"gpt-4o","stream":true,"max_tokens":300,)"
                               R"("stream_options":{"include_usage":true}})");
  EXPECT_TRUE(inspected->set_max_output_tokens(200, ChatCapField::kMaxTokens));
  EXPECT_EQ(inspected->body(), R"({"model":"gpt-4o","stream":true,"max_tokens":200,)"
                               R"("stream_options":{"include_usage":true}})")
      << "a second cap replaces the first";

  auto already =
      inspect_request(kOpenAi, kChatPath, "POST", R"({"stream_options":{"include_usage":true}})");
  ASSERT_TRUE(already);
  EXPECT_TRUE(already->ensure_stream_usage());
  EXPECT_FALSE(already->modified());

  auto embeddings = inspect_request(kOpenAi, "/v1/embeddings", "POST", R"({"input":"x"})");
  ASSERT_TRUE(embeddings);
  EXPECT_FALSE(embeddings->set_max_output_tokens(5));
  EXPECT_FALSE(embeddings->ensure_stream_usage());
  EXPECT_FALSE(embeddings->modified());
}

TEST(RequestRewrite, ConveniencesInspectThenRewrite) {
  auto out = set_max_output_tokens(kAnthropic, "/v1/messages", R"({"max_tokens":4096})", 10);
  ASSERT_TRUE(out);
  EXPECT_EQ(*out, R"({"max_tokens":10})");
  out = set_max_output_tokens(kOpenAi, kChatPath, R"({"model":)", 10);
  ASSERT_FALSE(out);
  EXPECT_EQ(out.error().message, "request body is not valid JSON");
}

}  // namespace
}  // namespace till
