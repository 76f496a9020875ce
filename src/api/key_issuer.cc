#include "api/key_issuer.h"

#include "core/token.h"

namespace till {

Result<CreatedKey> create_scoped_key(Store& store, const MasterKeyring& keyring,
                                     const NewKeySpec& spec, Timestamp now) {
  const std::string id = new_key_id(TokenKind::kScoped);
  auto issued = issue_token(TokenKind::kScoped, id, &keyring.current(), spec.upstream_key);
  if (!issued) return fail(issued.error());
  KeyRecord record;
  record.id = id;
  record.name = spec.name;
  record.provider = spec.provider;
  record.metadata_json = spec.metadata_json;
  record.status = KeyStatus::kActive;
  record.secret_hash = issued->secret_hash;
  record.limits = spec.limits;
  record.scope = spec.scope;
  record.expires_at = spec.expires_at;
  record.created_at = now;
  record.updated_at = now;
  if (auto inserted = store.insert_key(record); !inserted) return fail(inserted.error());
  return CreatedKey{std::move(record), std::move(issued->token)};
}

Result<std::string> create_admin_key(Store& store, std::string_view name, Timestamp now) {
  const std::string id = new_key_id(TokenKind::kAdmin);
  auto issued = issue_token(TokenKind::kAdmin, id, nullptr, {});
  if (!issued) return fail(issued.error());
  AdminKeyRecord record{id, std::string(name), issued->secret_hash, now, std::nullopt};
  if (auto inserted = store.insert_admin_key(record); !inserted) return fail(inserted.error());
  return std::move(issued->token);
}

}  // namespace till
