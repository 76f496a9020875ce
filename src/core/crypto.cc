#include "core/crypto.h"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/params.h>
#include <openssl/rand.h>

#include <algorithm>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <memory>

namespace till::crypto {
namespace {

// A failure that inputs cannot cause: report it with OpenSSL's reason, then abort.
[[noreturn]] void die(const char* what) {
  char reason[256] = "no OpenSSL error queued";
  if (unsigned long code = ERR_get_error(); code != 0) {
    ERR_error_string_n(code, reason, sizeof reason);
  }
  std::fprintf(stderr, "till: fatal: %s (%s)\n", what, reason);
  std::abort();
}

struct CipherCtxFree {
  void operator()(EVP_CIPHER_CTX* ctx) const { EVP_CIPHER_CTX_free(ctx); }
};
using CipherCtx = std::unique_ptr<EVP_CIPHER_CTX, CipherCtxFree>;

struct KdfCtxFree {
  void operator()(EVP_KDF_CTX* ctx) const { EVP_KDF_CTX_free(ctx); }
};
using KdfCtx = std::unique_ptr<EVP_KDF_CTX, KdfCtxFree>;

// Algorithms are fetched once and shared: fetched EVP objects are immutable and thread-safe.
// They live until exit (never freed, on purpose, so no static-destruction order issue).
EVP_CIPHER* aes256gcm_cipher() {
  static EVP_CIPHER* cipher = [] {
    EVP_CIPHER* c = EVP_CIPHER_fetch(nullptr, "AES-256-GCM", nullptr);
    if (c == nullptr) die("EVP_CIPHER_fetch(AES-256-GCM) failed");
    return c;
  }();
  return cipher;
}

EVP_KDF* hkdf_kdf() {
  static EVP_KDF* kdf = [] {
    EVP_KDF* k = EVP_KDF_fetch(nullptr, "HKDF", nullptr);
    if (k == nullptr) die("EVP_KDF_fetch(HKDF) failed");
    return k;
  }();
  return kdf;
}

// OSSL_PARAM takes non-const pointers even for inputs it only reads.
void* param_ptr(const void* p) { return const_cast<void*>(p); }

int checked_int(size_t n, const char* what) {
  if (n > static_cast<size_t>(INT_MAX)) die(what);
  return static_cast<int>(n);
}

constexpr std::string_view kStandardAlphabet =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
constexpr std::string_view kUrlAlphabet =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

constexpr uint8_t kInvalid = 0xFF;

using DecodeTable = std::array<uint8_t, 256>;

constexpr DecodeTable make_decode_table(std::string_view alphabet) {
  DecodeTable table{};
  for (auto& v : table) v = kInvalid;
  for (size_t i = 0; i < alphabet.size(); ++i) {
    table[static_cast<unsigned char>(alphabet[i])] = static_cast<uint8_t>(i);
  }
  return table;
}

constexpr DecodeTable kStandardDecode = make_decode_table(kStandardAlphabet);
constexpr DecodeTable kUrlDecode = make_decode_table(kUrlAlphabet);

std::string encode64(std::span<const uint8_t> data, std::string_view alphabet, bool pad) {
  std::string out;
  out.reserve((data.size() + 2) / 3 * 4);
  size_t i = 0;
  for (; i + 3 <= data.size(); i += 3) {
    uint32_t v = (uint32_t{data[i]} << 16) | (uint32_t{data[i + 1]} << 8) | data[i + 2];
    out += alphabet[(v >> 18) & 63];
    out += alphabet[(v >> 12) & 63];
    out += alphabet[(v >> 6) & 63];
    out += alphabet[v & 63];
  }
  size_t rest = data.size() - i;
  if (rest == 1) {
    uint32_t v = uint32_t{data[i]} << 16;
    out += alphabet[(v >> 18) & 63];
    out += alphabet[(v >> 12) & 63];
    if (pad) out += "==";
  } else if (rest == 2) {
    uint32_t v = (uint32_t{data[i]} << 16) | (uint32_t{data[i + 1]} << 8);
    out += alphabet[(v >> 18) & 63];
    out += alphabet[(v >> 12) & 63];
    out += alphabet[(v >> 6) & 63];
    if (pad) out += '=';
  }
  return out;
}

Error invalid_base64() { return Error::client(ErrorCode::kInvalidRequest, "invalid base64"); }

// Decodes unpadded base64 text strictly: every character in the table, a length not 1 mod 4, and
// zero bits where the last character holds more bits than the output needs.
Result<Bytes> decode64_unpadded(std::string_view text, const DecodeTable& table) {
  if (text.size() % 4 == 1) return fail(invalid_base64());
  Bytes out;
  out.reserve(text.size() / 4 * 3 + 2);
  uint32_t acc = 0;
  int bits = 0;
  for (char c : text) {
    uint8_t v = table[static_cast<unsigned char>(c)];
    if (v == kInvalid) return fail(invalid_base64());
    acc = (acc << 6) | v;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<uint8_t>(acc >> bits));
      acc &= (1u << bits) - 1;
    }
  }
  // `bits` (2 or 4 after a partial group) unused low bits of the last character must be zero.
  if (acc != 0) return fail(invalid_base64());
  return out;
}

