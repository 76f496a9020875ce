// `till usage`, `till alerts` and `till top` against a real server forwarding to the mock
// provider. The tests run in order: the usage and top ones count exactly the calls made in
// before(); the alert ones make more calls afterwards.
//
// The CLI is always run asynchronously: the mock provider lives in this process and must keep
// answering while a command (`alerts --follow` above all) runs.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { TILL_BIN, waitFor } from './lib/till.mjs';
import { startProxy, proxyKey, post, keyState, chatBody } from './lib/proxy.mjs';

const SPARK = /[▁▂▃▄▅▆▇█]/;
const CHAT = '/v1/chat/completions';

let env;
let alpha;  // 3 calls with gpt-4o-mini
let beta;   // 2 calls with gpt-4o

// Starts `till args…` against the server; `done` resolves with { status, signal, stdout, stderr }.
function start(args, { vars } = {}) {
  const proc = spawn(TILL_BIN, args, { env: { PATH: process.env.PATH, ...(vars ?? env.server.cliEnv()) } });
  const run = { proc, stdout: '', stderr: '' };
  proc.stdout.setEncoding('utf8');
  proc.stderr.setEncoding('utf8');
  proc.stdout.on('data', (c) => { run.stdout += c; });
  proc.stderr.on('data', (c) => { run.stderr += c; });
  run.done = new Promise((resolve) => proc.on('close', (status, signal) =>
    resolve({ status, signal, stdout: run.stdout, stderr: run.stderr })));
  return run;
}

function till(args, options) {
  return start(args, options).done;
}

async function ok(args) {
  const r = await till(args);
  assert.equal(r.status, 0, `till ${args.join(' ')}: ${r.stderr}`);
  return r;
}

async function call(key, model, expected = 200) {
  const res = await post(env.server, CHAT, key.key, chatBody({ model }));
  await res.text();
  assert.equal(res.status, expected, `call with ${key.id}`);
}

// The rows of a table printed on stdout, the header first, split on runs of 2+ spaces.
function rows(stdout) {
  return stdout.replace(/\n$/, '').split('\n').map((line) => line.split(/ {2,}/));
}

// Exact USD decimal text → nano-dollars.
function nanos(usd) {
  const [whole, fraction = ''] = usd.split('.');
  return BigInt(whole) * 1000000000n + BigInt(fraction.padEnd(9, '0'));
}

before(async () => {
  env = await startProxy();
  alpha = await proxyKey(env.server, 'openai', { name: 'mon-alpha', max_requests: 10 });
  beta = await proxyKey(env.server, 'openai', { name: 'mon-beta' });
  for (let i = 0; i < 3; i++) await call(alpha, 'gpt-4o-mini');
  for (let i = 0; i < 2; i++) await call(beta, 'gpt-4o');
});
after(async () => { await env.stop(); });

test('usage: one total row with the request count, tokens and a trend', async () => {
  const input = env.mock.requests.reduce((n, q) => n + q.usage.input_tokens, 0);
  const output = env.mock.requests.reduce((n, q) => n + q.usage.output_tokens, 0);
  const r = await ok(['usage']);
  const [header, row, ...rest] = rows(r.stdout);
  assert.deepEqual(header, ['GROUP', 'REQUESTS', 'REFUSED', 'TOKENS (IN/OUT)', 'SPEND', 'TREND']);
  assert.equal(rest.length, 0);
  assert.deepEqual(row.slice(0, 4), ['total', '5', '0', `${input + output} (${input}/${output})`]);
  assert.match(row[4], /^\$0\.\d+$/);
  // The trend: 25 hourly buckets, the busiest drawn full height.
  const trend = r.stdout.split('\n')[1].slice(r.stdout.indexOf('TREND'));
  assert.match(trend, SPARK);
  assert.ok(trend.includes('█'), trend);
  assert.ok([...trend].length <= 40, trend);
  assert.match(trend, /^[ ▁▂▃▄▅▆▇█]+$/);
  assert.match(r.stderr, /^till: last 24h, 5 requests, \$0\.\d+\n$/);

  // 2h by the minute is 121 buckets, summed down to at most 40 columns.
  const minutes = await ok(['usage', '--since', '2h']);
  const line = minutes.stdout.split('\n')[1];
  const folded = [...line.slice(minutes.stdout.indexOf('TREND'))];
  assert.ok(folded.length <= 40 && folded.length >= 30, `${folded.length} columns`);
  assert.match(minutes.stderr, /^till: last 2h, 5 requests/);
});

test('usage --by key, --by model and --key: one row per group', async () => {
  const byKey = rows((await ok(['usage', '--by', 'key'])).stdout);
  assert.equal(byKey[0][0], 'KEY');
  assert.equal(byKey.length, 3, JSON.stringify(byKey));
  assert.deepEqual(byKey.slice(1).map((r) => r.slice(0, 3)), [[alpha.id, '3', '0'], [beta.id, '2', '0']]);
  for (const row of byKey.slice(1)) assert.match(row[5], SPARK);

  const byModel = rows((await ok(['usage', '--by', 'model'])).stdout);
  assert.equal(byModel[0][0], 'MODEL');
  assert.deepEqual(byModel.slice(1).map((r) => r.slice(0, 2)), [['gpt-4o-mini', '3'], ['gpt-4o', '2']]);

  const one = await ok(['usage', '--key', beta.id]);
  assert.deepEqual(rows(one.stdout)[1].slice(0, 2), ['total', '2']);
  assert.match(one.stderr, /, 2 requests, /);
});

