#include "store/sqlite/usage_event_codec.h"

#include <gtest/gtest.h>

#include <climits>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "unit/store/usage_event_testing.h"

namespace till::sqlite {
namespace {

using namespace std::chrono_literals;

constexpr int64_t kMin = std::numeric_limits<int64_t>::min();
constexpr int64_t kMax = std::numeric_limits<int64_t>::max();

UsageEvent full_event(int64_t at_ms, int i) {
  UsageEvent event;
  event.at = from_unix_ms(at_ms);
  event.key_id = "key_" + std::to_string(i % 3);
  event.provider = i % 2 ? "openai" : "anthropic";
  event.model = "model-" + std::to_string(i % 5);
  event.status = 200 + i;
  event.error_code = i % 4 ? "" : "upstream_error";
  event.forwarded = i % 3 != 0;
  event.streaming = i % 2 == 0;
  event.upstream_status = i % 7 ? 200 : 0;
  event.usage = Usage{.requests = 1,
                      .input_tokens = 1000 + i,
                      .cached_input_tokens = i,
                      .output_tokens = 2000 * i,
                      .reasoning_tokens = i / 2,
                      .unmetered_tokens = i / 3,
                      .spend = Money::from_nanos(5'000'000'001LL * i)};
  event.latency = std::chrono::microseconds(10'000 + i);
  event.upstream_latency = std::chrono::microseconds(-i);  // any figure round-trips
  event.time_to_first_byte = std::chrono::microseconds(30'000 + i);
  event.client_address = "10.0.0." + std::to_string(i % 4);
  event.body_hash = 0x1234 + static_cast<uint64_t>(i);  // never stored
  return event;
}

void expect_same(const UsageEvent& actual, const UsageEvent& expected, int64_t id) {
  EXPECT_EQ(actual.id, id);
  test::expect_same_event(actual, expected);
}

Result<std::vector<UsageEvent>> decode(std::string_view blob, int64_t base_at_ms) {
  std::vector<UsageEvent> events;
  if (Result<void> decoded = decode_usage_events(blob, base_at_ms, events); !decoded) {
    return fail(decoded.error());
  }
  return events;
}

// Encodes, decodes and checks every event, and that the block re-encodes to the same bytes.
void expect_round_trip(const std::vector<UsageEvent>& events, const std::vector<int64_t>& ids,
                       int64_t base_at_ms) {
  const std::string blob = encode_usage_events(events, ids, base_at_ms);
  Result<std::vector<UsageEvent>> decoded = decode(blob, base_at_ms);
  ASSERT_TRUE(decoded) << decoded.error().message;
  ASSERT_EQ(decoded->size(), events.size());
  for (size_t i = 0; i < events.size(); ++i) {
    SCOPED_TRACE("event " + std::to_string(i));
    expect_same((*decoded)[i], events[i], ids[i]);
  }
  EXPECT_EQ(encode_usage_events(*decoded, ids, base_at_ms), blob);
}

TEST(UsageEventCodecTest, RoundTripsEveryFieldAndId) {
  std::vector<UsageEvent> events;
  std::vector<int64_t> ids;
  const int64_t base = 1'764'860'400'000;
  for (int i = 0; i < 50; ++i) {
    // Times before and after the base, out of order; ids with gaps.
    events.push_back(full_event(base + (i * 7919) % 1000 - 300, i));
    ids.push_back(1000 + i * i);
  }
  expect_round_trip(events, ids, base);
  expect_round_trip({}, {}, base);
  expect_round_trip({full_event(base, 1)}, {1}, base);
}

TEST(UsageEventCodecTest, RoundTripsExtremeValues) {
  UsageEvent highest;
  highest.at = from_unix_ms(kMax);
  highest.status = INT_MAX;
  highest.upstream_status = INT_MAX;
  highest.forwarded = true;
  highest.streaming = true;
  highest.usage = Usage{.requests = kMax,
                        .input_tokens = kMax,
                        .cached_input_tokens = kMax,
                        .output_tokens = kMax,
                        .reasoning_tokens = kMax,
                        .unmetered_tokens = kMax,
                        .spend = Money::from_nanos(kMax)};
  highest.latency = highest.upstream_latency = highest.time_to_first_byte =
      std::chrono::microseconds(kMax);
  highest.key_id = std::string(1000, 'k');
  highest.model = std::string("\0\xff\xfe not UTF-8 \x80", 16);
  UsageEvent lowest;
  lowest.at = from_unix_ms(kMin);
  lowest.status = INT_MIN;
  lowest.upstream_status = INT_MIN;
  lowest.usage = Usage{.requests = kMin,
                       .input_tokens = kMin,
                       .cached_input_tokens = kMin,
                       .output_tokens = kMin,
                       .reasoning_tokens = kMin,
                       .unmetered_tokens = kMin,
                       .spend = Money::from_nanos(kMin)};
  lowest.latency = lowest.upstream_latency = lowest.time_to_first_byte =
      std::chrono::microseconds(kMin);
  lowest.provider = std::string(1000, 'p');
  lowest.client_address = std::string(1000, 'k');  // the same bytes as highest's key_id
  const std::vector<UsageEvent> events = {highest, lowest, UsageEvent{}, highest};
  for (int64_t base : {kMin, kMax, int64_t{0}, int64_t{-1}}) {
    SCOPED_TRACE("base " + std::to_string(base));
    expect_round_trip(events, {1, 2, kMax - 1, kMax}, base);
  }
}

TEST(UsageEventCodecTest, RepeatedStringsAreStoredOnce) {
  std::vector<UsageEvent> events(1000, full_event(0, 0));
  std::vector<int64_t> ids;
  for (int64_t id = 1; id <= 1000; ++id) ids.push_back(id);
  for (size_t i = 0; i < events.size(); i += 2) events[i].model = "another model";
  const std::string blob = encode_usage_events(events, ids, 0);
  // Spelled out, the strings alone would take about 50 bytes an event; referenced, 5 bytes.
  EXPECT_LT(blob.size(), 1000u * 30) << blob.size();
  expect_round_trip(events, ids, 0);
}

// --- Corruption --------------------------------------------------------------------------------

std::string varint(uint64_t value) {
  std::string out;
  while (value >= 0x80) {
    out.push_back(static_cast<char>(value | 0x80));
    value >>= 7;
  }
  out.push_back(static_cast<char>(value));
  return out;
}

// The bytes of one event spelled out by hand (format in usage_event_codec.h): the given id delta,
// status and flags, zero figures, and the string bytes `strings` (5 strings).
std::string event_bytes(uint64_t id_delta, int64_t status, uint8_t flags,
                        const std::string& strings) {
  std::string out = varint(id_delta) + varint(0);  // at = base
  out += varint((static_cast<uint64_t>(status) << 1) ^ static_cast<uint64_t>(status >> 63));
  out += varint(0);  // upstream_status
  out.push_back(static_cast<char>(flags));
  out += std::string(10, '\0');  // the ten figures
  return out + strings;
}

// Five empty strings: the first spelled out (0, length 0), the others referencing it.
const std::string kEmptyStrings = std::string("\0\0\1\1\1\1", 6);

std::string block(uint64_t count, const std::string& events) {
  return std::string(1, '\1') + varint(count) + events;
}

void expect_corrupt(std::string_view blob, std::string_view fault) {
  Result<std::vector<UsageEvent>> decoded = decode(blob, 0);
  ASSERT_FALSE(decoded) << "decoded " << decoded->size() << " events; expected: " << fault;
  EXPECT_EQ(decoded.error().code, ErrorCode::kInternal);
  EXPECT_NE(decoded.error().message.find("usage events block"), std::string::npos)
      << decoded.error().message;
  EXPECT_NE(decoded.error().message.find(fault), std::string::npos) << decoded.error().message;
}

TEST(UsageEventCodecTest, HandWrittenBlocksDecode) {
  // The corruption cases below change one thing of these valid blocks.
  Result<std::vector<UsageEvent>> one = decode(block(1, event_bytes(7, 200, 3, kEmptyStrings)), 5);
  ASSERT_TRUE(one) << one.error().message;
  ASSERT_EQ(one->size(), 1u);
  EXPECT_EQ((*one)[0].id, 7);
  EXPECT_EQ((*one)[0].at, from_unix_ms(5));
  EXPECT_EQ((*one)[0].status, 200);
  EXPECT_TRUE((*one)[0].forwarded);
  EXPECT_TRUE((*one)[0].streaming);
  const std::string strings = std::string("\0\2ab\0\2cd\1\2\0\0", 12);  // ab cd ab cd ""
  Result<std::vector<UsageEvent>> two = decode(
      block(2, event_bytes(1, 0, 0, strings) + event_bytes(1, 0, 0, std::string("\1\2\1\2\3"))), 0);
  ASSERT_TRUE(two) << two.error().message;
  ASSERT_EQ(two->size(), 2u);
  EXPECT_EQ((*two)[1].id, 2);
  EXPECT_EQ((*two)[1].key_id, "ab");
  EXPECT_EQ((*two)[1].provider, "cd");
  EXPECT_EQ((*two)[1].client_address, "");
}

TEST(UsageEventCodecTest, CorruptBlocksAreErrors) {
  const std::string event = event_bytes(1, 0, 0, kEmptyStrings);
  expect_corrupt("", "truncated");
  expect_corrupt(std::string("\2") + varint(0), "unknown format version 2");
  expect_corrupt(std::string("\0", 1) + varint(0), "unknown format version 0");
  expect_corrupt(block(1, event) + "x", "trailing bytes");
  expect_corrupt(block(0, "") + std::string(1, '\0'), "trailing bytes");
  expect_corrupt(block(2, event), "event count larger than the block can hold");
  expect_corrupt(block(uint64_t{1} << 62, event), "event count larger than the block can hold");
  // A count of 1 as two bytes, and an id delta of 1 as three.
  expect_corrupt(std::string("\1\x81\0", 3) + event, "varint longer than needed");
  expect_corrupt(block(1, std::string("\x81\x80\0", 3) + event.substr(1)),
                 "varint longer than needed");
  // Ten bytes that would need bit 64, and eleven bytes.
  expect_corrupt(block(1, std::string(9, '\xff') + "\x02" + event.substr(1)),
                 "varint longer than 64 bits");
  expect_corrupt(block(1, std::string(10, '\x80') + "\x01" + event.substr(1)),
                 "varint longer than 64 bits");
  expect_corrupt(block(1, event_bytes(0, 0, 0, kEmptyStrings)), "ids do not increase");
  expect_corrupt(block(2, event_bytes(static_cast<uint64_t>(kMax), 0, 0, kEmptyStrings) +
                              event_bytes(1, 0, 0, std::string("\1\1\1\1\1"))),
                 "id out of range");
  expect_corrupt(block(1, event_bytes(1, int64_t{INT_MAX} + 1, 0, kEmptyStrings)),
                 "status out of range");
  expect_corrupt(block(1, event_bytes(1, int64_t{INT_MIN} - 1, 0, kEmptyStrings)),
                 "status out of range");
  expect_corrupt(block(1, event_bytes(1, 0, 4, kEmptyStrings)), "unknown flags");
  expect_corrupt(block(1, event_bytes(1, 0, 0, std::string("\0\x10\1\1\1\1", 6))),
                 "string length past the end");
  expect_corrupt(block(1, event_bytes(1, 0, 0, std::string("\0\0\2\1\1\1", 6))),
                 "string reference past the table");
  expect_corrupt(block(1, event_bytes(1, 0, 0, std::string("\1\1\1\1\1"))),
                 "string reference past the table");
  expect_corrupt(block(1, event_bytes(1, 0, 0, std::string("\0\0\0\0\1\1\1", 7))),
                 "string spelled out again instead of referenced");
  // Every proper prefix of a valid block is truncated.
  const std::string valid =
      encode_usage_events(std::vector<UsageEvent>{full_event(1000, 1), full_event(900, 2)},
                          std::vector<int64_t>{3, 9}, 950);
  for (size_t size = 0; size < valid.size(); ++size) {
    SCOPED_TRACE("prefix of " + std::to_string(size) + " bytes");
    expect_corrupt(std::string_view(valid).substr(0, size), "");
  }
}

TEST(UsageEventCodecTest, EveryByteChangeFailsCleanlyOrDecodesCanonically) {
  const std::vector<UsageEvent> events = {full_event(1000, 1), full_event(-5, 2),
                                          full_event(kMax, 4)};
  const std::string valid = encode_usage_events(events, std::vector<int64_t>{3, 9, 10}, 950);
  for (size_t at = 0; at < valid.size(); ++at) {
    for (int byte : {0x00, 0x01, 0x7f, 0x80, 0xff, valid[at] ^ 0x01}) {
      std::string changed = valid;
      changed[at] = static_cast<char>(byte);
      Result<std::vector<UsageEvent>> decoded = decode(changed, 950);
      if (!decoded) {
        EXPECT_EQ(decoded.error().code, ErrorCode::kInternal);
        continue;
      }
      std::vector<int64_t> ids;
      for (const UsageEvent& event : *decoded) ids.push_back(event.id);
      EXPECT_EQ(encode_usage_events(*decoded, ids, 950), changed) << "byte " << at;
    }
  }
}

TEST(UsageEventCodecTest, DecodingReusesTheVectorItIsGiven) {
  std::vector<UsageEvent> events(5, full_event(0, 0));
  const std::string blob =
      encode_usage_events(std::vector<UsageEvent>{full_event(7, 3)}, std::vector<int64_t>{42}, 0);
  ASSERT_TRUE(decode_usage_events(blob, 0, events));
  ASSERT_EQ(events.size(), 1u);
  expect_same(events[0], full_event(7, 3), 42);
}

}  // namespace
}  // namespace till::sqlite
