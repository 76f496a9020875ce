// `till run`: one scoped key for the life of one command, with and without TILL_URL.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { startMock } from '../mock/mock_provider.mjs';
import { TILL_BIN, TillServer, waitFor } from './lib/till.mjs';

// `till run` asynchronously: the mock provider lives in this process and must keep answering.
function runTill(args, { env = {} } = {}) {
  return new Promise((resolve) => {
    const proc = spawn(TILL_BIN, args, { env: { PATH: process.env.PATH, ...env } });
    let stdout = '';
    let stderr = '';
    proc.stdout.on('data', (c) => { stdout += c; });
    proc.stderr.on('data', (c) => { stderr += c; });
    proc.on('close', (status) => resolve({ status, stdout, stderr }));
  });
}

const AGENT = fileURLToPath(new URL('./fixtures/openai_agent.mjs', import.meta.url));
let mock;
before(async () => { mock = await startMock(); });
after(async () => { await mock.close(); });

function checkRun(r, server) {
  assert.equal(r.status, 7, `exit status is the agent's\n${r.stdout}\n${r.stderr}`);
  assert.match(r.stdout, /ok=3/);
  assert.equal(r.stdout.match(/refused 402: 402 till: key key_\w+ has used its 3 requests limit/g).length, 2);
  assert.match(r.stderr, /till run: 3 requests, \d+ tokens .* the max_requests \(3\) limit was reached/);
  const seen = mock.requests.filter((q) => q.headers.authorization === `Bearer sk-real-run-${server}`);
  assert.equal(seen.length, 3, 'exactly three calls reached the provider');
  return r.stdout.match(/key (key_\w+)/)[1];
}

test('embedded server: 3 calls succeed, 2 get till\'s limit error, the key is revoked', async () => {
  const r = await runTill(['run', '--provider', 'openai', '--max-requests', '3', '--upstream', `openai=${mock.url}`,
    '--', process.execPath, AGENT], { env: { OPENAI_API_KEY: 'sk-real-run-embedded' } });
  checkRun(r, 'embedded');
});

test('with TILL_URL: the key is created on that server and revoked afterwards', async () => {
  const server = await TillServer.start({ args: ['--upstream', `openai=${mock.url}`] });
  const r = await runTill(['run', '--provider', 'openai', '--max-requests', '3', '--', process.execPath, AGENT],
    { env: { ...server.cliEnv(), OPENAI_API_KEY: 'sk-real-run-remote' } });
  const id = checkRun(r, 'remote');
  const key = await server.api('GET', `/api/v1/keys/${id}`);
  assert.equal(key.json.status, 'revoked');
  assert.equal(key.json.used.requests, 3);
  await server.stop();
  server.cleanup();
});

test('SIGTERM is forwarded to the command and the key is still revoked', async () => {
  const server = await TillServer.start({ args: ['--upstream', `openai=${mock.url}`] });
  const script = "process.on('SIGTERM', () => { console.log('child got SIGTERM'); process.exit(42); });" +
    "console.log('ready ' + process.env.TILL_KEY.slice(0, 8)); setInterval(() => {}, 1000);";
  const proc = spawn(TILL_BIN, ['run', '--provider', 'openai', '--', process.execPath, '-e', script],
    { env: { PATH: process.env.PATH, ...server.cliEnv(), OPENAI_API_KEY: 'sk-real-run-term' } });
  let out = '';
  let err = '';
  proc.stdout.on('data', (c) => { out += c; });
  proc.stderr.on('data', (c) => { err += c; });
  const exited = new Promise((resolve) => proc.on('exit', (code) => resolve(code)));
  await waitFor(() => out.includes('ready till_sk_'), { what: 'the child to start' });
  proc.kill('SIGTERM');
  assert.equal(await exited, 42);
  assert.match(out, /child got SIGTERM/);
  assert.match(err, /till run: 0 requests/);
  const keys = (await server.api('GET', '/api/v1/keys?status=revoked')).json.keys;
  assert.equal(keys.length, 1, 'the run\'s key was revoked');
  await server.stop();
  server.cleanup();
});

