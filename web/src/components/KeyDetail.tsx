// One key (#/keys/<id>): its record, usage charts over a chosen range, recent requests, its
// alerts, and the actions an admin takes on it (suspend, resume, rotate, revoke), each confirmed
// in a dialog. Everything refreshes every 2 s.
import { useState } from 'preact/hooks';
import { ApiError, del, get, post, query, segment } from '../api';
import { formatCount, formatEventTime, formatMs, formatRelative, formatUsd } from '../format';
import { knownName, rememberKeys } from '../keyNames';
import { usePoll } from '../poll';
import { providerLabel } from '../providers';
import { href } from '../router';
import type {
  AlertPage,
  IssuedKey,
  KeyPage,
  KeyRecord,
  UsageEvent,
  UsageEventPage,
  UsageSummary,
} from '../types';
import { AlertTable } from './AlertTable';
import { ConfirmDialog } from './ConfirmDialog';
import { KeyTable } from './KeyTable';
import { TokenPanel } from './TokenPanel';
import { TotalsLine, UsageCharts } from './UsageCharts';
import {
  Empty,
  ErrorNote,
  KeyLimit,
  KeyLink,
  Loading,
  PageHeader,
  RANGES,
  RangePicker,
  StatusBadge,
  Time,
  type Range,
} from './ui';

// Sub-keys listed on a key's page: enough for any agent tree a person reads on one screen.
const SUB_KEYS = 50;

interface KeyPageData {
  key: KeyRecord;
  // Its direct sub-keys, newest first (the first page).
  children: KeyPage;
  usage: UsageSummary;
  events: UsageEvent[];
  alerts: AlertPage;
}

async function loadKeyPage(id: string, range: Range, signal: AbortSignal): Promise<KeyPageData> {
  const [key, children, usage, events, alerts] = await Promise.all([
    get<KeyRecord>(`/api/v1/keys/${segment(id)}`, signal),
    get<KeyPage>(`/api/v1/keys${query({ parent: id, limit: SUB_KEYS })}`, signal),
    get<UsageSummary>(`/api/v1/usage${query({ key: id, from: range.id, bucket: range.bucket })}`, signal),
    get<UsageEventPage>(`/api/v1/usage/events${query({ key: id, limit: 50 })}`, signal),
    get<AlertPage>(`/api/v1/alerts${query({ key: id, limit: 20 })}`, signal),
  ]);
  rememberKeys([key, ...children.keys]);
  return { key, children, usage, events: events.events, alerts };
}

type Action = 'suspend' | 'resume' | 'rotate' | 'revoke';

// Which actions a key's status allows (src/store: a revoked key cannot change; only a suspended
// key resumes; an expired key's new token would be expired too).
function allowed(key: KeyRecord): Record<Action, boolean> {
  const s = key.status;
  return {
    suspend: s === 'active' || s === 'exhausted',
    resume: s === 'suspended',
    rotate: s === 'active' || s === 'exhausted' || s === 'suspended',
    revoke: s !== 'revoked',
  };
}

