#include "provider/usage_meter.h"

#include <algorithm>
#include <array>
#include <boost/json/basic_parser_impl.hpp>
#include <cmath>
#include <exception>
#include <string>
#include <vector>

#include "provider/sse_parser.h"

namespace till {
namespace {

using boost::json::error_code;
using boost::json::string_view;

// The numbers a usage object may carry, as read (before the dialect's arithmetic).
enum Field : uint8_t {
  kIn,              // prompt_tokens, input_tokens, promptTokenCount
  kOut,             // completion_tokens, output_tokens, candidatesTokenCount
  kTotal,           // total_tokens, totalTokenCount
  kCached,          // *_tokens_details.cached_tokens, cachedContentTokenCount
  kCacheHit,        // DeepSeek prompt_cache_hit_tokens
  kCacheRead,       // Anthropic cache_read_input_tokens
  kCacheWrite,      // Anthropic cache_creation_input_tokens
  kReasoning,       // *_tokens_details.reasoning_tokens, thoughtsTokenCount
  kReasoningApart,  // a usage-level reasoning_tokens, not part of completion_tokens
  kToolIn,          // Gemini toolUsePromptTokenCount
  kTokensIn,        // Cohere tokens.input_tokens
  kTokensOut,       // Cohere tokens.output_tokens
  kBilledIn,        // Cohere billed_units.input_tokens
  kBilledOut,       // Cohere billed_units.output_tokens
  kFieldCount,
  kNoField = kFieldCount,
};

// Where in a response document the parser stands, for the objects that matter; everything else is
// skipped without being tracked.
enum class Node : uint8_t {
  kSkip,
  kRoot,          // a document (or an element of a top-level array)
  kRootArray,     // a top-level array of documents (Gemini streamGenerateContent without SSE)
  kWrap,          // an object that may hold a usage object: response, x_groq, message, delta
  kUsage,         // a usage object
  kUsageOpening,  // Anthropic message_start's message.usage: not final on its own
  kInDetails,     // OpenAI prompt_tokens_details / input_tokens_details
  kOutDetails,    // OpenAI completion_tokens_details / output_tokens_details
  kCohereTokens,  // Cohere usage.tokens
  kCohereBilled,  // Cohere usage.billed_units
};

bool is_usage(Node node) { return node == Node::kUsage || node == Node::kUsageOpening; }

// The node of the object under `key` in an object at `parent`.
Node child_node(UsageDialect dialect, Node parent, std::string_view key) {
  switch (dialect) {
    case UsageDialect::kOpenAi:
      if (parent == Node::kRoot) {
        if (key == "usage") return Node::kUsage;
        if (key == "response" || key == "x_groq") return Node::kWrap;
      } else if (parent == Node::kWrap) {
        if (key == "usage") return Node::kUsage;
      } else if (parent == Node::kUsage) {
        if (key == "prompt_tokens_details" || key == "input_tokens_details") {
          return Node::kInDetails;
        }
        if (key == "completion_tokens_details" || key == "output_tokens_details") {
          return Node::kOutDetails;
        }
      }
      break;
    case UsageDialect::kAnthropic:
      if (parent == Node::kRoot) {
        if (key == "usage") return Node::kUsage;
        if (key == "message") return Node::kWrap;
      } else if (parent == Node::kWrap) {
        if (key == "usage") return Node::kUsageOpening;
      }
      break;
    case UsageDialect::kGemini:
      if (parent == Node::kRoot && key == "usageMetadata") return Node::kUsage;
      break;
    case UsageDialect::kCohere:
      if (parent == Node::kRoot || parent == Node::kWrap) {
        if (key == "usage" || key == "meta") return Node::kUsage;
        if (parent == Node::kRoot && (key == "delta" || key == "response")) return Node::kWrap;
      } else if (parent == Node::kUsage) {
        if (key == "tokens") return Node::kCohereTokens;
        if (key == "billed_units") return Node::kCohereBilled;
      }
      break;
  }
  return Node::kSkip;
}

// The field a number under `key` in an object at `parent` sets.
Field field_of(UsageDialect dialect, Node parent, std::string_view key) {
  switch (dialect) {
    case UsageDialect::kOpenAi:
      if (parent == Node::kUsage) {
        if (key == "prompt_tokens" || key == "input_tokens") return kIn;
        if (key == "completion_tokens" || key == "output_tokens") return kOut;
        if (key == "total_tokens") return kTotal;
        if (key == "prompt_cache_hit_tokens") return kCacheHit;
        if (key == "reasoning_tokens") return kReasoningApart;
      } else if (parent == Node::kInDetails) {
        if (key == "cached_tokens") return kCached;
      } else if (parent == Node::kOutDetails) {
        if (key == "reasoning_tokens") return kReasoning;
      }
      break;
    case UsageDialect::kAnthropic:
      if (is_usage(parent)) {
        if (key == "input_tokens") return kIn;
        if (key == "output_tokens") return kOut;
        if (key == "cache_read_input_tokens") return kCacheRead;
        if (key == "cache_creation_input_tokens") return kCacheWrite;
      }
      break;
    case UsageDialect::kGemini:
      if (parent == Node::kUsage) {
        if (key == "promptTokenCount") return kIn;
        if (key == "candidatesTokenCount") return kOut;
        if (key == "totalTokenCount") return kTotal;
        if (key == "cachedContentTokenCount") return kCached;
        if (key == "thoughtsTokenCount") return kReasoning;
        if (key == "toolUsePromptTokenCount") return kToolIn;
      }
      break;
    case UsageDialect::kCohere:
      if (parent == Node::kCohereTokens) {
        if (key == "input_tokens") return kTokensIn;
        if (key == "output_tokens") return kTokensOut;
      } else if (parent == Node::kCohereBilled) {
        if (key == "input_tokens") return kBilledIn;
        if (key == "output_tokens") return kBilledOut;
      }
      break;
  }
  return kNoField;
}

// The numbers of one usage object, or of several merged.
struct Record {
  std::array<int64_t, kFieldCount> value;  // -1: absent
  bool closing = false;                    // Anthropic: a usage that ends the message
  bool garbage = false;                    // a count was negative, absurd or not a number

