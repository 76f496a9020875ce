// How numbers, money and times are shown. Money arrives as decimal strings in USD (up to nine
// decimals) and is shown from the string, never rounded through a float where precision shows.
// Times arrive in UTC and are shown in the browser's local time.

const integer = new Intl.NumberFormat();

export function formatCount(value: number): string {
  return integer.format(value);
}

// Compact counts for chart axes and tight cells: 1.2k, 3.4M.
const compact = new Intl.NumberFormat(undefined, { notation: 'compact', maximumFractionDigits: 1 });
export function formatCompact(value: number): string {
  return compact.format(value);
}

// Money as till gives it, trimmed: "$5.00", "$0.25", "$4.999989", "$0.0000036". At least two
// decimals; from a cent up at most six (rounded), below a cent every significant one: an agent's
// spend is often a fraction of a cent and must not read as zero, and what is left of a $5 budget
// after $0.000011 must not read as the whole $5.00. The exact string is in a title nearby.
const grouped = new Intl.NumberFormat(undefined, { maximumFractionDigits: 0 });

export function formatUsd(decimal: string | null | undefined): string {
  if (decimal === null || decimal === undefined || decimal === '') return '—';
  const text = decimal.trim();
  const match = /^(-?)(\d+)(?:\.(\d+))?$/.exec(text);
  if (!match) return `$${text}`;
  const [, sign = ''] = match;
  let whole = match[2] ?? '0';
  let fraction = (match[3] ?? '').replace(/0+$/, '');
  const belowACent = whole.replace(/^0+/, '') === '' && /^00/.test(fraction.padEnd(2, '0'));
  if (fraction.length > 6 && !belowACent) {
    // Round to six decimals; the float is exact enough for that at any realistic amount.
    [whole = whole, fraction = ''] = Math.abs(Number(`${whole}.${fraction}`))
      .toFixed(6)
      .split('.');
    fraction = fraction.replace(/0+$/, '');
  }
  return `${sign}$${grouped.format(BigInt(whole))}.${fraction.padEnd(2, '0')}`;
}

// Money as a number, for charts and ratios only (never for display).
export function usdNumber(decimal: string | null | undefined): number {
  const value = Number(decimal);
  return Number.isFinite(value) ? value : 0;
}

const dateTime = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'short' });
const dateTimeSeconds = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'medium' });
const timeOnly = new Intl.DateTimeFormat(undefined, { timeStyle: 'medium' });

export function formatTime(rfc3339: string | null | undefined, { seconds = false } = {}): string {
  if (!rfc3339) return '—';
  const date = new Date(rfc3339);
  if (Number.isNaN(date.getTime())) return rfc3339;
  return (seconds ? dateTimeSeconds : dateTime).format(date);
}

// A time for a table cell: "Dec 4, 9:35 PM" this year, "Dec 4, 2025" before.
const shortThisYear = new Intl.DateTimeFormat(undefined, {
  month: 'short',
  day: 'numeric',
  hour: 'numeric',
  minute: '2-digit',
});
const shortOtherYear = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium' });
export function formatShortTime(rfc3339: string): string {
  const date = new Date(rfc3339);
  if (Number.isNaN(date.getTime())) return rfc3339;
  return (date.getFullYear() === new Date().getFullYear() ? shortThisYear : shortOtherYear).format(date);
}

// Today's times without the date: the events table is mostly recent.
export function formatEventTime(rfc3339: string): string {
  const date = new Date(rfc3339);
  if (Number.isNaN(date.getTime())) return rfc3339;
  const today = new Date();
  return date.toDateString() === today.toDateString() ? timeOnly.format(date) : dateTimeSeconds.format(date);
}

const relative = new Intl.RelativeTimeFormat(undefined, { numeric: 'auto' });
const UNITS: [Intl.RelativeTimeFormatUnit, number][] = [
  ['day', 86_400_000],
  ['hour', 3_600_000],
  ['minute', 60_000],
  ['second', 1000],
];

// "in 3 hours", "5 minutes ago"; for expiry and rotation deadlines.
export function formatRelative(rfc3339: string | null | undefined, now = Date.now()): string {
  if (!rfc3339) return '';
  const ms = new Date(rfc3339).getTime() - now;
  if (Number.isNaN(ms)) return '';
  for (const [unit, length] of UNITS) {
    if (Math.abs(ms) >= length || unit === 'second') return relative.format(Math.round(ms / length), unit);
  }
  return '';
}

// "key_3kTMd8ZcQe1Rw7Xy" → "key_3kTMd8…": enough to tell keys apart in a table.
export function shortId(id: string): string {
  return id.length > 14 ? `${id.slice(0, 10)}…` : id;
}

export function formatMs(ms: number): string {
  if (ms >= 1000) return `${(ms / 1000).toFixed(2)} s`;
  return `${ms >= 10 ? ms.toFixed(0) : ms.toFixed(1)} ms`;
}
