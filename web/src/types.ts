// The shapes of till's control-plane JSON, as documented in docs/api.md and docs/monitoring.md
// and written by src/api/key_json.cc and src/api/monitoring_api.cc. Money is a decimal string in
// USD; times are RFC 3339 strings in UTC.

export const KEY_STATUSES = ['active', 'exhausted', 'revoked', 'expired', 'suspended'] as const;
export type KeyStatus = (typeof KEY_STATUSES)[number];

export interface KeyLimits {
  max_requests: number | null;
  max_tokens: number | null;
  max_spend_usd: string | null;
}

export interface KeyUsed {
  requests: number;
  input_tokens: number;
  cached_input_tokens: number;
  output_tokens: number;
  reasoning_tokens: number;
  unmetered_tokens: number;
  tokens: number;
  spend_usd: string;
}

export interface KeyReserved {
  requests: number;
  tokens: number;
  spend_usd: string;
}

export interface KeyRemaining {
  requests: number | null;
  tokens: number | null;
  spend_usd: string | null;
}

export interface KeyScope {
  models: string[];
  rpm: number | null;
  max_concurrency: number | null;
  allowed_cidrs: string[];
}

export interface KeyRecord {
  id: string;
  name: string;
  provider: string;
  status: KeyStatus;
  created_at: string;
  updated_at: string;
  expires_at: string | null;
  parent_id: string | null;
  credential: string | null;
  metadata: Record<string, unknown>;
  rotated_at: string;
  rotate_every: string | null;
  rotation_due_at: string | null;
  previous_token_valid_until: string | null;
  limits: KeyLimits;
  used: KeyUsed;
  reserved: KeyReserved;
  remaining: KeyRemaining;
  scope: KeyScope;
}

// POST /api/v1/keys and POST /api/v1/keys/{id}/rotate: the record plus the token, shown once.
export interface IssuedKey extends KeyRecord {
  key: string;
}

export interface KeyPage {
  keys: KeyRecord[];
  next_cursor: string | null;
}

export interface Credential {
  name: string;
  provider: string;
  created_at: string;
  rotated_at: string;
  rotate_every: string | null;
  rotation_due_at: string | null;
  key_count: number;
}

export interface UsageTotals {
  requests: number;
  refused: number;
  input_tokens: number;
  cached_input_tokens: number;
  output_tokens: number;
  reasoning_tokens: number;
  unmetered_tokens: number;
  tokens: number;
  spend_usd: string;
}

export interface UsagePoint extends UsageTotals {
  start: string;
}

export type UsageBucket = 'minute' | 'hour' | 'day';

export interface UsageGroup {
  key_id?: string;
  model?: string;
  provider?: string;
  totals: UsageTotals;
  series: UsagePoint[];
}

export interface UsageSummary {
  from: string;
  to: string;
  bucket: UsageBucket;
  totals: UsageTotals;
  series: UsagePoint[];
  groups?: UsageGroup[];
}

export interface UsageEvent {
  id: number;
  at: string;
  key_id: string;
  provider: string;
  model: string;
  status: number;
  error_code: string;
  forwarded: boolean;
  stream: boolean;
  upstream_status: number;
  requests: number;
  input_tokens: number;
  cached_input_tokens: number;
  output_tokens: number;
  reasoning_tokens: number;
  unmetered_tokens: number;
  spend_usd: string;
  latency_ms: number;
  upstream_ms: number;
  ttfb_ms: number;
  client_address: string;
}

export interface UsageEventPage {
  events: UsageEvent[];
  next_cursor: string | null;
}

export type Severity = 'info' | 'warning' | 'critical';

export interface Alert {
  id: number;
  key_id: string | null;
  rule: string;
  severity: Severity | string;
  message: string;
  action: string;
  created_at: string;
  acknowledged: boolean;
  acknowledged_at: string | null;
}

export interface AlertPage {
  alerts: Alert[];
  next_cursor: string | null;
}

// The rules of docs/alerts.md, for the alert filter.
export const ALERT_RULES = [
  'budget_threshold',
  'key_exhausted',
  'projected_exhaustion',
  'rate_spike',
  'loop',
  'model_shift',
  'new_address',
  'stale_token',
  'invalid_key_burst',
  'upstream_rejected',
  'rotation_due',
] as const;
