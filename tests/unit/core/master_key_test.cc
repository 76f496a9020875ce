#include "core/master_key.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <utility>
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

// Every key of `keyring`, by version.
std::vector<std::pair<uint32_t, std::array<uint8_t, 32>>> keys_of(const MasterKeyring& keyring) {
  std::vector<std::pair<uint32_t, std::array<uint8_t, 32>>> keys;
  for (uint32_t v : keyring.versions()) keys.emplace_back(v, keyring.find(v)->key);
  return keys;
}

TEST_F(MasterKeyTest, AddVersionAppendsANewRandomKey) {
  auto first = MasterKeyring::load_or_create(dir_, nullptr);
  ASSERT_TRUE(first) << first.error().message;

  auto second = MasterKeyring::add_version(dir_);
  ASSERT_TRUE(second) << second.error().message;
  EXPECT_EQ(second->versions(), (std::vector<uint32_t>{1, 2}));
  EXPECT_EQ(second->current().version, 2u);
  auto third = MasterKeyring::add_version(dir_);
  ASSERT_TRUE(third) << third.error().message;
  EXPECT_EQ(third->versions(), (std::vector<uint32_t>{1, 2, 3}));
  EXPECT_EQ(third->current().version, 3u);

  // The old keys are kept as they were; the new ones are random and distinct.
  EXPECT_EQ(third->find(1)->key, first->current().key);
  EXPECT_EQ(third->find(2)->key, second->current().key);
  EXPECT_NE(third->find(1)->key, third->find(2)->key);
  EXPECT_NE(third->find(2)->key, third->find(3)->key);
  EXPECT_NE(third->find(1)->key, third->find(3)->key);
  EXPECT_NE(third->find(3)->key, (std::array<uint8_t, 32>{}));

  EXPECT_EQ(mode_of(key_file()), 0600u);
  auto reloaded = MasterKeyring::load_or_create(dir_, nullptr);
  ASSERT_TRUE(reloaded) << reloaded.error().message;
  EXPECT_EQ(keys_of(*reloaded), keys_of(*third));
  EXPECT_EQ(reloaded->current().version, 3u);

  // No temporary file is left behind.
  EXPECT_EQ(std::distance(fs::directory_iterator(dir_), fs::directory_iterator()), 1);
}

TEST_F(MasterKeyTest, VersionsAreAscending) {
  auto keyring = MasterKeyring::from_keys(
      {MasterKey{.version = 9}, MasterKey{.version = 2}, MasterKey{.version = 4}});
  ASSERT_TRUE(keyring);
  EXPECT_EQ(keyring->versions(), (std::vector<uint32_t>{2, 4, 9}));
}

TEST_F(MasterKeyTest, AddVersionFollowsTheHighestVersion) {
  auto a = random_key(), b = random_key();
  write_key_file("till-master-key v7 " + b64(a) + "\ntill-master-key v3 " + b64(b) + "\n");
  auto keyring = MasterKeyring::add_version(dir_);
  ASSERT_TRUE(keyring) << keyring.error().message;
  EXPECT_EQ(keyring->versions(), (std::vector<uint32_t>{3, 7, 8}));
  EXPECT_EQ(keyring->find(7)->key, a);
  EXPECT_EQ(keyring->find(3)->key, b);
}

TEST_F(MasterKeyTest, RotationKeepsCommentLines) {
  auto a = random_key(), b = random_key();
  // CRLF line ends, indentation, and no line break at the end of the file.
  const std::string original =
      "# till master key: keep it secret\r\n\r\n# old one:\n"
      "till-master-key v1 " +
      b64(a) +
      "\r\n  # current:\n"
      "till-master-key v2 " +
      b64(b);
  write_key_file(original);

  auto added = MasterKeyring::add_version(dir_);
  ASSERT_TRUE(added) << added.error().message;
  std::string text = read_text(key_file());
  EXPECT_TRUE(text.starts_with(original + "\n")) << text;
  EXPECT_TRUE(text.ends_with("\ntill-master-key v3 " + b64(added->current().key) + "\n")) << text;

  auto removed = MasterKeyring::remove_version(dir_, 1);
  ASSERT_TRUE(removed) << removed.error().message;
  EXPECT_EQ(read_text(key_file()),
            "# till master key: keep it secret\r\n\r\n# old one:\n  # current:\n"
            "till-master-key v2 " +
                b64(b) + "\ntill-master-key v3 " + b64(added->current().key) + "\n");
  EXPECT_EQ(mode_of(key_file()), 0600u);
}

