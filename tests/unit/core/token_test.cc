#include "core/token.h"

#include <gtest/gtest.h>

#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "core/crypto.h"
#include "core/master_key.h"
#include "unit/core/test_master_keys.h"

namespace till {
namespace {

constexpr std::string_view kCredential = "sk-proj-abcdefghijklmnopqrstuvwxyz0123456789";

using test::keyring_of;
using test::random_master_key;

IssuedToken issue(TokenKind kind, const MasterKey* seal_key,
                  std::string_view credential = kCredential) {
  auto issued = issue_token(kind, new_key_id(kind), seal_key, credential);
  EXPECT_TRUE(issued) << issued.error().message;
  return std::move(*issued);
}

// Appends the right checksum to a token text without one: lets a test reach the checks past it.
std::string with_checksum(std::string text) {
  text += crypto::base62_encode_fixed(crypto::crc32(text), 6);
  return text;
}

// A token's text from its parts, with a correct checksum.
std::string assemble(std::string_view prefix, std::string_view id16, const crypto::Bytes& body) {
  return with_checksum(std::string(prefix) + std::string(id16) + "_" +
                       crypto::base64url_encode(body));
}

crypto::Bytes body_of(std::string_view token) {
  size_t start = token.find('_', token.starts_with(kAdminTokenPrefix) ? 11 : 8) + 1;
  auto body = crypto::base64url_decode(token.substr(start, token.size() - 6 - start));
  EXPECT_TRUE(body);
  return *body;
}

crypto::Bytes plain_body(uint32_t master_key_version = 0, size_t extra = 0) {
  crypto::Bytes body(37 + extra, 0x42);
  body[0] = kTokenFormatVersion;
  body[1] = static_cast<uint8_t>(master_key_version >> 24);
  body[2] = static_cast<uint8_t>(master_key_version >> 16);
  body[3] = static_cast<uint8_t>(master_key_version >> 8);
  body[4] = static_cast<uint8_t>(master_key_version);
  return body;
}

constexpr std::string_view kId16 = "AbCdEfGh01234567";

void expect_refused(std::string_view text) {
  auto parsed = parse_token(text);
  ASSERT_FALSE(parsed) << "accepted: " << text;
  EXPECT_EQ(parsed.error().code, ErrorCode::kInvalidApiKey);
  EXPECT_TRUE(parsed.error().message == "malformed till key" ||
              parsed.error().message == "invalid till key checksum")
      << parsed.error().message;
}

TEST(TokenTest, NewKeyIdHasItsKindsForm) {
  std::string scoped = new_key_id(TokenKind::kScoped);
  std::string admin = new_key_id(TokenKind::kAdmin);
  EXPECT_EQ(scoped.size(), 20u);
  EXPECT_TRUE(scoped.starts_with("key_"));
  EXPECT_TRUE(crypto::is_base62(scoped.substr(4)));
  EXPECT_TRUE(admin.starts_with("adm_"));
  EXPECT_TRUE(is_well_formed_key_id(TokenKind::kScoped, scoped));
  EXPECT_TRUE(is_well_formed_key_id(TokenKind::kAdmin, admin));
  EXPECT_FALSE(is_well_formed_key_id(TokenKind::kAdmin, scoped));
  EXPECT_FALSE(is_well_formed_key_id(TokenKind::kScoped, admin));
  EXPECT_FALSE(is_well_formed_key_id(TokenKind::kScoped, "key_short"));
  EXPECT_FALSE(is_well_formed_key_id(TokenKind::kScoped, "key_AbCdEfGh0123456-"));
  EXPECT_NE(new_key_id(TokenKind::kScoped), new_key_id(TokenKind::kScoped));
}

TEST(TokenTest, ScopedSealedRoundTrip) {
  MasterKey master = random_master_key(3);
  MasterKeyring keyring = keyring_of({master});
  std::string key_id = new_key_id(TokenKind::kScoped);
  auto issued = issue_token(TokenKind::kScoped, key_id, &master, kCredential);
  ASSERT_TRUE(issued) << issued.error().message;
  EXPECT_EQ(issued->key_id, key_id);
  EXPECT_TRUE(issued->token.starts_with("till_sk_" + key_id.substr(4) + "_"));
  EXPECT_TRUE(crypto::is_base62(std::string_view(issued->token).substr(issued->token.size() - 6)));
  EXPECT_EQ(issued->token.find(kCredential), std::string::npos);
  EXPECT_TRUE(has_valid_checksum(issued->token));

  auto parsed = parse_token(issued->token);
  ASSERT_TRUE(parsed) << parsed.error().message;
  EXPECT_EQ(parsed->kind, TokenKind::kScoped);
  EXPECT_EQ(parsed->key_id, key_id);
  EXPECT_EQ(parsed->master_key_version, 3u);
  EXPECT_TRUE(parsed->is_sealed());
  EXPECT_EQ(parsed->sealed_credential.size(), crypto::kGcmOverhead + kCredential.size());
  EXPECT_TRUE(secret_matches(*parsed, issued->secret_hash));
  EXPECT_EQ(crypto::sha256(parsed->secret), issued->secret_hash);

  auto credential = open_credential(keyring, *parsed);
  ASSERT_TRUE(credential) << credential.error().message;
  EXPECT_EQ(*credential, kCredential);
}

TEST(TokenTest, ScopedUnsealedRoundTrip) {
  IssuedToken issued = issue(TokenKind::kScoped, nullptr);
  EXPECT_TRUE(issued.token.starts_with("till_sk_"));
  EXPECT_EQ(issued.token.size(), 8u + 16 + 1 + 50 + 6);
  auto parsed = parse_token(issued.token);
  ASSERT_TRUE(parsed) << parsed.error().message;
  EXPECT_EQ(parsed->kind, TokenKind::kScoped);
  EXPECT_EQ(parsed->key_id, issued.key_id);
  EXPECT_EQ(parsed->master_key_version, 0u);
  EXPECT_FALSE(parsed->is_sealed());
  EXPECT_TRUE(secret_matches(*parsed, issued.secret_hash));

  MasterKeyring keyring = keyring_of({random_master_key(1)});
  auto credential = open_credential(keyring, *parsed);
  ASSERT_FALSE(credential);
  EXPECT_EQ(credential.error().code, ErrorCode::kInvalidApiKey);
}

TEST(TokenTest, AdminRoundTripIgnoresSealKey) {
  MasterKey master = random_master_key(1);
  IssuedToken issued = issue(TokenKind::kAdmin, &master);
  EXPECT_TRUE(issued.key_id.starts_with("adm_"));
  EXPECT_TRUE(issued.token.starts_with("till_admin_" + issued.key_id.substr(4) + "_"));
  EXPECT_EQ(issued.token.size(), 11u + 16 + 1 + 50 + 6);
  auto parsed = parse_token(issued.token);
  ASSERT_TRUE(parsed) << parsed.error().message;
  EXPECT_EQ(parsed->kind, TokenKind::kAdmin);
  EXPECT_EQ(parsed->key_id, issued.key_id);
  EXPECT_EQ(parsed->master_key_version, 0u);
  EXPECT_FALSE(parsed->is_sealed());
  EXPECT_TRUE(secret_matches(*parsed, issued.secret_hash));
  EXPECT_TRUE(has_valid_checksum(issued.token));
}

TEST(TokenTest, SecretMatchesOnlyItsOwnHash) {
  IssuedToken a = issue(TokenKind::kScoped, nullptr);
  IssuedToken b = issue(TokenKind::kScoped, nullptr);
  EXPECT_NE(a.secret_hash, b.secret_hash);
  auto parsed = parse_token(a.token);
  ASSERT_TRUE(parsed);
  EXPECT_TRUE(secret_matches(*parsed, a.secret_hash));
  EXPECT_FALSE(secret_matches(*parsed, b.secret_hash));
  EXPECT_FALSE(secret_matches(*parsed, SecretHash{}));
}

// Every token kind the tests mutate.
std::vector<std::string> sample_tokens() {
  MasterKey master = random_master_key(1);
  return {issue(TokenKind::kScoped, &master, "sk-x").token,
          issue(TokenKind::kScoped, nullptr).token, issue(TokenKind::kAdmin, nullptr).token};
}

TEST(TokenTest, EveryChangedCharacterIsRefused) {
  for (const std::string& token : sample_tokens()) {
    for (size_t i = 0; i < token.size(); ++i) {
      for (int c = 0; c < 256; ++c) {
        if (static_cast<char>(c) == token[i]) continue;
        std::string changed = token;
        changed[i] = static_cast<char>(c);
        expect_refused(changed);
        EXPECT_FALSE(has_valid_checksum(changed));
      }
    }
  }
}

TEST(TokenTest, EveryTruncationIsRefused) {
  for (const std::string& token : sample_tokens()) {
    for (size_t len = 0; len < token.size(); ++len) {
      expect_refused(std::string_view(token).substr(0, len));              // a prefix
      expect_refused(std::string_view(token).substr(token.size() - len));  // a suffix
    }
  }
}

TEST(TokenTest, AppendedOrInsertedCharactersAreRefused) {
  for (const std::string& token : sample_tokens()) {
    for (char c : std::string_view("Aa0_-=. \n\0", 10)) {
      expect_refused(token + c);
      expect_refused(c + token);
      for (size_t i = 0; i <= token.size(); ++i) {
        std::string inserted = token;
        inserted.insert(inserted.begin() + static_cast<std::ptrdiff_t>(i), c);
        expect_refused(inserted);
      }
    }
    expect_refused(token + token);
    expect_refused(token + token.substr(token.size() - 6));
  }
}

TEST(TokenTest, ChangedPrefixIsRefused) {
  MasterKey master = random_master_key(1);
  IssuedToken sealed = issue(TokenKind::kScoped, &master);
  IssuedToken admin = issue(TokenKind::kAdmin, nullptr);
  std::string rest_sealed = sealed.token.substr(8);
  std::string rest_admin = admin.token.substr(11);
  for (std::string_view prefix :
       {"till_admin_", "till_SK_", "Till_sk_", "till_pk_", "till_sk", "tilL_sk_", "sk_", ""}) {
    expect_refused(std::string(prefix) + rest_sealed);
  }
  expect_refused("till_sk_" + rest_admin);
  // With the checksum recomputed: a sealed part is never valid in an admin token.
  expect_refused(with_checksum("till_admin_" + rest_sealed.substr(0, rest_sealed.size() - 6)));
}

TEST(TokenTest, RelabelledUnsealedTokenCannotNameTheOriginalKey) {
  // An unsealed scoped token relabelled as admin with a recomputed checksum is well-formed, but it
  // names a different key id ("adm_…"), whose secret hash the store does not have.
  IssuedToken scoped = issue(TokenKind::kScoped, nullptr);
  std::string text = scoped.token.substr(8, scoped.token.size() - 8 - 6);
  auto parsed = parse_token(with_checksum("till_admin_" + text));
  ASSERT_TRUE(parsed);
  EXPECT_EQ(parsed->kind, TokenKind::kAdmin);
  EXPECT_NE(parsed->key_id, scoped.key_id);
}

TEST(TokenTest, RandomInputIsRefused) {
  std::mt19937_64 rng(20261204);
  std::uniform_int_distribution<int> byte(0, 255);
  std::uniform_int_distribution<size_t> length(0, 300);
  for (int i = 0; i < 5000; ++i) {
    std::string s(length(rng), '\0');
    for (char& c : s) c = static_cast<char>(byte(rng));
    expect_refused(s);
    expect_refused("till_sk_" + s);
    EXPECT_FALSE(has_valid_checksum("till_sk_" + s));
  }
  // Well-formed-looking text from the right alphabets, with random checksums.
  const std::string alphabet = std::string(crypto::kBase62Alphabet) + "-_";
  std::uniform_int_distribution<size_t> pick(0, alphabet.size() - 1);
  for (int i = 0; i < 5000; ++i) {
    std::string s = "till_sk_" + std::string(kId16) + "_";
    for (size_t n = 50 + length(rng); n > 0; --n) s += alphabet[pick(rng)];
    expect_refused(s);
  }
}

TEST(TokenTest, OverlongInputIsRefusedEvenWithAValidChecksum) {
  // Well-formed sealed bodies around the cap: 3048 bytes make a 4095-character token, 3049 bytes
  // a 4097-character one.
  std::string longest = assemble("till_sk_", kId16, plain_body(1, 3048 - 37));
  std::string too_long = assemble("till_sk_", kId16, plain_body(1, 3049 - 37));
  ASSERT_EQ(longest.size(), 4095u);
  ASSERT_EQ(too_long.size(), 4097u);
  EXPECT_TRUE(parse_token(longest));
  EXPECT_TRUE(has_valid_checksum(longest));
  expect_refused(too_long);
  EXPECT_FALSE(has_valid_checksum(too_long));
  expect_refused(std::string(1 << 20, 'A'));
}

TEST(TokenTest, StructuralDeviationsBehindAValidChecksumAreRefused) {
  // The reference: a hand-assembled body that parses.
  ASSERT_TRUE(parse_token(assemble("till_sk_", kId16, plain_body())));
  ASSERT_TRUE(parse_token(assemble("till_admin_", kId16, plain_body())));
  ASSERT_TRUE(parse_token(assemble("till_sk_", kId16, plain_body(1, crypto::kGcmOverhead))));

  crypto::Bytes version0 = plain_body(), version2 = plain_body();
  version0[0] = 0;
  version2[0] = 2;
  expect_refused(assemble("till_sk_", kId16, version0));
  expect_refused(assemble("till_sk_", kId16, version2));

  crypto::Bytes short_body = plain_body();
  short_body.pop_back();
  expect_refused(assemble("till_sk_", kId16, short_body));
  expect_refused(assemble("till_sk_", kId16, {}));

  for (size_t extra = 1; extra < crypto::kGcmOverhead; ++extra) {
    expect_refused(assemble("till_sk_", kId16, plain_body(0, extra)));  // trailing bytes
    expect_refused(assemble("till_sk_", kId16, plain_body(1, extra)));  // sealed part too short
  }
  expect_refused(assemble("till_sk_", kId16, plain_body(0, crypto::kGcmOverhead)));  // mk 0
  expect_refused(assemble("till_sk_", kId16, plain_body(1)));  // mk version, nothing sealed
  expect_refused(assemble("till_admin_", kId16, plain_body(1, crypto::kGcmOverhead)));
  expect_refused(assemble("till_admin_", kId16, plain_body(0, crypto::kGcmOverhead)));

  // Id: wrong length or alphabet; separator missing or wrong.
  std::string body = crypto::base64url_encode(plain_body());
  expect_refused(with_checksum("till_sk_" + std::string(kId16).substr(1) + "_" + body));
  expect_refused(with_checksum("till_sk_" + std::string(kId16) + "A_" + body));
  expect_refused(with_checksum("till_sk_AbCdEfGh0123456-_" + body));
  expect_refused(with_checksum("till_sk_AbCdEfGh0123456__" + body));
  expect_refused(with_checksum("till_sk_" + std::string(kId16) + body));
  expect_refused(with_checksum("till_sk_" + std::string(kId16) + "-" + body));

  // Body: non-canonical trailing bits, padding, characters outside base64url.
  std::string non_canonical = body;
  ASSERT_EQ(non_canonical.size(), 50u);  // 37 bytes: the last character holds 4 unused bits
  ASSERT_EQ(non_canonical.back(), 'g');  // last byte 0x42: 0100 0010 -> "Qg"
  non_canonical.back() = 'h';            // the same byte with an unused bit set
  expect_refused(with_checksum("till_sk_" + std::string(kId16) + "_" + non_canonical));
  expect_refused(with_checksum("till_sk_" + std::string(kId16) + "_" + body + "=="));
  std::string bad_char = body;
  bad_char[10] = '+';
  expect_refused(with_checksum("till_sk_" + std::string(kId16) + "_" + bad_char));

  // Checksum: right value in the wrong form.
  std::string text = "till_sk_" + std::string(kId16) + "_" + body;
  uint32_t crc = crypto::crc32(text);
  expect_refused(text + crypto::base62_encode_fixed(crc, 7));
}

TEST(TokenTest, ErrorsNeverQuoteTheInput) {
  MasterKey master = random_master_key(1);
  IssuedToken issued = issue(TokenKind::kScoped, &master);
  std::string broken = issued.token;
  broken[20] = broken[20] == 'A' ? 'B' : 'A';
  for (const std::string& text : {broken, issued.token + "x", issued.token.substr(0, 40)}) {
    auto parsed = parse_token(text);
    ASSERT_FALSE(parsed);
    EXPECT_EQ(parsed.error().message.find(issued.key_id.substr(4)), std::string::npos);
    EXPECT_LT(parsed.error().message.size(), 30u);
  }
}

TEST(TokenTest, WrongMasterKeyCannotOpenTheCredential) {
  MasterKey master = random_master_key(1);
  IssuedToken issued = issue(TokenKind::kScoped, &master);
  auto parsed = parse_token(issued.token);
  ASSERT_TRUE(parsed);

  MasterKeyring other = keyring_of({random_master_key(1)});  // same version, different key
  auto credential = open_credential(other, *parsed);
  ASSERT_FALSE(credential);
  EXPECT_EQ(credential.error().code, ErrorCode::kInvalidApiKey);
  EXPECT_EQ(credential.error().message.find(kCredential), std::string::npos);

  MasterKeyring missing_version = keyring_of({random_master_key(2)});
  EXPECT_FALSE(open_credential(missing_version, *parsed));

  MasterKeyring right = keyring_of({master});
  EXPECT_TRUE(open_credential(right, *parsed));
}

TEST(TokenTest, SealedCredentialIsBoundToItsKeyId) {
  MasterKey master = random_master_key(1);
  MasterKeyring keyring = keyring_of({master});
  IssuedToken victim = issue(TokenKind::kScoped, &master, "sk-victims-real-key");
  IssuedToken thief = issue(TokenKind::kScoped, &master, "sk-thiefs-own-key");

  // The victim's body (secret and sealed credential) under the thief's id, checksum recomputed.
  std::string transplanted = assemble("till_sk_", thief.key_id.substr(4), body_of(victim.token));
  auto parsed = parse_token(transplanted);
  ASSERT_TRUE(parsed) << "the transplant must reach the GCM check";
  EXPECT_EQ(parsed->key_id, thief.key_id);
  auto credential = open_credential(keyring, *parsed);
  ASSERT_FALSE(credential);
  EXPECT_EQ(credential.error().code, ErrorCode::kInvalidApiKey);

  // Only the sealed part moved, onto the thief's own secret.
  crypto::Bytes thief_body = body_of(thief.token);
  crypto::Bytes victim_body = body_of(victim.token);
  thief_body.resize(37);
  thief_body.insert(thief_body.end(), victim_body.begin() + 37, victim_body.end());
  auto mixed = parse_token(assemble("till_sk_", thief.key_id.substr(4), thief_body));
  ASSERT_TRUE(mixed);
  EXPECT_TRUE(secret_matches(*mixed, thief.secret_hash));
  EXPECT_FALSE(open_credential(keyring, *mixed));
}

TEST(TokenTest, SealedCredentialIsBoundToItsMasterKeyVersion) {
  // Versions 1 and 2 with the same key bytes: only the associated data tells them apart.
  MasterKey v1 = random_master_key(1);
  MasterKey v2 = v1;
  v2.version = 2;
  MasterKeyring keyring = keyring_of({v1, v2});
  IssuedToken issued = issue(TokenKind::kScoped, &v1);
  crypto::Bytes body = body_of(issued.token);
  body[4] = 2;
  auto parsed = parse_token(assemble("till_sk_", issued.key_id.substr(4), body));
  ASSERT_TRUE(parsed);
  EXPECT_EQ(parsed->master_key_version, 2u);
  EXPECT_FALSE(open_credential(keyring, *parsed));
}

TEST(TokenTest, OlderMasterKeyVersionStillOpensAfterRotation) {
  MasterKey v1 = random_master_key(1);
  IssuedToken old_token = issue(TokenKind::kScoped, &v1);
  MasterKeyring rotated = keyring_of({random_master_key(2), v1});
  EXPECT_EQ(rotated.current().version, 2u);
  IssuedToken new_token = issue(TokenKind::kScoped, &rotated.current());

  for (const IssuedToken* issued : {&old_token, &new_token}) {
    auto parsed = parse_token(issued->token);
    ASSERT_TRUE(parsed);
    auto credential = open_credential(rotated, *parsed);
    ASSERT_TRUE(credential);
    EXPECT_EQ(*credential, kCredential);
  }
}

TEST(TokenTest, LongestSealableCredentialFitsTheCap) {
  MasterKey master = random_master_key(1);
  MasterKeyring keyring = keyring_of({master});
  std::string longest(kMaxSealedCredentialSize, 'k');
  IssuedToken issued = issue(TokenKind::kScoped, &master, longest);
  EXPECT_LE(issued.token.size(), kMaxTokenSize);
  EXPECT_GT(issued.token.size(), kMaxTokenSize - 4);
  auto parsed = parse_token(issued.token);
  ASSERT_TRUE(parsed) << parsed.error().message;
  auto credential = open_credential(keyring, *parsed);
  ASSERT_TRUE(credential);
  EXPECT_EQ(*credential, longest);

  auto too_long =
      issue_token(TokenKind::kScoped, new_key_id(TokenKind::kScoped), &master, longest + "k");
  ASSERT_FALSE(too_long);
  EXPECT_EQ(too_long.error().code, ErrorCode::kInvalidRequest);
  EXPECT_EQ(too_long.error().field, "upstream_key");
}

TEST(TokenTest, IssueRefusesCallerMistakes) {
  MasterKey master = random_master_key(1);
  for (std::string_view id : {"adm_AbCdEfGh01234567", "key_AbCdEfGh0123456", "key_AbCdEfGh0123456-",
                              "AbCdEfGh01234567", ""}) {
    auto issued = issue_token(TokenKind::kScoped, id, &master, kCredential);
    ASSERT_FALSE(issued) << id;
    EXPECT_EQ(issued.error().code, ErrorCode::kInternal);
  }
  EXPECT_FALSE(issue_token(TokenKind::kAdmin, "key_AbCdEfGh01234567", nullptr, ""));

  MasterKey version0 = master;
  version0.version = 0;
  auto unversioned =
      issue_token(TokenKind::kScoped, new_key_id(TokenKind::kScoped), &version0, "x");
  ASSERT_FALSE(unversioned);
  EXPECT_EQ(unversioned.error().code, ErrorCode::kInternal);

  auto empty = issue_token(TokenKind::kScoped, new_key_id(TokenKind::kScoped), &master, "");
  ASSERT_FALSE(empty);
  EXPECT_EQ(empty.error().code, ErrorCode::kInvalidRequest);
}

TEST(TokenTest, HasValidChecksumChecksOnlyPrefixLengthAndChecksum) {
  for (const std::string& token : sample_tokens()) EXPECT_TRUE(has_valid_checksum(token));
  // The body is not parsed: a scanner's question is "is this a till key?", not "is it valid?".
  crypto::Bytes bad_version = plain_body();
  bad_version[0] = 9;
  std::string text = assemble("till_sk_", kId16, bad_version);
  EXPECT_TRUE(has_valid_checksum(text));
  expect_refused(text);
  EXPECT_FALSE(has_valid_checksum(""));
  EXPECT_FALSE(has_valid_checksum("till_sk_"));
  EXPECT_FALSE(has_valid_checksum(with_checksum("till_sk_abc")));
  EXPECT_FALSE(has_valid_checksum(with_checksum("till_xx_" + std::string(kId16) + "_" +
                                                crypto::base64url_encode(plain_body()))));
}

}  // namespace
}  // namespace till
