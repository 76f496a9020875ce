// libFuzzer target for request inspection and rewriting (src/provider/request_rewrite.h,
// src/provider/json_scanner.h): they read the untrusted body of every proxied request, and the
// rewritten body is what reaches the provider.
//
// Input: byte 0 picks the endpoint (dialect, path, method); the rest is the body. Beyond "no
// crash, no sanitizer report", every input checks:
//  1. JsonScanner accepts exactly what Boost.JSON accepts (same depth limit), except escaped lone
//     surrogates and exponents beyond Boost's 32-bit counter (0e4402320402320202), which the
//     grammar allows and only JsonScanner accepts.
//  2. inspect_request either succeeds or fails with kInvalidRequest and a message; a body that is
//     not valid JSON is never accepted for an endpoint till models.
//  3. After set_max_output_tokens(n) the body is valid JSON, reads back with cap n and the same
//     model, streaming, generation count and stored-context flag, and — whenever Boost.JSON can
//     parse both — equals the original once the cap fields are set aside.
//  4. After ensure_stream_usage the body is valid JSON, reads back the same, has
//     stream_options.include_usage == true, and otherwise equals the original.
#include <algorithm>
#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "provider/json_scanner.h"
#include "provider/request_rewrite.h"

namespace {

using namespace till;

[[noreturn]] void violated(const char* what, int line) {
  std::fprintf(stderr, "request_rewrite_fuzz: invariant violated at line %d: %s\n", line, what);
  std::abort();
}

#define FUZZ_CHECK(cond)                    \
  do {                                      \
    if (!(cond)) violated(#cond, __LINE__); \
  } while (0)

struct Endpoint {
  UsageDialect dialect;
  std::string_view path;
  std::string_view method;
};

constexpr Endpoint kEndpoints[] = {
    {UsageDialect::kOpenAi, "/v1/chat/completions", "POST"},
    {UsageDialect::kOpenAi, "/v1/responses", "POST"},
    {UsageDialect::kOpenAi, "/v1/completions", "POST"},
    {UsageDialect::kOpenAi, "/v1/embeddings", "POST"},
    {UsageDialect::kOpenAi, "/v1/images/generations", "POST"},
    {UsageDialect::kOpenAi, "/v1/chat/completions", "GET"},
    {UsageDialect::kAnthropic, "/v1/messages", "POST"},
    {UsageDialect::kAnthropic, "/v1/complete", "POST"},
    {UsageDialect::kAnthropic, "/v1/messages/count_tokens", "POST"},
    {UsageDialect::kGemini, "/v1beta/models/gemini-2.0-flash:generateContent", "POST"},
    {UsageDialect::kGemini, "/v1beta/models/gemini-2.0-flash:streamGenerateContent?alt=sse",
     "POST"},
    {UsageDialect::kGemini, "/v1beta/cachedContents", "POST"},
    {UsageDialect::kGemini, "/v1beta/openai/chat/completions", "POST"},
    {UsageDialect::kCohere, "/v2/chat", "POST"},
    {UsageDialect::kCohere, "/v1/generate", "POST"},
    {UsageDialect::kCohere, "/v2/embed", "POST"},
};

bool has_surrogate_escape(std::string_view text) {
  for (size_t i = 0; i + 2 < text.size(); ++i) {
    if (text[i] == '\\' && text[i + 1] == 'u' && (text[i + 2] == 'd' || text[i + 2] == 'D')) {
      return true;
    }
  }
  return false;
}

std::optional<boost::json::value> boost_parse(std::string_view text,
                                              boost::json::error_code* error = nullptr) {
  boost::json::error_code ec;
  boost::json::parse_options options;
  options.max_depth = JsonScanner::kMaxDepth;
  std::optional<boost::json::value> v;
  try {
    boost::json::value parsed = boost::json::parse(text, ec, {}, options);
    if (!ec) v = std::move(parsed);
  } catch (const std::exception&) {
    ec = boost::json::error::exception;
  }
  if (error) *error = ec;
  return v;
}

// Sets aside what the edits may change: every output-cap spelling, and include_usage; a config
// object left empty (or null) counts as absent.
void normalize(boost::json::value& v) {
  if (!v.is_object()) return;
  boost::json::object& root = v.as_object();
  for (std::string_view key :
       {"max_tokens", "max_completion_tokens", "max_output_tokens", "max_tokens_to_sample"}) {
    root.erase(key);
  }
  auto tidy = [&](std::string_view key, std::initializer_list<std::string_view> inner) {
    auto it = root.find(key);
    if (it == root.end()) return;
    if (it->value().is_object()) {
      for (std::string_view k : inner) it->value().as_object().erase(k);
      if (it->value().as_object().empty()) root.erase(it);
    } else if (it->value().is_null()) {
      root.erase(it);
    }
  };
  tidy("stream_options", {"include_usage"});
  tidy("generationConfig", {"maxOutputTokens", "max_output_tokens"});
  tidy("generation_config", {"maxOutputTokens", "max_output_tokens"});
}

// Equal values, up to Boost's number reading: 1.81 does not round doubles correctly (the same text
// may read one ulp apart depending on the byte after it) and reads 0e1000003 as NaN.
bool same(const boost::json::value& a, const boost::json::value& b) {
  if (a.is_double() && b.is_double()) {
    const double x = a.get_double(), y = b.get_double();
    if (std::isnan(x) || std::isnan(y)) return std::isnan(x) && std::isnan(y);
    return x == y || std::fabs(x - y) <= 1e-15 * std::max(std::fabs(x), std::fabs(y));
  }
  if (a.kind() != b.kind()) return false;
  if (a.is_array()) {
    const auto &x = a.get_array(), &y = b.get_array();
    if (x.size() != y.size()) return false;
    for (size_t i = 0; i < x.size(); ++i) {
      if (!same(x[i], y[i])) return false;
    }
    return true;
  }
  if (a.is_object()) {
    const auto &x = a.get_object(), &y = b.get_object();
    if (x.size() != y.size()) return false;
    for (const auto& [key, value] : x) {
      const boost::json::value* other = y.if_contains(key);
      if (!other || !same(value, *other)) return false;
    }
    return true;
  }
  return a == b;
}

// The edited body reads back like the original (apart from the cap) and means the same.
void check_edit(const Endpoint& endpoint, std::string_view original, const RequestFacts& before,
                const InspectedRequest& edited, std::optional<int64_t> expected_cap) {
  const std::string_view text = edited.modified() ? std::string_view(edited.body()) : original;
  FUZZ_CHECK(is_valid_json(text));
  auto again = inspect_request(endpoint.dialect, endpoint.path, endpoint.method, text);
  FUZZ_CHECK(again.has_value());
  const RequestFacts& after = again->facts();
  FUZZ_CHECK(after.model == before.model);
  FUZZ_CHECK(after.streaming == before.streaming);
  FUZZ_CHECK(after.choices == before.choices);
  FUZZ_CHECK(after.stored_context == before.stored_context);
  FUZZ_CHECK(after.api == before.api);
  FUZZ_CHECK(after.max_output_tokens == expected_cap);
  FUZZ_CHECK(edited.facts().max_output_tokens == expected_cap);

  auto original_value = boost_parse(original);
  auto edited_value = boost_parse(text);
  // An edit never makes a body Boost cannot parse (it may make one parseable, by overwriting a
  // cap spelt with a huge exponent).
  FUZZ_CHECK(!original_value || edited_value);
  if (!original_value) return;
  normalize(*original_value);
  normalize(*edited_value);
  FUZZ_CHECK(same(*original_value, *edited_value));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const Endpoint& endpoint = kEndpoints[data[0] % std::size(kEndpoints)];
  std::string_view body(reinterpret_cast<const char*>(data + 1), size - 1);

  const bool valid = is_valid_json(body);
  boost::json::error_code boost_error;
  const bool boost_valid = boost_parse(body, &boost_error).has_value();
  FUZZ_CHECK(valid == boost_valid ||
             (valid && (has_surrogate_escape(body) ||
                        boost_error == boost::json::error::exponent_overflow)));

  auto inspected = inspect_request(endpoint.dialect, endpoint.path, endpoint.method, body);
  if (!inspected) {
    FUZZ_CHECK(inspected.error().code == ErrorCode::kInvalidRequest);
    FUZZ_CHECK(!inspected.error().message.empty());
    return 0;
  }
  const RequestFacts before = inspected->facts();
  FUZZ_CHECK(before.body_bytes == body.size());
  FUZZ_CHECK(before.choices >= 1);
  FUZZ_CHECK(!before.max_output_tokens || *before.max_output_tokens >= 0);
  if (!before.anchors.valid) return 0;  // nothing read, nothing to edit
  FUZZ_CHECK(valid);

  if (produces_output(before.api)) {
    for (int64_t n : {int64_t{0}, int64_t{7}, int64_t{1} << 40}) {
      for (ChatCapField field : {ChatCapField::kMaxCompletionTokens, ChatCapField::kMaxTokens}) {
        InspectedRequest edited = *inspected;
        FUZZ_CHECK(edited.set_max_output_tokens(n, field));
        check_edit(endpoint, body, before, edited, n);
      }
    }
  }
  InspectedRequest streamed = *inspected;
  if (streamed.ensure_stream_usage()) {
    check_edit(endpoint, body, before, streamed, before.max_output_tokens);
    auto value = boost_parse(streamed.modified() ? std::string_view(streamed.body()) : body);
    if (value) {
      const auto* usage = value->as_object().if_contains("stream_options");
      FUZZ_CHECK(usage && usage->is_object() && usage->as_object().if_contains("include_usage") &&
                 *usage->as_object().if_contains("include_usage") == true);
    }
    // Both edits at once.
    if (streamed.set_max_output_tokens(3)) {
      FUZZ_CHECK(is_valid_json(streamed.body()));
      auto both =
          inspect_request(endpoint.dialect, endpoint.path, endpoint.method, streamed.body());
      FUZZ_CHECK(both && both->facts().max_output_tokens == 3);
    }
  }
  return 0;
}
