// Monitoring through the real binary: usage history against what the mock provider reported,
// Prometheus metrics, the access log, alerts with a signed webhook, automatic suspension, and
// the invalid-key cool-down (issue 5).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac, timingSafeEqual } from 'node:crypto';
import { createServer } from 'node:http';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createRequire } from 'node:module';
import { startProxy, proxyKey, post, json, keyState, chatBody, REAL_KEYS } from './lib/proxy.mjs';
import { tempDir, waitFor } from './lib/till.mjs';

const require = createRequire(new URL('../clients/package.json', import.meta.url));
const parsePrometheus = require('parse-prometheus-text-format');

const WEBHOOK_SECRET = 'whsec_integration_5b1e0c';
const PLANTED = 'PLANTED-BODY-SECRET-7f3a';

// A webhook receiver that checks each request's signature.
const hooks = [];
const receiver = createServer((req, res) => {
  let body = '';
  req.on('data', (c) => { body += c; });
  req.on('end', () => {
    const header = req.headers['till-signature'] ?? '';
    const t = /t=(\d+)/.exec(header)?.[1];
    const v1 = /v1=([0-9a-f]+)/.exec(header)?.[1] ?? '';
    const expected = createHmac('sha256', WEBHOOK_SECRET).update(`${t}.${body}`).digest('hex');
    const valid = v1.length === expected.length && timingSafeEqual(Buffer.from(v1), Buffer.from(expected))
      && Math.abs(Date.now() / 1000 - Number(t)) < 300;
    hooks.push({ valid, body: JSON.parse(body) });
    res.writeHead(valid ? 200 : 400).end();
  });
});
await new Promise((r) => receiver.listen(0, '127.0.0.1', r));

const accessLog = join(tempDir('till-access-'), 'access.log');
let env;
before(async () => {
  env = await startProxy({
    args: ['--access-log', accessLog, '--alert-webhook', `http://127.0.0.1:${receiver.address().port}/hook`],
    env: { TILL_WEBHOOK_SECRET: WEBHOOK_SECRET },
  });
});
after(async () => { await env.stop(); receiver.close(); });

const anthropicBody = (extra = {}) => ({
  model: 'claude-3-5-haiku-20241022', max_tokens: 20, messages: [{ role: 'user', content: 'Say hello' }], ...extra,
});

async function drain(res) { await res.text(); return res.status; }

test('usage totals equal what the provider reported, over streams and plain calls on several keys', async () => {
  const openai = await proxyKey(env.server, 'openai', { max_requests: 100 });
  const anthropic = await proxyKey(env.server, 'anthropic', { max_requests: 100 });
  const before = env.mock.requests.length;
  const calls = [
    () => post(env.server, '/v1/chat/completions', openai.key, chatBody()),
    () => post(env.server, '/v1/chat/completions', openai.key, chatBody({ stream: true })),
    () => post(env.server, '/v1/chat/completions', openai.key, chatBody({ model: 'gpt-4o' })),
    () => post(env.server, '/proxy/anthropic/v1/messages', anthropic.key, anthropicBody(), { auth: 'x-api-key', headers: { 'anthropic-version': '2023-06-01' } }),
    () => post(env.server, '/proxy/anthropic/v1/messages', anthropic.key, anthropicBody({ stream: true }), { auth: 'x-api-key', headers: { 'anthropic-version': '2023-06-01' } }),
  ];
  for (let round = 0; round < 3; round++) {
    for (const call of calls) assert.equal(await drain(await call()), 200);
  }
  const seen = env.mock.requests.slice(before);
  assert.equal(seen.length, 15);
  const sum = (field) => seen.reduce((n, r) => n + r.usage[field], 0);

  const usage = await env.server.api('GET', `/api/v1/usage?bucket=minute&group_by=key&from=1h`);
  assert.equal(usage.status, 200, usage.text);
  const mine = usage.json.groups.filter((g) => g.key_id === openai.id || g.key_id === anthropic.id);
  const total = (field) => mine.reduce((n, g) => n + g.totals[field], 0);
  assert.equal(total('requests'), 15);
  assert.equal(total('input_tokens'), sum('input_tokens'));
  assert.equal(total('output_tokens'), sum('output_tokens'));
  // Each key's history agrees with its own counters.
  for (const key of [openai, anthropic]) {
    const group = mine.find((g) => g.key_id === key.id);
    const state = await keyState(env.server, key.id);
    assert.equal(group.totals.requests, state.used.requests);
    assert.equal(group.totals.tokens, state.used.tokens);
    assert.equal(group.totals.spend_usd, state.used.spend_usd);
    assert.equal(group.series.reduce((n, p) => n + p.requests, 0), group.totals.requests);
  }

  const events = await env.server.api('GET', `/api/v1/usage/events?key=${openai.id}&limit=4`);
  assert.equal(events.status, 200);
  assert.equal(events.json.events.length, 4);
  assert.ok(events.json.next_cursor);
  const csv = await fetch(`${env.server.url}/api/v1/usage/events?key=${openai.id}&format=csv&limit=1000`,
    { headers: { authorization: `Bearer ${env.server.adminKey}` } });
  assert.match(csv.headers.get('content-type'), /text\/csv/);
  const lines = (await csv.text()).trim().split('\r\n');
  assert.equal(lines.length, 1 + 9, 'a header and one line per openai call');
});

