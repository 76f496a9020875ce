// The scoped-key model shared by the store, the control plane and the proxy.
//
// A key has three budget dimensions (requests, tokens, spend), each optionally limited. The budget
// invariant (DESIGN.md) is, for every limited dimension: used + reserved <= limit, at all times.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "till/clock.h"
#include "till/money.h"

namespace till {

enum class KeyStatus { kActive, kExhausted, kRevoked, kExpired, kSuspended };

// "active", "exhausted", "revoked", "expired", "suspended".
std::string_view to_string(KeyStatus status);
std::optional<KeyStatus> parse_key_status(std::string_view text);

using SecretHash = std::array<uint8_t, 32>;  // SHA-256 of a token's secret

// An amount on the three budget dimensions: what a reservation holds.
struct Budget {
  int64_t requests = 0;
  int64_t tokens = 0;
  Money spend;
  bool operator==(const Budget&) const = default;
};

// Limits of a key; std::nullopt means unlimited on that dimension.
struct Limits {
  std::optional<int64_t> max_requests;
  std::optional<int64_t> max_tokens;
  std::optional<Money> max_spend;
  bool operator==(const Limits&) const = default;
};

// What a key has consumed (settled usage).
struct Usage {
  int64_t requests = 0;
  int64_t input_tokens = 0;         // includes cached input tokens
  int64_t cached_input_tokens = 0;  // the part of input_tokens read from a provider cache
  int64_t output_tokens = 0;        // includes reasoning tokens
  int64_t reasoning_tokens = 0;
  // Tokens charged without an input/output split: a reservation that stood as the charge because
  // the response carried no usage, or was outstanding at a crash.
  int64_t unmetered_tokens = 0;
  Money spend;

  // The figure the max_tokens limit counts.
  int64_t tokens() const { return input_tokens + output_tokens + unmetered_tokens; }
  bool operator==(const Usage&) const = default;
};

// Where and how a key may be used, beyond its budget.
struct Scope {
  std::vector<std::string> models;         // allow-list; empty = any model
  std::optional<int64_t> rpm;              // requests per minute (sliding window)
  std::optional<int64_t> max_concurrency;  // requests in flight at once
  std::vector<std::string> allowed_cidrs;  // empty = any address
  bool operator==(const Scope&) const = default;
};

// The token a key had before its last rotation, still accepted until valid_until.
struct PreviousToken {
  SecretHash secret_hash{};
  uint32_t seal_version = 0;  // as KeyRecord::seal_version, for that token
  Timestamp valid_until;
  bool operator==(const PreviousToken&) const = default;
};

struct KeyRecord {
  std::string id;                    // "key_" + 16 base62 characters; public, used for lookup
  std::string name;                  // free text, may be empty
  std::string provider;              // "openai", "anthropic", …
  std::string metadata_json = "{}";  // a JSON object given by the creator, stored verbatim
  KeyStatus status = KeyStatus::kActive;
  SecretHash secret_hash{};  // of the current token's secret
  // The master key version the current token's upstream credential is sealed under; 0 when the
  // token carries none (vault keys). Tells which master key versions are still needed.
  uint32_t seal_version = 0;
  std::optional<PreviousToken> previous_token;  // set during a rotation's grace period
  Timestamp rotated_at;  // when the current token was issued (created_at until a rotation)
  std::optional<std::chrono::milliseconds> rotate_every;  // the current token's lifetime
  Limits limits;
  Scope scope;
  std::optional<Timestamp> expires_at;
  Timestamp created_at;
  Timestamp updated_at;
  std::optional<std::string> parent_id;   // set for sub-keys
  std::optional<std::string> credential;  // vault credential name; nullopt = sealed in the token
  Usage used;                             // includes the usage of its sub-keys
  Budget reserved;  // its outstanding reservations plus what its sub-keys hold (their `carved`)
  // Sub-keys: what the parent holds in reserve for this key, counted in the parent's `reserved`.
  // On each limited dimension: limit - used while the key can still spend, what is reserved once
  // it is revoked, expired or exhausted (the unused part is back with the parent). Zero on
  // dimensions the key does not limit, and for keys without a parent.
  Budget carved;

  // When the current token stops being accepted for want of rotation, if it has rotate_every.
  std::optional<Timestamp> rotation_due_at() const {
    if (!rotate_every) return std::nullopt;
    return rotated_at + *rotate_every;
  }

  // The status a client sees at `now`: an active key past its expiry is expired.
  KeyStatus effective_status(Timestamp now) const {
    if (status == KeyStatus::kActive && expires_at && *expires_at <= now)
      return KeyStatus::kExpired;
    return status;
  }
};

// An admin key authenticates the control plane; only its hash is stored.
struct AdminKeyRecord {
  std::string id;  // "adm_" + 16 base62 characters
  std::string name;
  SecretHash secret_hash{};
  Timestamp created_at;
  std::optional<Timestamp> revoked_at;
};

}  // namespace till
