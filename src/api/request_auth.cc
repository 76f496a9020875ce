#include "api/request_auth.h"

namespace till {
namespace {

std::optional<std::string_view> authorization_token(const HttpRequest& request) {
  auto header = request.header("authorization");
  if (!header) return std::nullopt;
  return bearer_token(*header);
}

}  // namespace

Result<AdminKeyRecord> require_admin(const Authenticator& auth, const HttpRequest& request) {
  auto token = authorization_token(request);
  if (!token) {
    return fail(Error::client(ErrorCode::kInvalidApiKey,
                              "missing admin key: send 'Authorization: Bearer till_admin_…'"));
  }
  return auth.authenticate_admin(*token);
}

Result<AuthenticatedKey> require_scoped(const Authenticator& auth, const HttpRequest& request,
                                        Timestamp now) {
  auto token = authorization_token(request);
  if (!token) {
    return fail(Error::client(ErrorCode::kInvalidApiKey,
                              "missing API key: send 'Authorization: Bearer till_sk_…'"));
  }
  auto key = auth.authenticate_scoped(*token, now);
  if (!key) return fail(key.error());
  if (auto usable = check_key_usable(key->record, now); !usable) return fail(usable.error());
  return key;
}

}  // namespace till
