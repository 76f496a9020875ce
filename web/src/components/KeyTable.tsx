// A table of keys: name (a link to the key's page), id, provider, status, a bar per limit, created
// and expires. At phone width each row is a card (the `stack` class). The keys page lists every
// key in it; a key's page lists its sub-keys.
import { shortId } from '../format';
import { providerLabel } from '../providers';
import { href } from '../router';
import type { KeyRecord } from '../types';
import { KeyLimit, StatusBadge, Time } from './ui';

export function KeyTable({ keys, label = 'Keys' }: { keys: KeyRecord[]; label?: string }) {
  return (
    <div class="table-wrap" tabIndex={0} role="region" aria-label={label}>
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
