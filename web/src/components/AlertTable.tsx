// Alerts as a table: when, severity, rule, key, message, and whether someone acknowledged it
// (with the button that does). Used by the alerts page, the overview and a key's page.
import { useState } from 'preact/hooks';
import { post } from '../api';
import { knownName } from '../keyNames';
import type { Alert } from '../types';
import { ErrorNote, KeyLink, SeverityBadge, Time } from './ui';

interface AlertTableProps {
  alerts: Alert[];
  // Called after an acknowledgement succeeded, to reload.
  onChanged: () => void;
  showKey?: boolean;
  label: string;
}

export function AlertTable({ alerts, onChanged, showKey = true, label }: AlertTableProps) {
  const [busy, setBusy] = useState<number | null>(null);
  const [error, setError] = useState<string | null>(null);

  const acknowledge = async (alert: Alert) => {
    setBusy(alert.id);
    setError(null);
    try {
      await post(`/api/v1/alerts/${alert.id}/acknowledge`);
      onChanged();
    } catch (e) {
      setError(`Could not acknowledge alert ${alert.id}: ${e instanceof Error ? e.message : String(e)}`);
    } finally {
      setBusy(null);
    }
  };

  return (
    <>
      <ErrorNote error={error ?? undefined} />
      <div class="table-wrap" tabIndex={0} role="region" aria-label={label}>
        <table class="table alerts-table stack">
          <thead>
            <tr>
              <th scope="col">Time</th>
              <th scope="col">Severity</th>
              <th scope="col">Rule</th>
              {showKey && <th scope="col">Key</th>}
              <th scope="col">Message</th>
              <th scope="col">Acknowledged</th>
            </tr>
          </thead>
          <tbody>
            {alerts.map((a) => (
              <tr key={a.id} data-alert-id={a.id} class={a.acknowledged ? 'acknowledged' : ''}>
                <td class="nowrap" data-label="Time">
                  <Time at={a.created_at} short />
                </td>
                <td data-label="Severity">
                  <SeverityBadge severity={a.severity} />
                </td>
                <td data-label="Rule">
                  <code>{a.rule}</code>
                  {a.action === 'suspend' && (
                    <span class="badge status-suspended action-badge">suspended key</span>
                  )}
                </td>
                {showKey && (
                  <td class="nowrap" data-label="Key">
                    <KeyLink id={a.key_id} name={a.key_id ? knownName(a.key_id) : undefined} />
                  </td>
                )}
                <td class="message">{a.message}</td>
                <td class="nowrap" data-label="Acknowledged">
                  {a.acknowledged ? (
                    <span class="muted">
                      <Time at={a.acknowledged_at} short />
                    </span>
                  ) : (
                    <button
                      type="button"
                      class="button small"
                      disabled={busy === a.id}
                      aria-label={`Acknowledge alert ${a.id} (${a.rule})`}
                      onClick={() => void acknowledge(a)}
                    >
                      Acknowledge
                    </button>
                  )}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
    </>
  );
}
