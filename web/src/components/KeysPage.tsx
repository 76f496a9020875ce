// The key table: every key (up to MAX_KEYS, newest first) with its status and a bar per limit,
// refreshed every 2 s. Status and provider filter on the server; the search box filters the
// loaded rows by name or id as you type.
import { useMemo, useState } from 'preact/hooks';
import { get, query } from '../api';
import { formatCount, shortId } from '../format';
import { rememberKeys } from '../keyNames';
import { usePoll } from '../poll';
import { allProviders, providerLabel } from '../providers';
import { href } from '../router';
import { KEY_STATUSES, type KeyPage, type KeyRecord } from '../types';
import { Empty, ErrorNote, KeyLimit, Loading, PageHeader, StatusBadge, Time } from './ui';

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

function KeyTable({ keys }: { keys: KeyRecord[] }) {
  return (
    <div class="table-wrap" tabIndex={0} role="region" aria-label="Keys">
      <table class="table keys-table stack">
        <thead>
          <tr>
            <th scope="col">Name</th>
            <th scope="col">Id</th>
            <th scope="col">Provider</th>
            <th scope="col">Status</th>
            <th scope="col">Requests</th>
            <th scope="col">Tokens</th>
            <th scope="col">Spend</th>
            <th scope="col">Created</th>
            <th scope="col">Expires</th>
          </tr>
        </thead>
        <tbody>
          {keys.map((k) => (
            <tr key={k.id} data-key-id={k.id}>
              <th scope="row" class="key-name">
                <a href={href.key(k.id)} title={k.name || undefined}>
                  {k.name || <span class="muted">(unnamed)</span>}
                </a>
              </th>
              <td data-label="Id">
                <code title={k.id}>{shortId(k.id)}</code>
              </td>
              <td data-label="Provider">{providerLabel(k.provider)}</td>
              <td data-label="Status">
                <StatusBadge status={k.status} />
              </td>
              <td class="limit-cell" data-limit="requests" data-label="Requests">
                <KeyLimit keyRecord={k} kind="requests" />
              </td>
              <td class="limit-cell" data-limit="tokens" data-label="Tokens">
                <KeyLimit keyRecord={k} kind="tokens" />
              </td>
              <td class="limit-cell" data-limit="spend" data-label="Spend">
                <KeyLimit keyRecord={k} kind="spend" />
              </td>
              <td class="nowrap" data-label="Created">
                <Time at={k.created_at} short />
              </td>
              <td class="nowrap" data-label="Expires">
                {k.expires_at ? <Time at={k.expires_at} short /> : <span class="muted">never</span>}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}