constexpr std::array<uint32_t, 256> make_crc32_table() {
  std::array<uint32_t, 256> table{};
  for (uint32_t i = 0; i < 256; ++i) {
    uint32_t c = i;
    for (int k = 0; k < 8; ++k) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
    table[i] = c;
  }
  return table;
}

constexpr std::array<uint32_t, 256> kCrc32Table = make_crc32_table();

}  // namespace

void random_bytes(std::span<uint8_t> out) {
  constexpr size_t kChunk = size_t{1} << 30;
  while (!out.empty()) {
    size_t n = std::min(out.size(), kChunk);
    if (RAND_bytes(out.data(), static_cast<int>(n)) != 1) die("RAND_bytes failed");
    out = out.subspan(n);
  }
}

SecretHash sha256(std::span<const uint8_t> data) {
  SecretHash out;
  unsigned int len = 0;
  if (EVP_Digest(data.data(), data.size(), out.data(), &len, EVP_sha256(), nullptr) != 1 ||
      len != out.size()) {
    die("EVP_Digest(SHA-256) failed");
  }
  return out;
}

SecretHash sha256(std::string_view data) {
  return sha256(std::span(reinterpret_cast<const uint8_t*>(data.data()), data.size()));
}

std::array<uint8_t, 32> hmac_sha256(std::span<const uint8_t> key, std::string_view data) {
  // OpenSSL 3.0's HMAC refuses a null key pointer even with length 0; an empty key is legal HMAC.
  static const uint8_t kEmpty = 0;
  const uint8_t* key_ptr = key.empty() ? &kEmpty : key.data();
  std::array<uint8_t, 32> out;
  size_t len = 0;
  if (EVP_Q_mac(nullptr, "HMAC", nullptr, "SHA256", nullptr, key_ptr, key.size(),
                reinterpret_cast<const unsigned char*>(data.data()), data.size(), out.data(),
                out.size(), &len) == nullptr ||
      len != out.size()) {
    die("EVP_Q_mac(HMAC-SHA-256) failed");
  }
  return out;
}

std::array<uint8_t, 32> hkdf_sha256(std::span<const uint8_t> ikm, std::string_view salt,
                                    std::string_view info) {
  KdfCtx ctx(EVP_KDF_CTX_new(hkdf_kdf()));
  if (!ctx) die("EVP_KDF_CTX_new(HKDF) failed");
  static const uint8_t kEmpty = 0;
  OSSL_PARAM params[5];
  size_t n = 0;
  params[n++] = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST,
                                                 static_cast<char*>(param_ptr("SHA256")), 0);
  params[n++] = OSSL_PARAM_construct_octet_string(
      OSSL_KDF_PARAM_KEY, param_ptr(ikm.empty() ? &kEmpty : ikm.data()), ikm.size());
  // Without a salt parameter OpenSSL uses HashLen zero bytes, which RFC 5869 defines as "no salt".
  if (!salt.empty()) {
    params[n++] =
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, param_ptr(salt.data()), salt.size());
  }
  params[n++] = OSSL_PARAM_construct_octet_string(
      OSSL_KDF_PARAM_INFO, param_ptr(info.empty() ? "" : info.data()), info.size());
  params[n] = OSSL_PARAM_construct_end();
  std::array<uint8_t, 32> out;
  if (EVP_KDF_derive(ctx.get(), out.data(), out.size(), params) != 1) {
    die("EVP_KDF_derive(HKDF-SHA-256) failed");
  }
  return out;
}

