#include "provider/request_rewrite.h"

#include <algorithm>
#include <cstdint>
#include <limits>
#include <vector>

#include "core/url.h"
#include "provider/json_scanner.h"

namespace till {
namespace {

constexpr std::string_view kNotJson = "request body is not valid JSON";

// The fields inspect_request reads; each may appear once per object.
enum Key : uint32_t {
  kModel = 1u << 0,
  kStream = 1u << 1,
  kMaxTokens = 1u << 2,
  kMaxCompletionTokens = 1u << 3,
  kMaxOutputTokens = 1u << 4,
  kMaxTokensToSample = 1u << 5,
  kN = 1u << 6,
  kBestOf = 1u << 7,
  kNumGenerations = 1u << 8,
  kStreamOptions = 1u << 9,
  kIncludeUsage = 1u << 10,
  kGenerationConfig = 1u << 11,
  kCandidateCount = 1u << 12,
  kPreviousResponseId = 1u << 13,
  kConversation = 1u << 14,
  kPrompt = 1u << 15,
  kCachedContent = 1u << 16,
  kNone = 0,
};

bool ends_with(std::string_view text, std::string_view suffix) { return text.ends_with(suffix); }

Error invalid(std::string_view key, std::string message) {
  return Error::invalid(std::string(key), std::move(message));
}

Error not_json() { return Error::invalid("", std::string(kNotJson)); }

// The API of `path` for a provider of `dialect`, and the dialect its request and response speak.
RequestApi classify(UsageDialect dialect, std::string_view path, UsageDialect* speaks) {
  *speaks = dialect;
  if (ends_with(path, "/chat/completions")) {
    *speaks = UsageDialect::kOpenAi;
    return RequestApi::kChatCompletions;
  }
  if (ends_with(path, "/embeddings")) {
    *speaks = UsageDialect::kOpenAi;
    return RequestApi::kEmbeddings;
  }
  if (ends_with(path, "/completions")) {
    *speaks = UsageDialect::kOpenAi;
    return RequestApi::kCompletions;
  }
  if (ends_with(path, "/responses") &&
      (dialect == UsageDialect::kOpenAi || path.find("/openai/") != std::string_view::npos)) {
    *speaks = UsageDialect::kOpenAi;
    return RequestApi::kResponses;
  }
  switch (dialect) {
    case UsageDialect::kOpenAi:
      break;
    case UsageDialect::kAnthropic:
      if (ends_with(path, "/v1/messages")) return RequestApi::kAnthropicMessages;
      if (ends_with(path, "/v1/messages/count_tokens")) return RequestApi::kAnthropicCountTokens;
      if (ends_with(path, "/v1/complete")) return RequestApi::kAnthropicComplete;
      break;
    case UsageDialect::kGemini: {
      size_t colon = path.rfind(':');
      if (colon == std::string_view::npos || path.find('/', colon) != std::string_view::npos) {
        break;
      }
      std::string_view method = path.substr(colon + 1);
      if (method == "generateContent" || method == "streamGenerateContent") {
        return RequestApi::kGeminiGenerate;
      }
      if (method == "countTokens") return RequestApi::kGeminiCountTokens;
      if (method == "embedContent" || method == "batchEmbedContents") {
        return RequestApi::kGeminiEmbed;
      }
      break;
    }
    case UsageDialect::kCohere:
      if (ends_with(path, "/chat")) return RequestApi::kCohereChat;
      if (ends_with(path, "/generate")) return RequestApi::kCohereGenerate;
      for (std::string_view suffix :
           {"/embed", "/rerank", "/classify", "/tokenize", "/detokenize"}) {
        if (ends_with(path, suffix)) return RequestApi::kCohereNoOutput;
      }
      break;
  }
  return RequestApi::kUnknown;
}

bool is_model_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '.' || c == '_';
}

// The model a Gemini path names: ".../models/{id}[:method]" → "{id}",
// ".../tunedModels/{id}[:method]" → "tunedModels/{id}"; "" if it names none.
Result<std::string> gemini_path_model(std::string_view path) {
  for (std::string_view collection : {"/tunedModels/", "/models/"}) {
    size_t at = path.find(collection);
    if (at == std::string_view::npos) continue;
    std::string_view id = path.substr(at + collection.size());
    id = id.substr(0, id.find(':'));
    auto decoded = percent_decode(id, /*plus_is_space=*/false);
    if (!decoded || decoded->empty() ||
        !std::all_of(decoded->begin(), decoded->end(), is_model_char)) {
      return fail(invalid("model", "malformed model name in the URL path"));
    }
    if (collection == "/tunedModels/") return "tunedModels/" + *decoded;
    return std::move(*decoded);
  }
  return std::string();
}

// The value of a JSON number's text when it is an integer, spelt 100, 100.0 or 1e2 as the
// providers' parsers accept; integers beyond int64 saturate. nullopt for a fraction or a negative.
std::optional<int64_t> integral_value(std::string_view number) {
  constexpr int64_t kMax = std::numeric_limits<int64_t>::max();
  bool negative = number.front() == '-';
  if (negative) number.remove_prefix(1);
  size_t exp_at = number.find_first_of("eE");
  std::string_view mantissa = number.substr(0, exp_at);
  int64_t exponent = 0;  // saturated at +-1e9: beyond that only the sign matters
  if (exp_at != std::string_view::npos) {
    std::string_view e = number.substr(exp_at + 1);
    bool e_negative = e.front() == '-';
    if (e.front() == '-' || e.front() == '+') e.remove_prefix(1);
    for (char c : e) exponent = std::min<int64_t>(exponent * 10 + (c - '0'), 1'000'000'000);
    if (e_negative) exponent = -exponent;
  }
  // digits × 10^exponent, digits without leading zeros or the decimal point.
  std::string digits;
  size_t dot = mantissa.find('.');
  if (dot != std::string_view::npos) {
    exponent -= static_cast<int64_t>(mantissa.size() - dot - 1);
    digits.append(mantissa.substr(0, dot)).append(mantissa.substr(dot + 1));
  } else {
    digits.append(mantissa);
  }
  digits.erase(0, std::min(digits.find_first_not_of('0'), digits.size()));
  if (digits.empty()) return 0;  // zero, however spelt (including -0)
  if (negative) return std::nullopt;
  while (digits.back() == '0') {
    digits.pop_back();
    ++exponent;
  }
  if (exponent < 0) return std::nullopt;  // a fraction remains
  if (static_cast<int64_t>(digits.size()) + exponent > 18) return kMax;
  int64_t value = 0;
  for (char c : digits) value = value * 10 + (c - '0');
  for (int64_t i = 0; i < exponent; ++i) value *= 10;
  return value;
}

// A count field: nullopt for null. Refuses anything but an integer >= minimum.
Result<std::optional<int64_t>> read_count(JsonScanner& s, std::string_view key, size_t depth,
                                          int64_t minimum) {
  auto refuse = [&] {
    return fail(invalid(key, "\"" + std::string(key) + "\" must be " +
                                 (minimum > 0 ? "a positive integer" : "a non-negative integer")));
  };
  const char first = s.peek();
  if (first != '-' && (first < '0' || first > '9')) {
    bool is_null = first == 'n';
    if (!s.skip_value(depth)) return fail(not_json());
    if (is_null) return std::optional<int64_t>();
    return refuse();
  }
  std::string_view text;
  if (!s.read_number(&text)) return fail(not_json());
  std::optional<int64_t> value = integral_value(text);
  if (!value || *value < minimum) return refuse();
  return value;
}

// Walks the members of the object at s.pos(): calls visit(key, s) at each value, which must move
// past it. Sets *insert / *empty to where a new member goes. `enclosing`: containers around the
// object.
template <class Visit>
Result<void> walk_object(JsonScanner& s, size_t enclosing, size_t* insert, bool* empty,
                         Visit&& visit) {
  if (!s.consume('{')) return fail(not_json());
  *insert = s.pos();
  *empty = true;
  s.skip_whitespace();
  if (s.consume('}')) return {};
  std::string decoded;
  for (;;) {
    std::string_view key;
    if (s.peek() != '"' || !s.read_string(&key)) return fail(not_json());
    if (key.find('\\') != std::string_view::npos) {
      decoded = decode_json_string(key);
      key = decoded;
    }
    s.skip_whitespace();
    if (!s.consume(':')) return fail(not_json());
    s.skip_whitespace();
    if (auto visited = visit(key, enclosing + 1); !visited) return visited;
    *insert = s.pos();
    *empty = false;
    s.skip_whitespace();
    if (s.consume(',')) {
      s.skip_whitespace();
      continue;
    }
    if (s.consume('}')) return {};
    return fail(not_json());
  }
}

class Inspector {
 public:
  Inspector(std::string_view body, RequestFacts* facts) : s_(body), f_(*facts) {}

  Result<void> run() {
    s_.skip_whitespace();
    if (s_.peek() != '{') {
      if (!is_valid_json(s_.text())) return fail(not_json());
      return fail(invalid("", "request body must be a JSON object"));
    }
    EditAnchors& a = f_.anchors;
    auto root =
        walk_object(s_, 0, &a.root_insert, &a.root_empty,
                    [this](std::string_view key, size_t depth) { return member(key, depth); });
    if (!root) return root;
    s_.skip_whitespace();
    if (!s_.at_end()) return fail(not_json());
    a.valid = true;
    return {};
  }

  // The body's "model", if it names one.
  const std::optional<std::string>& body_model() const { return body_model_; }

 private:
  // Marks `key` seen in the object whose seen-set is *seen; refuses a second sighting.
  static Result<void> once(uint32_t* seen, Key bit, std::string_view key) {
    if (*seen & bit) {
      return fail(invalid(key, "\"" + std::string(key) + "\" appears twice in the request body"));
    }
    *seen |= bit;
    return {};
  }

  Key root_key(std::string_view key) const {
    const RequestApi api = f_.api;
    if (key == "model") return kModel;
    if (key == "stream" && f_.dialect != UsageDialect::kGemini) return kStream;
    switch (api) {
      case RequestApi::kChatCompletions:
        if (key == "max_tokens") return kMaxTokens;
        if (key == "max_completion_tokens") return kMaxCompletionTokens;
        if (key == "n") return kN;
        if (key == "stream_options") return kStreamOptions;
        break;
      case RequestApi::kCompletions:
        if (key == "max_tokens") return kMaxTokens;
        if (key == "n") return kN;
        if (key == "best_of") return kBestOf;
        if (key == "stream_options") return kStreamOptions;
        break;
      case RequestApi::kResponses:
        if (key == "max_output_tokens") return kMaxOutputTokens;
        if (key == "previous_response_id") return kPreviousResponseId;
        if (key == "conversation") return kConversation;
        if (key == "prompt") return kPrompt;
        break;
      case RequestApi::kAnthropicMessages:
      case RequestApi::kCohereChat:
        if (key == "max_tokens") return kMaxTokens;
        break;
      case RequestApi::kCohereGenerate:
        if (key == "max_tokens") return kMaxTokens;
        if (key == "num_generations") return kNumGenerations;
        break;
      case RequestApi::kAnthropicComplete:
        if (key == "max_tokens_to_sample") return kMaxTokensToSample;
        break;
      case RequestApi::kGeminiGenerate:
        if (key == "generationConfig" || key == "generation_config") return kGenerationConfig;
        if (key == "cachedContent" || key == "cached_content") return kCachedContent;
        break;
      default:
        break;
    }
    return kNone;
  }

  Result<void> member(std::string_view key, size_t depth) {
    const Key which = root_key(key);
    if (which == kNone) return skip(depth);
    if (auto ok = once(&root_seen_, which, key); !ok) return ok;
    switch (which) {
      case kModel: {
        std::string_view raw;
        if (s_.peek() != '"') {
          if (!s_.skip_value(depth)) return fail(not_json());
          return fail(invalid(key, "\"model\" must be a string"));
        }
        if (!s_.read_string(&raw)) return fail(not_json());
        body_model_ =
            raw.find('\\') == std::string_view::npos ? std::string(raw) : decode_json_string(raw);
        return {};
      }
      case kStream: {
        const char first = s_.peek();
        if (auto ok = skip(depth); !ok) return ok;
        if (first == 't') f_.streaming = true;
        if (first != 't' && first != 'f' && first != 'n') {
          return fail(invalid(key, "\"stream\" must be a boolean"));
        }
        return {};
      }
      case kMaxTokens:
      case kMaxCompletionTokens:
      case kMaxOutputTokens:
      case kMaxTokensToSample:
        return cap(key, depth);
      case kN:
      case kBestOf:
      case kNumGenerations:
        return choices(key, depth);
      case kStreamOptions:
        return stream_options(key, depth);
      case kGenerationConfig:
        return generation_config(key, depth);
      default:  // stored-context references
        if (s_.peek() != 'n') f_.stored_context = true;
        return skip(depth);
    }
  }

  Result<void> skip(size_t depth) {
    if (!s_.skip_value(depth)) return fail(not_json());
    return {};
  }

  Result<void> cap(std::string_view key, size_t depth) {
    const size_t begin = s_.pos();
    auto value = read_count(s_, key, depth, 0);
    if (!value) return fail(value.error());
    // Duplicates are refused, so a request names at most two caps (chat: both spellings).
    if (cap_spans_ < 2) f_.anchors.caps[cap_spans_++] = BodySpan{begin, s_.pos()};
    if (*value) f_.max_output_tokens = std::max(f_.max_output_tokens.value_or(0), **value);
    return {};
  }

  Result<void> choices(std::string_view key, size_t depth) {
    auto value = read_count(s_, key, depth, 1);
    if (!value) return fail(value.error());
    if (*value) f_.choices = std::max(f_.choices, **value);
    return {};
  }

  Result<void> stream_options(std::string_view key, size_t depth) {
    EditAnchors& a = f_.anchors;
    const size_t begin = s_.pos();
    if (s_.peek() == 'n') {
      if (auto ok = skip(depth); !ok) return ok;
      a.stream_options = BodySpan{begin, s_.pos()};
      return {};
    }
    if (s_.peek() != '{') {
      if (!s_.skip_value(depth)) return fail(not_json());
      return fail(invalid(key, "\"stream_options\" must be an object"));
    }
    uint32_t seen = 0;
    auto walked = walk_object(s_, depth, &a.stream_options_insert, &a.stream_options_empty,
                              [&](std::string_view inner, size_t inner_depth) -> Result<void> {
                                if (inner != "include_usage") return skip(inner_depth);
                                if (auto ok = once(&seen, kIncludeUsage, inner); !ok) return ok;
                                const size_t value_begin = s_.pos();
                                if (auto ok = skip(inner_depth); !ok) return ok;
                                a.include_usage = BodySpan{value_begin, s_.pos()};
                                return {};
                              });
    if (!walked) return walked;
    a.stream_options = BodySpan{begin, s_.pos()};
    return {};
  }

  Result<void> generation_config(std::string_view key, size_t depth) {
    EditAnchors& a = f_.anchors;
    const size_t begin = s_.pos();
    if (s_.peek() == 'n') {
      if (auto ok = skip(depth); !ok) return ok;
      a.generation_config = BodySpan{begin, s_.pos()};
      return {};
    }
    if (s_.peek() != '{') {
      if (!s_.skip_value(depth)) return fail(not_json());
      return fail(invalid(key, "\"" + std::string(key) + "\" must be an object"));
    }
    uint32_t seen = 0;
    auto walked = walk_object(s_, depth, &a.generation_config_insert, &a.generation_config_empty,
                              [&](std::string_view inner, size_t inner_depth) -> Result<void> {
                                if (inner == "maxOutputTokens" || inner == "max_output_tokens") {
                                  if (auto ok = once(&seen, kMaxOutputTokens, inner); !ok)
                                    return ok;
                                  return cap(inner, inner_depth);
                                }
                                if (inner == "candidateCount" || inner == "candidate_count") {
                                  if (auto ok = once(&seen, kCandidateCount, inner); !ok) return ok;
                                  return choices(inner, inner_depth);
                                }
                                return skip(inner_depth);
                              });
    if (!walked) return walked;
    a.generation_config = BodySpan{begin, s_.pos()};
    return {};
  }

  JsonScanner s_;
  RequestFacts& f_;
  uint32_t root_seen_ = 0;
  size_t cap_spans_ = 0;
  std::optional<std::string> body_model_;
};

}  // namespace

bool produces_output(RequestApi api) {
  switch (api) {
    case RequestApi::kChatCompletions:
    case RequestApi::kCompletions:
    case RequestApi::kResponses:
    case RequestApi::kAnthropicMessages:
    case RequestApi::kAnthropicComplete:
    case RequestApi::kGeminiGenerate:
    case RequestApi::kCohereChat:
    case RequestApi::kCohereGenerate:
      return true;
    default:
      return false;
  }
}

ChatCapField chat_cap_field_for(std::string_view provider_name) {
  return provider_name == "openai" ? ChatCapField::kMaxCompletionTokens : ChatCapField::kMaxTokens;
}

Result<InspectedRequest> inspect_request(UsageDialect dialect, std::string_view path,
                                         std::string_view method, std::string_view body) {
  InspectedRequest inspected;
  RequestFacts& facts = inspected.facts_;
  path = path.substr(0, path.find('?'));
  while (path.size() > 1 && path.back() == '/') path.remove_suffix(1);
  facts.api = classify(dialect, path, &facts.dialect);
  if (facts.dialect == UsageDialect::kGemini) {
    auto model = gemini_path_model(path);
    if (!model) return fail(model.error());
    facts.model = std::move(*model);
    if (facts.api == RequestApi::kGeminiGenerate && path.ends_with(":streamGenerateContent")) {
      facts.streaming = true;
    }
  }
  facts.body_bytes = body.size();
  if (body.empty() || method == "GET" || method == "HEAD") return inspected;
  if (facts.api == RequestApi::kUnknown) {
    size_t first = body.find_first_not_of(" \t\r\n");
    if (first == std::string_view::npos || body[first] != '{') return inspected;
  }

  inspected.original_ = body;
  Inspector inspector(body, &facts);
  if (auto ran = inspector.run(); !ran) return fail(ran.error());
  if (inspector.body_model() && facts.model.empty()) {
    std::string_view model = *inspector.body_model();
    if (facts.dialect == UsageDialect::kGemini && model.starts_with("models/")) {
      model.remove_prefix(7);
    }
    facts.model = std::string(model);
  }
  return inspected;
}

Result<std::string> rewrite_request(const RequestFacts& facts, std::string_view body,
                                    const RequestEdits& edits) {
  if (body.size() != facts.body_bytes) {
    return fail(Error::internal("rewrite_request: the body is not the one inspected"));
  }
  struct Splice {
    size_t begin;
    size_t end;
    std::string text;
  };
  std::vector<Splice> splices;
  std::vector<std::string> root_members;
  const EditAnchors& a = facts.anchors;
  const bool has_root = a.valid;
  if (!has_root && (edits.max_output_tokens || edits.include_stream_usage)) {
    return fail(Error::internal("rewrite_request: the body was not read; it cannot be edited"));
  }

  if (edits.max_output_tokens) {
    if (*edits.max_output_tokens < 0 || !produces_output(facts.api) || !has_root) {
      return fail(Error::internal("rewrite_request: this request has no output cap to set"));
    }
    const std::string n = std::to_string(*edits.max_output_tokens);
    std::string_view field;
    switch (facts.api) {
      case RequestApi::kChatCompletions:
        field = edits.chat_cap_field == ChatCapField::kMaxCompletionTokens ? "max_completion_tokens"
                                                                           : "max_tokens";
        break;
      case RequestApi::kResponses:
        field = "max_output_tokens";
        break;
      case RequestApi::kAnthropicComplete:
        field = "max_tokens_to_sample";
        break;
      case RequestApi::kGeminiGenerate:
        field = "maxOutputTokens";
        break;
      default:
        field = "max_tokens";
        break;
    }
    bool named = false;
    for (const BodySpan& span : a.caps) {
      if (!span.present()) continue;
      splices.push_back({span.begin, span.end, n});
      named = true;
    }
    if (!named) {
      std::string member = "\"" + std::string(field) + "\":" + n;
      if (facts.api != RequestApi::kGeminiGenerate) {
        root_members.push_back(std::move(member));
      } else if (!a.generation_config.present()) {
        root_members.push_back("\"generationConfig\":{" + member + "}");
      } else if (body[a.generation_config.begin] == '{') {
        splices.push_back({a.generation_config_insert, a.generation_config_insert,
                           (a.generation_config_empty ? "" : ",") + member});
      } else {  // null
        splices.push_back({a.generation_config.begin, a.generation_config.end, "{" + member + "}"});
      }
    }
  }

  if (edits.include_stream_usage && has_root &&
      (facts.api == RequestApi::kChatCompletions || facts.api == RequestApi::kCompletions)) {
    constexpr std::string_view kMember = "\"include_usage\":true";
    if (!a.stream_options.present()) {
      root_members.push_back("\"stream_options\":{" + std::string(kMember) + "}");
    } else if (body[a.stream_options.begin] != '{') {  // null
      splices.push_back(
          {a.stream_options.begin, a.stream_options.end, "{" + std::string(kMember) + "}"});
    } else if (a.include_usage.present()) {
      std::string_view current =
          body.substr(a.include_usage.begin, a.include_usage.end - a.include_usage.begin);
      if (current != "true")
        splices.push_back({a.include_usage.begin, a.include_usage.end, "true"});
    } else {
      splices.push_back({a.stream_options_insert, a.stream_options_insert,
                         (a.stream_options_empty ? "" : ",") + std::string(kMember)});
    }
  }

  if (!root_members.empty()) {
    std::string text = a.root_empty ? "" : ",";
    for (size_t i = 0; i < root_members.size(); ++i) {
      if (i > 0) text += ',';
      text += root_members[i];
    }
    splices.push_back({a.root_insert, a.root_insert, std::move(text)});
  }

  std::stable_sort(splices.begin(), splices.end(),
                   [](const Splice& x, const Splice& y) { return x.begin < y.begin; });
  size_t extra = 0;
  for (const Splice& sp : splices) extra += sp.text.size();
  std::string out;
  out.reserve(body.size() + extra);
  size_t cursor = 0;
  for (const Splice& sp : splices) {
    if (sp.begin < cursor || sp.end > body.size()) {
      return fail(Error::internal("rewrite_request: overlapping edits"));
    }
    out.append(body.substr(cursor, sp.begin - cursor));
    out.append(sp.text);
    cursor = sp.end;
  }
  out.append(body.substr(cursor));
  return out;
}

bool InspectedRequest::apply(const RequestEdits& edits) {
  auto edited = rewrite_request(facts_, original_, edits);
  if (!edited) return false;
  edits_ = edits;
  modified_ = *edited != original_;
  body_ = modified_ ? std::move(*edited) : std::string();
  return true;
}

bool InspectedRequest::set_max_output_tokens(int64_t n, ChatCapField chat_cap_field) {
  if (n < 0 || original_.empty() || !produces_output(facts_.api)) return false;
  RequestEdits edits = edits_;
  edits.max_output_tokens = n;
  edits.chat_cap_field = chat_cap_field;
  if (!apply(edits)) return false;
  facts_.max_output_tokens = n;
  return true;
}

bool InspectedRequest::ensure_stream_usage() {
  if (original_.empty() ||
      (facts_.api != RequestApi::kChatCompletions && facts_.api != RequestApi::kCompletions)) {
    return false;
  }
  RequestEdits edits = edits_;
  edits.include_stream_usage = true;
  return apply(edits);
}

Result<std::string> set_max_output_tokens(UsageDialect dialect, std::string_view path,
                                          std::string_view body, int64_t n,
                                          ChatCapField chat_cap_field) {
  auto inspected = inspect_request(dialect, path, "POST", body);
  if (!inspected) return fail(inspected.error());
  if (!inspected->set_max_output_tokens(n, chat_cap_field)) {
    return fail(Error::internal("set_max_output_tokens: this request has no output cap to set"));
  }
  return inspected->modified() ? inspected->body() : std::string(body);
}

Result<std::string> ensure_stream_usage(std::string_view body) {
  auto inspected = inspect_request(UsageDialect::kOpenAi, "/v1/chat/completions", "POST", body);
  if (!inspected) return fail(inspected.error());
  inspected->ensure_stream_usage();
  return inspected->modified() ? inspected->body() : std::string(body);
}

}  // namespace till
