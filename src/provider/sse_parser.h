// Incremental server-sent-events framing (WHATWG HTML, "Server-sent events", §9.2.6 "Interpreting
// an event stream"), for metering streamed provider responses.
//
// feed() takes the byte stream in any split — events, lines, "\r\n" pairs and a leading byte order
// mark may all be cut across TCP reads at any byte — and calls the callback once per dispatched
// event, exactly as if the whole stream had been fed at once:
//
//   - lines end with "\r\n", "\n" or "\r" ("\r" at the end of one chunk and "\n" at the start of
//     the next are one line end);
//   - one leading UTF-8 BOM is ignored; lines starting with ':' are comments;
//   - "field:value" with one leading space of the value stripped; a line without ':' is a field
//     with an empty value; "data" lines are joined with "\n"; "event" sets the type; "id" sets the
//     last event id (kept across events, ignored if it contains NUL); "retry" and unknown fields
//     are ignored;
//   - an empty line dispatches the event, unless no "data" line was seen since the last dispatch;
//   - at the end of the stream an event not yet terminated by an empty line is discarded.
//
// Memory is bounded: an event whose data and type together exceed max_event_size bytes, or that
// contains a line longer than max_event_size + 16 bytes (whatever its field, comments included), is
// dropped, counted in dropped_events(), and never buffered beyond that cap. An event whose one data
// line and terminating blank line arrive in the same chunk reaches the callback without being
// copied; otherwise its pending parts are copied into the parser's own buffers once, as the chunk
// ends.
//
// Thread-safety: none; one parser per stream.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

namespace till {

struct SseEvent {
  std::string_view type;  // the "event" field, or "message" when the event named none
  std::string_view data;  // the "data" lines joined with "\n" (no trailing "\n")
  std::string_view id;    // the last event id seen so far in the stream ("" if none)
};

class SseParser {
 public:
  static constexpr size_t kDefaultMaxEventSize = size_t{4} << 20;  // 4 MiB

  // Called once per dispatched event. The views are valid only during the call.
  using Callback = std::function<void(const SseEvent&)>;

  // REQUIRES: on_event is callable; max_event_size > 0.
  explicit SseParser(Callback on_event, size_t max_event_size = kDefaultMaxEventSize);

  SseParser(const SseParser&) = delete;
  SseParser& operator=(const SseParser&) = delete;

  // Parses the next bytes of the stream, calling the callback for every event they complete.
  // `chunk` need not outlive the call. The callback must not call feed() or finish() re-entrantly.
  void feed(std::string_view chunk);

  // Ends the stream: a pending unterminated event is discarded (per the spec). Later feed() calls
  // start a new stream (a BOM is again ignored).
  void finish();

  // Events dropped because they exceeded max_event_size.
  uint64_t dropped_events() const { return dropped_events_; }

 private:
  // A value that may borrow the caller's current chunk until feed() returns (`borrowed`), or is
  // held in `owned`.
  struct Buffer {
    std::string_view view;
    std::string owned;
    bool borrowed = false;

    std::string_view get() const { return borrowed ? view : std::string_view(owned); }
    void own() {
      if (borrowed) owned.assign(view);
      borrowed = false;
    }
    void clear() {
      borrowed = false;
      owned.clear();
    }
  };

  void feed_body(std::string_view chunk);
  // `stable`: `line` points into the caller's chunk (valid until feed() returns), not into line_.
  void process_line(std::string_view line, bool stable);
  void dispatch();
  void reset_event();
  bool grow_event(size_t bytes);  // false (and the event is dropped) past the cap
  void drop_event();
  // Longer lines drop the event they belong to, whatever their field, whether they arrive whole
  // or in pieces. The slack lets a line whose value fits the cap carry its field name.
  size_t max_line_size() const { return max_event_size_ + kFieldNameSlack; }
  static constexpr size_t kFieldNameSlack = 16;

  Callback on_event_;
  size_t max_event_size_;

  // Framing state.
  bool at_stream_start_ = true;  // a BOM may still come
  std::string bom_prefix_;       // bytes of a possible BOM split across chunks
  bool skip_lf_ = false;         // the previous chunk ended with '\r'
  std::string line_;             // a line split across chunks
  bool line_too_long_ = false;   // the current partial line passed the cap and is being skipped

  // The event being assembled.
  Buffer data_;
  Buffer type_;
  size_t data_lines_ = 0;
  size_t event_size_ = 0;
  bool dropping_ = false;  // the event passed the cap: skip its lines until it ends
  std::string last_event_id_;

  uint64_t dropped_events_ = 0;
};

}  // namespace till