bool constant_time_equal(std::span<const uint8_t> a, std::span<const uint8_t> b) {
  if (a.size() != b.size()) return false;
  if (a.empty()) return true;
  return CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

Bytes aes256gcm_seal(std::span<const uint8_t, 32> key, std::string_view plaintext,
                     std::string_view aad) {
  Bytes out(kGcmNonceSize + plaintext.size() + kGcmTagSize);
  uint8_t* nonce = out.data();
  uint8_t* ciphertext = nonce + kGcmNonceSize;
  uint8_t* tag = ciphertext + plaintext.size();
  random_bytes(std::span(nonce, kGcmNonceSize));

  CipherCtx ctx(EVP_CIPHER_CTX_new());
  if (!ctx) die("EVP_CIPHER_CTX_new failed");
  if (EVP_EncryptInit_ex2(ctx.get(), aes256gcm_cipher(), key.data(), nonce, nullptr) != 1) {
    die("AES-256-GCM init failed");
  }
  int len = 0;
  if (!aad.empty() &&
      EVP_EncryptUpdate(ctx.get(), nullptr, &len,
                        reinterpret_cast<const unsigned char*>(aad.data()),
                        checked_int(aad.size(), "AES-256-GCM aad too large")) != 1) {
    die("AES-256-GCM aad failed");
  }
  if (!plaintext.empty()) {
    if (EVP_EncryptUpdate(ctx.get(), ciphertext, &len,
                          reinterpret_cast<const unsigned char*>(plaintext.data()),
                          checked_int(plaintext.size(), "AES-256-GCM plaintext too large")) != 1 ||
        static_cast<size_t>(len) != plaintext.size()) {
      die("AES-256-GCM encrypt failed");
    }
  }
  if (EVP_EncryptFinal_ex(ctx.get(), ciphertext + plaintext.size(), &len) != 1 || len != 0) {
    die("AES-256-GCM final failed");
  }
  OSSL_PARAM params[] = {
      OSSL_PARAM_construct_octet_string(OSSL_CIPHER_PARAM_AEAD_TAG, tag, kGcmTagSize),
      OSSL_PARAM_construct_end()};
  if (EVP_CIPHER_CTX_get_params(ctx.get(), params) != 1) die("AES-256-GCM get tag failed");
  return out;
}

Result<std::string> aes256gcm_open(std::span<const uint8_t, 32> key,
                                   std::span<const uint8_t> sealed, std::string_view aad) {
  auto refused = [] {
    return fail(Error::client(ErrorCode::kInvalidApiKey, "sealed data could not be opened"));
  };
  if (sealed.size() < kGcmOverhead || sealed.size() > static_cast<size_t>(INT_MAX) ||
      aad.size() > static_cast<size_t>(INT_MAX)) {
    return refused();
  }
  const uint8_t* nonce = sealed.data();
  const uint8_t* ciphertext = nonce + kGcmNonceSize;
  size_t ciphertext_size = sealed.size() - kGcmOverhead;
  // The tag parameter is an input here; OSSL_PARAM wants a non-const pointer all the same.
  uint8_t* tag = static_cast<uint8_t*>(param_ptr(ciphertext + ciphertext_size));

  CipherCtx ctx(EVP_CIPHER_CTX_new());
  if (!ctx) die("EVP_CIPHER_CTX_new failed");
  if (EVP_DecryptInit_ex2(ctx.get(), aes256gcm_cipher(), key.data(), nonce, nullptr) != 1) {
    die("AES-256-GCM init failed");
  }
  int len = 0;
  if (!aad.empty() && EVP_DecryptUpdate(ctx.get(), nullptr, &len,
                                        reinterpret_cast<const unsigned char*>(aad.data()),
                                        static_cast<int>(aad.size())) != 1) {
    return refused();
  }
  std::string plaintext(ciphertext_size, '\0');
  auto* plain = reinterpret_cast<unsigned char*>(plaintext.data());
  if (ciphertext_size > 0 && (EVP_DecryptUpdate(ctx.get(), plain, &len, ciphertext,
                                                static_cast<int>(ciphertext_size)) != 1 ||
                              static_cast<size_t>(len) != ciphertext_size)) {
    OPENSSL_cleanse(plaintext.data(), plaintext.size());
    return refused();
  }
  OSSL_PARAM params[] = {
      OSSL_PARAM_construct_octet_string(OSSL_CIPHER_PARAM_AEAD_TAG, tag, kGcmTagSize),
      OSSL_PARAM_construct_end()};
  if (EVP_CIPHER_CTX_set_params(ctx.get(), params) != 1 ||
      EVP_DecryptFinal_ex(ctx.get(), plain + ciphertext_size, &len) != 1) {
    // Authentication failed: the decrypted bytes are unauthenticated and must not linger.
    OPENSSL_cleanse(plaintext.data(), plaintext.size());
    return refused();
  }
  return plaintext;
}

std::string base64_encode(std::span<const uint8_t> data) {
  return encode64(data, kStandardAlphabet, /*pad=*/true);
}

Result<Bytes> base64_decode(std::string_view text) {
  if (text.size() % 4 != 0) return fail(invalid_base64());
  size_t pad = 0;
  while (pad < 2 && pad < text.size() && text[text.size() - 1 - pad] == '=') ++pad;
  std::string_view body = text.substr(0, text.size() - pad);
  // A third '=' (or any '=' inside) falls through to the table lookup, where '=' is invalid.
  return decode64_unpadded(body, kStandardDecode);
}

std::string base64url_encode(std::span<const uint8_t> data) {
  return encode64(data, kUrlAlphabet, /*pad=*/false);
}

Result<Bytes> base64url_decode(std::string_view text) {
  return decode64_unpadded(text, kUrlDecode);
}

std::string hex_encode(std::span<const uint8_t> data) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(data.size() * 2);
  for (uint8_t b : data) {
    out += kDigits[b >> 4];
    out += kDigits[b & 15];
  }
  return out;
}

