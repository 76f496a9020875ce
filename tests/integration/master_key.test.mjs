// Master key rotation with the CLI on a stopped server's data dir: old tokens keep opening, the
// vault is re-wrapped, and a version is retired only when nothing needs it any more.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { startMock } from '../mock/mock_provider.mjs';
import { TillServer, initDataDir, runTill } from './lib/till.mjs';
import { post, chatBody } from './lib/proxy.mjs';

const SEALED_SECRET = 'sk-sealed-master-rotation-0001';
const VAULT_SECRET = 'sk-vault-master-rotation-0002';

const mock = await startMock();
const { dataDir, adminKey } = initDataDir();
after(async () => { await mock.close(); rmSync(dataDir, { recursive: true, force: true }); });

const serve = () => TillServer.start({ dataDir, adminKey, args: ['--upstream', `openai=${mock.url}`] });
const masterKey = (...args) => runTill(['master-key', ...args, '--data-dir', dataDir]);
const versionsInFile = () => [...readFileSync(join(dataDir, 'master.key'), 'utf8').matchAll(/^till-master-key v(\d+) /gm)].map((m) => Number(m[1]));

async function upstreamSeen(server, token) {
  const before = mock.requests.length;
  const res = await post(server, '/v1/chat/completions', token, chatBody());
  assert.equal(res.status, 200, await res.text());
  return mock.requests[before].headers.authorization;
}

test('rotate, keep old tokens working, retire only when nothing needs the old version', async () => {
  let server = await serve();
  const vault = await server.api('POST', '/api/v1/credentials', { body: { name: 'main', provider: 'openai', secret: VAULT_SECRET } });
  assert.equal(vault.status, 201, vault.text);
  const sealed = (await server.api('POST', '/api/v1/keys', { body: { provider: 'openai', upstream_key: SEALED_SECRET } })).json;
  const fromVault = (await server.api('POST', '/api/v1/keys', { body: { provider: 'openai', credential: 'main' } })).json;

  // Not while the server runs: it holds the data dir.
  const busy = masterKey('rotate');
  assert.equal(busy.status, 1);
  assert.match(busy.stderr, /in use by another till process/);
  await server.stop();

  const rotated = masterKey('rotate');
  assert.equal(rotated.status, 0, rotated.stderr);
  assert.equal(rotated.stdout.trim(), '2');
  assert.match(rotated.stderr, /re-wrapped 1 vault credential under v2/);
  assert.match(rotated.stderr, new RegExp(`${sealed.id}.*till master-key retire 1`));
  assert.deepEqual(versionsInFile(), [1, 2]);

  const refused = masterKey('retire', '1');
  assert.equal(refused.status, 1);
  assert.match(refused.stderr, new RegExp(`v1 still opens the tokens of 1 live key\\(s\\): ${sealed.id}`));
  assert.equal(masterKey('retire', '2').status, 1, 'the current version cannot be retired');
  assert.deepEqual(versionsInFile(), [1, 2]);

  server = await serve();
  assert.equal(await upstreamSeen(server, sealed.key), `Bearer ${SEALED_SECRET}`, 'a v1 token still opens');
  assert.equal(await upstreamSeen(server, fromVault.key), `Bearer ${VAULT_SECRET}`, 'the re-wrapped vault opens');
  const credential = await server.api('GET', '/api/v1/credentials/main');
  assert.equal(credential.json.master_key_version, 2);
  // The key holder rotates: the new token is sealed under v2.
  const renewed = await server.api('POST', '/api/v1/key/rotate', { auth: sealed.key, body: {} });
  assert.equal(renewed.status, 200, renewed.text);
  await server.stop();

  const listed = masterKey('list');
  assert.equal(listed.status, 0, listed.stderr);
  assert.match(listed.stdout, /v1\s+opens only\s+0\s+0/);
  const retired = masterKey('retire', '1');
  assert.equal(retired.status, 0, retired.stderr);
  assert.deepEqual(versionsInFile(), [2]);

  server = await serve();
  assert.equal(await upstreamSeen(server, renewed.json.key), `Bearer ${SEALED_SECRET}`);
  assert.equal(await upstreamSeen(server, fromVault.key), `Bearer ${VAULT_SECRET}`);
  assert.equal((await post(server, '/v1/chat/completions', sealed.key, chatBody())).status, 401);
  await server.stop();
});

test('master-key refuses a directory that is not a data dir, and creates nothing there', () => {
  const r = runTill(['master-key', 'list', '--data-dir', join(dataDir, 'nope')]);
  assert.equal(r.status, 1);
  assert.match(r.stderr, /no master.key in .*nope; is it a till data dir/);
  assert.throws(() => readFileSync(join(dataDir, 'nope', 'master.key')));
});

test('master-key refuses a master key given in TILL_MASTER_KEY', () => {
  const r = runTill(['master-key', 'rotate', '--data-dir', dataDir], { env: { TILL_MASTER_KEY: Buffer.alloc(32, 1).toString('base64') } });
  assert.equal(r.status, 1);
  assert.match(r.stderr, /TILL_MASTER_KEY/);
});
