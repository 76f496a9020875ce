// The SQLite backend: the conformance suite, plus what only a file-backed store has (file modes,
// schema migrations, locking between processes, strict cursors).
#include "store/sqlite/sqlite_store.h"

#include <sqlite3.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "store/sqlite/migrations.h"
#include "store/sqlite/usage_event_codec.h"
#include "unit/store/store_conformance.h"
#include "unit/store/usage_event_testing.h"

namespace till::test {
namespace {

using namespace std::chrono_literals;

std::string db_path(const std::string& dir) { return dir + "/till.db"; }

std::unique_ptr<Store> open_sqlite(const std::string& dir) {
  Result<std::unique_ptr<Store>> store = open_sqlite_store(db_path(dir));
  if (!store) {
    ADD_FAILURE() << "open_sqlite_store: " << store.error().message;
    return nullptr;
  }
  return std::move(*store);
}

INSTANTIATE_TEST_SUITE_P(Sqlite, StoreConformanceTest,
                         ::testing::Values(StoreBackend{"sqlite", open_sqlite}),
                         StoreBackendName());

// A temporary directory for one test.
class SqliteStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = (std::filesystem::temp_directory_path() / "till-sqlite-XXXXXX").string();
    ASSERT_NE(::mkdtemp(pattern.data()), nullptr);
    dir_ = pattern;
    path_ = db_path(dir_);
  }
  void TearDown() override {
    std::error_code ignored;
    std::filesystem::remove_all(dir_, ignored);
  }

  // A raw connection for looking behind the Store's back.
  struct RawDb {
    sqlite3* db = nullptr;
    ~RawDb() { sqlite3_close(db); }
  };
  // The main database, or with `usage` the usage-events database beside it.
  void open_raw(RawDb& raw, bool usage = false) {
    const std::string path = usage ? sqlite::usage_database_path(path_) : path_;
    ASSERT_EQ(sqlite3_open_v2(path.c_str(), &raw.db, SQLITE_OPEN_READWRITE, nullptr), SQLITE_OK);
    sqlite3_busy_timeout(raw.db, 5000);
  }
  static void exec(RawDb& raw, const char* sql) {
    ASSERT_EQ(sqlite3_exec(raw.db, sql, nullptr, nullptr, nullptr), SQLITE_OK)
        << sql << ": " << sqlite3_errmsg(raw.db);
  }
  static std::vector<std::string> column(RawDb& raw, const char* sql) {
    std::vector<std::string> values;
    sqlite3_stmt* stmt = nullptr;
    EXPECT_EQ(sqlite3_prepare_v2(raw.db, sql, -1, &stmt, nullptr), SQLITE_OK)
        << sqlite3_errmsg(raw.db);
    while (stmt != nullptr && sqlite3_step(stmt) == SQLITE_ROW) {
      const unsigned char* text = sqlite3_column_text(stmt, 0);
      values.emplace_back(text != nullptr ? reinterpret_cast<const char*>(text) : "NULL");
    }
    sqlite3_finalize(stmt);
    return values;
  }

  std::string dir_;
  std::string path_;
};

KeyRecord simple_key(std::string id) {
  KeyRecord key;
  key.id = std::move(id);
  key.provider = "openai";
  key.created_at = from_unix_ms(1'764'860'400'000);
  key.updated_at = key.created_at;
  return key;
}

mode_t file_mode(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return 0;
  return st.st_mode & 07777;
}

TEST_F(SqliteStoreTest, DatabaseWalAndShmFilesAreOwnerOnlyWhateverTheUmask) {
  // 0: nothing masked off (the files would be world-writable if created with 0666); 0277: even
  // the owner's write bit masked off (the store could not write its own files).
  for (mode_t umask : {mode_t{0}, mode_t{0277}}) {
    SCOPED_TRACE("umask " + std::to_string(umask));
    std::string path = dir_ + "/umask-" + std::to_string(umask) + ".db";
    mode_t old_umask = ::umask(umask);
    Result<std::unique_ptr<Store>> store = open_sqlite_store(path);
    Result<void> inserted = store ? (*store)->insert_key(simple_key("key_1"))  // writes the WAL
                                  : Result<void>();
    ::umask(old_umask);
    ASSERT_OK(store);
    ASSERT_OK(inserted);
    for (const std::string& file : {path, path + "-wal", path + "-shm"}) {
      ASSERT_TRUE(std::filesystem::exists(file)) << file;
      EXPECT_EQ(file_mode(file), 0600u) << file << " has mode " << std::oct << file_mode(file);
    }
  }
}

