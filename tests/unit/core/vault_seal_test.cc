#include "core/vault_seal.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <string_view>
#include <vector>

#include "core/crypto.h"
#include "core/master_key.h"
#include "unit/core/test_master_keys.h"

namespace till {
namespace {

constexpr std::string_view kName = "openai-prod";
constexpr std::string_view kSecret = "sk-proj-VAULTSECRETabcdefghijklmnopqrstuvwxyz0123456789";

using test::keyring_of;
using test::random_master_key;

VaultSeal seal(const MasterKey& master, std::string_view name = kName,
               std::string_view secret = kSecret) {
  auto sealed = seal_vault_secret(master, name, secret);
  EXPECT_TRUE(sealed) << sealed.error().message;
  return sealed ? std::move(*sealed) : VaultSeal{};
}

bool contains(const crypto::Bytes& haystack, std::string_view needle) {
  return std::search(haystack.begin(), haystack.end(), needle.begin(), needle.end()) !=
         haystack.end();
}

// Asserts that opening fails the documented way: kInternal, naming the credential and the master
// key version, and revealing neither the secret nor key material.
void expect_refused(const Result<std::string>& opened, std::string_view name, uint32_t version,
                    const MasterKey& master) {
  ASSERT_FALSE(opened) << "opened: " << *opened;
  const Error& error = opened.error();
  EXPECT_EQ(error.code, ErrorCode::kInternal);
  EXPECT_NE(error.message.find("\"" + std::string(name) + "\""), std::string::npos)
      << error.message;
  EXPECT_NE(error.message.find("master key v" + std::to_string(version)), std::string::npos)
      << error.message;
  EXPECT_EQ(error.message.find('\n'), std::string::npos);
  EXPECT_EQ(error.message.find(kSecret), std::string::npos) << error.message;
  EXPECT_EQ(error.message.find(kSecret.substr(8, 12)), std::string::npos) << error.message;
  EXPECT_EQ(error.message.find(crypto::base64_encode(master.key).substr(0, 12)), std::string::npos)
      << error.message;
  EXPECT_EQ(error.message.find(crypto::hex_encode(master.key).substr(0, 12)), std::string::npos)
      << error.message;
}

TEST(VaultSealTest, RoundTrip) {
  MasterKey master = random_master_key(1);
  VaultSeal sealed = seal(master);
  EXPECT_EQ(sealed.master_key_version, 1u);
  EXPECT_EQ(sealed.wrapped_key.size(), 32 + crypto::kGcmOverhead);
  EXPECT_EQ(sealed.sealed_secret.size(), kSecret.size() + crypto::kGcmOverhead);

  auto opened = open_vault_secret(keyring_of({master}), kName, sealed);
  ASSERT_TRUE(opened) << opened.error().message;
  EXPECT_EQ(*opened, kSecret);
}

TEST(VaultSealTest, RoundTripsAnySecretUpToTheLimit) {
  MasterKey master = random_master_key(4);
  MasterKeyring keyring = keyring_of({random_master_key(1), master});
  std::string binary;
  for (int i = 0; i < 256; ++i) binary.push_back(static_cast<char>(i));
  for (const std::string& secret :
       {std::string("x"), binary, std::string(kMaxVaultSecretSize, 'k')}) {
    VaultSeal sealed = seal(master, kName, secret);
    EXPECT_EQ(sealed.master_key_version, 4u);
    auto opened = open_vault_secret(keyring, kName, sealed);
    ASSERT_TRUE(opened) << opened.error().message;
    EXPECT_EQ(*opened, secret);
  }
}

TEST(VaultSealTest, EachSealHasItsOwnDataKeyAndNonces) {
  MasterKey master = random_master_key(1);
  VaultSeal a = seal(master), b = seal(master);
  EXPECT_NE(a.wrapped_key, b.wrapped_key);
  EXPECT_NE(a.sealed_secret, b.sealed_secret);
  EXPECT_FALSE(a == b);
  EXPECT_TRUE(a == a);
}

TEST(VaultSealTest, TheSecretAppearsNowhereInTheSeal) {
  MasterKey master = random_master_key(1);
  VaultSeal sealed = seal(master);
  for (const crypto::Bytes* part : {&sealed.wrapped_key, &sealed.sealed_secret}) {
    EXPECT_FALSE(contains(*part, kSecret));
    // Nor any 8-byte stretch of it.
    for (size_t i = 0; i + 8 <= kSecret.size(); ++i) {
      EXPECT_FALSE(contains(*part, kSecret.substr(i, 8))) << i;
    }
  }
}

TEST(VaultSealTest, WrongMasterKeyFails) {
  MasterKey master = random_master_key(1);
  VaultSeal sealed = seal(master);
  MasterKey other = random_master_key(1);
  expect_refused(open_vault_secret(keyring_of({other}), kName, sealed), kName, 1, other);
}

TEST(VaultSealTest, MissingMasterKeyVersionFails) {
  MasterKey master = random_master_key(2);
  VaultSeal sealed = seal(master);
  MasterKey v1 = random_master_key(1), v3 = random_master_key(3);
  auto opened = open_vault_secret(keyring_of({v1, v3}), kName, sealed);
  expect_refused(opened, kName, 2, master);
  EXPECT_NE(opened.error().message.find("no such version"), std::string::npos)
      << opened.error().message;
}

TEST(VaultSealTest, SealOpenedUnderAnotherNameFails) {
  MasterKey master = random_master_key(1);
  MasterKeyring keyring = keyring_of({master});
  VaultSeal sealed = seal(master, "openai-prod");
  for (std::string_view other : {"openai-dev", "openai-prod ", "", "openai-prod:mk1"}) {
    expect_refused(open_vault_secret(keyring, other, sealed), other, 1, master);
  }
}

TEST(VaultSealTest, WrappedKeySwappedBetweenSealsFails) {
  MasterKey master = random_master_key(1);
  MasterKeyring keyring = keyring_of({master});
  VaultSeal a = seal(master, kName, kSecret);
  VaultSeal b = seal(master, kName, "another-secret");
  std::swap(a.wrapped_key, b.wrapped_key);
  expect_refused(open_vault_secret(keyring, kName, a), kName, 1, master);
  expect_refused(open_vault_secret(keyring, kName, b), kName, 1, master);
}

TEST(VaultSealTest, ChangedMasterKeyVersionFails) {
  MasterKey v1 = random_master_key(1);
  MasterKey v2 = v1;  // the same key bytes under another version: only the aad differs
  v2.version = 2;
  MasterKeyring keyring = keyring_of({v1, v2});
  VaultSeal sealed = seal(v1);
  sealed.master_key_version = 2;
  expect_refused(open_vault_secret(keyring, kName, sealed), kName, 2, v1);
  sealed.master_key_version = 0;
  expect_refused(open_vault_secret(keyring, kName, sealed), kName, 0, v1);
}

TEST(VaultSealTest, AnyChangedByteFails) {
  MasterKey master = random_master_key(1);
  MasterKeyring keyring = keyring_of({master});
  const VaultSeal sealed = seal(master);
  for (auto part : {&VaultSeal::wrapped_key, &VaultSeal::sealed_secret}) {
    for (size_t i = 0; i < (sealed.*part).size(); ++i) {
      VaultSeal changed = sealed;
      (changed.*part)[i] ^= 0x01;
      expect_refused(open_vault_secret(keyring, kName, changed), kName, 1, master);
    }
    VaultSeal truncated = sealed;
    (truncated.*part).pop_back();
    expect_refused(open_vault_secret(keyring, kName, truncated), kName, 1, master);
    VaultSeal emptied = sealed;
    (emptied.*part).clear();
    expect_refused(open_vault_secret(keyring, kName, emptied), kName, 1, master);
  }
}

TEST(VaultSealTest, RewrapToANewVersionOpensWithOnlyThatVersion) {
  MasterKey v1 = random_master_key(1);
  MasterKey v2 = random_master_key(2);
  VaultSeal sealed = seal(v1);

  auto rewrapped = rewrap_vault_seal(keyring_of({v1}), kName, sealed, v2);
  ASSERT_TRUE(rewrapped) << rewrapped.error().message;
  EXPECT_EQ(rewrapped->master_key_version, 2u);
  EXPECT_EQ(rewrapped->sealed_secret, sealed.sealed_secret);
  EXPECT_NE(rewrapped->wrapped_key, sealed.wrapped_key);

  auto opened = open_vault_secret(keyring_of({v2}), kName, *rewrapped);
  ASSERT_TRUE(opened) << opened.error().message;
  EXPECT_EQ(*opened, kSecret);

  // The old master key no longer opens it, and the new one does not open the old seal.
  expect_refused(open_vault_secret(keyring_of({v1}), kName, *rewrapped), kName, 2, v1);
  expect_refused(open_vault_secret(keyring_of({v2}), kName, sealed), kName, 1, v2);
}

TEST(VaultSealTest, RewrapFailsAsOpenWould) {
  MasterKey v1 = random_master_key(1);
  MasterKey v2 = random_master_key(2);
  MasterKeyring keyring = keyring_of({v1});
  VaultSeal sealed = seal(v1);

  auto renamed = rewrap_vault_seal(keyring, "other", sealed, v2);
  ASSERT_FALSE(renamed);
  EXPECT_EQ(renamed.error().code, ErrorCode::kInternal);
  EXPECT_NE(renamed.error().message.find("\"other\""), std::string::npos);
  EXPECT_EQ(renamed.error().message.find(kSecret), std::string::npos);

  auto missing = rewrap_vault_seal(keyring_of({v2}), kName, sealed, v2);
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code, ErrorCode::kInternal);
  EXPECT_NE(missing.error().message.find("master key v1"), std::string::npos);

