#include "provider/pricing.h"

#include <algorithm>
#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <limits>
#include <sstream>
#include <utility>

#include "provider/provider_table.h"

namespace till {
namespace internal {
// Defined in the source generated from data/pricing.json (cmake/TillEmbed.cmake).
std::string embedded_pricing_json();
}  // namespace internal

namespace {

namespace json = boost::json;

constexpr int64_t kTokensPerMillion = 1'000'000;
constexpr int64_t kMaxTokenCount = 1'000'000'000'000;  // a sanity cap for caps and windows
constexpr size_t kMaxModelIdBytes = 200;
constexpr int64_t kMaxMoney = std::numeric_limits<int64_t>::max();

// OpenRouter's vendor prefixes that differ from till's provider names.
constexpr std::pair<std::string_view, std::string_view> kOpenRouterVendors[] = {
    {"x-ai", "xai"},
    {"mistralai", "mistral"},
};

// ---------------------------------------------------------------------------------------------
// Parsing

// Builds errors that name the file and the JSON path at fault.
class ErrorSink {
 public:
  explicit ErrorSink(std::string_view source) : source_(source) {}

  Error at(const std::string& path, std::string_view why) const {
    return Error::invalid(path, std::string(source_) + ": " + path + ": " + std::string(why));
  }
  // Rewraps an error whose message already starts with "<path>: ".
  Error wrap(Error error) const {
    error.message = std::string(source_) + ": " + error.message;
    return error;
  }

