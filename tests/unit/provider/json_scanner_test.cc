#include "provider/json_scanner.h"

#include <gtest/gtest.h>

#include <boost/json/parse.hpp>
#include <string>
#include <string_view>

namespace till {
namespace {

using namespace std::string_literals;
using namespace std::string_view_literals;

bool boost_accepts(std::string_view text) {
  boost::json::error_code ec;
  boost::json::parse_options options;
  options.max_depth = JsonScanner::kMaxDepth;
  boost::json::parse(text, ec, {}, options);
  return !ec;
}

TEST(JsonScanner, AgreesWithBoostJson) {
  const std::string_view cases[] = {
      "{}",
      "[]",
      " {\"a\" : [1, -2.5e+3, true, false, null, \"x\"]}\n",
      "0",
      "-0",
      "1E+2",
      "1e400",
      "\"\\u00e9\\ud83d\\ude00\\\"\\\\\\/\\b\\f\\n\\r\\t\"",
      "\"caf\xC3\xA9\"",
      "\"\xF4\x8F\xBF\xBF\"",
      // refused
      "",
      " ",
      "{",
      "}",
      "[1,]",
      "{\"a\":1,}",
      "{\"a\"}",
      "{a:1}",
      "01",
      "-",
      "1.",
      ".5",
      "1e",
      "+1",
      "nul",
      "True",
      "\"abc",
      "\"\\x\"",
      "\"\\u12\"",
      "\"\\u12G4\"",
      "\"a\nb\"",
      "\"\x1f\"",
      "\"\xC0\x80\"",
      "\"\xED\xA0\x80\"",
      "\"\xF4\x90\x80\x80\"",
      "\"\xE2\x82\"",
      "\"\x80\"",
      "\xEF\xBB\xBF{}",
      "{}x",
      "{} {}",
      "/*c*/{}",
      "[1 2]",
      "{\"a\":1 \"b\":2}",
      "\"\x00\""sv,
  };
  for (std::string_view text : cases) {
    EXPECT_EQ(is_valid_json(text), boost_accepts(text))
        << testing::PrintToString(std::string(text));
  }
}

TEST(JsonScanner, AcceptsLoneSurrogateEscapesUnlikeBoost) {
  EXPECT_TRUE(is_valid_json("\"\\ud800\""));
  EXPECT_TRUE(is_valid_json("\"\\udc00x\""));
  EXPECT_EQ(decode_json_string("\\ud800x"), "\xEF\xBF\xBDx");
  EXPECT_EQ(decode_json_string("\\ud83d\\ude00"), "\xF0\x9F\x98\x80");
  EXPECT_EQ(decode_json_string("\\ud83d\\u0041"),
            "\xEF\xBF\xBD"
            "A");
  EXPECT_EQ(decode_json_string("a\\\"\\\\\\/\\b\\f\\n\\r\\t\\u0000"), "a\"\\/\b\f\n\r\t\0"s);
}

TEST(JsonScanner, LimitsNestingWithoutRecursion) {
  const size_t max = JsonScanner::kMaxDepth;
  std::string ok = std::string(max, '[') + std::string(max, ']');
  std::string too_deep = std::string(max + 1, '[') + std::string(max + 1, ']');
  EXPECT_TRUE(is_valid_json(ok));
  EXPECT_FALSE(is_valid_json(too_deep));
  EXPECT_EQ(is_valid_json(ok), boost_accepts(ok));
  EXPECT_EQ(is_valid_json(too_deep), boost_accepts(too_deep));
  EXPECT_FALSE(is_valid_json(std::string(1'000'000, '[')));
  std::string objects;
  for (size_t i = 0; i < max; ++i) objects += "{\"k\":";
  objects += "1";
  objects += std::string(max, '}');
  EXPECT_TRUE(is_valid_json(objects));
}

TEST(JsonScanner, ReportsPositions) {
  JsonScanner s(R"({"key" : 12.5e1 , "s":"v"})");
  ASSERT_TRUE(s.consume('{'));
  std::string_view raw;
  ASSERT_TRUE(s.read_string(&raw));
  EXPECT_EQ(raw, "key");
  s.skip_whitespace();
  ASSERT_TRUE(s.consume(':'));
  s.skip_whitespace();
  size_t begin = s.pos();
  std::string_view number;
  ASSERT_TRUE(s.read_number(&number));
  EXPECT_EQ(number, "12.5e1");
  EXPECT_EQ(s.text().substr(begin, s.pos() - begin), "12.5e1");
}

}  // namespace
}  // namespace till