  Record() { value.fill(-1); }
  bool empty() const {
    return !garbage && std::all_of(value.begin(), value.end(), [](int64_t v) { return v < 0; });
  }
  bool has(Field f) const { return value[f] >= 0; }
  int64_t get(Field f) const { return std::max<int64_t>(value[f], 0); }
};

// Combines `next` into `into`: Anthropic's event usages are cumulative views of one message, merged
// field by field; every other dialect's latest usage object supersedes the ones before it.
void merge(UsageDialect dialect, Record& into, const Record& next) {
  if (dialect != UsageDialect::kAnthropic) {
    into = next;
    return;
  }
  for (size_t i = 0; i < kFieldCount; ++i) into.value[i] = std::max(into.value[i], next.value[i]);
  into.closing = into.closing || next.closing;
  into.garbage = into.garbage || next.garbage;
}

// Collects the usage objects of the documents of one response. Records of a document are staged
// until the document (or top-level array element) has parsed completely, then committed.
class Collector {
 public:
  explicit Collector(UsageDialect dialect) : dialect_(dialect) {}

  UsageDialect dialect() const { return dialect_; }

  void begin_record(bool closing) {
    current_ = Record();
    current_.closing = closing;
  }
  void set(Field field, int64_t value) { current_.value[field] = value; }
  void set_garbage() { current_.garbage = true; }
  void end_record() {
    if (current_.empty()) return;
    if (!has_staged_) {
      staged_ = current_;
      has_staged_ = true;
    } else {
      merge(dialect_, staged_, current_);
    }
  }

  void commit() {
    if (!has_staged_) return;
    if (!has_committed_) {
      committed_ = staged_;
      has_committed_ = true;
    } else {
      merge(dialect_, committed_, staged_);
    }
    garbage_ = garbage_ || staged_.garbage;
    has_staged_ = false;
  }
  void discard() { has_staged_ = false; }

