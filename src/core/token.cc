#include "core/token.h"

#include <openssl/crypto.h>

#include <algorithm>

namespace till {
namespace {

constexpr size_t kIdChars = 16;
constexpr size_t kIdPrefixSize = 4;  // "key_" / "adm_"
constexpr size_t kChecksumChars = 6;
constexpr size_t kSecretSize = 32;
constexpr size_t kFixedBodySize = 1 + 4 + kSecretSize;
constexpr size_t kMinBodyChars = (kFixedBodySize * 8 + 5) / 6;  // unpadded base64url: 50
constexpr std::string_view kSealSalt = "till-seal-v1";
constexpr std::string_view kSealInfo = "upstream-credential";

std::string_view token_prefix(TokenKind kind) {
  return kind == TokenKind::kScoped ? kScopedTokenPrefix : kAdminTokenPrefix;
}

std::string_view id_prefix(TokenKind kind) { return kind == TokenKind::kScoped ? "key_" : "adm_"; }

Error malformed() { return Error::client(ErrorCode::kInvalidApiKey, "malformed till key"); }
Error bad_checksum() {
  return Error::client(ErrorCode::kInvalidApiKey, "invalid till key checksum");
}

// The kind whose prefix `text` starts with, and the prefix's size; nullopt-like false otherwise.
bool match_prefix(std::string_view text, TokenKind& kind, size_t& prefix_size) {
  for (TokenKind k : {TokenKind::kScoped, TokenKind::kAdmin}) {
    if (text.starts_with(token_prefix(k))) {
      kind = k;
      prefix_size = token_prefix(k).size();
      return true;
    }
  }
  return false;
}

// Shortest possible token after its prefix: id, '_', a body with no sealed part, checksum.
constexpr size_t kMinSizeAfterPrefix = kIdChars + 1 + kMinBodyChars + kChecksumChars;

std::string checksum(std::string_view text_before) {
  return crypto::base62_encode_fixed(crypto::crc32(text_before), kChecksumChars);
}

// Text-level checks shared by has_valid_checksum and parse_token.
bool checksum_matches(std::string_view text) {
  std::string_view before = text.substr(0, text.size() - kChecksumChars);
  return checksum(before) == text.substr(before.size());
}

std::array<uint8_t, 32> seal_key(const MasterKey& master) {
  return crypto::hkdf_sha256(master.key, kSealSalt, kSealInfo);
}

std::string seal_aad(std::string_view key_id, uint32_t master_key_version) {
  return "till-token:v" + std::to_string(kTokenFormatVersion) + ":" + std::string(key_id) + ":mk" +
         std::to_string(master_key_version);
}

void put_u32_be(crypto::Bytes& out, uint32_t v) {
  out.push_back(static_cast<uint8_t>(v >> 24));
  out.push_back(static_cast<uint8_t>(v >> 16));
  out.push_back(static_cast<uint8_t>(v >> 8));
  out.push_back(static_cast<uint8_t>(v));
}

uint32_t get_u32_be(const uint8_t* p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | uint32_t{p[3]};
}

}  // namespace

std::string new_key_id(TokenKind kind) {
  return std::string(id_prefix(kind)) + crypto::random_base62(kIdChars);
}

bool is_well_formed_key_id(TokenKind kind, std::string_view key_id) {
  return key_id.size() == kIdPrefixSize + kIdChars && key_id.starts_with(id_prefix(kind)) &&
         crypto::is_base62(key_id.substr(kIdPrefixSize));
}

Result<IssuedToken> issue_token(TokenKind kind, std::string_view key_id,
                                const MasterKey* seal_key_in,
                                std::string_view upstream_credential) {
  if (!is_well_formed_key_id(kind, key_id)) {
    return fail(Error::internal("issue_token: the key id is not well-formed for its kind"));
  }
  const MasterKey* master = kind == TokenKind::kScoped ? seal_key_in : nullptr;
  if (master != nullptr) {
    if (master->version == 0) {
      return fail(Error::internal("issue_token: master key version 0 cannot seal"));
    }
    if (upstream_credential.empty()) {
      return fail(Error::invalid("upstream_key", "the upstream credential is empty"));
    }
    if (upstream_credential.size() > kMaxSealedCredentialSize) {
      return fail(Error::invalid(
          "upstream_key",
          "the upstream credential is too long to seal in a key (at most " +
              std::to_string(kMaxSealedCredentialSize) +
              " bytes); store it in the vault and create the key with that credential"));
    }
  }

  std::array<uint8_t, kSecretSize> secret;
  crypto::random_bytes(secret);

  crypto::Bytes body;
  body.reserve(kFixedBodySize +
               (master ? crypto::kGcmOverhead + upstream_credential.size() : size_t{0}));
  body.push_back(kTokenFormatVersion);
  put_u32_be(body, master ? master->version : 0);
  body.insert(body.end(), secret.begin(), secret.end());
  if (master != nullptr) {
    auto key = seal_key(*master);
    crypto::Bytes sealed =
        crypto::aes256gcm_seal(key, upstream_credential, seal_aad(key_id, master->version));
    OPENSSL_cleanse(key.data(), key.size());
    body.insert(body.end(), sealed.begin(), sealed.end());
  }

  IssuedToken issued;
  issued.key_id = std::string(key_id);
  issued.token = std::string(token_prefix(kind)) + std::string(key_id.substr(kIdPrefixSize)) + "_" +
                 crypto::base64url_encode(body);
  issued.token += checksum(issued.token);
  issued.secret_hash = crypto::sha256(secret);
  OPENSSL_cleanse(secret.data(), secret.size());
  OPENSSL_cleanse(body.data(), body.size());
  return issued;
}

bool has_valid_checksum(std::string_view text) {
  TokenKind kind = TokenKind::kScoped;
  size_t prefix_size = 0;
  if (text.size() > kMaxTokenSize || !match_prefix(text, kind, prefix_size) ||
      text.size() < prefix_size + kMinSizeAfterPrefix) {
    return false;
  }
  return checksum_matches(text);
}

Result<ParsedToken> parse_token(std::string_view text) {
  ParsedToken token;
  size_t prefix_size = 0;
  if (text.size() > kMaxTokenSize || !match_prefix(text, token.kind, prefix_size) ||
      text.size() < prefix_size + kMinSizeAfterPrefix) {
    return fail(malformed());
  }
  if (!checksum_matches(text)) return fail(bad_checksum());

  std::string_view rest = text.substr(prefix_size, text.size() - prefix_size - kChecksumChars);
  std::string_view id = rest.substr(0, kIdChars);
  if (!crypto::is_base62(id) || rest[kIdChars] != '_') return fail(malformed());
  auto body = crypto::base64url_decode(rest.substr(kIdChars + 1));
  if (!body || body->size() < kFixedBodySize || (*body)[0] != kTokenFormatVersion) {
    if (body) OPENSSL_cleanse(body->data(), body->size());
    return fail(malformed());
  }

  const uint8_t* p = body->data();
  token.master_key_version = get_u32_be(p + 1);
  std::copy_n(p + 5, kSecretSize, token.secret.begin());
  token.sealed_credential.assign(body->begin() + kFixedBodySize, body->end());
  OPENSSL_cleanse(body->data(), body->size());

  bool sealed = !token.sealed_credential.empty();
  bool well_formed = sealed ? token.kind == TokenKind::kScoped && token.master_key_version != 0 &&
                                  token.sealed_credential.size() >= crypto::kGcmOverhead
                            : token.master_key_version == 0;
  if (!well_formed) {
    OPENSSL_cleanse(token.secret.data(), token.secret.size());
    return fail(malformed());
  }
  token.key_id = std::string(id_prefix(token.kind)) + std::string(id);
  return token;
}

bool secret_matches(const ParsedToken& token, const SecretHash& stored) {
  SecretHash actual = crypto::sha256(token.secret);
  return crypto::constant_time_equal(actual, stored);
}

Result<std::string> open_credential(const MasterKeyring& keyring, const ParsedToken& token) {
  auto refused = [] {
    return fail(Error::client(ErrorCode::kInvalidApiKey, "till key credential cannot be opened"));
  };
  if (token.kind != TokenKind::kScoped || !token.is_sealed()) return refused();
  const MasterKey* master = keyring.find(token.master_key_version);
  if (master == nullptr) return refused();
  auto key = seal_key(*master);
  auto credential = crypto::aes256gcm_open(key, token.sealed_credential,
                                           seal_aad(token.key_id, token.master_key_version));
  OPENSSL_cleanse(key.data(), key.size());
  if (!credential) return refused();
  return credential;
}

}  // namespace till
