// Usage event blocks: many usage events as one compact byte string, the unit in which the SQLite
// store keeps them (one row of usage_event_blocks per block; see sqlite_usage_events.cc). Part of
// the SQLite backend of Store; pure functions, no I/O.
//
// Format, version 1. Every integer is a LEB128 varint; signed figures are zigzag-encoded first,
// so that small negative numbers stay short:
//
//   version byte (1), number of events,
//   then per event:
//     id - the previous event's id (for the first event: its id, i.e. relative to 0),
//     at_ms - base_at_ms (zigzag, modulo 2^64: any time round-trips against any base),
//     status, upstream_status (zigzag),
//     flags (bit 0 forwarded, bit 1 streaming; no other bit),
//     requests, input_tokens, cached_input_tokens, output_tokens, reasoning_tokens,
//     unmetered_tokens, spend_nanos, latency_us, upstream_latency_us, ttfb_us (zigzag),
//     key_id, provider, model, error_code, client_address, each as a string (below).
//
// Events appended together mostly repeat a few keys, models and addresses, and strings are most
// of an event's bytes, so a block has a table of the strings it holds. A string is a varint:
// 0 for a string not in the table yet, followed by its byte length and its bytes (it becomes the
// table's next entry), or n >= 1 for the table's nth entry.
//
// The base time is not stored: the caller keeps it beside the block (the store uses the block's
// earliest time, so deltas are small) and passes it to both functions. Ids are positive and
// strictly increasing within a block. The body hash is never stored (it is in memory only).
//
// Decoding is strict and canonical: an unknown version, a truncated event, a varint longer than
// needed or than 64 bits, a length past the end, a value out of its type's range, flags with
// unknown bits, ids that do not increase, a reference past the string table, a string spelled out
// again instead of referenced, or bytes after the last event are an error, never undefined
// behaviour. So every block that decodes re-encodes to exactly the same bytes.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "till/error.h"
#include "till/usage_event.h"

namespace till::sqlite {

inline constexpr uint8_t kUsageBlockVersion = 1;

// The block of `events` (their own ids and body hashes are ignored) with ids `ids`, times relative
// to `base_at_ms`. REQUIRES: ids.size() == events.size(); ids positive and strictly increasing.
std::string encode_usage_events(std::span<const UsageEvent> events, std::span<const int64_t> ids,
                                int64_t base_at_ms);

// Replaces the contents of `events` by the events of a block encoded with `base_at_ms`, in block
// order, with their ids (body_hash 0). It reuses the storage of the events already there, so that
// a reader decoding block after block into one vector allocates little. A block that is not one
// encode_usage_events wrote is kInternal, "corrupt usage events block: …" with the fault and its
// byte offset (the store's data is damaged); `events` then holds unspecified events.
Result<void> decode_usage_events(std::string_view blob, int64_t base_at_ms,
                                 std::vector<UsageEvent>& events);

}  // namespace till::sqlite
