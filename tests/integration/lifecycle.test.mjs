// Server lifecycle and security properties of the real binary: first start, master key checks,
// graceful shutdown, kill -9 durability, secrets at rest, refused tokens, request limits.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, readdirSync, readFileSync, statSync, writeFileSync, mkdirSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { spawn } from 'node:child_process';
import { LISTENING, TILL_BIN, TillServer, createKey, initDataDir, runTill, tempDir, waitFor, UPSTREAM_SECRET } from './lib/till.mjs';

function filesUnder(dir) {
  return readdirSync(dir, { recursive: true }).map((f) => join(dir, f)).filter((f) => statSync(f).isFile());
}

test('till init prints only the admin key; data dir and master key are private', () => {
  const dir = join(tempDir(), 'data');
  const r = runTill(['init', '--data-dir', dir]);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /^till_admin_\S+\n$/);
  assert.equal(statSync(dir).mode & 0o777, 0o700);
  assert.equal(statSync(join(dir, 'master.key')).mode & 0o777, 0o600);
  for (const f of filesUnder(dir)) assert.equal(statSync(f).mode & 0o077, 0, `${f} is private`);
  const again = runTill(['init', '--data-dir', dir]);
  assert.equal(again.status, 1);
  assert.match(again.stderr, /already initialised/);
  // The admin key is stored only as a hash.
  const key = r.stdout.trim();
  for (const f of filesUnder(dir)) {
    const bytes = readFileSync(f);
    assert.ok(!bytes.includes(key) && !bytes.includes(key.slice(11, 40)), `admin key in ${f}`);
  }
});

test('serve on an empty data dir creates an admin key and prints it once on stderr', async () => {
  const dataDir = join(tempDir(), 'fresh');
  const proc = spawn(TILL_BIN, ['serve', '--data-dir', dataDir, '--listen', '127.0.0.1:0'], { stdio: ['ignore', 'pipe', 'pipe'] });
  const server = new TillServer(proc, dataDir, null);
  let stdout = '';
  proc.stdout.on('data', (c) => { stdout += c; });
  await waitFor(() => LISTENING.test(server.stderr), { what: 'listening' });
  server.url = server.stderr.match(LISTENING)[1];
  const admin = server.stderr.match(/(till_admin_\S+)/)[1];
  assert.equal(server.stderr.split(admin).length - 1, 2, 'shown in the notice and the export hint only');
  const list = await server.api('GET', '/api/v1/keys', { auth: admin });
  assert.equal(list.status, 200);
  assert.equal(stdout, '');
  const exit = await server.stop();
  assert.equal(exit.code, 0);
  // A second start does not print a new key.
  const second = await TillServer.start({ dataDir, adminKey: admin });
  assert.ok(!/till_admin_/.test(second.stderr));
  await second.stop();
  server.cleanup();
});

test('refuses to start with a master key readable by others, or malformed', async () => {
  const { dataDir } = initDataDir();
  const keyFile = join(dataDir, 'master.key');
  chmodSync(keyFile, 0o644);
  let r = runTill(['serve', '--data-dir', dataDir, '--listen', '127.0.0.1:0']);
  assert.equal(r.status, 1);
  assert.match(r.stderr, /by group or others \(mode 0644\); run: chmod 600/);
  chmodSync(keyFile, 0o600);
  writeFileSync(keyFile, 'till-master-key v1 not-base64!!\n', { mode: 0o600 });
  r = runTill(['serve', '--data-dir', dataDir, '--listen', '127.0.0.1:0']);
  assert.equal(r.status, 1);
  assert.match(r.stderr, /master\.key/);
  assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
  rmSync(dataDir, { recursive: true, force: true });
});

test('TILL_MASTER_KEY: valid key is used and nothing is written; invalid is refused', async () => {
  const key = Buffer.alloc(32, 7).toString('base64');
  const dataDir = join(tempDir(), 'envkey');
  const r = runTill(['init', '--data-dir', dataDir], { env: { TILL_MASTER_KEY: key } });
  assert.equal(r.status, 0, r.stderr);
  assert.ok(!readdirSync(dataDir).includes('master.key'));
  const bad = runTill(['init', '--data-dir', join(tempDir(), 'x')], { env: { TILL_MASTER_KEY: 'c2hvcnQ=' } });
  assert.equal(bad.status, 1);
  assert.match(bad.stderr, /TILL_MASTER_KEY/);
  assert.ok(!bad.stderr.includes('c2hvcnQ='), 'key material in the message');
});

test('a data dir in use by a running server is refused to a second process', async () => {
  const server = await TillServer.start();
  const init = runTill(['init', '--data-dir', server.dataDir]);
  assert.equal(init.status, 1);
  assert.match(init.stderr, /in use by another till process/);
  const serve = runTill(['serve', '--data-dir', server.dataDir, '--listen', '127.0.0.1:0']);
  assert.equal(serve.status, 1);
  assert.match(serve.stderr, /in use by another till process/);
  await server.stop();
  server.cleanup();
});

test('SIGTERM stops gracefully with exit code 0', async () => {
  const server = await TillServer.start();
  const exit = await server.stop('SIGTERM');
  assert.deepEqual(exit, { code: 0, signal: null });
  assert.match(server.stderr, /stopped/);
  server.cleanup();
});

