#include "unit/store/store_conformance.h"

#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <bit>
#include <chrono>
#include <climits>
#include <filesystem>
#include <latch>
#include <random>
#include <set>
#include <span>
#include <thread>
#include <vector>

#include "unit/store/usage_event_testing.h"

namespace till::test {

using namespace std::chrono_literals;

void StoreConformanceTest::SetUp() {
  std::string pattern = (std::filesystem::temp_directory_path() / "till-store-XXXXXX").string();
  ASSERT_NE(::mkdtemp(pattern.data()), nullptr) << "mkdtemp failed";
  dir_ = pattern;
  store_ = GetParam().open(dir_);
  ASSERT_NE(store_, nullptr) << "the backend could not open a store in " << dir_;
}

void StoreConformanceTest::TearDown() {
  store_.reset();
  if (!dir_.empty()) {
    std::error_code ignored;
    std::filesystem::remove_all(dir_, ignored);
  }
}

void StoreConformanceTest::reopen() {
  store_.reset();
  store_ = GetParam().open(dir_);
  ASSERT_NE(store_, nullptr) << "the backend could not reopen the store in " << dir_;
}

namespace {

const Timestamp kT0 = from_unix_ms(1'764'860'400'000);  // 2025-12-04T15:00:00Z

KeyRecord new_key(std::string id, Limits limits = {}) {
  KeyRecord key;
  key.id = std::move(id);
  key.name = "agent";
  key.provider = "openai";
  key.limits = limits;
  key.created_at = kT0;
  key.updated_at = kT0;
  return key;
}

void expect_same_key(const KeyRecord& actual, const KeyRecord& expected) {
  EXPECT_EQ(actual.id, expected.id);
  EXPECT_EQ(actual.name, expected.name);
  EXPECT_EQ(actual.provider, expected.provider);
  EXPECT_EQ(actual.metadata_json, expected.metadata_json);
  EXPECT_EQ(actual.status, expected.status);
  EXPECT_EQ(actual.secret_hash, expected.secret_hash);
  EXPECT_EQ(actual.limits, expected.limits);
  EXPECT_EQ(actual.scope.models, expected.scope.models);
  EXPECT_EQ(actual.scope.rpm, expected.scope.rpm);
  EXPECT_EQ(actual.scope.max_concurrency, expected.scope.max_concurrency);
  EXPECT_EQ(actual.scope.allowed_cidrs, expected.scope.allowed_cidrs);
  EXPECT_EQ(actual.expires_at, expected.expires_at);
  EXPECT_EQ(actual.created_at, expected.created_at);
  EXPECT_EQ(actual.updated_at, expected.updated_at);
  EXPECT_EQ(actual.parent_id, expected.parent_id);
  EXPECT_EQ(actual.credential, expected.credential);
  EXPECT_EQ(actual.used, expected.used);
  EXPECT_EQ(actual.reserved, expected.reserved);
}

std::vector<std::string> ids_of(const std::vector<KeyRecord>& keys) {
  std::vector<std::string> ids;
  for (const KeyRecord& key : keys) ids.push_back(key.id);
  return ids;
}

// The three budget dimensions, so that one test body can check each of them.
enum class Dim { kRequests, kTokens, kSpend };
constexpr Dim kAllDims[] = {Dim::kRequests, Dim::kTokens, Dim::kSpend};

const char* dim_name(Dim dim) {
  switch (dim) {
    case Dim::kRequests:
      return "requests";
    case Dim::kTokens:
      return "tokens";
    case Dim::kSpend:
      return "spend";
  }
  return "?";
}

Limits limit_on(Dim dim, int64_t limit) {
  Limits limits;
  switch (dim) {
    case Dim::kRequests:
      limits.max_requests = limit;
      break;
    case Dim::kTokens:
      limits.max_tokens = limit;
      break;
    case Dim::kSpend:
      limits.max_spend = Money::from_nanos(limit);
      break;
  }
  return limits;
}

Budget budget_on(Dim dim, int64_t amount) {
  Budget budget;
  switch (dim) {
    case Dim::kRequests:
      budget.requests = amount;
      break;
    case Dim::kTokens:
      budget.tokens = amount;
      break;
    case Dim::kSpend:
      budget.spend = Money::from_nanos(amount);
      break;
  }
  return budget;
}

Usage usage_on(Dim dim, int64_t amount) {
  Usage usage;
  switch (dim) {
    case Dim::kRequests:
      usage.requests = amount;
      break;
    case Dim::kTokens:
      usage.input_tokens = amount;
      break;
    case Dim::kSpend:
      usage.spend = Money::from_nanos(amount);
      break;
  }
  return usage;
}

int64_t used_on(Dim dim, const KeyRecord& key) {
  switch (dim) {
    case Dim::kRequests:
      return key.used.requests;
    case Dim::kTokens:
      return key.used.tokens();
    case Dim::kSpend:
      return key.used.spend.nanos();
  }
  return 0;
}

// --- insert_key / find_key -------------------------------------------------------------------

TEST_P(StoreConformanceTest, InsertAndFindRoundTripEveryField) {
  ASSERT_OK(store_->insert_key(new_key("key_parent")));

  KeyRecord key = new_key("key_full");
  key.name = "research \"agent\" \xc3\xbc";
  key.provider = "anthropic";
  key.metadata_json = R"({"team":"search","tags":["a","b"],"weight":1.5,"nested":{"x":null}})";
  key.status = KeyStatus::kSuspended;
  for (size_t i = 0; i < key.secret_hash.size(); ++i) {
    key.secret_hash[i] = static_cast<uint8_t>(i == 3 ? 0 : 255 - 7 * i);  // includes a 0 byte
  }
  key.limits = Limits{50, 100'000, Money::from_nanos(5'000'000'001)};
  key.scope.models = {"gpt-4o-mini",
                      "",
                      "has \"quotes\", \\ backslash,\nnewline and\ttab",
                      "\xe6\xa8\xa1\xe5\x9e\x8b",
                      "[\"not\",\"a list\"]",
                      std::string("\x01\x7f", 2)};
  key.scope.rpm = 60;
  key.scope.max_concurrency = 4;
  key.scope.allowed_cidrs = {"10.0.0.0/8", "2001:db8::/32"};
  key.expires_at = kT0 + 24h;
  key.created_at = kT0;
  key.updated_at = kT0 + 5ms;
  key.parent_id = "key_parent";
  key.credential = "openai-prod";
  ASSERT_OK(store_->insert_key(key));

  Result<KeyRecord> found = store_->find_key("key_full");
  ASSERT_OK(found);
  expect_same_key(*found, key);

