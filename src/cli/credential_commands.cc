// `till credential add|list|show|rotate|remove`: provider keys in the server's vault, over HTTP.
// The secret goes from an environment variable or stdin into a request body and nowhere else: not
// argv, not stdout, not an error message.
#include <algorithm>
#include <boost/json/serialize.hpp>
#include <chrono>
#include <iostream>
#include <string>

#include "cli/api_client.h"
#include "cli/commands.h"
#include "cli/json_display.h"
#include "cli/secret_input.h"
#include "cli/table.h"
#include "core/time_text.h"
#include "core/url.h"

namespace till {
namespace {

namespace json = boost::json;

std::string credential_target(const std::string& name) {
  return "/api/v1/credentials/" + percent_encode(name);
}

// The time from `since` (RFC 3339) to `now` in its largest whole unit: "3d", "5h", "12m", "40s";
// "-" when `since` is absent or not a timestamp.
std::string age_of(const json::value* since, Timestamp now) {
  if (since == nullptr || !since->is_string()) return "-";
  auto t = parse_rfc3339(since->as_string(), "time");
  if (!t) return "-";
  const int64_t seconds = std::max<int64_t>(0, (now - *t) / std::chrono::seconds(1));
  if (seconds >= 86'400) return std::to_string(seconds / 86'400) + "d";
  if (seconds >= 3'600) return std::to_string(seconds / 3'600) + "h";
  if (seconds >= 60) return std::to_string(seconds / 60) + "m";
  return std::to_string(seconds) + "s";
}

// When the credential is due for rotation, "(overdue)" appended once that time has passed.
std::string due_of(const json::value& credential, Timestamp now) {
  const json::value* due = json_at(credential, "rotation_due_at");
  std::string out = cell_text(due);
  if (due != nullptr && due->is_string()) {
    if (auto t = parse_rfc3339(due->as_string(), "rotation_due_at"); t && *t <= now) {
      out += " (overdue)";
    }
  }
  return out;
}

// The time the secret was last set: rotated_at, or created_at for one never rotated.
const json::value* secret_set_at(const json::value& credential) {
  const json::value* rotated = json_at(credential, "rotated_at");
  return rotated != nullptr && !rotated->is_null() ? rotated : json_at(credential, "created_at");
}

std::string key_count_of(const json::value& credential) {
  if (const json::value* n = json_at(credential, "key_count"); n != nullptr && !n->is_null()) {
    return cell_text(n);
  }
  const json::value* keys = json_at(credential, "keys");
  return keys != nullptr && keys->is_array() ? std::to_string(keys->as_array().size()) : "-";
}

void print_credential(const json::value& credential) {
  const Timestamp now = system_clock().now();
  std::string keys;
  if (const json::value* list = json_at(credential, "keys"); list != nullptr && list->is_array()) {
    for (const auto& k : list->as_array()) keys += (keys.empty() ? "" : ", ") + cell_text(&k);
  }
  Table table({"FIELD", "VALUE"});
  table.add_row({"name", cell_text(json_at(credential, "name"))});
  table.add_row({"provider", cell_text(json_at(credential, "provider"))});
  table.add_row({"created_at", cell_text(json_at(credential, "created_at"))});
  table.add_row({"rotated_at", cell_text(json_at(credential, "rotated_at"))});
  table.add_row({"age", age_of(secret_set_at(credential), now)});
  table.add_row({"rotate_every", cell_text(json_at(credential, "rotate_every"))});
  table.add_row({"rotation_due_at", due_of(credential, now)});
  table.add_row({"master_key_version", cell_text(json_at(credential, "master_key_version"))});
  table.add_row({"keys", key_count_of(credential) + (keys.empty() ? "" : "  (" + keys + ")")});
  table.print(std::cout);
}

// Prints the record (or its JSON) on stdout and `summary` on stderr.
int print_result(const json::value& credential, bool as_json, const std::string& summary) {
  if (as_json) {
    std::cout << json::serialize(credential) << std::endl;
    return kExitOk;
  }
  print_credential(credential);
  if (!summary.empty()) std::cerr << "till: " << summary << "\n";
  return kExitOk;
}

}  // namespace

int run_credential_add(const CredentialAddOptions& o) {
  auto secret = read_secret({.option = "--secret",
                             .field = "secret",
                             .env = o.secret_env,
                             .from_stdin = o.secret_stdin,
                             .default_env = provider_key_env(o.provider)});
  if (!secret) return report_error(secret.error());
  json::object body{{"name", o.name}, {"provider", o.provider}, {"secret", std::move(*secret)}};
  if (o.rotate_every) body["rotate_every"] = *o.rotate_every;
  auto added =
      ApiClient::from_environment().call("POST", "/api/v1/credentials", json::serialize(body));
  if (!added) return report_error(added.error());
  return print_result(*added, o.json,
                      "added credential " + o.name + " for " + o.provider +
                          "; use it with `till key create --provider " + o.provider +
                          " --credential " + o.name + "`");
}

int run_credential_list(const CredentialListOptions& o) {
  auto listed = ApiClient::from_environment().call("GET", "/api/v1/credentials");
  if (!listed) return report_error(listed.error());
  if (o.json) {
    std::cout << json::serialize(*listed) << std::endl;
    return kExitOk;
  }
  const Timestamp now = system_clock().now();
  const json::value* credentials = json_at(*listed, "credentials");
  size_t count = 0;
  Table table({"NAME", "PROVIDER", "AGE", "KEYS", "ROTATION DUE"});
  if (credentials != nullptr && credentials->is_array()) {
    for (const auto& c : credentials->as_array()) {
      table.add_row({cell_text(json_at(c, "name")), cell_text(json_at(c, "provider")),
                     age_of(secret_set_at(c), now), key_count_of(c), due_of(c, now)});
      ++count;
    }
  }
  table.print(std::cout);
  std::cerr << "till: " << count << (count == 1 ? " credential" : " credentials") << "\n";
  return kExitOk;
}

int run_credential_show(const CredentialNameOptions& o) {
  auto credential = ApiClient::from_environment().call("GET", credential_target(o.name));
  if (!credential) return report_error(credential.error());
  return print_result(*credential, o.json, "");
}

int run_credential_rotate(const CredentialRotateOptions& o) {
  ApiClient client = ApiClient::from_environment();
  // The current record names the provider, whose usual variable is the default secret source;
  // asking first also reports an unknown name before stdin is read.
  auto current = client.call("GET", credential_target(o.name));
  if (!current) return report_error(current.error());
  auto secret =
      read_secret({.option = "--secret",
                   .field = "secret",
                   .env = o.secret_env,
                   .from_stdin = o.secret_stdin,
                   .default_env = provider_key_env(cell_text(json_at(*current, "provider")))});
  if (!secret) return report_error(secret.error());
  auto rotated = client.call("PUT", credential_target(o.name),
                             json::serialize(json::object{{"secret", std::move(*secret)}}));
  if (!rotated) return report_error(rotated.error());
  return print_result(*rotated, o.json,
                      "rotated credential " + o.name + "; its " + key_count_of(*rotated) +
                          " key(s) send the new secret from their next request");
}

int run_credential_remove(const CredentialRemoveOptions& o) {
  auto removed = ApiClient::from_environment().call(
      "DELETE", credential_target(o.name) + (o.force ? "?force=true" : ""));
  if (!removed) {
    Error error = removed.error();
    if (error.code == ErrorCode::kConflict && !o.force &&
        error.message.find("--force") == std::string::npos) {
      error.message += " (use --force)";
    }
    return report_error(error);
  }
  return print_result(*removed, o.json, "removed credential " + o.name);
}

}  // namespace till