 private:
  std::string_view source_;
};

bool is_digits(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

bool is_date(std::string_view s) {
  return s.size() == 10 && s[4] == '-' && s[7] == '-' && is_digits(s.substr(0, 4)) &&
         is_digits(s.substr(5, 2)) && is_digits(s.substr(8, 2));
}

bool is_valid_model_name(std::string_view s) {
  if (s.empty() || s.size() > kMaxModelIdBytes) return false;
  for (unsigned char c : s) {
    if (c <= 0x20 || c == 0x7f) return false;  // no spaces or control characters
  }
  return true;
}

// Refuses any key of `object` not in `allowed`.
Result<void> check_keys(const json::object& object, std::initializer_list<std::string_view> allowed,
                        const std::string& path, const ErrorSink& errors) {
  for (const auto& member : object) {
    const std::string_view key = member.key();
    if (std::find(allowed.begin(), allowed.end(), key) == allowed.end()) {
      std::string list;
      for (std::string_view a : allowed) list += (list.empty() ? "" : ", ") + std::string(a);
      return fail(errors.at(path.empty() ? std::string(key) : path + "." + std::string(key),
                            "unknown field (expected one of: " + list + ")"));
    }
  }
  return {};
}

Result<int64_t> get_price(const json::value& v, const std::string& path, const ErrorSink& errors) {
  if (!v.is_string()) {
    return fail(errors.at(path,
                          "must be a decimal string of USD per million tokens such as "
                          "\"0.15\" (JSON numbers are refused: they are binary floats)"));
  }
  auto money = Money::parse_usd(std::string_view(v.get_string()), path);
  if (!money) return fail(errors.wrap(std::move(money.error())));
  return money->nanos();
}

Result<int64_t> get_count(const json::value& v, const std::string& path, const ErrorSink& errors) {
  if (!v.is_int64() || v.get_int64() < 1 || v.get_int64() > kMaxTokenCount) {
    return fail(errors.at(
        path, "must be a whole number of tokens from 1 to " + std::to_string(kMaxTokenCount)));
  }
  return v.get_int64();
}

Result<std::string> get_string(const json::value& v, const std::string& path,
                               const ErrorSink& errors) {
  if (!v.is_string() || v.get_string().empty()) {
    return fail(errors.at(path, "must be a non-empty string"));
  }
  return std::string(v.get_string());
}

Result<PricedModel> parse_model(std::string_view provider, std::string_view id,
                                const json::value& v, const std::string& path,
                                const ErrorSink& errors) {
  if (!is_valid_model_name(id)) {
    return fail(errors.at(path, "a model id must be 1 to 200 characters without spaces"));
  }
  if (!v.is_object()) return fail(errors.at(path, "must be an object"));
  const json::object& o = v.get_object();
  if (auto ok = check_keys(o,
                           {"input", "cached_input", "cache_write", "output", "max_output_tokens",
                            "context_window", "aliases", "kind", "note"},
                           path, errors);
      !ok) {
    return fail(std::move(ok.error()));
  }

  PricedModel model{std::string(provider), std::string(id), {}, {}};
  ModelPrice& price = model.price;

  if (const json::value* kind = o.if_contains("kind")) {
    if (kind->is_string() && kind->get_string() == "text") {
      price.kind = ModelKind::kText;
    } else if (kind->is_string() && kind->get_string() == "embedding") {
      price.kind = ModelKind::kEmbedding;
    } else {
      return fail(errors.at(path + ".kind", "must be \"text\" or \"embedding\""));
    }
  }

  for (std::string_view required : {"input", "output"}) {
    if (!o.contains(required)) {
      return fail(errors.at(path + "." + std::string(required), "is required"));
    }
  }
  auto input = get_price(o.at("input"), path + ".input", errors);
  if (!input) return fail(std::move(input.error()));
  price.input_per_mtok = *input;
  auto output = get_price(o.at("output"), path + ".output", errors);
  if (!output) return fail(std::move(output.error()));
  price.output_per_mtok = *output;

  price.cached_input_per_mtok = price.input_per_mtok;
  if (const json::value* cached = o.if_contains("cached_input")) {
    auto value = get_price(*cached, path + ".cached_input", errors);
    if (!value) return fail(std::move(value.error()));
    price.cached_input_per_mtok = *value;
  }
  price.cache_write_per_mtok = price.input_per_mtok;
  if (const json::value* write = o.if_contains("cache_write")) {
    auto value = get_price(*write, path + ".cache_write", errors);
    if (!value) return fail(std::move(value.error()));
    price.cache_write_per_mtok = *value;
  }

  if (const json::value* max_output = o.if_contains("max_output_tokens")) {
    auto value = get_count(*max_output, path + ".max_output_tokens", errors);
    if (!value) return fail(std::move(value.error()));
    price.max_output_tokens = *value;
  } else if (price.kind == ModelKind::kText) {
    return fail(errors.at(path + ".max_output_tokens", "is required for a text model"));
  }
  if (const json::value* window = o.if_contains("context_window")) {
    auto value = get_count(*window, path + ".context_window", errors);
    if (!value) return fail(std::move(value.error()));
    price.context_window = *value;
    if (price.max_output_tokens > price.context_window) {
      return fail(errors.at(path + ".max_output_tokens", "exceeds context_window"));
    }
  }

  if (const json::value* aliases = o.if_contains("aliases")) {
    if (!aliases->is_array()) {
      return fail(errors.at(path + ".aliases", "must be an array of model ids"));
    }
    const json::array& list = aliases->get_array();
    for (size_t i = 0; i < list.size(); ++i) {
      const std::string alias_path = path + ".aliases[" + std::to_string(i) + "]";
      if (!list[i].is_string() || !is_valid_model_name(std::string_view(list[i].get_string()))) {
        return fail(errors.at(alias_path,
                              "must be a model id of 1 to 200 characters without "
                              "spaces"));
      }
      model.aliases.emplace_back(list[i].get_string());
    }
  }
  if (const json::value* note = o.if_contains("note"); note && !note->is_string()) {
    return fail(errors.at(path + ".note", "must be a string"));
  }
  return model;
}

// ---------------------------------------------------------------------------------------------
// Lookup helpers

bool all_digits(std::string_view s, size_t from, size_t count) {
  return from + count <= s.size() && is_digits(s.substr(from, count));
}

// `model` without one trailing version suffix, or empty if it has none (see PricingTable::find).
std::string_view strip_version_suffix(std::string_view model) {
  if (size_t at = model.rfind('@'); at != std::string_view::npos && at > 0) {
    return model.substr(0, at);
  }
  auto strip = [&](size_t suffix) -> std::string_view {
    return model.size() > suffix ? model.substr(0, model.size() - suffix) : std::string_view();
  };
  if (model.ends_with("-latest")) return strip(7);
  const size_t n = model.size();
  // -YYYY-MM-DD
  if (n > 11 && model[n - 11] == '-' && all_digits(model, n - 10, 4) && model[n - 6] == '-' &&
      all_digits(model, n - 5, 2) && model[n - 3] == '-' && all_digits(model, n - 2, 2)) {
    return strip(11);
  }
  // -YYYYMMDD (a date: starts with 20)
  if (n > 9 && model[n - 9] == '-' && all_digits(model, n - 8, 8) &&
      model.substr(n - 8, 2) == "20") {
    return strip(9);
  }
  // -MM-YYYY
  if (n > 8 && model[n - 8] == '-' && all_digits(model, n - 7, 2) && model[n - 5] == '-' &&
      all_digits(model, n - 4, 4)) {
    return strip(8);
  }
  // -NNN
  if (n > 4 && model[n - 4] == '-' && all_digits(model, n - 3, 3)) return strip(4);
  return {};
}

// ---------------------------------------------------------------------------------------------
// Arithmetic

// 128-bit intermediates: token counts times prices cannot overflow (see cost_of).
__extension__ using Wide = __int128;

int64_t clamp_tokens(int64_t n) { return n < 0 ? 0 : n; }

// ceil(total / 1e6) as Money, saturated. REQUIRES: total >= 0.
Money round_up_per_million(Wide total) {
  const Wide nanos = (total + (kTokensPerMillion - 1)) / kTokensPerMillion;
  return Money::from_nanos(nanos > kMaxMoney ? kMaxMoney : static_cast<int64_t>(nanos));
}

int64_t worst_input_rate(const ModelPrice& price) {
  return std::max({price.input_per_mtok, price.cached_input_per_mtok, price.cache_write_per_mtok});
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// PricingTable

Result<PricingTable> PricingTable::parse(std::string_view text, std::string_view source_name) {
  const ErrorSink errors(source_name);
  boost::system::error_code ec;
  json::value root = json::parse(text, ec);
  if (ec) return fail(errors.at("(file)", "is not valid JSON: " + ec.message()));
  if (!root.is_object()) return fail(errors.at("(file)", "must be a JSON object"));
  const json::object& top = root.get_object();
  if (auto ok =
          check_keys(top, {"version", "updated", "schema", "notes", "providers", "replace_builtin"},
                     "", errors);
      !ok) {
    return fail(std::move(ok.error()));
  }

  const json::value* version = top.if_contains("version");
  if (!version || !version->is_int64() || version->get_int64() != 1) {
    return fail(errors.at("version", "must be 1"));
  }
  const json::value* updated = top.if_contains("updated");
  if (!updated || !updated->is_string() || !is_date(std::string_view(updated->get_string()))) {
    return fail(errors.at("updated", "must be a date such as \"2026-12-04\""));
  }
  const json::value* replace = top.if_contains("replace_builtin");
  if (replace && !replace->is_bool()) {
    return fail(errors.at("replace_builtin", "must be true or false"));
  }
  const json::value* providers = top.if_contains("providers");
  if (!providers || !providers->is_object()) {
    return fail(errors.at("providers", "must be an object keyed by provider name"));
  }

  PricingTable table;
  table.updated_ = std::string(updated->get_string());
  table.replace_builtin_ = replace && replace->get_bool();
  for (const auto& [provider_key, provider_value] : providers->get_object()) {
    const std::string_view provider = provider_key;
    const std::string path = "providers." + std::string(provider);
    if (find_provider(provider) == nullptr) {
      std::string known;
      for (const ProviderInfo& info : all_providers()) {
        known += (known.empty() ? "" : ", ") + std::string(info.name);
      }
      return fail(errors.at(path, "unknown provider (till knows " + known + ")"));
    }
    if (!provider_value.is_object()) return fail(errors.at(path, "must be an object"));
    const json::object& p = provider_value.get_object();
    if (auto ok = check_keys(p, {"source", "note", "models"}, path, errors); !ok) {
      return fail(std::move(ok.error()));
    }
    const json::value* source = p.if_contains("source");
    if (!source) return fail(errors.at(path + ".source", "is required"));
    if (auto s = get_string(*source, path + ".source", errors); !s) {
      return fail(std::move(s.error()));
    }
    if (const json::value* note = p.if_contains("note"); note && !note->is_string()) {
      return fail(errors.at(path + ".note", "must be a string"));
    }
    const json::value* models = p.if_contains("models");
    if (!models || !models->is_object()) {
      return fail(errors.at(path + ".models", "must be an object keyed by model id"));
    }

    NameIndex& names = table.index_[std::string(provider)];
    for (const auto& [model_key, model_value] : models->get_object()) {
      const std::string model_path = path + ".models." + std::string(model_key);
      auto model = parse_model(provider, model_key, model_value, model_path, errors);
      if (!model) return fail(std::move(model.error()));
      // Ids and aliases must name one model each within a provider.
      if (names.contains(model->id)) {
        return fail(errors.at(model_path, "the id is already an alias of another model"));
      }
      for (const std::string& alias : model->aliases) {
        if (alias == model->id || names.contains(alias) ||
            std::count(model->aliases.begin(), model->aliases.end(), alias) > 1 ||
            models->get_object().contains(alias)) {
          return fail(
              errors.at(model_path + ".aliases", "\"" + alias + "\" names more than one model"));
        }
      }
      table.models_.push_back(std::move(*model));
      table.index_model(table.models_.size() - 1);
    }
  }
  return table;
}

const PricingTable& PricingTable::builtin() {
  static const PricingTable table = [] {
    auto parsed = parse(internal::embedded_pricing_json(), "data/pricing.json (built in)");
    if (!parsed) {
      // The embedded file is checked by pricing_test; reaching this is a build defect.
      std::fprintf(stderr, "till: fatal: %s\n", parsed.error().message.c_str());
      std::abort();
    }
    return std::move(*parsed);
  }();
  return table;
}

Result<PricingTable> PricingTable::load_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return fail(Error::invalid("pricing", "cannot read pricing file " + path));
  }
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) return fail(Error::invalid("pricing", "cannot read pricing file " + path));
  auto overlay = parse(std::move(text).str(), path);
  if (!overlay) return fail(std::move(overlay.error()));
  if (overlay->replace_builtin_) return std::move(*overlay);
  return merge(builtin(), *overlay);
}

PricingTable PricingTable::merge(const PricingTable& base, const PricingTable& overlay) {
  PricingTable merged;
  merged.updated_ = overlay.updated_;
  merged.models_ = overlay.models_;
  for (size_t i = 0; i < merged.models_.size(); ++i) merged.index_model(i);
  for (const PricedModel& model : base.models_) {
    // A model the overlay redefines is dropped whole, aliases included.
    const bool redefined = std::any_of(
        overlay.models_.begin(), overlay.models_.end(),
        [&](const PricedModel& o) { return o.provider == model.provider && o.id == model.id; });
    if (redefined) continue;
    merged.models_.push_back(model);
    merged.index_model(merged.models_.size() - 1);
  }
  return merged;
}

void PricingTable::index_model(size_t i) {
  const PricedModel& model = models_[i];
  NameIndex& names = index_[model.provider];
  names.try_emplace(model.id, i);
  for (const std::string& alias : model.aliases) names.try_emplace(alias, i);
}

size_t PricingTable::model_count(std::string_view provider) const {
  return static_cast<size_t>(std::count_if(models_.begin(), models_.end(),
                                           [&](const auto& m) { return m.provider == provider; }));
}

const ModelPrice* PricingTable::find_exact(std::string_view provider,
                                           std::string_view model) const {
  const auto names = index_.find(provider);
  if (names == index_.end()) return nullptr;
  const auto it = names->second.find(model);
  return it == names->second.end() ? nullptr : &models_[it->second].price;
}

const ModelPrice* PricingTable::find_in_provider(std::string_view provider,
                                                 std::string_view model) const {
  if (const ModelPrice* price = find_exact(provider, model)) return price;
  if (std::string_view stripped = strip_version_suffix(model); !stripped.empty()) {
    return find_exact(provider, stripped);
  }
  return nullptr;
}

const ModelPrice* PricingTable::find(std::string_view provider, std::string_view model) const {
  if (const ModelPrice* price = find_in_provider(provider, model)) return price;
  if (provider != "openrouter") return nullptr;
  const size_t slash = model.find('/');
  if (slash == std::string_view::npos || slash == 0) return nullptr;
  std::string_view vendor = model.substr(0, slash);
  for (const auto& [openrouter_name, till_name] : kOpenRouterVendors) {
    if (vendor == openrouter_name) vendor = till_name;
  }
  if (vendor == "openrouter" || find_provider(vendor) == nullptr) return nullptr;
  return find_in_provider(vendor, model.substr(slash + 1));
}

// ---------------------------------------------------------------------------------------------
// Costs

Money cost_of(const ModelPrice& price, const TokenUsage& usage) {
  const Wide input = clamp_tokens(usage.input_tokens);
  const Wide cached = clamp_tokens(usage.cached_input_tokens);
  const Wide written = clamp_tokens(usage.cache_write_tokens);
  const Wide output = clamp_tokens(usage.output_tokens);
  const Wide uncached = std::max<Wide>(0, input - cached - written);
  // Counts are below 2^63 and prices at most 1e18 < 2^60 (parse_usd's cap), so each product is
  // below 2^123 and the sum of four below 2^125: no overflow in 128 bits.
  const Wide total = uncached * price.input_per_mtok + cached * price.cached_input_per_mtok +
                     written * price.cache_write_per_mtok + output * price.output_per_mtok;
  return round_up_per_million(total);
}

Money worst_case_cost(const ModelPrice& price, int64_t input_tokens, int64_t output_tokens) {
  const Wide total = Wide{clamp_tokens(input_tokens)} * worst_input_rate(price) +
                     Wide{clamp_tokens(output_tokens)} * price.output_per_mtok;
  return round_up_per_million(total);
}

int64_t affordable_output_tokens(const ModelPrice& price, int64_t input_tokens, Money budget) {
  if (budget.nanos() < 0) return 0;
  // worst_case_cost(n) = ceil((A + n * P) / 1e6) <= B  <=>  A + n * P <= B * 1e6 (all integers).
  const Wide limit = Wide{budget.nanos()} * kTokensPerMillion;
  const Wide input_cost = Wide{clamp_tokens(input_tokens)} * worst_input_rate(price);
  if (input_cost > limit) return 0;
  if (price.output_per_mtok <= 0) return std::numeric_limits<int64_t>::max();
  const Wide n = (limit - input_cost) / price.output_per_mtok;
  return n > std::numeric_limits<int64_t>::max() ? std::numeric_limits<int64_t>::max()
                                                 : static_cast<int64_t>(n);
}

}  // namespace till
