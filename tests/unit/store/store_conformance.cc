#include "unit/store/store_conformance.h"

#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <climits>
#include <filesystem>
#include <latch>
#include <set>
#include <thread>
#include <vector>

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

}  // namespace
}  // namespace till::test
