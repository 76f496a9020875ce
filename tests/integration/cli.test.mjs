// The `till key` CLI against a real server.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { TillServer, runTill, UPSTREAM_SECRET } from './lib/till.mjs';

let server;
before(async () => { server = await TillServer.start(); });
after(async () => { await server.stop(); server.cleanup(); });

test('key create prints only the key; list, show, revoke print tables', () => {
  const env = server.cliEnv({ MY_UPSTREAM: UPSTREAM_SECRET });
  const created = runTill(['key', 'create', '--provider', 'openai', '--upstream-key-env', 'MY_UPSTREAM',
    '--max-requests', '3', '--max-tokens', '1000', '--max-spend', '0.50', '--expires-in', '90m',
    '--models', 'gpt-4o-mini,gpt-4o', '--name', 'cli-agent'], { env });
  assert.equal(created.status, 0, created.stderr);
  const lines = created.stdout.trim().split('\n');
  assert.equal(lines.length, 1);
  assert.match(lines[0], /^till_sk_\S+$/);
  assert.match(created.stderr, /created key_\w+ for openai/);
  assert.ok(!created.stderr.includes(UPSTREAM_SECRET) && !created.stdout.includes(UPSTREAM_SECRET));

  const list = runTill(['key', 'list', '--name', 'cli-agent'], { env });
  assert.equal(list.status, 0, list.stderr);
  const [header, row, ...rest] = list.stdout.trim().split('\n');
  assert.match(header, /^ID\s+NAME\s+PROVIDER\s+STATUS\s+REQUESTS\s+TOKENS\s+SPEND\s+EXPIRES$/);
  assert.equal(rest.length, 0);
  assert.match(row, /^key_\w{16}\s+cli-agent\s+openai\s+active\s+0\/3\s+0\/1000\s+\$0\.00\/\$0\.50\s+\d{4}-/);
  assert.equal(header.indexOf('NAME'), row.indexOf('cli-agent'), 'columns aligned');
  const id = row.split(/\s+/)[0];

  const show = runTill(['key', 'show', id], { env });
  assert.equal(show.status, 0, show.stderr);
  assert.match(show.stdout, /status\s+active/);
  assert.match(show.stdout, /models\s+\["gpt-4o-mini","gpt-4o"\]/);

  const json = runTill(['key', 'show', id, '--json'], { env });
  assert.equal(JSON.parse(json.stdout).limits.max_spend_usd, '0.50');

  const revoke = runTill(['key', 'revoke', id], { env });
  assert.equal(revoke.status, 0, revoke.stderr);
  assert.match(revoke.stdout, /status\s+revoked/);
  const listed = JSON.parse(runTill(['key', 'list', '--status', 'revoked', '--json'], { env }).stdout);
  assert.ok(listed.keys.some((k) => k.id === id));
});

test('key create reads the upstream key from stdin and prints JSON', () => {
  const r = runTill(['key', 'create', '--provider', 'anthropic', '--upstream-key-stdin', '--json'],
    { env: server.cliEnv(), input: 'sk-ant-from-stdin\n' });
  assert.equal(r.status, 0, r.stderr);
  const record = JSON.parse(r.stdout);
  assert.equal(record.provider, 'anthropic');
  assert.match(record.key, /^till_sk_/);
});

test('clear one-line errors and exit codes', () => {
  const noEnv = runTill(['key', 'create', '--provider', 'openai', '--upstream-key-env', 'UNSET_VAR'],
    { env: server.cliEnv() });
  assert.equal(noEnv.status, 1);
  assert.match(noEnv.stderr, /^till: .*UNSET_VAR is not set/);

  const refused = runTill(['key', 'create', '--provider', 'nosuch', '--upstream-key-env', 'X'],
    { env: server.cliEnv({ X: 'sk-x' }) });
  assert.equal(refused.status, 1);
  assert.equal(refused.stderr.trim().split('\n').length, 1);
  assert.match(refused.stderr, /^till: provider: unknown provider "nosuch"/);

  const missing = runTill(['key', 'show', 'key_doesnotexist0000'], { env: server.cliEnv() });
  assert.equal(missing.status, 1);
  assert.match(missing.stderr, /^till: no key with id key_doesnotexist0000/);

  const badAdmin = runTill(['key', 'list'], { env: server.cliEnv({ TILL_ADMIN_KEY: 'till_admin_wrong' }) });
  assert.equal(badAdmin.status, 1);
  assert.match(badAdmin.stderr, /^till: invalid API key/);

  const noAdmin = runTill(['key', 'list'], { env: { TILL_URL: server.url } });
  assert.equal(noAdmin.status, 1);
  assert.match(noAdmin.stderr, /TILL_ADMIN_KEY is not set/);

  const unreachable = runTill(['key', 'list'], { env: server.cliEnv({ TILL_URL: 'http://127.0.0.1:1' }) });
  assert.equal(unreachable.status, 3);
  assert.match(unreachable.stderr, /^till: cannot reach till at http:\/\/127\.0\.0\.1:1/);
  assert.equal(unreachable.stderr.trim().split('\n').length, 1);

  const usage = runTill(['key', 'create'], { env: server.cliEnv() });
  assert.equal(usage.status, 2);
  assert.match(usage.stderr, /--provider is required/);
});

test('till env prints export lines for an existing key, and --create makes one', () => {
  const created = runTill(['key', 'create', '--provider', 'anthropic', '--upstream-key-env', 'X'],
    { env: server.cliEnv({ X: 'sk-ant-real-env' }) });
  const key = created.stdout.trim();
  const shell = runTill(['env', key], { env: { TILL_URL: server.url } });
  assert.equal(shell.status, 0, shell.stderr);
  assert.ok(shell.stdout.includes(`export ANTHROPIC_API_KEY='${key}'\n`), shell.stdout);
  assert.ok(shell.stdout.includes(`export ANTHROPIC_BASE_URL='${server.url}/proxy/anthropic'\n`));
  assert.ok(shell.stdout.includes(`export TILL_KEY='${key}'\n`));
  assert.ok(!shell.stdout.includes('sk-ant-real-env'));

  const dotenv = runTill(['env', '--create', '--provider', 'groq', '--upstream-key-env', 'X',
    '--max-requests', '5', '--format', 'dotenv'], { env: server.cliEnv({ X: 'sk-groq-real' }) });
  assert.equal(dotenv.status, 0, dotenv.stderr);
  assert.match(dotenv.stdout, /^GROQ_API_KEY=till_sk_\S+$/m);
  assert.match(dotenv.stdout, new RegExp(`^GROQ_BASE_URL=${server.url}/proxy/groq/v1$`, 'm'));
  assert.match(dotenv.stdout, /^OPENAI_API_KEY=till_sk_\S+$/m);

  const bad = runTill(['env', 'till_sk_nonsense'], { env: { TILL_URL: server.url } });
  assert.equal(bad.status, 1);
  assert.match(bad.stderr, /^till: invalid API key/);
});