  std::optional<TokenUsage> result() const;

 private:
  UsageDialect dialect_;
  Record current_;
  Record staged_;
  bool has_staged_ = false;
  Record committed_;
  bool has_committed_ = false;
  bool garbage_ = false;  // sticky: one garbage count makes the response's usage unreliable
};

std::optional<TokenUsage> Collector::result() const {
  if (!has_committed_ || garbage_) return std::nullopt;
  const Record& r = committed_;
  TokenUsage u;
  switch (dialect_) {
    case UsageDialect::kOpenAi: {
      u.input_tokens = r.get(kIn);
      u.cached_input_tokens = r.has(kCached) ? r.get(kCached) : r.get(kCacheHit);
      u.output_tokens = r.get(kOut);
      if (r.has(kReasoning)) {
        u.reasoning_tokens = r.get(kReasoning);
      } else if (r.has(kReasoningApart)) {
        u.reasoning_tokens = r.get(kReasoningApart);
        u.output_tokens += u.reasoning_tokens;
      }
      if (r.has(kTotal)) {
        u.output_tokens = std::max(u.output_tokens, r.get(kTotal) - u.input_tokens);
      }
      break;
    }
    case UsageDialect::kAnthropic:
      if (!r.closing) return std::nullopt;  // message_start only: the output is still unknown
      u.cached_input_tokens = r.get(kCacheRead);
      u.cache_write_tokens = r.get(kCacheWrite);
      u.input_tokens = r.get(kIn) + u.cached_input_tokens + u.cache_write_tokens;
      u.output_tokens = r.get(kOut);
      break;
    case UsageDialect::kGemini:
      u.input_tokens = r.get(kIn) + r.get(kToolIn);
      u.cached_input_tokens = r.get(kCached);
      u.reasoning_tokens = r.get(kReasoning);
      u.output_tokens = r.get(kOut) + u.reasoning_tokens;
      if (r.has(kTotal)) {
        u.output_tokens = std::max(u.output_tokens, r.get(kTotal) - u.input_tokens);
      }
      break;
    case UsageDialect::kCohere:
      // billed_units is what Cohere charges; tokens adds the prompt template Cohere inserts
      // itself and is only a fallback.
      u.input_tokens = r.has(kBilledIn) ? r.get(kBilledIn) : r.get(kTokensIn);
      u.output_tokens = r.has(kBilledOut) ? r.get(kBilledOut) : r.get(kTokensOut);
      break;
  }
  u.input_tokens = std::max(u.input_tokens, u.cached_input_tokens + u.cache_write_tokens);
  u.output_tokens = std::max(u.output_tokens, u.reasoning_tokens);
  return u;
}

// SAX handler for boost::json::basic_parser: tracks the path through the interesting objects and
// hands their numbers to the Collector. Never throws, never fails the parse itself.
class UsageHandler {
 public:
  static constexpr size_t max_object_size = size_t(-1);
  static constexpr size_t max_array_size = size_t(-1);
  static constexpr size_t max_key_size = size_t(-1);
  static constexpr size_t max_string_size = size_t(-1);

  explicit UsageHandler(Collector* collector) : collector_(collector) { stack_.reserve(8); }

  bool on_document_begin(error_code&) {
    stack_.clear();
    skip_depth_ = 0;
    key_.clear();
    key_too_long_ = false;
    child_ = Node::kSkip;
    field_ = kNoField;
    return true;
  }
  bool on_document_end(error_code&) {
    collector_->commit();
    return true;
  }

  bool on_object_begin(error_code&) { return begin_container(/*object=*/true); }
  bool on_array_begin(error_code&) { return begin_container(/*object=*/false); }
  bool on_object_end(size_t, error_code&) { return end_container(); }
  bool on_array_end(size_t, error_code&) { return end_container(); }

