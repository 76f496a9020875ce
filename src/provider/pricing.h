// The pricing table: what each provider charges per token for each model, and the integer money
// arithmetic that turns token counts into costs.
//
// The built-in table is data/pricing.json, compiled into the binary (cmake/embed_text.cmake).
// Prices are USD per million tokens in that file and nano-dollars per million tokens here, so
// "0.15" USD/Mtok is 150'000'000. Costs always round up to the next nano-dollar, never down: a
// budget must stay an upper bound of what the provider bills.
//
// Thread-safety: a PricingTable is immutable once built; all const members may be called
// concurrently. builtin() is safe to call from any thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "provider/token_usage.h"
#include "till/error.h"
#include "till/money.h"

namespace till {

enum class ModelKind {
  kText,       // generates tokens: chat, completion, reasoning
  kEmbedding,  // consumes input only; output price 0, no output cap
};

// Nano-dollars per million tokens. cached_input and cache_write equal input when the provider
// publishes no separate rate.
struct ModelPrice {
  int64_t input_per_mtok = 0;
  int64_t cached_input_per_mtok = 0;
  int64_t cache_write_per_mtok = 0;
  int64_t output_per_mtok = 0;
  int64_t max_output_tokens = 0;  // the model's maximum output; 0 if unknown (embeddings)
  int64_t context_window = 0;     // 0 if unknown
  ModelKind kind = ModelKind::kText;
};

// One model of one provider, as listed in a pricing file.
struct PricedModel {
  std::string provider;              // a till provider name: "openai"
  std::string id;                    // the provider's model id: "gpt-4o-mini"
  std::vector<std::string> aliases;  // other ids billed the same: "gpt-4o-mini-2024-07-18"
  ModelPrice price;
};

class PricingTable {
 public:
  PricingTable() = default;

  // Parses a pricing file (the format of data/pricing.json, documented in its "schema" field and
  // in docs/pricing.md). Validation is strict: unknown fields, providers till does not know,
  // duplicate ids or aliases, prices that are not non-negative decimal strings with at most nine
  // decimals, and missing input or output prices are kInvalidRequest errors whose message names
  // `source_name` and the provider, model and field at fault, e.g.
  // "pricing.json: providers.openai.models.gpt-4o.output: must be a decimal string such as
  // \"0.15\"".
  static Result<PricingTable> parse(std::string_view json, std::string_view source_name);

  // The table compiled into the binary, parsed on first use. A built-in file that does not parse
  // is a build defect (pricing_test fails on it); the process then aborts with the parse error.
  static const PricingTable& builtin();

  // The table for `till serve --pricing FILE`: the file's models merged over builtin(). A model
  // in the file replaces the built-in model with the same id entirely (prices, caps and
  // aliases); its ids and aliases shadow built-in aliases of the same name; every other built-in
  // model stays. A file whose top level has "replace_builtin": true replaces the built-in table
  // instead. Errors: the file cannot be read (kInvalidRequest naming the path), or parse errors.
  static Result<PricingTable> load_file(const std::string& path);

  // `overlay` merged over `base` as load_file() describes.
  static PricingTable merge(const PricingTable& base, const PricingTable& overlay);

  // The price of `model` at `provider`, or nullptr if it is unpriced. Lookup order:
  //   1. an exact model id or alias of that provider;
  //   2. the id with one version suffix removed, then looked up exactly: "@…" (Vertex style),
  //      "-latest", "-YYYY-MM-DD", "-YYYYMMDD", "-MM-YYYY" or a three-digit "-NNN";
  //   3. for openrouter only, an id "vendor/model" that is still unpriced is looked up as `model`
  //      in the vendor's own table (steps 1-2), with OpenRouter's vendor names mapped to till's
  //      ("x-ai" → "xai", "mistralai" → "mistral").
  // Never a guess by prefix: "gpt-4o-mini-foo" does not match "gpt-4o-mini", nor "gpt-4o-mini"
  // "gpt-4o". Variant suffixes such as OpenRouter's ":free" or ":extended" are not stripped.
  const ModelPrice* find(std::string_view provider, std::string_view model) const;

  // Number of distinct models (aliases not counted), in all providers or in one.
  size_t model_count() const { return models_.size(); }
  size_t model_count(std::string_view provider) const;

  // Every model, in file order (for a merged table: overlay models first).
  std::span<const PricedModel> models() const { return models_; }

  // The "updated" date of the file ("2026-12-04"); for a merged table, the overlay's.
  const std::string& updated() const { return updated_; }

 private:
  struct Hash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  using NameIndex = std::unordered_map<std::string, size_t, Hash, std::equal_to<>>;

  const ModelPrice* find_exact(std::string_view provider, std::string_view model) const;
  const ModelPrice* find_in_provider(std::string_view provider, std::string_view model) const;
  // Adds model ids and aliases to index_, skipping names already present.
  void index_model(size_t i);

  std::vector<PricedModel> models_;
  std::unordered_map<std::string, NameIndex, Hash, std::equal_to<>> index_;  // provider → name
  std::string updated_;
  bool replace_builtin_ = false;  // the file asked load_file() to replace, not merge
};

// The cost of a metered usage, rounded up to the next nano-dollar:
//   ((input - cached - cache_write) * input_price + cached * cached_input_price
//    + cache_write * cache_write_price + output * output_price) / 1e6.
// Reasoning tokens are part of output_tokens. Negative counts count as 0; cached and cache-write
// tokens beyond input_tokens are still charged (the uncached part is then 0). Saturates at the
// largest Money instead of overflowing.
Money cost_of(const ModelPrice& price, const TokenUsage& usage);

// The most a request with up to `input_tokens` input and `output_tokens` output can cost: every
// input token at the highest of the input, cached-input and cache-write prices (caching is never
// guaranteed), rounded up and saturated like cost_of(). Negative counts count as 0.
Money worst_case_cost(const ModelPrice& price, int64_t input_tokens, int64_t output_tokens);

// The largest n such that worst_case_cost(price, input_tokens, n) <= budget; 0 if not even the
// input fits. If output is free, any n is affordable and the result is INT64_MAX (callers cap it
// at max_output_tokens).
int64_t affordable_output_tokens(const ModelPrice& price, int64_t input_tokens, Money budget);

}  // namespace till