  reopen();
  found = store_->find_key("key_full");
  ASSERT_OK(found);
  expect_same_key(*found, key);
}

TEST_P(StoreConformanceTest, InsertAndFindRoundTripMinimalKey) {
  KeyRecord key = new_key("key_min");
  key.name = "";
  key.metadata_json = "{}";
  ASSERT_OK(store_->insert_key(key));
  Result<KeyRecord> found = store_->find_key("key_min");
  ASSERT_OK(found);
  expect_same_key(*found, key);
  EXPECT_EQ(found->limits, Limits{});
  EXPECT_TRUE(found->scope.models.empty());
  EXPECT_TRUE(found->scope.allowed_cidrs.empty());
  EXPECT_FALSE(found->expires_at);
  EXPECT_FALSE(found->parent_id);
  EXPECT_FALSE(found->credential);
}

TEST_P(StoreConformanceTest, InsertRoundTripsZeroLimitsAndSingleEmptyScopeEntry) {
  KeyRecord key = new_key("key_zero", Limits{0, 0, Money::from_nanos(0)});
  key.scope.models = {""};  // distinct from an empty list
  key.scope.rpm = 0;
  key.scope.max_concurrency = 0;
  ASSERT_OK(store_->insert_key(key));
  Result<KeyRecord> found = store_->find_key("key_zero");
  ASSERT_OK(found);
  expect_same_key(*found, key);
}

TEST_P(StoreConformanceTest, InsertDuplicateIdIsConflictAndKeepsTheOriginal) {
  KeyRecord original = new_key("key_dup");
  ASSERT_OK(store_->insert_key(original));
  KeyRecord other = new_key("key_dup");
  other.name = "impostor";
  EXPECT_TRUE(fails_with(store_->insert_key(other), ErrorCode::kConflict));
  Result<KeyRecord> found = store_->find_key("key_dup");
  ASSERT_OK(found);
  EXPECT_EQ(found->name, "agent");
}

TEST_P(StoreConformanceTest, InsertRejectsCountersThatAreNotZero) {
  KeyRecord used = new_key("key_used");
  used.used.requests = 1;
  Result<void> inserted = store_->insert_key(used);
  EXPECT_TRUE(fails_with(inserted, ErrorCode::kInvalidRequest));
  KeyRecord reserved = new_key("key_reserved");
  reserved.reserved.tokens = 1;
  EXPECT_TRUE(fails_with(store_->insert_key(reserved), ErrorCode::kInvalidRequest));
  EXPECT_TRUE(fails_with(store_->find_key("key_used"), ErrorCode::kNotFound));
  EXPECT_TRUE(fails_with(store_->find_key("key_reserved"), ErrorCode::kNotFound));
}

TEST_P(StoreConformanceTest, InsertWithUnknownParentIsNotFound) {
  KeyRecord child = new_key("key_child");
  child.parent_id = "key_nobody";
  EXPECT_TRUE(fails_with(store_->insert_key(child), ErrorCode::kNotFound));
  EXPECT_TRUE(fails_with(store_->find_key("key_child"), ErrorCode::kNotFound));
}

TEST_P(StoreConformanceTest, FindUnknownKeyIsNotFound) {
  EXPECT_TRUE(fails_with(store_->find_key("key_missing"), ErrorCode::kNotFound));
  EXPECT_TRUE(fails_with(store_->find_key(""), ErrorCode::kNotFound));
}

// --- list_keys -------------------------------------------------------------------------------

TEST_P(StoreConformanceTest, ListKeysIsNewestFirst) {
  for (int i = 1; i <= 5; ++i) {
    KeyRecord key = new_key("key_" + std::to_string(i));
    key.created_at = kT0 + std::chrono::milliseconds(i);
    ASSERT_OK(store_->insert_key(key));
  }
  Result<KeyPage> page = store_->list_keys(KeyFilter{});
  ASSERT_OK(page);
  EXPECT_EQ(ids_of(page->keys),
            (std::vector<std::string>{"key_5", "key_4", "key_3", "key_2", "key_1"}));
  EXPECT_FALSE(page->next_cursor);
}

TEST_P(StoreConformanceTest, ListKeysOfAnEmptyStoreIsEmpty) {
  Result<KeyPage> page = store_->list_keys(KeyFilter{});
  ASSERT_OK(page);
  EXPECT_TRUE(page->keys.empty());
  EXPECT_FALSE(page->next_cursor);
}

TEST_P(StoreConformanceTest, ListKeysFiltersByStatusProviderAndExactName) {
  struct Spec {
    const char* id;
    const char* provider;
    const char* name;
    KeyStatus status;
  };
  const Spec specs[] = {
      {"key_a", "openai", "alpha", KeyStatus::kActive},
      {"key_b", "anthropic", "alpha", KeyStatus::kSuspended},
      {"key_c", "openai", "alpha-2", KeyStatus::kActive},
      {"key_d", "openai", "Alpha", KeyStatus::kRevoked},
      {"key_e", "anthropic", "beta", KeyStatus::kActive},
  };
  for (const Spec& spec : specs) {
    KeyRecord key = new_key(spec.id);
    key.provider = spec.provider;
    key.name = spec.name;
    key.status = spec.status;
    ASSERT_OK(store_->insert_key(key));
  }
  // The filter matches the stored status: an active key past its expiry still lists as active.
  KeyRecord expired = new_key("key_f");
  expired.name = "gamma";
  expired.expires_at = kT0 - 1h;
  ASSERT_OK(store_->insert_key(expired));

  auto list = [&](KeyFilter filter) {
    Result<KeyPage> page = store_->list_keys(filter);
    EXPECT_TRUE(page.has_value()) << page.error().message;
    return page ? ids_of(page->keys) : std::vector<std::string>{};
  };
  using Ids = std::vector<std::string>;
  EXPECT_EQ(list({.status = KeyStatus::kActive}), (Ids{"key_f", "key_e", "key_c", "key_a"}));
  EXPECT_EQ(list({.status = KeyStatus::kSuspended}), (Ids{"key_b"}));
  EXPECT_EQ(list({.status = KeyStatus::kExpired}), Ids{});
  EXPECT_EQ(list({.provider = "anthropic"}), (Ids{"key_e", "key_b"}));
  EXPECT_EQ(list({.provider = "open"}), Ids{});
  EXPECT_EQ(list({.name = "alpha"}), (Ids{"key_b", "key_a"}));  // not "alpha-2", not "Alpha"
  EXPECT_EQ(list({.status = KeyStatus::kActive, .provider = "openai", .name = "alpha"}),
            (Ids{"key_a"}));
  EXPECT_EQ(list({.status = KeyStatus::kActive, .provider = "openai"}),
            (Ids{"key_f", "key_c", "key_a"}));
  EXPECT_EQ(list({.provider = "anthropic", .name = "beta"}), (Ids{"key_e"}));
  EXPECT_EQ(list({.status = KeyStatus::kRevoked, .name = "Alpha"}), (Ids{"key_d"}));

  // A status change moves a key between status filters.
  ASSERT_OK(store_->set_status("key_a", KeyStatus::kSuspended, kT0 + 1s));
  EXPECT_EQ(list({.status = KeyStatus::kSuspended}), (Ids{"key_b", "key_a"}));
}

// Pages through `filter` and returns every id seen, checking each page's size.
std::vector<std::string> all_pages(Store& store, KeyFilter filter, size_t expected_pages) {
  std::vector<std::string> ids;
  size_t pages = 0;
  for (;;) {
    Result<KeyPage> page = store.list_keys(filter);
    if (!page) {
      ADD_FAILURE() << page.error().message;
      break;
    }
    ++pages;
    if (page->next_cursor) {
      EXPECT_EQ(page->keys.size(), static_cast<size_t>(filter.limit)) << "page " << pages;
    } else {
      EXPECT_LE(page->keys.size(), static_cast<size_t>(filter.limit));
    }
    for (std::string& id : ids_of(page->keys)) ids.push_back(std::move(id));
    if (!page->next_cursor) break;
    filter.cursor = *page->next_cursor;
    if (pages > 100) {
      ADD_FAILURE() << "pagination does not end";
      break;
    }
  }
  EXPECT_EQ(pages, expected_pages);
  return ids;
}

TEST_P(StoreConformanceTest, ListKeysPaginatesWithoutDuplicatesOrGaps) {
  std::vector<std::string> newest_first;
  for (int i = 0; i < 23; ++i) {
    KeyRecord key = new_key("key_" + std::string(1, static_cast<char>('a' + i)));
    key.provider = i % 2 == 0 ? "openai" : "anthropic";
    ASSERT_OK(store_->insert_key(key));
    newest_first.insert(newest_first.begin(), key.id);
  }
  // 23 keys in pages of 5: 5 pages, the last one short.
  EXPECT_EQ(all_pages(*store_, {.limit = 5}, 5), newest_first);
  // One page that holds them all has no cursor; so has an exact fit.
  EXPECT_EQ(all_pages(*store_, {.limit = 1000}, 1), newest_first);
  EXPECT_EQ(all_pages(*store_, {.limit = 23}, 1), newest_first);
  // A page size that divides the count exactly: no empty page at the end.
  std::vector<std::string> openai;
  for (const std::string& id : newest_first) {
    if ((id.back() - 'a') % 2 == 0) openai.push_back(id);
  }
  ASSERT_EQ(openai.size(), 12u);
  EXPECT_EQ(all_pages(*store_, {.provider = "openai", .limit = 4}, 3), openai);
  EXPECT_EQ(all_pages(*store_, {.limit = 1}, 23), newest_first);
}

TEST_P(StoreConformanceTest, ListKeysCursorIsStableWhileKeysAreAdded) {
  for (int i = 0; i < 6; ++i) ASSERT_OK(store_->insert_key(new_key("key_old" + std::to_string(i))));
  Result<KeyPage> first = store_->list_keys({.limit = 3});
  ASSERT_OK(first);
  ASSERT_TRUE(first->next_cursor);
  ASSERT_OK(store_->insert_key(new_key("key_new")));
  Result<KeyPage> second = store_->list_keys({.cursor = *first->next_cursor, .limit = 3});
  ASSERT_OK(second);
  EXPECT_EQ(ids_of(first->keys), (std::vector<std::string>{"key_old5", "key_old4", "key_old3"}));
  EXPECT_EQ(ids_of(second->keys), (std::vector<std::string>{"key_old2", "key_old1", "key_old0"}));
  EXPECT_FALSE(second->next_cursor);
}

TEST_P(StoreConformanceTest, ListKeysRejectsLimitOutside1To1000) {
  ASSERT_OK(store_->insert_key(new_key("key_a")));
  for (int limit : {0, -1, 1001, INT_MIN, INT_MAX}) {
    Result<KeyPage> page = store_->list_keys({.limit = limit});
    EXPECT_TRUE(fails_with(page, ErrorCode::kInvalidRequest)) << "limit " << limit;
    if (!page) {
      EXPECT_EQ(page.error().field, "limit");
    }
  }
  for (int limit : {1, 1000}) {
    Result<KeyPage> page = store_->list_keys({.limit = limit});
    EXPECT_OK(page);
  }
}

TEST_P(StoreConformanceTest, ListKeysRejectsCursorsItDidNotHandOut) {
  ASSERT_OK(store_->insert_key(new_key("key_a")));
  // Strings no backend's cursor encoding produces (the suite does not prescribe an encoding).
  for (std::string cursor :
       {std::string("not a cursor"), std::string("-1"), std::string("1.5"), std::string("\xff\xfe"),
        std::string(1000, '9'), std::string("1; DROP TABLE keys")}) {
    Result<KeyPage> page = store_->list_keys({.cursor = cursor});
    EXPECT_TRUE(fails_with(page, ErrorCode::kInvalidRequest)) << "cursor " << cursor;
    if (!page) {
      EXPECT_EQ(page.error().field, "cursor");
    }
  }
}

// --- set_status ------------------------------------------------------------------------------

TEST_P(StoreConformanceTest, SetStatusChangesStatusAndUpdatedAt) {
  ASSERT_OK(store_->insert_key(new_key("key_s")));
  Timestamp now = kT0;
  for (KeyStatus status : {KeyStatus::kSuspended, KeyStatus::kActive, KeyStatus::kExhausted,
                           KeyStatus::kActive, KeyStatus::kExpired, KeyStatus::kSuspended}) {
    now += 1s;
    Result<KeyRecord> updated = store_->set_status("key_s", status, now);
    ASSERT_OK(updated);
    EXPECT_EQ(updated->status, status);
    EXPECT_EQ(updated->updated_at, now);
    Result<KeyRecord> found = store_->find_key("key_s");
    ASSERT_OK(found);
    expect_same_key(*found, *updated);
  }
}

TEST_P(StoreConformanceTest, RevokeIsIdempotentAndTerminal) {
  ASSERT_OK(store_->insert_key(new_key("key_r")));
  Result<KeyRecord> revoked = store_->set_status("key_r", KeyStatus::kRevoked, kT0 + 1s);
  ASSERT_OK(revoked);
  EXPECT_EQ(revoked->status, KeyStatus::kRevoked);

  // Revoking again succeeds and changes nothing.
  Result<KeyRecord> again = store_->set_status("key_r", KeyStatus::kRevoked, kT0 + 2s);
  ASSERT_OK(again);
  expect_same_key(*again, *revoked);

  for (KeyStatus status :
       {KeyStatus::kActive, KeyStatus::kSuspended, KeyStatus::kExhausted, KeyStatus::kExpired}) {
    EXPECT_TRUE(fails_with(store_->set_status("key_r", status, kT0 + 3s), ErrorCode::kConflict));
  }
  Result<KeyRecord> found = store_->find_key("key_r");
  ASSERT_OK(found);
  expect_same_key(*found, *revoked);
}

TEST_P(StoreConformanceTest, SetStatusOfUnknownKeyIsNotFound) {
  EXPECT_TRUE(fails_with(store_->set_status("key_missing", KeyStatus::kRevoked, kT0),
                         ErrorCode::kNotFound));
}

// --- reserve ---------------------------------------------------------------------------------

TEST_P(StoreConformanceTest, ReserveEnforcesEachLimitExactly) {
  for (Dim dim : kAllDims) {
    SCOPED_TRACE(dim_name(dim));
    std::string id = std::string("key_") + dim_name(dim);
    ASSERT_OK(store_->insert_key(new_key(id, limit_on(dim, 10))));

    // used 3 after a first request; then reserved 5: 8 of 10 held.
    Result<Reservation> first = store_->reserve(id, budget_on(dim, 4), kT0);
    ASSERT_OK(first);
    ASSERT_OK(store_->settle(first->id, usage_on(dim, 3), kT0));
    Result<Reservation> second = store_->reserve(id, budget_on(dim, 5), kT0);
    ASSERT_OK(second);

    Result<KeyRecord> before = store_->find_key(id);
    ASSERT_OK(before);
    Result<Reservation> over = store_->reserve(id, budget_on(dim, 3), kT0);  // 3 + 5 + 3 > 10
    ASSERT_TRUE(fails_with(over, ErrorCode::kLimitExhausted));
    EXPECT_NE(over.error().message.find(dim_name(dim)), std::string::npos)
        << "message does not name the dimension: " << over.error().message;
    Result<KeyRecord> after = store_->find_key(id);
    ASSERT_OK(after);
    expect_same_key(*after, *before);  // nothing changes on refusal

    Result<Reservation> exact = store_->reserve(id, budget_on(dim, 2), kT0);  // 3 + 5 + 2 == 10
    ASSERT_OK(exact);
    EXPECT_TRUE(
        fails_with(store_->reserve(id, budget_on(dim, 1), kT0), ErrorCode::kLimitExhausted));
    // The other, unlimited dimensions never refuse, whatever the amount.
    Budget others{1'000'000'000'000, 1'000'000'000'000, Money::from_nanos(1'000'000'000'000'000)};
    switch (dim) {
      case Dim::kRequests:
        others.requests = 0;
        break;
      case Dim::kTokens:
        others.tokens = 0;
        break;
      case Dim::kSpend:
        others.spend = Money();
        break;
    }
    Result<Reservation> unlimited = store_->reserve(id, others, kT0);
    EXPECT_OK(unlimited);

    Result<KeyRecord> full = store_->find_key(id);
    ASSERT_OK(full);
    EXPECT_EQ(used_on(dim, *full), 3);
    EXPECT_EQ(full->status, KeyStatus::kActive);  // reserving never exhausts; settling does
  }
}

TEST_P(StoreConformanceTest, ReserveChecksEveryLimitedDimension) {
  ASSERT_OK(store_->insert_key(new_key("key_all", Limits{10, 1000, Money::from_nanos(1'000'000)})));
  EXPECT_OK(store_->reserve("key_all", Budget{10, 1000, Money::from_nanos(1'000'000)}, kT0));
  for (Dim dim : kAllDims) {
    Result<Reservation> refused = store_->reserve("key_all", budget_on(dim, 1), kT0);
    ASSERT_TRUE(fails_with(refused, ErrorCode::kLimitExhausted)) << dim_name(dim);
    EXPECT_NE(refused.error().message.find(dim_name(dim)), std::string::npos)
        << refused.error().message;
  }
  // A zero amount still fits a full budget (used + reserved + 0 <= limit).
  EXPECT_OK(store_->reserve("key_all", Budget{}, kT0));
}

TEST_P(StoreConformanceTest, ReserveOnUnlimitedKeyNeverRefuses) {
  ASSERT_OK(store_->insert_key(new_key("key_free")));
  const Budget big{1'000'000'000, 1'000'000'000'000, Money::from_nanos(1'000'000'000'000'000)};
  for (int i = 0; i < 5; ++i) {
    Result<Reservation> reservation = store_->reserve("key_free", big, kT0);
    ASSERT_OK(reservation);
  }
  Result<KeyRecord> key = store_->find_key("key_free");
  ASSERT_OK(key);
  EXPECT_EQ(key->reserved,
            (Budget{5'000'000'000, 5'000'000'000'000, Money::from_nanos(5'000'000'000'000'000)}));
}

TEST_P(StoreConformanceTest, ReserveRefusesKeysThatAreNotActive) {
  const struct {
    KeyStatus status;
    ErrorCode code;
  } cases[] = {
      {KeyStatus::kSuspended, ErrorCode::kKeySuspended},
      {KeyStatus::kRevoked, ErrorCode::kKeyRevoked},
      {KeyStatus::kExpired, ErrorCode::kKeyExpired},
      {KeyStatus::kExhausted, ErrorCode::kLimitExhausted},
  };
  int n = 0;
  for (const auto& c : cases) {
    std::string id = "key_" + std::to_string(n++);
    KeyRecord key = new_key(id, Limits{100, 100, Money::from_nanos(100)});
    key.status = c.status;
    ASSERT_OK(store_->insert_key(key));
    EXPECT_TRUE(fails_with(store_->reserve(id, Budget{1, 1, Money::from_nanos(1)}, kT0), c.code));
    Result<KeyRecord> after = store_->find_key(id);
    ASSERT_OK(after);
    expect_same_key(*after, key);
  }
  Result<int64_t> outstanding = store_->settle_orphaned_reservations(kT0);
  ASSERT_OK(outstanding);
  EXPECT_EQ(*outstanding, 0) << "a refused reserve left a reservation behind";
}

TEST_P(StoreConformanceTest, ReserveOnExhaustedKeyNamesTheExhaustedDimension) {
  ASSERT_OK(store_->insert_key(new_key("key_x", Limits{.max_tokens = 100})));
  Result<Reservation> reservation = store_->reserve("key_x", Budget{1, 100, {}}, kT0);
  ASSERT_OK(reservation);
  Result<KeyRecord> settled = store_->settle(
      reservation->id, Usage{.requests = 1, .input_tokens = 60, .output_tokens = 40}, kT0);
  ASSERT_OK(settled);
  EXPECT_EQ(settled->status, KeyStatus::kExhausted);
  Result<Reservation> refused = store_->reserve("key_x", Budget{}, kT0);
  ASSERT_TRUE(fails_with(refused, ErrorCode::kLimitExhausted));
  EXPECT_NE(refused.error().message.find("tokens"), std::string::npos) << refused.error().message;
}

TEST_P(StoreConformanceTest, ReserveOnUnknownKeyIsNotFound) {
  EXPECT_TRUE(
      fails_with(store_->reserve("key_missing", Budget{1, 1, {}}, kT0), ErrorCode::kNotFound));
}

TEST_P(StoreConformanceTest, ReserveLeavesExpiryByTimeToTheCaller) {
  KeyRecord key = new_key("key_old");
  key.expires_at = kT0 - 1h;
  ASSERT_OK(store_->insert_key(key));
  Result<Reservation> reservation = store_->reserve("key_old", Budget{1, 1, {}}, kT0);
  EXPECT_OK(reservation);
}

TEST_P(StoreConformanceTest, ReserveRejectsNegativeAmounts) {
  ASSERT_OK(store_->insert_key(new_key("key_n", Limits{10, 10, Money::from_nanos(10)})));
  for (Budget amount :
       {Budget{-1, 0, {}}, Budget{0, -1, {}}, Budget{0, 0, Money::from_nanos(-1)}}) {
    EXPECT_TRUE(fails_with(store_->reserve("key_n", amount, kT0), ErrorCode::kInvalidRequest));
  }
  Result<KeyRecord> key = store_->find_key("key_n");
  ASSERT_OK(key);
  EXPECT_EQ(key->reserved, Budget{});
}

TEST_P(StoreConformanceTest, ReservationEchoesItsRequestAndHasAUniqueId) {
  ASSERT_OK(store_->insert_key(new_key("key_1")));
  ASSERT_OK(store_->insert_key(new_key("key_2")));
  std::set<std::string> ids;
  for (int i = 0; i < 50; ++i) {
    const Budget amount{i, 10 * i, Money::from_nanos(100 * i)};
    const std::string key_id = i % 2 == 0 ? "key_1" : "key_2";
    Result<Reservation> reservation =
        store_->reserve(key_id, amount, kT0 + std::chrono::milliseconds(i));
    ASSERT_OK(reservation);
    EXPECT_FALSE(reservation->id.empty());
    EXPECT_EQ(reservation->key_id, key_id);
    EXPECT_EQ(reservation->amount, amount);
    EXPECT_EQ(reservation->created_at, kT0 + std::chrono::milliseconds(i));
    ids.insert(reservation->id);
    if (i == 25) reopen();  // ids stay unique across a restart, too
  }
  EXPECT_EQ(ids.size(), 50u);
}

// --- settle ----------------------------------------------------------------------------------

TEST_P(StoreConformanceTest, SettleMovesReservedToUsedExactly) {
  ASSERT_OK(store_->insert_key(new_key("key_s", Limits{10, 1000, Money::from_nanos(50'000'000)})));
  Result<Reservation> reservation =
      store_->reserve("key_s", Budget{1, 500, Money::from_nanos(10'000'000)}, kT0);
  ASSERT_OK(reservation);
  Result<KeyRecord> reserved = store_->find_key("key_s");
  ASSERT_OK(reserved);
  EXPECT_EQ(reserved->reserved, (Budget{1, 500, Money::from_nanos(10'000'000)}));
  EXPECT_EQ(reserved->used, Usage{});

  const Usage actual{.requests = 1,
                     .input_tokens = 40,
                     .cached_input_tokens = 10,
                     .output_tokens = 30,
                     .reasoning_tokens = 5,
                     .unmetered_tokens = 2,
                     .spend = Money::from_nanos(4'000'011)};
  Result<KeyRecord> settled = store_->settle(reservation->id, actual, kT0 + 2s);
  ASSERT_OK(settled);
  EXPECT_EQ(settled->used, actual);
  EXPECT_EQ(settled->used.tokens(), 72);
  EXPECT_EQ(settled->reserved, Budget{});
  EXPECT_EQ(settled->status, KeyStatus::kActive);
  EXPECT_EQ(settled->updated_at, kT0 + 2s);
  Result<KeyRecord> found = store_->find_key("key_s");
  ASSERT_OK(found);
  expect_same_key(*found, *settled);
}

TEST_P(StoreConformanceTest, SettleAddsToEarlierUsageAndKeepsOtherReservations) {
  ASSERT_OK(store_->insert_key(new_key("key_s")));
  Result<Reservation> a = store_->reserve("key_s", Budget{1, 100, Money::from_nanos(1000)}, kT0);
  Result<Reservation> b = store_->reserve("key_s", Budget{1, 200, Money::from_nanos(2000)}, kT0);
  ASSERT_OK(a);
  ASSERT_OK(b);
  ASSERT_OK(store_->settle(a->id, Usage{.requests = 1, .output_tokens = 7}, kT0));
  Result<KeyRecord> key = store_->settle(
      b->id, Usage{.requests = 1, .input_tokens = 5, .spend = Money::from_nanos(3)}, kT0);
  ASSERT_OK(key);
  EXPECT_EQ(
      key->used,
      (Usage{.requests = 2, .input_tokens = 5, .output_tokens = 7, .spend = Money::from_nanos(3)}));
  EXPECT_EQ(key->reserved, Budget{});

  Result<Reservation> c = store_->reserve("key_s", Budget{1, 300, Money::from_nanos(3000)}, kT0);
  Result<Reservation> d = store_->reserve("key_s", Budget{2, 400, Money::from_nanos(4000)}, kT0);
  ASSERT_OK(c);
  ASSERT_OK(d);
  key = store_->settle(c->id, Usage{.requests = 1}, kT0);
  ASSERT_OK(key);
  EXPECT_EQ(key->reserved, (Budget{2, 400, Money::from_nanos(4000)}));
}

TEST_P(StoreConformanceTest, SettleTwiceIsNotFoundAndChangesNothing) {
  ASSERT_OK(store_->insert_key(new_key("key_s", Limits{.max_requests = 10})));
  Result<Reservation> reservation = store_->reserve("key_s", Budget{1, 10, {}}, kT0);
  ASSERT_OK(reservation);
  Result<KeyRecord> first = store_->settle(reservation->id, Usage{.requests = 1}, kT0);
  ASSERT_OK(first);
  EXPECT_TRUE(fails_with(store_->settle(reservation->id, Usage{.requests = 1}, kT0 + 1s),
                         ErrorCode::kNotFound));
  Result<KeyRecord> found = store_->find_key("key_s");
  ASSERT_OK(found);
  expect_same_key(*found, *first);
}

TEST_P(StoreConformanceTest, SettleOfUnknownReservationIsNotFound) {
  EXPECT_TRUE(fails_with(store_->settle("rsv_missing", Usage{}, kT0), ErrorCode::kNotFound));
  EXPECT_TRUE(fails_with(store_->settle("", Usage{}, kT0), ErrorCode::kNotFound));
}

TEST_P(StoreConformanceTest, SettleRejectsNegativeUsageAndKeepsTheReservation) {
  ASSERT_OK(store_->insert_key(new_key("key_s")));
  Result<Reservation> reservation = store_->reserve("key_s", Budget{1, 10, {}}, kT0);
  ASSERT_OK(reservation);
  EXPECT_TRUE(fails_with(store_->settle(reservation->id, Usage{.input_tokens = -1}, kT0),
                         ErrorCode::kInvalidRequest));
  EXPECT_TRUE(
      fails_with(store_->settle(reservation->id, Usage{.spend = Money::from_nanos(-1)}, kT0),
                 ErrorCode::kInvalidRequest));
  Result<KeyRecord> settled = store_->settle(reservation->id, Usage{.requests = 1}, kT0);
  ASSERT_OK(settled);
  EXPECT_EQ(settled->used, Usage{.requests = 1});
}

TEST_P(StoreConformanceTest, SettleRecordsOvershootBeyondTheReservationAndLimit) {
  ASSERT_OK(store_->insert_key(new_key("key_o", Limits{.max_tokens = 100})));
  Result<Reservation> reservation = store_->reserve("key_o", Budget{1, 10, {}}, kT0);
  ASSERT_OK(reservation);
  Result<KeyRecord> settled =
      store_->settle(reservation->id, Usage{.requests = 1, .input_tokens = 150}, kT0);
  ASSERT_OK(settled);
  EXPECT_EQ(settled->used.tokens(), 150);
  EXPECT_EQ(settled->reserved, Budget{});
  EXPECT_EQ(settled->status, KeyStatus::kExhausted);
}

TEST_P(StoreConformanceTest, SettleExhaustsAnActiveKeyExactlyWhenALimitIsReached) {
  for (Dim dim : kAllDims) {
    SCOPED_TRACE(dim_name(dim));
    std::string id = std::string("key_") + dim_name(dim);
    ASSERT_OK(store_->insert_key(new_key(id, limit_on(dim, 10))));
    Result<Reservation> first = store_->reserve(id, budget_on(dim, 10), kT0);
    ASSERT_OK(first);
    Result<KeyRecord> below = store_->settle(first->id, usage_on(dim, 9), kT0);
    ASSERT_OK(below);
    EXPECT_EQ(below->status, KeyStatus::kActive) << "9 of 10 used";
    Result<Reservation> second = store_->reserve(id, budget_on(dim, 1), kT0);
    ASSERT_OK(second);
    Result<KeyRecord> reached = store_->settle(second->id, usage_on(dim, 1), kT0 + 1s);
    ASSERT_OK(reached);
    EXPECT_EQ(reached->status, KeyStatus::kExhausted) << "10 of 10 used";
    EXPECT_EQ(reached->updated_at, kT0 + 1s);
    Result<KeyRecord> found = store_->find_key(id);
    ASSERT_OK(found);
    EXPECT_EQ(found->status, KeyStatus::kExhausted);
  }
}

TEST_P(StoreConformanceTest, SettleChargesButDoesNotExhaustKeysThatAreNotActive) {
  for (KeyStatus status : {KeyStatus::kSuspended, KeyStatus::kRevoked}) {
    std::string id = status == KeyStatus::kSuspended ? "key_suspended" : "key_revoked";
    ASSERT_OK(store_->insert_key(new_key(id, Limits{.max_requests = 1})));
    Result<Reservation> reservation = store_->reserve(id, Budget{1, 0, {}}, kT0);
    ASSERT_OK(reservation);
    ASSERT_OK(store_->set_status(id, status, kT0));
    Result<KeyRecord> settled = store_->settle(reservation->id, Usage{.requests = 1}, kT0);
    ASSERT_OK(settled);
    EXPECT_EQ(settled->status, status);
    EXPECT_EQ(settled->used.requests, 1);
    EXPECT_EQ(settled->reserved, Budget{});
  }
}

// --- settle_orphaned_reservations and durability ---------------------------------------------

TEST_P(StoreConformanceTest, ResizeChargesConsumedAndHoldsTheNewAmount) {
  ASSERT_OK(store_->insert_key(new_key("key_r", Limits{10, 1000, Money::from_nanos(1000)})));
  Result<Reservation> lease = store_->reserve("key_r", Budget{4, 400, Money::from_nanos(400)}, kT0);
  ASSERT_OK(lease);
  const Usage consumed{
      .requests = 2, .input_tokens = 100, .output_tokens = 50, .spend = Money::from_nanos(120)};
  Result<KeyRecord> grown =
      store_->resize(lease->id, consumed, Budget{6, 700, Money::from_nanos(800)}, kT0 + 1s);
  ASSERT_OK(grown);
  EXPECT_EQ(grown->used, consumed);
  EXPECT_EQ(grown->reserved, (Budget{6, 700, Money::from_nanos(800)}));
  // Exactly at every limit: 2 + 6 = 10 requests, 150 + 700 = 850 tokens, 120 + 800 = 920 nanos.
  Result<KeyRecord> too_big =
      store_->resize(lease->id, Usage{}, Budget{9, 700, Money::from_nanos(800)}, kT0 + 2s);
  ASSERT_FALSE(too_big);
  EXPECT_EQ(too_big.error().code, ErrorCode::kLimitExhausted);
  EXPECT_NE(too_big.error().message.find("requests"), std::string::npos);
  Result<KeyRecord> unchanged = store_->find_key("key_r");
  ASSERT_OK(unchanged);
  expect_same_key(*unchanged, *grown);
  // Settling the resized reservation releases what it holds now.
  Result<KeyRecord> settled = store_->settle(lease->id, Usage{}, kT0 + 3s);
  ASSERT_OK(settled);
  EXPECT_EQ(settled->reserved, Budget{});
  EXPECT_EQ(settled->used, consumed);
}

TEST_P(StoreConformanceTest, ResizeThatGivesBudgetBackAlwaysSucceeds) {
  ASSERT_OK(store_->insert_key(new_key("key_g", Limits{10, std::nullopt, std::nullopt})));
  Result<Reservation> lease = store_->reserve("key_g", Budget{5, 0, Money()}, kT0);
  ASSERT_OK(lease);
  ASSERT_OK(store_->set_status("key_g", KeyStatus::kRevoked, kT0 + 1s));
  // Growth of a revoked key is refused …
  Result<KeyRecord> grow = store_->resize(lease->id, Usage{}, Budget{6, 0, Money()}, kT0 + 2s);
  ASSERT_FALSE(grow);
  EXPECT_EQ(grow.error().code, ErrorCode::kKeyRevoked);
  // … but charging usage and keeping what is still in flight is not.
  Result<KeyRecord> shrunk =
      store_->resize(lease->id, Usage{.requests = 2}, Budget{3, 0, Money()}, kT0 + 3s);
  ASSERT_OK(shrunk);
  EXPECT_EQ(shrunk->used.requests, 2);
  EXPECT_EQ(shrunk->reserved.requests, 3);
}

TEST_P(StoreConformanceTest, ResizeOfUnknownReservationIsNotFound) {
  Result<KeyRecord> r = store_->resize("rsv_nope", Usage{}, Budget{}, kT0);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ErrorCode::kNotFound);
}

