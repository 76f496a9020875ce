// Benchmarks of the provider code on the request path: inspecting and rewriting every proxied
// request body, and metering every response chunk.
#include <benchmark/benchmark.h>

#include <string>
#include <string_view>

#include "provider/request_rewrite.h"
#include "provider/sse_parser.h"
#include "provider/usage_meter.h"

namespace till {
namespace {

// A typical small chat request: 215 bytes.
constexpr std::string_view kChatRequest =
    R"({"model":"gpt-4o-mini","messages":[{"role":"system","content":"You are a helpful )"
    R"(assistant."},{"role":"user","content":"What is the capital of France? Answer in one )"
    R"(word."}],"temperature":0.2,"stream":true})";

void BM_InspectChatRequest(benchmark::State& state) {
  for (auto _ : state) {
    auto inspected =
        inspect_request(UsageDialect::kOpenAi, "/v1/chat/completions", "POST", kChatRequest);
    benchmark::DoNotOptimize(inspected);
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * kChatRequest.size()));
}
BENCHMARK(BM_InspectChatRequest);

// What the proxy does to a streaming request under a tight budget: inspect, cap, ask for usage.
void BM_InspectAndRewriteChatRequest(benchmark::State& state) {
  for (auto _ : state) {
    auto inspected =
        inspect_request(UsageDialect::kOpenAi, "/v1/chat/completions", "POST", kChatRequest);
    inspected->set_max_output_tokens(1000);
    inspected->ensure_stream_usage();
    benchmark::DoNotOptimize(inspected->body());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * kChatRequest.size()));
}
BENCHMARK(BM_InspectAndRewriteChatRequest);

// A long conversation: scanning speed on 100 KB, with escapes and non-ASCII text.
void BM_InspectLargeRequest(benchmark::State& state) {
  std::string body = R"({"model":"claude-sonnet-4-20250514","max_tokens":1024,"messages":[)";
  for (int i = 0; i < 200; ++i) {
    if (i > 0) body += ',';
    body += R"({"role":"user","content":"Lorem ipsum dolor sit amet, \"consectetur\" )"
            R"(adipiscing elit. Caf\u00e9 na\u00efve \u2014 r\u00e9sum\u00e9. )"
            "Gr\xC3\xBC\xC3\x9F"
            R"( Gott! Sed do eiusmod tempor incididunt ut labore et )"
            R"(dolore magna aliqua. Ut enim ad minim veniam, quis nostrud exercitation ullamco )"
            R"(laboris nisi ut aliquip ex ea commodo consequat. Duis aute irure dolor in )"
            R"(reprehenderit in voluptate velit esse cillum dolore eu fugiat nulla pariatur."})";
  }
  body += "]}";
  for (auto _ : state) {
    auto inspected = inspect_request(UsageDialect::kAnthropic, "/v1/messages", "POST", body);
    benchmark::DoNotOptimize(inspected);
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * body.size()));
}
BENCHMARK(BM_InspectLargeRequest);

// An OpenAI chat stream of 200 content chunks and a usage chunk, as the network delivers it
// (1400-byte reads).
std::string openai_stream() {
  std::string stream;
  for (int i = 0; i < 200; ++i) {
    stream +=
        "data: {\"id\":\"chatcmpl-AbCdEf\",\"object\":\"chat.completion.chunk\",\"created\":"
        "1741570283,\"model\":\"gpt-4o-mini-2024-07-18\",\"system_fingerprint\":\"fp_06737a9306\","
        "\"choices\":[{\"index\":0,\"delta\":{\"content\":\" word\"},\"logprobs\":null,"
        "\"finish_reason\":null}],\"usage\":null}\n\n";
  }
  stream +=
      "data: {\"id\":\"chatcmpl-AbCdEf\",\"object\":\"chat.completion.chunk\",\"choices\":[],"
      "\"usage\":{\"prompt_tokens\":19,\"completion_tokens\":200,\"total_tokens\":219,"
      "\"prompt_tokens_details\":{\"cached_tokens\":0},\"completion_tokens_details\":"
      "{\"reasoning_tokens\":0}}}\n\ndata: [DONE]\n\n";
  return stream;
}

void BM_MeterOpenAiStream(benchmark::State& state) {
  const std::string stream = openai_stream();
  const std::string_view view = stream;
  for (auto _ : state) {
    auto meter = make_usage_meter(UsageDialect::kOpenAi, true);
    for (size_t at = 0; at < view.size(); at += 1400) meter->feed(view.substr(at, 1400));
    benchmark::DoNotOptimize(meter->finish());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * stream.size()));
  state.counters["events/s"] = benchmark::Counter(static_cast<double>(state.iterations() * 202),
                                                  benchmark::Counter::kIsRate);
}
BENCHMARK(BM_MeterOpenAiStream);

void BM_MeterAnthropicJson(benchmark::State& state) {
  std::string body = R"({"id":"msg_013Zva2CMHLNnXjNJJKqJ2EF","type":"message","role":"assistant",)"
                     R"("model":"claude-sonnet-4-20250514","content":[{"type":"text","text":")";
  body += std::string(4000, 'x');
  body += R"("}],"stop_reason":"end_turn","stop_sequence":null,"usage":{"input_tokens":2095,)"
          R"("cache_creation_input_tokens":2051,"cache_read_input_tokens":0,"output_tokens":503}})";
  for (auto _ : state) {
    auto meter = make_usage_meter(UsageDialect::kAnthropic, false);
    meter->feed(body);
    benchmark::DoNotOptimize(meter->finish());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * body.size()));
}
BENCHMARK(BM_MeterAnthropicJson);

void BM_SseFraming(benchmark::State& state) {
  const std::string stream = openai_stream();
  const std::string_view view = stream;
  size_t events = 0;
  for (auto _ : state) {
    SseParser parser([&](const SseEvent& e) { events += e.data.size() > 0; });
    for (size_t at = 0; at < view.size(); at += 1400) parser.feed(view.substr(at, 1400));
    parser.finish();
  }
  benchmark::DoNotOptimize(events);
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * stream.size()));
}
BENCHMARK(BM_SseFraming);

}  // namespace
}  // namespace till
