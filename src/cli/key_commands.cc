// `till key create|list|show|revoke`: the control plane over HTTP.
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <cstdlib>
#include <iostream>
#include <string>

#include "cli/api_client.h"
#include "cli/commands.h"
#include "cli/key_body.h"
#include "cli/table.h"
#include "core/url.h"
#include "provider/provider_table.h"

namespace till {
namespace {

namespace json = boost::json;

std::string text(const json::value* v) {
  if (v == nullptr || v->is_null()) return "-";
  if (v->is_string()) return std::string(v->as_string());
  return json::serialize(*v);
}

const json::value* at(const json::value& v, std::string_view a, std::string_view b = {}) {
  if (!v.is_object()) return nullptr;
  const json::value* x = v.as_object().if_contains(a);
  if (b.empty() || x == nullptr || !x->is_object()) return b.empty() ? x : nullptr;
  return x->as_object().if_contains(b);
}

// "3/50" or "3" when unlimited.
std::string used_of(const json::value& key, std::string_view used, std::string_view limit) {
  const json::value* lim = at(key, "limits", limit);
  std::string out = text(at(key, "used", used));
  if (lim && !lim->is_null()) out += "/" + text(lim);
  return out;
}

std::string spend_of(const json::value& key) {
  const json::value* lim = at(key, "limits", "max_spend_usd");
  std::string out = "$" + text(at(key, "used", "spend_usd"));
  if (lim && !lim->is_null()) out += "/$" + text(lim);
  return out;
}

void print_key(const json::value& key) {
  Table table({"FIELD", "VALUE"});
  table.add_row({"id", text(at(key, "id"))});
  table.add_row({"name", text(at(key, "name"))});
  table.add_row({"provider", text(at(key, "provider"))});
  table.add_row({"status", text(at(key, "status"))});
  table.add_row({"created_at", text(at(key, "created_at"))});
  table.add_row({"expires_at", text(at(key, "expires_at"))});
  table.add_row({"requests", used_of(key, "requests", "max_requests") + "  (remaining " +
                                 text(at(key, "remaining", "requests")) + ")"});
  table.add_row({"tokens", used_of(key, "tokens", "max_tokens") + "  (remaining " +
                               text(at(key, "remaining", "tokens")) + ")"});
  table.add_row(
      {"spend", spend_of(key) + "  (remaining " + text(at(key, "remaining", "spend_usd")) + ")"});
  table.add_row({"models", text(at(key, "scope", "models"))});
  table.add_row({"rpm", text(at(key, "scope", "rpm"))});
  table.add_row({"max_concurrency", text(at(key, "scope", "max_concurrency"))});
  table.add_row({"allowed_cidrs", text(at(key, "scope", "allowed_cidrs"))});
  table.print(std::cout);
}

// The upstream credential, from the environment or stdin; never from argv.
Result<std::string> read_upstream_key(const KeyCreateOptions& o) {
  if (o.upstream_key_stdin) {
    std::string line;
    std::getline(std::cin, line);
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.pop_back();
    if (line.empty()) {
      return fail(Error::invalid("upstream_key", "--upstream-key-stdin: nothing on stdin"));
    }
    return line;
  }
  std::string var;
  if (o.upstream_key_env) {
    var = *o.upstream_key_env;
  } else if (const ProviderInfo* p = find_provider(o.provider)) {
    var = std::string(p->api_key_env);
  }
  const char* value = var.empty() ? nullptr : std::getenv(var.c_str());
  if (value == nullptr || *value == '\0') {
    return fail(Error::invalid(
        "upstream_key",
        (var.empty() ? std::string("no upstream key variable") : var + " is not set") +
            "; pass --upstream-key-env VAR or --upstream-key-stdin"));
  }
  return std::string(value);
}

}  // namespace

Result<json::object> key_create_body(const KeyCreateOptions& o) {
  auto upstream_key = read_upstream_key(o);
  if (!upstream_key) return fail(upstream_key.error());
  json::object body{{"provider", o.provider}, {"upstream_key", *upstream_key}};
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
  std::cerr << "till: created " << text(at(*created, "id")) << " for "
            << text(at(*created, "provider")) << ": requests "
            << used_of(*created, "requests", "max_requests") << ", tokens "
            << used_of(*created, "tokens", "max_tokens") << ", spend " << spend_of(*created)
            << ", expires " << text(at(*created, "expires_at")) << "\n";
  std::cout << text(at(*created, "key")) << std::endl;
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
    if (const json::value* keys = at(*page, "keys"); keys && keys->is_array()) {
      for (const auto& k : keys->as_array()) all.push_back(k);
    }
    const json::value* next = at(*page, "next_cursor");
    cursor = next && next->is_string() ? std::string(next->as_string()) : "";
  } while (!cursor.empty());

  if (o.json) {
    std::cout << json::serialize(json::object{{"keys", all}}) << std::endl;
    return kExitOk;
  }
  Table table({"ID", "NAME", "PROVIDER", "STATUS", "REQUESTS", "TOKENS", "SPEND", "EXPIRES"});
  for (const auto& k : all) {
    table.add_row({text(at(k, "id")), text(at(k, "name")), text(at(k, "provider")),
                   text(at(k, "status")), used_of(k, "requests", "max_requests"),
                   used_of(k, "tokens", "max_tokens"), spend_of(k), text(at(k, "expires_at"))});
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

}  // namespace till
