// The key table: every key (up to MAX_KEYS, newest first) with its status and a bar per limit,
// refreshed every 2 s. Status and provider filter on the server; the search box filters the
// loaded rows by name or id as you type.
import { useMemo, useState } from 'preact/hooks';
import { get, query } from '../api';
import { formatCount } from '../format';
import { rememberKeys } from '../keyNames';
import { usePoll } from '../poll';
import { allProviders } from '../providers';
import { href } from '../router';
import { KEY_STATUSES, type KeyPage, type KeyRecord } from '../types';
import { KeyTable } from './KeyTable';
import { Empty, ErrorNote, Loading, PageHeader } from './ui';

const PAGE_SIZE = 250;
export const MAX_KEYS = 1000;

interface LoadedKeys {
  keys: KeyRecord[];
  // More keys matched than were loaded.
  truncated: boolean;
}

async function loadKeys(status: string, provider: string, signal: AbortSignal): Promise<LoadedKeys> {
  const keys: KeyRecord[] = [];
  let cursor: string | null = null;
  do {
    const page: KeyPage = await get<KeyPage>(
      `/api/v1/keys${query({ status, provider, limit: Math.min(PAGE_SIZE, MAX_KEYS - keys.length), cursor })}`,
      signal,
    );
    keys.push(...page.keys);
    cursor = page.next_cursor;
  } while (cursor && keys.length < MAX_KEYS);
  rememberKeys(keys);
  return { keys, truncated: cursor !== null };
}

function matches(key: KeyRecord, search: string): boolean {
  if (!search) return true;
  const needle = search.toLowerCase();
  return key.name.toLowerCase().includes(needle) || key.id.toLowerCase().includes(needle);
}

export function KeysPage() {
  const [status, setStatus] = useState('');
  const [provider, setProvider] = useState('');
  const [search, setSearch] = useState('');
  const { data, error } = usePoll((signal) => loadKeys(status, provider, signal), [status, provider], {
    keepData: true,
  });
  const shown = useMemo(
    () => (data ? data.keys.filter((k) => matches(k, search.trim())) : []),
    [data, search],
  );

  return (
    <>
      <PageHeader title="Keys" sub="Scoped keys for agents: what each may spend and what it has used.">
        <a class="button primary" href={href.create}>
          Create key
        </a>
      </PageHeader>

      <div class="filters" role="search">
        <div class="field">
          <label for="keys-search">Search</label>
          <input
            id="keys-search"
            type="search"
            placeholder="Name or id"
            value={search}
            onInput={(e) => setSearch(e.currentTarget.value)}
          />
        </div>
        <div class="field">
          <label for="keys-status">Status</label>
          <select id="keys-status" value={status} onChange={(e) => setStatus(e.currentTarget.value)}>
            <option value="">Any status</option>
            {KEY_STATUSES.map((s) => (
              <option key={s} value={s}>
                {s}
              </option>
            ))}
          </select>
        </div>
        <div class="field">
          <label for="keys-provider">Provider</label>
          <select id="keys-provider" value={provider} onChange={(e) => setProvider(e.currentTarget.value)}>
            <option value="">Any provider</option>
            {allProviders().map((p) => (
              <option key={p.name} value={p.name}>
                {p.display_name}
              </option>
            ))}
          </select>
        </div>
        {data && (
          <p class="filter-count muted" aria-live="polite">
            {shown.length === data.keys.length
              ? `${formatCount(data.keys.length)} ${data.keys.length === 1 ? 'key' : 'keys'}`
              : `${formatCount(shown.length)} of ${formatCount(data.keys.length)} keys`}
            {data.truncated && ` (the newest ${formatCount(MAX_KEYS)} only)`}
          </p>
        )}
      </div>

      <ErrorNote error={error} />
      {!data && !error && <Loading what="keys" />}
      {data && shown.length === 0 && (
        <Empty>
          {data.keys.length === 0 && !status && !provider ? (
            <>
              No keys yet. <a href={href.create}>Create the first one</a>.
            </>
          ) : (
            'No keys match these filters.'
          )}
        </Empty>
      )}
      {shown.length > 0 && <KeyTable keys={shown} />}
    </>
  );
}
