#include "api/credential_request.h"

#include "api/json_fields.h"

namespace till {
namespace {

using json_fields::invalid;

constexpr size_t kMaxCredentialName = 64;
constexpr std::chrono::hours kMinRotateEvery{1};

}  // namespace

bool is_credential_name(std::string_view name) {
  if (name.empty() || name.size() > kMaxCredentialName) return false;
  for (unsigned char c : name) {
    if (!std::isalnum(c) && c != '.' && c != '_' && c != '-') return false;
  }
  return true;
}

Result<NewCredentialSpec> parse_new_credential_request(std::string_view body) {
  auto parsed = json_fields::parse_object(body);
  if (!parsed) return fail(parsed.error());
  NewCredentialSpec spec;
  for (const auto& [name, value] : *parsed) {
    const std::string_view field = name;
    if (field == "name") {
      auto s = json_fields::get_string(value, field);
      if (!s) return fail(s.error());
      if (!is_credential_name(*s)) return fail(invalid(field, kCredentialNameRule));
      spec.name = std::move(*s);
    } else if (field == "provider") {
      auto s = json_fields::get_provider(value, field);
      if (!s) return fail(s.error());
      spec.provider = std::move(*s);
    } else if (field == "secret") {
      auto s = json_fields::get_secret(value, field);
      if (!s) return fail(s.error());
      spec.secret = std::move(*s);
    } else if (field == "rotate_every") {
      auto d = json_fields::get_duration(value, field, kMinRotateEvery);
      if (!d) return fail(d.error());
      spec.rotate_every = *d;
    } else {
      return fail(invalid(field,
                          "unknown field; a credential takes name, provider, secret and "
                          "rotate_every"));
    }
  }
  if (spec.name.empty()) return fail(invalid("name", "is required"));
  if (spec.provider.empty()) return fail(invalid("provider", "is required"));
  if (spec.secret.empty()) return fail(invalid("secret", "is required: the provider API key"));
  return spec;
}

Result<std::string> parse_credential_secret_request(std::string_view body) {
  auto parsed = json_fields::parse_object(body);
  if (!parsed) return fail(parsed.error());
  std::string secret;
  for (const auto& [name, value] : *parsed) {
    if (name != "secret") {
      return fail(invalid(name, "unknown field; replacing a credential takes only secret"));
    }
    auto s = json_fields::get_secret(value, name);
    if (!s) return fail(s.error());
    secret = std::move(*s);
  }
  if (secret.empty()) return fail(invalid("secret", "is required: the new provider API key"));
  return secret;
}

}  // namespace till
