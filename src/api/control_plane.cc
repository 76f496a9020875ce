#include "api/control_plane.h"

#include <algorithm>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>

#include "api/credential_json.h"
#include "api/credential_request.h"
#include "api/key_issuer.h"
#include "api/key_json.h"
#include "api/new_key_request.h"
#include "api/request_auth.h"
#include "api/route_helpers.h"
#include "api/sub_key.h"
#include "core/token.h"
#include "core/url.h"
#include "provider/sdk_environment.h"
#include "proxy/error_response.h"
#include "proxy/key_status_change.h"

namespace till {
namespace {

namespace json = boost::json;

constexpr std::string_view kApiPrefix = "/api/v1/";
constexpr std::string_view kKeysPath = "/api/v1/keys";
constexpr std::string_view kOwnKeyPath = "/api/v1/key";
constexpr std::string_view kCredentialsPath = "/api/v1/credentials";
constexpr std::string_view kProvidersPath = "/api/v1/providers";

// Key ids are "key_" + base62; anything else cannot name a key.
bool is_key_id(std::string_view id) {
  if (!id.starts_with("key_") || id.size() > 64) return false;
  for (char c : id.substr(4)) {
    if (!std::isalnum(static_cast<unsigned char>(c))) return false;
  }
  return id.size() > 4;
}

// `path` below `prefix` + "/", split at the next "/": {"key_x", "rotate"} or {"key_x", ""}.
std::pair<std::string_view, std::string_view> split_below(std::string_view path,
                                                          std::string_view prefix) {
  std::string_view rest = path.substr(prefix.size() + 1);
  const size_t slash = rest.find('/');
  if (slash == std::string_view::npos) return {rest, {}};
  return {rest.substr(0, slash), rest.substr(slash + 1)};
}

// Store errors about a key by id, with the id in the message.
Error key_error(const Error& error, std::string_view id) {
  if (error.code == ErrorCode::kNotFound) {
    return Error::client(ErrorCode::kNotFound, "no key with id " + std::string(id));
  }
  return error;
}

}  // namespace

ControlPlane::ControlPlane(Store& store, const MasterKeyring& keyring, BudgetLedger& ledger,
                           KeyCache& keys, const Clock& clock, Options options)
    : store_(store),
      keyring_(keyring),
      ledger_(ledger),
      keys_(keys),
      clock_(clock),
      options_(options),
      auth_(store),
      vault_(store, keyring, clock) {}

bool ControlPlane::owns(std::string_view path) {
  return path.starts_with(kApiPrefix) || path == "/api/v1";
}

HttpResponse ControlPlane::handle(const HttpRequest& request) {
  const RequestTarget target = split_target(request.target);
  auto response = route(request, target.path, target.query);
  if (!response) return error_response(response.error());
  return std::move(*response);
}

Result<HttpResponse> ControlPlane::route(const HttpRequest& request, std::string_view path,
                                         std::string_view query) {
  if (path == kOwnKeyPath || path.starts_with(std::string(kOwnKeyPath) + "/")) {
    return route_own_key(request, path);
  }
  if (path == kKeysPath || path.starts_with(std::string(kKeysPath) + "/")) {
    if (auto admin = require_admin(auth_, request); !admin) return fail(admin.error());
    return route_keys(request, path, query);
  }
  if (path == kCredentialsPath || path.starts_with(std::string(kCredentialsPath) + "/")) {
    if (auto admin = require_admin(auth_, request); !admin) return fail(admin.error());
    return route_credentials(request, path, query);
  }
  if (path == kProvidersPath) {
    if (auto admin = require_admin(auth_, request); !admin) return fail(admin.error());
    if (request.method != "GET") return fail(method_not_allowed(request.method, path));
    return list_providers();
  }
  return fail(no_such_endpoint(path));
}

Result<HttpResponse> ControlPlane::route_keys(const HttpRequest& request, std::string_view path,
                                              std::string_view query) {
  const std::string_view method = request.method;
  if (path == kKeysPath) {
    if (method == "POST") return create_key(request);
    if (method == "GET") return list_keys(query);
    return fail(method_not_allowed(method, path));
  }
  const auto [id, action] = split_below(path, kKeysPath);
  if (!is_key_id(id)) return fail(no_such_endpoint(path));
  if (action.empty()) {
    if (method == "GET") return show_key(id);
    if (method == "DELETE") return change_status(id, KeyStatus::kRevoked);
    return fail(method_not_allowed(method, path));
  }
  if (action != "rotate" && action != "suspend" && action != "resume") {
    return fail(no_such_endpoint(path));
  }
  if (method != "POST") return fail(method_not_allowed(method, path));
  if (action == "rotate") return rotate_key(id, request);
  return change_status(id, action == "suspend" ? KeyStatus::kSuspended : KeyStatus::kActive);
}

Result<HttpResponse> ControlPlane::route_own_key(const HttpRequest& request,
                                                 std::string_view path) {
  const std::string_view method = request.method;
  const std::string_view action =
      path == kOwnKeyPath ? std::string_view() : path.substr(kOwnKeyPath.size() + 1);
  constexpr std::string_view kChildPrefix = "children/";
  if (action.starts_with(kChildPrefix)) {
    const std::string_view child_id = action.substr(kChildPrefix.size());
    if (!is_key_id(child_id)) return fail(no_such_endpoint(path));
    if (method != "GET" && method != "DELETE") return fail(method_not_allowed(method, path));
    auto caller = require_scoped(auth_, request, clock_.now());
    if (!caller) return fail(caller.error());
    return descendant_key(*caller, child_id, method == "DELETE");
  }
  const std::string_view wanted = action.empty() ? "GET" : "POST";
  if (!action.empty() && action != "rotate" && action != "children") {
    return fail(no_such_endpoint(path));
  }
  if (method != wanted) return fail(method_not_allowed(method, path));
  auto caller = require_scoped(auth_, request, clock_.now());
  if (!caller) return fail(caller.error());
  if (action.empty()) return own_key(*caller);
  if (action == "rotate") return rotate_own_key(*caller, request);
  return create_sub_key(*caller, request);
}

Result<HttpResponse> ControlPlane::route_credentials(const HttpRequest& request,
                                                     std::string_view path,
                                                     std::string_view query) {
  const std::string_view method = request.method;
  if (path == kCredentialsPath) {
    if (method == "POST") return add_credential(request);
    if (method == "GET") return list_credentials();
    return fail(method_not_allowed(method, path));
  }
  const auto [name, rest] = split_below(path, kCredentialsPath);
  if (!rest.empty() || !is_credential_name(name)) return fail(no_such_endpoint(path));
  if (method == "GET") return show_credential(name);
  if (method == "PUT") return replace_credential(name, request);
  if (method == "DELETE") return remove_credential(name, query);
  return fail(method_not_allowed(method, path));
}

HttpResponse ControlPlane::key_response(int status, const KeyRecord& key,
                                        const std::string* token) {
  auto live = ledger_.find_key(key.id);
  json::object body = key_to_json(live ? *live : key, clock_.now());
  if (token) body["key"] = *token;
  return json_response(status, json::serialize(body));
}

// --- Keys (admin) ----------------------------------------------------------------------------

Result<HttpResponse> ControlPlane::create_key(const HttpRequest& request) {
  const Timestamp now = clock_.now();
  auto spec = parse_new_key_request(request.body, now);
  if (!spec) return fail(spec.error());
  if (spec->credential) {
    auto credential = store_.find_credential(*spec->credential);
    if (!credential) {
      if (credential.error().code != ErrorCode::kNotFound) return fail(credential.error());
      return fail(Error::invalid("credential", "credential: there is no vault credential named " +
                                                   *spec->credential +
                                                   " (see GET /api/v1/credentials)"));
    }
    if (credential->provider != spec->provider) {
      return fail(Error::invalid("credential", "credential: " + credential->name + " is a " +
                                                   credential->provider + " credential, not " +
                                                   spec->provider));
    }
  }
  auto created = create_scoped_key(store_, keyring_, *spec, now);
  if (!created) return fail(created.error());
  return key_response(201, created->record, &created->token);
}

Result<HttpResponse> ControlPlane::list_keys(std::string_view query) {
  auto params = parse_query(query);
  if (!params) return fail(Error::invalid("", "malformed query string"));
  KeyFilter filter;
  for (const auto& [name, value] : *params) {
    if (name == "status") {
      filter.status = parse_key_status(value);
      if (!filter.status) {
        return fail(Error::invalid(
            "status", "status: must be one of active, exhausted, revoked, expired, suspended"));
      }
    } else if (name == "provider") {
      filter.provider = value;
    } else if (name == "name") {
      filter.name = value;
    } else if (name == "parent") {
      if (!is_key_id(value)) return fail(Error::invalid("parent", "parent: must be a key id"));
      filter.parent_id = value;
    } else if (name == "cursor") {
      filter.cursor = value;
    } else if (name == "limit") {
      auto limit = parse_page_limit(value);
      if (!limit) return fail(limit.error());
      filter.limit = *limit;
    } else {
      return fail(Error::invalid(name, name + ": unknown query parameter; known: status, "
                                              "provider, name, parent, cursor, limit"));
    }
  }
  auto page = store_.list_keys(filter);
  if (!page) return fail(page.error());
  const Timestamp now = clock_.now();
  json::array keys;
  for (const KeyRecord& stored : page->keys) {
    auto key = ledger_.find_key(stored.id);
    keys.push_back(key_to_json(key ? *key : stored, now));
  }
  json::object body{
      {"keys", std::move(keys)},
      {"next_cursor", page->next_cursor ? json::value(*page->next_cursor) : json::value(nullptr)}};
  return json_response(200, json::serialize(body));
}

Result<HttpResponse> ControlPlane::show_key(std::string_view id) {
  auto key = ledger_.find_key(id);
  if (!key) return fail(key_error(key.error(), id));
  return json_response(200, json::serialize(key_to_json(*key, clock_.now())));
}

Result<HttpResponse> ControlPlane::change_status(std::string_view id, KeyStatus status) {
  auto changed = change_key_status(store_, ledger_, keys_, id, status, clock_.now());
  if (!changed) return fail(key_error(changed.error(), id));
  return key_response(200, *changed);
}

Result<HttpResponse> ControlPlane::rotate_key(std::string_view id, const HttpRequest& request) {
  auto rotation = parse_rotation_request(request.body, /*accepts_upstream_key=*/true);
  if (!rotation) return fail(rotation.error());
  auto key = store_.find_key(id);
  if (!key) return fail(key_error(key.error(), id));
  auto rotated = rotate_scoped_key(store_, keyring_, *key, rotation->upstream_key, rotation->grace,
                                   clock_.now());
  keys_.invalidate(id);
  if (!rotated) return fail(rotated.error());
  return key_response(200, rotated->record, &rotated->token);
}

// --- The calling key (scoped) ----------------------------------------------------------------

Result<HttpResponse> ControlPlane::own_key(const AuthenticatedKey& caller) {
  auto live = ledger_.find_key(caller.record.id);
  if (!live) return fail(live.error());
  return json_response(200, json::serialize(key_to_json(*live, clock_.now())));
}

Result<HttpResponse> ControlPlane::rotate_own_key(const AuthenticatedKey& caller,
                                                  const HttpRequest& request) {
  // The previous token, valid during a grace, cannot rotate: whoever still holds it must not be
  // able to take the key over.
  if (!secret_matches(caller.token, caller.record.secret_hash)) {
    return fail(Error::client(ErrorCode::kInvalidApiKey,
                              "till: this token of key " + caller.record.id +
                                  " has been rotated out; only the current token can rotate"));
  }
  auto rotation = parse_rotation_request(request.body, /*accepts_upstream_key=*/false);
  if (!rotation) return fail(rotation.error());
  std::string upstream_key;
  if (!caller.record.credential) {
    auto opened = open_credential(keyring_, caller.token);
    if (!opened) return fail(opened.error());
    upstream_key = std::move(*opened);
  }
  auto rotated = rotate_scoped_key(store_, keyring_, caller.record, upstream_key, rotation->grace,
                                   clock_.now());
  keys_.invalidate(caller.record.id);
  if (!rotated) return fail(rotated.error());
  return key_response(200, rotated->record, &rotated->token);
}

Result<int> ControlPlane::depth_of(const KeyRecord& key) {
  int depth = 0;
  std::optional<std::string> parent = key.parent_id;
  while (parent) {
    if (++depth > options_.max_key_depth) break;  // deep enough to refuse; stop walking
    auto record = store_.find_key(*parent);
    if (!record) return fail(record.error());
    parent = record->parent_id;
  }
  return depth;
}

Result<HttpResponse> ControlPlane::create_sub_key(const AuthenticatedKey& caller,
                                                  const HttpRequest& request) {
  const Timestamp now = clock_.now();
  const KeyRecord& parent = caller.record;
  auto depth = depth_of(parent);
  if (!depth) return fail(depth.error());
  if (*depth + 1 > options_.max_key_depth) {
    return fail(
        Error::client(ErrorCode::kConflict, "key " + parent.id + " is " + std::to_string(*depth) +
                                                " levels below its root key; sub-keys may go " +
                                                std::to_string(options_.max_key_depth) +
                                                " levels deep (serve --max-key-depth)"));
  }
  auto spec = parse_new_key_request(request.body, now, KeyRequestKind::kSubKey);
  if (!spec) return fail(spec.error());
  if (auto narrowed = narrow_to_parent(*spec, parent); !narrowed) return fail(narrowed.error());
  if (parent.credential) {
    spec->credential = parent.credential;
  } else {
    auto opened = open_credential(keyring_, caller.token);
    if (!opened) return fail(opened.error());
    spec->upstream_key = std::move(*opened);
  }
  // The parent's lease headroom goes back first, so all it has left can be carved.
  if (auto flushed = ledger_.flush(parent.id); !flushed) return fail(flushed.error());
  auto created = create_scoped_key(store_, keyring_, *spec, now, parent.id);
  if (!created) return fail(created.error());
  return key_response(201, created->record, &created->token);
}

Result<HttpResponse> ControlPlane::descendant_key(const AuthenticatedKey& caller,
                                                  std::string_view id, bool revoke) {
  auto descendants = store_.descendant_ids(caller.record.id);
  if (!descendants) return fail(descendants.error());
  // Keys outside the caller's tree are as good as absent: the caller learns nothing about them.
  if (std::ranges::find(*descendants, id) == descendants->end()) {
    return fail(Error::client(ErrorCode::kNotFound,
                              "no sub-key " + std::string(id) + " under key " + caller.record.id));
  }
  if (revoke) return change_status(id, KeyStatus::kRevoked);
  return show_key(id);
}

// --- Vault credentials (admin) ---------------------------------------------------------------

Result<HttpResponse> ControlPlane::add_credential(const HttpRequest& request) {
  auto spec = parse_new_credential_request(request.body);
  if (!spec) return fail(spec.error());
  auto added = vault_.add(*spec);
  if (!added) return fail(added.error());
  return json_response(201, json::serialize(credential_to_json(*added, {})));
}

Result<HttpResponse> ControlPlane::list_credentials() {
  auto credentials = store_.list_credentials();
  if (!credentials) return fail(credentials.error());
  json::array items;
  for (const CredentialRecord& credential : *credentials) {
    auto users = store_.keys_using_credential(credential.name);
    if (!users) return fail(users.error());
    items.push_back(credential_to_json(credential, *users));
  }
  return json_response(200, json::serialize(json::object{{"credentials", std::move(items)}}));
}

Result<HttpResponse> ControlPlane::list_providers() {
  // The SDK environment with placeholders, so that a client (the dashboard) fills in the address
  // it reaches till at and a new key's token: the one table of variables is sdk_environment's.
  json::array items;
  for (const ProviderInfo& provider : all_providers()) {
    json::object environment;
    for (const auto& [name, value] : sdk_environment("{till_url}", provider, "{key}")) {
      environment[name] = value;
    }
    items.push_back(json::object{{"name", provider.name},
                                 {"display_name", provider.display_name},
                                 {"api_key_env", provider.api_key_env},
                                 {"environment", std::move(environment)}});
  }
  return json_response(200, json::serialize(json::object{{"providers", std::move(items)}}));
}

Result<HttpResponse> ControlPlane::show_credential(std::string_view name) {
  auto credential = store_.find_credential(name);
  if (!credential) return fail(credential.error());
  auto users = store_.keys_using_credential(name);
  if (!users) return fail(users.error());
  return json_response(200, json::serialize(credential_to_json(*credential, *users)));
}

Result<HttpResponse> ControlPlane::replace_credential(std::string_view name,
                                                      const HttpRequest& request) {
  auto secret = parse_credential_secret_request(request.body);
  if (!secret) return fail(secret.error());
  auto replaced = vault_.replace_secret(name, *secret);
  keys_.invalidate_credential(name);
  if (!replaced) return fail(replaced.error());
  return show_credential(name);
}

Result<HttpResponse> ControlPlane::remove_credential(std::string_view name,
                                                     std::string_view query) {
  auto params = parse_query(query);
  if (!params) return fail(Error::invalid("", "malformed query string"));
  bool force = false;
  for (const auto& [param, value] : *params) {
    if (param != "force" || (value != "true" && value != "false")) {
      return fail(Error::invalid(param, param + ": the only query parameter is force=true"));
    }
    force = value == "true";
  }
  auto shown = show_credential(name);
  if (!shown) return fail(shown.error());
  auto removed = store_.delete_credential(name, force);
  keys_.invalidate_credential(name);
  if (!removed) return fail(removed.error());
  return shown;
}

}  // namespace till