export function KeyDetail({ id }: { id: string }) {
  const [range, setRange] = useState<Range>(RANGES[1]!);
  const { data, error, refresh } = usePoll((signal) => loadKeyPage(id, range, signal), [id, range.id], {
    keepData: true,
  });

  const [action, setAction] = useState<Action | null>(null);
  const [busy, setBusy] = useState(false);
  const [actionError, setActionError] = useState<string | undefined>();
  const [grace, setGrace] = useState('10m');
  const [upstreamKey, setUpstreamKey] = useState('');
  const [upstreamError, setUpstreamError] = useState<string | undefined>();
  const [graceError, setGraceError] = useState<string | undefined>();
  const [rotated, setRotated] = useState<IssuedKey | null>(null);

  const open = (a: Action) => {
    setActionError(undefined);
    setUpstreamError(undefined);
    setGraceError(undefined);
    setUpstreamKey('');
    setAction(a);
  };
  const close = () => {
    if (!busy) setAction(null);
  };

  const run = async () => {
    if (!action || !data) return;
    setBusy(true);
    setActionError(undefined);
    setUpstreamError(undefined);
    setGraceError(undefined);
    const path = `/api/v1/keys/${segment(id)}`;
    try {
      if (action === 'revoke') await del(path);
      if (action === 'suspend') await post(`${path}/suspend`);
      if (action === 'resume') await post(`${path}/resume`);
      if (action === 'rotate') {
        const body: Record<string, string> = {};
        if (grace.trim()) body.grace = grace.trim();
        if (upstreamKey.trim()) body.upstream_key = upstreamKey.trim();
        setRotated(await post<IssuedKey>(`${path}/rotate`, body));
        setUpstreamKey('');
      }
      setAction(null);
      refresh();
    } catch (e) {
      const message = e instanceof Error ? e.message : String(e);
      if (e instanceof ApiError && e.param === 'upstream_key') setUpstreamError(message);
      else if (e instanceof ApiError && e.param === 'grace') setGraceError(message);
      else setActionError(message);
    } finally {
      setBusy(false);
    }
  };

  if (!data) {
    return (
      <>
        <PageHeader title={knownName(id) || id} />
        {error ? (
          <ErrorNote>
            {error instanceof ApiError && error.status === 404 ? (
              <>
                There is no key {id}. <a href={href.keys}>All keys</a>
              </>
            ) : (
              error.message
            )}
          </ErrorNote>
        ) : (
          <Loading what="the key" />
        )}
      </>
    );
  }

  const { key, children, usage, events, alerts } = data;
  const can = allowed(key);
  // A key without a vault credential carries its upstream key sealed in its token; a new token
  // needs it again (till does not keep it).
  const sealed = key.credential === null;

  return (
    <>
      <nav class="breadcrumb" aria-label="Breadcrumb">
        <a href={href.keys}>Keys</a> <span aria-hidden="true">/</span> <span>{key.name || key.id}</span>
      </nav>
      <PageHeader
        title={
          <>
            {key.name || <span class="muted">(unnamed)</span>} <StatusBadge status={key.status} />
          </>
        }
        sub={
          <>
            <code>{key.id}</code> · {providerLabel(key.provider)}
          </>
        }
      >
        {can.suspend && (
          <button type="button" class="button" onClick={() => open('suspend')}>
            Suspend
          </button>
        )}
        {can.resume && (
          <button type="button" class="button" onClick={() => open('resume')}>
            Resume
          </button>
        )}
        {can.rotate && (
          <button type="button" class="button" onClick={() => open('rotate')}>
            Rotate
          </button>
        )}
        {can.revoke && (
          <button type="button" class="button danger" onClick={() => open('revoke')}>
            Revoke
          </button>
        )}
      </PageHeader>

      {error && <ErrorNote>Could not refresh: {error.message}</ErrorNote>}

      {rotated && (
        <TokenPanel
          issued={rotated}
          title="The key's new token"
          doneLabel="Done"
          onDone={() => setRotated(null)}
        />
      )}

      <div class="detail-grid">
        <section class="card" aria-labelledby="limits-title">
          <h2 id="limits-title">Limits</h2>
          <dl class="limits">
            {(['requests', 'tokens', 'spend'] as const).map((kind) => (
              <div key={kind} class="limit-row" data-limit={kind}>
                <dt>{kind === 'requests' ? 'Requests' : kind === 'tokens' ? 'Tokens' : 'Spend'}</dt>
                <dd>
                  <KeyLimit keyRecord={key} kind={kind} detail />
                </dd>
              </div>
            ))}
          </dl>
          <h3>Used in detail</h3>
          <p class="muted small">
            {formatCount(key.used.input_tokens)} input ({formatCount(key.used.cached_input_tokens)} cached) ·{' '}
            {formatCount(key.used.output_tokens)} output ({formatCount(key.used.reasoning_tokens)} reasoning)
            · {formatCount(key.used.unmetered_tokens)} unmetered tokens
          </p>
        </section>

        <section class="card" aria-labelledby="details-title">
          <h2 id="details-title">Details</h2>
          <dl class="details">
            <dt>Created</dt>
            <dd>
              <Time at={key.created_at} />
            </dd>
            <dt>Expires</dt>
            <dd>{key.expires_at ? <Time at={key.expires_at} relative /> : 'never'}</dd>
            <dt>Upstream credential</dt>
            <dd>
              {key.credential ? (
                <>
                  vault credential <code>{key.credential}</code>
                </>
              ) : (
                'sealed in the token'
              )}
            </dd>
            <dt>Parent key</dt>
            <dd>
              {key.parent_id ? (
                <KeyLink id={key.parent_id} name={knownName(key.parent_id)} />
              ) : (
                'none (a root key)'
              )}
            </dd>
            <dt>Token issued</dt>
            <dd>
              <Time at={key.rotated_at} />
            </dd>
            <dt>Rotation</dt>
            <dd>
              {key.rotate_every ? (
                <>
                  every {key.rotate_every}; due <Time at={key.rotation_due_at} relative />
                </>
              ) : (
                'not scheduled'
              )}
            </dd>
            {key.previous_token_valid_until && (
              <>
                <dt>Previous token</dt>
                <dd>
                  accepted until <Time at={key.previous_token_valid_until} relative />
                </dd>
              </>
            )}
            <dt>Models</dt>
            <dd>
              {key.scope.models.length
                ? key.scope.models.map((m) => (
                    <code key={m} class="chip">
                      {m}
                    </code>
                  ))
                : 'any'}
            </dd>
            <dt>Requests per minute</dt>
            <dd>{key.scope.rpm ?? 'no limit'}</dd>
            <dt>Max concurrency</dt>
            <dd>{key.scope.max_concurrency ?? 'no limit'}</dd>
            <dt>Client addresses</dt>
            <dd>
              {key.scope.allowed_cidrs.length
                ? key.scope.allowed_cidrs.map((c) => (
                    <code key={c} class="chip">
                      {c}
                    </code>
                  ))
                : 'any'}
            </dd>
            <dt>Updated</dt>
            <dd>
              <Time at={key.updated_at} />
            </dd>
            {Object.keys(key.metadata).length > 0 && (
              <>
                <dt>Metadata</dt>
                <dd>
                  <pre class="metadata">{JSON.stringify(key.metadata, null, 2)}</pre>
                </dd>
              </>
            )}
          </dl>
        </section>
      </div>

      {children.keys.length > 0 && (
        <section class="card" aria-labelledby="sub-keys-title">
          <h2 id="sub-keys-title">Sub-keys</h2>
          <p class="muted">
            Carved out of this key's budget by its holder (<code>till run</code> inside{' '}
            <code>till run</code>, or <code>POST /api/v1/key/children</code>)
            {children.next_cursor ? `; the newest ${SUB_KEYS} are shown` : ''}.
          </p>
          <KeyTable keys={children.keys} label="Sub-keys" />
        </section>
      )}

      <section class="card" aria-labelledby="usage-title">
        <div class="card-header">
          <h2 id="usage-title">Usage</h2>
          <RangePicker value={range} onChange={setRange} />
        </div>
        <TotalsLine totals={usage.totals} />
        <UsageCharts usage={usage} measures={['requests', 'tokens', 'spend']} />
      </section>

      <section class="card" aria-labelledby="events-title">
        <h2 id="events-title">Recent requests</h2>
        {events.length === 0 ? <Empty>No requests yet.</Empty> : <EventTable events={events} />}
      </section>

      <section class="card" aria-labelledby="key-alerts-title">
        <h2 id="key-alerts-title">Alerts</h2>
        {alerts.alerts.length === 0 ? (
          <Empty>No alerts for this key.</Empty>
        ) : (
          <AlertTable
            alerts={alerts.alerts}
            onChanged={refresh}
            showKey={false}
            label="Alerts for this key"
          />
        )}
      </section>

      <ConfirmDialog
        open={action === 'revoke'}
        title={`Revoke ${key.name || key.id}?`}
        confirmLabel="Revoke key"
        danger
        busy={busy}
        error={actionError}
        onConfirm={() => void run()}
        onCancel={close}
      >
        <p>
          Its token, and those of all its sub-keys, are refused from their next request. A revoked key cannot
          come back.
        </p>
      </ConfirmDialog>
      <ConfirmDialog
        open={action === 'suspend'}
        title={`Suspend ${key.name || key.id}?`}
        confirmLabel="Suspend key"
        busy={busy}
        error={actionError}
        onConfirm={() => void run()}
        onCancel={close}
      >
        <p>
          It and its sub-keys answer 403 key_suspended until you resume it. Its limits and usage stay as they
          are.
        </p>
      </ConfirmDialog>
      <ConfirmDialog
        open={action === 'resume'}
        title={`Resume ${key.name || key.id}?`}
        confirmLabel="Resume key"
        busy={busy}
        error={actionError}
        onConfirm={() => void run()}
        onCancel={close}
      >
        <p>
          It and its suspended sub-keys take requests again (a key whose budget is used up comes back
          exhausted).
        </p>
      </ConfirmDialog>
      <ConfirmDialog
        open={action === 'rotate'}
        title={`Rotate ${key.name || key.id}?`}
        confirmLabel="Rotate key"
        busy={busy}
        error={actionError}
        onConfirm={() => void run()}
        onCancel={close}
      >
        <p>A new token for the same key: same id, limits and usage. The new token is shown once.</p>
        <div class={`field${graceError ? ' has-error' : ''}`}>
          <label for="rotate-grace">Grace for the old token</label>
          <input
            id="rotate-grace"
            type="text"
            value={grace}
            autoComplete="off"
            autoFocus
            aria-invalid={graceError ? true : undefined}
            aria-describedby={graceError ? 'rotate-grace-hint rotate-grace-error' : 'rotate-grace-hint'}
            onInput={(e) => setGrace(e.currentTarget.value)}
          />
          <p class="hint" id="rotate-grace-hint">
            How long the old token keeps working: <code>10m</code>, <code>1h</code>, up to <code>30d</code>.{' '}
            <code>0s</code>: refused from its next request.
          </p>
          {graceError && (
            <p class="field-error" id="rotate-grace-error" role="alert">
              {graceError}
            </p>
          )}
        </div>
        {(sealed || upstreamError) && (
          <div class={`field${upstreamError ? ' has-error' : ''}`}>
            <label for="rotate-upstream-key">Upstream API key</label>
            <input
              id="rotate-upstream-key"
              type="password"
              value={upstreamKey}
              autoComplete="off"
              spellcheck={false}
              aria-invalid={upstreamError ? true : undefined}
              aria-describedby={
                upstreamError ? 'rotate-upstream-hint rotate-upstream-error' : 'rotate-upstream-hint'
              }
              onInput={(e) => setUpstreamKey(e.currentTarget.value)}
            />
            <p class="hint" id="rotate-upstream-hint">
              This key carries the provider's key sealed in its token and till does not keep it: give it again
              to seal into the new token.
            </p>
            {upstreamError && (
              <p class="field-error" id="rotate-upstream-error" role="alert">
                {upstreamError}
              </p>
            )}
          </div>
        )}
      </ConfirmDialog>
    </>
  );
}

