#include "proxy/key_status_change.h"

namespace till {

Result<KeyRecord> change_key_status(Store& store, BudgetLedger& ledger, KeyCache& keys,
                                    std::string_view id, KeyStatus status, Timestamp now) {
  auto descendants = store.descendant_ids(id);
  if (!descendants) return fail(descendants.error());
  (void)ledger.flush(id);  // a failed flush is retried by the ledger; the change goes ahead
  for (const std::string& descendant : *descendants) (void)ledger.flush(descendant);
  auto changed = store.set_status(id, status, now);
  keys.invalidate(id);
  for (const std::string& descendant : *descendants) keys.invalidate(descendant);
  return changed;
}

}  // namespace till
