#include "store/sqlite/usage_event_codec.h"

#include <array>
#include <chrono>
#include <climits>
#include <cstddef>
#include <unordered_map>
#include <unordered_set>

namespace till::sqlite {
namespace {

// The fewest bytes an event takes: 14 one-byte varints, the flags byte and 5 one-byte strings.
constexpr size_t kMinEventBytes = 20;
// The most bytes an event's figures take: 14 varints of at most 10 bytes and the flags byte.
constexpr size_t kMaxEventFigureBytes = 14 * 10 + 1;
constexpr size_t kStringsPerEvent = 5;

constexpr uint8_t kForwarded = 1;
constexpr uint8_t kStreaming = 2;

uint64_t zigzag(int64_t value) {
  return (static_cast<uint64_t>(value) << 1) ^ static_cast<uint64_t>(value >> 63);
}

int64_t unzigzag(uint64_t value) {
  return static_cast<int64_t>(value >> 1) ^ -static_cast<int64_t>(value & 1);
}

// at - base and base + delta modulo 2^64 (two's complement), so that no time overflows.
int64_t time_delta(int64_t at, int64_t base) {
  return static_cast<int64_t>(static_cast<uint64_t>(at) - static_cast<uint64_t>(base));
}
int64_t time_at(int64_t base, int64_t delta) {
  return static_cast<int64_t>(static_cast<uint64_t>(base) + static_cast<uint64_t>(delta));
}

// Writes `value` at `out` and returns the end.
char* put_varint(char* out, uint64_t value) {
  while (value >= 0x80) {
    *out++ = static_cast<char>(value | 0x80);
    value >>= 7;
  }
  *out++ = static_cast<char>(value);
  return out;
}

void append_varint(std::string& out, uint64_t value) {
  char bytes[10];
  out.append(bytes, put_varint(bytes, value));
}

// Writes the strings of a block: each new one spelled out and added to the block's table, each
// repeated one as its table entry. A field mostly repeats its previous event's string, so each
// field remembers its last one and looks the table up only when it changes.
class StringTableWriter {
 public:
  // REQUIRES: `text` outlives the writer.
  void append(std::string& out, size_t field, std::string_view text) {
    Last& last = last_[field];
    if (last.ref != 0 && last.text == text) {
      append_varint(out, last.ref);
      return;
    }
    auto [entry, added] = refs_.try_emplace(text, refs_.size() + 1);
    last = Last{text, entry->second};
    if (added) {
      out.push_back(0);
      append_varint(out, text.size());
      out.append(text);
    } else {
      append_varint(out, entry->second);
    }
  }

 private:
  struct Last {
    std::string_view text;
    uint64_t ref = 0;  // 0: none yet
  };
  std::array<Last, kStringsPerEvent> last_;
  std::unordered_map<std::string_view, uint64_t> refs_;
};

// Reads a block front to back. Each read returns false on a fault and remembers the first one
// (what and where) for the error message.
class BlockReader {
 public:
  explicit BlockReader(std::string_view blob) : blob_(blob) {}

  size_t offset() const { return offset_; }
  size_t remaining() const { return blob_.size() - offset_; }

  bool byte(uint8_t& value) {
    if (offset_ == blob_.size()) return fault("truncated", offset_);
    value = static_cast<uint8_t>(blob_[offset_++]);
    return true;
  }

  bool varint(uint64_t& value) {
    const size_t start = offset_;
    uint64_t result = 0;
    for (int shift = 0;; shift += 7) {
      if (offset_ == blob_.size()) return fault("truncated varint", start);
      const uint8_t byte = static_cast<uint8_t>(blob_[offset_++]);
      // The tenth byte holds bit 63 only.
      if (shift == 63 && byte > 1) return fault("varint longer than 64 bits", start);
      result |= static_cast<uint64_t>(byte & 0x7f) << shift;
      if ((byte & 0x80) == 0) {
        // A last byte of 0 after others adds nothing: a longer encoding than the encoder writes.
        if (byte == 0 && shift > 0) return fault("varint longer than needed", start);
        value = result;
        return true;
      }
    }
  }

  bool signed_varint(int64_t& value) {
    uint64_t encoded = 0;
    if (!varint(encoded)) return false;
    value = unzigzag(encoded);
    return true;
  }

  bool int_varint(int& value) {
    const size_t start = offset_;
    int64_t wide = 0;
    if (!signed_varint(wide)) return false;
    if (wide < INT_MIN || wide > INT_MAX) return fault("status out of range", start);
    value = static_cast<int>(wide);
    return true;
  }

  bool microseconds(std::chrono::microseconds& value) {
    int64_t count = 0;
    if (!signed_varint(count)) return false;
    value = std::chrono::microseconds(count);
    return true;
  }

  bool string(std::string& value) {
    const size_t start = offset_;
    uint64_t ref = 0;
    if (!varint(ref)) return false;
    if (ref != 0) {
      if (ref > table_.size()) return fault("string reference past the table", start);
      value.assign(table_[ref - 1]);
      return true;
    }
    uint64_t size = 0;
    if (!varint(size)) return false;
    if (size > remaining()) return fault("string length past the end", start);
    const std::string_view text = blob_.substr(offset_, static_cast<size_t>(size));
    offset_ += static_cast<size_t>(size);
    if (!spelled_out_.insert(text).second) {
      return fault("string spelled out again instead of referenced", start);
    }
    table_.push_back(text);
    value.assign(text);
    return true;
  }

