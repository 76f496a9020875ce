// The control plane: REST under /api/v1 (DESIGN.md "Control plane").
//
//   POST   /api/v1/keys        admin   create a scoped key → 201 record + "key"
//   GET    /api/v1/keys        admin   list (?status=&provider=&name=&cursor=&limit=)
//   GET    /api/v1/keys/{id}   admin   one key: limits, used, remaining, status
//   DELETE /api/v1/keys/{id}   admin   revoke (idempotent)
//   GET    /api/v1/key         scoped  the calling key's own record
//
// Admin routes authenticate before anything else, so an unauthenticated caller learns nothing
// (not even whether an id exists) and changes nothing.
//
// Thread-safety: handle() may be called concurrently; the referenced objects must outlive this.
#pragma once

#include <string_view>

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
  // Key figures are read through `ledger`, so they include usage not yet written to the store.
  // A revoke drops the key from `keys`, so it applies to the next request.
  ControlPlane(Store& store, const MasterKeyring& keyring, BudgetLedger& ledger, KeyCache& keys,
               const Clock& clock)
      : store_(store),
        keyring_(keyring),
        ledger_(ledger),
        keys_(keys),
        clock_(clock),
        auth_(store) {}

  // True if `path` (raw, without query) belongs to the control plane.
  static bool owns(std::string_view path);

  HttpResponse handle(const HttpRequest& request);

 private:
  Result<HttpResponse> route(const HttpRequest& request, std::string_view path,
                             std::string_view query);
  Result<HttpResponse> create_key(const HttpRequest& request);
  Result<HttpResponse> list_keys(std::string_view query);
  Result<HttpResponse> show_key(std::string_view id);
  Result<HttpResponse> revoke_key(std::string_view id);
  Result<HttpResponse> own_key(const HttpRequest& request);
  Result<void> require_admin(const HttpRequest& request);

  Store& store_;
  const MasterKeyring& keyring_;
  BudgetLedger& ledger_;
  KeyCache& keys_;
  const Clock& clock_;
  Authenticator auth_;
};

}  // namespace till
