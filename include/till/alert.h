// Alerts (DESIGN.md "alert"): something a human should know — a threshold crossed, a key
// exhausted, an anomaly, a revoked key still in use, an upstream credential rejected. Raised by
// the alert rules (src/monitor), stored, listed at /api/v1/alerts and sent to webhooks.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "till/clock.h"

namespace till {

struct AlertRecord {
  int64_t id = 0;        // assigned by the store; increasing
  std::string key_id;    // the key concerned; empty for alerts about an address or a credential
  std::string rule;      // "budget_threshold", "rate_spike", "loop", … (docs/monitoring.md)
  std::string severity;  // "info", "warning" or "critical"
  std::string message;   // one line for a human: what happened and what to do
  std::string action;    // what till did: "alert" (nothing more) or "suspend" (the key)
  Timestamp created_at;
  bool acknowledged = false;
  std::optional<Timestamp> acknowledged_at;
};

}  // namespace till