  bool fault(const char* what, size_t at) {
    if (fault_ == nullptr) {
      fault_ = what;
      fault_at_ = at;
    }
    return false;
  }

  Error error() const {
    return Error::internal(std::string("corrupt usage events block: ") + fault_ + " at byte " +
                           std::to_string(fault_at_) + " of " + std::to_string(blob_.size()));
  }

 private:
  std::string_view blob_;
  size_t offset_ = 0;
  std::vector<std::string_view> table_;  // the block's strings so far, into blob_
  std::unordered_set<std::string_view> spelled_out_;
  const char* fault_ = nullptr;
  size_t fault_at_ = 0;
};

// One event into `event`, its id following `previous_id`.
bool read_event(BlockReader& in, int64_t base_at_ms, int64_t previous_id, UsageEvent& event) {
  const size_t id_offset = in.offset();
  uint64_t id_delta = 0;
  if (!in.varint(id_delta)) return false;
  if (id_delta == 0) return in.fault("ids do not increase", id_offset);
  if (id_delta > static_cast<uint64_t>(INT64_MAX - previous_id)) {
    return in.fault("id out of range", id_offset);
  }
  event.id = previous_id + static_cast<int64_t>(id_delta);
  int64_t at_delta = 0;
  if (!in.signed_varint(at_delta)) return false;
  event.at = from_unix_ms(time_at(base_at_ms, at_delta));
  if (!in.int_varint(event.status) || !in.int_varint(event.upstream_status)) return false;
  const size_t flags_offset = in.offset();
  uint8_t flags = 0;
  if (!in.byte(flags)) return false;
  if ((flags & ~(kForwarded | kStreaming)) != 0) return in.fault("unknown flags", flags_offset);
  event.forwarded = (flags & kForwarded) != 0;
  event.streaming = (flags & kStreaming) != 0;
  Usage& usage = event.usage;
  int64_t spend_nanos = 0;
  if (!in.signed_varint(usage.requests) || !in.signed_varint(usage.input_tokens) ||
      !in.signed_varint(usage.cached_input_tokens) || !in.signed_varint(usage.output_tokens) ||
      !in.signed_varint(usage.reasoning_tokens) || !in.signed_varint(usage.unmetered_tokens) ||
      !in.signed_varint(spend_nanos)) {
    return false;
  }
  usage.spend = Money::from_nanos(spend_nanos);
  return in.microseconds(event.latency) && in.microseconds(event.upstream_latency) &&
         in.microseconds(event.time_to_first_byte) && in.string(event.key_id) &&
         in.string(event.provider) && in.string(event.model) && in.string(event.error_code) &&
         in.string(event.client_address);
}

}  // namespace

std::string encode_usage_events(std::span<const UsageEvent> events, std::span<const int64_t> ids,
                                int64_t base_at_ms) {
  std::string out;
  // Enough for typical events: a few bytes per figure, most strings referenced.
  out.reserve(16 + events.size() * 32);
  out.push_back(static_cast<char>(kUsageBlockVersion));
  append_varint(out, events.size());
  StringTableWriter strings;
  int64_t previous_id = 0;
  for (size_t i = 0; i < events.size(); ++i) {
    const UsageEvent& event = events[i];
    const Usage& usage = event.usage;
    char figures[kMaxEventFigureBytes];
    char* end = put_varint(figures, static_cast<uint64_t>(ids[i] - previous_id));
    previous_id = ids[i];
    end = put_varint(end, zigzag(time_delta(to_unix_ms(event.at), base_at_ms)));
    end = put_varint(end, zigzag(event.status));
    end = put_varint(end, zigzag(event.upstream_status));
    *end++ =
        static_cast<char>((event.forwarded ? kForwarded : 0) | (event.streaming ? kStreaming : 0));
    for (int64_t figure : {usage.requests, usage.input_tokens, usage.cached_input_tokens,
                           usage.output_tokens, usage.reasoning_tokens, usage.unmetered_tokens,
                           usage.spend.nanos(), static_cast<int64_t>(event.latency.count()),
                           static_cast<int64_t>(event.upstream_latency.count()),
                           static_cast<int64_t>(event.time_to_first_byte.count())}) {
      end = put_varint(end, zigzag(figure));
    }
    out.append(figures, end);
    size_t field = 0;
    for (const std::string* text :
         {&event.key_id, &event.provider, &event.model, &event.error_code, &event.client_address}) {
      strings.append(out, field++, *text);
    }
  }
  return out;
}

Result<void> decode_usage_events(std::string_view blob, int64_t base_at_ms,
                                 std::vector<UsageEvent>& events) {
  BlockReader in(blob);
  uint8_t version = 0;
  if (!in.byte(version)) return fail(in.error());
  if (version != kUsageBlockVersion) {
    return fail(Error::internal("corrupt usage events block: unknown format version " +
                                std::to_string(version)));
  }
  uint64_t count = 0;
  if (!in.varint(count)) return fail(in.error());
  // Checked before allocating: a damaged count must not ask for more memory than the block has.
  if (count > in.remaining() / kMinEventBytes) {
    in.fault("event count larger than the block can hold", 1);
    return fail(in.error());
  }
  events.resize(static_cast<size_t>(count));
  int64_t previous_id = 0;
  for (UsageEvent& event : events) {
    if (!read_event(in, base_at_ms, previous_id, event)) return fail(in.error());
    event.body_hash = 0;
    previous_id = event.id;
  }
  if (in.remaining() != 0) {
    in.fault("trailing bytes", in.offset());
    return fail(in.error());
  }
  return {};
}

}  // namespace till::sqlite
