#include "proxy/budget_ledger.h"

#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>
#include <thread>
#include <vector>

namespace till {
namespace {

using namespace std::chrono_literals;

const Timestamp kT0 = from_unix_ms(1'764'860'400'000);

class BudgetLedgerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = (std::filesystem::temp_directory_path() / "till-ledger-XXXXXX").string();
    ASSERT_NE(::mkdtemp(pattern.data()), nullptr);
    dir_ = pattern;
    auto store = open_sqlite_store(dir_ + "/till.db");
    ASSERT_TRUE(store) << store.error().message;
    store_ = std::move(*store);
  }
  void TearDown() override {
    store_.reset();
    std::filesystem::remove_all(dir_);
  }

  KeyRecord make_key(Limits limits, Scope scope = {}) {
    KeyRecord key;
    key.id = "key_" + std::to_string(++counter_);
    key.provider = "openai";
    key.limits = limits;
    key.scope = scope;
    key.created_at = key.updated_at = kT0;
    EXPECT_TRUE(store_->insert_key(key));
    return key;
  }

  std::string dir_;
  std::unique_ptr<Store> store_;
  FakeClock clock_{kT0};
  int counter_ = 0;
};

TEST_F(BudgetLedgerTest, ConcurrentRequestsGrantExactlyTheLimit) {
  const KeyRecord key = make_key(Limits{5'000, std::nullopt, std::nullopt});
  BudgetLedger ledger(*store_, clock_);
  std::atomic<int> granted = 0, refused = 0;
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 1'000; ++i) {
        auto hold = ledger.reserve(key, Budget{1, 0, Money()});
        if (!hold) {
          EXPECT_EQ(hold.error().code, ErrorCode::kLimitExhausted);
          ++refused;
          continue;
        }
        ++granted;
        ledger.settle(*hold, Usage{.requests = 1, .input_tokens = 3, .output_tokens = 2});
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(granted, 5'000);
  EXPECT_EQ(refused, 3'000);
  auto live = ledger.find_key(key.id);
  ASSERT_TRUE(live);
  EXPECT_EQ(live->used.requests, 5'000);
  EXPECT_EQ(live->used.tokens(), 25'000);
  EXPECT_EQ(live->reserved, Budget{});
  EXPECT_EQ(live->status, KeyStatus::kExhausted);
  ASSERT_TRUE(ledger.flush());
  auto stored = store_->find_key(key.id);
  ASSERT_TRUE(stored);
  EXPECT_EQ(stored->used.requests, 5'000);
  EXPECT_EQ(stored->reserved, Budget{});
  EXPECT_EQ(stored->status, KeyStatus::kExhausted);
}

TEST_F(BudgetLedgerTest, StoreInvariantHoldsWhileRequestsAreInFlight) {
  const Money limit = Money::from_nanos(1'000'000);
  const KeyRecord key = make_key(Limits{std::nullopt, 10'000, limit});
  BudgetLedger ledger(*store_, clock_);
  std::atomic<bool> done = false;
  std::thread checker([&] {
    while (!done) {
      auto k = store_->find_key(key.id);
      ASSERT_TRUE(k);
      EXPECT_LE(k->used.tokens() + k->reserved.tokens, 10'000);
      EXPECT_LE(k->used.spend + k->reserved.spend, limit);
    }
  });
  std::vector<std::thread> threads;
  std::atomic<int64_t> spent = 0;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 500; ++i) {
        auto hold = ledger.reserve(key, Budget{1, 100, Money::from_nanos(10'000)});
        if (!hold) continue;
        ledger.settle(*hold, Usage{.requests = 1, .input_tokens = 40, .output_tokens = 30,
                                   .spend = Money::from_nanos(7'000)});
        spent += 7'000;
      }
    });
  }
  for (auto& t : threads) t.join();
  ASSERT_TRUE(ledger.flush());
  done = true;
  checker.join();
  auto k = store_->find_key(key.id);
  ASSERT_TRUE(k);
  EXPECT_EQ(k->used.spend.nanos(), spent.load());
  EXPECT_LE(k->used.spend, limit);
  EXPECT_LE(k->used.tokens(), 10'000);
}

TEST_F(BudgetLedgerTest, RefusalsNameTheLimitAndSayWhatToDo) {
  const KeyRecord key = make_key(Limits{2, std::nullopt, Money::from_nanos(5'000'000'000)});
  BudgetLedger ledger(*store_, clock_);
  auto big = ledger.reserve(key, Budget{1, 0, Money::from_nanos(6'000'000'000)});
  ASSERT_FALSE(big);
  EXPECT_EQ(big.error().field, "max_spend");
  EXPECT_NE(big.error().message.find("$6.00"), std::string::npos) << big.error().message;
  for (int i = 0; i < 2; ++i) {
    auto hold = ledger.reserve(key, Budget{1, 0, Money()});
    ASSERT_TRUE(hold) << hold.error().message;
    ledger.settle(*hold, Usage{.requests = 1});
  }
  auto third = ledger.reserve(key, Budget{1, 0, Money()});
  ASSERT_FALSE(third);
  EXPECT_EQ(third.error().code, ErrorCode::kLimitExhausted);
  EXPECT_EQ(third.error().field, "max_requests");
  EXPECT_EQ(third.error().message,
            "till: key " + key.id + " has used its 2 requests limit; ask for a new key");
}

TEST_F(BudgetLedgerTest, UnsettledHoldIsChargedInFull) {
  const KeyRecord key = make_key(Limits{10, 1'000, std::nullopt});
  BudgetLedger ledger(*store_, clock_);
  {
    auto hold = ledger.reserve(key, Budget{1, 300, Money()});
    ASSERT_TRUE(hold);
  }
  auto live = ledger.find_key(key.id);
  ASSERT_TRUE(live);
  EXPECT_EQ(live->used.requests, 1);
  EXPECT_EQ(live->used.unmetered_tokens, 300);
  EXPECT_EQ(live->reserved, Budget{});
}

TEST_F(BudgetLedgerTest, ConcurrencyLimit) {
  const KeyRecord key = make_key(Limits{}, Scope{.max_concurrency = 2});
  BudgetLedger ledger(*store_, clock_);
  auto a = ledger.reserve(key, Budget{1, 0, Money()});
  auto b = ledger.reserve(key, Budget{1, 0, Money()});
  ASSERT_TRUE(a && b);
  auto c = ledger.reserve(key, Budget{1, 0, Money()});
  ASSERT_FALSE(c);
  EXPECT_EQ(c.error().code, ErrorCode::kConcurrencyLimited);
  ledger.settle(*a, Usage{.requests = 1});
  EXPECT_TRUE(ledger.reserve(key, Budget{1, 0, Money()}));
}

TEST_F(BudgetLedgerTest, RpmIsASlidingWindow) {
  const KeyRecord key = make_key(Limits{}, Scope{.rpm = 3});
  BudgetLedger ledger(*store_, clock_);
  for (int i = 0; i < 3; ++i) {
    auto hold = ledger.reserve(key, Budget{1, 0, Money()});
    ASSERT_TRUE(hold);
    ledger.settle(*hold, Usage{.requests = 1});
    clock_.advance(10s);
  }
  auto refused = ledger.reserve(key, Budget{1, 0, Money()});
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code, ErrorCode::kRateLimited);
  EXPECT_EQ(refused.error().retry_after_seconds, 30);  // the first start leaves the window in 30 s
  clock_.advance(30s);
  EXPECT_TRUE(ledger.reserve(key, Budget{1, 0, Money()}));
}

TEST_F(BudgetLedgerTest, LeaseHeadroomIsBoundedAndReleasedOnFlush) {
  const KeyRecord key = make_key(Limits{1'000, std::nullopt, std::nullopt});
  BudgetLedger ledger(*store_, clock_);
  auto hold = ledger.reserve(key, Budget{1, 0, Money()});
  ASSERT_TRUE(hold);
  auto stored = store_->find_key(key.id);
  ASSERT_TRUE(stored);
  EXPECT_GE(stored->reserved.requests, 1);
  EXPECT_LE(stored->reserved.requests, 50);  // at most 5% of the limit
  ledger.settle(*hold, Usage{.requests = 1});
  ASSERT_TRUE(ledger.flush());
  stored = store_->find_key(key.id);
  ASSERT_TRUE(stored);
  EXPECT_EQ(stored->reserved, Budget{});
  EXPECT_EQ(stored->used.requests, 1);
}

TEST_F(BudgetLedgerTest, RevokedKeyIsRefusedAtTheNextLeaseButInFlightSettles) {
  const KeyRecord key = make_key(Limits{100, std::nullopt, std::nullopt});
  BudgetLedger ledger(*store_, clock_);
  auto hold = ledger.reserve(key, Budget{1, 0, Money()});
  ASSERT_TRUE(hold);
  ASSERT_TRUE(store_->set_status(key.id, KeyStatus::kRevoked, kT0));
  ledger.settle(*hold, Usage{.requests = 1, .output_tokens = 5});
  ASSERT_TRUE(ledger.flush());
  auto stored = store_->find_key(key.id);
  ASSERT_TRUE(stored);
  EXPECT_EQ(stored->used.output_tokens, 5);
  EXPECT_EQ(stored->reserved, Budget{});
}

}  // namespace
}  // namespace till
