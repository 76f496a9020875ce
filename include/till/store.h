// Store: durable state of till — keys, admin keys, counters and outstanding reservations.
//
// One interface, several backends (SQLite embedded by default, PostgreSQL for scale-out), all held
// to the same conformance suite (tests/unit/store/store_conformance.h). The budget operations are
// the heart of the budget invariant: for every key and every limited dimension,
//     used + reserved <= limit
// holds after every call, under any concurrency, across every process sharing the store, and
// across a crash (a reservation is durable before reserve() returns).
//
// Thread-safety: every method may be called from any thread concurrently. Methods block on I/O;
// the data plane must not call them from an I/O thread that serves other requests.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "till/alert.h"
#include "till/clock.h"
#include "till/credential.h"
#include "till/error.h"
#include "till/key.h"
#include "till/usage_event.h"

namespace till {

struct KeyFilter {
  std::optional<KeyStatus>
      status;  // stored status (an active key past expiry still matches active)
  std::optional<std::string> provider;
  std::optional<std::string> name;       // exact match
  std::optional<std::string> parent_id;  // the parent's direct sub-keys only
  std::string cursor;                    // from KeyPage::next_cursor; empty = first page
  int limit = 100;                       // 1..1000
};

struct KeyPage {
  std::vector<KeyRecord> keys;             // newest first
  std::optional<std::string> next_cursor;  // set when more keys follow
};

struct Reservation {
  std::string id;  // unique, opaque
  std::string key_id;
  Budget amount;
  Timestamp created_at;
};

// Which usage events a query covers: [from, to), optionally one key, provider or model.
struct UsageFilter {
  std::optional<std::string> key_id;
  std::optional<std::string> provider;
  std::optional<std::string> model;
  Timestamp from;
  Timestamp to;
};

enum class UsageBucket { kMinute, kHour, kDay };  // buckets start on UTC boundaries

// How long a bucket is (Unix time has no leap seconds: UTC days are all 24 hours).
constexpr std::chrono::milliseconds bucket_length(UsageBucket bucket) {
  switch (bucket) {
    case UsageBucket::kMinute:
      return std::chrono::minutes(1);
    case UsageBucket::kHour:
      return std::chrono::hours(1);
    case UsageBucket::kDay:
      return std::chrono::days(1);
  }
  return std::chrono::hours(1);
}
// The start, in Unix ms, of the bucket of `length` that `unix_ms` is in: rounded down to a
// multiple of the length (also before 1970, where % alone would round up).
constexpr int64_t bucket_start_ms(int64_t unix_ms, std::chrono::milliseconds length) {
  const int64_t n = length.count();
  return unix_ms - ((unix_ms % n) + n) % n;
}

enum class UsageGroup { kNone, kKey, kProvider, kModel };

// Sums over usage events. `requests` counts forwarded ones (as a key's used.requests does);
// `refused` those till answered itself.
struct UsageTotals {
  int64_t requests = 0;
  int64_t refused = 0;
  int64_t input_tokens = 0;
  int64_t cached_input_tokens = 0;
  int64_t output_tokens = 0;
  int64_t reasoning_tokens = 0;
  int64_t unmetered_tokens = 0;
  Money spend;
  int64_t tokens() const { return input_tokens + output_tokens + unmetered_tokens; }
  bool operator==(const UsageTotals&) const = default;
};

struct UsagePoint {
  Timestamp start;  // the bucket's start
  UsageTotals totals;
};

struct UsageSeries {
  std::string group;  // the key id, provider or model of this group; "" when not grouped
  UsageTotals totals;
  std::vector<UsagePoint> points;  // buckets with events only, oldest first
};

struct UsageEventPage {
  std::vector<UsageEvent> events;          // newest first by `at` (body_hash is always 0)
  std::optional<std::string> next_cursor;  // set when more events follow
};

struct AlertFilter {
  std::optional<std::string> key_id;
  std::optional<std::string> rule;
  std::optional<bool> acknowledged;
  std::optional<Timestamp> since;  // created_at >= since
  std::string cursor;              // from AlertPage::next_cursor; empty = first page
  int limit = 100;                 // 1..1000
};

struct AlertPage {
  std::vector<AlertRecord> alerts;  // newest first
  std::optional<std::string> next_cursor;
};

// A key whose token must be rotated by `due` (KeyRecord::rotation_due_at).
struct RotationDue {
  std::string key_id;
  Timestamp due;
};

class Store {
 public:
  virtual ~Store() = default;

  // --- Keys ---------------------------------------------------------------------------------

