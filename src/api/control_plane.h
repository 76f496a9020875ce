// The control plane: REST under /api/v1 (DESIGN.md "Control plane"; docs/api.md).
//
//   POST   /api/v1/keys                    admin   create a scoped key → 201 record + "key"
//   GET    /api/v1/keys                    admin   list (?status=&provider=&name=&cursor=&limit=)
//   GET    /api/v1/keys/{id}               admin   one key: limits, used, remaining, status
//   DELETE /api/v1/keys/{id}               admin   revoke, with its sub-keys (idempotent)
//   POST   /api/v1/keys/{id}/rotate        admin   new token, old one valid for "grace"
//   POST   /api/v1/keys/{id}/suspend       admin   suspend, with its sub-keys
//   POST   /api/v1/keys/{id}/resume        admin   resume, with its sub-keys
//   GET    /api/v1/key                     scoped  the calling key's own record
//   POST   /api/v1/key/rotate              scoped  the calling key rotates its own token
//   POST   /api/v1/key/children            scoped  a sub-key carved from the calling key
//   GET    /api/v1/key/children/{id}       scoped  one of the calling key's descendants
//   DELETE /api/v1/key/children/{id}       scoped  revoke one of them (and its sub-keys)
//   POST   /api/v1/credentials             admin   store a vault credential → 201
//   GET    /api/v1/credentials             admin   list (never the secrets)
//   GET    /api/v1/credentials/{name}      admin   one
//   PUT    /api/v1/credentials/{name}      admin   replace its secret
//   DELETE /api/v1/credentials/{name}      admin   remove (?force=true while keys use it)
//
// Admin routes authenticate before anything else, so an unauthenticated caller learns nothing
// (not even whether an id exists) and changes nothing. A change applies to the next request:
// the affected KeyCache entries are dropped.
//
// Thread-safety: handle() may be called concurrently; the referenced objects must outlive this.
#pragma once

#include <string>
#include <string_view>

#include "api/credential_vault.h"
#include "core/master_key.h"
#include "proxy/authenticator.h"
#include "proxy/budget_ledger.h"
#include "proxy/key_cache.h"
#include "till/clock.h"
#include "till/http.h"
#include "till/store.h"

namespace till {

class ControlPlane {
 public:
  struct Options {
    int max_key_depth = 4;  // sub-keys of sub-keys …: a key has at most this many ancestors
  };

  // Key figures are read through `ledger`, so they include usage not yet written to the store.
  ControlPlane(Store& store, const MasterKeyring& keyring, BudgetLedger& ledger, KeyCache& keys,
               const Clock& clock, Options options);
  ControlPlane(Store& store, const MasterKeyring& keyring, BudgetLedger& ledger, KeyCache& keys,
               const Clock& clock)
      : ControlPlane(store, keyring, ledger, keys, clock, Options{}) {}

  // True if `path` (raw, without query) belongs to the control plane.
  static bool owns(std::string_view path);

  HttpResponse handle(const HttpRequest& request);

 private:
  Result<HttpResponse> route(const HttpRequest& request, std::string_view path,
                             std::string_view query);
  Result<HttpResponse> route_keys(const HttpRequest& request, std::string_view path,
                                  std::string_view query);
  Result<HttpResponse> route_own_key(const HttpRequest& request, std::string_view path);
  Result<HttpResponse> route_credentials(const HttpRequest& request, std::string_view path,
                                         std::string_view query);

  // Keys (admin).
  Result<HttpResponse> create_key(const HttpRequest& request);
  Result<HttpResponse> list_keys(std::string_view query);
  Result<HttpResponse> show_key(std::string_view id);
  Result<HttpResponse> change_status(std::string_view id, KeyStatus status);
  Result<HttpResponse> rotate_key(std::string_view id, const HttpRequest& request);

  // The calling key (scoped).
  Result<HttpResponse> own_key(const AuthenticatedKey& caller);
  Result<HttpResponse> rotate_own_key(const AuthenticatedKey& caller, const HttpRequest& request);
  Result<HttpResponse> create_sub_key(const AuthenticatedKey& caller, const HttpRequest& request);
  Result<HttpResponse> descendant_key(const AuthenticatedKey& caller, std::string_view id,
                                      bool revoke);

  // Vault credentials (admin).
  Result<HttpResponse> add_credential(const HttpRequest& request);
  Result<HttpResponse> list_credentials();
  Result<HttpResponse> show_credential(std::string_view name);
  Result<HttpResponse> replace_credential(std::string_view name, const HttpRequest& request);
  Result<HttpResponse> remove_credential(std::string_view name, std::string_view query);

  // The providers and the environment that points their SDKs at till (admin).
  Result<HttpResponse> list_providers();

  // 200/201 with the key's record (usage as the ledger sees it) and, if given, its new token.
  HttpResponse key_response(int status, const KeyRecord& key, const std::string* token = nullptr);
  // Number of ancestors of `key`.
  Result<int> depth_of(const KeyRecord& key);

  Store& store_;
  const MasterKeyring& keyring_;
  BudgetLedger& ledger_;
  KeyCache& keys_;
  const Clock& clock_;
  Options options_;
  Authenticator auth_;
  CredentialVault vault_;
};

}  // namespace till
