#include "provider/pricing.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <limits>
#include <string>

#include "provider/provider_table.h"

namespace till {
namespace {

constexpr int64_t kMax = std::numeric_limits<int64_t>::max();

const ModelPrice* builtin_find(std::string_view provider, std::string_view model) {
  return PricingTable::builtin().find(provider, model);
}

ModelPrice price_of(int64_t input, int64_t output, int64_t cached = -1, int64_t write = -1) {
  ModelPrice p;
  p.input_per_mtok = input;
  p.output_per_mtok = output;
  p.cached_input_per_mtok = cached < 0 ? input : cached;
  p.cache_write_per_mtok = write < 0 ? input : write;
  p.max_output_tokens = 1000;
  return p;
}

TokenUsage usage(int64_t input, int64_t output, int64_t cached = 0, int64_t written = 0) {
  TokenUsage u;
  u.input_tokens = input;
  u.output_tokens = output;
  u.cached_input_tokens = cached;
  u.cache_write_tokens = written;
  return u;
}

// ---------------------------------------------------------------------------------------------
// The built-in table

TEST(PricingBuiltin, ParsesAndCoversEveryProvider) {
  const PricingTable& table = PricingTable::builtin();
  EXPECT_GE(table.model_count(), 80u);
  EXPECT_FALSE(table.updated().empty());
  for (const ProviderInfo& provider : all_providers()) {
    EXPECT_GE(table.model_count(provider.name), 3u) << provider.name;
  }
}

TEST(PricingBuiltin, EveryModelHasPricesAndAnOutputCap) {
  for (const PricedModel& m : PricingTable::builtin().models()) {
    const std::string name = m.provider + "/" + m.id;
    EXPECT_GT(m.price.input_per_mtok, 0) << name;
    EXPECT_LE(m.price.cached_input_per_mtok, m.price.input_per_mtok) << name;
    if (m.price.kind == ModelKind::kText) {
      EXPECT_GT(m.price.output_per_mtok, 0) << name;
      EXPECT_GT(m.price.max_output_tokens, 0) << name;
    } else {
      EXPECT_EQ(m.price.output_per_mtok, 0) << name;
    }
    if (m.price.context_window > 0) {
      EXPECT_LE(m.price.max_output_tokens, m.price.context_window) << name;
    }
    // Every listed id and alias finds this very model.
    EXPECT_EQ(builtin_find(m.provider, m.id), &m.price) << name;
    for (const std::string& alias : m.aliases) {
      EXPECT_EQ(builtin_find(m.provider, alias), &m.price) << name << " alias " << alias;
    }
  }
}

TEST(PricingBuiltin, KnownPricesInNanoDollarsPerMillion) {
  const ModelPrice* mini = builtin_find("openai", "gpt-4o-mini");
  ASSERT_NE(mini, nullptr);
  EXPECT_EQ(mini->input_per_mtok, 150'000'000);
  EXPECT_EQ(mini->cached_input_per_mtok, 75'000'000);
  EXPECT_EQ(mini->output_per_mtok, 600'000'000);
  EXPECT_EQ(mini->max_output_tokens, 16384);
  EXPECT_EQ(mini->context_window, 128000);

  // Anthropic's 5-minute cache write is 1.25x input.
  const ModelPrice* sonnet = builtin_find("anthropic", "claude-sonnet-4-6");
  ASSERT_NE(sonnet, nullptr);
  EXPECT_EQ(sonnet->input_per_mtok, 3'000'000'000);
  EXPECT_EQ(sonnet->cache_write_per_mtok, 3'750'000'000);
  EXPECT_EQ(sonnet->cached_input_per_mtok, 300'000'000);

  // Tiered prices record the higher tier: Gemini 2.5 Pro above 200k tokens.
  const ModelPrice* pro = builtin_find("google", "gemini-2.5-pro");
  ASSERT_NE(pro, nullptr);
  EXPECT_EQ(pro->input_per_mtok, 2'500'000'000);
  EXPECT_EQ(pro->output_per_mtok, 15'000'000'000);

  // Unpublished cached price defaults to the input price (an upper bound).
  const ModelPrice* grok = builtin_find("xai", "grok-4.7");
  ASSERT_NE(grok, nullptr);
  EXPECT_EQ(grok->cached_input_per_mtok, grok->input_per_mtok);
}

// ---------------------------------------------------------------------------------------------
// Lookup

TEST(PricingLookup, ExactIdAndAlias) {
  const ModelPrice* mini = builtin_find("openai", "gpt-4o-mini");
  ASSERT_NE(mini, nullptr);
  EXPECT_EQ(builtin_find("openai", "gpt-4o-mini-2024-07-18"), mini);
  EXPECT_EQ(builtin_find("anthropic", "claude-haiku-4-5-20251001"),
            builtin_find("anthropic", "claude-haiku-4-5"));
}

TEST(PricingLookup, NeverMatchesByPrefix) {
  const ModelPrice* mini = builtin_find("openai", "gpt-4o-mini");
  const ModelPrice* full = builtin_find("openai", "gpt-4o");
  ASSERT_NE(mini, nullptr);
  ASSERT_NE(full, nullptr);
  EXPECT_NE(mini, full);
  EXPECT_NE(mini->input_per_mtok, full->input_per_mtok);
  for (const char* unknown : {"gpt-4o-mini-foo", "gpt-4o-m", "gpt", "gpt-4o-mini ", "GPT-4O-MINI",
                              "", "gpt-4o-mini-2024", "gpt-4o-mini:extended", "o3-mini-high"}) {
    EXPECT_EQ(builtin_find("openai", unknown), nullptr) << unknown;
  }
  EXPECT_EQ(builtin_find("nosuchprovider", "gpt-4o-mini"), nullptr);
  EXPECT_EQ(builtin_find("groq", "gpt-4o-mini"), nullptr);
}

TEST(PricingLookup, StripsOneVersionSuffix) {
  const ModelPrice* nano = builtin_find("openai", "gpt-4.1-nano");
  EXPECT_EQ(builtin_find("openai", "gpt-4.1-nano-2099-01-01"), nano);
  EXPECT_EQ(builtin_find("anthropic", "claude-3-5-haiku-20991231"),
            builtin_find("anthropic", "claude-3-5-haiku"));
  EXPECT_EQ(builtin_find("anthropic", "claude-sonnet-4-5@20250929"),
            builtin_find("anthropic", "claude-sonnet-4-5"));
  EXPECT_EQ(builtin_find("anthropic", "claude-3-7-sonnet-latest"),
            builtin_find("anthropic", "claude-3-7-sonnet"));
  EXPECT_EQ(builtin_find("google", "gemini-2.0-flash-001"),
            builtin_find("google", "gemini-2.0-flash"));
  EXPECT_EQ(builtin_find("cohere", "command-r-08-2024"), builtin_find("cohere", "command-r"));
  EXPECT_EQ(builtin_find("xai", "grok-3-latest"), builtin_find("xai", "grok-3"));

  // An exact entry wins over stripping: the May 2024 gpt-4o snapshot costs twice as much.
  const ModelPrice* may = builtin_find("openai", "gpt-4o-2024-05-13");
  ASSERT_NE(may, nullptr);
  EXPECT_EQ(may->input_per_mtok, 5'000'000'000);

  // Only one suffix, only version-shaped ones; four digits are not stripped (Mistral snapshots
  // differ in price).
  EXPECT_EQ(builtin_find("openai", "gpt-4.1-nano-2099-01-01-latest"), nullptr);
  EXPECT_EQ(builtin_find("openai", "gpt-4.1-nano-0101"), nullptr);
  EXPECT_EQ(builtin_find("openai", "gpt-4.1-nano-19990101"), nullptr);
  EXPECT_EQ(builtin_find("openai", "gpt-4.1-nano-12"), nullptr);
  EXPECT_EQ(builtin_find("openai", "@2024"), nullptr);
  EXPECT_EQ(builtin_find("openai", "-latest"), nullptr);
}

TEST(PricingLookup, OpenRouterFallsBackToTheVendorTable) {
  EXPECT_EQ(builtin_find("openrouter", "openai/gpt-4o-mini"),
            builtin_find("openai", "gpt-4o-mini"));
  EXPECT_EQ(builtin_find("openrouter", "anthropic/claude-sonnet-4.5"),
            builtin_find("anthropic", "claude-sonnet-4-5"));
  EXPECT_EQ(builtin_find("openrouter", "google/gemini-2.5-flash"),
            builtin_find("google", "gemini-2.5-flash"));
  EXPECT_EQ(builtin_find("openrouter", "x-ai/grok-4"), builtin_find("xai", "grok-4-0709"));
  EXPECT_EQ(builtin_find("openrouter", "mistralai/mistral-large-2411"),
            builtin_find("mistral", "mistral-large-2411"));
  EXPECT_EQ(builtin_find("openrouter", "openai/gpt-4.1-2099-01-01"),
            builtin_find("openai", "gpt-4.1"));
  EXPECT_NE(builtin_find("openrouter", "openai/gpt-4o-mini"), nullptr);

  // OpenRouter's own entries come first.
  const ModelPrice* oss = builtin_find("openrouter", "openai/gpt-oss-120b");
  ASSERT_NE(oss, nullptr);
  EXPECT_EQ(builtin_find("openai", "gpt-oss-120b"), nullptr);
  EXPECT_NE(builtin_find("openrouter", "meta-llama/llama-3.3-70b-instruct"), nullptr);

  for (const char* unknown : {"openrouter/auto", "openai/gpt-4o:extended", "nosuch/gpt-4o", "x-ai/",
                              "/gpt-4o", "gpt-4o-mini", "openai/gpt-4o-mini-foo"}) {
    EXPECT_EQ(builtin_find("openrouter", unknown), nullptr) << unknown;
  }
  // Only OpenRouter ids are vendor-qualified.
  EXPECT_EQ(builtin_find("together", "openai/gpt-4o-mini"), nullptr);
}

// ---------------------------------------------------------------------------------------------
// Costs

TEST(PricingCost, RoundsUpToTheNextNanoDollar) {
  EXPECT_EQ(cost_of(price_of(150'000'000, 0), usage(1, 0)).nanos(), 150);
  EXPECT_EQ(cost_of(price_of(75'000'000, 0), usage(1, 0)).nanos(), 75);
  EXPECT_EQ(cost_of(price_of(37'500'000, 0), usage(1, 0)).nanos(), 38);  // 37.5
  EXPECT_EQ(cost_of(price_of(37'500'000, 0), usage(2, 0)).nanos(), 75);
  EXPECT_EQ(cost_of(price_of(1, 0), usage(1, 0)).nanos(), 1);  // 1e-6 of a nano-dollar
  EXPECT_EQ(cost_of(price_of(0, 600'000'000), usage(0, 3)).nanos(), 1'800);
  EXPECT_EQ(cost_of(price_of(150'000'000, 600'000'000), usage(0, 0)).nanos(), 0);
  // The rounding is of the whole sum, not of each part: 0.5 + 0.5 nano-dollars is 1.
  EXPECT_EQ(cost_of(price_of(500'000, 500'000), usage(1, 1)).nanos(), 1);
}

TEST(PricingCost, CachedAndCacheWriteTokens) {
  const ModelPrice* sonnet = builtin_find("anthropic", "claude-sonnet-4-6");
  ASSERT_NE(sonnet, nullptr);
  // 500 uncached * $3 + 400 cached * $0.30 + 100 written * $3.75 + 10 output * $15, per Mtok.
  EXPECT_EQ(cost_of(*sonnet, usage(1000, 10, 400, 100)).nanos(),
            (500 * 3'000'000'000LL + 400 * 300'000'000LL + 100 * 3'750'000'000LL +
             10 * 15'000'000'000LL) /
                1'000'000);
  EXPECT_EQ(cost_of(*sonnet, usage(1000, 10, 400, 100)).nanos(), 2'145'000);

  // Reasoning tokens are part of output and cost the output price.
  TokenUsage reasoning = usage(0, 100);
  reasoning.reasoning_tokens = 90;
  EXPECT_EQ(cost_of(*sonnet, reasoning).nanos(), 1'500'000);

  // Inconsistent metering is still charged in full: cached beyond input is billed as cached.
  EXPECT_EQ(cost_of(price_of(1'000'000'000, 0, 100'000'000), usage(10, 0, 20)).nanos(), 2'000);
  // Negative counts count as nothing.
  EXPECT_EQ(cost_of(price_of(1'000'000'000, 1'000'000'000), usage(-5, -5, -5, -5)).nanos(), 0);
}

TEST(PricingCost, LargeCountsAreExactAndSaturateInsteadOfWrapping) {
  // A trillion tokens at $150/Mtok is $150M = 1.5e17 nano-dollars, exactly.
  EXPECT_EQ(cost_of(price_of(150'000'000'000, 0), usage(1'000'000'000'000, 0)).nanos(),
            150'000'000'000'000'000);
  const ModelPrice huge = price_of(1'000'000'000'000'000'000, 1'000'000'000'000'000'000);
  EXPECT_EQ(cost_of(huge, usage(kMax, kMax, kMax / 2, kMax / 2)).nanos(), kMax);
  EXPECT_EQ(worst_case_cost(huge, kMax, kMax).nanos(), kMax);
  // ceil(2 * (2^63 - 1) / 1e6), computed without overflow.
  EXPECT_EQ(worst_case_cost(price_of(1, 1), kMax, kMax).nanos(), 18'446'744'073'710);
  EXPECT_EQ(affordable_output_tokens(price_of(1, 1), 0, Money::from_nanos(kMax)), kMax);
}

TEST(PricingCost, WorstCaseChargesAllInputAtTheHighestInputRate) {
  const ModelPrice* sonnet = builtin_find("anthropic", "claude-sonnet-4-6");
  ASSERT_NE(sonnet, nullptr);
  // Cache writes (3.75) cost more than fresh input (3.00): every input token may be a write.
  EXPECT_EQ(worst_case_cost(*sonnet, 1000, 100).nanos(), 3'750'000 + 1'500'000);
  const ModelPrice* mini = builtin_find("openai", "gpt-4o-mini");
  ASSERT_NE(mini, nullptr);
  EXPECT_EQ(worst_case_cost(*mini, 1000, 100).nanos(), 150'000 + 60'000);
  EXPECT_EQ(worst_case_cost(price_of(37'500'000, 0), 1, 0).nanos(), 38);
  EXPECT_EQ(worst_case_cost(price_of(37'500'000, 0), -1, -1).nanos(), 0);
  // Never below the metered cost of the same token counts.
  EXPECT_GE(worst_case_cost(*sonnet, 1000, 10), cost_of(*sonnet, usage(1000, 10, 400, 100)));
}

TEST(PricingCost, AffordableOutputTokensIsExactAtTheBoundary) {
  const ModelPrice prices[] = {
      price_of(150'000'000, 600'000'000),
      price_of(37'500'000, 150'000'000, 10'000'000, 46'875'000),
      price_of(3'000'000'000, 15'000'000'000, 300'000'000, 3'750'000'000),
      price_of(1, 7),
      price_of(999'999'999, 1'000'000'001),
      *builtin_find("openai", "o1-pro"),
  };
  const int64_t inputs[] = {0, 1, 7, 1000, 123'457, 10'000'000};
  const int64_t budgets[] = {
      0, 1, 37, 999, 1'000'000, 123'456'789, 5'000'000'000, 1'000'000'000'007};
  for (const ModelPrice& p : prices) {
    for (int64_t input : inputs) {
      for (int64_t nanos : budgets) {
        const Money budget = Money::from_nanos(nanos);
        const int64_t n = affordable_output_tokens(p, input, budget);
        SCOPED_TRACE(testing::Message() << "input " << input << " budget " << nanos << " n " << n);
        if (worst_case_cost(p, input, 0) > budget) {
          EXPECT_EQ(n, 0);
          continue;
        }
        EXPECT_LE(worst_case_cost(p, input, n), budget);
        EXPECT_GT(worst_case_cost(p, input, n + 1), budget);
      }
    }
  }
}

TEST(PricingCost, AffordableOutputTokensEdgeCases) {
  const ModelPrice p = price_of(0, 600'000'000);  // 600 nano-dollars per output token
  EXPECT_EQ(affordable_output_tokens(p, 0, Money::from_nanos(1000)), 1);
  EXPECT_EQ(affordable_output_tokens(p, 0, Money::from_nanos(1200)), 2);
  EXPECT_EQ(affordable_output_tokens(p, 0, Money::from_nanos(599)), 0);
  EXPECT_EQ(affordable_output_tokens(p, 0, Money::from_nanos(-1)), 0);
  // The input alone exceeds the budget.
  EXPECT_EQ(affordable_output_tokens(price_of(1'000'000'000, 1), 10, Money::from_nanos(9'999)), 0);
  // Free output: anything fits once the input does.
  const ModelPrice embedding = price_of(100'000'000, 0);
  EXPECT_EQ(affordable_output_tokens(embedding, 10, Money::from_nanos(1'000)), kMax);
  EXPECT_EQ(affordable_output_tokens(embedding, 100, Money::from_nanos(1)), 0);
}

// ---------------------------------------------------------------------------------------------
// Parsing

std::string file_with_model(std::string_view model_json, std::string_view provider = "openai") {
  return R"({"version": 1, "updated": "2026-12-04", "providers": {")" + std::string(provider) +
         R"(": {"source": "test", "models": {"m": )" + std::string(model_json) + "}}}}";
}

void expect_error(std::string_view json, std::string_view field, std::string_view words) {
  auto table = PricingTable::parse(json, "test.json");
  ASSERT_FALSE(table) << json;
  EXPECT_EQ(table.error().code, ErrorCode::kInvalidRequest);
  EXPECT_EQ(table.error().field, field) << table.error().message;
  EXPECT_TRUE(table.error().message.starts_with("test.json: " + std::string(field) + ": "))
      << table.error().message;
  EXPECT_NE(table.error().message.find(words), std::string::npos) << table.error().message;
}

TEST(PricingParse, AcceptsAMinimalFileWithDefaults) {
  auto table = PricingTable::parse(
      file_with_model(R"({"input": "0.0375", "output": "1", "max_output_tokens": 10})"), "t");
  ASSERT_TRUE(table) << table.error().message;
  EXPECT_EQ(table->model_count(), 1u);
  EXPECT_EQ(table->updated(), "2026-12-04");
  const ModelPrice* m = table->find("openai", "m");
  ASSERT_NE(m, nullptr);
  EXPECT_EQ(m->input_per_mtok, 37'500'000);
  EXPECT_EQ(m->cached_input_per_mtok, 37'500'000);
  EXPECT_EQ(m->cache_write_per_mtok, 37'500'000);
  EXPECT_EQ(m->output_per_mtok, 1'000'000'000);
  EXPECT_EQ(m->context_window, 0);
  EXPECT_EQ(m->kind, ModelKind::kText);

  auto embedding = PricingTable::parse(
      file_with_model(R"({"kind": "embedding", "input": "0.02", "output": "0"})"), "t");
  ASSERT_TRUE(embedding) << embedding.error().message;
  EXPECT_EQ(embedding->find("openai", "m")->max_output_tokens, 0);
  EXPECT_EQ(embedding->find("openai", "m")->kind, ModelKind::kEmbedding);
}

TEST(PricingParse, RefusesBadPrices) {
  const std::string field = "providers.openai.models.m.output";
  for (const char* bad : {R"("0.1.5")", R"("-1")", R"("")", R"("1e3")", R"("0.0000000001")",
                          R"(" 1")", R"("$1")", R"("1,5")", R"(".5")"}) {
    SCOPED_TRACE(bad);
    expect_error(
        file_with_model(std::string(R"({"input": "1", "max_output_tokens": 1, "output": )") + bad +
                        "}"),
        field, field);
  }
  expect_error(file_with_model(R"({"input": "1", "output": 0.15, "max_output_tokens": 1})"), field,
               "decimal string");
  expect_error(file_with_model(R"({"input": "1", "output": null, "max_output_tokens": 1})"), field,
               "decimal string");
  expect_error(
      file_with_model(
          R"({"input": "1", "output": "1", "cached_input": "-0.5", "max_output_tokens": 1})"),
      "providers.openai.models.m.cached_input", "non-negative");
}

TEST(PricingParse, RefusesMissingAndUnknownFields) {
  expect_error(file_with_model(R"({"input": "1", "max_output_tokens": 1})"),
               "providers.openai.models.m.output", "is required");
  expect_error(file_with_model(R"({"output": "1", "max_output_tokens": 1})"),
               "providers.openai.models.m.input", "is required");
  expect_error(file_with_model(R"({"input": "1", "output": "1"})"),
               "providers.openai.models.m.max_output_tokens", "required");
  expect_error(
      file_with_model(R"({"input": "1", "output": "1", "max_output_tokens": 1, "inptu": "1"})"),
      "providers.openai.models.m.inptu", "unknown field");
  expect_error(R"({"version": 1, "updated": "2026-12-04", "providers": {}, "extra": 1})", "extra",
               "unknown field");
  expect_error(
      R"({"version": 1, "updated": "2026-12-04", "providers": {"openai": {"models": {}}}})",
      "providers.openai.source", "is required");
  expect_error(
      R"({"version": 1, "updated": "2026-12-04",
          "providers": {"openai": {"source": "s", "models": {}, "x": 1}}})",
      "providers.openai.x", "unknown field");
}

TEST(PricingParse, RefusesBadStructure) {
  const std::string ok_model = R"({"input": "1", "output": "1", "max_output_tokens": 1})";
  expect_error(file_with_model(ok_model, "x-ai"), "providers.x-ai", "unknown provider");
  expect_error("{not json", "(file)", "not valid JSON");
  expect_error("[]", "(file)", "object");
  expect_error(R"({"version": 2, "updated": "2026-12-04", "providers": {}})", "version", "1");
  expect_error(R"({"version": 1, "updated": "yesterday", "providers": {}})", "updated", "date");
  expect_error(R"({"version": 1, "updated": "2026-12-04"})", "providers", "object");
  expect_error(file_with_model(R"({"input": "1", "output": "1", "max_output_tokens": 0})"),
               "providers.openai.models.m.max_output_tokens", "whole number");
  expect_error(file_with_model(R"({"input": "1", "output": "1", "max_output_tokens": 1.5})"),
               "providers.openai.models.m.max_output_tokens", "whole number");
  expect_error(file_with_model(
                   R"({"input": "1", "output": "1", "max_output_tokens": 9, "context_window": 8})"),
               "providers.openai.models.m.max_output_tokens", "exceeds context_window");
  expect_error(
      file_with_model(R"({"input": "1", "output": "1", "max_output_tokens": 1, "kind": "chat"})"),
      "providers.openai.models.m.kind", "embedding");
  expect_error(
      file_with_model(R"({"input": "1", "output": "1", "max_output_tokens": 1, "aliases": "a"})"),
      "providers.openai.models.m.aliases", "array");
  expect_error(file_with_model(
                   R"({"input": "1", "output": "1", "max_output_tokens": 1, "aliases": ["a b"]})"),
               "providers.openai.models.m.aliases[0]", "model id");
}

TEST(PricingParse, RefusesIdsThatNameTwoModels) {
  const std::string head =
      R"({"version": 1, "updated": "2026-12-04",
          "providers": {"openai": {"source": "s", "models": {)";
  const std::string m = R"("input": "1", "output": "1", "max_output_tokens": 1)";
  expect_error(
      head + R"("a": {)" + m + R"(, "aliases": ["x"]}, "b": {)" + m + R"(, "aliases": ["x"]}}}}})",
      "providers.openai.models.b.aliases", "\"x\" names more than one model");
  expect_error(head + R"("a": {)" + m + R"(, "aliases": ["b"]}, "b": {)" + m + R"(}}}}})",
               "providers.openai.models.a.aliases", "\"b\"");
  expect_error(head + R"("a": {)" + m + R"(, "aliases": ["a"]}}}}})",
               "providers.openai.models.a.aliases", "\"a\"");
  expect_error(head + R"("a": {)" + m + R"(, "aliases": ["y", "y"]}}}}})",
               "providers.openai.models.a.aliases", "\"y\"");
  // The same id at two providers is fine.
  auto table = PricingTable::parse(
      R"({"version": 1, "updated": "2026-12-04",
          "providers": {"groq": {"source": "s", "models": {"a": {)" +
          m + R"(}}}, "together": {"source": "s", "models": {"a": {)" + m + "}}}}}",
      "t");
  ASSERT_TRUE(table) << table.error().message;
  EXPECT_EQ(table->model_count(), 2u);
}

// ---------------------------------------------------------------------------------------------
// --pricing FILE

class PricingFile : public testing::Test {
 protected:
  std::string write(const std::string& text) {
    path_ = testing::TempDir() + "till_pricing_test_" + std::to_string(::getpid()) + "_" +
            std::to_string(counter_++) + ".json";
    std::ofstream(path_) << text;
    return path_;
  }
  void TearDown() override {
    if (!path_.empty()) std::filesystem::remove(path_);
  }

 private:
  std::string path_;
  int counter_ = 0;
};

TEST_F(PricingFile, MergesOverTheBuiltInTable) {
  const std::string path = write(R"({"version": 1, "updated": "2027-01-01", "providers": {
      "openai": {"source": "ours", "models": {
        "gpt-4o-mini": {"input": "1", "output": "2", "max_output_tokens": 100},
        "my-model": {"input": "0.5", "output": "0.5", "max_output_tokens": 10,
                     "aliases": ["gpt-4.1"]}}}}})");
  auto table = PricingTable::load_file(path);
  ASSERT_TRUE(table) << table.error().message;
  const PricingTable& builtin = PricingTable::builtin();
  EXPECT_EQ(table->model_count(), builtin.model_count() + 1);
  EXPECT_EQ(table->updated(), "2027-01-01");

  // The file's model replaces the built-in one, aliases and all: the dated id now reaches the
  // new price through suffix stripping.
  ASSERT_NE(table->find("openai", "gpt-4o-mini"), nullptr);
  EXPECT_EQ(table->find("openai", "gpt-4o-mini")->input_per_mtok, 1'000'000'000);
  EXPECT_EQ(table->find("openai", "gpt-4o-mini-2024-07-18")->input_per_mtok, 1'000'000'000);
  EXPECT_EQ(table->find("openai", "my-model")->max_output_tokens, 10);
  // A file alias shadows a built-in name.
  EXPECT_EQ(table->find("openai", "gpt-4.1"), table->find("openai", "my-model"));
  // Everything else is the built-in table.
  EXPECT_EQ(table->find("openai", "gpt-4o")->input_per_mtok,
            builtin.find("openai", "gpt-4o")->input_per_mtok);
  EXPECT_NE(table->find("anthropic", "claude-haiku-4-5"), nullptr);
  EXPECT_EQ(table->find("openrouter", "openai/gpt-4o-mini")->input_per_mtok, 1'000'000'000);
}

TEST_F(PricingFile, CanReplaceTheBuiltInTable) {
  const std::string path = write(R"({"version": 1, "updated": "2027-01-01", "replace_builtin": true,
      "providers": {"openai": {"source": "ours", "models": {
        "gpt-4o-mini": {"input": "1", "output": "2", "max_output_tokens": 100}}}}})");
  auto table = PricingTable::load_file(path);
  ASSERT_TRUE(table) << table.error().message;
  EXPECT_EQ(table->model_count(), 1u);
  EXPECT_EQ(table->find("openai", "gpt-4o"), nullptr);
}

TEST_F(PricingFile, ErrorsNameTheFile) {
  const std::string path = write(R"({"version": 1, "updated": "2027-01-01", "providers": {
      "openai": {"source": "ours", "models": {
        "m": {"input": "1", "output": "x", "max_output_tokens": 1}}}}})");
  auto table = PricingTable::load_file(path);
  ASSERT_FALSE(table);
  EXPECT_TRUE(table.error().message.starts_with(path + ": providers.openai.models.m.output: "))
      << table.error().message;

  auto missing = PricingTable::load_file(testing::TempDir() + "no/such/pricing.json");
  ASSERT_FALSE(missing);
  EXPECT_NE(missing.error().message.find("no/such/pricing.json"), std::string::npos);
}

}  // namespace
}  // namespace till
