#include "store/sqlite/string_list_codec.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace till::sqlite {
namespace {

using List = std::vector<std::string>;

TEST(StringListCodecTest, RoundTripsAnyList) {
  std::string every_ascii_byte;
  for (int c = 1; c < 128; ++c) every_ascii_byte.push_back(static_cast<char>(c));
  const List lists[] = {
      {},
      {""},
      {"", ""},
      {"gpt-4o-mini", "claude-3-5-sonnet"},
      {"quote \" backslash \\ slash / newline \n tab \t nul-free control \x01\x1f"},
      {"\xe6\xa8\xa1\xe5\x9e\x8b", "\xf0\x9f\x98\x80"},
      {every_ascii_byte, std::string("with\0nul", 8)},
      {"[\"nested\"]", ","},
  };
  for (const List& list : lists) {
    std::optional<List> decoded = decode_string_list(encode_string_list(list));
    ASSERT_TRUE(decoded) << encode_string_list(list);
    EXPECT_EQ(*decoded, list);
  }
}

TEST(StringListCodecTest, EncodesAsReadableJson) {
  EXPECT_EQ(encode_string_list({}), "[]");
  EXPECT_EQ(encode_string_list({"a", "b\"c", "d\ne"}), R"(["a","b\"c","d\ne"])");
}

TEST(StringListCodecTest, DecodesStandardJsonEscapesAndWhitespace) {
  std::optional<List> decoded =
      decode_string_list(" [ \"a\\/b\" , \"\\u00e9\\ud83d\\ude00\" ,\"\\b\\f\\r\\t\" ] ");
  ASSERT_TRUE(decoded);
  EXPECT_EQ(*decoded, (List{"a/b", "\xc3\xa9\xf0\x9f\x98\x80", "\b\f\r\t"}));
}

TEST(StringListCodecTest, RejectsAnythingButAnArrayOfStrings) {
  for (const char* text : {"", "[", "]", "[\"a\"", "[\"a\",]", "[,\"a\"]", "[1]", "[null]",
                           "{\"a\":1}", "\"a\"", "[\"a\"] x", "[\"\\x\"]", "[\"\\u12\"]",
                           "[\"\\ud800\"]", "[\"\\udc00\"]", "[\"a\nb\"]", "[\"a\" \"b\"]"}) {
    EXPECT_FALSE(decode_string_list(text)) << text;
  }
}

}  // namespace
}  // namespace till::sqlite
