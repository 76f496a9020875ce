// Usage over time from GET /api/v1/usage: a totals line and a chart per measure. The series
// holds every bucket of the range, zeros included, so the charts have no gaps.
import { formatCompact, formatCount, formatUsd, usdNumber } from '../format';
import type { UsageBucket, UsageSummary, UsageTotals } from '../types';
import { Chart, toSeconds } from './Chart';

const BUCKET_SECONDS: Record<UsageBucket, number> = { minute: 60, hour: 3600, day: 86400 };

export type Measure = 'requests' | 'tokens' | 'spend';

// "$0.000011" on an axis is noise; charts round money to what the axis needs.
function axisUsd(value: number): string {
  if (value === 0) return '$0';
  if (value >= 1) return `$${formatCompact(value)}`;
  return `$${Number(value.toPrecision(2))}`;
}

export function TotalsLine({ totals }: { totals: UsageTotals }) {
  return (
    <p class="totals" data-testid="usage-totals">
      <span>
        <strong>{formatCount(totals.requests)}</strong> {totals.requests === 1 ? 'request' : 'requests'}
      </span>
      <span>
        <strong>{formatCount(totals.refused)}</strong> refused
      </span>
      <span>
        <strong>{formatCount(totals.tokens)}</strong> tokens{' '}
        <span class="muted">
          ({formatCount(totals.input_tokens)} input, {formatCount(totals.output_tokens)} output)
        </span>
      </span>
      <span title={`$${totals.spend_usd}`}>
        <strong>{formatUsd(totals.spend_usd)}</strong> spent
      </span>
    </p>
  );
}

export function UsageCharts({ usage, measures }: { usage: UsageSummary; measures: readonly Measure[] }) {
  const times = usage.series.map((p) => toSeconds(p.start));
  const per = `per ${usage.bucket}`;
  const step = BUCKET_SECONDS[usage.bucket];
  const charts = {
    requests: (
      <Chart
        key="requests"
        title={`Requests ${per}`}
        times={times}
        values={usage.series.map((p) => p.requests)}
        step={step}
        integer
        format={formatCompact}
        colorVar="--chart-1"
        summary={`${usage.totals.requests} requests in this range`}
      />
    ),
    tokens: (
      <Chart
        key="tokens"
        title={`Tokens ${per}`}
        times={times}
        values={usage.series.map((p) => p.tokens)}
        step={step}
        integer
        format={formatCompact}
        colorVar="--chart-2"
        summary={`${usage.totals.tokens} tokens in this range`}
      />
    ),
    spend: (
      <Chart
        key="spend"
        title={`Spend ${per} (USD)`}
        times={times}
        values={usage.series.map((p) => usdNumber(p.spend_usd))}
        step={step}
        format={axisUsd}
        colorVar="--chart-3"
        summary={`$${usage.totals.spend_usd} spent in this range`}
      />
    ),
  };
  return <div class={`charts charts-${measures.length}`}>{measures.map((m) => charts[m])}</div>;
}