TEST_F(SqliteStoreTest, UsesWalJournalAndRecordsAppliedMigrations) {
  {
    Result<std::unique_ptr<Store>> store = open_sqlite_store(path_);
    ASSERT_OK(store);
  }
  {
    Result<std::unique_ptr<Store>> again = open_sqlite_store(path_);  // applies nothing new
    ASSERT_OK(again);
  }
  RawDb raw;
  open_raw(raw);
  EXPECT_EQ(column(raw, "PRAGMA journal_mode"), std::vector<std::string>{"wal"});
  std::vector<std::string> versions;
  for (int v = 1; v <= sqlite::latest_schema_version(); ++v) versions.push_back(std::to_string(v));
  EXPECT_EQ(column(raw, "SELECT version FROM schema_migrations ORDER BY version"), versions);
  EXPECT_EQ(column(raw, "SELECT count(*) FROM schema_migrations WHERE applied_at > 0"),
            std::vector<std::string>{std::to_string(versions.size())});
}

TEST_F(SqliteStoreTest, UpgradesAVersionOneDatabase) {
  {
    Result<std::unique_ptr<sqlite::Connection>> connection =
        sqlite::Connection::open(path_, std::chrono::seconds(5));
    ASSERT_OK(connection);
    ASSERT_OK(sqlite::apply_migrations(**connection, from_unix_ms(1), 1));
  }
  {
    RawDb raw;
    open_raw(raw);
    // A sealed key and a vault key as version 1 stored them.
    exec(raw,
         "INSERT INTO keys (id, seq, name, provider, metadata_json, status, secret_hash, models, "
         "allowed_cidrs, created_at_ms, updated_at_ms, credential) VALUES "
         "('key_sealed', 1, '', 'openai', '{}', 'active', zeroblob(32), '[]', '[]', 1000, 2000, "
         "NULL), ('key_vault', 2, '', 'openai', '{}', 'active', zeroblob(32), '[]', '[]', 1000, "
         "2000, 'main')");
  }
  Result<std::unique_ptr<Store>> store = open_sqlite_store(path_);
  ASSERT_OK(store);
  Result<KeyRecord> sealed = (*store)->find_key("key_sealed");
  Result<KeyRecord> vault = (*store)->find_key("key_vault");
  ASSERT_OK(sealed);
  ASSERT_OK(vault);
  EXPECT_EQ(sealed->seal_version, 1u);  // every token was sealed under version 1 then
  EXPECT_EQ(vault->seal_version, 0u);
  EXPECT_EQ(sealed->rotated_at, from_unix_ms(1000));
  EXPECT_FALSE(sealed->previous_token);
  EXPECT_FALSE(sealed->rotate_every);
  EXPECT_EQ(sealed->carved, Budget{});
}

TEST_F(SqliteStoreTest, RefusesADatabaseFromANewerTill) {
  {
    Result<std::unique_ptr<Store>> store = open_sqlite_store(path_);
    ASSERT_OK(store);
    ASSERT_OK((*store)->insert_key(simple_key("key_1")));
  }
  {
    RawDb raw;
    open_raw(raw);
    std::string sql = "INSERT INTO schema_migrations (version, applied_at) VALUES (" +
                      std::to_string(sqlite::latest_schema_version() + 1) + ", 1)";
    exec(raw, sql.c_str());
  }
  Result<std::unique_ptr<Store>> store = open_sqlite_store(path_);
  ASSERT_FALSE(store);
  EXPECT_EQ(store.error().code, ErrorCode::kInternal);
  EXPECT_NE(store.error().message.find("newer"), std::string::npos) << store.error().message;
  EXPECT_NE(store.error().message.find(std::to_string(sqlite::latest_schema_version() + 1)),
            std::string::npos)
      << store.error().message;
  // The data is untouched.
  RawDb raw;
  open_raw(raw);
  EXPECT_EQ(column(raw, "SELECT id FROM keys"), std::vector<std::string>{"key_1"});
}

TEST_F(SqliteStoreTest, OpenFailsCleanlyOnAFileThatIsNotADatabase) {
  std::ofstream(path_) << std::string(8192, 'x');
  Result<std::unique_ptr<Store>> store = open_sqlite_store(path_);
  ASSERT_FALSE(store);
  EXPECT_EQ(store.error().code, ErrorCode::kInternal);
  EXPECT_FALSE(store.error().message.empty());
}

TEST_F(SqliteStoreTest, OpenFailsCleanlyInAMissingDirectory) {
  Result<std::unique_ptr<Store>> store = open_sqlite_store(dir_ + "/missing/till.db");
  ASSERT_FALSE(store);
  EXPECT_EQ(store.error().code, ErrorCode::kInternal);
  EXPECT_NE(store.error().message.find("missing/till.db"), std::string::npos)
      << store.error().message;
}

