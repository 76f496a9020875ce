#include "provider/sse_parser.h"

#include <gtest/gtest.h>

#include <random>
#include <string>
#include <string_view>
#include <vector>

namespace till {
namespace {

using namespace std::string_view_literals;

struct Event {
  std::string type;
  std::string data;
  std::string id;
  bool operator==(const Event&) const = default;
};

std::ostream& operator<<(std::ostream& os, const Event& e) {
  return os << "{type=" << e.type << " data=" << testing::PrintToString(e.data) << " id=" << e.id
            << "}";
}

// Parses `chunks` in order with one parser and returns the events.
std::vector<Event> parse_chunks(const std::vector<std::string_view>& chunks,
                                size_t max_event_size = SseParser::kDefaultMaxEventSize,
                                uint64_t* dropped = nullptr) {
  std::vector<Event> events;
  SseParser parser(
      [&](const SseEvent& e) {
        events.push_back({std::string(e.type), std::string(e.data), std::string(e.id)});
      },
      max_event_size);
  for (std::string_view chunk : chunks) parser.feed(chunk);
  parser.finish();
  if (dropped) *dropped = parser.dropped_events();
  return events;
}

std::vector<Event> parse(std::string_view stream) { return parse_chunks({stream}); }

// Checks that every way of cutting `stream` yields the events of feeding it whole: at every
// single split point, byte by byte, and in random splits.
void expect_split_invariant(std::string_view stream, size_t max_event_size,
                            const std::vector<Event>& expected) {
  uint64_t whole_dropped = 0;
  ASSERT_EQ(parse_chunks({stream}, max_event_size, &whole_dropped), expected);
  for (size_t i = 0; i <= stream.size(); ++i) {
    uint64_t dropped = 0;
    ASSERT_EQ(parse_chunks({stream.substr(0, i), stream.substr(i)}, max_event_size, &dropped),
              expected)
        << "split at " << i;
    ASSERT_EQ(dropped, whole_dropped) << "split at " << i;
  }
  std::vector<std::string_view> bytes;
  for (size_t i = 0; i < stream.size(); ++i) bytes.push_back(stream.substr(i, 1));
  ASSERT_EQ(parse_chunks(bytes, max_event_size), expected) << "byte by byte";
  std::mt19937 rng(12345);
  for (int round = 0; round < 200; ++round) {
    std::vector<std::string_view> chunks;
    size_t at = 0;
    while (at < stream.size()) {
      size_t n = std::uniform_int_distribution<size_t>(0, 12)(rng);
      chunks.push_back(stream.substr(at, n));
      at += std::min(n, stream.size() - at);
    }
    ASSERT_EQ(parse_chunks(chunks, max_event_size), expected) << "random round " << round;
  }
}

TEST(SseParser, DispatchesDataOnBlankLine) {
  EXPECT_EQ(parse("data: hello\n\n"), (std::vector<Event>{{"message", "hello", ""}}));
  EXPECT_EQ(parse("data: hello\n"), std::vector<Event>{}) << "unterminated event is discarded";
  EXPECT_EQ(parse("data: hello"), std::vector<Event>{});
}

TEST(SseParser, ReadsFieldsPerSpec) {
  EXPECT_EQ(parse("event: delta\ndata: a\ndata: b\n\n"),
            (std::vector<Event>{{"delta", "a\nb", ""}}));
  EXPECT_EQ(parse("data:x\n\n"), (std::vector<Event>{{"message", "x", ""}}))
      << "the space after the colon is optional";
  EXPECT_EQ(parse("data:  x \n\n"), (std::vector<Event>{{"message", " x ", ""}}))
      << "only one leading space is stripped";
  EXPECT_EQ(parse("data\n\n"), (std::vector<Event>{{"message", "", ""}}))
      << "a field without a colon has an empty value";
  EXPECT_EQ(parse("data\ndata\n\n"), (std::vector<Event>{{"message", "\n", ""}}));
  EXPECT_EQ(parse("data: a:b\n\n"), (std::vector<Event>{{"message", "a:b", ""}}));
  EXPECT_EQ(parse(": comment\ndata: x\n: another\n\n"), (std::vector<Event>{{"message", "x", ""}}));
  EXPECT_EQ(parse("retry: 10\nfoo: bar\nDATA: y\ndata: x\n\n"),
            (std::vector<Event>{{"message", "x", ""}}))
      << "field names are case-sensitive; unknown fields are ignored";
  EXPECT_EQ(parse("event: x\n\n"), std::vector<Event>{}) << "no data, no event";
  EXPECT_EQ(parse("event: x\n\ndata: d\n\n"), (std::vector<Event>{{"message", "d", ""}}))
      << "the type resets after a dataless event";
  EXPECT_EQ(parse("event:\ndata: d\n\n"), (std::vector<Event>{{"message", "d", ""}}));
}

TEST(SseParser, KeepsLastEventIdAcrossEvents) {
  EXPECT_EQ(parse("id: 7\ndata: a\n\ndata: b\n\nid\ndata: c\n\nid: x\0y\ndata: d\n\n"sv),
            (std::vector<Event>{{"message", "a", "7"},
                                {"message", "b", "7"},
                                {"message", "c", ""},
                                {"message", "d", ""}}));
}

TEST(SseParser, AcceptsEveryLineEnding) {
  const std::vector<Event> expected{{"e", "1\n2", ""}, {"message", "3", ""}};
  EXPECT_EQ(parse("event: e\ndata: 1\ndata: 2\n\ndata: 3\n\n"), expected);
  EXPECT_EQ(parse("event: e\r\ndata: 1\r\ndata: 2\r\n\r\ndata: 3\r\n\r\n"), expected);
  EXPECT_EQ(parse("event: e\rdata: 1\rdata: 2\r\rdata: 3\r\r"), expected);
  EXPECT_EQ(parse("event: e\r\ndata: 1\rdata: 2\n\r\ndata: 3\n\r"), expected);
}

TEST(SseParser, CarriageReturnThenLineFeedAcrossChunksIsOneLineEnd) {
  // Were "\r" | "\n" two line ends, the blank line between them would dispatch "a" alone.
  EXPECT_EQ(parse_chunks({"data: a\r", "\ndata: b\r", "\n\r", "\n"}),
            (std::vector<Event>{{"message", "a\nb", ""}}));
  EXPECT_EQ(parse_chunks({"data: a\r", "", "\ndata: b\r\n\r\n"}),
            (std::vector<Event>{{"message", "a\nb", ""}}))
      << "an empty chunk in between changes nothing";
}

TEST(SseParser, IgnoresOneLeadingBomOnly) {
  EXPECT_EQ(parse("\xEF\xBB\xBF"
                  "data: x\n\n"),
            (std::vector<Event>{{"message", "x", ""}}));
  EXPECT_EQ(parse("\xEF\xBB\xBF\xEF\xBB\xBF"
                  "data: x\n\ndata: y\n\n"),
            (std::vector<Event>{{"message", "y", ""}}))
      << "a second BOM is part of the first field name";
  EXPECT_EQ(parse("\xEF\xBB"
                  "data: x\n\ndata: y\n\n"),
            (std::vector<Event>{{"message", "y", ""}}))
      << "a partial BOM is data";
  EXPECT_EQ(parse_chunks({"\xEF", "\xBB", "\xBF", "data: x\n\n"}),
            (std::vector<Event>{{"message", "x", ""}}));
}

TEST(SseParser, EveryCutOfARealStreamGivesTheSameEvents) {
  // An Anthropic-shaped stream with a BOM, comments, CRLF, CR and LF line ends, multi-line data.
  const std::string stream =
      "\xEF\xBB\xBF: keep-alive\r\n"
      "event: message_start\r\n"
      "data: {\"type\":\"message_start\",\"message\":{\"usage\":{\"input_tokens\":25}}}\r\n\r\n"
      "event: content_block_delta\n"
      "data: {\"type\":\"content_block_delta\",\n"
      "data:  \"delta\":{\"text\":\"h\\u00e9llo \xF0\x9F\x98\x80\"}}\n\n"
      ":\r"
      "id: 42\r"
      "data\r\r"
      "event: message_stop\r"
      "data: {\"type\":\"message_stop\"}\r"
      "\r"
      "data: unterminated";
  const std::vector<Event> expected{
      {"message_start",
       "{\"type\":\"message_start\",\"message\":{\"usage\":{\"input_tokens\":25}}}", ""},
      {"content_block_delta",
       "{\"type\":\"content_block_delta\",\n \"delta\":{\"text\":\"h\\u00e9llo "
       "\xF0\x9F\x98\x80\"}}",
       ""},
      {"message", "", "42"},
      {"message_stop", "{\"type\":\"message_stop\"}", "42"},
  };
  expect_split_invariant(stream, SseParser::kDefaultMaxEventSize, expected);
}

TEST(SseParser, DropsOversizedEventsAndCountsThem) {
  const std::string stream =
      "data: small\n\n"
      "event: big\ndata: 0123456789\ndata: 0123456789\n\n"  // 21 bytes of data + 3 of type
      "data: 01234567890123456789012345\n\n"                // a data line longer than the cap
      ": 0123456789012345678901234567890123456789\n\n"      // a line longer than cap + slack
      "data: after\n\n";
  uint64_t dropped = 0;
  EXPECT_EQ(parse_chunks({stream}, 20, &dropped),
            (std::vector<Event>{{"message", "small", ""}, {"message", "after", ""}}));
  EXPECT_EQ(dropped, 3u);
  expect_split_invariant(stream, 20, {{"message", "small", ""}, {"message", "after", ""}});
}

TEST(SseParser, NeverBuffersALongLineBeyondTheCap) {
  // A 64 MiB line fed in 64 KiB pieces with a 1 KiB cap: dropped without being accumulated (under
  // ASan an unbounded buffer would show up as a large allocation; here we check the outcome).
  uint64_t dropped = 0;
  std::vector<std::string> events;
  SseParser parser([&](const SseEvent& e) { events.emplace_back(e.data); }, 1024);
  const std::string piece(64 * 1024, 'x');
  parser.feed("data: ");
  for (int i = 0; i < 1024; ++i) parser.feed(piece);
  parser.feed("\n\ndata: next\n\n");
  dropped = parser.dropped_events();
  EXPECT_EQ(dropped, 1u);
  EXPECT_EQ(events, std::vector<std::string>{"next"});
}

TEST(SseParser, FinishDiscardsThePendingEventAndStartsOver) {
  std::vector<std::string> events;
  SseParser parser([&](const SseEvent& e) { events.emplace_back(e.data); });
  parser.feed("data: a\n");
  parser.finish();
  parser.feed(
      "\xEF\xBB\xBF"
      "data: b\n\n");
  EXPECT_EQ(events, std::vector<std::string>{"b"});
}

TEST(SseParser, BorrowedDataSurvivesTheChunkGoingAway) {
  std::vector<std::string> events;
  SseParser parser([&](const SseEvent& e) { events.emplace_back(e.data); });
  {
    std::string chunk = "event: t\ndata: borrowed\n";
    parser.feed(chunk);
    chunk.assign(chunk.size(), '#');  // the parser must have copied what it still needs
  }
  parser.feed("\n");
  EXPECT_EQ(events, std::vector<std::string>{"borrowed"});
}

}  // namespace
}  // namespace till
