#include "till/key.h"

namespace till {

std::string_view to_string(KeyStatus status) {
  switch (status) {
    case KeyStatus::kActive: return "active";
    case KeyStatus::kExhausted: return "exhausted";
    case KeyStatus::kRevoked: return "revoked";
    case KeyStatus::kExpired: return "expired";
    case KeyStatus::kSuspended: return "suspended";
  }
  return "active";
}

std::optional<KeyStatus> parse_key_status(std::string_view text) {
  for (KeyStatus s : {KeyStatus::kActive, KeyStatus::kExhausted, KeyStatus::kRevoked,
                      KeyStatus::kExpired, KeyStatus::kSuspended}) {
    if (to_string(s) == text) return s;
  }
  return std::nullopt;
}

}  // namespace till