TEST_F(SqliteStoreTest, ALockHeldByAnotherProcessIsUnavailableAndRetryable) {
  Result<std::unique_ptr<Store>> store =
      sqlite::open_sqlite_store(path_, sqlite::SqliteStoreOptions{.busy_timeout = 50ms});
  ASSERT_OK(store);
  ASSERT_OK((*store)->insert_key(simple_key("key_1")));

  RawDb other;  // another connection stands for another process
  open_raw(other);
  exec(other, "BEGIN IMMEDIATE");
  Result<Reservation> blocked = (*store)->reserve("key_1", Budget{1, 0, {}}, {});
  ASSERT_TRUE(fails_with(blocked, ErrorCode::kUnavailable));
  EXPECT_TRUE(blocked.error().retryable);
  Result<KeyRecord> readable = (*store)->find_key("key_1");  // WAL: readers are not blocked
  EXPECT_OK(readable);

  exec(other, "COMMIT");
  Result<Reservation> retried = (*store)->reserve("key_1", Budget{1, 0, {}}, {});
  ASSERT_OK(retried);
  Result<KeyRecord> key = (*store)->find_key("key_1");
  ASSERT_OK(key);
  EXPECT_EQ(key->reserved.requests, 1);  // the refused attempt left nothing behind
}

TEST_F(SqliteStoreTest, CursorsAreCanonicalDecimalSequenceNumbers) {
  Result<std::unique_ptr<Store>> store = open_sqlite_store(path_);
  ASSERT_OK(store);
  for (int i = 0; i < 3; ++i)
    ASSERT_OK((*store)->insert_key(simple_key("key_" + std::to_string(i))));
  Result<KeyPage> page = (*store)->list_keys({.limit = 1});
  ASSERT_OK(page);
  ASSERT_TRUE(page->next_cursor);
  EXPECT_EQ(*page->next_cursor, "3");
  for (const char* cursor :
       {"0", "03", "+3", " 3", "3 ", "3\n", "1e3", "0x3", "9223372036854775808", "-0"}) {
    Result<KeyPage> bad = (*store)->list_keys({.cursor = cursor});
    EXPECT_TRUE(fails_with(bad, ErrorCode::kInvalidRequest)) << "cursor \"" << cursor << "\"";
  }
  Result<KeyPage> max = (*store)->list_keys({.cursor = "9223372036854775807"});
  ASSERT_OK(max);
  EXPECT_EQ(max->keys.size(), 3u);
}

