// libFuzzer target for the token parser (src/core/token.h): parse_token and has_valid_checksum
// see the untrusted bytes of every request's credential header.
//
// Beyond "no crash, no sanitizer report", every input checks these invariants:
//  1. A refusal is kInvalidApiKey with one of the two generic messages.
//  2. An accepted text is self-consistent: at most kMaxTokenSize bytes, a valid checksum, the
//     prefix of its kind, a well-formed key id equal to the id in the text, a master key version
//     exactly when there is a sealed part, a sealed part no shorter than nonce + tag, and no
//     sealed part in an admin token.
//  3. The keyring of the start-up tokens opens a credential only for the key id, version and
//     sealed bytes it sealed (AES-GCM cannot be forged).
//  4. A mutation of a valid start-up token steered by the input is refused: replacing one byte
//     always (CRC-32 detects every single-byte substitution); inserting or deleting one byte
//     either fails to parse or, after a 2^-32 checksum collision, still never opens a credential.
//
// The CRC stops random mutations at the checksum, so each input is also parsed with the right
// checksum appended: that is what lets the fuzzer explore the id, body and sealed-part checks.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "core/crypto.h"
#include "core/master_key.h"
#include "core/token.h"

namespace {

using namespace till;

[[noreturn]] void violated(const char* what, int line) {
  std::fprintf(stderr, "token_fuzz: invariant violated at line %d: %s\n", line, what);
  std::abort();
}

#define FUZZ_CHECK(cond)                    \
  do {                                      \
    if (!(cond)) violated(#cond, __LINE__); \
  } while (0)

constexpr std::string_view kCredential = "sk-fuzz-upstream-credential";

struct Fixture {
  MasterKeyring keyring;
  std::vector<std::string> tokens;  // scoped sealed, scoped unsealed, admin
  ParsedToken sealed;               // the parse of tokens[0]
};

Fixture make_fixture() {
  MasterKey master{.version = 1};
  crypto::random_bytes(master.key);
  auto keyring = MasterKeyring::from_keys({master});
  FUZZ_CHECK(keyring.has_value());

  std::vector<std::string> tokens;
  const struct {
    TokenKind kind;
    const MasterKey* seal_key;
  } specs[] = {
      {TokenKind::kScoped, &master}, {TokenKind::kScoped, nullptr}, {TokenKind::kAdmin, nullptr}};
  for (const auto& spec : specs) {
    auto issued = issue_token(spec.kind, new_key_id(spec.kind), spec.seal_key, kCredential);
    FUZZ_CHECK(issued.has_value());
    auto parsed = parse_token(issued->token);
    FUZZ_CHECK(parsed.has_value());
    FUZZ_CHECK(secret_matches(*parsed, issued->secret_hash));
    FUZZ_CHECK(has_valid_checksum(issued->token));
    tokens.push_back(issued->token);
  }
  auto sealed = parse_token(tokens[0]);
  FUZZ_CHECK(sealed.has_value());
  auto credential = open_credential(*keyring, *sealed);
  FUZZ_CHECK(credential.has_value() && *credential == kCredential);
  return Fixture{std::move(*keyring), std::move(tokens), std::move(*sealed)};
}

const Fixture& fixture() {
  static const Fixture f = make_fixture();
  return f;
}

bool opens_a_credential(const ParsedToken& token) {
  auto credential = open_credential(fixture().keyring, token);
  if (!credential) {
    FUZZ_CHECK(credential.error().code == ErrorCode::kInvalidApiKey);
    return false;
  }
  const ParsedToken& sealed = fixture().sealed;
  FUZZ_CHECK(token.key_id == sealed.key_id);
  FUZZ_CHECK(token.master_key_version == sealed.master_key_version);
  FUZZ_CHECK(token.sealed_credential == sealed.sealed_credential);
  FUZZ_CHECK(*credential == kCredential);
  return true;
}

// Invariants 1-3 for any text; returns the parse.
Result<ParsedToken> check_parse(std::string_view text) {
  auto parsed = parse_token(text);
  bool checksum_ok = has_valid_checksum(text);
  if (!parsed) {
    FUZZ_CHECK(parsed.error().code == ErrorCode::kInvalidApiKey);
    FUZZ_CHECK(parsed.error().message == "malformed till key" ||
               parsed.error().message == "invalid till key checksum");
    return parsed;
  }
  FUZZ_CHECK(text.size() <= kMaxTokenSize);
  FUZZ_CHECK(checksum_ok);
  std::string_view prefix =
      parsed->kind == TokenKind::kScoped ? kScopedTokenPrefix : kAdminTokenPrefix;
  FUZZ_CHECK(text.starts_with(prefix));
  FUZZ_CHECK(is_well_formed_key_id(parsed->kind, parsed->key_id));
  FUZZ_CHECK(text.substr(prefix.size(), 16) == std::string_view(parsed->key_id).substr(4));
  FUZZ_CHECK(text[prefix.size() + 16] == '_');
  FUZZ_CHECK(parsed->is_sealed() == (parsed->master_key_version != 0));
  if (parsed->is_sealed()) {
    FUZZ_CHECK(parsed->kind == TokenKind::kScoped);
    FUZZ_CHECK(parsed->sealed_credential.size() >= crypto::kGcmOverhead);
    opens_a_credential(*parsed);
  }
  return parsed;
}

// Invariant 4: the input steers one mutation of one start-up token.
void check_mutation(const uint8_t* data, size_t size) {
  if (size < 4) return;
  const std::vector<std::string>& tokens = fixture().tokens;
  const std::string& token = tokens[data[0] % tokens.size()];
  size_t pos = (size_t{data[1]} | size_t{data[2]} << 8) % (token.size() + 1);
  char byte = static_cast<char>(data[3]);
  std::string mutated = token;
  switch ((data[0] / tokens.size()) % 3) {
    case 0:  // replace
      if (pos == token.size() || token[pos] == byte) return;
      mutated[pos] = byte;
      FUZZ_CHECK(!check_parse(mutated).has_value());
      FUZZ_CHECK(!has_valid_checksum(mutated));
      return;
    case 1:  // insert
      mutated.insert(mutated.begin() + static_cast<std::ptrdiff_t>(pos), byte);
      break;
    default:  // delete
      if (pos == token.size()) return;
      mutated.erase(pos, 1);
      break;
  }
  auto parsed = check_parse(mutated);
  FUZZ_CHECK(!parsed.has_value() || !opens_a_credential(*parsed));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  check_parse(text);
  std::string fixed(text);
  fixed += crypto::base62_encode_fixed(crypto::crc32(text), 6);
  check_parse(fixed);
  check_mutation(data, size);
  return 0;
}
