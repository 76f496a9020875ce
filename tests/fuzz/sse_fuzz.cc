// libFuzzer target for the SSE framing (src/provider/sse_parser.h): it sees the raw bytes of every
// streamed provider response.
//
// Input: byte 0 picks the event size cap, byte 1 seeds how the stream is cut, the rest is the
// stream. Beyond "no crash, no sanitizer report", every input checks:
//  1. Cutting the stream anywhere (random pieces of 0-9 bytes, steered by byte 1) yields
//     the events and the drop count of feeding it whole.
//  2. With the default cap (larger than any input), the events are those of a direct,
//     non-incremental reading of the WHATWG algorithm (reference() below); nothing is dropped.
//  3. No event carries more data or type bytes than the cap.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "provider/sse_parser.h"

namespace {

using till::SseEvent;
using till::SseParser;

[[noreturn]] void violated(const char* what, int line) {
  std::fprintf(stderr, "sse_fuzz: invariant violated at line %d: %s\n", line, what);
  std::abort();
}

#define FUZZ_CHECK(cond)                    \
  do {                                      \
    if (!(cond)) violated(#cond, __LINE__); \
  } while (0)

struct Event {
  std::string type, data, id;
  bool operator==(const Event&) const = default;
};

struct Outcome {
  std::vector<Event> events;
  uint64_t dropped = 0;
  bool operator==(const Outcome&) const = default;
};

Outcome run(const std::vector<std::string_view>& chunks, size_t cap) {
  Outcome out;
  SseParser parser(
      [&](const SseEvent& e) {
        out.events.push_back({std::string(e.type), std::string(e.data), std::string(e.id)});
      },
      cap);
  for (std::string_view chunk : chunks) parser.feed(chunk);
  parser.finish();
  out.dropped = parser.dropped_events();
  return out;
}

// The spec's algorithm over the whole stream at once.
std::vector<Event> reference(std::string_view s) {
  if (s.starts_with("\xEF\xBB\xBF")) s.remove_prefix(3);
  std::vector<Event> events;
  std::string data, type, id;
  bool has_data = false;
  size_t i = 0;
  for (;;) {
    size_t end = s.find_first_of("\r\n", i);
    if (end == std::string_view::npos) break;  // an unterminated last line never dispatches
    std::string_view line = s.substr(i, end - i);
    i = end + 1;
    if (s[end] == '\r' && i < s.size() && s[i] == '\n') ++i;
    if (line.empty()) {
      if (has_data) {
        data.pop_back();  // the trailing "\n"
        events.push_back({type.empty() ? "message" : type, data, id});
      }
      data.clear();
      type.clear();
      has_data = false;
      continue;
    }
    if (line[0] == ':') continue;
    std::string_view field = line, value;
    if (size_t colon = line.find(':'); colon != std::string_view::npos) {
      field = line.substr(0, colon);
      value = line.substr(colon + 1);
      if (!value.empty() && value[0] == ' ') value.remove_prefix(1);
    }
    if (field == "data") {
      data.append(value);
      data += '\n';
      has_data = true;
    } else if (field == "event") {
      type.assign(value);
    } else if (field == "id" && value.find('\0') == std::string_view::npos) {
      id.assign(value);
    }
  }
  return events;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  static constexpr size_t kCaps[] = {1, 2, 5, 16, 64, SseParser::kDefaultMaxEventSize};
  const size_t cap = kCaps[data[0] % std::size(kCaps)];
  std::minstd_rand rng(data[1]);
  std::string_view stream(reinterpret_cast<const char*>(data + 2), size - 2);

  const Outcome whole = run({stream}, cap);
  for (const Event& e : whole.events) {
    FUZZ_CHECK(e.data.size() <= cap);
    FUZZ_CHECK(e.type.size() <= cap || e.type == "message");  // the default type costs nothing
  }

  std::vector<std::string_view> pieces;
  for (size_t at = 0; at < stream.size();) {
    size_t n = std::uniform_int_distribution<size_t>(0, 9)(rng);
    n = std::min(n, stream.size() - at);
    pieces.push_back(stream.substr(at, n));
    at += n;
  }
  FUZZ_CHECK(run(pieces, cap) == whole);

  if (cap == SseParser::kDefaultMaxEventSize) {  // larger than any input
    FUZZ_CHECK(whole.dropped == 0);
    FUZZ_CHECK(whole.events == reference(stream));
  }
  return 0;
}
