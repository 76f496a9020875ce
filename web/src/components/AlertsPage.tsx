// All alerts (#/alerts), newest first, filtered by rule, key and acknowledgement on the server,
// refreshed every 2 s. "Show more" raises how many are loaded (up to 1000, the API's page limit).
import { useEffect, useState } from 'preact/hooks';
import { get, query } from '../api';
import { formatCount } from '../format';
import { loadNames } from '../keyNames';
import { usePoll } from '../poll';
import { ALERT_RULES, type AlertPage } from '../types';
import { AlertTable } from './AlertTable';
import { Empty, ErrorNote, Loading, PageHeader } from './ui';

const STEP = 100;
const MAX = 1000;

// `value`, once it has stopped changing for `ms`: the key filter does not query per keystroke.
function useSettled<T>(value: T, ms = 300): T {
  const [settled, setSettled] = useState(value);
  useEffect(() => {
    const timer = setTimeout(() => setSettled(value), ms);
    return () => clearTimeout(timer);
  }, [value, ms]);
  return settled;
}

export function AlertsPage() {
  const [rule, setRule] = useState('');
  const [keyText, setKeyText] = useState('');
  const [unacknowledged, setUnacknowledged] = useState(false);
  const [limit, setLimit] = useState(STEP);
  const key = useSettled(keyText.trim());

  const { data, error, refresh } = usePoll(
    async (signal) => {
      const page = await get<AlertPage>(
        `/api/v1/alerts${query({ rule, key, acknowledged: unacknowledged ? 'false' : undefined, limit })}`,
        signal,
      );
      await loadNames(
        page.alerts.map((a) => a.key_id ?? ''),
        signal,
      );
      return page;
    },
    [rule, key, unacknowledged, limit],
    { keepData: true },
  );

  return (
    <>
      <PageHeader
        title="Alerts"
        sub="What till's alert rules noticed: budget marks, anomalies, stale tokens, rejected credentials."
      />
      <div class="filters" role="search">
        <div class="field">
          <label for="alerts-rule">Rule</label>
          <select id="alerts-rule" value={rule} onChange={(e) => setRule(e.currentTarget.value)}>
            <option value="">Any rule</option>
            {ALERT_RULES.map((r) => (
              <option key={r} value={r}>
                {r}
              </option>
            ))}
          </select>
        </div>
        <div class="field">
          <label for="alerts-key">Key id</label>
          <input
            id="alerts-key"
            type="search"
            placeholder="key_…"
            value={keyText}
            onInput={(e) => setKeyText(e.currentTarget.value)}
          />
        </div>
        <label class="checkbox">
          <input
            type="checkbox"
            checked={unacknowledged}
            onChange={(e) => setUnacknowledged(e.currentTarget.checked)}
          />
          Unacknowledged only
        </label>
        {data && (
          <p class="filter-count muted" aria-live="polite">
            {formatCount(data.alerts.length)} {data.alerts.length === 1 ? 'alert' : 'alerts'}
            {data.next_cursor ? ' (more below)' : ''}
          </p>
        )}
      </div>
      <ErrorNote error={error} />
      {!data && !error && <Loading what="alerts" />}
      {data && data.alerts.length === 0 && <Empty>No alerts match.</Empty>}
      {data && data.alerts.length > 0 && (
        <AlertTable alerts={data.alerts} onChanged={refresh} label="Alerts" />
      )}
      {data?.next_cursor && limit < MAX && (
        <div class="more">
          <button type="button" class="button" onClick={() => setLimit((l) => Math.min(MAX, l + STEP))}>
            Show more
          </button>
        </div>
      )}
    </>
  );
}
