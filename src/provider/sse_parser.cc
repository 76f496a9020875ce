#include "provider/sse_parser.h"

#include <cstring>
#include <utility>

namespace till {
namespace {

constexpr std::string_view kBom = "\xEF\xBB\xBF";

// The position of the first '\r' or '\n' in text[from..], or npos. Lines end with '\n' far more
// often than with '\r', so two memchr scans beat one byte-by-byte scan.
size_t find_line_end(std::string_view text, size_t from) {
  const char* begin = text.data() + from;
  const size_t size = text.size() - from;
  const void* lf = std::memchr(begin, '\n', size);
  const size_t limit = lf ? static_cast<size_t>(static_cast<const char*>(lf) - begin) : size;
  const void* cr = std::memchr(begin, '\r', limit);
  if (cr) return from + static_cast<size_t>(static_cast<const char*>(cr) - begin);
  return lf ? from + limit : std::string_view::npos;
}

}  // namespace

SseParser::SseParser(Callback on_event, size_t max_event_size)
    : on_event_(std::move(on_event)), max_event_size_(max_event_size) {}

void SseParser::feed(std::string_view chunk) {
  // Bytes that looked like the start of a BOM but were not; like `chunk`, they live until the
  // end of this call, so lines inside them may be borrowed.
  std::string replay;
  if (at_stream_start_) {
    while (!chunk.empty() && bom_prefix_.size() < kBom.size()) {
      if (chunk.front() != kBom[bom_prefix_.size()]) {
        replay = std::move(bom_prefix_);
        bom_prefix_.clear();
        at_stream_start_ = false;
        break;
      }
      bom_prefix_ += chunk.front();
      chunk.remove_prefix(1);
    }
    if (bom_prefix_.size() == kBom.size()) {
      bom_prefix_.clear();
      at_stream_start_ = false;
    }
    if (at_stream_start_) return;  // all of it may still be a BOM
  }
  if (!replay.empty()) feed_body(replay);
  feed_body(chunk);
  // The chunk goes away when we return: keep what the pending event borrowed from it.
  data_.own();
  type_.own();
}

void SseParser::feed_body(std::string_view chunk) {
  size_t i = 0;
  if (skip_lf_ && !chunk.empty()) {
    if (chunk.front() == '\n') i = 1;
    skip_lf_ = false;
  }
  while (i < chunk.size()) {
    size_t end = find_line_end(chunk, i);
    if (end == std::string_view::npos) {
      std::string_view rest = chunk.substr(i);
      if (!line_too_long_) {
        if (line_.size() + rest.size() > max_line_size()) {
          line_too_long_ = true;
          line_.clear();
        } else {
          line_.append(rest);
        }
      }
      return;
    }
    std::string_view piece = chunk.substr(i, end - i);
    if (line_too_long_) {
      line_too_long_ = false;
      drop_event();
    } else if (line_.empty()) {
      process_line(piece, /*stable=*/true);
    } else if (line_.size() + piece.size() > max_line_size()) {
      line_.clear();
      drop_event();
    } else {
      line_.append(piece);
      process_line(line_, /*stable=*/false);
      line_.clear();
    }
    if (chunk[end] == '\r') {
      if (end + 1 == chunk.size()) {
        skip_lf_ = true;  // a '\n' starting the next chunk belongs to this line end
      } else if (chunk[end + 1] == '\n') {
        ++end;
      }
    }
    i = end + 1;
  }
}

void SseParser::process_line(std::string_view line, bool stable) {
  if (dropping_) {
    if (line.empty()) {
      ++dropped_events_;
      reset_event();
    }
    return;
  }
  if (line.empty()) {
    dispatch();
    return;
  }
  if (line.size() > max_line_size()) {  // the same rule as for lines split across chunks
    drop_event();
    return;
  }
  if (line.front() == ':') return;  // comment

  std::string_view field = line;
  std::string_view value;
  if (size_t colon = line.find(':'); colon != std::string_view::npos) {
    field = line.substr(0, colon);
    value = line.substr(colon + 1);
    if (!value.empty() && value.front() == ' ') value.remove_prefix(1);
  }

  if (field == "data") {
    if (!grow_event(value.size() + (data_lines_ > 0 ? 1 : 0))) return;
    if (data_lines_ == 0) {
      data_.owned.clear();
      if (stable) {
        data_.view = value;
        data_.borrowed = true;
      } else {
        data_.owned.assign(value);
      }
    } else {
      data_.own();
      data_.owned += '\n';
      data_.owned.append(value);
    }
    ++data_lines_;
  } else if (field == "event") {
    if (!grow_event(value.size())) return;
    type_.clear();
    if (stable) {
      type_.view = value;
      type_.borrowed = true;
    } else {
      type_.owned.assign(value);
    }
  } else if (field == "id") {
    if (value.find('\0') == std::string_view::npos) last_event_id_.assign(value);
  }
  // "retry" only matters to a reconnecting client; other fields are ignored by the spec.
}

void SseParser::drop_event() { grow_event(max_event_size_ + 1); }

bool SseParser::grow_event(size_t bytes) {
  if (!dropping_ && bytes <= max_event_size_ - event_size_) {
    event_size_ += bytes;
    return true;
  }
  dropping_ = true;
  data_.clear();
  type_.clear();
  data_lines_ = 0;
  return false;
}

void SseParser::dispatch() {
  if (data_lines_ > 0) {
    std::string_view type = type_.get();
    const SseEvent event{type.empty() ? std::string_view("message") : type, data_.get(),
                         last_event_id_};
    on_event_(event);
  }
  reset_event();
}

void SseParser::reset_event() {
  data_.clear();
  type_.clear();
  data_lines_ = 0;
  event_size_ = 0;
  dropping_ = false;
}

void SseParser::finish() {
  reset_event();
  line_.clear();
  line_too_long_ = false;
  skip_lf_ = false;
  bom_prefix_.clear();
  at_stream_start_ = true;
}

}  // namespace till
