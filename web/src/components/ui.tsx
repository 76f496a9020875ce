// Small pieces every page uses: status and severity badges, limit bars, the range picker, error
// and empty states, copy buttons.
import type { ComponentChildren } from 'preact';
import { useState } from 'preact/hooks';
import { formatCount, formatRelative, formatShortTime, formatTime, formatUsd, usdNumber } from '../format';
import { href } from '../router';
import type { KeyRecord, KeyStatus, UsageBucket } from '../types';

export function StatusBadge({ status }: { status: KeyStatus | string }) {
  return <span class={`badge status-${status}`}>{status}</span>;
}

export function SeverityBadge({ severity }: { severity: string }) {
  return <span class={`badge severity-${severity}`}>{severity}</span>;
}

export function KeyLink({ id, name }: { id: string | null; name?: string | undefined }) {
  if (!id) return <span class="muted">—</span>;
  return (
    <a href={href.key(id)} class="key-link" title={name ? `${name} (${id})` : id}>
      {name ? name : <code>{id}</code>}
    </a>
  );
}

// A time in local time (`short` for table cells), the exact UTC value on hover, the relative
// time after it when asked.
export function Time({
  at,
  relative = false,
  seconds = false,
  short = false,
}: {
  at: string | null;
  relative?: boolean;
  seconds?: boolean;
  short?: boolean;
}) {
  if (!at) return <span class="muted">—</span>;
  return (
    <time dateTime={at} title={at}>
      {short ? formatShortTime(at) : formatTime(at, { seconds })}
      {relative && <span class="muted"> ({formatRelative(at)})</span>}
    </time>
  );
}

interface LimitBarProps {
  label: string;
  used: number;
  limit: number;
  // The text shown and read out, e.g. "5 / 20" or "$0.40 / $1.00".
  text: string;
  valueText: string;
  reserved?: string | undefined;
  // More text after the numbers ("20 left").
  suffix?: string | undefined;
}

// Used against a limit: a progress bar with the numbers beside it as text.
export function LimitBar({ label, used, limit, text, valueText, reserved, suffix }: LimitBarProps) {
  const fraction = limit > 0 ? Math.min(1, used / limit) : 1;
  const level = fraction >= 1 ? 'full' : fraction >= 0.8 ? 'high' : 'ok';
  return (
    <div class="limit">
      <div
        class={`limit-track level-${level}`}
        role="progressbar"
        aria-label={label}
        aria-valuemin={0}
        aria-valuemax={limit}
        aria-valuenow={Math.min(used, limit)}
        aria-valuetext={valueText}
      >
        <div class="limit-fill" style={{ width: `${(fraction * 100).toFixed(1)}%` }} />
      </div>
      <span class="limit-text">
        {text}
        {suffix && <span class="muted"> · {suffix}</span>}
        {reserved && <span class="muted"> · {reserved} reserved</span>}
      </span>
    </div>
  );
}

export type LimitKind = 'requests' | 'tokens' | 'spend';
export const LIMIT_LABELS: Record<LimitKind, string> = {
  requests: 'Requests',
  tokens: 'Tokens',
  spend: 'Spend',
};

// One of a key's three limits as a bar, or its usage and "no limit".
// `detail` adds what is left and what requests in flight hold (the key's page).
export function KeyLimit({
  keyRecord: k,
  kind,
  detail = false,
}: {
  keyRecord: KeyRecord;
  kind: LimitKind;
  detail?: boolean;
}) {
  const label = `${LIMIT_LABELS[kind]} used`;
  if (kind === 'spend') {
    const used = k.used.spend_usd;
    const limit = k.limits.max_spend_usd;
    if (limit === null) return <NoLimit used={formatUsd(used)} title={`$${used}`} />;
    const reserved = usdNumber(k.reserved.spend_usd) > 0 ? formatUsd(k.reserved.spend_usd) : undefined;
    return (
      <LimitBar
        label={label}
        used={usdNumber(used)}
        limit={usdNumber(limit)}
        text={`${formatUsd(used)} / ${formatUsd(limit)}`}
        valueText={`$${used} of $${limit} spent`}
        reserved={detail ? reserved : undefined}
        suffix={
          detail && k.remaining.spend_usd !== null ? `${formatUsd(k.remaining.spend_usd)} left` : undefined
        }
      />
    );
  }
  const used = kind === 'requests' ? k.used.requests : k.used.tokens;
  const limit = kind === 'requests' ? k.limits.max_requests : k.limits.max_tokens;
  const reserved = kind === 'requests' ? k.reserved.requests : k.reserved.tokens;
  const left = kind === 'requests' ? k.remaining.requests : k.remaining.tokens;
  if (limit === null) return <NoLimit used={formatCount(used)} />;
  return (
    <LimitBar
      label={label}
      used={used}
      limit={limit}
      text={`${formatCount(used)} / ${formatCount(limit)}`}
      valueText={`${used} of ${limit} ${kind} used`}
      reserved={detail && reserved > 0 ? formatCount(reserved) : undefined}
      suffix={detail && left !== null ? `${formatCount(left)} left` : undefined}
    />
  );
}