test('usage --json is the server\'s answer; its totals are what the mock and the keys report', async () => {
  const body = JSON.parse((await ok(['usage', '--json', '--by', 'provider'])).stdout);
  assert.equal(body.bucket, 'hour');
  assert.equal(body.totals.requests, 5);
  assert.equal(body.totals.refused, 0);
  assert.equal(body.totals.input_tokens, env.mock.requests.reduce((n, q) => n + q.usage.input_tokens, 0));
  assert.equal(body.totals.output_tokens, env.mock.requests.reduce((n, q) => n + q.usage.output_tokens, 0));
  const keys = [await keyState(env.server, alpha.id), await keyState(env.server, beta.id)];
  assert.equal(body.totals.tokens, keys[0].used.tokens + keys[1].used.tokens);
  assert.equal(nanos(body.totals.spend_usd), nanos(keys[0].used.spend_usd) + nanos(keys[1].used.spend_usd));
  assert.equal(body.series.reduce((n, p) => n + p.requests, 0), 5);
  assert.deepEqual(body.groups.map((g) => [g.provider, g.totals.requests]), [['openai', 5]]);
});

test('top --once lists the busy keys, busiest first, with name, remaining budget and status', async () => {
  const r = await ok(['top', '--once']);
  const [title, blank, ...table] = r.stdout.replace(/\n$/, '').split('\n');
  assert.match(title, /^till top {2}\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ {2}last 60s: 5 requests, 0 refused, \d+ tokens, \$0\.\d+; 2 keys active$/);
  assert.equal(blank, '');
  const [header, first, second, ...rest] = table.map((line) => line.split(/ {2,}/));
  assert.deepEqual(header, ['KEY', 'NAME', 'REQ/MIN', 'TOKENS/MIN', 'SPEND/MIN', 'REMAINING', 'STATUS']);
  assert.equal(rest.length, 0);
  assert.deepEqual([first[0], first[1], first[2], first[5], first[6]], [alpha.id, 'mon-alpha', '3', '7 req', 'active']);
  assert.deepEqual([second[0], second[1], second[2], second[5], second[6]], [beta.id, 'mon-beta', '2', 'unlimited', 'active']);

  const limited = await ok(['top', '--once', '--limit', '1']);
  assert.match(limited.stdout, /2 keys active, top 1 shown/);
  assert.ok(limited.stdout.includes(alpha.id) && !limited.stdout.includes(beta.id));
});

test('top refreshes until SIGTERM, one frame per refresh when stdout is not a terminal', async () => {
  const run = start(['top', '--interval', '200ms']);
  await waitFor(() => (run.stdout.match(/^till top /gm) ?? []).length >= 2, { what: 'two frames' });
  run.proc.kill('SIGTERM');
  const r = await run.done;
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.signal, null);
  assert.ok(!r.stdout.includes('\x1b['), 'no terminal escapes in a pipe');
  assert.match(r.stdout, /\n\ntill top /, 'frames separated by a blank line');
});

test('alerts: an exhausted key raises alerts; --ack acknowledges one and it leaves the list', async () => {
  const gamma = await proxyKey(env.server, 'openai', { name: 'mon-gamma', max_requests: 2 });
  await call(gamma, 'gpt-4o-mini');
  await call(gamma, 'gpt-4o-mini');
  await call(gamma, 'gpt-4o-mini', 402);
  const listed = await waitFor(async () => {
    const r = await ok(['alerts', '--key', gamma.id, '--json']);
    const alerts = JSON.parse(r.stdout).alerts;
    return alerts.some((a) => a.rule === 'key_exhausted') && alerts;
  }, { what: 'a key_exhausted alert' });
  const exhausted = listed.find((a) => a.rule === 'key_exhausted');
  assert.equal(exhausted.key_id, gamma.id);

  const r = await ok(['alerts']);
  const lines = r.stdout.replace(/\n$/, '').split('\n');
  assert.match(lines[0], /^ID\s+TIME\s+SEVERITY\s+RULE\s+KEY\s+ACTION\s+MESSAGE$/);
  for (const line of lines) assert.ok([...line].length <= 120, `longer than 120 columns: ${line}`);
  const row = lines.find((line) => line.startsWith(`${exhausted.id} `));
  assert.ok(row, r.stdout);
  assert.match(row, new RegExp(`^${exhausted.id}\\s+\\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\dZ\\s+\\w+\\s+key_exhausted\\s+${gamma.id}\\s+alert\\s+\\S`));
  assert.match(r.stderr, /^till: \d+ unacknowledged alerts?\n$/);
  // Newest first.
  const ids = lines.slice(1).map((line) => Number(line.split(/\s+/)[0]));
  assert.deepEqual(ids, [...ids].sort((a, b) => b - a));

  const ack = await ok(['alerts', '--ack', String(exhausted.id)]);
  assert.match(ack.stdout, /^acknowledged\s+true$/m);
  assert.match(ack.stdout, /^rule\s+key_exhausted$/m);
  assert.match(ack.stderr, new RegExp(`^till: acknowledged alert ${exhausted.id}\n$`));

  const after = await ok(['alerts', '--key', gamma.id]);
  assert.ok(!after.stdout.split('\n').some((line) => line.startsWith(`${exhausted.id} `)), after.stdout);
  const all = await ok(['alerts', '--key', gamma.id, '--all']);
  assert.match(all.stdout, /^ID\s+TIME\s+SEVERITY\s+RULE\s+KEY\s+ACTION\s+ACKED\s+MESSAGE$/m);
  assert.match(all.stdout, new RegExp(`^${exhausted.id}\\s.*key_exhausted\\s.*\\syes\\s`, 'm'));
});