TEST_P(StoreConformanceTest, ResizedReservationIsChargedInFullAfterACrash) {
  ASSERT_OK(store_->insert_key(new_key("key_c", Limits{100, std::nullopt, std::nullopt})));
  Result<Reservation> lease = store_->reserve("key_c", Budget{10, 0, Money()}, kT0);
  ASSERT_OK(lease);
  ASSERT_OK(store_->resize(lease->id, Usage{.requests = 3}, Budget{20, 0, Money()}, kT0));
  reopen();
  Result<int64_t> orphans = store_->settle_orphaned_reservations(kT0 + 1s);
  ASSERT_OK(orphans);
  EXPECT_EQ(*orphans, 1);
  Result<KeyRecord> key = store_->find_key("key_c");
  ASSERT_OK(key);
  EXPECT_EQ(key->used.requests, 23);
  EXPECT_EQ(key->reserved, Budget{});
}

TEST_P(StoreConformanceTest, OrphanedReservationsAreChargedAsUsedAfterARestart) {
  ASSERT_OK(
      store_->insert_key(new_key("key_a", Limits{100, 1000, Money::from_nanos(1'000'000'000)})));
  ASSERT_OK(store_->insert_key(new_key("key_b", Limits{.max_tokens = 500})));
  ASSERT_OK(store_->insert_key(new_key("key_c")));
  Result<Reservation> settled_one =
      store_->reserve("key_a", Budget{1, 300, Money::from_nanos(100'000'000)}, kT0);
  Result<Reservation> orphan_a =
      store_->reserve("key_a", Budget{1, 300, Money::from_nanos(100'000'000)}, kT0);
  Result<Reservation> orphan_b = store_->reserve("key_b", Budget{1, 500, {}}, kT0);
  ASSERT_OK(settled_one);
  ASSERT_OK(orphan_a);
  ASSERT_OK(orphan_b);
  const Usage metered{
      .requests = 1, .input_tokens = 20, .output_tokens = 30, .spend = Money::from_nanos(1234)};
  ASSERT_OK(store_->settle(settled_one->id, metered, kT0));
  ASSERT_OK(store_->set_status("key_c", KeyStatus::kSuspended, kT0));

  reopen();  // as after a crash: the Store was destroyed with two reservations outstanding

  Result<KeyRecord> a = store_->find_key("key_a");
  Result<KeyRecord> b = store_->find_key("key_b");
  Result<KeyRecord> c = store_->find_key("key_c");
  ASSERT_OK(a);
  ASSERT_OK(b);
  ASSERT_OK(c);
  EXPECT_EQ(a->used, metered);
  EXPECT_EQ(a->reserved, (Budget{1, 300, Money::from_nanos(100'000'000)}));
  EXPECT_EQ(b->reserved, (Budget{1, 500, {}}));
  EXPECT_EQ(c->status, KeyStatus::kSuspended);

  Result<int64_t> count = store_->settle_orphaned_reservations(kT0 + 1h);
  ASSERT_OK(count);
  EXPECT_EQ(*count, 2);

  a = store_->find_key("key_a");
  b = store_->find_key("key_b");
  ASSERT_OK(a);
  ASSERT_OK(b);
  Usage expected_a = metered;
  expected_a.requests += 1;
  expected_a.unmetered_tokens += 300;
  expected_a.spend += Money::from_nanos(100'000'000);
  EXPECT_EQ(a->used, expected_a);
  EXPECT_EQ(a->reserved, Budget{});
  EXPECT_EQ(a->status, KeyStatus::kActive);
  EXPECT_EQ(b->used, (Usage{.requests = 1, .unmetered_tokens = 500}));
  EXPECT_EQ(b->reserved, Budget{});
  EXPECT_EQ(b->status, KeyStatus::kExhausted) << "the orphan used up the token limit";
  EXPECT_EQ(b->updated_at, kT0 + 1h);

  // Settled exactly once: a late settle of an orphan, or a second sweep, changes nothing.
  EXPECT_TRUE(fails_with(store_->settle(orphan_a->id, metered, kT0), ErrorCode::kNotFound));
  count = store_->settle_orphaned_reservations(kT0 + 2h);
  ASSERT_OK(count);
  EXPECT_EQ(*count, 0);

  reopen();
  Result<KeyRecord> a2 = store_->find_key("key_a");
  Result<KeyRecord> b2 = store_->find_key("key_b");
  ASSERT_OK(a2);
  ASSERT_OK(b2);
  expect_same_key(*a2, *a);
  expect_same_key(*b2, *b);
}

TEST_P(StoreConformanceTest, CommittedStateSurvivesKillDashNine) {
  ASSERT_OK(store_->insert_key(new_key("key_k", Limits{.max_requests = 10})));
  store_.reset();  // the child process opens its own store

  int pipe_fds[2];
  ASSERT_EQ(::pipe(pipe_fds), 0);
  pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    // The child must not return into GoogleTest: it reports through its exit status and the pipe.
    ::close(pipe_fds[0]);
    std::unique_ptr<Store> store = GetParam().open(dir_);
    if (!store) ::_exit(2);
    Result<Reservation> settled = store->reserve("key_k", Budget{1, 0, {}}, kT0);
    if (!settled || !store->settle(settled->id, Usage{.requests = 1}, kT0)) ::_exit(3);
    Result<Reservation> outstanding = store->reserve("key_k", Budget{2, 0, {}}, kT0);
    if (!outstanding) ::_exit(4);
    if (::write(pipe_fds[1], outstanding->id.data(), outstanding->id.size()) !=
        static_cast<ssize_t>(outstanding->id.size())) {
      ::_exit(5);
    }
    ::raise(SIGKILL);
    ::_exit(6);
  }
  ::close(pipe_fds[1]);
  std::string outstanding_id;
  char buffer[256];
  for (ssize_t n; (n = ::read(pipe_fds[0], buffer, sizeof buffer)) > 0;) {
    outstanding_id.append(buffer, static_cast<size_t>(n));
  }
  ::close(pipe_fds[0]);
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL)
      << "child failed before the kill, exit status "
      << (WIFEXITED(status) ? WEXITSTATUS(status) : -1);

  reopen();
  Result<KeyRecord> key = store_->find_key("key_k");
  ASSERT_OK(key);
  EXPECT_EQ(key->used.requests, 1);
  EXPECT_EQ(key->reserved.requests, 2);
  Result<int64_t> count = store_->settle_orphaned_reservations(kT0);
  ASSERT_OK(count);
  EXPECT_EQ(*count, 1);
  EXPECT_TRUE(fails_with(store_->settle(outstanding_id, Usage{}, kT0), ErrorCode::kNotFound));
  key = store_->find_key("key_k");
  ASSERT_OK(key);
  EXPECT_EQ(key->used.requests, 3);
  EXPECT_EQ(key->reserved, Budget{});
}

TEST_P(StoreConformanceTest, KeysStatusesAndAdminKeysPersistAcrossReopen) {
  KeyRecord key = new_key("key_p", Limits{5, 50, Money::from_nanos(500)});
  ASSERT_OK(store_->insert_key(key));
  ASSERT_OK(store_->set_status("key_p", KeyStatus::kSuspended, kT0 + 1s));
  AdminKeyRecord admin{"adm_1", "ops", {}, kT0, std::nullopt};
  ASSERT_OK(store_->insert_admin_key(admin));
  reopen();
  Result<KeyRecord> found = store_->find_key("key_p");
  ASSERT_OK(found);
  key.status = KeyStatus::kSuspended;
  key.updated_at = kT0 + 1s;
  expect_same_key(*found, key);
  Result<int64_t> admins = store_->count_admin_keys();
  ASSERT_OK(admins);
  EXPECT_EQ(*admins, 1);
}

// --- concurrency -----------------------------------------------------------------------------

// The acceptance test of the budget invariant: 8 threads x 10,000 reservations against one key
// with a limit of 50,000 grant exactly 50,000.
TEST_P(StoreConformanceTest, ConcurrentReservesGrantExactlyTheLimit) {
  constexpr int kThreads = 8;
  constexpr int kPerThread = 10'000;
  constexpr int64_t kLimit = 50'000;
  ASSERT_OK(store_->insert_key(new_key("key_hot", Limits{.max_requests = kLimit})));

  std::atomic<int64_t> granted{0};
  std::atomic<int64_t> refused{0};
  std::atomic<int64_t> unexpected{0};
  std::latch start(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      start.arrive_and_wait();
      for (int i = 0; i < kPerThread; ++i) {
        Result<Reservation> reservation = store_->reserve("key_hot", Budget{1, 0, {}}, kT0);
        if (reservation) {
          granted.fetch_add(1);
        } else if (reservation.error().code == ErrorCode::kLimitExhausted) {
          refused.fetch_add(1);
        } else {
          unexpected.fetch_add(1);
        }
      }
    });
  }
  for (std::thread& thread : threads) thread.join();

  EXPECT_EQ(granted.load(), kLimit);
  EXPECT_EQ(refused.load(), kThreads * kPerThread - kLimit);
  EXPECT_EQ(unexpected.load(), 0);
  Result<KeyRecord> key = store_->find_key("key_hot");
  ASSERT_OK(key);
  EXPECT_EQ(key->reserved.requests, kLimit);
  EXPECT_EQ(key->used, Usage{});
  EXPECT_EQ(key->status, KeyStatus::kActive);
}

// Reserve and settle race while a reader checks used + reserved <= limit on every dimension.
TEST_P(StoreConformanceTest, ConcurrentReserveAndSettleKeepTheInvariant) {
  constexpr int kThreads = 4;
  constexpr int kPerThread = 2'000;
  // Each request reserves 10 tokens and 10 nanos and settles 7 of each: about 5,000 requests fit,
  // after which reserves start being refused near the limit.
  constexpr int64_t kTokenLimit = 7 * 5'000 + 3;
  const Limits limits{kThreads * kPerThread, kTokenLimit, Money::from_nanos(kTokenLimit)};
  ASSERT_OK(store_->insert_key(new_key("key_mix", limits)));

  std::atomic<bool> writers_done{false};
  std::atomic<int64_t> settled{0};
  std::atomic<int64_t> refused{0};
  std::atomic<int64_t> unexpected{0};
  std::atomic<int64_t> checks{0};
  std::atomic<int64_t> violations{0};
  std::latch start(kThreads + 1);

  std::thread reader([&] {
    start.arrive_and_wait();
    // At least a few checks even if the writers finish first.
    while (!writers_done.load() || checks.load() < 10) {
      Result<KeyRecord> key = store_->find_key("key_mix");
      if (!key) {
        unexpected.fetch_add(1);
        if (writers_done.load()) break;
        continue;
      }
      checks.fetch_add(1);
      if (key->used.requests + key->reserved.requests > limits.max_requests ||
          key->used.tokens() + key->reserved.tokens > kTokenLimit ||
          key->used.spend.nanos() + key->reserved.spend.nanos() > kTokenLimit ||
          key->reserved.requests < 0 || key->reserved.tokens < 0) {
        violations.fetch_add(1);
      }
    }
  });
  std::vector<std::thread> writers;
  for (int t = 0; t < kThreads; ++t) {
    writers.emplace_back([&] {
      start.arrive_and_wait();
      for (int i = 0; i < kPerThread; ++i) {
        Result<Reservation> reservation =
            store_->reserve("key_mix", Budget{1, 10, Money::from_nanos(10)}, kT0);
        if (!reservation) {
          (reservation.error().code == ErrorCode::kLimitExhausted ? refused : unexpected)
              .fetch_add(1);
          continue;
        }
        Result<KeyRecord> key = store_->settle(reservation->id,
                                               Usage{.requests = 1,
                                                     .input_tokens = 3,
                                                     .output_tokens = 4,
                                                     .spend = Money::from_nanos(7)},
                                               kT0);
        (key ? settled : unexpected).fetch_add(1);
      }
    });
  }
  for (std::thread& writer : writers) writer.join();
  writers_done.store(true);
  reader.join();

  EXPECT_EQ(unexpected.load(), 0);
  EXPECT_EQ(violations.load(), 0) << "of " << checks.load() << " checks";
  EXPECT_GT(checks.load(), 0);
  EXPECT_EQ(settled.load() + refused.load(), kThreads * kPerThread);
  EXPECT_GT(refused.load(), 0) << "the limit was never reached";
  Result<KeyRecord> key = store_->find_key("key_mix");
  ASSERT_OK(key);
  EXPECT_EQ(key->reserved, Budget{});
  EXPECT_EQ(key->used.requests, settled.load());
  EXPECT_EQ(key->used.tokens(), 7 * settled.load());
  EXPECT_EQ(key->used.spend.nanos(), 7 * settled.load());
  // Refusals were justified: a reserve is refused only when used + reserved + 10 > limit, and
  // at most kThreads - 1 other reservations of 10 are held at that moment.
  EXPECT_GT(key->used.tokens(), kTokenLimit - 10 * kThreads);
  EXPECT_LE(key->used.tokens(), kTokenLimit);
  EXPECT_EQ(key->status, KeyStatus::kActive);  // 35,000 < 35,003: the limit is never reached
}

// --- admin keys ------------------------------------------------------------------------------

TEST_P(StoreConformanceTest, AdminKeysRoundTripAndCountOnlyUnrevoked) {
  Result<int64_t> count = store_->count_admin_keys();
  ASSERT_OK(count);
  EXPECT_EQ(*count, 0);

  AdminKeyRecord first{"adm_first", "ops", {}, kT0, std::nullopt};
  for (size_t i = 0; i < first.secret_hash.size(); ++i) {
    first.secret_hash[i] = static_cast<uint8_t>(i * 13);
  }
  AdminKeyRecord second{"adm_second", "", {}, kT0 + 1s, std::nullopt};
  AdminKeyRecord revoked{"adm_revoked", "old", {}, kT0 - 1h, kT0 - 1s};
  for (const AdminKeyRecord* key : {&first, &second, &revoked}) {
    ASSERT_OK(store_->insert_admin_key(*key));
  }
  for (const AdminKeyRecord* key : {&first, &second, &revoked}) {
    Result<AdminKeyRecord> found = store_->find_admin_key(key->id);
    ASSERT_OK(found);
    EXPECT_EQ(found->id, key->id);
    EXPECT_EQ(found->name, key->name);
    EXPECT_EQ(found->secret_hash, key->secret_hash);
    EXPECT_EQ(found->created_at, key->created_at);
    EXPECT_EQ(found->revoked_at, key->revoked_at);
  }
  count = store_->count_admin_keys();
  ASSERT_OK(count);
  EXPECT_EQ(*count, 2);

  AdminKeyRecord duplicate{"adm_first", "impostor", {}, kT0, std::nullopt};
  EXPECT_TRUE(fails_with(store_->insert_admin_key(duplicate), ErrorCode::kConflict));
  Result<AdminKeyRecord> unchanged = store_->find_admin_key("adm_first");
  ASSERT_OK(unchanged);
  EXPECT_EQ(unchanged->name, "ops");
  EXPECT_TRUE(fails_with(store_->find_admin_key("adm_missing"), ErrorCode::kNotFound));
  // Admin keys and scoped keys are separate namespaces.
  EXPECT_TRUE(fails_with(store_->find_key("adm_first"), ErrorCode::kNotFound));
}

// --- Sub-keys --------------------------------------------------------------------------------

constexpr int64_t kDollar = 1'000'000'000;  // nano-dollars

KeyRecord sub_key(std::string id, std::string parent, Limits limits) {
  KeyRecord key = new_key(std::move(id), limits);
  key.parent_id = std::move(parent);
  return key;
}

Limits spend_limit(int64_t nanos, std::optional<int64_t> requests = std::nullopt) {
  return Limits{requests, std::nullopt, Money::from_nanos(nanos)};
}

TEST_P(StoreConformanceTest, ListingByParentGivesItsDirectSubKeysOnly) {
  ASSERT_OK(store_->insert_key(new_key("key_parent", spend_limit(kDollar, 100))));
  ASSERT_OK(store_->insert_key(new_key("key_other", spend_limit(kDollar, 100))));
  ASSERT_OK(store_->insert_key(sub_key("key_a", "key_parent", spend_limit(kDollar / 10, 10))));
  ASSERT_OK(store_->insert_key(sub_key("key_b", "key_parent", spend_limit(kDollar / 10, 10))));
  ASSERT_OK(store_->insert_key(sub_key("key_a_1", "key_a", spend_limit(kDollar / 100, 1))));
  ASSERT_OK(store_->insert_key(sub_key("key_o", "key_other", spend_limit(kDollar / 10, 10))));
  auto ids = [&](std::string parent) {
    KeyFilter filter;
    filter.parent_id = std::move(parent);
    Result<KeyPage> page = store_->list_keys(filter);
    EXPECT_OK(page);
    std::vector<std::string> out;
    if (page) {
      for (const KeyRecord& key : page->keys) out.push_back(key.id);
    }
    return out;
  };
  EXPECT_EQ(ids("key_parent"), (std::vector<std::string>{"key_b", "key_a"}));  // newest first
  EXPECT_EQ(ids("key_a"), std::vector<std::string>{"key_a_1"});
  EXPECT_TRUE(ids("key_b").empty());
}

TEST_P(StoreConformanceTest, SubKeysAreCarvedFromTheParentsRemainingBudget) {
  ASSERT_OK(store_->insert_key(new_key("key_parent", spend_limit(kDollar, 100))));
  ASSERT_OK(store_->insert_key(sub_key("key_a", "key_parent", spend_limit(kDollar * 4 / 10, 10))));
  ASSERT_OK(store_->insert_key(sub_key("key_b", "key_parent", spend_limit(kDollar * 4 / 10, 10))));
  Result<KeyRecord> parent = store_->find_key("key_parent");
  ASSERT_OK(parent);
  EXPECT_EQ(parent->reserved, (Budget{20, 0, Money::from_nanos(kDollar * 8 / 10)}));
  Result<KeyRecord> a = store_->find_key("key_a");
  ASSERT_OK(a);
  EXPECT_EQ(a->carved, (Budget{10, 0, Money::from_nanos(kDollar * 4 / 10)}));

  // $0.20 is left: a third child of $0.40 does not fit, and nothing changes.
  Result<void> third =
      store_->insert_key(sub_key("key_c", "key_parent", spend_limit(kDollar * 4 / 10, 10)));
  ASSERT_TRUE(fails_with(third, ErrorCode::kLimitExhausted));
  EXPECT_EQ(third.error().field, "max_spend");
  EXPECT_TRUE(fails_with(store_->find_key("key_c"), ErrorCode::kNotFound));
  Result<KeyRecord> unchanged = store_->find_key("key_parent");
  ASSERT_OK(unchanged);
  EXPECT_EQ(unchanged->reserved, parent->reserved);
  // Exactly what is left still fits; the parent cannot reserve beyond it afterwards.
  ASSERT_OK(store_->insert_key(sub_key("key_c", "key_parent", spend_limit(kDollar * 2 / 10, 10))));
  EXPECT_TRUE(fails_with(store_->reserve("key_parent", Budget{1, 0, Money::from_nanos(1)}, kT0),
                         ErrorCode::kLimitExhausted));
}

TEST_P(StoreConformanceTest, SubKeyMustLimitWhatItsParentLimits) {
  ASSERT_OK(store_->insert_key(new_key("key_parent", Limits{10, std::nullopt, std::nullopt})));
  Result<void> unlimited = store_->insert_key(sub_key("key_child", "key_parent", Limits{}));
  ASSERT_TRUE(fails_with(unlimited, ErrorCode::kInvalidRequest));
  EXPECT_EQ(unlimited.error().field, "max_requests");
  // A dimension the parent does not limit may stay unlimited; it carves nothing.
  ASSERT_OK(store_->insert_key(sub_key("key_child", "key_parent", Limits{3, std::nullopt, {}})));
  Result<KeyRecord> parent = store_->find_key("key_parent");
  ASSERT_OK(parent);
  EXPECT_EQ(parent->reserved, (Budget{3, 0, Money{}}));
}

TEST_P(StoreConformanceTest, SubKeyOfAnInactiveParentIsRefused) {
  ASSERT_OK(store_->insert_key(new_key("key_parent")));
  ASSERT_OK(store_->set_status("key_parent", KeyStatus::kSuspended, kT0));
  EXPECT_TRUE(fails_with(store_->insert_key(sub_key("key_child", "key_parent", Limits{})),
                         ErrorCode::kKeySuspended));
}

TEST_P(StoreConformanceTest, SubKeyUsageCountsOnEveryAncestor) {
  ASSERT_OK(store_->insert_key(new_key("key_root", spend_limit(kDollar, 100))));
  ASSERT_OK(store_->insert_key(sub_key("key_mid", "key_root", spend_limit(kDollar / 2, 50))));
  ASSERT_OK(store_->insert_key(sub_key("key_leaf", "key_mid", spend_limit(kDollar / 10, 5))));

  Result<Reservation> held =
      store_->reserve("key_leaf", Budget{1, 0, Money::from_nanos(1000)}, kT0);
  ASSERT_OK(held);
  Usage actual{
      .requests = 1, .input_tokens = 7, .output_tokens = 3, .spend = Money::from_nanos(600)};
  ASSERT_OK(store_->settle(held->id, actual, kT0 + 1s));

  for (const char* id : {"key_leaf", "key_mid", "key_root"}) {
    Result<KeyRecord> key = store_->find_key(id);
    ASSERT_OK(key);
    EXPECT_EQ(key->used, actual) << id;
  }
  // Each parent's used + reserved is what it was: the child's spending moved from the carve
  // into used.
  Result<KeyRecord> root = store_->find_key("key_root");
  Result<KeyRecord> mid = store_->find_key("key_mid");
  ASSERT_OK(root);
  ASSERT_OK(mid);
  EXPECT_EQ(mid->reserved, (Budget{4, 0, Money::from_nanos(kDollar / 10 - 600)}));
  EXPECT_EQ(root->reserved, (Budget{49, 0, Money::from_nanos(kDollar / 2 - 600)}));
  EXPECT_EQ(mid->carved, root->reserved);
}

TEST_P(StoreConformanceTest, RevokedSubKeyReturnsWhatItDidNotUse) {
  ASSERT_OK(store_->insert_key(new_key("key_parent", spend_limit(kDollar))));
  ASSERT_OK(store_->insert_key(sub_key("key_child", "key_parent", spend_limit(kDollar * 4 / 10))));
  Result<Reservation> in_flight =
      store_->reserve("key_child", Budget{1, 0, Money::from_nanos(1000)}, kT0);
  ASSERT_OK(in_flight);

  ASSERT_OK(store_->set_status("key_child", KeyStatus::kRevoked, kT0 + 1s));
  // Only the request in flight is still held for the child.
  Result<KeyRecord> parent = store_->find_key("key_parent");
  ASSERT_OK(parent);
  EXPECT_EQ(parent->reserved.spend, Money::from_nanos(1000));
  ASSERT_OK(store_->settle(in_flight->id, Usage{.requests = 1, .spend = Money::from_nanos(400)},
                           kT0 + 2s));
  parent = store_->find_key("key_parent");
  ASSERT_OK(parent);
  EXPECT_EQ(parent->reserved, Budget{});
  EXPECT_EQ(parent->used.spend, Money::from_nanos(400));
  EXPECT_EQ(parent->used.requests, 1);
}

TEST_P(StoreConformanceTest, ExhaustedSubKeyReturnsItsOtherDimensions) {
  ASSERT_OK(store_->insert_key(new_key("key_parent", spend_limit(kDollar, 100))));
  ASSERT_OK(store_->insert_key(sub_key("key_child", "key_parent", spend_limit(kDollar / 2, 1))));
  Result<Reservation> only = store_->reserve("key_child", Budget{1, 0, Money::from_nanos(10)}, kT0);
  ASSERT_OK(only);
  Result<KeyRecord> child =
      store_->settle(only->id, Usage{.requests = 1, .spend = Money::from_nanos(10)}, kT0);
  ASSERT_OK(child);
  EXPECT_EQ(child->status, KeyStatus::kExhausted);
  Result<KeyRecord> parent = store_->find_key("key_parent");
  ASSERT_OK(parent);
  EXPECT_EQ(parent->reserved, Budget{});
  EXPECT_EQ(parent->used.spend, Money::from_nanos(10));
}

TEST_P(StoreConformanceTest, StatusChangesFollowDownTheTree) {
  ASSERT_OK(store_->insert_key(new_key("key_root", spend_limit(kDollar))));
  ASSERT_OK(store_->insert_key(sub_key("key_mid", "key_root", spend_limit(kDollar / 2))));
  ASSERT_OK(store_->insert_key(sub_key("key_leaf", "key_mid", spend_limit(kDollar / 4))));
  ASSERT_OK(store_->insert_key(sub_key("key_other", "key_root", spend_limit(kDollar / 4))));
  Result<std::vector<std::string>> descendants = store_->descendant_ids("key_root");
  ASSERT_OK(descendants);
  EXPECT_EQ(std::set<std::string>(descendants->begin(), descendants->end()),
            (std::set<std::string>{"key_mid", "key_leaf", "key_other"}));

  auto status_of = [&](const char* id) {
    Result<KeyRecord> key = store_->find_key(id);
    return key ? key->status : KeyStatus::kActive;
  };
  ASSERT_OK(store_->set_status("key_mid", KeyStatus::kSuspended, kT0 + 1s));
  EXPECT_EQ(status_of("key_leaf"), KeyStatus::kSuspended);
  EXPECT_EQ(status_of("key_other"), KeyStatus::kActive);
  // A child cannot be resumed under a suspended parent; resuming the parent resumes it.
  EXPECT_TRUE(fails_with(store_->set_status("key_leaf", KeyStatus::kActive, kT0 + 2s),
                         ErrorCode::kConflict));
  ASSERT_OK(store_->set_status("key_mid", KeyStatus::kActive, kT0 + 3s));
  EXPECT_EQ(status_of("key_leaf"), KeyStatus::kActive);

  Result<KeyRecord> root = store_->set_status("key_root", KeyStatus::kRevoked, kT0 + 4s);
  ASSERT_OK(root);
  for (const char* id : {"key_root", "key_mid", "key_leaf", "key_other"}) {
    EXPECT_EQ(status_of(id), KeyStatus::kRevoked) << id;
  }
  EXPECT_EQ(root->reserved, Budget{});  // everything came back
}

TEST_P(StoreConformanceTest, ExpireKeysReturnsExpiredSubKeysBudget) {
  ASSERT_OK(store_->insert_key(new_key("key_parent", spend_limit(kDollar))));
  KeyRecord child = sub_key("key_child", "key_parent", spend_limit(kDollar / 2));
  child.expires_at = kT0 + 1h;
  ASSERT_OK(store_->insert_key(child));

  Result<int64_t> none = store_->expire_keys(kT0 + 59min);
  ASSERT_OK(none);
  EXPECT_EQ(*none, 0);
  Result<int64_t> one = store_->expire_keys(kT0 + 1h);
  ASSERT_OK(one);
  EXPECT_EQ(*one, 1);
  Result<KeyRecord> expired = store_->find_key("key_child");
  ASSERT_OK(expired);
  EXPECT_EQ(expired->status, KeyStatus::kExpired);
  Result<KeyRecord> parent = store_->find_key("key_parent");
  ASSERT_OK(parent);
  EXPECT_EQ(parent->reserved, Budget{});
  Result<int64_t> again = store_->expire_keys(kT0 + 2h);
  ASSERT_OK(again);
  EXPECT_EQ(*again, 0);
}

TEST_P(StoreConformanceTest, CrashChargesSubKeyLeasesToTheParentToo) {
  ASSERT_OK(store_->insert_key(new_key("key_parent", spend_limit(kDollar))));
  ASSERT_OK(store_->insert_key(sub_key("key_child", "key_parent", spend_limit(kDollar / 2))));
  ASSERT_OK(store_->reserve("key_child", Budget{2, 0, Money::from_nanos(5000)}, kT0));
  reopen();
  Result<int64_t> settled = store_->settle_orphaned_reservations(kT0 + 1s);
  ASSERT_OK(settled);
  EXPECT_EQ(*settled, 1);
  Result<KeyRecord> parent = store_->find_key("key_parent");
  ASSERT_OK(parent);
  EXPECT_EQ(parent->used.spend, Money::from_nanos(5000));
  EXPECT_EQ(parent->used.requests, 2);
  EXPECT_EQ(parent->used.spend + parent->reserved.spend, Money::from_nanos(kDollar / 2));
}

// --- Token rotation ----------------------------------------------------------------------------

TEST_P(StoreConformanceTest, RotateTokenKeepsThePreviousOneForItsGrace) {
  KeyRecord key = new_key("key_rot", Limits{10, std::nullopt, std::nullopt});
  key.secret_hash.fill(1);
  key.seal_version = 1;
  key.rotate_every = 7 * 24h;
  ASSERT_OK(store_->insert_key(key));
  Result<Reservation> held = store_->reserve("key_rot", Budget{1, 0, Money{}}, kT0);
  ASSERT_OK(held);
  ASSERT_OK(store_->settle(held->id, Usage{.requests = 1}, kT0));

  SecretHash second;
  second.fill(2);
  Result<KeyRecord> rotated = store_->rotate_token("key_rot", second, 2, kT0 + 10min, kT0 + 1s);
  ASSERT_OK(rotated);
  EXPECT_EQ(rotated->secret_hash, second);
  EXPECT_EQ(rotated->seal_version, 2u);
  EXPECT_EQ(rotated->rotated_at, kT0 + 1s);
  EXPECT_EQ(rotated->rotation_due_at(), kT0 + 1s + 7 * 24h);
  ASSERT_TRUE(rotated->previous_token);
  EXPECT_EQ(rotated->previous_token->secret_hash, key.secret_hash);
  EXPECT_EQ(rotated->previous_token->seal_version, 1u);
  EXPECT_EQ(rotated->previous_token->valid_until, kT0 + 10min);
  EXPECT_EQ(rotated->used.requests, 1);  // counters are the key's, not the token's

  reopen();
  Result<KeyRecord> found = store_->find_key("key_rot");
  ASSERT_OK(found);
  EXPECT_EQ(found->secret_hash, second);
  EXPECT_EQ(found->previous_token, rotated->previous_token);
  EXPECT_EQ(found->rotate_every, key.rotate_every);
  EXPECT_EQ(found->used.requests, 1);

  // No grace: nothing is kept, and the earlier previous token is gone too.
  SecretHash third;
  third.fill(3);
  Result<KeyRecord> again = store_->rotate_token("key_rot", third, 2, kT0 + 2s, kT0 + 2s);
  ASSERT_OK(again);
  EXPECT_FALSE(again->previous_token);

  ASSERT_OK(store_->set_status("key_rot", KeyStatus::kRevoked, kT0 + 3s));
  EXPECT_TRUE(
      fails_with(store_->rotate_token("key_rot", second, 2, kT0, kT0 + 4s), ErrorCode::kConflict));
  EXPECT_TRUE(
      fails_with(store_->rotate_token("key_missing", second, 2, kT0, kT0), ErrorCode::kNotFound));
}

TEST_P(StoreConformanceTest, KeysSealedUnderAVersion) {
  KeyRecord v1 = new_key("key_v1");
  v1.seal_version = 1;
  KeyRecord v2 = new_key("key_v2");
  v2.seal_version = 2;
  KeyRecord vault = new_key("key_vault");
  vault.credential = "openai-prod";
  KeyRecord gone = new_key("key_gone");
  gone.seal_version = 1;
  KeyRecord old = new_key("key_old");
  old.seal_version = 1;
  old.expires_at = kT0 + 1s;
  for (const KeyRecord* key : {&v1, &v2, &vault, &gone, &old}) ASSERT_OK(store_->insert_key(*key));
  ASSERT_OK(store_->set_status("key_gone", KeyStatus::kRevoked, kT0));

  Result<std::vector<std::string>> under_1 = store_->keys_sealed_under(1, kT0 + 1min);
  ASSERT_OK(under_1);
  EXPECT_EQ(*under_1, std::vector<std::string>{"key_v1"});

  // A rotation moves key_v1 to version 2; its old token still needs version 1 during the grace.
  ASSERT_OK(store_->rotate_token("key_v1", SecretHash{}, 2, kT0 + 10min, kT0 + 1min));
  under_1 = store_->keys_sealed_under(1, kT0 + 2min);
  ASSERT_OK(under_1);
  EXPECT_EQ(*under_1, std::vector<std::string>{"key_v1"});
  under_1 = store_->keys_sealed_under(1, kT0 + 10min);
  ASSERT_OK(under_1);
  EXPECT_TRUE(under_1->empty());
  Result<std::vector<std::string>> under_2 = store_->keys_sealed_under(2, kT0 + 10min);
  ASSERT_OK(under_2);
  EXPECT_EQ(*under_2, (std::vector<std::string>{"key_v1", "key_v2"}));
}

// --- Vault credentials -------------------------------------------------------------------------

CredentialRecord new_credential(std::string name) {
  CredentialRecord credential;
  credential.name = std::move(name);
  credential.provider = "openai";
  credential.master_key_version = 1;
  credential.wrapped_key = {1, 2, 3};
  credential.sealed_secret = {4, 5, 6, 7};
  credential.rotate_every = 30 * 24h;
  credential.created_at = kT0;
  credential.rotated_at = kT0;
  credential.updated_at = kT0;
  return credential;
}

void expect_same_credential(const CredentialRecord& actual, const CredentialRecord& expected) {
  EXPECT_EQ(actual.name, expected.name);
  EXPECT_EQ(actual.provider, expected.provider);
  EXPECT_EQ(actual.master_key_version, expected.master_key_version);
  EXPECT_EQ(actual.wrapped_key, expected.wrapped_key);
  EXPECT_EQ(actual.sealed_secret, expected.sealed_secret);
  EXPECT_EQ(actual.rotate_every, expected.rotate_every);
  EXPECT_EQ(actual.created_at, expected.created_at);
  EXPECT_EQ(actual.rotated_at, expected.rotated_at);
  EXPECT_EQ(actual.updated_at, expected.updated_at);
}

TEST_P(StoreConformanceTest, CredentialsRoundTripAndUpdate) {
  CredentialRecord prod = new_credential("openai-prod");
  CredentialRecord backup = new_credential("anthropic.backup");
  backup.provider = "anthropic";
  backup.rotate_every = std::nullopt;
  ASSERT_OK(store_->insert_credential(prod));
  ASSERT_OK(store_->insert_credential(backup));
  EXPECT_TRUE(fails_with(store_->insert_credential(prod), ErrorCode::kConflict));

  reopen();
  Result<CredentialRecord> found = store_->find_credential("openai-prod");
  ASSERT_OK(found);
  expect_same_credential(*found, prod);
  Result<std::vector<CredentialRecord>> all = store_->list_credentials();
  ASSERT_OK(all);
  ASSERT_EQ(all->size(), 2u);
  EXPECT_EQ((*all)[0].name, "anthropic.backup");  // by name
  expect_same_credential((*all)[1], prod);

  CredentialRecord replaced = prod;
  replaced.master_key_version = 2;
  replaced.wrapped_key = {9};
  replaced.sealed_secret = {8, 8};
  replaced.rotated_at = kT0 + 1h;
  replaced.updated_at = kT0 + 1h;
  replaced.created_at = kT0 + 5h;  // ignored: creation time is kept
  ASSERT_OK(store_->update_credential(replaced));
  found = store_->find_credential("openai-prod");
  ASSERT_OK(found);
  replaced.created_at = kT0;
  expect_same_credential(*found, replaced);

  EXPECT_TRUE(
      fails_with(store_->update_credential(new_credential("missing")), ErrorCode::kNotFound));
  EXPECT_TRUE(fails_with(store_->find_credential("missing"), ErrorCode::kNotFound));
}

TEST_P(StoreConformanceTest, CredentialInUseIsRemovedOnlyByForce) {
  ASSERT_OK(store_->insert_credential(new_credential("openai-prod")));
  KeyRecord user = new_key("key_user");
  user.credential = "openai-prod";
  KeyRecord revoked = new_key("key_revoked");
  revoked.credential = "openai-prod";
  ASSERT_OK(store_->insert_key(user));
  ASSERT_OK(store_->insert_key(revoked));
  ASSERT_OK(store_->set_status("key_revoked", KeyStatus::kRevoked, kT0));

  Result<std::vector<std::string>> users = store_->keys_using_credential("openai-prod");
  ASSERT_OK(users);
  EXPECT_EQ(*users, std::vector<std::string>{"key_user"});

  Result<void> refused = store_->delete_credential("openai-prod", false);
  ASSERT_TRUE(fails_with(refused, ErrorCode::kConflict));
  EXPECT_NE(refused.error().message.find("key_user"), std::string::npos);
  ASSERT_OK(store_->find_credential("openai-prod"));

  ASSERT_OK(store_->delete_credential("openai-prod", true));
  EXPECT_TRUE(fails_with(store_->find_credential("openai-prod"), ErrorCode::kNotFound));
  EXPECT_TRUE(fails_with(store_->delete_credential("openai-prod", true), ErrorCode::kNotFound));
}

// --- Usage events ------------------------------------------------------------------------------

// A forwarded request of key_a on openai's gpt-4o-mini: one request, 100 in / 20 out tokens.
UsageEvent usage_event(Timestamp at, std::string key_id = "key_a", std::string provider = "openai",
                       std::string model = "gpt-4o-mini") {
  UsageEvent event;
  event.at = at;
  event.key_id = std::move(key_id);
  event.provider = std::move(provider);
  event.model = std::move(model);
  event.status = 200;
  event.forwarded = true;
  event.upstream_status = 200;
  event.usage = Usage{
      .requests = 1, .input_tokens = 100, .output_tokens = 20, .spend = Money::from_nanos(1000)};
  return event;
}

// A request till answered itself: nothing forwarded, nothing charged.
UsageEvent refused_event(Timestamp at, std::string key_id = "key_a") {
  UsageEvent event = usage_event(at, std::move(key_id));
  event.status = 429;
  event.error_code = "rate_limited";
  event.forwarded = false;
  event.upstream_status = 0;
  event.usage = Usage{};
  return event;
}

UsageFilter time_range(Timestamp from, Timestamp to) {
  UsageFilter filter;
  filter.from = from;
  filter.to = to;
  return filter;
}

// What usage_summary must report for `events`: requests of forwarded ones, the rest refused.
UsageTotals totals_of(const std::vector<UsageEvent>& events) {
  UsageTotals totals;
  for (const UsageEvent& event : events) add_event(totals, event);
  return totals;
}

// The single series of an ungrouped summary.
UsageSeries only_series(Store& store, const UsageFilter& filter, UsageBucket bucket) {
  Result<std::vector<UsageSeries>> summary = store.usage_summary(filter, bucket, UsageGroup::kNone);
  if (!summary) {
    ADD_FAILURE() << summary.error().message;
    return {};
  }
  EXPECT_EQ(summary->size(), 1u);
  if (summary->empty()) return {};
  EXPECT_EQ(summary->front().group, "");
  return summary->front();
}

std::vector<Timestamp> starts_of(const UsageSeries& series) {
  std::vector<Timestamp> starts;
  for (const UsagePoint& point : series.points) starts.push_back(point.start);
  return starts;
}

std::vector<int64_t> requests_of(const UsageSeries& series) {
  std::vector<int64_t> requests;
  for (const UsagePoint& point : series.points) requests.push_back(point.totals.requests);
  return requests;
}

// Pages through the events `filter` selects and returns them, checking each page's size.
std::vector<UsageEvent> all_event_pages(Store& store, const UsageFilter& filter, int limit,
                                        size_t expected_pages) {
  std::vector<UsageEvent> events;
  std::string cursor;
  size_t pages = 0;
  for (;;) {
    Result<UsageEventPage> page = store.list_usage_events(filter, cursor, limit);
    if (!page) {
      ADD_FAILURE() << page.error().message;
      break;
    }
    ++pages;
    if (page->next_cursor) {
      EXPECT_EQ(page->events.size(), static_cast<size_t>(limit)) << "page " << pages;
    } else {
      EXPECT_LE(page->events.size(), static_cast<size_t>(limit));
    }
    events.insert(events.end(), page->events.begin(), page->events.end());
    if (!page->next_cursor) break;
    cursor = *page->next_cursor;
    if (pages > 100) {
      ADD_FAILURE() << "pagination does not end";
      break;
    }
  }
  EXPECT_EQ(pages, expected_pages);
  return events;
}

std::vector<int64_t> event_ids(const std::vector<UsageEvent>& events) {
  std::vector<int64_t> ids;
  for (const UsageEvent& event : events) ids.push_back(event.id);
  return ids;
}

TEST_P(StoreConformanceTest, LargeAppendsKeepEveryEventAndField) {
  // Sizes around the batch sizes a backend may use internally (many rows per statement).
  std::vector<UsageEvent> events;
  for (int i = 0; i < 101; ++i) {
    UsageEvent e;
    e.at = kT0 + std::chrono::milliseconds(i);
    e.key_id = "key_" + std::to_string(i % 7);
    e.provider = i % 2 ? "openai" : "anthropic";
    e.model = "model-" + std::to_string(i);
    e.status = 200 + i;
    e.error_code = i % 3 ? "" : "upstream_error";
    e.forwarded = i % 5 != 0;
    e.streaming = i % 4 == 0;
    e.upstream_status = 300 + i;
    e.usage = Usage{.requests = 1,
                    .input_tokens = 1000 + i,
                    .cached_input_tokens = i,
                    .output_tokens = 2000 + i,
                    .reasoning_tokens = i / 2,
                    .unmetered_tokens = i / 3,
                    .spend = Money::from_nanos(5000 + i)};
    e.latency = std::chrono::microseconds(10'000 + i);
    e.upstream_latency = std::chrono::microseconds(20'000 + i);
    e.time_to_first_byte = std::chrono::microseconds(30'000 + i);
    e.client_address = "10.0.0." + std::to_string(i);
    events.push_back(std::move(e));
  }
  for (size_t size : {31u, 32u, 33u, 5u}) {
    std::vector<UsageEvent> chunk(events.begin(), events.begin() + size);
    events.erase(events.begin(), events.begin() + size);
    ASSERT_OK(store_->append_usage_events(chunk));
    events.insert(events.end(), chunk.begin(), chunk.end());  // back, in order, for the check
  }
  std::sort(events.begin(), events.begin() + 101, [](const UsageEvent& a, const UsageEvent& b) {
    return a.at > b.at;  // newest first, as listed
  });
  Result<UsageEventPage> page = store_->list_usage_events(time_range(kT0, kT0 + 1h), "", 1000);
  ASSERT_OK(page);
  ASSERT_EQ(page->events.size(), 101u);
  for (size_t i = 0; i < page->events.size(); ++i) {
    SCOPED_TRACE("event " + std::to_string(i));
    expect_same_event(page->events[i], events[i]);
  }
}

TEST_P(StoreConformanceTest, UsageEventsRoundTripEveryFieldButTheBodyHash) {
  UsageEvent event;
  event.at = kT0 + 1234ms;
  event.key_id = "key_full";
  event.provider = "anthropic";
  event.model = "claude \"sonnet\" \xe6\xa8\xa1\xe5\x9e\x8b";
  event.status = 502;
  event.error_code = "upstream_error";
  event.forwarded = true;
  event.streaming = true;
  event.upstream_status = 529;
  event.usage = Usage{.requests = 1,
                      .input_tokens = 1'000'000'000'000,
                      .cached_input_tokens = 7,
                      .output_tokens = 30,
                      .reasoning_tokens = 11,
                      .unmetered_tokens = 5,
                      .spend = Money::from_nanos(5'000'000'001)};
  event.latency = 1'500'000us;
  event.upstream_latency = 250'001us;
  event.time_to_first_byte = 300'002us;
  event.client_address = "2001:db8::1";
  event.body_hash = 0xdeadbeef;
  UsageEvent anonymous = refused_event(kT0 + 2s, "");
  anonymous.error_code = "invalid_api_key";
  anonymous.status = 401;
  anonymous.provider = "";
  anonymous.model = "";
  anonymous.client_address = "";
  anonymous.streaming = true;  // without being forwarded
  ASSERT_OK(store_->append_usage_events(std::vector<UsageEvent>{event, anonymous}));

  for (bool reopened : {false, true}) {
    SCOPED_TRACE(reopened ? "after reopen" : "before reopen");
    if (reopened) reopen();
    Result<UsageEventPage> page = store_->list_usage_events(time_range(kT0, kT0 + 1h), "", 10);
    ASSERT_OK(page);
    ASSERT_EQ(page->events.size(), 2u);
    EXPECT_FALSE(page->next_cursor);
    expect_same_event(page->events[0], anonymous);
    expect_same_event(page->events[1], event);
    EXPECT_GT(page->events[0].id, page->events[1].id);  // ids are assigned in order
    EXPECT_GT(page->events[1].id, 0);
  }
}

TEST_P(StoreConformanceTest, AppendingNoEventsSucceeds) {
  EXPECT_OK(store_->append_usage_events({}));
  Result<UsageEventPage> page = store_->list_usage_events(time_range(kT0, kT0 + 1h), "", 10);
  ASSERT_OK(page);
  EXPECT_TRUE(page->events.empty());
}

TEST_P(StoreConformanceTest, AppendRejectsNegativeUsageAndAppendsNothing) {
  UsageEvent good = usage_event(kT0);
  for (int figure = 0; figure < 7; ++figure) {
    SCOPED_TRACE("figure " + std::to_string(figure));
    UsageEvent bad = usage_event(kT0 + 1s);
    int64_t* figures[] = {
        &bad.usage.requests,      &bad.usage.input_tokens,     &bad.usage.cached_input_tokens,
        &bad.usage.output_tokens, &bad.usage.reasoning_tokens, &bad.usage.unmetered_tokens};
    if (figure < 6) {
      *figures[figure] = -1;
    } else {
      bad.usage.spend = Money::from_nanos(-1);
    }
    Result<void> appended = store_->append_usage_events(std::vector<UsageEvent>{good, bad});
    EXPECT_TRUE(fails_with(appended, ErrorCode::kInvalidRequest));
  }
  Result<UsageEventPage> page = store_->list_usage_events(time_range(kT0, kT0 + 1h), "", 10);
  ASSERT_OK(page);
  EXPECT_TRUE(page->events.empty());
}

TEST_P(StoreConformanceTest, UsageSummaryTotalsAreTheSumsOfTheEvents) {
  std::vector<UsageEvent> events;
  for (int i = 0; i < 6; ++i) {
    UsageEvent event = usage_event(kT0 + std::chrono::minutes(7 * i) + std::chrono::seconds(i),
                                   i % 2 ? "key_a" : "key_b", i % 3 ? "openai" : "anthropic");
    event.usage = Usage{.requests = 1,
                        .input_tokens = 100 * (i + 1),
                        .cached_input_tokens = 10 * i,
                        .output_tokens = 7 * i + 3,
                        .reasoning_tokens = i,
                        .unmetered_tokens = i == 4 ? 500 : 0,
                        .spend = Money::from_nanos(123'456'789LL * (i + 1))};
    events.push_back(event);
  }
  events.push_back(refused_event(kT0 + 3min));
  // Appended in two calls: the summary sums across appends.
  ASSERT_OK(store_->append_usage_events(std::span(events).first(4)));
  ASSERT_OK(store_->append_usage_events(std::span(events).subspan(4)));
  const UsageTotals expected = totals_of(events);
  ASSERT_EQ(expected.requests, 6);
  ASSERT_EQ(expected.refused, 1);

  for (bool reopened : {false, true}) {
    SCOPED_TRACE(reopened ? "after reopen" : "before reopen");
    if (reopened) reopen();
    UsageSeries hourly = only_series(*store_, time_range(kT0, kT0 + 1h), UsageBucket::kHour);
    EXPECT_EQ(hourly.totals, expected);
    ASSERT_EQ(hourly.points.size(), 1u);
    EXPECT_EQ(hourly.points[0].start, kT0);
    EXPECT_EQ(hourly.points[0].totals, expected);

    UsageSeries by_minute = only_series(*store_, time_range(kT0, kT0 + 1h), UsageBucket::kMinute);
    EXPECT_EQ(by_minute.totals, expected);
    // Only buckets with events, oldest first: minutes 0, 3 (the refused one), 7, 14, 21, 28, 35.
    EXPECT_EQ(starts_of(by_minute),
              (std::vector<Timestamp>{kT0, kT0 + 3min, kT0 + 7min, kT0 + 14min, kT0 + 21min,
                                      kT0 + 28min, kT0 + 35min}));
    UsageTotals summed;
    for (const UsagePoint& point : by_minute.points) {
      summed.requests += point.totals.requests;
      summed.refused += point.totals.refused;
      summed.input_tokens += point.totals.input_tokens;
      summed.cached_input_tokens += point.totals.cached_input_tokens;
      summed.output_tokens += point.totals.output_tokens;
      summed.reasoning_tokens += point.totals.reasoning_tokens;
      summed.unmetered_tokens += point.totals.unmetered_tokens;
      summed.spend += point.totals.spend;
    }
    EXPECT_EQ(summed, expected);
    EXPECT_EQ(by_minute.points[3].totals, totals_of({events[2]}));
  }
}

TEST_P(StoreConformanceTest, UsageSummaryOfNoEventsIsOneEmptySeries) {
  ASSERT_OK(store_->append_usage_events(std::vector<UsageEvent>{usage_event(kT0)}));
  UsageSeries series = only_series(*store_, time_range(kT0 + 1h, kT0 + 2h), UsageBucket::kMinute);
  EXPECT_EQ(series.totals, UsageTotals{});
  EXPECT_TRUE(series.points.empty());
  for (UsageGroup group : {UsageGroup::kKey, UsageGroup::kProvider, UsageGroup::kModel}) {
    Result<std::vector<UsageSeries>> grouped =
        store_->usage_summary(time_range(kT0 + 1h, kT0 + 2h), UsageBucket::kHour, group);
    ASSERT_OK(grouped);
    EXPECT_TRUE(grouped->empty());
  }
}

TEST_P(StoreConformanceTest, UsageBucketsStartOnUtcMinuteHourAndDayBoundaries) {
  // kT0 is 2025-12-04T15:00:00Z.
  const Timestamp day_start = kT0 - 15h;  // 2025-12-04T00:00:00Z
  const std::vector<UsageEvent> events = {
      usage_event(kT0 + 59'999ms),         // 15:00:59.999
      usage_event(kT0 + 1min),             // 15:01:00.000
      usage_event(kT0 + 1h - 1ms),         // 15:59:59.999
      usage_event(kT0 + 1h),               // 16:00:00.000
      usage_event(day_start + 24h - 1ms),  // 23:59:59.999
      usage_event(day_start + 24h),        // 2025-12-05T00:00:00.000
  };
  ASSERT_OK(store_->append_usage_events(events));
  const UsageFilter all = time_range(day_start, day_start + 48h);

  UsageSeries minutes = only_series(*store_, all, UsageBucket::kMinute);
  EXPECT_EQ(starts_of(minutes), (std::vector<Timestamp>{kT0, kT0 + 1min, kT0 + 59min, kT0 + 1h,
                                                        day_start + 24h - 1min, day_start + 24h}));
  EXPECT_EQ(requests_of(minutes), (std::vector<int64_t>{1, 1, 1, 1, 1, 1}));

  UsageSeries hours = only_series(*store_, all, UsageBucket::kHour);
  EXPECT_EQ(starts_of(hours),
            (std::vector<Timestamp>{kT0, kT0 + 1h, day_start + 23h, day_start + 24h}));
  EXPECT_EQ(requests_of(hours), (std::vector<int64_t>{3, 1, 1, 1}));

  UsageSeries days = only_series(*store_, all, UsageBucket::kDay);
  EXPECT_EQ(starts_of(days), (std::vector<Timestamp>{day_start, day_start + 24h}));
  EXPECT_EQ(requests_of(days), (std::vector<int64_t>{5, 1}));
}

TEST_P(StoreConformanceTest, UsageFiltersSelectKeyProviderModelAndAHalfOpenRange) {
  // Each event spends a distinct power of two, so a total's spend names the events it covers.
  struct Spec {
    Timestamp at;
    const char* key;
    const char* provider;
    const char* model;
  };
  const Spec specs[] = {
      {kT0 - 1ms, "key_a", "openai", "gpt-4o"},             // 1: before `from`
      {kT0, "key_a", "openai", "gpt-4o"},                   // 2: at `from`: included
      {kT0 + 1min, "key_a", "anthropic", "claude"},         // 4
      {kT0 + 2min, "key_b", "openai", "gpt-4o"},            // 8
      {kT0 + 3min, "key_b", "openai", "gpt-4o-mini"},       // 16
      {kT0 + 10min - 1ms, "key_c", "anthropic", "gpt-4o"},  // 32: the last included instant
      {kT0 + 10min, "key_a", "openai", "gpt-4o"},           // 64: at `to`: excluded
  };
  std::vector<UsageEvent> events;
  for (size_t i = 0; i < std::size(specs); ++i) {
    UsageEvent event = usage_event(specs[i].at, specs[i].key, specs[i].provider, specs[i].model);
    event.usage.spend = Money::from_nanos(int64_t{1} << i);
    events.push_back(event);
  }
  ASSERT_OK(store_->append_usage_events(events));

  struct Case {
    const char* name;
    std::optional<std::string> key;
    std::optional<std::string> provider;
    std::optional<std::string> model;
    int64_t spend;  // the events selected
  };
  const Case cases[] = {
      {"range only", {}, {}, {}, 2 | 4 | 8 | 16 | 32},
      {"key", "key_a", {}, {}, 2 | 4},
      {"provider", {}, "openai", {}, 2 | 8 | 16},
      {"model", {}, {}, "gpt-4o", 2 | 8 | 32},
      {"key and model", "key_b", {}, "gpt-4o", 8},
      {"provider and model", {}, "anthropic", "gpt-4o", 32},
      {"all three", "key_b", "openai", "gpt-4o-mini", 16},
      {"no match", "key_c", "openai", {}, 0},
      {"exact model name", {}, {}, "gpt-4", 0},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    UsageFilter filter = time_range(kT0, kT0 + 10min);
    filter.key_id = c.key;
    filter.provider = c.provider;
    filter.model = c.model;
    UsageSeries series = only_series(*store_, filter, UsageBucket::kDay);
    EXPECT_EQ(series.totals.spend, Money::from_nanos(c.spend));
    EXPECT_EQ(series.totals.requests, std::popcount(static_cast<uint64_t>(c.spend)));
    // The events listed are the events summed.
    Result<UsageEventPage> page = store_->list_usage_events(filter, "", 100);
    ASSERT_OK(page);
    int64_t listed = 0;
    for (const UsageEvent& event : page->events) listed |= event.usage.spend.nanos();
    EXPECT_EQ(listed, c.spend);
    EXPECT_EQ(page->events.size(), static_cast<size_t>(series.totals.requests));
  }
}

TEST_P(StoreConformanceTest, UsageSummaryRejectsAnEmptyOrReversedRange) {
  for (Timestamp to : {kT0, kT0 - 1ms}) {
    Result<std::vector<UsageSeries>> summary =
        store_->usage_summary(time_range(kT0, to), UsageBucket::kHour, UsageGroup::kNone);
    ASSERT_TRUE(fails_with(summary, ErrorCode::kInvalidRequest));
    EXPECT_EQ(summary.error().field, "to");
  }
}

TEST_P(StoreConformanceTest, RefusedEventsAreCountedApartFromRequests) {
  std::vector<UsageEvent> events = {usage_event(kT0), refused_event(kT0 + 1s),
                                    refused_event(kT0 + 2s), usage_event(kT0 + 61s),
                                    refused_event(kT0 + 62s, "")};
  ASSERT_OK(store_->append_usage_events(events));
  UsageSeries series = only_series(*store_, time_range(kT0, kT0 + 1h), UsageBucket::kMinute);
  EXPECT_EQ(series.totals.requests, 2);
  EXPECT_EQ(series.totals.refused, 3);
  EXPECT_EQ(series.totals.input_tokens, 200);
  EXPECT_EQ(series.totals.spend, Money::from_nanos(2000));
  ASSERT_EQ(series.points.size(), 2u);
  EXPECT_EQ(series.points[0].totals.requests, 1);
  EXPECT_EQ(series.points[0].totals.refused, 2);
  EXPECT_EQ(series.points[1].totals.requests, 1);
  EXPECT_EQ(series.points[1].totals.refused, 1);

  // A group of refused events only (the unknown key "") has no requests.
  Result<std::vector<UsageSeries>> by_key =
      store_->usage_summary(time_range(kT0, kT0 + 1h), UsageBucket::kHour, UsageGroup::kKey);
  ASSERT_OK(by_key);
  ASSERT_EQ(by_key->size(), 2u);
  EXPECT_EQ((*by_key)[0].group, "key_a");
  EXPECT_EQ((*by_key)[0].totals.requests, 2);
  EXPECT_EQ((*by_key)[0].totals.refused, 2);
  EXPECT_EQ((*by_key)[1].group, "");
  EXPECT_EQ((*by_key)[1].totals.requests, 0);
  EXPECT_EQ((*by_key)[1].totals.refused, 1);
}

TEST_P(StoreConformanceTest, GroupedUsageIsOrderedBySpendThenRequestsThenName) {
  // spend/requests by key: key_b 500/1; key_c 300/3 before key_a 300/1 (a tie on spend, the most
  // requests first, against name order); key_d and key_e 100/1 each (a tie on both: by name).
  auto spending = [](Timestamp at, const char* key, const char* provider, const char* model,
                     int64_t nanos) {
    UsageEvent event = usage_event(at, key, provider, model);
    event.usage.spend = Money::from_nanos(nanos);
    return event;
  };
  std::vector<UsageEvent> events = {
      spending(kT0, "key_e", "openai", "m1", 100),
      spending(kT0 + 1min, "key_c", "anthropic", "m2", 100),
      spending(kT0 + 2min, "key_a", "openai", "m1", 300),
      spending(kT0 + 3min, "key_d", "gemini", "m3", 100),
      spending(kT0 + 1h, "key_c", "openai", "m2", 100),
      spending(kT0 + 1h + 1min, "key_c", "anthropic", "m1", 100),
      spending(kT0 + 1h + 2min, "key_b", "openai", "m3", 500),
  };
  ASSERT_OK(store_->append_usage_events(events));
  const UsageFilter filter = time_range(kT0, kT0 + 2h);
  auto groups_of = [](const std::vector<UsageSeries>& summary) {
    std::vector<std::string> groups;
    for (const UsageSeries& series : summary) groups.push_back(series.group);
    return groups;
  };

  Result<std::vector<UsageSeries>> by_key =
      store_->usage_summary(filter, UsageBucket::kHour, UsageGroup::kKey);
  ASSERT_OK(by_key);
  EXPECT_EQ(groups_of(*by_key),
            (std::vector<std::string>{"key_b", "key_c", "key_a", "key_d", "key_e"}));
  // Each group has its own points and totals.
  ASSERT_EQ(by_key->size(), 5u);
  const UsageSeries& key_c = (*by_key)[1];
  EXPECT_EQ(key_c.totals, totals_of({events[1], events[4], events[5]}));
  EXPECT_EQ(starts_of(key_c), (std::vector<Timestamp>{kT0, kT0 + 1h}));
  EXPECT_EQ(requests_of(key_c), (std::vector<int64_t>{1, 2}));
  EXPECT_EQ(starts_of((*by_key)[0]), std::vector<Timestamp>{kT0 + 1h});

  // openai 1000/4, anthropic 200/2, gemini 100/1.
  Result<std::vector<UsageSeries>> by_provider =
      store_->usage_summary(filter, UsageBucket::kDay, UsageGroup::kProvider);
  ASSERT_OK(by_provider);
  EXPECT_EQ(groups_of(*by_provider), (std::vector<std::string>{"openai", "anthropic", "gemini"}));
  ASSERT_EQ(by_provider->size(), 3u);
  EXPECT_EQ((*by_provider)[0].totals.spend, Money::from_nanos(1000));
  EXPECT_EQ((*by_provider)[0].totals.requests, 4);

  // m3 600/2, m1 500/3, m2 200/2.
  Result<std::vector<UsageSeries>> by_model =
      store_->usage_summary(filter, UsageBucket::kDay, UsageGroup::kModel);
  ASSERT_OK(by_model);
  EXPECT_EQ(groups_of(*by_model), (std::vector<std::string>{"m3", "m1", "m2"}));

  // Filters apply before grouping: openai's key_c and key_e tie at 100/1.
  UsageFilter openai = filter;
  openai.provider = "openai";
  Result<std::vector<UsageSeries>> openai_keys =
      store_->usage_summary(openai, UsageBucket::kDay, UsageGroup::kKey);
  ASSERT_OK(openai_keys);
  EXPECT_EQ(groups_of(*openai_keys),
            (std::vector<std::string>{"key_b", "key_a", "key_c", "key_e"}));
}

TEST_P(StoreConformanceTest, UsageEventsPageNewestFirstWithoutDuplicatesOrGaps) {
  // 23 events, three per millisecond (ties on `at`), appended in three calls.
  std::vector<UsageEvent> events;
  for (int i = 0; i < 23; ++i) {
    UsageEvent event =
        usage_event(kT0 + std::chrono::milliseconds(i / 3), i % 2 ? "key_a" : "key_b");
    event.usage.input_tokens = i;  // names the event
    events.push_back(event);
  }
  ASSERT_OK(store_->append_usage_events(std::span(events).first(7)));
  ASSERT_OK(store_->append_usage_events(std::span(events).subspan(7, 7)));
  ASSERT_OK(store_->append_usage_events(std::span(events).subspan(14)));
  auto names = [](const std::vector<UsageEvent>& listed) {
    std::vector<int64_t> out;
    for (const UsageEvent& event : listed) out.push_back(event.usage.input_tokens);
    return out;
  };
  std::vector<int64_t> newest_first;
  std::vector<int64_t> key_a_newest_first;
  for (int i = 22; i >= 0; --i) {
    newest_first.push_back(i);
    if (i % 2) key_a_newest_first.push_back(i);
  }
  const UsageFilter all = time_range(kT0, kT0 + 1h);

  std::vector<UsageEvent> paged = all_event_pages(*store_, all, 5, 5);
  EXPECT_EQ(names(paged), newest_first);
  std::vector<int64_t> ids = event_ids(paged);
  EXPECT_TRUE(std::is_sorted(ids.rbegin(), ids.rend()));
  EXPECT_EQ(std::set<int64_t>(ids.begin(), ids.end()).size(), ids.size());
  EXPECT_EQ(names(all_event_pages(*store_, all, 1, 23)), newest_first);
  EXPECT_EQ(names(all_event_pages(*store_, all, 3, 8)), newest_first);
  // A page that holds them all, or fits exactly, has no cursor; no empty page at the end.
  EXPECT_EQ(names(all_event_pages(*store_, all, 1000, 1)), newest_first);
  EXPECT_EQ(names(all_event_pages(*store_, all, 23, 1)), newest_first);
  UsageFilter key_a = all;
  key_a.key_id = "key_a";
  ASSERT_EQ(key_a_newest_first.size(), 11u);
  EXPECT_EQ(names(all_event_pages(*store_, key_a, 4, 3)), key_a_newest_first);
  EXPECT_EQ(names(all_event_pages(*store_, key_a, 11, 1)), key_a_newest_first);
  // The range bounds the pages too: the first millisecond holds events 0, 1 and 2.
  EXPECT_EQ(names(all_event_pages(*store_, time_range(kT0, kT0 + 1ms), 2, 2)),
            (std::vector<int64_t>{2, 1, 0}));

  // A cursor stays valid while newer events arrive.
  Result<UsageEventPage> first = store_->list_usage_events(all, "", 10);
  ASSERT_OK(first);
  ASSERT_TRUE(first->next_cursor);
  ASSERT_OK(store_->append_usage_events(std::vector<UsageEvent>{usage_event(kT0 + 1s)}));
  Result<UsageEventPage> second = store_->list_usage_events(all, *first->next_cursor, 10);
  ASSERT_OK(second);
  EXPECT_EQ(names(second->events), (std::vector<int64_t>{12, 11, 10, 9, 8, 7, 6, 5, 4, 3}));

  reopen();
  Result<UsageEventPage> after = store_->list_usage_events(all, *second->next_cursor, 10);
  ASSERT_OK(after);
  EXPECT_EQ(names(after->events), (std::vector<int64_t>{2, 1, 0}));
  EXPECT_FALSE(after->next_cursor);
}

TEST_P(StoreConformanceTest, ListUsageEventsRejectsBadCursorsAndLimits) {
  ASSERT_OK(store_->append_usage_events(std::vector<UsageEvent>{usage_event(kT0)}));
  const UsageFilter all = time_range(kT0, kT0 + 1h);
  for (int limit : {0, -1, 1001, INT_MIN, INT_MAX}) {
    Result<UsageEventPage> page = store_->list_usage_events(all, "", limit);
    ASSERT_TRUE(fails_with(page, ErrorCode::kInvalidRequest)) << "limit " << limit;
    EXPECT_EQ(page.error().field, "limit");
  }
  for (int limit : {1, 1000}) EXPECT_OK(store_->list_usage_events(all, "", limit));
  for (std::string cursor :
       {std::string("not a cursor"), std::string("-1"), std::string("1.5"), std::string("\xff\xfe"),
        std::string(1000, '9'), std::string("1; DROP TABLE usage_events")}) {
    Result<UsageEventPage> page = store_->list_usage_events(all, cursor, 10);
    ASSERT_TRUE(fails_with(page, ErrorCode::kInvalidRequest)) << "cursor " << cursor;
    EXPECT_EQ(page.error().field, "cursor");
  }
}

// Summaries read whole minutes from per-minute sums and the partial minutes at a range's ends
// from the events: for any range, minute-aligned or not, within one minute or across many,
// appended in one batch or several, they count exactly the events inside it.
TEST_P(StoreConformanceTest, UsageSummaryOfAnyRangeCountsExactlyTheEventsInIt) {
  std::vector<UsageEvent> events;
  for (int i = 0; i < 60; ++i) {  // every 7 s for 7 minutes, two keys, a refusal every fifth
    const Timestamp at = kT0 + std::chrono::seconds(7 * i);
    const std::string key = i % 3 == 0 ? "key_b" : "key_a";
    events.push_back(i % 5 == 0 ? refused_event(at, key) : usage_event(at, key));
  }
  ASSERT_OK(store_->append_usage_events(std::span(events).first(25)));
  ASSERT_OK(store_->append_usage_events(std::span(events).subspan(25)));

  using std::chrono::milliseconds;
  const std::pair<milliseconds, milliseconds> ranges[] = {
      {0min, 7min},
      {30s, 90s},
      {1min, 3min},
      {61s, 62s},
      {milliseconds(62999), milliseconds(63001)},
      {59s, 61s},
      {2min + 1s, 6min + 59s},
      {-1h, 1h}};
  for (const auto& [from, to] : ranges) {
    for (const char* key : {"", "key_a", "key_b"}) {
      UsageFilter filter = time_range(kT0 + from, kT0 + to);
      if (*key != '\0') filter.key_id = key;
      UsageTotals expected;
      for (const UsageEvent& event : events) {
        if (event.at < filter.from || event.at >= filter.to) continue;
        if (filter.key_id && event.key_id != *filter.key_id) continue;
        add_event(expected, event);
      }
      for (UsageBucket bucket : {UsageBucket::kMinute, UsageBucket::kHour}) {
        EXPECT_EQ(only_series(*store_, filter, bucket).totals, expected)
            << "from " << from.count() << " ms to " << to.count() << " ms, key '" << key << "'";
      }
    }
  }
}

// Events arrive in batches, some of them late, with times out of order within and across
// appends: listings (newest first by time, then id), summaries and retention hold for any order.
TEST_P(StoreConformanceTest, UsageEventsInAnyOrderOfArrivalListSumAndExpireExactly) {
  std::mt19937 random(20251204);  // fixed: a failure reproduces
  std::vector<UsageEvent> events;
  for (int i = 0; i < 3000; ++i) {
    // 50 ms apart with up to 0.3 s of jitter; one in ten up to three minutes late.
    const int64_t ms = random() % 10 == 0 ? i * 50 - static_cast<int64_t>(random() % 180'000)
                                          : i * 50 + static_cast<int64_t>(random() % 300);
    const Timestamp at = kT0 + std::chrono::milliseconds(ms);
    const std::string key = "key_" + std::to_string(random() % 3);
    UsageEvent event = i % 7 ? usage_event(at, key) : refused_event(at, key);
    event.usage.input_tokens = i;  // names the event
    events.push_back(event);
  }
  for (size_t first = 0; first < events.size();) {
    const size_t size = std::min<size_t>(1 + random() % 600, events.size() - first);
    ASSERT_OK(store_->append_usage_events(std::span(events).subspan(first, size)));
    first += size;
  }
  auto names = [](const std::vector<UsageEvent>& listed) {
    std::vector<int64_t> out;
    for (const UsageEvent& event : listed) out.push_back(event.usage.input_tokens);
    return out;
  };
  // Newest first by time, then by id, that is by order of appending.
  auto expected_names = [&](const UsageFilter& filter) {
    std::vector<const UsageEvent*> selected;
    for (const UsageEvent& event : events) {
      if (event.at >= filter.from && event.at < filter.to &&
          (!filter.key_id || event.key_id == *filter.key_id)) {
        selected.push_back(&event);
      }
    }
    std::sort(selected.begin(), selected.end(), [](const UsageEvent* a, const UsageEvent* b) {
      return std::pair(a->at, a->usage.input_tokens) > std::pair(b->at, b->usage.input_tokens);
    });
    std::vector<int64_t> out;
    for (const UsageEvent* event : selected) out.push_back(event->usage.input_tokens);
    return out;
  };
  auto expected_totals = [&](const UsageFilter& filter) {
    std::vector<UsageEvent> selected;
    for (const UsageEvent& event : events) {
      if (event.at >= filter.from && event.at < filter.to &&
          (!filter.key_id || event.key_id == *filter.key_id)) {
        selected.push_back(event);
      }
    }
    return totals_of(selected);
  };
  auto check = [&](const UsageFilter& filter) {
    const std::vector<int64_t> expected = expected_names(filter);
    for (int limit : {97, 1000}) {
      SCOPED_TRACE("limit " + std::to_string(limit));
      const size_t pages = std::max<size_t>(1, (expected.size() + limit - 1) / limit);
      EXPECT_EQ(names(all_event_pages(*store_, filter, limit, pages)), expected);
    }
    EXPECT_EQ(only_series(*store_, filter, UsageBucket::kMinute).totals, expected_totals(filter));
  };

  UsageFilter all = time_range(kT0 - 1h, kT0 + 1h);
  UsageFilter key_b = all;
  key_b.key_id = "key_b";
  UsageFilter window = time_range(kT0 + 40s, kT0 + 95'500ms);
  window.key_id = "key_1";
  for (const UsageFilter& filter : {all, key_b, window, time_range(kT0 + 61'234ms, kT0 + 62s)}) {
    SCOPED_TRACE("from " + std::to_string(to_unix_ms(filter.from) - to_unix_ms(kT0)) + " ms to " +
                 std::to_string(to_unix_ms(filter.to) - to_unix_ms(kT0)) + " ms");
    check(filter);
  }

  // Retention at 73.4 s cuts at the start of its minute, 60 s.
  int64_t older = 0;
  for (const UsageEvent& event : events) older += event.at < kT0 + 60s ? 1 : 0;
  ASSERT_GT(older, 1000);
  Result<int64_t> deleted = store_->delete_usage_events_before(kT0 + 73'400ms);
  ASSERT_OK(deleted);
  EXPECT_EQ(*deleted, older);
  std::erase_if(events, [](const UsageEvent& event) { return event.at < kT0 + 60s; });
  for (const UsageFilter& filter : {all, window}) check(filter);
}

TEST_P(StoreConformanceTest, DeleteUsageEventsBeforeRemovesOnlyOlderEvents) {
  std::vector<UsageEvent> events;
  for (int i = 0; i < 10; ++i) events.push_back(usage_event(kT0 + std::chrono::minutes(i)));
  ASSERT_OK(store_->append_usage_events(events));

  Result<int64_t> deleted = store_->delete_usage_events_before(kT0 + 4min);  // minutes 0..3
  ASSERT_OK(deleted);
  EXPECT_EQ(*deleted, 4);
  const UsageFilter all = time_range(kT0 - 1h, kT0 + 1h);
  Result<UsageEventPage> page = store_->list_usage_events(all, "", 100);
  ASSERT_OK(page);
  ASSERT_EQ(page->events.size(), 6u);
  EXPECT_EQ(page->events.back().at, kT0 + 4min);  // the event at `before` stays
  EXPECT_EQ(only_series(*store_, all, UsageBucket::kDay).totals.requests, 6);

  deleted = store_->delete_usage_events_before(kT0 + 4min);
  ASSERT_OK(deleted);
  EXPECT_EQ(*deleted, 0);
  reopen();
  EXPECT_EQ(only_series(*store_, all, UsageBucket::kDay).totals.requests, 6);
  deleted = store_->delete_usage_events_before(kT0 + 1h);
  ASSERT_OK(deleted);
  EXPECT_EQ(*deleted, 6);
  EXPECT_EQ(only_series(*store_, all, UsageBucket::kDay).totals, UsageTotals{});
}

// --- Alerts ------------------------------------------------------------------------------------

AlertRecord new_alert(std::string key_id, std::string rule, Timestamp created_at) {
  AlertRecord alert;
  alert.key_id = std::move(key_id);
  alert.rule = std::move(rule);
  alert.severity = "warning";
  alert.message = "key " + alert.key_id + " crossed 80% of its spend limit";
  alert.action = "alert";
  alert.created_at = created_at;
  return alert;
}

std::vector<int64_t> alert_ids(const std::vector<AlertRecord>& alerts) {
  std::vector<int64_t> ids;
  for (const AlertRecord& alert : alerts) ids.push_back(alert.id);
  return ids;
}

void expect_same_alert(const AlertRecord& actual, const AlertRecord& expected) {
  EXPECT_EQ(actual.id, expected.id);
  EXPECT_EQ(actual.key_id, expected.key_id);
  EXPECT_EQ(actual.rule, expected.rule);
  EXPECT_EQ(actual.severity, expected.severity);
  EXPECT_EQ(actual.message, expected.message);
  EXPECT_EQ(actual.action, expected.action);
  EXPECT_EQ(actual.created_at, expected.created_at);
  EXPECT_EQ(actual.acknowledged, expected.acknowledged);
  EXPECT_EQ(actual.acknowledged_at, expected.acknowledged_at);
}

TEST_P(StoreConformanceTest, AlertsRoundTripWithIncreasingIds) {
  AlertRecord alert = new_alert("key_a", "budget_threshold", kT0);
  alert.id = 999;  // ignored
  alert.severity = "critical";
  alert.message = "key key_a is \"looping\": \xe2\x80\x94 suspended";
  alert.action = "suspend";
  Result<AlertRecord> first = store_->insert_alert(alert);
  ASSERT_OK(first);
  AlertRecord about_an_address = new_alert("", "revoked_key_in_use", kT0 + 1s);
  Result<AlertRecord> second = store_->insert_alert(about_an_address);
  ASSERT_OK(second);
  EXPECT_GT(first->id, 0);
  EXPECT_GT(second->id, first->id);
  alert.id = first->id;
  about_an_address.id = second->id;
  expect_same_alert(*first, alert);
  expect_same_alert(*second, about_an_address);
  EXPECT_FALSE(first->acknowledged);

  reopen();
  Result<AlertPage> page = store_->list_alerts({});
  ASSERT_OK(page);
  ASSERT_EQ(page->alerts.size(), 2u);
  EXPECT_FALSE(page->next_cursor);
  expect_same_alert(page->alerts[0], about_an_address);  // newest first
  expect_same_alert(page->alerts[1], alert);
  Result<AlertRecord> third = store_->insert_alert(alert);
  ASSERT_OK(third);
  EXPECT_GT(third->id, second->id);
}

TEST_P(StoreConformanceTest, AlertsAreFilteredAndPagedNewestFirst) {
  struct Spec {
    const char* key;
    const char* rule;
    Timestamp created_at;
  };
  const Spec specs[] = {
      {"key_a", "budget_threshold", kT0},
      {"key_b", "budget_threshold", kT0 + 1min},
      {"key_a", "rate_spike", kT0 + 2min},
      {"", "revoked_key_in_use", kT0 + 3min},
      {"key_a", "budget_threshold", kT0 + 4min},
      {"key_b", "loop", kT0 + 5min},
      {"key_a", "loop", kT0 + 6min},
  };
  std::vector<int64_t> ids;  // in insertion order
  for (const Spec& spec : specs) {
    Result<AlertRecord> inserted =
        store_->insert_alert(new_alert(spec.key, spec.rule, spec.created_at));
    ASSERT_OK(inserted);
    ids.push_back(inserted->id);
  }
  ASSERT_OK(store_->acknowledge_alert(ids[0], kT0 + 10min));
  ASSERT_OK(store_->acknowledge_alert(ids[4], kT0 + 10min));
  ASSERT_OK(store_->acknowledge_alert(ids[5], kT0 + 10min));

  // All pages of `filter`, checking page sizes; returns the indexes into `ids`, newest first.
  auto listed = [&](AlertFilter filter, size_t expected_pages) {
    std::vector<int> found;
    size_t pages = 0;
    for (;;) {
      Result<AlertPage> page = store_->list_alerts(filter);
      if (!page) {
        ADD_FAILURE() << page.error().message;
        break;
      }
      ++pages;
      if (page->next_cursor) {
        EXPECT_EQ(page->alerts.size(), static_cast<size_t>(filter.limit));
      }
      for (int64_t id : alert_ids(page->alerts)) {
        found.push_back(static_cast<int>(std::find(ids.begin(), ids.end(), id) - ids.begin()));
      }
      if (!page->next_cursor || pages > 100) break;
      filter.cursor = *page->next_cursor;
    }
    EXPECT_EQ(pages, expected_pages);
    return found;
  };
  using Indexes = std::vector<int>;
  EXPECT_EQ(listed({}, 1), (Indexes{6, 5, 4, 3, 2, 1, 0}));
  EXPECT_EQ(listed({.limit = 3}, 3), (Indexes{6, 5, 4, 3, 2, 1, 0}));
  EXPECT_EQ(listed({.limit = 7}, 1), (Indexes{6, 5, 4, 3, 2, 1, 0}));
  EXPECT_EQ(listed({.key_id = "key_a", .limit = 2}, 2), (Indexes{6, 4, 2, 0}));
  EXPECT_EQ(listed({.key_id = "", .limit = 2}, 1), (Indexes{3}));
  EXPECT_EQ(listed({.rule = "budget_threshold"}, 1), (Indexes{4, 1, 0}));
  EXPECT_EQ(listed({.acknowledged = false, .limit = 2}, 2), (Indexes{6, 3, 2, 1}));
  EXPECT_EQ(listed({.acknowledged = true}, 1), (Indexes{5, 4, 0}));
  EXPECT_EQ(listed({.since = kT0 + 4min}, 1), (Indexes{6, 5, 4}));  // created_at >= since
  EXPECT_EQ(listed({.key_id = "key_a",
                    .rule = "budget_threshold",
                    .acknowledged = true,
                    .since = kT0 + 1min},
                   1),
            (Indexes{4}));
  EXPECT_EQ(listed({.key_id = "key_c"}, 1), (Indexes{}));

  for (int limit : {0, -1, 1001, INT_MIN, INT_MAX}) {
    Result<AlertPage> page = store_->list_alerts({.limit = limit});
    ASSERT_TRUE(fails_with(page, ErrorCode::kInvalidRequest)) << "limit " << limit;
    EXPECT_EQ(page.error().field, "limit");
  }
  for (std::string cursor : {std::string("not a cursor"), std::string("-1"), std::string("1.5"),
                             std::string(1000, '9')}) {
    Result<AlertPage> page = store_->list_alerts({.cursor = cursor});
    ASSERT_TRUE(fails_with(page, ErrorCode::kInvalidRequest)) << "cursor " << cursor;
    EXPECT_EQ(page.error().field, "cursor");
  }
}

TEST_P(StoreConformanceTest, AcknowledgingAnAlertKeepsTheFirstTime) {
  Result<AlertRecord> alert = store_->insert_alert(new_alert("key_a", "loop", kT0));
  ASSERT_OK(alert);
  Result<AlertRecord> acknowledged = store_->acknowledge_alert(alert->id, kT0 + 1min);
  ASSERT_OK(acknowledged);
  EXPECT_TRUE(acknowledged->acknowledged);
  EXPECT_EQ(acknowledged->acknowledged_at, kT0 + 1min);
  EXPECT_EQ(acknowledged->id, alert->id);
  EXPECT_EQ(acknowledged->message, alert->message);

  Result<AlertRecord> again = store_->acknowledge_alert(alert->id, kT0 + 2min);
  ASSERT_OK(again);
  EXPECT_TRUE(again->acknowledged);
  EXPECT_EQ(again->acknowledged_at, kT0 + 1min);

  reopen();
  Result<AlertPage> page = store_->list_alerts({.acknowledged = true});
  ASSERT_OK(page);
  ASSERT_EQ(page->alerts.size(), 1u);
  EXPECT_EQ(page->alerts[0].acknowledged_at, kT0 + 1min);
  EXPECT_TRUE(fails_with(store_->acknowledge_alert(alert->id + 1, kT0), ErrorCode::kNotFound));
  EXPECT_TRUE(fails_with(store_->acknowledge_alert(0, kT0), ErrorCode::kNotFound));
  EXPECT_TRUE(fails_with(store_->acknowledge_alert(-1, kT0), ErrorCode::kNotFound));
}

// --- Rotation reminders ------------------------------------------------------------------------

TEST_P(StoreConformanceTest, KeysDueForRotationAreLiveKeysSoonestFirst) {
  auto rotating = [](std::string id, std::optional<std::chrono::milliseconds> every) {
    KeyRecord key = new_key(std::move(id));
    key.rotate_every = every;
    return key;
  };
  KeyRecord future_expiry = rotating("key_future_expiry", 30min);  // due kT0 + 30min
  future_expiry.expires_at = kT0 + 24h;
  KeyRecord past_expiry = rotating("key_past_expiry", 5min);  // expired at `now` by time
  past_expiry.expires_at = kT0 + 20min;
  for (const KeyRecord& key : {
           rotating("key_late", 2h),  // due kT0 + 2h: not before `before`
           rotating("key_soon", 1h),  // due kT0 + 1h
           rotating("key_never", std::nullopt),
           rotating("key_revoked", 1h),
           rotating("key_expired", 1h),
           rotating("key_suspended", 50min),  // due kT0 + 50min: suspended keys still count
           rotating("key_rotated", 1h),       // due kT0 + 1h20min after its rotation
           future_expiry,
           past_expiry,
       }) {
    ASSERT_OK(store_->insert_key(key));
  }
  ASSERT_OK(store_->set_status("key_revoked", KeyStatus::kRevoked, kT0));
  ASSERT_OK(store_->set_status("key_expired", KeyStatus::kExpired, kT0));
  ASSERT_OK(store_->set_status("key_suspended", KeyStatus::kSuspended, kT0));
  ASSERT_OK(store_->rotate_token("key_rotated", SecretHash{}, 0, kT0, kT0 + 20min));

  const Timestamp now = kT0 + 30min;
  Result<std::vector<RotationDue>> due = store_->keys_due_for_rotation(kT0 + 2h, now);
  ASSERT_OK(due);
  std::vector<std::pair<std::string, Timestamp>> got;
  for (const RotationDue& d : *due) got.emplace_back(d.key_id, d.due);
  EXPECT_EQ(got, (std::vector<std::pair<std::string, Timestamp>>{
                     {"key_future_expiry", kT0 + 30min},
                     {"key_suspended", kT0 + 50min},
                     {"key_soon", kT0 + 1h},
                     {"key_rotated", kT0 + 1h + 20min},
                 }));

  reopen();
  due = store_->keys_due_for_rotation(kT0 + 1h + 1ms, now);
  ASSERT_OK(due);
  got.clear();
  for (const RotationDue& d : *due) got.emplace_back(d.key_id, d.due);
  EXPECT_EQ(got, (std::vector<std::pair<std::string, Timestamp>>{
                     {"key_future_expiry", kT0 + 30min},
                     {"key_suspended", kT0 + 50min},
                     {"key_soon", kT0 + 1h},
                 }));
  // Before the past-expiry key expired, it was due too.
  due = store_->keys_due_for_rotation(kT0 + 10min, kT0 + 1min);
  ASSERT_OK(due);
  ASSERT_EQ(due->size(), 1u);
  EXPECT_EQ((*due)[0].key_id, "key_past_expiry");
  EXPECT_EQ((*due)[0].due, kT0 + 5min);
}

}  // namespace
}  // namespace till::test
