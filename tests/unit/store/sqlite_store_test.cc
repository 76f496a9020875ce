// The SQLite backend: the conformance suite, plus what only a file-backed store has (file modes,
// schema migrations, locking between processes, strict cursors).
#include "store/sqlite/sqlite_store.h"

#include <sqlite3.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <memory>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "store/sqlite/migrations.h"
#include "unit/store/store_conformance.h"

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

TEST_F(SqliteStoreTest, UsageEventsLiveInADatabaseOfTheirOwn) {
  EXPECT_EQ(sqlite::usage_database_path("/d/till.db"), "/d/till-usage.db");
  EXPECT_EQ(sqlite::usage_database_path("/d/store"), "/d/store-usage");
  Result<std::unique_ptr<Store>> store = open_sqlite_store(path_);
  ASSERT_OK(store);
  ASSERT_OK((*store)->append_usage_events(std::vector<UsageEvent>{event_at(1000)}));
  RawDb main;
  open_raw(main);
  EXPECT_EQ(column(main, "SELECT count(*) FROM sqlite_master WHERE name = 'usage_events'"),
            std::vector<std::string>{"0"});
  RawDb usage;
  open_raw(usage, /*usage=*/true);
  EXPECT_EQ(column(usage, "SELECT count(*) FROM usage_events"), std::vector<std::string>{"1"});
  for (const std::string& file :
       {sqlite::usage_database_path(path_), sqlite::usage_database_path(path_) + "-wal"}) {
    EXPECT_EQ(file_mode(file), 0600u) << file;
  }
}

TEST_F(SqliteStoreTest, UsageEventsStoreMoneyAsIntegersAndNeverTheBodyHash) {
  Result<std::unique_ptr<Store>> store = open_sqlite_store(path_);
  ASSERT_OK(store);
  UsageEvent event = event_at(1000);
  event.body_hash = 0x1234567890abcdef;
  ASSERT_OK((*store)->append_usage_events(std::span(&event, 1)));
  RawDb raw;
  open_raw(raw, /*usage=*/true);
  EXPECT_EQ(column(raw, "SELECT typeof(spend_nanos) || ' ' || spend_nanos FROM usage_events"),
            std::vector<std::string>{"integer 5000000001"});
  for (const std::string& name :
       column(raw, "SELECT name FROM pragma_table_info('usage_events')")) {
    EXPECT_EQ(name.find("hash"), std::string::npos) << name;
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
  std::vector<UsageEvent> events;
  // 4500 events 16 ms apart: 3750 in the first minute (several deletion batches), 750 after.
  for (int i = 0; i < 4500; ++i) events.push_back(event_at(i * 16));
  ASSERT_OK(store.append_usage_events(events));
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
