// The overview (#/): usage across all keys over a chosen range, the busiest keys and models, and
// the latest alerts.
import { useState } from 'preact/hooks';
import { get, query } from '../api';
import { formatCount, formatUsd } from '../format';
import { knownName, loadNames } from '../keyNames';
import { usePoll } from '../poll';
import { href } from '../router';
import type { AlertPage, UsageGroup, UsageSummary } from '../types';
import { AlertTable } from './AlertTable';
import { UsageCharts } from './UsageCharts';
import { Empty, ErrorNote, KeyLink, Loading, PageHeader, RANGES, RangePicker, type Range } from './ui';

const TOP = 8;
const RECENT_ALERTS = 8;

interface OverviewData {
  usage: UsageSummary;
  topKeys: UsageGroup[];
  topModels: UsageGroup[];
  // Keys with at least one event in the range.
  keysUsed: number;
  alerts: AlertPage;
}

async function loadOverview(range: Range, signal: AbortSignal): Promise<OverviewData> {
  // The grouped queries need only each group's totals, so they ask for day buckets: the fewest
  // points per group. Totals cover exactly from..now whatever the bucket.
  const grouped = (by: string) =>
    get<UsageSummary>(`/api/v1/usage${query({ from: range.id, bucket: 'day', group_by: by })}`, signal);
  const [usage, byKey, byModel, alerts] = await Promise.all([
    get<UsageSummary>(`/api/v1/usage${query({ from: range.id, bucket: range.bucket })}`, signal),
    grouped('key'),
    grouped('model'),
    get<AlertPage>(`/api/v1/alerts${query({ limit: RECENT_ALERTS })}`, signal),
  ]);
  // Groups come sorted by spend, then requests (SqliteStore::usage_summary).
  const topKeys = (byKey.groups ?? []).slice(0, TOP);
  await loadNames(
    [...topKeys.map((g) => g.key_id ?? ''), ...alerts.alerts.map((a) => a.key_id ?? '')],
    signal,
  );
  return {
    usage,
    topKeys,
    topModels: (byModel.groups ?? []).slice(0, TOP),
    keysUsed: (byKey.groups ?? []).filter((g) => g.key_id).length,
    alerts,
  };
}

export function Overview() {
  const [range, setRange] = useState<Range>(RANGES[1]!);
  const { data, error, refresh } = usePoll((signal) => loadOverview(range, signal), [range.id], {
    keepData: true,
  });

  return (
    <>
      <PageHeader title="Overview" sub="Requests, tokens and spend through till, across all keys.">
        <RangePicker value={range} onChange={setRange} />
      </PageHeader>
      <ErrorNote error={error} />
      {!data && !error && <Loading what="usage" />}
      {data && (
        <>
          <section class="card" aria-labelledby="overview-usage">
            <h2 id="overview-usage" class="visually-hidden">
              Usage over {range.label}
            </h2>
            <StatCards data={data} />
            <UsageCharts usage={data.usage} measures={['spend', 'requests']} />
          </section>
          <div class="detail-grid">
            <section class="card" aria-labelledby="top-keys">
              <h2 id="top-keys">Top keys</h2>
              <GroupTable groups={data.topKeys} by="key" />
            </section>
            <section class="card" aria-labelledby="top-models">
              <h2 id="top-models">Top models</h2>
              <GroupTable groups={data.topModels} by="model" />
            </section>
          </div>
          <section class="card" aria-labelledby="recent-alerts">
            <div class="card-header">
              <h2 id="recent-alerts">Recent alerts</h2>
              <a href={href.alerts}>All alerts</a>
            </div>
            {data.alerts.alerts.length === 0 ? (
              <Empty>No alerts.</Empty>
            ) : (
              <AlertTable alerts={data.alerts.alerts} onChanged={refresh} label="Recent alerts" />
            )}
          </section>
        </>
      )}
    </>
  );
}

function StatCards({ data }: { data: OverviewData }) {
  const t = data.usage.totals;
  return (
    <div class="stats">
      <div class="stat">
        <div class="stat-label">Spend</div>
        <div class="stat-value" title={`$${t.spend_usd}`}>
          {formatUsd(t.spend_usd)}
        </div>
      </div>
      <div class="stat">
        <div class="stat-label">Requests</div>
        <div class="stat-value">{formatCount(t.requests)}</div>
        <div class="stat-sub muted">{formatCount(t.refused)} refused by till</div>
      </div>
      <div class="stat">
        <div class="stat-label">Tokens</div>
        <div class="stat-value">{formatCount(t.tokens)}</div>
        <div class="stat-sub muted">
          {formatCount(t.input_tokens)} in · {formatCount(t.output_tokens)} out
        </div>
      </div>
      <div class="stat">
        <div class="stat-label">Keys used</div>
        <div class="stat-value">{formatCount(data.keysUsed)}</div>
        <div class="stat-sub muted">with requests in this range</div>
      </div>
    </div>
  );
}

function GroupTable({ groups, by }: { groups: UsageGroup[]; by: 'key' | 'model' }) {
  if (groups.length === 0) return <Empty>No requests in this range.</Empty>;
  return (
    <div class="table-wrap" tabIndex={0} role="region" aria-label={by === 'key' ? 'Top keys' : 'Top models'}>
      <table class="table compact">
        <thead>
          <tr>
            <th scope="col">{by === 'key' ? 'Key' : 'Model'}</th>
            <th scope="col" class="num">
              Requests
            </th>
            <th scope="col" class="num">
              Tokens
            </th>
            <th scope="col" class="num">
              Spend
            </th>
          </tr>
        </thead>
        <tbody>
          {groups.map((g) => {
            const name = by === 'key' ? (g.key_id ?? '') : (g.model ?? '');
            return (
              <tr key={name}>
                <th scope="row">
                  {by === 'key' ? (
                    name ? (
                      <KeyLink id={name} name={knownName(name)} />
                    ) : (
                      <span class="muted">no key (refused)</span>
                    )
                  ) : name ? (
                    <code>{name}</code>
                  ) : (
                    <span class="muted">none (refused)</span>
                  )}
                </th>
                <td class="num">{formatCount(g.totals.requests)}</td>
                <td class="num">{formatCount(g.totals.tokens)}</td>
                <td class="num" title={`$${g.totals.spend_usd}`}>
                  {formatUsd(g.totals.spend_usd)}
                </td>
              </tr>
            );
          })}
        </tbody>
      </table>
    </div>
  );
}