  bool on_key_part(string_view s, size_t, error_code&) {
    if (skip_depth_ == 0) append_key(s);
    return true;
  }
  bool on_key(string_view s, size_t, error_code&) {
    if (skip_depth_ > 0) return true;
    std::string_view key(s.data(), s.size());
    if (!key_.empty() || key_too_long_) {
      append_key(s);
      key = key_;
    }
    if (key_too_long_ || stack_.empty()) {
      child_ = Node::kSkip;
      field_ = kNoField;
    } else {
      child_ = child_node(collector_->dialect(), stack_.back(), key);
      field_ = field_of(collector_->dialect(), stack_.back(), key);
    }
    key_.clear();
    key_too_long_ = false;
    return true;
  }

  bool on_int64(int64_t i, string_view, error_code&) {
    if (i < 0) return number_garbage();
    return number(static_cast<uint64_t>(i));
  }
  bool on_uint64(uint64_t u, string_view, error_code&) { return number(u); }
  bool on_double(double d, string_view, error_code&) {
    if (!(d >= 0) || d > static_cast<double>(UsageMeter::kMaxTokenCount)) {
      return number_garbage();
    }
    return number(static_cast<uint64_t>(std::ceil(d)));
  }

  bool on_string_part(string_view, size_t, error_code&) { return true; }
  bool on_string(string_view, size_t, error_code&) { return scalar(); }
  bool on_number_part(string_view, error_code&) { return true; }
  bool on_bool(bool, error_code&) { return scalar(); }
  bool on_null(error_code&) { return scalar(); }
  bool on_comment_part(string_view, error_code&) { return true; }
  bool on_comment(string_view, error_code&) { return true; }

 private:
  // Keys that matter are short; a longer key is simply not one of them.
  static constexpr size_t kMaxKeySize = 64;

  void append_key(string_view s) {
    if (key_too_long_) return;
    if (key_.size() + s.size() > kMaxKeySize) {
      key_too_long_ = true;
      key_.clear();
      return;
    }
    key_.append(s.data(), s.size());
  }

  bool begin_container(bool object) {
    if (skip_depth_ > 0) {
      ++skip_depth_;
      return true;
    }
    Node node;
    if (stack_.empty()) {
      node = object ? Node::kRoot : Node::kRootArray;
    } else if (stack_.back() == Node::kRootArray) {
      node = object ? Node::kRoot : Node::kSkip;
    } else {
      node = object ? child_ : Node::kSkip;
    }
    child_ = Node::kSkip;
    field_ = kNoField;
    if (node == Node::kSkip) {
      skip_depth_ = 1;
      return true;
    }
    stack_.push_back(node);
    if (is_usage(node)) collector_->begin_record(/*closing=*/node == Node::kUsage);
    return true;
  }

  bool end_container() {
    if (skip_depth_ > 0) {
      --skip_depth_;
      return true;
    }
    Node node = stack_.back();
    stack_.pop_back();
    if (is_usage(node)) collector_->end_record();
    // Each element of a top-level array is a complete chunk of a stream: commit as it ends.
    if (node == Node::kRoot && !stack_.empty() && stack_.back() == Node::kRootArray) {
      collector_->commit();
    }
    return true;
  }

  bool number(uint64_t value) {
    if (skip_depth_ == 0 && field_ != kNoField) {
      if (value > static_cast<uint64_t>(UsageMeter::kMaxTokenCount)) {
        collector_->set_garbage();
      } else {
        collector_->set(field_, static_cast<int64_t>(value));
      }
    }
    return scalar();
  }
  bool number_garbage() {
    if (skip_depth_ == 0 && field_ != kNoField) collector_->set_garbage();
    return scalar();
  }
  bool scalar() {
    field_ = kNoField;
    child_ = Node::kSkip;
    return true;
  }

  Collector* collector_;
  std::vector<Node> stack_;  // the interesting objects enclosing the parser's position
  size_t skip_depth_ = 0;    // > 0: inside a skipped container this many levels deep
  std::string key_;          // a key split across writes
  bool key_too_long_ = false;
  Node child_ = Node::kSkip;  // what the value of the current key is, if an object
  Field field_ = kNoField;    // what the value of the current key sets, if a number
};

// Feeds JSON documents — one, several in a row, or one per call — to a UsageHandler.
class DocumentReader {
 public:
  explicit DocumentReader(Collector* collector)
      : collector_(collector), parser_(options(), collector) {}

