// What the usage-event tests (store conformance, the SQLite store, the block codec) check events
// and their sums against.
#pragma once

#include <gtest/gtest.h>

#include "till/store.h"
#include "till/usage_event.h"

namespace till::test {

// `actual`, read back from a store, holds every field of `expected` that a store keeps: all but
// the id (the store assigns it) and the body hash (in memory only, read back as 0).
inline void expect_same_event(const UsageEvent& actual, const UsageEvent& expected) {
  EXPECT_EQ(actual.at, expected.at);
  EXPECT_EQ(actual.key_id, expected.key_id);
  EXPECT_EQ(actual.provider, expected.provider);
  EXPECT_EQ(actual.model, expected.model);
  EXPECT_EQ(actual.status, expected.status);
  EXPECT_EQ(actual.error_code, expected.error_code);
  EXPECT_EQ(actual.forwarded, expected.forwarded);
  EXPECT_EQ(actual.streaming, expected.streaming);
  EXPECT_EQ(actual.upstream_status, expected.upstream_status);
  EXPECT_EQ(actual.usage, expected.usage);
  EXPECT_EQ(actual.latency, expected.latency);
  EXPECT_EQ(actual.upstream_latency, expected.upstream_latency);
  EXPECT_EQ(actual.time_to_first_byte, expected.time_to_first_byte);
  EXPECT_EQ(actual.client_address, expected.client_address);
  EXPECT_EQ(actual.body_hash, 0u);
}

// totals += what a usage summary counts of `event`: forwarded ones as requests, the others as
// refused, and their usage.
inline void add_event(UsageTotals& totals, const UsageEvent& event) {
  if (event.forwarded) {
    totals.requests += event.usage.requests;
  } else {
    ++totals.refused;
  }
  totals.input_tokens += event.usage.input_tokens;
  totals.cached_input_tokens += event.usage.cached_input_tokens;
  totals.output_tokens += event.usage.output_tokens;
  totals.reasoning_tokens += event.usage.reasoning_tokens;
  totals.unmetered_tokens += event.usage.unmetered_tokens;
  totals.spend += event.usage.spend;
}

}  // namespace till::test