  // Inserts a new key. `key.used`, `key.reserved` and `key.carved` must be zero (kInvalidRequest
  // otherwise). kConflict if the id exists; kNotFound (field "parent_id") if key.parent_id names
  // no key.
  //
  // A sub-key (parent_id set) is carved out of its parent in the same transaction: the parent's
  // stored status must be active (its status error otherwise); on every dimension the parent
  // limits, the key must be limited too (kInvalidRequest naming the limit: "max_requests",
  // "max_tokens", "max_spend") and its limit must fit in what the parent has left, used +
  // reserved + limit <= parent's limit (kLimitExhausted naming the dimension otherwise). The
  // parent then holds the key's limits in reserve (KeyRecord::carved). From then on every change
  // of the key's usage is added to its parent's (and so on up), and its carve shrinks as it
  // spends; once the key is revoked, expired or exhausted, the unused part returns to the parent.
  virtual Result<void> insert_key(const KeyRecord& key) = 0;

  // The key with `id`, with its current counters. kNotFound if there is none.
  virtual Result<KeyRecord> find_key(std::string_view id) = 0;

  // Keys matching `filter`, newest first, one page at a time. kInvalidRequest (field "cursor") for
  // a cursor this store did not hand out; kInvalidRequest (field "limit") for a limit
  // outside 1..1000.
  virtual Result<KeyPage> list_keys(const KeyFilter& filter) = 0;

  // Sets the key's status and returns the updated record. Revoked is terminal: setting revoked
  // again is a no-op that succeeds (idempotent revoke); any other change of a revoked key is
  // kConflict. kNotFound if there is no such key.
  // Descendants follow in the same transaction: revoking revokes them all; suspending suspends
  // those not revoked; making a key active again resumes its suspended descendants. A key whose
  // budget is used up becomes exhausted rather than active. Making active a sub-key whose parent
  // is suspended, revoked or expired is kConflict.
  virtual Result<KeyRecord> set_status(std::string_view id, KeyStatus status, Timestamp now) = 0;

  // Ids of the key's sub-keys, their sub-keys, and so on (any order). kNotFound if no such key.
  virtual Result<std::vector<std::string>> descendant_ids(std::string_view id) = 0;

  // Marks every key past its expiry (active, exhausted or suspended) expired, so sub-keys return
  // their unused budget to their parents. Returns how many keys changed.
  virtual Result<int64_t> expire_keys(Timestamp now) = 0;

  // Replaces the key's token by a new one (secret hash, seal version): the current token becomes
  // the previous one, accepted until `previous_valid_until` (nothing is kept if that is not after
  // `now`; an earlier previous token is dropped), and rotated_at = now. Counters, limits and status
  // are unchanged. kConflict if the key is revoked; kNotFound if there is no such key.
  virtual Result<KeyRecord> rotate_token(std::string_view id, const SecretHash& secret_hash,
                                         uint32_t seal_version, Timestamp previous_valid_until,
                                         Timestamp now) = 0;

  // Ids of keys that are neither revoked nor expired at `now` and whose current token, or previous
  // token still within its grace, is sealed under master key `version`.
  virtual Result<std::vector<std::string>> keys_sealed_under(uint32_t version, Timestamp now) = 0;

  // --- Budget -------------------------------------------------------------------------------

  // Atomically reserves `amount` against the key: succeeds only if the key's stored status is
  // active and, for every limited dimension, used + reserved + amount <= limit; then reserved +=
  // amount and the reservation is durable before this returns. Otherwise nothing changes and the
  // error is kLimitExhausted (message names the dimension: "requests", "tokens" or "spend"),
  // kKeyRevoked / kKeySuspended / kKeyExpired (stored status; an exhausted key is kLimitExhausted),
  // or kNotFound. kInvalidRequest if an amount is negative or too large to add up.
  // Expiry by time is the caller's check (KeyRecord::effective_status).
  virtual Result<Reservation> reserve(std::string_view key_id, const Budget& amount,
                                      Timestamp now) = 0;

  // Settles a reservation exactly once: reserved -= its amount, used += actual. `actual` may exceed
  // the reservation (the caller records the overshoot). If afterwards any limited dimension has
  // used >= limit, an active key becomes exhausted. Returns the updated key. A reservation that is
  // unknown or already settled is kNotFound and changes nothing. kInvalidRequest if a figure of
  // `actual` is negative or too large to add up; the reservation then stays outstanding.
  virtual Result<KeyRecord> settle(std::string_view reservation_id, const Usage& actual,
                                   Timestamp now) = 0;