TEST_F(MasterKeyTest, RemoveVersionRetiresAnOldKey) {
  ASSERT_TRUE(MasterKeyring::load_or_create(dir_, nullptr));
  ASSERT_TRUE(MasterKeyring::add_version(dir_));
  auto three = MasterKeyring::add_version(dir_);
  ASSERT_TRUE(three);

  auto removed = MasterKeyring::remove_version(dir_, 1);
  ASSERT_TRUE(removed) << removed.error().message;
  EXPECT_EQ(removed->versions(), (std::vector<uint32_t>{2, 3}));
  EXPECT_EQ(removed->find(1), nullptr);

  auto reloaded = MasterKeyring::load_or_create(dir_, nullptr);
  ASSERT_TRUE(reloaded) << reloaded.error().message;
  EXPECT_EQ(reloaded->versions(), (std::vector<uint32_t>{2, 3}));
  EXPECT_EQ(reloaded->find(1), nullptr);
  EXPECT_EQ(reloaded->find(2)->key, three->find(2)->key);
  EXPECT_EQ(reloaded->find(3)->key, three->find(3)->key);
  EXPECT_EQ(mode_of(key_file()), 0600u);
  EXPECT_EQ(std::distance(fs::directory_iterator(dir_), fs::directory_iterator()), 1);

  // A removed version is unknown from then on; a new one never reuses a retired number.
  auto again = MasterKeyring::remove_version(dir_, 1);
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().code, ErrorCode::kNotFound);
  ASSERT_TRUE(MasterKeyring::remove_version(dir_, 2));
  auto four = MasterKeyring::add_version(dir_);
  ASSERT_TRUE(four);
  EXPECT_EQ(four->versions(), (std::vector<uint32_t>{3, 4}));
}

TEST_F(MasterKeyTest, RemoveVersionRefusesTheCurrentVersion) {
  ASSERT_TRUE(MasterKeyring::load_or_create(dir_, nullptr));
  ASSERT_TRUE(MasterKeyring::add_version(dir_));
  auto keyring = MasterKeyring::add_version(dir_);
  ASSERT_TRUE(keyring);
  const std::string before = read_text(key_file());

  auto removed = MasterKeyring::remove_version(dir_, 3);
  ASSERT_FALSE(removed);
  EXPECT_EQ(removed.error().code, ErrorCode::kConflict);
  EXPECT_EQ(removed.error().message,
            "master key v3 is the current one; rotate to a new version before retiring it");
  EXPECT_EQ(read_text(key_file()), before);

  // A lone key is the current one too.
  fs::remove(key_file());
  ASSERT_TRUE(MasterKeyring::load_or_create(dir_, nullptr));
  auto lone = MasterKeyring::remove_version(dir_, 1);
  ASSERT_FALSE(lone);
  EXPECT_EQ(lone.error().code, ErrorCode::kConflict);
}

TEST_F(MasterKeyTest, RemoveVersionRefusesAnUnknownVersion) {
  auto keyring = MasterKeyring::load_or_create(dir_, nullptr);
  ASSERT_TRUE(keyring);
  ASSERT_TRUE(MasterKeyring::add_version(dir_));
  const std::string before = read_text(key_file());
  for (uint32_t version : {0u, 3u, 17u, UINT32_MAX}) {
    auto removed = MasterKeyring::remove_version(dir_, version);
    ASSERT_FALSE(removed) << version;
    EXPECT_EQ(removed.error().code, ErrorCode::kNotFound);
    EXPECT_NE(removed.error().message.find("v" + std::to_string(version)), std::string::npos)
        << removed.error().message;
    EXPECT_NE(removed.error().message.find(key_file().string()), std::string::npos);
    expect_no_key_material(removed.error().message, keyring->current().key);
  }
  EXPECT_EQ(read_text(key_file()), before);
}

