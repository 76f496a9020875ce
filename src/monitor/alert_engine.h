// AlertEngine: the alert rules (docs/monitoring.md), as pure logic over the stream of usage
// events. It keeps per-key and per-address state in memory (baselines, recent bodies, addresses
// seen), decides, and says what to raise; the Monitor stores the alerts, sends them, and carries
// out the actions (suspending a key, refusing an address).
//
// Rules and defaults (each can be set to off, alert or suspend; thresholds are in the settings):
//   budget_threshold    a key crossed 50%, 80% or 100% of any of its limits (once per mark)
//   key_exhausted       a key's status became exhausted
//   projected_exhaustion at its spend (or request) rate over the last `projection_window`, the
//                       key runs out within `projection_horizon`
//   rate_spike          requests or tokens in the current minute far above the key's own
//                       baseline (EWMA of past minutes; z-score >= spike_z, at least
//                       spike_min_requests, after spike_baseline_minutes of history)
//   loop                the same request body `loop_repeats` times within `loop_window`
//   model_shift         a key uses a model whose output price is >= model_shift_factor × the
//                       priciest model it used before (after model_shift_min_requests)
//   new_address         a key used from one address only (>= new_address_min_requests) is used
//                       from another
//   stale_token         a revoked or expired key's token, or a rotated-out or forged token of a
//                       key that exists, is still being used (it may have leaked)
//   invalid_key_burst   >= invalid_burst_count invalid keys from one address within
//                       invalid_burst_window; its action `suspend` (the default) refuses the
//                       address for `address_cooldown`
//   upstream_rejected   the provider answered 401/403: the upstream credential was revoked or
//                       rotated outside till
//   rotation_due        a key's token or a vault credential is due for rotation within
//                       rotation_notice, or overdue
// loop and rate_spike suspend keys created by `till run` and alert for others, by default;
// invalid_key_burst suspends (refuses the address); every other rule alerts.
//
// Thread-safety: not thread-safe; the Monitor calls it from its one worker thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "provider/pricing.h"
#include "till/clock.h"
#include "till/credential.h"
#include "till/key.h"
#include "till/store.h"
#include "till/usage_event.h"

namespace till {

enum class AlertAction { kOff, kAlert, kSuspend };

// "off", "alert", "suspend".
std::string_view to_string(AlertAction action);
std::optional<AlertAction> parse_alert_action(std::string_view text);

struct AlertSettings {
  // The action of each rule, by rule name; a rule not listed has its default. Rules whose
  // default depends on the key (loop, rate_spike) use `run_key_action` for keys created by
  // `till run` (KeySnapshot::created_by_run) unless set here.
  std::map<std::string, AlertAction, std::less<>> actions;

  std::vector<int> budget_marks_percent = {50, 80, 100};
  std::chrono::minutes projection_window{5};
  std::chrono::minutes projection_horizon{15};
  double spike_z = 4.0;
  int64_t spike_min_requests = 30;
  int spike_baseline_minutes = 5;
  std::chrono::seconds loop_window{60};
  int loop_repeats = 20;
  double model_shift_factor = 5.0;
  int64_t model_shift_min_requests = 5;
  int64_t new_address_min_requests = 10;
  std::chrono::seconds invalid_burst_window{60};
  int invalid_burst_count = 20;
  std::chrono::minutes address_cooldown{5};
  std::chrono::hours rotation_notice{24};
  // The same alert (rule, key or address) is not raised again within this time, except
  // budget marks (once per mark) and exhaustion (once).
  std::chrono::minutes repeat_after{60};
};

// The rule names, in the order of the list above.
const std::vector<std::string>& alert_rule_names();

// A key as it stands after the event (from the budget ledger: exact counters).
struct KeySnapshot {
  KeyRecord record;
  bool created_by_run = false;  // metadata says `till run` made it
};

struct RaisedAlert {
  std::string key_id;  // empty for address-only alerts
  std::string rule;
  std::string severity;                      // "info", "warning", "critical"
  std::string message;                       // one line: what happened, what to do
  AlertAction action = AlertAction::kAlert;  // kSuspend: suspend key_id
  // invalid_key_burst: the address to refuse, until when.
  std::string blocked_address;
  std::optional<Timestamp> blocked_until;
};

class AlertEngine {
 public:
  AlertEngine(AlertSettings settings, const PricingTable& pricing);
  ~AlertEngine();

  // One event, in time order, with the key it names as it stands now (nullptr when the event
  // names no key or the key does not exist). Returns the alerts it raises (often none).
  std::vector<RaisedAlert> observe(const UsageEvent& event, const KeySnapshot* key);

  // Rotation reminders at `now`: keys due soon or overdue, and vault credentials likewise.
  std::vector<RaisedAlert> check_rotation(const std::vector<RotationDue>& keys,
                                          const std::vector<CredentialRecord>& credentials,
                                          Timestamp now);

 private:
  struct State;
  AlertSettings settings_;
  const PricingTable& pricing_;
  std::unique_ptr<State> state_;
};

}  // namespace till
