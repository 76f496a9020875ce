// AddressBlocklist: client addresses refused for a while (the invalid_key_burst alert rule: an
// address sending bursts of invalid keys is answered 429 until its cool-down ends).
//
// The request path asks blocked() for every request, so the common case — nothing blocked —
// is one relaxed atomic load.
//
// Thread-safety: all methods may be called concurrently.
#pragma once

#include <atomic>
#include <optional>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <unordered_map>

#include "till/clock.h"

namespace till {

class AddressBlocklist {
 public:
  // Refuses `address` until `until` (extending an earlier block, never shortening it); forgets
  // blocks that ended before `now`.
  void block(std::string_view address, Timestamp until, Timestamp now);

  // When the address's block ends, if it is blocked at `now`.
  std::optional<Timestamp> blocked_until(std::string_view address, Timestamp now) const;

 private:
  mutable std::shared_mutex mutex_;
  std::unordered_map<std::string, Timestamp> until_;  // expired entries are pruned by block()
  std::atomic<size_t> size_{0};
};

}  // namespace till