TEST_F(MasterKeyTest, RotationRefusesAFileLoadWouldRefuse) {
  auto created = MasterKeyring::load_or_create(dir_, nullptr);
  ASSERT_TRUE(created);
  ASSERT_TRUE(MasterKeyring::add_version(dir_));
  ASSERT_EQ(::chmod(key_file().c_str(), 0640), 0);
  const std::string before = read_text(key_file());
  for (auto rotate : {+[](const fs::path& d) { return MasterKeyring::add_version(d); },
                      +[](const fs::path& d) { return MasterKeyring::remove_version(d, 1); }}) {
    auto keyring = rotate(dir_);
    ASSERT_FALSE(keyring);
    EXPECT_EQ(keyring.error().code, ErrorCode::kInternal);
    EXPECT_NE(keyring.error().message.find("(mode 0640)"), std::string::npos)
        << keyring.error().message;
    EXPECT_NE(keyring.error().message.find("run: chmod 600 " + key_file().string()),
              std::string::npos);
    expect_no_key_material(keyring.error().message, created->current().key);
  }
  EXPECT_EQ(read_text(key_file()), before);
  EXPECT_EQ(mode_of(key_file()), 0640u);

  // A malformed file is refused the same way as by load_or_create, and left alone.
  write_key_file("till-master-key v1 " + b64(random_key()) + "\ntill-master-key v2\n");
  auto malformed = MasterKeyring::add_version(dir_);
  ASSERT_FALSE(malformed);
  EXPECT_EQ(malformed.error().message, load_error().message);
  EXPECT_NE(malformed.error().message.find("line 2 is malformed"), std::string::npos);
  EXPECT_EQ(std::distance(fs::directory_iterator(dir_), fs::directory_iterator()), 1);
}

TEST_F(MasterKeyTest, AddVersionNeedsAnExistingFile) {
  for (const fs::path& data : {dir_, dir_ / "missing"}) {
    auto keyring = MasterKeyring::add_version(data);
    ASSERT_FALSE(keyring);
    EXPECT_EQ(keyring.error().code, ErrorCode::kInternal);
    EXPECT_NE(keyring.error().message.find((data / "master.key").string() + " does not exist"),
              std::string::npos)
        << keyring.error().message;
    EXPECT_EQ(keyring.error().message.find('\n'), std::string::npos);
    auto removed = MasterKeyring::remove_version(data, 1);
    ASSERT_FALSE(removed);
    EXPECT_EQ(removed.error().code, ErrorCode::kInternal);
  }
  EXPECT_FALSE(fs::exists(key_file()));
  EXPECT_FALSE(fs::exists(dir_ / "missing"));
}

TEST_F(MasterKeyTest, ConcurrentAddVersionsLoseNoKey) {
  ASSERT_TRUE(MasterKeyring::load_or_create(dir_, nullptr));
  constexpr int kThreads = 6;
  std::vector<std::string> errors(kThreads);
  std::vector<std::array<uint8_t, 32>> added(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      auto keyring = MasterKeyring::add_version(dir_);
      if (keyring) {
        added[t] = keyring->current().key;
      } else {
        errors[t] = keyring.error().message;
      }
    });
  }
  for (auto& thread : threads) thread.join();
  for (const std::string& error : errors) EXPECT_EQ(error, "");
  auto keyring = MasterKeyring::load_or_create(dir_, nullptr);
  ASSERT_TRUE(keyring);
  EXPECT_EQ(keyring->versions(), (std::vector<uint32_t>{1, 2, 3, 4, 5, 6, 7}));
  for (const auto& key : added) {
    int found = 0;
    for (uint32_t v : keyring->versions()) found += keyring->find(v)->key == key ? 1 : 0;
    EXPECT_EQ(found, 1);
  }
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
