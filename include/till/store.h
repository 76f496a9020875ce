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

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "till/clock.h"
#include "till/error.h"
#include "till/key.h"

namespace till {

struct KeyFilter {
  std::optional<KeyStatus> status;   // stored status (an active key past expiry still matches active)
  std::optional<std::string> provider;
  std::optional<std::string> name;   // exact match
  std::string cursor;                // from KeyPage::next_cursor; empty = first page
  int limit = 100;                   // 1..1000
};

struct KeyPage {
  std::vector<KeyRecord> keys;           // newest first
  std::optional<std::string> next_cursor;  // set when more keys follow
};

struct Reservation {
  std::string id;  // unique, opaque
  std::string key_id;
  Budget amount;
  Timestamp created_at;
};

class Store {
 public:
  virtual ~Store() = default;

  // --- Keys ---------------------------------------------------------------------------------

  // Inserts a new key. `key.used` and `key.reserved` must be zero (kInvalidRequest otherwise).
  // kConflict if the id exists; kNotFound (field "parent_id") if key.parent_id names no key.
  virtual Result<void> insert_key(const KeyRecord& key) = 0;

  // The key with `id`, with its current counters. kNotFound if there is none.
  virtual Result<KeyRecord> find_key(std::string_view id) = 0;

  // Keys matching `filter`, newest first, one page at a time. kInvalidRequest (field "cursor") for a
  // cursor this store did not hand out; kInvalidRequest (field "limit") for a limit outside 1..1000.
  virtual Result<KeyPage> list_keys(const KeyFilter& filter) = 0;

  // Sets the key's status and returns the updated record. Revoked is terminal: setting revoked
  // again is a no-op that succeeds (idempotent revoke); any other change of a revoked key is
  // kConflict. kNotFound if there is no such key.
  virtual Result<KeyRecord> set_status(std::string_view id, KeyStatus status, Timestamp now) = 0;

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

  // --- Admin keys ---------------------------------------------------------------------------

  virtual Result<void> insert_admin_key(const AdminKeyRecord& key) = 0;  // kConflict if id exists
  virtual Result<AdminKeyRecord> find_admin_key(std::string_view id) = 0;  // kNotFound
  virtual Result<int64_t> count_admin_keys() = 0;  // not counting revoked ones
};

// Opens (creating if needed) the SQLite store at `path`, applying schema migrations.
// The database file and its WAL are created with mode 0600.
Result<std::unique_ptr<Store>> open_sqlite_store(const std::string& path);

}  // namespace till
