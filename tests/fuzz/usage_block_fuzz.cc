// libFuzzer target for the usage event block decoder (src/store/sqlite/usage_event_codec.h): the
// store decodes the blocks it reads from the usage database, which a damaged disk, a stray tool
// or a bug may have changed.
//
// The first 8 bytes of an input are the block's base time (little-endian), the rest the block.
// Beyond "no crash, no sanitizer report", every input checks these invariants:
//  1. A refusal is kInternal, "corrupt usage events block: …".
//  2. Accepted events have positive, strictly increasing ids and a zero body hash.
//  3. An accepted block is canonical: its events, re-encoded with their ids and the same base,
//     give the same bytes; decoding those again gives the same events.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string_view>
#include <vector>

#include "store/sqlite/usage_event_codec.h"

namespace {

using namespace till;

[[noreturn]] void violated(const char* what, int line) {
  std::fprintf(stderr, "usage_block_fuzz: invariant violated at line %d: %s\n", line, what);
  std::abort();
}

#define FUZZ_CHECK(cond)                    \
  do {                                      \
    if (!(cond)) violated(#cond, __LINE__); \
  } while (0)

bool same_events(const std::vector<UsageEvent>& a, const std::vector<UsageEvent>& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    const UsageEvent& x = a[i];
    const UsageEvent& y = b[i];
    if (x.id != y.id || x.at != y.at || x.key_id != y.key_id || x.provider != y.provider ||
        x.model != y.model || x.status != y.status || x.error_code != y.error_code ||
        x.forwarded != y.forwarded || x.streaming != y.streaming ||
        x.upstream_status != y.upstream_status || x.usage != y.usage || x.latency != y.latency ||
        x.upstream_latency != y.upstream_latency || x.time_to_first_byte != y.time_to_first_byte ||
        x.client_address != y.client_address || x.body_hash != y.body_hash) {
      return false;
    }
  }
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 8) return 0;
  uint64_t base_bits = 0;
  for (int i = 7; i >= 0; --i) base_bits = base_bits << 8 | data[i];
  const int64_t base = static_cast<int64_t>(base_bits);
  const std::string_view blob(reinterpret_cast<const char*>(data) + 8, size - 8);

  std::vector<UsageEvent> events;
  Result<void> decoded = sqlite::decode_usage_events(blob, base, events);
  if (!decoded) {
    FUZZ_CHECK(decoded.error().code == ErrorCode::kInternal);
    FUZZ_CHECK(decoded.error().message.starts_with("corrupt usage events block: "));
    return 0;
  }
  std::vector<int64_t> ids;
  for (const UsageEvent& event : events) {
    FUZZ_CHECK(event.id > (ids.empty() ? 0 : ids.back()));
    FUZZ_CHECK(event.body_hash == 0);
    ids.push_back(event.id);
  }
  const std::string encoded = sqlite::encode_usage_events(events, ids, base);
  FUZZ_CHECK(encoded == blob);
  std::vector<UsageEvent> again;
  FUZZ_CHECK(sqlite::decode_usage_events(encoded, base, again).has_value());
  FUZZ_CHECK(same_events(again, events));
  return 0;
}
