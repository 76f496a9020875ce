#include "api/sub_key.h"

#include <algorithm>

#include "api/json_fields.h"
#include "core/cidr.h"
#include "core/time_text.h"

namespace till {
namespace {

using json_fields::invalid;

// A count that must not exceed the parent's, inherited when absent.
Result<void> narrow_count(std::optional<int64_t>& child, const std::optional<int64_t>& parent,
                          std::string_view field) {
  if (!parent) return {};
  if (!child) {
    child = parent;
  } else if (*child > *parent) {
    return fail(invalid(field, "must be at most the parent key's " + std::string(field) + " (" +
                                   std::to_string(*parent) + ")"));
  }
  return {};
}

Result<void> narrow_cidrs(std::vector<std::string>& child, const std::vector<std::string>& parent) {
  if (parent.empty()) return {};
  if (child.empty()) {
    child = parent;
    return {};
  }
  for (const std::string& text : child) {
    auto range = Cidr::parse(text, "allowed_cidrs");
    if (!range) return fail(range.error());
    const bool inside = std::ranges::any_of(parent, [&](const std::string& allowed) {
      auto outer = Cidr::parse(allowed, "allowed_cidrs");
      return outer && outer->contains(*range);
    });
    if (!inside) {
      return fail(invalid("allowed_cidrs", text + " is not inside the parent key's addresses"));
    }
  }
  return {};
}

}  // namespace

Result<void> narrow_to_parent(NewKeySpec& spec, const KeyRecord& parent) {
  if (spec.provider.empty()) {
    spec.provider = parent.provider;
  } else if (spec.provider != parent.provider) {
    return fail(
        invalid("provider", "a sub-key uses its parent's provider (" + parent.provider + ")"));
  }
  if (parent.expires_at) {
    if (!spec.expires_at) {
      spec.expires_at = parent.expires_at;
    } else if (*spec.expires_at > *parent.expires_at) {
      return fail(invalid("expires_at", "must not be later than the parent key's expiry (" +
                                            format_rfc3339(*parent.expires_at) + ")"));
    }
  }
  if (!parent.scope.models.empty()) {
    if (spec.scope.models.empty()) spec.scope.models = parent.scope.models;
    for (const std::string& model : spec.scope.models) {
      if (std::ranges::find(parent.scope.models, model) == parent.scope.models.end()) {
        return fail(invalid("models", model + " is not allowed to the parent key"));
      }
    }
  }
  if (auto narrowed = narrow_count(spec.scope.rpm, parent.scope.rpm, "rpm"); !narrowed) {
    return narrowed;
  }
  if (auto narrowed =
          narrow_count(spec.scope.max_concurrency, parent.scope.max_concurrency, "max_concurrency");
      !narrowed) {
    return narrowed;
  }
  return narrow_cidrs(spec.scope.allowed_cidrs, parent.scope.allowed_cidrs);
}

}  // namespace till
