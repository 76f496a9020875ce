// `till key create|list|show|revoke|rotate|suspend|resume`: the control plane over HTTP.
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <iostream>
#include <string>

#include "cli/api_client.h"
#include "cli/commands.h"
#include "cli/json_display.h"
#include "cli/key_body.h"
#include "cli/secret_input.h"
#include "cli/table.h"
#include "core/url.h"

namespace till {
namespace {

namespace json = boost::json;

// "3/50" or "3" when unlimited.
std::string used_of(const json::value& key, std::string_view used, std::string_view limit) {
  const json::value* lim = json_at(key, "limits", limit);
  std::string out = cell_text(json_at(key, "used", used));
  if (lim && !lim->is_null()) out += "/" + cell_text(lim);
  return out;
}

std::string spend_of(const json::value& key) {
  const json::value* lim = json_at(key, "limits", "max_spend_usd");
  std::string out = "$" + cell_text(json_at(key, "used", "spend_usd"));
  if (lim && !lim->is_null()) out += "/$" + cell_text(lim);
  return out;
}

void print_key(const json::value& key) {
  Table table({"FIELD", "VALUE"});
  table.add_row({"id", cell_text(json_at(key, "id"))});
  table.add_row({"name", cell_text(json_at(key, "name"))});
  table.add_row({"provider", cell_text(json_at(key, "provider"))});
  table.add_row({"status", cell_text(json_at(key, "status"))});
  table.add_row({"created_at", cell_text(json_at(key, "created_at"))});
  table.add_row({"expires_at", cell_text(json_at(key, "expires_at"))});
  table.add_row({"requests", used_of(key, "requests", "max_requests") + "  (remaining " +
                                 cell_text(json_at(key, "remaining", "requests")) + ")"});
  table.add_row({"tokens", used_of(key, "tokens", "max_tokens") + "  (remaining " +
                               cell_text(json_at(key, "remaining", "tokens")) + ")"});
  table.add_row({"spend", spend_of(key) + "  (remaining " +
                              cell_text(json_at(key, "remaining", "spend_usd")) + ")"});
  table.add_row({"models", cell_text(json_at(key, "scope", "models"))});
  table.add_row({"rpm", cell_text(json_at(key, "scope", "rpm"))});
  table.add_row({"max_concurrency", cell_text(json_at(key, "scope", "max_concurrency"))});
  table.add_row({"allowed_cidrs", cell_text(json_at(key, "scope", "allowed_cidrs"))});
  // Vault and rotation fields, from servers that have them.
  if (const json::value* credential = json_at(key, "credential")) {
    table.add_row({"credential", credential->is_null() ? "- (holds its own upstream key)"
                                                       : cell_text(credential)});
  }
  for (const char* field :
       {"rotate_every", "rotation_due_at", "rotated_at", "previous_token_valid_until"}) {
    if (const json::value* v = json_at(key, field)) table.add_row({field, cell_text(v)});
  }
  table.print(std::cout);
}

// POST /api/v1/keys/{id}/<action> (suspend, resume) and prints the record, or its JSON.
int change_key_state(const KeyIdOptions& o, std::string_view action, std::string_view done) {
  auto key = ApiClient::from_environment().call(
      "POST", "/api/v1/keys/" + percent_encode(o.id) + "/" + std::string(action));
  if (!key) return report_error(key.error());
  if (o.json) {
    std::cout << json::serialize(*key) << std::endl;
    return kExitOk;
  }
  print_key(*key);
  std::cerr << "till: " << done << " " << o.id << "; status " << cell_text(json_at(*key, "status"))
            << "\n";
  return kExitOk;
}

}  // namespace

Result<json::object> key_create_body(const KeyCreateOptions& o) {
  auto body = sub_key_body(o);
  if (!body) return fail(body.error());
  (*body)["provider"] = o.provider;
  if (o.credential) {
    (*body)["credential"] = *o.credential;
  } else {
    auto upstream_key = read_secret({.option = "--upstream-key",
                                     .field = "upstream_key",
                                     .env = o.upstream_key_env,
                                     .from_stdin = o.upstream_key_stdin,
                                     .default_env = provider_key_env(o.provider)});
    if (!upstream_key) return fail(upstream_key.error());
    (*body)["upstream_key"] = std::move(*upstream_key);
  }
  return body;
}

Result<json::object> sub_key_body(const KeyCreateOptions& o) {
  json::object body;
  if (!o.provider.empty()) body["provider"] = o.provider;
  if (o.rotate_every) body["rotate_every"] = *o.rotate_every;
  if (o.name) body["name"] = *o.name;
  if (o.max_requests) body["max_requests"] = *o.max_requests;
  if (o.max_tokens) body["max_tokens"] = *o.max_tokens;
  if (o.max_spend) body["max_spend_usd"] = *o.max_spend;
  if (o.expires_in) body["expires_in"] = *o.expires_in;
  if (o.expires_at) body["expires_at"] = *o.expires_at;
  if (o.rpm) body["rpm"] = *o.rpm;
  if (o.max_concurrency) body["max_concurrency"] = *o.max_concurrency;
  if (!o.models.empty()) body["models"] = json::array(o.models.begin(), o.models.end());
  if (!o.allowed_cidrs.empty()) {
    body["allowed_cidrs"] = json::array(o.allowed_cidrs.begin(), o.allowed_cidrs.end());
  }
  if (o.metadata) {
    boost::system::error_code ec;
    json::value metadata = json::parse(*o.metadata, ec);
    if (ec || !metadata.is_object()) {
      return fail(Error::invalid(
          "metadata", "--metadata must be a JSON object, such as '{\"team\":\"research\"}'"));
    }
    body["metadata"] = std::move(metadata);
  }
  return body;
}

int run_key_create(const KeyCreateOptions& o) {
  auto body = key_create_body(o);
  if (!body) return report_error(body.error());
  auto created = ApiClient::from_environment().call("POST", "/api/v1/keys", json::serialize(*body));
  if (!created) return report_error(created.error());
  if (o.json) {
    std::cout << json::serialize(*created) << std::endl;
    return kExitOk;
  }
  std::cerr << "till: created " << cell_text(json_at(*created, "id")) << " for "
            << cell_text(json_at(*created, "provider")) << ": requests "
            << used_of(*created, "requests", "max_requests") << ", tokens "
            << used_of(*created, "tokens", "max_tokens") << ", spend " << spend_of(*created)
            << ", expires " << cell_text(json_at(*created, "expires_at")) << "\n";
  std::cout << cell_text(json_at(*created, "key")) << std::endl;
  return kExitOk;
}

int run_key_list(const KeyListOptions& o) {
  ApiClient client = ApiClient::from_environment();
  json::array all;
  std::string cursor;
  do {
    std::string target = "/api/v1/keys?limit=1000";
    if (o.status) target += "&status=" + percent_encode(*o.status);
    if (o.provider) target += "&provider=" + percent_encode(*o.provider);
    if (o.name) target += "&name=" + percent_encode(*o.name);
    if (!cursor.empty()) target += "&cursor=" + percent_encode(cursor);
    auto page = client.call("GET", target);
    if (!page) return report_error(page.error());
    if (const json::value* keys = json_at(*page, "keys"); keys && keys->is_array()) {
      for (const auto& k : keys->as_array()) all.push_back(k);
    }
    const json::value* next = json_at(*page, "next_cursor");
    cursor = next && next->is_string() ? std::string(next->as_string()) : "";
  } while (!cursor.empty());

  if (o.json) {
    std::cout << json::serialize(json::object{{"keys", all}}) << std::endl;
    return kExitOk;
  }
  Table table({"ID", "NAME", "PROVIDER", "STATUS", "REQUESTS", "TOKENS", "SPEND", "EXPIRES"});
  for (const auto& k : all) {
    table.add_row({cell_text(json_at(k, "id")), cell_text(json_at(k, "name")),
                   cell_text(json_at(k, "provider")), cell_text(json_at(k, "status")),
                   used_of(k, "requests", "max_requests"), used_of(k, "tokens", "max_tokens"),
                   spend_of(k), cell_text(json_at(k, "expires_at"))});
  }
  table.print(std::cout);
  std::cerr << "till: " << all.size() << (all.size() == 1 ? " key" : " keys") << "\n";
  return kExitOk;
}

int run_key_show(const KeyIdOptions& o) {
  auto key = ApiClient::from_environment().call("GET", "/api/v1/keys/" + percent_encode(o.id));
  if (!key) return report_error(key.error());
  if (o.json) {
    std::cout << json::serialize(*key) << std::endl;
  } else {
    print_key(*key);
  }
  return kExitOk;
}

int run_key_revoke(const KeyIdOptions& o) {
  auto key = ApiClient::from_environment().call("DELETE", "/api/v1/keys/" + percent_encode(o.id));
  if (!key) return report_error(key.error());
  if (o.json) {
    std::cout << json::serialize(*key) << std::endl;
  } else {
    print_key(*key);
    std::cerr << "till: revoked " << o.id << "; its next request is refused\n";
  }
  return kExitOk;
}

int run_key_suspend(const KeyIdOptions& o) { return change_key_state(o, "suspend", "suspended"); }

int run_key_resume(const KeyIdOptions& o) { return change_key_state(o, "resume", "resumed"); }

int run_key_rotate(const KeyRotateOptions& o) {
  ApiClient client = ApiClient::from_environment();
  const std::string target = "/api/v1/keys/" + percent_encode(o.id);
  // Whether the key holds its own (sealed) upstream key decides whether the server needs it again.
  auto current = client.call("GET", target);
  if (!current) return report_error(current.error());
  const json::value* credential = json_at(*current, "credential");
  const bool sealed = credential == nullptr || credential->is_null();
  json::object body;
  if (o.grace) body["grace"] = *o.grace;
  if (sealed) {
    auto upstream_key =
        read_secret({.option = "--upstream-key",
                     .field = "upstream_key",
                     .env = o.upstream_key_env,
                     .from_stdin = o.upstream_key_stdin,
                     .default_env = provider_key_env(cell_text(json_at(*current, "provider")))});
    if (!upstream_key) return report_error(upstream_key.error());
    body["upstream_key"] = std::move(*upstream_key);
  } else if (o.upstream_key_env || o.upstream_key_stdin) {
    const std::string name = cell_text(credential);
    return report_error(Error::invalid(
        "upstream_key", o.id + " uses the vault credential \"" + name +
                            "\", so it takes no upstream key; drop --upstream-key-" +
                            (o.upstream_key_stdin ? "stdin" : "env") +
                            " (to change the provider key, run `till credential rotate " + name +
                            "`)"));
  }
  auto rotated = client.call("POST", target + "/rotate", json::serialize(body));
  if (!rotated) return report_error(rotated.error());
  if (o.json) {
    std::cout << json::serialize(*rotated) << std::endl;
    return kExitOk;
  }
  const json::value* until = json_at(*rotated, "previous_token_valid_until");
  std::cerr << "till: rotated " << cell_text(json_at(*rotated, "id"))
            << "; the old token works until "
            << (until == nullptr || until->is_null() ? "now: it is refused from the next request"
                                                     : cell_text(until))
            << "\n";
  std::cout << cell_text(json_at(*rotated, "key")) << std::endl;
  return kExitOk;
}

}  // namespace till
