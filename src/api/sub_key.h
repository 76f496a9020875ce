// Sub-keys (POST /api/v1/key/children): a key holder hands a smaller key to a sub-agent.
//
// A sub-key is never wider than its parent: same provider and upstream credential, an expiry no
// later, and a scope inside the parent's (models, rpm, concurrency, addresses). What it does not
// narrow it inherits. Its limits are carved out of the parent's remaining budget by the store
// (Store::insert_key), which also refuses a sub-key that leaves unlimited what the parent limits.
#pragma once

#include "api/new_key_request.h"
#include "till/error.h"
#include "till/key.h"

namespace till {

// Fills in what `spec` leaves open from `parent` and refuses what would widen it, with
// kInvalidRequest naming the field ("models: gpt-4o is not allowed to the parent key").
// The credential is the caller's to set.
Result<void> narrow_to_parent(NewKeySpec& spec, const KeyRecord& parent);

}  // namespace till
