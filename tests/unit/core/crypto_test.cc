#include "core/crypto.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace till::crypto {
namespace {

Bytes bytes_of(std::string_view s) { return Bytes(s.begin(), s.end()); }

std::string string_of(const Bytes& b) { return std::string(b.begin(), b.end()); }

Bytes from_hex(std::string_view hex) {
  Bytes out;
  auto nibble = [](char c) -> uint8_t {
    return static_cast<uint8_t>(c <= '9' ? c - '0' : c - 'a' + 10);
  };
  for (size_t i = 0; i + 1 < hex.size(); i += 2) {
    out.push_back(static_cast<uint8_t>(nibble(hex[i]) << 4 | nibble(hex[i + 1])));
  }
  return out;
}

std::array<uint8_t, 32> test_key(uint8_t fill) {
  std::array<uint8_t, 32> key;
  key.fill(fill);
  return key;
}

TEST(CryptoTest, Sha256KnownAnswers) {
  EXPECT_EQ(hex_encode(sha256("abc")),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(hex_encode(sha256("")),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  Bytes abc = bytes_of("abc");
  EXPECT_EQ(sha256(std::span<const uint8_t>(abc)), sha256("abc"));
}

TEST(CryptoTest, HmacSha256Rfc4231Case2) {
  Bytes key = bytes_of("Jefe");
  EXPECT_EQ(hex_encode(hmac_sha256(key, "what do ya want for nothing?")),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
}

TEST(CryptoTest, HmacSha256WithEmptyKey) {
  EXPECT_EQ(hex_encode(hmac_sha256({}, "")),
            "b613679a0814d9ec772f95d778c35fc5ff1697c493715653c6c712144292c5ad");
}

TEST(CryptoTest, HkdfSha256Rfc5869Case1) {
  Bytes ikm(22, 0x0b);
  Bytes salt = from_hex("000102030405060708090a0b0c");
  Bytes info = from_hex("f0f1f2f3f4f5f6f7f8f9");
  auto okm = hkdf_sha256(ikm, string_of(salt), string_of(info));
  // The first 32 of the RFC's 42 bytes of OKM.
  EXPECT_EQ(hex_encode(okm), "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf");
}

TEST(CryptoTest, HkdfSha256Rfc5869Case3NoSaltNoInfo) {
  Bytes ikm(22, 0x0b);
  EXPECT_EQ(hex_encode(hkdf_sha256(ikm, "", "")),
            "8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d");
}

TEST(CryptoTest, Crc32KnownAnswers) {
  EXPECT_EQ(crc32("123456789"), 0xCBF43926u);
  EXPECT_EQ(crc32(""), 0u);
  EXPECT_EQ(crc32("The quick brown fox jumps over the lazy dog"), 0x414FA339u);
}

TEST(CryptoTest, Base64Rfc4648Vectors) {
  const std::pair<std::string_view, std::string_view> vectors[] = {
      {"", ""},
      {"f", "Zg=="},
      {"fo", "Zm8="},
      {"foo", "Zm9v"},
      {"foob", "Zm9vYg=="},
      {"fooba", "Zm9vYmE="},
      {"foobar", "Zm9vYmFy"},
  };
  for (auto [plain, encoded] : vectors) {
    EXPECT_EQ(base64_encode(bytes_of(plain)), encoded);
    auto decoded = base64_decode(encoded);
    ASSERT_TRUE(decoded) << encoded;
    EXPECT_EQ(string_of(*decoded), plain);

    std::string url(encoded.substr(0, encoded.find('=')));
    EXPECT_EQ(base64url_encode(bytes_of(plain)), url);
    auto url_decoded = base64url_decode(url);
    ASSERT_TRUE(url_decoded) << url;
    EXPECT_EQ(string_of(*url_decoded), plain);
  }
}

TEST(CryptoTest, Base64AlphabetsDiffer) {
  Bytes data = {0xfb, 0xff, 0xbf};
  EXPECT_EQ(base64_encode(data), "+/+/");
  EXPECT_EQ(base64url_encode(data), "-_-_");
  EXPECT_FALSE(base64_decode("-_-_"));
  EXPECT_FALSE(base64url_decode("+/+/"));
}

TEST(CryptoTest, Base64DecodeIsStrict) {
  for (std::string_view bad :
       {"Zg", "Zg=", "Zg===", "Z===", "====", "Zh==", "Zm9=", "Zm 9v", "Zm9v\n", " Zm9v", "=Zm9",
        "Zg==Zg==", "Zm=v", "Zm9v====", "Zm9v!"}) {
    auto decoded = base64_decode(bad);
    EXPECT_FALSE(decoded) << "accepted \"" << bad << "\"";
    if (!decoded) {
      EXPECT_EQ(decoded.error().code, ErrorCode::kInvalidRequest);
    }
  }
  std::string with_nul("Zm9v", 4);
  with_nul[1] = '\0';
  EXPECT_FALSE(base64_decode(with_nul));
}

TEST(CryptoTest, Base64UrlDecodeIsStrict) {
  for (std::string_view bad : {"Zg==", "Zm8=", "Z", "Zm9vY", "Zh", "Zm9", "Zm+v", "Zm/v",
                               "Zm9v=", " Zm9v", "Zm9v\n", "."}) {
    EXPECT_FALSE(base64url_decode(bad)) << "accepted \"" << bad << "\"";
  }
  EXPECT_TRUE(base64url_decode(""));
}

TEST(CryptoTest, Base64RoundTripsEveryLengthAndByte) {
  Bytes all(256);
  for (size_t i = 0; i < all.size(); ++i) all[i] = static_cast<uint8_t>(i);
  for (size_t len = 0; len <= all.size(); ++len) {
    std::span<const uint8_t> part(all.data(), len);
    auto a = base64_decode(base64_encode(part));
    ASSERT_TRUE(a);
    EXPECT_EQ(*a, Bytes(part.begin(), part.end()));
    auto b = base64url_decode(base64url_encode(part));
    ASSERT_TRUE(b);
    EXPECT_EQ(*b, Bytes(part.begin(), part.end()));
  }
}

TEST(CryptoTest, Base64UrlEveryLastCharacterHasOneMeaning) {
  // For a 1-byte payload only 4 of the 64 possible last characters are canonical.
  int accepted = 0;
  for (char c :
       std::string_view("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")) {
    if (base64url_decode(std::string("Z") + c)) ++accepted;
  }
  EXPECT_EQ(accepted, 4);
}

TEST(CryptoTest, HexEncode) {
  EXPECT_EQ(hex_encode(Bytes{0x00, 0x0f, 0xa5, 0xff}), "000fa5ff");
  EXPECT_EQ(hex_encode({}), "");
}

TEST(CryptoTest, ConstantTimeEqual) {
  Bytes a = bytes_of("secret-a"), b = bytes_of("secret-b"), c = bytes_of("secret-a");
  EXPECT_TRUE(constant_time_equal(a, c));
  EXPECT_FALSE(constant_time_equal(a, b));
  EXPECT_FALSE(constant_time_equal(a, bytes_of("secret-")));
  EXPECT_FALSE(constant_time_equal(bytes_of(""), a));
  EXPECT_TRUE(constant_time_equal({}, {}));
  // A prefix of the same memory: equal bytes as far as the shorter goes, still not equal.
  std::span<const uint8_t> whole(a);
  EXPECT_FALSE(constant_time_equal(whole, whole.first(7)));
  EXPECT_FALSE(constant_time_equal(whole.first(7), whole));
}

TEST(CryptoTest, Base62EncodeFixed) {
  EXPECT_EQ(base62_encode_fixed(0, 6), "000000");
  EXPECT_EQ(base62_encode_fixed(61, 1), "z");
  EXPECT_EQ(base62_encode_fixed(62, 1), "10");
  EXPECT_EQ(base62_encode_fixed(62, 4), "0010");
  EXPECT_EQ(base62_encode_fixed(0xFFFFFFFFu, 6), "4gfFC3");
  EXPECT_EQ(base62_encode_fixed(0, 0), "0");
  EXPECT_EQ(base62_encode_fixed(UINT64_MAX, 6), "LygHa16AHYF");  // never truncated
}

TEST(CryptoTest, IsBase62) {
  EXPECT_TRUE(is_base62(kBase62Alphabet));
  EXPECT_TRUE(is_base62(""));
  for (char c : std::string_view("-_+/= .\0\x7f\x80\xff", 11)) {
    EXPECT_FALSE(is_base62(std::string("ab") + c)) << static_cast<int>(c);
  }
}

TEST(CryptoTest, RandomBase62UsesWholeAlphabetOnly) {
  EXPECT_EQ(random_base62(0), "");
  std::string s = random_base62(20000);
  ASSERT_EQ(s.size(), 20000u);
  EXPECT_TRUE(is_base62(s));
  std::set<char> seen(s.begin(), s.end());
  EXPECT_EQ(seen.size(), 62u);  // each character is missed with probability (61/62)^20000
  EXPECT_NE(random_base62(16), random_base62(16));
}

TEST(CryptoTest, RandomBase62IsUnbiased) {
  // A plain `byte % 62` would make '0'..'7' (bytes 248..255 wrap onto them) 25% more likely.
  constexpr size_t kDraws = 200000;
  std::string s = random_base62(kDraws);
  size_t low = 0;
  for (char c : s) low += (c >= '0' && c <= '7') ? 1 : 0;
  const double expected = kDraws * 8.0 / 62.0;              // 25806; standard deviation about 150
  EXPECT_NEAR(static_cast<double>(low), expected, 1500.0);  // a biased draw gives about 31250
}

TEST(CryptoTest, RandomBytesDiffer) {
  std::array<uint8_t, 32> a{}, b{};
  random_bytes(a);
  random_bytes(b);
  EXPECT_NE(a, b);
  random_bytes({});  // an empty span is fine
}

TEST(CryptoTest, SealOpenRoundTrip) {
  auto key = test_key(7);
  for (std::string_view plain : {std::string_view(""), std::string_view("x"),
                                 std::string_view("sk-proj-0123456789abcdefghijklmnop")}) {
    Bytes sealed = aes256gcm_seal(key, plain, "aad");
    EXPECT_EQ(sealed.size(), kGcmOverhead + plain.size());
    auto opened = aes256gcm_open(key, sealed, "aad");
    ASSERT_TRUE(opened) << opened.error().message;
    EXPECT_EQ(*opened, plain);
  }
  EXPECT_NE(aes256gcm_seal(key, "same", "aad"), aes256gcm_seal(key, "same", "aad"));  // nonce
  auto opened = aes256gcm_open(key, aes256gcm_seal(key, "no aad", ""), "");
  ASSERT_TRUE(opened);
  EXPECT_EQ(*opened, "no aad");
}

void expect_refused(const Result<std::string>& r) {
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ErrorCode::kInvalidApiKey);
  EXPECT_EQ(r.error().message, "sealed data could not be opened");
}

TEST(CryptoTest, OpenRefusesEveryTamperedByte) {
  auto key = test_key(1);
  Bytes sealed = aes256gcm_seal(key, "upstream-credential", "aad");
  for (size_t i = 0; i < sealed.size(); ++i) {
    for (uint8_t bit = 1; bit != 0; bit = static_cast<uint8_t>(bit << 1)) {
      Bytes tampered = sealed;
      tampered[i] ^= bit;
      SCOPED_TRACE("byte " + std::to_string(i) + " bit " + std::to_string(bit));
      expect_refused(aes256gcm_open(key, tampered, "aad"));
    }
  }
}

TEST(CryptoTest, OpenRefusesWrongKeyAadAndLength) {
  auto key = test_key(1);
  Bytes sealed = aes256gcm_seal(key, "upstream-credential", "aad");
  expect_refused(aes256gcm_open(test_key(2), sealed, "aad"));
  expect_refused(aes256gcm_open(key, sealed, "aae"));
  expect_refused(aes256gcm_open(key, sealed, ""));
  expect_refused(aes256gcm_open(key, sealed, std::string_view("aad\0", 4)));
  for (size_t len = 0; len < sealed.size(); ++len) {
    expect_refused(aes256gcm_open(key, std::span(sealed.data(), len), "aad"));
  }
  Bytes extended = sealed;
  extended.push_back(0);
  expect_refused(aes256gcm_open(key, extended, "aad"));
}

}  // namespace
}  // namespace till::crypto
