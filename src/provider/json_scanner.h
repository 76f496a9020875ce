// A validating scanner over a complete JSON text (RFC 8259) that reports byte offsets, so callers
// can read a few fields of a request body and splice edits into it without re-serializing — every
// other byte (number spellings, escapes, key order, whitespace) stays as the client sent it.
//
// Accepts exactly RFC 8259 JSON in UTF-8: no comments, no trailing commas, no leading BOM; strings
// must be valid UTF-8 without raw control characters. Unlike Boost.JSON it accepts an escaped lone
// surrogate ("\ud800", which clients that truncate strings send) and exponents of any length
// (0e4402320402320202): the grammar allows both, and so do the providers' Python and JS parsers.
// Nesting deeper than kMaxDepth containers is refused. Nothing is allocated; nothing recurses.
//
// Thread-safety: a scanner is used by one thread; distinct scanners are independent.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace till {

class JsonScanner {
 public:
  static constexpr size_t kMaxDepth = 512;

  explicit JsonScanner(std::string_view text) : text_(text) {}

  std::string_view text() const { return text_; }
  size_t pos() const { return pos_; }
  bool at_end() const { return pos_ >= text_.size(); }
  // The byte at pos(), or '\0' at the end.
  char peek() const { return at_end() ? '\0' : text_[pos_]; }

  void skip_whitespace();

  // If peek() == c, moves past it and returns true.
  bool consume(char c);

  // At a '"': validates the string and moves past its closing quote; *raw receives the bytes
  // between the quotes, still escaped. false (position unspecified) if it is malformed.
  bool read_string(std::string_view* raw);

  // At a number: validates it and moves past it; *number receives its text.
  bool read_number(std::string_view* number);

  // At any value: validates it and moves past it. `enclosing` is the number of containers around
  // the value; the value may nest at most kMaxDepth - enclosing more.
  bool skip_value(size_t enclosing);

 private:
  bool read_literal(std::string_view literal);

  std::string_view text_;
  size_t pos_ = 0;
};

// True if `text` is exactly one JSON value, with optional whitespace around it.
bool is_valid_json(std::string_view text);

// Decodes the raw contents of a string JsonScanner::read_string accepted: escapes become UTF-8; an
// unpaired surrogate becomes U+FFFD.
std::string decode_json_string(std::string_view raw);

}  // namespace till
