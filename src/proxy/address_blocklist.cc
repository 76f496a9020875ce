#include "proxy/address_blocklist.h"

#include <mutex>

namespace till {

void AddressBlocklist::block(std::string_view address, Timestamp until, Timestamp now) {
  std::unique_lock lock(mutex_);
  std::erase_if(until_, [&](const auto& entry) { return entry.second <= now; });
  Timestamp& current = until_[std::string(address)];
  if (current < until) current = until;
  size_.store(until_.size(), std::memory_order_relaxed);
}

std::optional<Timestamp> AddressBlocklist::blocked_until(std::string_view address,
                                                         Timestamp now) const {
  if (size_.load(std::memory_order_relaxed) == 0) return std::nullopt;
  std::shared_lock lock(mutex_);
  auto it = until_.find(std::string(address));
  if (it == until_.end() || it->second <= now) return std::nullopt;
  return it->second;
}

}  // namespace till