test('alerts --follow prints existing alerts, then each new one once, and exits 0 on SIGTERM', async () => {
  const keys = [];
  for (let i = 0; i < 3; i++) keys.push(await proxyKey(env.server, 'openai', { name: `mon-follow-${i}`, max_requests: 1 }));
  const exhaust = async (key) => {
    await call(key, 'gpt-4o-mini');
    await call(key, 'gpt-4o-mini', 402);
  };
  // An alert that exists before --follow starts.
  await exhaust(keys[0]);
  await waitFor(async () => JSON.parse((await ok(['alerts', '--key', keys[0].id, '--rule', 'key_exhausted', '--json'])).stdout).alerts.length,
    { what: 'the first alert' });

  const run = start(['alerts', '--follow', '--rule', 'key_exhausted']);
  const seen = (key) => run.stdout.split('\n').filter((line) => line.includes(` ${key.id} `)).length;
  await waitFor(() => seen(keys[0]), { what: 'the existing alert' });
  assert.match(run.stdout, /^ID\s+TIME\s+SEVERITY\s+RULE\s+KEY\s+ACTION\s+MESSAGE\n/);
  await exhaust(keys[1]);
  await waitFor(() => seen(keys[1]), { what: 'a new alert' });
  // A third one takes at least one more poll, which asks again for the time of the second: each
  // is still printed once.
  await exhaust(keys[2]);
  await waitFor(() => seen(keys[2]), { what: 'another new alert' });
  assert.deepEqual(keys.map(seen), [1, 1, 1], run.stdout);
  const order = keys.map((k) => run.stdout.indexOf(` ${k.id} `));
  assert.deepEqual(order, [...order].sort((a, b) => a - b), 'oldest first');

  run.proc.kill('SIGTERM');
  const r = await run.done;
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.signal, null);
  assert.equal(r.stderr, '');
});

test('alerts --follow --json prints one alert per line', async () => {
  const run = start(['alerts', '--follow', '--json', '--rule', 'key_exhausted', '--all']);
  await waitFor(() => run.stdout.includes('\n'), { what: 'a line' });
  run.proc.kill('SIGINT');
  const r = await run.done;
  assert.equal(r.status, 0, r.stderr);
  const alerts = r.stdout.trim().split('\n').map((line) => JSON.parse(line));
  assert.ok(alerts.length >= 4);
  assert.ok(alerts.every((a) => a.rule === 'key_exhausted'));
});

test('clear one-line errors and exit codes', async () => {
  const badSince = await till(['usage', '--since', 'yesterday']);
  assert.equal(badSince.status, 2);
  assert.match(badSince.stderr, /^--since: /);

  const badBucket = await till(['usage', '--bucket', 'week']);
  assert.equal(badBucket.status, 2);

  const tooMany = await till(['usage', '--since', '30d', '--bucket', 'minute']);
  assert.equal(tooMany.status, 1);
  assert.match(tooMany.stderr, /^till: bucket: that range has more than 10000 buckets/);
  assert.equal(tooMany.stderr.trim().split('\n').length, 1);

  const noAlert = await till(['alerts', '--ack', '999999']);
  assert.equal(noAlert.status, 1);
  assert.match(noAlert.stderr, /^till: no alert .*999999/);

  const conflicting = await till(['alerts', '--ack', '1', '--follow']);
  assert.equal(conflicting.status, 2);

  const unreachable = { TILL_URL: 'http://127.0.0.1:1', TILL_ADMIN_KEY: env.server.adminKey };
  for (const args of [['usage'], ['alerts'], ['alerts', '--follow'], ['top', '--once'], ['top']]) {
    const r = await till(args, { vars: unreachable });
    assert.equal(r.status, 3, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, /^till: cannot reach till at http:\/\/127\.0\.0\.1:1/);
    assert.equal(r.stderr.trim().split('\n').length, 1);
  }

  const noAdmin = await till(['usage'], { vars: { TILL_URL: env.server.url } });
  assert.equal(noAdmin.status, 1);
  assert.match(noAdmin.stderr, /TILL_ADMIN_KEY is not set/);
});