test('after kill -9 and restart, keys and revocations are as they were', async () => {
  const server = await TillServer.start();
  const kept = await createKey(server, { name: 'kept', max_requests: 10 });
  const gone = await createKey(server, { name: 'gone' });
  assert.equal((await server.api('DELETE', `/api/v1/keys/${gone.id}`)).status, 200);
  const before = (await server.api('GET', '/api/v1/keys')).json.keys;
  const exit = await server.kill9();
  assert.equal(exit.signal, 'SIGKILL');

  const restarted = await TillServer.start({ dataDir: server.dataDir, adminKey: server.adminKey });
  const after = (await restarted.api('GET', '/api/v1/keys')).json.keys;
  const strip = (keys) => keys.map(({ status, used, reserved, limits, id }) => ({ status, used, reserved, limits, id }));
  assert.deepEqual(strip(after), strip(before));
  assert.equal((await restarted.api('GET', '/api/v1/key', { auth: kept.key })).status, 200);
  const revoked = await restarted.api('GET', '/api/v1/key', { auth: gone.key });
  assert.equal(revoked.status, 403);
  assert.equal(revoked.json.error.code, 'key_revoked');
  await restarted.stop();
  restarted.cleanup();
});

test('the upstream credential and tokens appear nowhere in the data dir or logs', async () => {
  const server = await TillServer.start();
  const created = await createKey(server, { name: 'secret-check' });
  await server.api('GET', '/api/v1/key', { auth: created.key });
  await server.api('GET', '/api/v1/key', { auth: `${created.key}x` });
  await server.stop();
  const secretPart = created.key.slice('till_sk_'.length + 17);
  for (const f of filesUnder(server.dataDir)) {
    const bytes = readFileSync(f);
    for (const needle of [UPSTREAM_SECRET, UPSTREAM_SECRET.slice(8, 30), created.key, secretPart.slice(0, 24)]) {
      assert.ok(!bytes.includes(needle), `${f} contains a secret`);
    }
  }
  for (const needle of [UPSTREAM_SECRET, created.key, secretPart.slice(0, 24)]) {
    assert.ok(!server.stderr.includes(needle), 'server log contains a secret');
  }
  server.cleanup();
});

test('tampered, truncated, extended and random tokens are refused with 401', async () => {
  const server = await TillServer.start();
  const { key } = await createKey(server);
  assert.equal((await server.api('GET', '/api/v1/key', { auth: key })).status, 200);
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
  const variants = [key.slice(0, -1), key.slice(0, 20), `${key}A`, `${key}${key}`, 'till_sk_', 'till_sk_x',
    key.replace('till_sk_', 'till_admin_'), key.replace('till_sk_', 'till_xx_'), 'sk-proj-abc', ''.padEnd(300, 'A')];
  for (let i = 8; i < key.length; i += Math.max(1, Math.floor(key.length / 40))) {
    const c = key[i];
    const r = alphabet[(alphabet.indexOf(c) + 1) % alphabet.length];
    variants.push(key.slice(0, i) + r + key.slice(i + 1));
  }
  for (let i = 0; i < 20; i++) {
    variants.push(`till_sk_${Array.from({ length: 60 }, () => alphabet[Math.floor(Math.random() * 62)]).join('')}`);
  }
  for (const v of variants) {
    const res = await server.api('GET', '/api/v1/key', { auth: v });
    assert.equal(res.status, 401, `variant ${v.slice(0, 30)}… got ${res.status}`);
    assert.equal(res.json.error.code, 'invalid_api_key');
    if (v.length > 20) assert.ok(!res.text.includes(v.slice(8, 30)), 'the token is echoed in the error');
  }
  await server.stop();
  server.cleanup();
});

// Sends raw bytes and resolves with everything the server sent back before closing.
function rawExchange(url, payload, { endAfterWrite = false, timeoutMs = 10000 } = {}) {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = connect(Number(port), hostname, () => {
      socket.write(payload);
      if (endAfterWrite) socket.end();
    });
    let data = '';
    socket.setEncoding('latin1');
    socket.on('data', (c) => { data += c; });
    socket.on('close', () => resolve(data));
    socket.on('error', reject);
    setTimeout(() => { socket.destroy(); reject(new Error(`no close within ${timeoutMs} ms; got ${data}`)); }, timeoutMs).unref();
  });
}

test('request limits: 413 for large bodies and headers, 400 for garbage, 408 for slow clients', async () => {
  const server = await TillServer.start({ args: ['--max-body-bytes', '1024', '--header-timeout', '300ms'] });
  const big = await server.api('POST', '/api/v1/keys', { body: 'x'.repeat(2048) });
  assert.equal(big.status, 413);
  assert.equal(big.json.error.code, 'request_too_large');
  const hugeHeader = await rawExchange(server.url, `GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(100 * 1024)}\r\n\r\n`);
  assert.match(hugeHeader, /^HTTP\/1\.1 413/);
  const garbage = await rawExchange(server.url, 'NOT HTTP AT ALL\r\n\r\n');
  assert.match(garbage, /^HTTP\/1\.1 400/);
  assert.match(garbage, /invalid_request/);
  const started = Date.now();
  const slow = await rawExchange(server.url, 'GET /healthz HTTP/1.1\r\nHost: x\r\n');
  assert.match(slow, /^HTTP\/1\.1 408/);
  assert.match(slow, /request_timeout/);
  assert.ok(Date.now() - started >= 250, 'answered before the header timeout');
  await server.stop();
  server.cleanup();
});
