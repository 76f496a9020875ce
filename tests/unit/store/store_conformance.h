// The Store conformance suite: every contract of include/till/store.h, written against the
// interface only, so that every backend (SQLite now, PostgreSQL later) is held to the same tests.
//
// A backend instantiates the suite with a StoreBackend:
//
//   INSTANTIATE_TEST_SUITE_P(Sqlite, StoreConformanceTest,
//                            ::testing::Values(StoreBackend{"sqlite", open_fn}),
//                            StoreBackendName());
//
// The suite runs tests sequentially; a test may fork (the kill -9 test), so a backend must not
// keep process-wide connections outside the Store objects it returns.
#pragma once

#include <gtest/gtest.h>

#include <functional>
#include <memory>
#include <ostream>
#include <string>

#include "till/store.h"

namespace till::test {

struct StoreBackend {
  std::string name;  // test-name suffix, e.g. "sqlite"
  // Opens the store kept under `dir`, a fresh empty directory that exists for one test only (a
  // backend without files may use its path to pick a fresh database). Opening the same `dir`
  // again, after the previous Store was destroyed, must reach the same data. On failure, reports
  // it (ADD_FAILURE) and returns null.
  std::function<std::unique_ptr<Store>(const std::string& dir)> open;
};

// Test output names the backend instead of dumping the struct's bytes.
inline void PrintTo(const StoreBackend& backend, std::ostream* os) { *os << backend.name; }

// For INSTANTIATE_TEST_SUITE_P: names each instantiation after its backend.
struct StoreBackendName {
  std::string operator()(const ::testing::TestParamInfo<StoreBackend>& info) const {
    return info.param.name;
  }
};

class StoreConformanceTest : public ::testing::TestWithParam<StoreBackend> {
 protected:
  void SetUp() override;
  void TearDown() override;

  // Destroys the current Store without any cleanup (as a crash would leave it) and opens a new
  // one on the same data.
  void reopen();

  std::string dir_;
  std::unique_ptr<Store> store_;
};

// Asserts that a Result holds a value, printing its error otherwise. `result` is evaluated twice:
// pass a variable.
#define ASSERT_OK(result) ASSERT_TRUE((result).has_value()) << (result).error().message
#define EXPECT_OK(result) EXPECT_TRUE((result).has_value()) << (result).error().message

// Use as EXPECT_TRUE(fails_with(result, ErrorCode::kNotFound)).
template <typename T>
::testing::AssertionResult fails_with(const Result<T>& result, ErrorCode code) {
  if (result) return ::testing::AssertionFailure() << "succeeded; expected " << to_string(code);
  if (result.error().code != code) {
    return ::testing::AssertionFailure()
           << "failed with " << to_string(result.error().code) << " (" << result.error().message
           << "); expected " << to_string(code);
  }
  return ::testing::AssertionSuccess();
}

}  // namespace till::test
