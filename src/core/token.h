// The text of till keys (DESIGN.md, "Token format"): issuing, parsing, checking a secret and
// opening a sealed upstream credential.
//
// Layout (every part is ASCII; nothing is separated by anything but position):
//
//   <prefix><id16>_<body><crc6>
//
//   prefix  "till_sk_" (scoped key) or "till_admin_" (admin key)
//   id16    16 base62 characters; the key's public id is "key_<id16>" (scoped) or "adm_<id16>"
//   "_"     a separator, so the id stands out when a human reads the key
//   body    base64url without padding (canonical: unused trailing bits are zero) of the bytes
//             format version   1 byte, kTokenFormatVersion
//             master key ver.  4 bytes, big-endian; 0 when nothing is sealed (admin, vault)
//             secret           32 random bytes; the store keeps only its SHA-256
//             sealed cred.     optional: crypto::aes256gcm_seal output (nonce | ct | tag), present
//                              exactly when the master key version is not 0; never for admin
//   crc6    crypto::base62_encode_fixed(crypto::crc32(<everything before it>), 6)
//
// The sealed credential is encrypted under HKDF-SHA256(master key, salt "till-seal-v1", info
// "upstream-credential") with associated data "till-token:v1:<key id>:mk<version>", so it opens
// only for the key id and master key version it was sealed for.
//
// A secret scanner can validate a candidate offline with has_valid_checksum (or re-implement it:
// match /till_(sk|admin)_[0-9A-Za-z]{16}_[0-9A-Za-z_-]{56,}/, then compare the last 6 characters
// with the base62 CRC-32 of the rest).
//
// Thread-safety: all functions are safe to call concurrently.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "core/crypto.h"
#include "core/master_key.h"
#include "till/error.h"
#include "till/key.h"

namespace till {

enum class TokenKind { kScoped, kAdmin };

inline constexpr std::string_view kScopedTokenPrefix = "till_sk_";
inline constexpr std::string_view kAdminTokenPrefix = "till_admin_";
inline constexpr uint8_t kTokenFormatVersion = 1;

// parse_token refuses longer input without looking at it.
inline constexpr size_t kMaxTokenSize = 4096;

// The longest upstream credential that fits in a scoped token of at most kMaxTokenSize characters.
inline constexpr size_t kMaxSealedCredentialSize = [] {
  constexpr size_t kFixedBody = 1 + 4 + 32;  // version, master key version, secret
  constexpr size_t kMaxBodyChars = kMaxTokenSize - kScopedTokenPrefix.size() - 16 - 1 - 6;
  constexpr size_t kMaxBodyBytes = kMaxBodyChars * 6 / 8;  // unpadded base64url
  return kMaxBodyBytes - kFixedBody - crypto::kGcmOverhead;
}();

// A new random public key id: "key_" (scoped) or "adm_" (admin) + 16 base62 characters.
std::string new_key_id(TokenKind kind);

// True if `key_id` has the form new_key_id(kind) returns.
bool is_well_formed_key_id(TokenKind kind, std::string_view key_id);

struct IssuedToken {
  std::string token;       // shown to its owner once; never stored
  std::string key_id;      // public; the store's lookup key
  SecretHash secret_hash;  // SHA-256 of the token's secret; what the store keeps
};

// Issues a token for `key_id` with a fresh 256-bit secret. For a scoped token with a non-null
// `seal_key`, seals `upstream_credential` into it under that master key (pass
// keyring.current()); with a null seal_key the token carries no credential (vault keys). For admin
// tokens seal_key and upstream_credential are ignored.
// Errors: kInternal if `key_id` is not is_well_formed_key_id(kind, …) or seal_key has version 0
// (caller bugs); kInvalidRequest (field "upstream_key") if the credential to seal is empty
// or longer than kMaxSealedCredentialSize.
Result<IssuedToken> issue_token(TokenKind kind, std::string_view key_id, const MasterKey* seal_key,
                                std::string_view upstream_credential);

struct ParsedToken {
  TokenKind kind = TokenKind::kScoped;
  std::string key_id;                // "key_…" or "adm_…", matching kind
  std::array<uint8_t, 32> secret{};  // compare with secret_matches, never with ==
  uint32_t master_key_version = 0;   // 0 exactly when sealed_credential is empty
  crypto::Bytes sealed_credential;   // empty, or at least crypto::kGcmOverhead bytes

  bool is_sealed() const { return !sealed_credential.empty(); }
};

// Parses a token strictly. Every deviation from the layout above — unknown prefix, more than
// kMaxTokenSize bytes, a character outside its part's alphabet, a wrong checksum, non-canonical
// base64url, an unknown format version, a body too short or too long for its parts, a sealed part
// shorter than nonce + tag, a master key version without a sealed part or the reverse, an admin
// token with a sealed part — is kInvalidApiKey with the message "invalid till key checksum" or
// "malformed till key", never quoting the input. Total: never reads outside `text`, never aborts.
// Success says only that the text is well-formed: the caller must still look the key id up and
// check the secret with secret_matches.
Result<ParsedToken> parse_token(std::string_view text);

// True if `text` starts with a till prefix, is no longer than kMaxTokenSize nor shorter than the
// shortest token, and ends with the right checksum. Does not look at the other parts: for offline
// scanners, not for authentication.
bool has_valid_checksum(std::string_view text);

// True if SHA-256 of the token's secret equals `stored`, compared in constant time.
bool secret_matches(const ParsedToken& token, const SecretHash& stored);

// The upstream credential sealed in `token`. kInvalidApiKey (generic message) if the token has no
// sealed part, `keyring` has no key of its master key version, or authentication fails (a wrong
// master key, a sealed part moved from another key id or version, any changed byte).
Result<std::string> open_credential(const MasterKeyring& keyring, const ParsedToken& token);

}  // namespace till