uint32_t crc32(std::string_view data) {
  uint32_t c = 0xFFFFFFFFu;
  for (char ch : data) c = kCrc32Table[(c ^ static_cast<unsigned char>(ch)) & 0xFF] ^ (c >> 8);
  return c ^ 0xFFFFFFFFu;
}

bool is_base62(std::string_view text) {
  for (char c : text) {
    bool ok = (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
    if (!ok) return false;
  }
  return true;
}

std::string base62_encode_fixed(uint64_t value, size_t width) {
  std::string digits;
  do {
    digits += kBase62Alphabet[value % 62];
    value /= 62;
  } while (value != 0);
  if (digits.size() < width) digits.append(width - digits.size(), '0');
  return std::string(digits.rbegin(), digits.rend());
}

std::string random_base62(size_t n) {
  // 248 = 4 * 62: bytes below it map uniformly onto the alphabet; bytes 248..255 are rejected.
  constexpr uint8_t kLimit = 248;
  std::string out;
  out.reserve(n);
  std::array<uint8_t, 64> buffer;
  while (out.size() < n) {
    random_bytes(buffer);
    for (uint8_t b : buffer) {
      if (b >= kLimit) continue;
      out += kBase62Alphabet[b % 62];
      if (out.size() == n) break;
    }
  }
  return out;
}

}  // namespace till::crypto