  // Continues the body: a sequence of JSON documents separated by whitespace, split anywhere.
  // After a malformed document the rest of the body is ignored.
  void feed(std::string_view chunk) {
    while (!failed_ && !chunk.empty()) {
      if (!in_document_) {
        size_t start = chunk.find_first_not_of(" \t\r\n");
        if (start == std::string_view::npos) return;
        chunk.remove_prefix(start);
        parser_.reset();
        in_document_ = true;
      }
      size_t used = write(/*more=*/true, chunk);
      if (failed_) return;
      chunk.remove_prefix(used);
      if (parser_.done()) in_document_ = false;
    }
  }

  // Ends the body: a document still open is incomplete, and its usage is discarded.
  void finish() {
    if (in_document_ && !failed_) {
      write(/*more=*/false, {});
      if (!parser_.done()) collector_->discard();
    }
    in_document_ = false;
  }

  // Reads `text` as exactly one document (an event's data); its usage counts only if it parses.
  void parse_one(std::string_view text) {
    parser_.reset();
    failed_ = false;
    write(/*more=*/false, text);  // the document's usage is committed as it completes
    if (!parser_.done()) collector_->discard();
    failed_ = false;
  }

 private:
  static boost::json::parse_options options() {
    boost::json::parse_options opt;
    opt.max_depth = 256;  // deep tool-call arguments must not stop the meter
    return opt;
  }

  size_t write(bool more, std::string_view text) {
    error_code ec;
    size_t used = 0;
    try {
      used = parser_.write_some(more, text.data(), text.size(), ec);
    } catch (const std::exception&) {  // allocation failure in the parser's own stack
      ec = boost::json::error::exception;
    }
    if (ec) {
      failed_ = true;
      collector_->discard();
    }
    return used;
  }

  Collector* collector_;
  boost::json::basic_parser<UsageHandler> parser_;
  bool in_document_ = false;
  bool failed_ = false;
};

class Meter final : public UsageMeter {
 public:
  Meter(UsageDialect dialect, bool event_stream)
      : collector_(dialect),
        documents_(&collector_),
        events_([this](const SseEvent& event) { on_event(event); }, kMaxEventSize),
        mode_(event_stream ? Mode::kEvents : Mode::kUndecided) {}

  void feed(std::string_view chunk) override {
    if (mode_ == Mode::kUndecided) {
      size_t start = chunk.find_first_not_of(" \t\r\n");
      if (start == std::string_view::npos) return;
      chunk.remove_prefix(start);
      mode_ = (chunk.front() == '{' || chunk.front() == '[') ? Mode::kJson : Mode::kEvents;
    }
    if (mode_ == Mode::kJson) {
      documents_.feed(chunk);
    } else {
      events_.feed(chunk);
    }
  }

  std::optional<TokenUsage> finish() override {
    if (mode_ == Mode::kJson) documents_.finish();
    if (mode_ == Mode::kEvents) events_.finish();
    return collector_.result();
  }

  uint64_t dropped_events() const override { return events_.dropped_events(); }

 private:
  enum class Mode { kUndecided, kJson, kEvents };

  void on_event(const SseEvent& event) {
    size_t start = event.data.find_first_not_of(" \t\r\n");
    if (start == std::string_view::npos) return;
    if (event.data[start] != '{' && event.data[start] != '[')
      return;  // "[DONE]" is cheap to skip too
    if (event.data.substr(start) == "[DONE]") return;
    documents_.parse_one(event.data);
  }

  Collector collector_;
  DocumentReader documents_;
  SseParser events_;
  Mode mode_;
};

}  // namespace

std::unique_ptr<UsageMeter> make_usage_meter(UsageDialect dialect, bool event_stream) {
  return std::make_unique<Meter>(dialect, event_stream);
}

}  // namespace till