TEST_F(SqliteStoreTest, MoneyAndCountersAreStoredAsIntegers) {
  Result<std::unique_ptr<Store>> store = open_sqlite_store(path_);
  ASSERT_OK(store);
  KeyRecord key = simple_key("key_1");
  key.limits.max_spend = Money::from_nanos(5'000'000'001);
  ASSERT_OK((*store)->insert_key(key));
  Result<Reservation> reservation =
      (*store)->reserve("key_1", Budget{1, 5, Money::from_nanos(3)}, {});
  ASSERT_OK(reservation);
  ASSERT_OK((*store)->settle(reservation->id, Usage{.spend = Money::from_nanos(2)}, {}));
  RawDb raw;
  open_raw(raw);
  EXPECT_EQ(column(raw,
                   "SELECT typeof(max_spend_nanos) || ' ' || typeof(used_spend_nanos) || ' ' "
                   "|| typeof(reserved_spend_nanos) FROM keys"),
            std::vector<std::string>{"integer integer integer"});
  EXPECT_EQ(column(raw, "SELECT max_spend_nanos FROM keys"),
            std::vector<std::string>{"5000000001"});
}

TEST_F(SqliteStoreTest, UpgradesAVersionTwoDatabase) {
  {
    Result<std::unique_ptr<sqlite::Connection>> connection =
        sqlite::Connection::open(path_, std::chrono::seconds(5));
    ASSERT_OK(connection);
    ASSERT_OK(sqlite::apply_migrations(**connection, from_unix_ms(1), 2));
  }
  {
    RawDb raw;
    open_raw(raw);
    EXPECT_EQ(column(raw, "SELECT max(version) FROM schema_migrations"),
              std::vector<std::string>{"2"});
    // A key with a token lifetime, as version 2 stored it.
    exec(raw,
         "INSERT INTO keys (id, seq, name, provider, metadata_json, status, secret_hash, models, "
         "allowed_cidrs, created_at_ms, updated_at_ms, rotated_at_ms, rotate_every_ms) VALUES "
         "('key_rotating', 1, '', 'openai', '{}', 'active', zeroblob(32), '[]', '[]', 1000, 1000, "
         "5000, 60000)");
  }
  Result<std::unique_ptr<Store>> opened = open_sqlite_store(path_);
  ASSERT_OK(opened);
  Store& store = **opened;
  Result<KeyRecord> key = store.find_key("key_rotating");
  ASSERT_OK(key);
  EXPECT_EQ(key->rotation_due_at(), from_unix_ms(65000));
  Result<std::vector<RotationDue>> due =
      store.keys_due_for_rotation(from_unix_ms(70000), from_unix_ms(2000));
  ASSERT_OK(due);
  ASSERT_EQ(due->size(), 1u);
  EXPECT_EQ((*due)[0].key_id, "key_rotating");
  EXPECT_EQ((*due)[0].due, from_unix_ms(65000));

  UsageEvent event;
  event.at = from_unix_ms(10'000);
  event.key_id = "key_rotating";
  event.forwarded = true;
  event.usage.requests = 1;
  ASSERT_OK(store.append_usage_events(std::span(&event, 1)));
  Result<UsageEventPage> page = store.list_usage_events(
      UsageFilter{.from = from_unix_ms(0), .to = from_unix_ms(20'000)}, "", 10);
  ASSERT_OK(page);
  ASSERT_EQ(page->events.size(), 1u);
  EXPECT_EQ(page->events[0].key_id, "key_rotating");
  AlertRecord alert;
  alert.rule = "loop";
  Result<AlertRecord> inserted = store.insert_alert(alert);
  ASSERT_OK(inserted);
  Result<AlertPage> alerts = store.list_alerts({});
  ASSERT_OK(alerts);
  ASSERT_EQ(alerts->alerts.size(), 1u);
  EXPECT_EQ(alerts->alerts[0].id, inserted->id);

  RawDb raw;
  open_raw(raw);
  EXPECT_EQ(column(raw, "SELECT max(version) FROM schema_migrations"),
            std::vector<std::string>{std::to_string(sqlite::latest_schema_version())});
}

UsageEvent event_at(int64_t ms) {
  UsageEvent event;
  event.at = from_unix_ms(ms);
  event.key_id = "key_1";
  event.forwarded = true;
  event.usage = Usage{.requests = 1, .input_tokens = 3, .spend = Money::from_nanos(5'000'000'001)};
  return event;
}

UsageFilter all_time() {
  return UsageFilter{.from = from_unix_ms(-10'000'000), .to = from_unix_ms(10'000'000)};
}

// Inserts `event` with `id` into a usage database of schema version 1 (a row of usage_events).
void insert_version_one_event(sqlite3* db, int64_t id, const UsageEvent& event) {
  sqlite3_stmt* stmt = nullptr;
  ASSERT_EQ(sqlite3_prepare_v2(
                db,
                "INSERT INTO usage_events (id, at_ms, key_id, provider, model, status, error_code, "
                "forwarded, streaming, upstream_status, requests, input_tokens, "
                "cached_input_tokens, output_tokens, reasoning_tokens, unmetered_tokens, "
                "spend_nanos, latency_us, upstream_latency_us, ttfb_us, client_address) VALUES "
                "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                -1, &stmt, nullptr),
            SQLITE_OK)
      << sqlite3_errmsg(db);
  int index = 1;
  auto text = [&](const std::string& value) {
    sqlite3_bind_text(stmt, index++, value.data(), static_cast<int>(value.size()),
                      SQLITE_TRANSIENT);
  };
  auto integer = [&](int64_t value) { sqlite3_bind_int64(stmt, index++, value); };
  integer(id);
  integer(to_unix_ms(event.at));
  text(event.key_id);
  text(event.provider);
  text(event.model);
  integer(event.status);
  text(event.error_code);
  integer(event.forwarded);
  integer(event.streaming);
  integer(event.upstream_status);
  for (int64_t figure :
       {event.usage.requests, event.usage.input_tokens, event.usage.cached_input_tokens,
        event.usage.output_tokens, event.usage.reasoning_tokens, event.usage.unmetered_tokens,
        event.usage.spend.nanos(), static_cast<int64_t>(event.latency.count()),
        static_cast<int64_t>(event.upstream_latency.count()),
        static_cast<int64_t>(event.time_to_first_byte.count())}) {
    integer(figure);
  }
  text(event.client_address);
  EXPECT_EQ(sqlite3_step(stmt), SQLITE_DONE) << sqlite3_errmsg(db);
  sqlite3_finalize(stmt);
}

// Sums per (key, bucket start) of the events in [from, to), as grouped summaries report them.
std::map<std::pair<std::string, int64_t>, UsageTotals> sums_by_key(
    const std::vector<UsageEvent>& events, int64_t from, int64_t to, int64_t bucket_ms) {
  std::map<std::pair<std::string, int64_t>, UsageTotals> sums;
  for (const UsageEvent& event : events) {
    const int64_t at = to_unix_ms(event.at);
    if (at < from || at >= to) continue;
    UsageTotals& sum = sums[{event.key_id, at - ((at % bucket_ms) + bucket_ms) % bucket_ms}];
    add_event(sum, event);
  }
  return sums;
}

TEST_F(SqliteStoreTest, UpgradingMovesVersionOneUsageEventsIntoBlocks) {
  // From version 1 (one row per event), from version 2 (per-minute sums), and from version 3
  // with its events not moved yet (as a crash between the migration and the move leaves it).
  for (int version : {1, 2, 3}) {
    SCOPED_TRACE("from usage schema version " + std::to_string(version));
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directory(dir_);
    // 2600 events over two minutes, a little out of time order, ids with gaps: three blocks.
    const int64_t t0 = 1'764'860'400'000;
    std::vector<UsageEvent> events;
    {
      Result<std::unique_ptr<sqlite::Connection>> connection =
          sqlite::Connection::open(sqlite::usage_database_path(path_), std::chrono::seconds(5));
      ASSERT_OK(connection);
      ASSERT_OK(sqlite::apply_migrations(**connection, from_unix_ms(1), 1, sqlite::Schema::kUsage));
      RawDb raw;
      open_raw(raw, /*usage=*/true);
      exec(raw, "BEGIN");
      for (int i = 0; i < 2600; ++i) {
        UsageEvent event = event_at(t0 + i * 50 + (i * 7919) % 300);
        event.id = 1 + i + i / 100;
        event.key_id = "key_" + std::to_string(i % 3);
        event.provider = i % 2 ? "openai" : "anthropic";
        event.model = "model-" + std::to_string(i % 5);
        event.status = i % 10 ? 200 : 429;
        event.error_code = i % 10 ? "" : "rate_limited";
        event.forwarded = i % 10 != 0;
        event.streaming = i % 4 == 0;
        event.upstream_status = event.forwarded ? 200 : 0;
        event.usage.input_tokens = i;
        event.usage.output_tokens = 2 * i;
        event.latency = std::chrono::microseconds(1000 + i);
        event.upstream_latency = std::chrono::microseconds(500 + i);
        event.time_to_first_byte = std::chrono::microseconds(700 + i);
        event.client_address = "10.0.0." + std::to_string(i % 250);
        insert_version_one_event(raw.db, event.id, event);
        events.push_back(event);
      }
      // The newest event deleted: its id must not be handed out again.
      const int64_t newest_id = events.back().id;
      exec(raw, ("DELETE FROM usage_events WHERE id = " + std::to_string(newest_id)).c_str());
      events.pop_back();
      exec(raw, "COMMIT");
      if (version > 1) {
        ASSERT_OK(sqlite::apply_migrations(**connection, from_unix_ms(1), version,
                                           sqlite::Schema::kUsage));
      }
    }
    Result<std::unique_ptr<Store>> opened = open_sqlite_store(path_);
    ASSERT_OK(opened);
    Store& store = **opened;

    std::vector<UsageEvent> newest_first = events;
    std::sort(newest_first.begin(), newest_first.end(),
              [](const UsageEvent& a, const UsageEvent& b) {
                return std::pair(a.at, a.id) > std::pair(b.at, b.id);
              });
    const UsageFilter all{.from = from_unix_ms(t0), .to = from_unix_ms(t0 + 600'000)};
    std::vector<UsageEvent> listed;
    std::string cursor;
    for (int pages = 0; pages < 10; ++pages) {
      Result<UsageEventPage> page = store.list_usage_events(all, cursor, 1000);
      ASSERT_OK(page);
      listed.insert(listed.end(), page->events.begin(), page->events.end());
      if (!page->next_cursor) break;
      cursor = *page->next_cursor;
    }
    ASSERT_EQ(listed.size(), newest_first.size());
    for (size_t i = 0; i < listed.size(); ++i) {
      SCOPED_TRACE("event " + std::to_string(i));
      ASSERT_EQ(listed[i].id, newest_first[i].id);
      expect_same_event(listed[i], newest_first[i]);
      if (HasFailure()) return;
    }

    // Whole and partial minutes, by minute and by key.
    for (auto [from, to] : {std::pair(t0, t0 + 600'000), std::pair(t0 + 12'345, t0 + 97'891)}) {
      Result<std::vector<UsageSeries>> summary =
          store.usage_summary(UsageFilter{.from = from_unix_ms(from), .to = from_unix_ms(to)},
                              UsageBucket::kMinute, UsageGroup::kKey);
      ASSERT_OK(summary);
      std::map<std::pair<std::string, int64_t>, UsageTotals> summed;
      for (const UsageSeries& series : *summary) {
        for (const UsagePoint& point : series.points) {
          summed[{series.group, to_unix_ms(point.start)}] = point.totals;
        }
      }
      EXPECT_EQ(summed, sums_by_key(events, from, to, 60'000)) << "from " << from << " to " << to;
    }

    RawDb raw;
    open_raw(raw, /*usage=*/true);
    EXPECT_EQ(column(raw, "SELECT count(*) FROM sqlite_master WHERE name LIKE 'usage_events%'"),
              std::vector<std::string>{"0"});
    EXPECT_EQ(column(raw, "SELECT count FROM usage_event_blocks ORDER BY first_id"),
              (std::vector<std::string>{"1024", "1024", "551"}));
    EXPECT_EQ(column(raw, "SELECT max(version) FROM schema_migrations"),
              std::vector<std::string>{
                  std::to_string(sqlite::latest_schema_version(sqlite::Schema::kUsage))});
    ASSERT_OK(store.append_usage_events(std::vector<UsageEvent>{event_at(t0)}));
    Result<UsageEventPage> page = store.list_usage_events(
        UsageFilter{.from = from_unix_ms(t0), .to = from_unix_ms(t0 + 1)}, "", 1);
    ASSERT_OK(page);
    ASSERT_EQ(page->events.size(), 1u);
    EXPECT_EQ(page->events[0].id, 1 + 2599 + 25 + 1);  // after the deleted newest id
  }
}

TEST_F(SqliteStoreTest, UsageEventsLiveInADatabaseOfTheirOwn) {
  EXPECT_EQ(sqlite::usage_database_path("/d/till.db"), "/d/till-usage.db");
  EXPECT_EQ(sqlite::usage_database_path("/d/store"), "/d/store-usage");
  Result<std::unique_ptr<Store>> store = open_sqlite_store(path_);
  ASSERT_OK(store);
  ASSERT_OK((*store)->append_usage_events(std::vector<UsageEvent>{event_at(1000)}));
  RawDb main;
  open_raw(main);
  EXPECT_EQ(column(main, "SELECT count(*) FROM sqlite_master WHERE name LIKE 'usage%'"),
            std::vector<std::string>{"0"});
  RawDb usage;
  open_raw(usage, /*usage=*/true);
  EXPECT_EQ(column(usage, "SELECT sum(count) FROM usage_event_blocks"),
            std::vector<std::string>{"1"});
  for (const std::string& file :
       {sqlite::usage_database_path(path_), sqlite::usage_database_path(path_) + "-wal"}) {
    EXPECT_EQ(file_mode(file), 0600u) << file;
  }
}

// The block's bytes as SQLite holds them, and its base time.
std::pair<std::string, int64_t> only_block(sqlite3* db) {
  sqlite3_stmt* stmt = nullptr;
  EXPECT_EQ(sqlite3_prepare_v2(db, "SELECT events, min_at_ms FROM usage_event_blocks", -1, &stmt,
                               nullptr),
            SQLITE_OK);
  std::pair<std::string, int64_t> block;
  if (stmt != nullptr && sqlite3_step(stmt) == SQLITE_ROW) {
    block.first.assign(static_cast<const char*>(sqlite3_column_blob(stmt, 0)),
                       static_cast<size_t>(sqlite3_column_bytes(stmt, 0)));
    block.second = sqlite3_column_int64(stmt, 1);
  }
  EXPECT_NE(stmt != nullptr ? sqlite3_step(stmt) : SQLITE_ROW, SQLITE_ROW) << "more than one block";
  sqlite3_finalize(stmt);
  return block;
}

TEST_F(SqliteStoreTest, UsageEventsAreStoredAsCodecBlocksWithoutTheBodyHash) {
  Result<std::unique_ptr<Store>> store = open_sqlite_store(path_);
  ASSERT_OK(store);
  UsageEvent event = event_at(1000);
  event.body_hash = 0x1234567890abcdef;
  ASSERT_OK((*store)->append_usage_events(std::span(&event, 1)));
  RawDb raw;
  open_raw(raw, /*usage=*/true);
  const auto [blob, base] = only_block(raw.db);
  EXPECT_EQ(base, 1000);
  // Exactly what the codec writes for the event without its hash: money as integer nano-dollars.
  UsageEvent stored = event;
  stored.body_hash = 0;
  EXPECT_EQ(blob,
            sqlite::encode_usage_events(std::span(&stored, 1), std::vector<int64_t>{1}, base));
  std::vector<UsageEvent> decoded;
  ASSERT_OK(sqlite::decode_usage_events(blob, base, decoded));
  ASSERT_EQ(decoded.size(), 1u);
  EXPECT_EQ(decoded[0].usage.spend, Money::from_nanos(5'000'000'001));
  for (const std::string& name :
       column(raw, "SELECT name FROM pragma_table_info('usage_event_blocks')")) {
    EXPECT_EQ(name.find("hash"), std::string::npos) << name;
  }
}

TEST_F(SqliteStoreTest, AnAppendIsOneBlockPer1024EventsWithinAMinute) {
  Result<std::unique_ptr<Store>> opened = open_sqlite_store(path_);
  ASSERT_OK(opened);
  std::vector<UsageEvent> events;
  for (int i = 0; i < 2500; ++i) events.push_back(event_at(i));  // 2.5 s
  ASSERT_OK((*opened)->append_usage_events(events));
  RawDb raw;
  open_raw(raw, /*usage=*/true);
  EXPECT_EQ(column(raw,
                   "SELECT first_id || '-' || last_id || ' ' || count || ' ' || min_at_ms || "
                   "'-' || max_at_ms FROM usage_event_blocks ORDER BY first_id"),
            (std::vector<std::string>{"1-1024 1024 0-1023", "1025-2048 1024 1024-2047",
                                      "2049-2500 452 2048-2499"}));
  // Events more than a minute apart start a new block: a block spans at most a minute.
  ASSERT_OK((*opened)->append_usage_events(std::vector<UsageEvent>{
      event_at(100'000), event_at(160'000), event_at(160'001), event_at(40'000)}));
  EXPECT_EQ(column(raw,
                   "SELECT count || ' ' || min_at_ms || '-' || max_at_ms "
                   "FROM usage_event_blocks WHERE first_id > 2500 ORDER BY first_id"),
            (std::vector<std::string>{"2 100000-160000", "1 160001-160001", "1 40000-40000"}));
}

TEST_F(SqliteStoreTest, ACorruptBlockIsAnInternalErrorNamingIt) {
  Result<std::unique_ptr<Store>> opened = open_sqlite_store(path_);
  ASSERT_OK(opened);
  Store& store = **opened;
  ASSERT_OK(store.append_usage_events(std::vector<UsageEvent>{event_at(1000), event_at(2000)}));
  RawDb raw;
  open_raw(raw, /*usage=*/true);
  exec(raw, "CREATE TABLE intact AS SELECT * FROM usage_event_blocks");
  auto expect_corrupt = [](const auto& result) {
    ASSERT_FALSE(result.has_value());
    EXPECT_EQ(result.error().code, ErrorCode::kInternal);
    EXPECT_NE(result.error().message.find("corrupt usage events block"), std::string::npos)
        << result.error().message;
    EXPECT_NE(result.error().message.find("from id 1 "), std::string::npos)
        << result.error().message;
  };
  for (const char* damage :
       {"UPDATE usage_event_blocks SET events = substr(events, 1, length(events) - 1)",
        "UPDATE usage_event_blocks SET events = X'02'", "UPDATE usage_event_blocks SET count = 3",
        "UPDATE usage_event_blocks SET last_id = 3",
        "UPDATE usage_event_blocks SET max_at_ms = 2001"}) {
    SCOPED_TRACE(damage);
    exec(raw, damage);
    expect_corrupt(store.list_usage_events(all_time(), "", 10));
    expect_corrupt(
        store.usage_summary(UsageFilter{.from = from_unix_ms(500), .to = from_unix_ms(1500)},
                            UsageBucket::kMinute, UsageGroup::kNone));
    exec(raw,
         "DELETE FROM usage_event_blocks; INSERT INTO usage_event_blocks SELECT * FROM intact");
    ASSERT_OK(store.list_usage_events(all_time(), "", 10));
  }
}

TEST_F(SqliteStoreTest, UsageEventCursorsAreCanonicalDecimalIdsNeverReused) {
  Result<std::unique_ptr<Store>> opened = open_sqlite_store(path_);
  ASSERT_OK(opened);
  Store& store = **opened;
  std::vector<UsageEvent> events = {event_at(1000), event_at(2000), event_at(3000)};
  ASSERT_OK(store.append_usage_events(events));
  Result<UsageEventPage> page = store.list_usage_events(all_time(), "", 1);
  ASSERT_OK(page);
  ASSERT_EQ(page->events.size(), 1u);
  EXPECT_EQ(page->events[0].id, 3);
  ASSERT_TRUE(page->next_cursor);
  EXPECT_EQ(*page->next_cursor, "3");
  for (const char* cursor :
       {"0", "03", "+3", " 3", "3 ", "3\n", "1e3", "0x3", "9223372036854775808", "-0"}) {
    EXPECT_TRUE(
        fails_with(store.list_usage_events(all_time(), cursor, 10), ErrorCode::kInvalidRequest))
        << "cursor \"" << cursor << "\"";
  }
  // A cursor whose event retention has deleted: every event after it is gone too.
  ASSERT_OK(store.delete_usage_events_before(from_unix_ms(60'000)));
  page = store.list_usage_events(all_time(), "3", 10);
  ASSERT_OK(page);
  EXPECT_TRUE(page->events.empty());
  EXPECT_FALSE(page->next_cursor);
  // Ids keep growing after the newest events were deleted.
  ASSERT_OK(store.append_usage_events(std::vector<UsageEvent>{event_at(500)}));
  page = store.list_usage_events(all_time(), "", 10);
  ASSERT_OK(page);
  ASSERT_EQ(page->events.size(), 1u);
  EXPECT_EQ(page->events[0].id, 4);
}

TEST_F(SqliteStoreTest, RetentionDeletesLargeBacklogsInFull) {
  Result<std::unique_ptr<Store>> opened = open_sqlite_store(path_);
  ASSERT_OK(opened);
  Store& store = **opened;
  // 4500 events 16 ms apart: 3750 in the first minute, 750 after, appended 7 at a time: 536
  // blocks in the first minute (several deletion batches) and one across its end.
  std::vector<UsageEvent> events;
  for (int i = 0; i < 4500; ++i) events.push_back(event_at(i * 16));
  for (size_t first = 0; first < events.size(); first += 7) {
    ASSERT_OK(store.append_usage_events(
        std::span(events).subspan(first, std::min<size_t>(7, events.size() - first))));
  }
  // Retention cuts at the start of the minute: 60.5 s deletes the first minute only.
  Result<int64_t> deleted = store.delete_usage_events_before(from_unix_ms(60'500));
  ASSERT_OK(deleted);
  EXPECT_EQ(*deleted, 3750);
  // The per-minute sums went with the events: a summary counts the events that are left.
  Result<std::vector<UsageSeries>> summary =
      store.usage_summary(all_time(), UsageBucket::kDay, UsageGroup::kNone);
  ASSERT_OK(summary);
  ASSERT_EQ(summary->size(), 1u);
  EXPECT_EQ((*summary)[0].totals.requests, 750);
  Result<UsageEventPage> page = store.list_usage_events(all_time(), "", 1000);
  ASSERT_OK(page);
  ASSERT_EQ(page->events.size(), 750u);
  EXPECT_EQ(page->events.front().id, 4500);
  EXPECT_EQ(page->events.back().id, 3751);
  EXPECT_EQ(page->events.back().at, from_unix_ms(60'000));
}

TEST_F(SqliteStoreTest, RetentionKeepsTheLaterEventsOfABlockAcrossTheCutWithTheirIds) {
  Result<std::unique_ptr<Store>> opened = open_sqlite_store(path_);
  ASSERT_OK(opened);
  Store& store = **opened;
  // One block, its times out of order around the cut at 60 s: ids 1 and 3 stay.
  ASSERT_OK(store.append_usage_events(std::vector<UsageEvent>{event_at(61'000), event_at(50'000),
                                                              event_at(65'000), event_at(59'999)}));
  Result<int64_t> deleted = store.delete_usage_events_before(from_unix_ms(60'000));
  ASSERT_OK(deleted);
  EXPECT_EQ(*deleted, 2);
  RawDb raw;
  open_raw(raw, /*usage=*/true);
  EXPECT_EQ(column(raw,
                   "SELECT first_id || '-' || last_id || ' ' || count || ' ' || min_at_ms || "
                   "'-' || max_at_ms FROM usage_event_blocks"),
            std::vector<std::string>{"1-3 2 61000-65000"});
  Result<UsageEventPage> page = store.list_usage_events(all_time(), "", 1);
  ASSERT_OK(page);
  ASSERT_EQ(page->events.size(), 1u);
  EXPECT_EQ(page->events[0].id, 3);
  ASSERT_TRUE(page->next_cursor);
  page = store.list_usage_events(all_time(), *page->next_cursor, 1);
  ASSERT_OK(page);
  ASSERT_EQ(page->events.size(), 1u);
  EXPECT_EQ(page->events[0].id, 1);
  EXPECT_EQ(page->events[0].at, from_unix_ms(61'000));
  EXPECT_FALSE(page->next_cursor);
  Result<std::vector<UsageSeries>> summary =
      store.usage_summary(all_time(), UsageBucket::kDay, UsageGroup::kNone);
  ASSERT_OK(summary);
  EXPECT_EQ((*summary)[0].totals.requests, 2);
  // A cursor naming a deleted event ends the listing.
  page = store.list_usage_events(all_time(), "2", 10);
  ASSERT_OK(page);
  EXPECT_TRUE(page->events.empty());
}

TEST_F(SqliteStoreTest, UsageBucketsBeforeTheEpochStartOnTheirBoundaryToo) {
  Result<std::unique_ptr<Store>> opened = open_sqlite_store(path_);
  ASSERT_OK(opened);
  ASSERT_OK((*opened)->append_usage_events(std::vector<UsageEvent>{event_at(-1), event_at(0)}));
  Result<std::vector<UsageSeries>> summary =
      (*opened)->usage_summary(all_time(), UsageBucket::kMinute, UsageGroup::kNone);
  ASSERT_OK(summary);
  ASSERT_EQ(summary->size(), 1u);
  ASSERT_EQ((*summary)[0].points.size(), 2u);
  EXPECT_EQ((*summary)[0].points[0].start, from_unix_ms(-60'000));
  EXPECT_EQ((*summary)[0].points[1].start, from_unix_ms(0));
}

TEST_F(SqliteStoreTest, UsageEventsAreListedByTimeEvenWhenAppendedLate) {
  Result<std::unique_ptr<Store>> opened = open_sqlite_store(path_);
  ASSERT_OK(opened);
  Store& store = **opened;
  // Event sinks write in batches: an event can be appended after a newer one.
  ASSERT_OK(store.append_usage_events(std::vector<UsageEvent>{event_at(3000), event_at(1000)}));
  ASSERT_OK(store.append_usage_events(std::vector<UsageEvent>{event_at(2000), event_at(3000)}));
  std::vector<std::pair<int64_t, int64_t>> listed;  // (at, id)
  std::string cursor;
  for (int pages = 0; pages < 10; ++pages) {
    Result<UsageEventPage> page = store.list_usage_events(all_time(), cursor, 1);
    ASSERT_OK(page);
    for (const UsageEvent& event : page->events)
      listed.emplace_back(to_unix_ms(event.at), event.id);
    if (!page->next_cursor) break;
    cursor = *page->next_cursor;
  }
  EXPECT_EQ(listed,
            (std::vector<std::pair<int64_t, int64_t>>{{3000, 4}, {3000, 1}, {2000, 3}, {1000, 2}}));
}

}  // namespace
}  // namespace till::test