test('the dense series starts on the bucket holding `from`, also before 1970', async () => {
  const res = await env.server.api('GET',
    '/api/v1/usage?from=1969-12-31T23:30:00Z&to=1970-01-01T00:30:00Z&bucket=hour');
  assert.equal(res.status, 200);
  assert.deepEqual(res.json.series.map((p) => p.start), ['1969-12-31T23:00:00Z', '1970-01-01T00:00:00Z']);
});

test('/metrics parses as Prometheus text and its counters match the traffic', async () => {
  const key = await proxyKey(env.server, 'openai', { max_requests: 100 });
  const metricsBefore = parsePrometheus(await (await fetch(`${env.server.url}/metrics`)).text());
  const count = (families, name, match = () => true) => (families.find((f) => f.name === name)?.metrics ?? [])
    .filter((m) => match(m.labels ?? {})).reduce((n, m) => n + Number(m.value ?? m.count ?? 0), 0);
  const before = env.mock.requests.length;
  for (let i = 0; i < 4; i++) assert.equal(await drain(await post(env.server, '/v1/chat/completions', key.key, chatBody())), 200);
  assert.equal(await drain(await post(env.server, '/v1/chat/completions', 'till_sk_not_a_key', chatBody())), 401);
  const seen = env.mock.requests.slice(before);

  const res = await fetch(`${env.server.url}/metrics`);
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type'), /text\/plain; version=0\.0\.4/);
  const text = await res.text();
  const families = parsePrometheus(text);
  const type = (name) => families.find((f) => f.name === name)?.type;
  assert.equal(type('till_requests_total'), 'COUNTER');
  assert.equal(type('till_request_duration_seconds'), 'HISTOGRAM');
  assert.equal(type('till_active_connections'), 'GAUGE');
  const forwarded = (l) => l.outcome === 'forwarded' && l.provider === 'openai';
  assert.equal(count(families, 'till_requests_total', forwarded) - count(metricsBefore, 'till_requests_total', forwarded), 4);
  assert.equal(count(families, 'till_auth_failures_total') - count(metricsBefore, 'till_auth_failures_total'), 1);
  const input = (l) => l.kind === 'input' && l.provider === 'openai';
  assert.equal(count(families, 'till_tokens_total', input) - count(metricsBefore, 'till_tokens_total', input),
    seen.reduce((n, r) => n + r.usage.input_tokens, 0));
  assert.ok(!text.includes(key.id), 'no key ids as labels');
  // The worker times its store writes (the parser mis-groups labelled histograms: read the text).
  const appends = /^till_store_operation_duration_seconds_count\{operation="append_usage_events"\} (\d+)$/m.exec(text);
  assert.ok(appends && Number(appends[1]) > 0, 'usage event appends are timed');
});