test('the child sees the SDK variables and the real key never', async () => {
  const script = "const e = process.env; console.log(JSON.stringify({k: e.OPENAI_API_KEY, u: e.OPENAI_BASE_URL, t: e.TILL_KEY, b: e.TILL_BASE_URL}))";
  const r = await runTill(['run', '--provider', 'openai', '--upstream', `openai=${mock.url}`, '--', process.execPath, '-e', script],
    { env: { OPENAI_API_KEY: 'sk-real-run-env' } });
  assert.equal(r.status, 0, r.stderr);
  const seen = JSON.parse(r.stdout.trim());
  assert.match(seen.k, /^till_sk_/);
  assert.equal(seen.t, seen.k);
  assert.match(seen.u, /^http:\/\/127\.0\.0\.1:\d+\/proxy\/openai\/v1$/);
  assert.ok(!r.stdout.includes('sk-real-run-env') && !r.stderr.includes('sk-real-run-env'));
});

test('the child never sees the admin key, the master key or the variable the real key came from', async () => {
  const server = await TillServer.start({ args: ['--upstream', `openai=${mock.url}`] });
  const script = "const e = process.env; console.log(JSON.stringify([e.TILL_ADMIN_KEY, e.TILL_MASTER_KEY, e.MY_REAL_KEY]))";
  const r = await runTill(['run', '--provider', 'openai', '--upstream-key-env', 'MY_REAL_KEY', '--', process.execPath, '-e', script],
    { env: { ...server.cliEnv(), TILL_MASTER_KEY: Buffer.alloc(32, 2).toString('base64'), MY_REAL_KEY: 'sk-real-run-hidden' } });
  assert.equal(r.status, 0, r.stderr);
  assert.deepEqual(JSON.parse(r.stdout.trim()), [null, null, null]);
  await server.stop();
  server.cleanup();
});

test('a run inside a run gets a sub-key carved out of the outer key', async () => {
  const server = await TillServer.start({ args: ['--upstream', `openai=${mock.url}`] });
  // The outer agent hands a sub-agent at most 3 requests of its 10, then reports its own key.
  const outer = [
    "const { spawnSync } = require('node:child_process');",
    `const inner = spawnSync(${JSON.stringify(TILL_BIN)}, ['run', '--max-requests', '3', '--', process.execPath, ${JSON.stringify(AGENT)}], { encoding: 'utf8' });`,
    "process.stdout.write(inner.stdout); process.stderr.write(inner.stderr);",
    "fetch(process.env.TILL_BASE_URL + '/api/v1/key', { headers: { authorization: 'Bearer ' + process.env.TILL_KEY } })",
    "  .then((r) => r.json()).then((k) => { console.log('outer used ' + k.used.requests + ' reserved ' + k.reserved.requests); process.exit(inner.status); });",
  ].join('\n');
  const r = await runTill(['run', '--provider', 'openai', '--max-requests', '10', '--', process.execPath, '-e', outer],
    { env: { ...server.cliEnv(), OPENAI_API_KEY: 'sk-real-run-nested' } });
  assert.equal(r.status, 7, `${r.stdout}\n${r.stderr}`);
  assert.match(r.stdout, /ok=3/);
  assert.match(r.stderr, /till run: 3 requests.*the max_requests \(3\) limit was reached/);
  assert.match(r.stdout, /outer used 3 reserved 0/, 'the sub-agent\'s calls count on the outer key, and its carve came back');
  const keys = (await server.api('GET', '/api/v1/keys')).json.keys;
  const inner = keys.find((k) => k.parent_id);
  assert.equal(inner.status, 'revoked');
  assert.equal(inner.used.requests, 3);
  await server.stop();
  server.cleanup();
});
