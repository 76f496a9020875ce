#include "api/control_plane.h"

#include <charconv>

#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>

#include "api/key_issuer.h"
#include "api/key_json.h"
#include "api/new_key_request.h"
#include "core/url.h"
#include "proxy/error_response.h"

namespace till {
namespace {

namespace json = boost::json;

constexpr std::string_view kApiPrefix = "/api/v1/";
constexpr std::string_view kKeysPath = "/api/v1/keys";
constexpr std::string_view kOwnKeyPath = "/api/v1/key";

Error method_not_allowed(std::string_view method, std::string_view path) {
  return Error::client(ErrorCode::kMethodNotAllowed,
                       "method " + std::string(method) + " is not allowed on " + std::string(path));
}

Error not_found(std::string_view path) {
  return Error::client(ErrorCode::kNotFound, "no such endpoint: " + std::string(path));
}

// Key ids are "key_" + base62; anything else cannot name a key.
bool is_key_id(std::string_view id) {
  if (!id.starts_with("key_") || id.size() > 64) return false;
  for (char c : id.substr(4)) {
    if (!std::isalnum(static_cast<unsigned char>(c))) return false;
  }
  return id.size() > 4;
}

std::optional<std::string_view> authorization_token(const HttpRequest& request) {
  auto header = request.header("authorization");
  if (!header) return std::nullopt;
  return bearer_token(*header);
}

}  // namespace

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
  const std::string_view method = request.method;
  if (path == kOwnKeyPath) {
    if (method != "GET") return fail(method_not_allowed(method, path));
    return own_key(request);
  }
  if (path == kKeysPath || path.starts_with(std::string(kKeysPath) + "/")) {
    if (auto admin = require_admin(request); !admin) return fail(admin.error());
    if (path == kKeysPath) {
      if (method == "POST") return create_key(request);
      if (method == "GET") return list_keys(query);
      return fail(method_not_allowed(method, path));
    }
    const std::string_view id = path.substr(kKeysPath.size() + 1);
    if (!is_key_id(id)) return fail(not_found(path));
    if (method == "GET") return show_key(id);
    if (method == "DELETE") return revoke_key(id);
    return fail(method_not_allowed(method, path));
  }
  return fail(not_found(path));
}

Result<void> ControlPlane::require_admin(const HttpRequest& request) {
  auto token = authorization_token(request);
  if (!token) {
    return fail(Error::client(ErrorCode::kInvalidApiKey,
                              "missing admin key: send 'Authorization: Bearer till_admin_…'"));
  }
  auto admin = auth_.authenticate_admin(*token);
  if (!admin) return fail(admin.error());
  return {};
}

Result<HttpResponse> ControlPlane::create_key(const HttpRequest& request) {
  const Timestamp now = clock_.now();
  auto spec = parse_new_key_request(request.body, now);
  if (!spec) return fail(spec.error());
  auto created = create_scoped_key(store_, keyring_, *spec, now);
  if (!created) return fail(created.error());
  json::object body = key_to_json(created->record, now);
  body["key"] = created->token;
  return json_response(201, json::serialize(body));
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
    } else if (name == "cursor") {
      filter.cursor = value;
    } else if (name == "limit") {
      int limit = 0;
      auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), limit);
      if (ec != std::errc() || end != value.data() + value.size() || limit < 1 || limit > 1000) {
        return fail(Error::invalid("limit", "limit: must be a whole number from 1 to 1000"));
      }
      filter.limit = limit;
    } else {
      return fail(Error::invalid(name, name + ": unknown query parameter; known: status, "
                                              "provider, name, cursor, limit"));
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
  json::object body{{"keys", std::move(keys)},
                    {"next_cursor", page->next_cursor ? json::value(*page->next_cursor)
                                                      : json::value(nullptr)}};
  return json_response(200, json::serialize(body));
}

Result<HttpResponse> ControlPlane::show_key(std::string_view id) {
  auto key = ledger_.find_key(id);
  if (!key) {
    if (key.error().code == ErrorCode::kNotFound) {
      return fail(Error::client(ErrorCode::kNotFound, "no key with id " + std::string(id)));
    }
    return fail(key.error());
  }
  return json_response(200, json::serialize(key_to_json(*key, clock_.now())));
}

Result<HttpResponse> ControlPlane::revoke_key(std::string_view id) {
  auto revoked = store_.set_status(id, KeyStatus::kRevoked, clock_.now());
  keys_.invalidate(id);
  if (!revoked) {
    if (revoked.error().code == ErrorCode::kNotFound) {
      return fail(Error::client(ErrorCode::kNotFound, "no key with id " + std::string(id)));
    }
    return fail(revoked.error());
  }
  auto key = ledger_.find_key(id);
  return json_response(200, json::serialize(key_to_json(key ? *key : *revoked, clock_.now())));
}

Result<HttpResponse> ControlPlane::own_key(const HttpRequest& request) {
  auto token = authorization_token(request);
  if (!token) {
    return fail(Error::client(ErrorCode::kInvalidApiKey,
                              "missing API key: send 'Authorization: Bearer till_sk_…'"));
  }
  auto key = auth_.authenticate_scoped(*token);
  if (!key) return fail(key.error());
  const Timestamp now = clock_.now();
  if (auto usable = check_key_usable(key->record, now); !usable) return fail(usable.error());
  auto live = ledger_.find_key(key->record.id);
  if (!live) return fail(live.error());
  return json_response(200, json::serialize(key_to_json(*live, now)));
}

}  // namespace till