function EventTable({ events }: { events: UsageEvent[] }) {
  return (
    <div class="table-wrap" tabIndex={0} role="region" aria-label="Recent requests">
      <table class="table events-table">
        <thead>
          <tr>
            <th scope="col">Time</th>
            <th scope="col">Model</th>
            <th scope="col">Status</th>
            <th scope="col" class="num">
              Input
            </th>
            <th scope="col" class="num">
              Output
            </th>
            <th scope="col" class="num">
              Spend
            </th>
            <th scope="col" class="num">
              Latency
            </th>
            <th scope="col">Client</th>
          </tr>
        </thead>
        <tbody>
          {events.map((e) => (
            <tr key={e.id}>
              <td class="nowrap">
                <time dateTime={e.at} title={`${e.at} (${formatRelative(e.at)})`}>
                  {formatEventTime(e.at)}
                </time>
              </td>
              <td>
                {e.model ? <code>{e.model}</code> : <span class="muted">—</span>}
                {e.stream && <span class="tag">stream</span>}
              </td>
              <td class="nowrap">
                <span class={`http-status http-${String(e.status).charAt(0)}xx`}>{e.status}</span>
                {e.error_code && <span class="muted"> {e.error_code}</span>}
                {!e.forwarded && <span class="tag">refused by till</span>}
              </td>
              <td class="num">{formatCount(e.input_tokens)}</td>
              <td class="num">{formatCount(e.output_tokens)}</td>
              <td class="num" title={`$${e.spend_usd}`}>
                {formatUsd(e.spend_usd)}
              </td>
              <td class="num" title={`upstream ${formatMs(e.upstream_ms)}`}>
                {formatMs(e.latency_ms)}
              </td>
              <td>
                <code>{e.client_address}</code>
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}