test('the access log has one JSON line per request and never a secret', async () => {
  const key = await proxyKey(env.server, 'openai', { max_requests: 100 });
  assert.equal(await drain(await post(env.server, '/v1/chat/completions', key.key,
    chatBody({ messages: [{ role: 'user', content: PLANTED }] }))), 200);
  await env.server.api('GET', '/api/v1/usage');  // waits for the events to be processed
  await waitFor(() => readFileSync(accessLog, 'utf8').includes(key.id), { what: 'the access log line' });
  const text = readFileSync(accessLog, 'utf8');
  const lines = text.trim().split('\n').map((l) => JSON.parse(l));
  const line = lines.find((l) => l.key_id === key.id);
  assert.equal(line.status, 200);
  assert.equal(line.model, 'gpt-4o-mini');
  assert.ok(line.input_tokens > 0 && typeof line.latency_ms === 'number');
  for (const secret of [PLANTED, key.key, REAL_KEYS.openai, env.server.adminKey, WEBHOOK_SECRET]) {
    assert.ok(!text.includes(secret), 'a secret in the access log');
    assert.ok(!env.server.stderr.includes(secret), 'a secret in the server log');
  }
});

test('a loop suspends a till run key, alerts through a signed webhook, and resume brings it back', async () => {
  const key = await proxyKey(env.server, 'openai', { max_requests: 1000, metadata: { created_by: 'till run' } });
  const body = chatBody({ messages: [{ role: 'user', content: 'the same thing again' }] });
  for (let i = 0; i < 20; i++) await drain(await post(env.server, '/v1/chat/completions', key.key, body));
  await waitFor(async () => (await drain(await post(env.server, '/v1/chat/completions', key.key, chatBody()))) === 403,
    { what: 'the key to be suspended' });
  const refused = await json(await post(env.server, '/v1/chat/completions', key.key, chatBody()));
  assert.equal(refused.json.error.code, 'key_suspended');

  const alerts = await env.server.api('GET', `/api/v1/alerts?key=${key.id}&rule=loop`);
  assert.equal(alerts.json.alerts.length, 1);
  assert.equal(alerts.json.alerts[0].action, 'suspend');
  await waitFor(() => hooks.find((h) => h.body.alert?.rule === 'loop' && h.body.alert.key_id === key.id),
    { what: 'the webhook' });
  const hook = hooks.find((h) => h.body.alert?.rule === 'loop');
  assert.ok(hook.valid, 'the webhook signature verifies');
  assert.ok(hooks.every((h) => h.valid));

  const acked = await env.server.api('POST', `/api/v1/alerts/${alerts.json.alerts[0].id}/acknowledge`);
  assert.equal(acked.status, 200);
  assert.equal(acked.json.acknowledged, true);
  assert.equal((await env.server.api('POST', `/api/v1/keys/${key.id}/resume`)).status, 200);
  assert.equal(await drain(await post(env.server, '/v1/chat/completions', key.key, chatBody())), 200);
});

test('normal traffic raises no anomaly alert', async () => {
  const key = await proxyKey(env.server, 'openai', { max_requests: 1000 });
  for (let i = 0; i < 15; i++) {
    await drain(await post(env.server, '/v1/chat/completions', key.key, chatBody({ messages: [{ role: 'user', content: `question ${i}` }] })));
  }
  const alerts = await env.server.api('GET', `/api/v1/alerts?key=${key.id}`);
  assert.deepEqual(alerts.json.alerts.map((a) => a.rule), []);
});

test('a burst of invalid keys from one address is refused with 429 for a while', async () => {
  const burst = await startProxy();
  try {
    for (let i = 0; i < 20; i++) {
      assert.equal(await drain(await post(burst.server, '/v1/chat/completions', `till_sk_guess${i}`, chatBody())), 401);
    }
    const good = await proxyKey(burst.server, 'openai');
    await waitFor(async () => (await drain(await post(burst.server, '/v1/chat/completions', good.key, chatBody()))) === 429,
      { what: 'the address to be refused' });
    const res = await post(burst.server, '/v1/chat/completions', good.key, chatBody());
    assert.ok(Number(res.headers.get('retry-after')) > 0);
    await drain(res);
    const alerts = await burst.server.api('GET', '/api/v1/alerts?rule=invalid_key_burst');
    assert.equal(alerts.json.alerts.length, 1);
  } finally {
    await burst.stop();
  }
});

test('--monitoring off: no usage history, no metrics', async () => {
  const off = await startProxy({ args: ['--monitoring', 'off'] });
  try {
    assert.equal((await fetch(`${off.server.url}/metrics`)).status, 404);
    assert.equal((await off.server.api('GET', '/api/v1/usage')).status, 404);
    const key = await proxyKey(off.server, 'openai');
    assert.equal(await drain(await post(off.server, '/v1/chat/completions', key.key, chatBody())), 200);
  } finally {
    await off.stop();
  }
});