  // Resizes an outstanding reservation in one atomic step, for holders that serve many requests
  // from one reservation (the budget ledger's leases): `consumed` is charged to the key as part
  // of what the reservation held (as settle() would), and the reservation then holds
  // `new_amount` instead of its old amount. Growing must fit: the key's stored status must be
  // active and every limited dimension must keep used + reserved <= limit. Giving budget back —
  // new_amount <= old amount − consumed on every limited dimension — always succeeds, so
  // requests in flight stay covered even if the key was revoked or overshot meanwhile. If it
  // does not fit: kLimitExhausted (naming the dimension) or the status error, and nothing
  // changes. Exhaustion applies as in settle(). kNotFound for an unknown reservation. Returns
  // the updated key.
  virtual Result<KeyRecord> resize(std::string_view reservation_id, const Usage& consumed,
                                   const Budget& new_amount, Timestamp now) = 0;

  // Called once at start-up before serving: every outstanding reservation (left by a crash) is
  // settled as fully consumed — its requests and spend into used, its tokens into
  // used.unmetered_tokens — so a crash can lose budget but never grant it. Returns how many.
  virtual Result<int64_t> settle_orphaned_reservations(Timestamp now) = 0;

  // --- Vault credentials -------------------------------------------------------------------

  virtual Result<void> insert_credential(const CredentialRecord& credential) = 0;  // kConflict
  virtual Result<CredentialRecord> find_credential(std::string_view name) = 0;     // kNotFound
  virtual Result<std::vector<CredentialRecord>> list_credentials() = 0;            // by name

  // Replaces the stored fields of an existing credential (all but name and created_at).
  // kNotFound if there is none.
  virtual Result<void> update_credential(const CredentialRecord& credential) = 0;

  // Ids of the keys, not revoked, that reference the credential (oldest first).
  virtual Result<std::vector<std::string>> keys_using_credential(std::string_view name) = 0;

  // Deletes the credential. Unless `force`, kConflict while keys_using_credential is not empty
  // (the message names them); with `force` those keys fail at their next request. kNotFound.
  virtual Result<void> delete_credential(std::string_view name, bool force) = 0;

  // --- Usage events --------------------------------------------------------------------------

  // Appends events in one transaction (ids are assigned in order). Events are facts: nothing
  // checks them against keys. kInvalidRequest for a negative usage figure.
  virtual Result<void> append_usage_events(std::span<const UsageEvent> events) = 0;

  // Totals and per-bucket sums of the events `filter` selects. Not grouped: exactly one series
  // (empty totals when nothing matched). Grouped: one series per group value that has events,
  // the highest spend first (then the most requests, then by name). kInvalidRequest (field
  // "to") if to <= from.
  virtual Result<std::vector<UsageSeries>> usage_summary(const UsageFilter& filter,
                                                         UsageBucket bucket, UsageGroup group) = 0;

  // The events `filter` selects, newest first, a page at a time. kInvalidRequest (field
  // "cursor") for a cursor this store did not hand out, (field "limit") outside 1..1000.
  virtual Result<UsageEventPage> list_usage_events(const UsageFilter& filter,
                                                   std::string_view cursor, int limit) = 0;

  // Deletes events older than the minute `before` is in (retention: whole minutes, so that the
  // per-minute sums summaries read stay equal to the events kept). Returns how many.
  virtual Result<int64_t> delete_usage_events_before(Timestamp before) = 0;

  // --- Alerts --------------------------------------------------------------------------------

  // Stores an alert and returns it with its id. alert.id is ignored.
  virtual Result<AlertRecord> insert_alert(const AlertRecord& alert) = 0;

  // Alerts `filter` selects, newest first. Cursor and limit errors as list_usage_events.
  virtual Result<AlertPage> list_alerts(const AlertFilter& filter) = 0;

  // Marks an alert acknowledged at `now` (once: acknowledging again keeps the first time).
  // kNotFound if there is no such alert.
  virtual Result<AlertRecord> acknowledge_alert(int64_t id, Timestamp now) = 0;

  // Keys, neither revoked nor expired at `now`, whose token is due for rotation before `before`
  // (rotate_every set), soonest first.
  virtual Result<std::vector<RotationDue>> keys_due_for_rotation(Timestamp before,
                                                                 Timestamp now) = 0;

  // --- Admin keys ---------------------------------------------------------------------------

  virtual Result<void> insert_admin_key(const AdminKeyRecord& key) = 0;    // kConflict if id exists
  virtual Result<AdminKeyRecord> find_admin_key(std::string_view id) = 0;  // kNotFound
  virtual Result<int64_t> count_admin_keys() = 0;  // not counting revoked ones
};

// Opens (creating if needed) the SQLite store at `path`, applying schema migrations.
// The database file and its WAL are created with mode 0600.
Result<std::unique_ptr<Store>> open_sqlite_store(const std::string& path);

}  // namespace till
