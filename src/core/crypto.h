// Cryptographic primitives and byte encodings used by tokens, the master key and the vault.
//
// Thin wrappers over OpenSSL 3 (EVP APIs only). Each function owns nothing beyond its call: inputs
// are borrowed, outputs are returned by value. A failure of OpenSSL that cannot be caused by the
// inputs (allocation failure, a broken provider, a failing CSPRNG) is not recoverable: such a
// function prints one line to stderr and aborts rather than return something weaker than promised.
// Failures that inputs can cause (a tampered ciphertext, a malformed encoding) are Result errors.
//
// Thread-safety: every function is safe to call concurrently.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "till/error.h"
#include "till/key.h"

namespace till::crypto {

using Bytes = std::vector<uint8_t>;

// Fills `out` with bytes from OpenSSL's CSPRNG. Aborts if the CSPRNG fails.
void random_bytes(std::span<uint8_t> out);

// SHA-256 of `data`.
SecretHash sha256(std::span<const uint8_t> data);
SecretHash sha256(std::string_view data);

// HMAC-SHA-256 of `data` under `key` (any length, including empty).
std::array<uint8_t, 32> hmac_sha256(std::span<const uint8_t> key, std::string_view data);

// HKDF-SHA-256 (RFC 5869, extract then expand) of `ikm`, returning 32 bytes of output keying
// material. An empty salt means "no salt" (HashLen zero bytes, as the RFC specifies).
std::array<uint8_t, 32> hkdf_sha256(std::span<const uint8_t> ikm, std::string_view salt,
                                    std::string_view info);

// True if `a` and `b` have the same size and contents. The time taken depends on the sizes only,
// never on the contents.
bool constant_time_equal(std::span<const uint8_t> a, std::span<const uint8_t> b);

// AES-256-GCM.
inline constexpr size_t kGcmNonceSize = 12;
inline constexpr size_t kGcmTagSize = 16;
inline constexpr size_t kGcmOverhead = kGcmNonceSize + kGcmTagSize;

// Encrypts and authenticates `plaintext`, and authenticates `aad`, under `key`. Returns
// nonce (12 bytes, random) | ciphertext (plaintext.size() bytes) | tag (16 bytes).
// Random nonces are safe for up to 2^32 seals under one key (NIST SP 800-38D).
Bytes aes256gcm_seal(std::span<const uint8_t, 32> key, std::string_view plaintext,
                     std::string_view aad);

// Reverses aes256gcm_seal. Fails with kInvalidApiKey and a generic message, the same whatever the
// cause: `sealed` shorter than nonce + tag, any byte changed, a different key or a different aad.
Result<std::string> aes256gcm_open(std::span<const uint8_t, 32> key,
                                   std::span<const uint8_t> sealed, std::string_view aad);

// Base64 with the standard alphabet (RFC 4648 §4) and '=' padding.
std::string base64_encode(std::span<const uint8_t> data);
// Strict inverse of base64_encode: the length must be a multiple of 4, padding only at the end,
// no whitespace or other characters, and unused trailing bits must be zero, so every byte string
// has exactly one accepted encoding. Errors are kInvalidRequest with a generic message.
Result<Bytes> base64_decode(std::string_view text);

// Base64 with the URL-safe alphabet (RFC 4648 §5, '-' and '_') and no padding.
std::string base64url_encode(std::span<const uint8_t> data);
// Strict inverse of base64url_encode: no padding, no characters outside the alphabet, no length
// that is 1 mod 4, and unused trailing bits must be zero (the encoding is canonical). Errors are
// kInvalidRequest with a generic message.
Result<Bytes> base64url_decode(std::string_view text);

// Lowercase hexadecimal.
std::string hex_encode(std::span<const uint8_t> data);

// CRC-32 as in zlib, PNG and Ethernet (reflected polynomial 0xEDB88320, initial value and final
// XOR 0xFFFFFFFF): crc32("123456789") == 0xCBF43926.
uint32_t crc32(std::string_view data);

// The base62 alphabet used for ids and checksums: digits, then 'A'-'Z', then 'a'-'z'.
inline constexpr std::string_view kBase62Alphabet =
    "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

// True if every character of `text` is in kBase62Alphabet (true for an empty string).
bool is_base62(std::string_view text);

// `value` in base62, most significant digit first, left-padded with '0' to `width` characters.
// Never truncates: a value that needs more than `width` digits gets them all.
std::string base62_encode_fixed(uint64_t value, size_t width);

// `n` characters drawn uniformly and independently from kBase62Alphabet with the CSPRNG (rejection
// sampling, no modulo bias).
std::string random_base62(size_t n);

}  // namespace till::crypto
