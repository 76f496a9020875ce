// Time as till sees it. Every component that needs "now" takes a Clock so tests can use FakeClock
// instead of sleeping.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>

namespace till {

// Wall-clock time with millisecond resolution; stored as Unix milliseconds.
using Timestamp = std::chrono::sys_time<std::chrono::milliseconds>;

inline int64_t to_unix_ms(Timestamp t) { return t.time_since_epoch().count(); }
inline Timestamp from_unix_ms(int64_t ms) { return Timestamp(std::chrono::milliseconds(ms)); }

// Thread-safety: implementations are safe to call from any thread.
class Clock {
 public:
  virtual ~Clock() = default;
  virtual Timestamp now() const = 0;
};

// The real clock; a process-wide instance with static lifetime.
Clock& system_clock();

// A clock that moves only when told to.
class FakeClock final : public Clock {
 public:
  explicit FakeClock(Timestamp start) : now_ms_(to_unix_ms(start)) {}
  Timestamp now() const override { return from_unix_ms(now_ms_.load()); }
  void advance(std::chrono::milliseconds by) { now_ms_ += by.count(); }
  void set(Timestamp t) { now_ms_ = to_unix_ms(t); }

 private:
  std::atomic<int64_t> now_ms_;
};

}  // namespace till
