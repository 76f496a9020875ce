// Changing a key's status from this process: the one way the control plane (revoke, suspend,
// resume) and the alert rules (suspend) do it.
#pragma once

#include <string_view>

#include "proxy/budget_ledger.h"
#include "proxy/key_cache.h"
#include "till/store.h"

namespace till {

// Sets the key's status, its descendants following (Store::set_status). The usage the ledger
// holds for the key and its descendants is written first, so a revoked sub-key returns exactly
// what it did not use; their cached entries are dropped after, so the change applies from their
// next request. Errors as Store::set_status and Store::descendant_ids.
Result<KeyRecord> change_key_status(Store& store, BudgetLedger& ledger, KeyCache& keys,
                                    std::string_view id, KeyStatus status, Timestamp now);

}  // namespace till
