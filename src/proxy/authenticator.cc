#include "proxy/authenticator.h"

#include <string>

#include "core/time_text.h"

namespace till {
namespace {

Error invalid_key() {
  return Error::client(ErrorCode::kInvalidApiKey,
                       "till: invalid API key; check that you copied the whole till_… key");
}

}  // namespace

Result<AdminKeyRecord> Authenticator::authenticate_admin(std::string_view text) const {
  auto token = parse_token(text);
  if (!token || token->kind != TokenKind::kAdmin) return fail(invalid_key());
  auto record = store_.find_admin_key(token->key_id);
  if (!record) {
    if (record.error().code == ErrorCode::kNotFound) return fail(invalid_key());
    return fail(record.error());
  }
  if (!secret_matches(*token, record->secret_hash) || record->revoked_at) {
    return fail(invalid_key());
  }
  return std::move(*record);
}

Result<AuthenticatedKey> Authenticator::authenticate_scoped(std::string_view text,
                                                            Timestamp now) const {
  auto token = parse_token(text);
  if (!token || token->kind != TokenKind::kScoped) return fail(invalid_key());
  auto record = store_.find_key(token->key_id);
  if (!record) {
    if (record.error().code == ErrorCode::kNotFound) return fail(invalid_key());
    return fail(record.error());
  }
  if (secret_matches(*token, record->secret_hash)) {
    const std::optional<Timestamp> due = record->rotation_due_at();
    if (due && *due <= now) {
      return fail(Error::client(ErrorCode::kInvalidApiKey,
                                "till: key " + record->id + " was due for rotation at " +
                                    format_rfc3339(*due) +
                                    " and its token is no longer accepted; ask for a rotated key"));
    }
    return AuthenticatedKey{std::move(*record), std::move(*token), due};
  }
  const std::optional<PreviousToken>& previous = record->previous_token;
  if (previous && now < previous->valid_until && secret_matches(*token, previous->secret_hash)) {
    const Timestamp valid_until = previous->valid_until;
    return AuthenticatedKey{std::move(*record), std::move(*token), valid_until};
  }
  return fail(invalid_key());
}

std::optional<std::string_view> bearer_token(std::string_view authorization) {
  constexpr std::string_view kScheme = "bearer ";
  if (authorization.size() <= kScheme.size()) return std::nullopt;
  for (size_t i = 0; i < kScheme.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(authorization[i])) != kScheme[i]) {
      return std::nullopt;
    }
  }
  std::string_view token = authorization.substr(kScheme.size());
  while (!token.empty() && token.front() == ' ') token.remove_prefix(1);
  while (!token.empty() && token.back() == ' ') token.remove_suffix(1);
  if (token.empty()) return std::nullopt;
  return token;
}

Result<void> check_key_usable(const KeyRecord& key, Timestamp now) {
  switch (key.effective_status(now)) {
    case KeyStatus::kRevoked:
      return fail(Error::client(ErrorCode::kKeyRevoked,
                                "till: key " + key.id + " has been revoked; ask for a new key"));
    case KeyStatus::kExpired:
      return fail(Error::client(ErrorCode::kKeyExpired,
                                "till: key " + key.id + " has expired; ask for a new key"));
    case KeyStatus::kSuspended:
      return fail(
          Error::client(ErrorCode::kKeySuspended,
                        "till: key " + key.id + " is suspended; an administrator must resume it"));
    case KeyStatus::kActive:
    case KeyStatus::kExhausted:
      break;
  }
  return {};
}

}  // namespace till