function NoLimit({ used, title }: { used: string; title?: string }) {
  return (
    <span class="no-limit" title={title}>
      {used} <span class="muted">· no limit</span>
    </span>
  );
}

export interface Range {
  id: '1h' | '24h' | '7d' | '30d';
  label: string;
  bucket: UsageBucket;
}

// The windows the usage charts offer, each with a bucket that gives 24–168 points.
export const RANGES: readonly Range[] = [
  { id: '1h', label: '1 hour', bucket: 'minute' },
  { id: '24h', label: '24 hours', bucket: 'hour' },
  { id: '7d', label: '7 days', bucket: 'hour' },
  { id: '30d', label: '30 days', bucket: 'day' },
];

export function RangePicker({ value, onChange }: { value: Range; onChange: (range: Range) => void }) {
  return (
    <div class="segmented" role="group" aria-label="Time range">
      {RANGES.map((range) => (
        <button
          type="button"
          key={range.id}
          aria-pressed={range.id === value.id}
          title={range.label}
          onClick={() => onChange(range)}
        >
          {range.id}
        </button>
      ))}
    </div>
  );
}

export function ErrorNote({
  error,
  children,
}: {
  error?: Error | string | undefined;
  children?: ComponentChildren;
}) {
  if (!error && !children) return null;
  return (
    <p class="note error" role="alert">
      {children ?? (typeof error === 'string' ? error : error?.message)}
    </p>
  );
}

export function Loading({ what }: { what: string }) {
  return (
    <p class="muted loading" aria-live="polite">
      Loading {what}…
    </p>
  );
}

export function Empty({ children }: { children: ComponentChildren }) {
  return <p class="empty">{children}</p>;
}

// Copies `text`; where the Clipboard API is refused (plain http on another host, permissions),
// selects `fallbackTarget`'s text so the user can press Ctrl+C / ⌘C.
export function CopyButton({
  text,
  fallbackTarget,
  label = 'Copy',
}: {
  text: string;
  fallbackTarget: () => Element | null;
  label?: string;
}) {
  const [state, setState] = useState<'idle' | 'copied' | 'selected'>('idle');
  const copy = async () => {
    try {
      if (!navigator.clipboard) throw new Error('no clipboard');
      await navigator.clipboard.writeText(text);
      setState('copied');
    } catch {
      const target = fallbackTarget();
      const selection = window.getSelection();
      if (target && selection) {
        selection.selectAllChildren(target);
        setState('selected');
      }
    }
  };
  return (
    <span class="copy">
      <button type="button" class="button" onClick={() => void copy()}>
        {label}
      </button>
      <span class="copy-state muted" aria-live="polite">
        {state === 'copied' ? 'Copied' : state === 'selected' ? 'Selected: press Ctrl+C (⌘C) to copy' : ''}
      </span>
    </span>
  );
}

export function PageHeader({
  title,
  children,
  sub,
}: {
  title: ComponentChildren;
  children?: ComponentChildren;
  sub?: ComponentChildren;
}) {
  return (
    <div class="page-header">
      <div class="page-title">
        <h1 tabIndex={-1}>{title}</h1>
        {sub && <div class="page-sub">{sub}</div>}
      </div>
      {children && <div class="page-actions">{children}</div>}
    </div>
  );
}