  // A damaged secret is caught before it is carried over to the new master key version.
  VaultSeal damaged = sealed;
  damaged.sealed_secret.back() ^= 0x80;
  auto carried = rewrap_vault_seal(keyring, kName, damaged, v2);
  ASSERT_FALSE(carried);
  EXPECT_EQ(carried.error().code, ErrorCode::kInternal);
  EXPECT_EQ(carried.error().message, open_vault_secret(keyring, kName, damaged).error().message);

  EXPECT_FALSE(rewrap_vault_seal(keyring, kName, sealed, MasterKey{.version = 0}));
}

TEST(VaultSealTest, RefusesEmptyAndOversizeSecrets) {
  MasterKey master = random_master_key(1);
  for (const std::string& secret : {std::string(), std::string(kMaxVaultSecretSize + 1, 's')}) {
    auto sealed = seal_vault_secret(master, kName, secret);
    ASSERT_FALSE(sealed) << secret.size();
    EXPECT_EQ(sealed.error().code, ErrorCode::kInvalidRequest);
    EXPECT_EQ(sealed.error().field, "secret");
    EXPECT_EQ(sealed.error().message.find("sss"), std::string::npos);
  }
}

TEST(VaultSealTest, RefusesMasterKeyVersionZero) {
  auto sealed = seal_vault_secret(MasterKey{.version = 0}, kName, kSecret);
  ASSERT_FALSE(sealed);
  EXPECT_EQ(sealed.error().code, ErrorCode::kInternal);
  EXPECT_EQ(sealed.error().message.find(kSecret), std::string::npos);
}

}  // namespace
}  // namespace till
