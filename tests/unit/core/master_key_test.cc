#include "core/master_key.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "core/crypto.h"

namespace till {
namespace {

namespace fs = std::filesystem;

class MasterKeyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = (fs::temp_directory_path() / "till-master-key-XXXXXX").string();
    ASSERT_NE(::mkdtemp(pattern.data()), nullptr);
    dir_ = pattern;
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  fs::path key_file() const { return dir_ / "master.key"; }

  // Writes `text` as the key file with `mode`.
  void write_key_file(const std::string& text, mode_t mode = 0600) const {
    {
      std::ofstream out(key_file(), std::ios::binary | std::ios::trunc);
      out << text;
    }
    ASSERT_EQ(::chmod(key_file().c_str(), mode), 0);
  }

  static std::string read_text(const fs::path& path) {
    std::ifstream in(path, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }

  static mode_t mode_of(const fs::path& path) {
    struct stat st {};
    EXPECT_EQ(::stat(path.c_str(), &st), 0);
    return st.st_mode & 07777;
  }

  // The error of loading this test's directory without TILL_MASTER_KEY.
  Error load_error() const {
    auto keyring = MasterKeyring::load_or_create(dir_, nullptr);
    EXPECT_FALSE(keyring);
    return keyring ? Error{} : keyring.error();
  }

  fs::path dir_;
};

std::array<uint8_t, 32> random_key() {
  std::array<uint8_t, 32> key;
  crypto::random_bytes(key);
  return key;
}

std::string b64(std::span<const uint8_t> bytes) { return crypto::base64_encode(bytes); }

// Asserts that `message` contains none of the given key material, in any of its encodings.
void expect_no_key_material(const std::string& message, std::span<const uint8_t> key) {
  EXPECT_EQ(message.find(crypto::base64_encode(key)), std::string::npos) << message;
  EXPECT_EQ(message.find(crypto::base64url_encode(key)), std::string::npos) << message;
  EXPECT_EQ(message.find(crypto::hex_encode(key)), std::string::npos) << message;
  // Nor a recognisable chunk of it.
  EXPECT_EQ(message.find(crypto::base64_encode(key).substr(0, 12)), std::string::npos) << message;
}

TEST_F(MasterKeyTest, CreatesAPrivateFileOnFirstLoad) {
  auto keyring = MasterKeyring::load_or_create(dir_, nullptr);
  ASSERT_TRUE(keyring) << keyring.error().message;
  EXPECT_EQ(keyring->current().version, 1u);
  EXPECT_NE(keyring->current().key, (std::array<uint8_t, 32>{}));
  ASSERT_TRUE(fs::is_regular_file(key_file()));
  EXPECT_EQ(mode_of(key_file()), 0600u);

  std::string text = read_text(key_file());
  EXPECT_TRUE(text.starts_with("# till master key")) << text;
  EXPECT_NE(text.find("secret"), std::string::npos);
  EXPECT_NE(text.find("back it up"), std::string::npos);
  EXPECT_NE(text.find("\ntill-master-key v1 " + b64(keyring->current().key) + "\n"),
            std::string::npos);

  // Nothing else is left in the directory (no temporary file).
  EXPECT_EQ(std::distance(fs::directory_iterator(dir_), fs::directory_iterator()), 1);
}

TEST_F(MasterKeyTest, ReloadsTheSameKey) {
  auto first = MasterKeyring::load_or_create(dir_, nullptr);
  ASSERT_TRUE(first);
  auto second = MasterKeyring::load_or_create(dir_, nullptr);
  ASSERT_TRUE(second) << second.error().message;
  EXPECT_EQ(second->current().key, first->current().key);
  EXPECT_EQ(second->current().version, 1u);
  ASSERT_NE(second->find(1), nullptr);
  EXPECT_EQ(second->find(2), nullptr);
  EXPECT_EQ(second->find(0), nullptr);
}

TEST_F(MasterKeyTest, CreatesAMissingDataDirectoryPrivately) {
  fs::path nested = dir_ / "a" / "data";
  auto keyring = MasterKeyring::load_or_create(nested, nullptr);
  ASSERT_TRUE(keyring) << keyring.error().message;
  EXPECT_EQ(mode_of(nested), 0700u);
  EXPECT_EQ(mode_of(nested / "master.key"), 0600u);
}

TEST_F(MasterKeyTest, ConcurrentFirstLoadsAgreeOnOneKey) {
  for (int round = 0; round < 10; ++round) {
    fs::path data = dir_ / ("round" + std::to_string(round));
    ASSERT_TRUE(fs::create_directory(data));
    constexpr int kThreads = 6;
    std::vector<std::array<uint8_t, 32>> keys(kThreads);
    std::vector<std::string> errors(kThreads);
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([&, t] {
        auto keyring = MasterKeyring::load_or_create(data, nullptr);
        if (keyring) {
          keys[t] = keyring->current().key;
        } else {
          errors[t] = keyring.error().message;
        }
      });
    }
    for (auto& thread : threads) thread.join();
    for (int t = 0; t < kThreads; ++t) {
      EXPECT_EQ(errors[t], "");
      EXPECT_EQ(keys[t], keys[0]);
    }
    EXPECT_EQ(std::distance(fs::directory_iterator(data), fs::directory_iterator()), 1);
  }
}

TEST_F(MasterKeyTest, RefusesAFileReadableByOthersWithAChmodHint) {
  auto created = MasterKeyring::load_or_create(dir_, nullptr);
  ASSERT_TRUE(created);
  ASSERT_EQ(::chmod(key_file().c_str(), 0644), 0);
  Error error = load_error();
  EXPECT_EQ(error.code, ErrorCode::kInternal);
  EXPECT_NE(error.message.find(key_file().string()), std::string::npos) << error.message;
  EXPECT_NE(error.message.find("(mode 0644)"), std::string::npos) << error.message;
  EXPECT_NE(error.message.find("run: chmod 600 " + key_file().string()), std::string::npos)
      << error.message;
  EXPECT_EQ(error.message.find('\n'), std::string::npos);
  expect_no_key_material(error.message, created->current().key);
}

TEST_F(MasterKeyTest, RefusesAnyGroupOrOtherBit) {
  ASSERT_TRUE(MasterKeyring::load_or_create(dir_, nullptr));
  for (mode_t mode : {0640, 0604, 0620, 0602, 0610, 0601, 0660, 0666}) {
    ASSERT_EQ(::chmod(key_file().c_str(), mode), 0);
    Error error = load_error();
    EXPECT_NE(error.message.find("chmod 600"), std::string::npos) << std::oct << mode;
  }
  ASSERT_EQ(::chmod(key_file().c_str(), 0400), 0);
  EXPECT_TRUE(MasterKeyring::load_or_create(dir_, nullptr));
}

TEST_F(MasterKeyTest, RefusesMalformedLines) {
  auto key = random_key();
  std::string k = b64(key);
  for (const std::string& line :
       {"till-master-key 1 " + k, "till-master-key v0 " + k, "till-master-key v01 " + k,
        "till-master-key v-1 " + k, "till-master-key v4294967296 " + k,
        "till-master-key v1 " + k + " extra", "till-master-key " + k, "till-master-keys v1 " + k,
        "TILL-MASTER-KEY v1 " + k, "v1 " + k, k, "till-master-key  v1x " + k,
        std::string("till-master-key v1")}) {
    write_key_file("# comment\n\n" + line + "\n");
    Error error = load_error();
    EXPECT_EQ(error.code, ErrorCode::kInternal);
    EXPECT_NE(error.message.find(key_file().string() + " line 3 is malformed"), std::string::npos)
        << error.message;
    expect_no_key_material(error.message, key);
  }
}

TEST_F(MasterKeyTest, RefusesAKeyThatIsNot32Bytes) {
  auto key = random_key();
  std::array<uint8_t, 33> longer{};
  std::copy(key.begin(), key.end(), longer.begin());
  for (const std::string& encoded :
       {b64(std::span(key).first(16)), b64(std::span(key).first(31)), b64(longer),
        b64(key).substr(1), b64(key) + "=", "not-base64!" + b64(key).substr(11)}) {
    write_key_file("till-master-key v1 " + encoded + "\n");
    Error error = load_error();
    EXPECT_EQ(error.code, ErrorCode::kInternal);
    EXPECT_NE(error.message.find("line 1"), std::string::npos) << error.message;
    EXPECT_NE(error.message.find("32 bytes"), std::string::npos) << error.message;
    expect_no_key_material(error.message, key);
  }
}

TEST_F(MasterKeyTest, RefusesRepeatedVersions) {
  auto a = random_key(), b = random_key();
  write_key_file("till-master-key v1 " + b64(a) + "\ntill-master-key v2 " + b64(b) +
                 "\ntill-master-key v1 " + b64(b) + "\n");
  Error error = load_error();
  EXPECT_EQ(error.code, ErrorCode::kInternal);
  EXPECT_NE(error.message.find("v1 appears more than once"), std::string::npos) << error.message;
  expect_no_key_material(error.message, a);
  expect_no_key_material(error.message, b);
}

TEST_F(MasterKeyTest, RefusesAFileWithoutKeys) {
  for (const std::string& text : {std::string(), std::string("\n\n"), std::string("# only\n")}) {
    write_key_file(text);
    Error error = load_error();
    EXPECT_EQ(error.code, ErrorCode::kInternal);
    EXPECT_NE(error.message.find("contains no key"), std::string::npos) << error.message;
  }
}

TEST_F(MasterKeyTest, RefusesSomethingThatIsNotARegularFile) {
  ASSERT_TRUE(fs::create_directory(key_file()));
  ASSERT_EQ(::chmod(key_file().c_str(), 0700), 0);
  Error error = load_error();
  EXPECT_NE(error.message.find("not a regular file"), std::string::npos) << error.message;

  // A FIFO must be refused too, without blocking in open() for a writer that never comes.
  fs::remove(key_file());
  ASSERT_EQ(::mkfifo(key_file().c_str(), 0600), 0);
  error = load_error();
  EXPECT_NE(error.message.find("not a regular file"), std::string::npos) << error.message;
}

TEST_F(MasterKeyTest, RefusesAnOversizedFile) {
  write_key_file(std::string(100 * 1024, '#'));
  Error error = load_error();
  EXPECT_NE(error.message.find("larger than"), std::string::npos) << error.message;
}

TEST_F(MasterKeyTest, ReadsSeveralVersionsCommentsAndCrlf) {
  auto a = random_key(), b = random_key();
  write_key_file("# till master key\r\n\r\n  till-master-key v7 " + b64(b) +
                 "\r\n\t# old one:\n till-master-key\tv3   " + b64(a));
  auto keyring = MasterKeyring::load_or_create(dir_, nullptr);
  ASSERT_TRUE(keyring) << keyring.error().message;
  EXPECT_EQ(keyring->current().version, 7u);
  EXPECT_EQ(keyring->current().key, b);
  ASSERT_NE(keyring->find(3), nullptr);
  EXPECT_EQ(keyring->find(3)->key, a);
  EXPECT_EQ(keyring->find(4), nullptr);
}

TEST_F(MasterKeyTest, EnvironmentKeyOverridesTheFileAndWritesNothing) {
  auto key = random_key();
  std::string value = b64(key);
  auto keyring = MasterKeyring::load_or_create(dir_, value.c_str());
  ASSERT_TRUE(keyring) << keyring.error().message;
  EXPECT_EQ(keyring->current().version, 1u);
  EXPECT_EQ(keyring->current().key, key);
  EXPECT_FALSE(fs::exists(key_file()));

  // Surrounding whitespace (a trailing newline from a file) is tolerated.
  std::string padded = "  " + value + "\n";
  auto again = MasterKeyring::load_or_create(dir_, padded.c_str());
  ASSERT_TRUE(again);
  EXPECT_EQ(again->current().key, key);

  // An existing file, even a bad one, is not consulted.
  write_key_file("garbage", 0644);
  EXPECT_TRUE(MasterKeyring::load_or_create(dir_, value.c_str()));
}

TEST_F(MasterKeyTest, EnvironmentKeyMustBe32BytesOfBase64) {
  auto key = random_key();
  std::array<uint8_t, 48> longer{};
  std::copy(key.begin(), key.end(), longer.begin());
  // `text` with its first characters replaced by `head`.
  auto overwrite = [](std::string text, std::string_view head) {
    for (size_t i = 0; i < head.size(); ++i) text[i] = head[i];
    return text;
  };
  struct Case {
    std::string value;
    std::string expected;
  };
  const Case cases[] = {
      {"", "set but empty"},
      {"   ", "set but empty"},
      {b64(key).substr(0, 43), "not valid base64"},
      {b64(key) + "====", "not valid base64"},
      {overwrite(b64(key), "-"), "not valid base64"},
      {overwrite(b64(key), "@@@@"), "not valid base64"},
      {b64(std::span(key).first(16)), "exactly 32 bytes, not 16"},
      {b64(longer), "exactly 32 bytes, not 48"},
  };
  for (const Case& c : cases) {
    auto keyring = MasterKeyring::load_or_create(dir_, c.value.c_str());
    ASSERT_FALSE(keyring) << c.value;
    EXPECT_EQ(keyring.error().code, ErrorCode::kInternal);
    EXPECT_NE(keyring.error().message.find("TILL_MASTER_KEY"), std::string::npos);
    EXPECT_NE(keyring.error().message.find(c.expected), std::string::npos)
        << keyring.error().message;
    EXPECT_NE(keyring.error().message.find("openssl rand -base64 32"), std::string::npos);
    expect_no_key_material(keyring.error().message, key);
    if (c.value.size() > 8) {
      EXPECT_EQ(keyring.error().message.find(c.value.substr(4, 8)), std::string::npos);
    }
  }
  EXPECT_FALSE(fs::exists(key_file()));
}

TEST(MasterKeyringTest, FromKeysValidates) {
  EXPECT_FALSE(MasterKeyring::from_keys({}));
  EXPECT_FALSE(MasterKeyring::from_keys({MasterKey{.version = 0}}));
  EXPECT_FALSE(MasterKeyring::from_keys({MasterKey{.version = 2}, MasterKey{.version = 2}}));
  auto keyring = MasterKeyring::from_keys(
      {MasterKey{.version = 5}, MasterKey{.version = 1}, MasterKey{.version = 3}});
  ASSERT_TRUE(keyring);
  EXPECT_EQ(keyring->current().version, 5u);
  for (uint32_t v : {1u, 3u, 5u}) {
    ASSERT_NE(keyring->find(v), nullptr);
    EXPECT_EQ(keyring->find(v)->version, v);
  }
  for (uint32_t v : {0u, 2u, 4u, 6u, UINT32_MAX}) EXPECT_EQ(keyring->find(v), nullptr);

  MasterKeyring copy = *keyring;
  MasterKeyring moved = std::move(*keyring);
  EXPECT_EQ(copy.current().version, 5u);
  EXPECT_EQ(moved.current().version, 5u);
}

}  // namespace
}  // namespace till
