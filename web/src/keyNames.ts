// Names of keys seen so far, by id, for pages that get only ids from the API (usage groups,
// alerts). Filled by every key record loaded; a name never changes, so entries stay.
import { get, isAbortError, segment } from './api';
import type { KeyRecord } from './types';

const names = new Map<string, string>();

export function rememberKeys(keys: readonly KeyRecord[]): void {
  for (const key of keys) names.set(key.id, key.name);
}

export function knownName(id: string): string | undefined {
  return names.get(id);
}

// Looks up the ids not seen yet (one GET each; callers pass a handful). An id that fails to load
// is remembered without a name (shown by id) rather than asked for again on every refresh.
export async function loadNames(ids: readonly string[], signal: AbortSignal): Promise<void> {
  const missing = [...new Set(ids)].filter((id) => id && !names.has(id));
  await Promise.all(
    missing.map(async (id) => {
      try {
        rememberKeys([await get<KeyRecord>(`/api/v1/keys/${segment(id)}`, signal)]);
      } catch (error) {
        if (!isAbortError(error)) names.set(id, '');
      }
    }),
  );
}
