// `till env KEY` and `till env --create [key options]`: export lines for a shell (or a .env file)
// that point the provider's SDKs at till with a scoped key.
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <cstdlib>
#include <iostream>

#include "cli/api_client.h"
#include "cli/commands.h"
#include "cli/key_body.h"
#include "http/client.h"
#include "provider/sdk_environment.h"

namespace till {
namespace {

namespace json = boost::json;

// 'value' for a POSIX shell: single quotes, with each ' written as '\''.
std::string shell_quote(const std::string& value) {
  std::string out = "'";
  for (char c : value) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

void print_variables(const std::map<std::string, std::string>& vars, const std::string& format) {
  for (const auto& [name, value] : vars) {
    if (format == "dotenv") {
      std::cout << name << "=" << value << "\n";
    } else {
      std::cout << "export " << name << "=" << shell_quote(value) << "\n";
    }
  }
}

std::string till_url() {
  const char* url = std::getenv("TILL_URL");
  return url && *url ? url : "http://127.0.0.1:4100";
}

}  // namespace

int run_env(const EnvOptions& o) {
  std::string key = o.key;
  std::string provider_name;
  const std::string url = till_url();
  if (o.create) {
    auto body = key_create_body(o.spec);
    if (!body) return report_error(body.error());
    auto created =
        ApiClient::from_environment().call("POST", "/api/v1/keys", json::serialize(*body));
    if (!created) return report_error(created.error());
    key = std::string(created->as_object().at("key").as_string());
    provider_name = std::string(created->as_object().at("provider").as_string());
    std::cerr << "till: created " << std::string_view(created->as_object().at("id").as_string())
              << "\n";
  } else {
    if (key.empty()) {
      std::cerr << "till: give a key (till_sk_…), or --create with key options\n";
      return kExitUsage;
    }
    // The key's holder may read its own record: no admin key needed.
    auto response = http_call(url, "GET", "/api/v1/key", {{"authorization", "Bearer " + key}}, "");
    if (!response) return report_error(response.error());
    boost::system::error_code ec;
    json::value record = json::parse(response->body, ec);
    if (ec || !record.is_object()) {
      return report_error(
          Error::internal("the server at " + url + " sent a response that is not JSON"));
    }
    if (response->status != 200) {
      const json::value* error = record.as_object().if_contains("error");
      const json::value* message =
          error && error->is_object() ? error->as_object().if_contains("message") : nullptr;
      return report_error(
          Error::client(ErrorCode::kInvalidApiKey, message && message->is_string()
                                                       ? std::string(message->as_string())
                                                       : "the server refused the key"));
    }
    provider_name = std::string(record.as_object().at("provider").as_string());
  }
  const ProviderInfo* provider = find_provider(provider_name);
  if (provider == nullptr)
    return report_error(Error::internal("unknown provider " + provider_name));
  print_variables(sdk_environment(url, *provider, key), o.format);
  return kExitOk;
}

}  // namespace till
