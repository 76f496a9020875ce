// KeyCache with rotation and vault credentials, on a real store and a fake clock.
#include "proxy/key_cache.h"

#include <gtest/gtest.h>

#include "api/credential_vault.h"
#include "api/key_issuer.h"
#include "unit/temp_dir.h"

namespace till {
namespace {

using namespace std::chrono_literals;

const Timestamp kT0 = from_unix_ms(1'764'860'400'000);
constexpr std::string_view kUpstream = "sk-upstream-0123456789";

class KeyCacheTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto store = open_sqlite_store(dir_.path() + "/till.db");
    ASSERT_TRUE(store) << store.error().message;
    store_ = std::move(*store);
  }

  CreatedKey create(NewKeySpec spec = {}) {
    spec.provider = "openai";
    if (!spec.credential) spec.upstream_key = std::string(kUpstream);
    auto created = create_scoped_key(*store_, keyring_, spec, clock_.now());
    EXPECT_TRUE(created) << created.error().message;
    return created ? std::move(*created) : CreatedKey{};
  }

  static MasterKeyring test_keyring() {
    MasterKey key{.version = 1};
    key.key.fill(7);
    return *MasterKeyring::from_keys({key});
  }

  test::TempDir dir_;
  std::unique_ptr<Store> store_;
  FakeClock clock_{kT0};
  MasterKeyring keyring_ = test_keyring();
};

TEST_F(KeyCacheTest, PreviousTokenWorksUntilItsGraceEndsEvenWhenCached) {
  KeyCache cache(*store_, keyring_, clock_);
  CreatedKey key = create();
  auto rotated = rotate_scoped_key(*store_, keyring_, key.record, kUpstream, 10min, clock_.now());
  ASSERT_TRUE(rotated) << rotated.error().message;

  clock_.advance(10min - 500ms);
  auto old_token = cache.authenticate(key.token);
  ASSERT_TRUE(old_token) << old_token.error().message;
  EXPECT_EQ(old_token.value()->credential, kUpstream);
  // Within the cache's one-second freshness, but past the grace: refused.
  clock_.advance(500ms);
  auto refused = cache.authenticate(key.token);
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code, ErrorCode::kInvalidApiKey);

  auto new_token = cache.authenticate(rotated->token);
  ASSERT_TRUE(new_token) << new_token.error().message;
  EXPECT_EQ(new_token.value()->credential, kUpstream);
}

TEST_F(KeyCacheTest, TokenPastItsRotationDueTimeIsRefused) {
  KeyCache cache(*store_, keyring_, clock_);
  NewKeySpec spec;
  spec.rotate_every = 1h;
  CreatedKey key = create(spec);
  clock_.advance(1h - 1ms);
  ASSERT_TRUE(cache.authenticate(key.token));
  clock_.advance(1ms);
  auto refused = cache.authenticate(key.token);
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code, ErrorCode::kInvalidApiKey);
  EXPECT_NE(refused.error().message.find("due for rotation"), std::string::npos);

  // A rotation gives a token with a fresh lifetime.
  auto rotated = rotate_scoped_key(*store_, keyring_, key.record, kUpstream, 0ms, clock_.now());
  ASSERT_TRUE(rotated);
  EXPECT_TRUE(cache.authenticate(rotated->token));
}

TEST_F(KeyCacheTest, VaultKeysUseTheCurrentSecret) {
  KeyCache cache(*store_, keyring_, clock_);
  CredentialVault vault(*store_, keyring_, clock_);
  ASSERT_TRUE(vault.add(NewCredentialSpec{"main", "openai", "sk-first", std::nullopt}));
  NewKeySpec spec;
  spec.credential = "main";
  CreatedKey key = create(spec);
  EXPECT_EQ(key.record.seal_version, 0u);

  auto first = cache.authenticate(key.token);
  ASSERT_TRUE(first) << first.error().message;
  EXPECT_EQ(first.value()->credential, "sk-first");

  ASSERT_TRUE(vault.replace_secret("main", "sk-second"));
  cache.invalidate_credential("main");
  auto second = cache.authenticate(key.token);
  ASSERT_TRUE(second);
  EXPECT_EQ(second.value()->credential, "sk-second");

  // Removed by force: the key's requests fail, naming the credential, not the agent's key.
  ASSERT_TRUE(store_->delete_credential("main", /*force=*/true));
  cache.invalidate_credential("main");
  auto missing = cache.authenticate(key.token);
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code, ErrorCode::kUpstreamError);
  EXPECT_NE(missing.error().message.find("'main'"), std::string::npos);
}

}  // namespace
}  // namespace till
