#include "provider/json_scanner.h"

#include <array>
#include <cstdint>

namespace till {
namespace {

bool is_digit(char c) { return c >= '0' && c <= '9'; }

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

bool in_range(unsigned char c, unsigned char lo, unsigned char hi) { return c >= lo && c <= hi; }

// The length of the well-formed UTF-8 sequence starting with a byte >= 0x80 at text[pos]
// (Unicode 15, table 3-7), or 0 if it is ill-formed.
size_t utf8_sequence_length(std::string_view text, size_t pos) {
  auto at = [&](size_t i) -> unsigned char {
    return pos + i < text.size() ? static_cast<unsigned char>(text[pos + i]) : 0;
  };
  const unsigned char c = at(0);
  if (in_range(c, 0xC2, 0xDF)) return in_range(at(1), 0x80, 0xBF) ? 2 : 0;
  if (in_range(c, 0xE0, 0xEF)) {
    unsigned char lo = c == 0xE0 ? 0xA0 : 0x80;
    unsigned char hi = c == 0xED ? 0x9F : 0xBF;
    return in_range(at(1), lo, hi) && in_range(at(2), 0x80, 0xBF) ? 3 : 0;
  }
  if (in_range(c, 0xF0, 0xF4)) {
    unsigned char lo = c == 0xF0 ? 0x90 : 0x80;
    unsigned char hi = c == 0xF4 ? 0x8F : 0xBF;
    return in_range(at(1), lo, hi) && in_range(at(2), 0x80, 0xBF) && in_range(at(3), 0x80, 0xBF)
               ? 4
               : 0;
  }
  return 0;
}

void append_utf8(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

// The 16-bit unit of the validated escape "\uXXXX" whose 'u' is at raw[pos].
uint32_t escape_unit(std::string_view raw, size_t pos) {
  uint32_t unit = 0;
  for (size_t i = 1; i <= 4; ++i) unit = unit * 16 + static_cast<uint32_t>(hex_value(raw[pos + i]));
  return unit;
}

}  // namespace

void JsonScanner::skip_whitespace() {
  while (pos_ < text_.size()) {
    char c = text_[pos_];
    if (c != ' ' && c != '\t' && c != '\n' && c != '\r') return;
    ++pos_;
  }
}

bool JsonScanner::consume(char c) {
  if (at_end() || text_[pos_] != c) return false;
  ++pos_;
  return true;
}

bool JsonScanner::read_string(std::string_view* raw) {
  if (!consume('"')) return false;
  const size_t start = pos_;
  const size_t size = text_.size();
  while (pos_ < size) {
    const auto c = static_cast<unsigned char>(text_[pos_]);
    if (c == '"') {
      *raw = text_.substr(start, pos_ - start);
      ++pos_;
      return true;
    }
    if (c == '\\') {
      ++pos_;
      if (pos_ >= size) return false;
      switch (text_[pos_]) {
        case '"':
        case '\\':
        case '/':
        case 'b':
        case 'f':
        case 'n':
        case 'r':
        case 't':
          ++pos_;
          break;
        case 'u':
          if (size - pos_ < 5) return false;
          for (size_t i = 1; i <= 4; ++i) {
            if (hex_value(text_[pos_ + i]) < 0) return false;
          }
          pos_ += 5;
          break;
        default:
          return false;
      }
    } else if (c < 0x20) {
      return false;
    } else if (c < 0x80) {
      ++pos_;
    } else {
      size_t length = utf8_sequence_length(text_, pos_);
      if (length == 0) return false;
      pos_ += length;
    }
  }
  return false;
}

bool JsonScanner::read_number(std::string_view* number) {
  const size_t start = pos_;
  consume('-');
  if (consume('0')) {
    // A leading zero stands alone.
  } else if (is_digit(peek()) && !at_end()) {
    while (!at_end() && is_digit(peek())) ++pos_;
  } else {
    return false;
  }
  if (consume('.')) {
    if (at_end() || !is_digit(peek())) return false;
    while (!at_end() && is_digit(peek())) ++pos_;
  }
  if (consume('e') || consume('E')) {
    if (!consume('+')) consume('-');
    if (at_end() || !is_digit(peek())) return false;
    while (!at_end() && is_digit(peek())) ++pos_;
  }
  *number = text_.substr(start, pos_ - start);
  return true;
}

bool JsonScanner::read_literal(std::string_view literal) {
  if (text_.substr(pos_, literal.size()) != literal) return false;
  pos_ += literal.size();
  return true;
}

bool JsonScanner::skip_value(size_t enclosing) {
  if (enclosing > kMaxDepth) return false;
  // Bit i set: the container at nesting level i (0-based, relative to this value) is an object.
  std::array<uint64_t, (kMaxDepth + 63) / 64> is_object{};
  const size_t max_levels = kMaxDepth - enclosing;
  size_t levels = 0;
  auto push = [&](bool object) {
    if (levels == max_levels) return false;
    uint64_t bit = uint64_t{1} << (levels % 64);
    if (object) {
      is_object[levels / 64] |= bit;
    } else {
      is_object[levels / 64] &= ~bit;
    }
    ++levels;
    return true;
  };
  auto top_is_object = [&] { return (is_object[(levels - 1) / 64] >> ((levels - 1) % 64)) & 1; };
  // After '{' or ',' in an object: a key and its colon.
  auto read_key = [&] {
    std::string_view key;
    if (!read_string(&key)) return false;
    skip_whitespace();
    if (!consume(':')) return false;
    skip_whitespace();
    return true;
  };

  skip_whitespace();
  for (;;) {
    // A value is expected here.
    std::string_view ignored;
    switch (peek()) {
      case '{':
        if (!push(true)) return false;
        ++pos_;
        skip_whitespace();
        if (consume('}')) {
          --levels;
          break;
        }
        if (!read_key()) return false;
        continue;
      case '[':
        if (!push(false)) return false;
        ++pos_;
        skip_whitespace();
        if (consume(']')) {
          --levels;
          break;
        }
        continue;
      case '"':
        if (!read_string(&ignored)) return false;
        break;
      case 't':
        if (!read_literal("true")) return false;
        break;
      case 'f':
        if (!read_literal("false")) return false;
        break;
      case 'n':
        if (!read_literal("null")) return false;
        break;
      default:
        if (!read_number(&ignored)) return false;
        break;
    }
    // A value ended: close containers until one continues.
    for (;;) {
      if (levels == 0) return true;
      skip_whitespace();
      const bool object = top_is_object();
      if (consume(',')) {
        skip_whitespace();
        if (object && !read_key()) return false;
        break;
      }
      if (!consume(object ? '}' : ']')) return false;
      --levels;
    }
  }
}

bool is_valid_json(std::string_view text) {
  JsonScanner scanner(text);
  if (!scanner.skip_value(0)) return false;
  scanner.skip_whitespace();
  return scanner.at_end();
}

std::string decode_json_string(std::string_view raw) {
  std::string out;
  out.reserve(raw.size());
  for (size_t i = 0; i < raw.size(); ++i) {
    char c = raw[i];
    if (c != '\\') {
      out += c;
      continue;
    }
    char e = raw[++i];
    switch (e) {
      case 'b':
        out += '\b';
        break;
      case 'f':
        out += '\f';
        break;
      case 'n':
        out += '\n';
        break;
      case 'r':
        out += '\r';
        break;
      case 't':
        out += '\t';
        break;
      case 'u': {
        uint32_t unit = escape_unit(raw, i);
        i += 4;
        if (unit >= 0xD800 && unit <= 0xDBFF && i + 6 < raw.size() && raw[i + 1] == '\\' &&
            raw[i + 2] == 'u') {
          uint32_t low = escape_unit(raw, i + 2);
          if (low >= 0xDC00 && low <= 0xDFFF) {
            append_utf8(out, 0x10000 + ((unit - 0xD800) << 10) + (low - 0xDC00));
            i += 6;
            break;
          }
        }
        append_utf8(out, (unit >= 0xD800 && unit <= 0xDFFF) ? 0xFFFD : unit);
        break;
      }
      default:
        out += e;
        break;  // '"', '\\', '/'
    }
  }
  return out;
}

}  // namespace till
