// Key rotation, vault credentials, sub-keys and suspension through the real binary and the mock
// provider (issue 4).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { startProxy, proxyKey, post, json, keyState, chatBody, REAL_KEYS } from './lib/proxy.mjs';
import { waitFor } from './lib/till.mjs';

let env;
before(async () => { env = await startProxy(); });
after(async () => { await env.stop(); });

const chat = (token) => post(env.server, '/v1/chat/completions', token, chatBody());
const statusOf = async (token) => (await chat(token)).status;
const ownKey = (token, method = 'GET', path = '', body) =>
  env.server.api(method, `/api/v1/key${path}`, { auth: token, body });

// --- Rotation ----------------------------------------------------------------------------------

test('rotation: the old token works during the grace, then 401; counters carry on', async () => {
  const key = await proxyKey(env.server, 'openai', { max_requests: 1000 });
  assert.equal(await statusOf(key.key), 200);

  const rotated = await env.server.api('POST', `/api/v1/keys/${key.id}/rotate`, {
    body: { grace: '1500ms', upstream_key: REAL_KEYS.openai },
  });
  assert.equal(rotated.status, 200, rotated.text);
  assert.equal(rotated.json.id, key.id);
  assert.notEqual(rotated.json.key, key.key);
  assert.ok(rotated.json.previous_token_valid_until);
  const graceEnds = Date.parse(rotated.json.previous_token_valid_until);

  assert.equal(await statusOf(rotated.json.key), 200);
  // Checked only while the grace surely lasts, so a slow machine cannot make this flaky.
  if (Date.now() < graceEnds - 500) assert.equal(await statusOf(key.key), 200);
  await waitFor(async () => (await statusOf(key.key)) === 401, { timeoutMs: 10000, intervalMs: 50, what: 'old token refused' });
  assert.ok(Date.now() >= graceEnds, 'refused only after the grace');
  assert.equal(await statusOf(rotated.json.key), 200);

  // Every call through either token counted on the one key.
  const calls = env.mock.requests.filter((r) => r.headers.authorization === `Bearer ${REAL_KEYS.openai}`).length;
  await waitFor(async () => (await keyState(env.server, key.id)).used.requests >= 3, { what: 'usage' });
  assert.ok(calls >= 3);
  assert.equal((await keyState(env.server, key.id)).limits.max_requests, 1000);
});

test('rotation of a sealed key needs its upstream key again; without grace the old token dies at once', async () => {
  const key = await proxyKey(env.server, 'openai');
  const refused = await env.server.api('POST', `/api/v1/keys/${key.id}/rotate`, { body: {} });
  assert.equal(refused.status, 400);
  assert.equal(refused.json.error.param, 'upstream_key');
  assert.equal(await statusOf(key.key), 200, 'a refused rotation changes nothing');

  const rotated = await env.server.api('POST', `/api/v1/keys/${key.id}/rotate`, {
    body: { upstream_key: REAL_KEYS.openai },
  });
  assert.equal(rotated.status, 200, rotated.text);
  assert.equal(rotated.json.previous_token_valid_until, null);
  assert.equal(await statusOf(key.key), 401);
  assert.equal(await statusOf(rotated.json.key), 200);
});

test('a key holder rotates its own token; the rotated-out token cannot rotate again', async () => {
  const key = await proxyKey(env.server, 'openai');
  const rotated = await ownKey(key.key, 'POST', '/rotate', { grace: '10m' });
  assert.equal(rotated.status, 200, rotated.text);
  const before = env.mock.requests.length;
  assert.equal(await statusOf(rotated.json.key), 200);
  // The new token carries the same upstream credential, resealed.
  assert.equal(env.mock.requests[before].headers.authorization, `Bearer ${REAL_KEYS.openai}`);
  assert.equal(await statusOf(key.key), 200, 'within its grace');
  const again = await ownKey(key.key, 'POST', '/rotate');
  assert.equal(again.status, 401);
  const unknown = await ownKey(rotated.json.key, 'POST', '/rotate', { upstream_key: 'sk-x' });
  assert.equal(unknown.status, 400);
});

// --- Vault credentials -------------------------------------------------------------------------

const FIRST_SECRET = 'sk-vault-first-6b1d7f0e9c2a4b5d8e3f';
const SECOND_SECRET = 'sk-vault-second-0a9b8c7d6e5f4a3b2c1d';

function filesUnder(dir) {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) =>
    entry.isDirectory() ? filesUnder(join(dir, entry.name)) : [join(dir, entry.name)]);
}

test('vault: a new secret reaches every key that uses it on the very next request', async () => {
  const added = await env.server.api('POST', '/api/v1/credentials', {
    body: { name: 'openai-main', provider: 'openai', secret: FIRST_SECRET, rotate_every: '30d' },
  });
  assert.equal(added.status, 201, added.text);
  assert.equal(added.json.name, 'openai-main');
  assert.ok(added.json.rotation_due_at);

  const create = (fields) => env.server.api('POST', '/api/v1/keys', { body: { provider: 'openai', ...fields } });
  const a = (await create({ credential: 'openai-main' })).json;
  const b = (await create({ credential: 'openai-main', max_requests: 5 })).json;
  assert.equal(a.credential, 'openai-main');

  const seen = async (token) => {
    const before = env.mock.requests.length;
    assert.equal(await statusOf(token), 200);
    return env.mock.requests[before].headers.authorization;
  };
  assert.equal(await seen(a.key), `Bearer ${FIRST_SECRET}`);
  assert.equal(await seen(b.key), `Bearer ${FIRST_SECRET}`);

  const replaced = await env.server.api('PUT', '/api/v1/credentials/openai-main', { body: { secret: SECOND_SECRET } });
  assert.equal(replaced.status, 200, replaced.text);
  assert.equal(await seen(a.key), `Bearer ${SECOND_SECRET}`);
  assert.equal(await seen(b.key), `Bearer ${SECOND_SECRET}`);

  const listed = await env.server.api('GET', '/api/v1/credentials');
  assert.equal(listed.status, 200);
  const entry = listed.json.credentials.find((c) => c.name === 'openai-main');
  assert.deepEqual(new Set(entry.keys), new Set([a.id, b.id]));

  // Removing it is refused while keys use it.
  const refused = await env.server.api('DELETE', '/api/v1/credentials/openai-main');
  assert.equal(refused.status, 409);
  assert.match(refused.json.error.message, new RegExp(a.id));

  // The secrets are in no API answer, log line or data file.
  const answers = [added.text, replaced.text, listed.text, refused.text, JSON.stringify(a), JSON.stringify(b)];
  for (const secret of [FIRST_SECRET, SECOND_SECRET]) {
    for (const text of answers) assert.ok(!text.includes(secret), 'secret in an API answer');
    assert.ok(!env.server.stderr.includes(secret), 'secret in the server log');
    for (const file of filesUnder(env.server.dataDir)) {
      assert.ok(!readFileSync(file).includes(secret), `secret in ${file}`);
    }
  }

  for (const key of [a, b]) await env.server.api('DELETE', `/api/v1/keys/${key.id}`);
  const removed = await env.server.api('DELETE', '/api/v1/credentials/openai-main');
  assert.equal(removed.status, 200, removed.text);
});

test('vault: a key naming an unknown credential, or one of another provider, is refused', async () => {
  await env.server.api('POST', '/api/v1/credentials', {
    body: { name: 'claude', provider: 'anthropic', secret: 'sk-ant-vault-000000' },
  });
  for (const credential of ['nope', 'claude']) {
    const res = await env.server.api('POST', '/api/v1/keys', { body: { provider: 'openai', credential } });
    assert.equal(res.status, 400, res.text);
    assert.equal(res.json.error.param, 'credential');
  }
  const both = await env.server.api('POST', '/api/v1/keys', {
    body: { provider: 'anthropic', credential: 'claude', upstream_key: 'sk-ant-x' },
  });
  assert.equal(both.status, 400);
  const forced = await env.server.api('DELETE', '/api/v1/credentials/claude?force=true');
  assert.equal(forced.status, 200);
});

// --- Sub-keys ----------------------------------------------------------------------------------

const child = (parentToken, body) => ownKey(parentToken, 'POST', '/children', body);

test('sub-keys: carved from the parent; usage counts on both; revoking returns and cascades', async () => {
  const parent = await proxyKey(env.server, 'openai', { max_spend_usd: '1.00' });
  const a = await child(parent.key, { name: 'sub-a', max_spend_usd: '0.40' });
  const b = await child(parent.key, { name: 'sub-b', max_spend_usd: '0.40' });
  assert.equal(a.status, 201, a.text);
  assert.equal(b.status, 201, b.text);
  assert.equal(a.json.parent_id, parent.id);
  assert.equal(a.json.provider, 'openai');
  const third = await child(parent.key, { max_spend_usd: '0.40' });
  assert.equal(third.status, 402, third.text);
  assert.equal(third.json.error.code, 'limit_exhausted');
  assert.match(third.json.error.message, /max_spend: the parent key key_\w+ has only \$0\.20* left, not \$0\.40* for this sub-key/);
  assert.equal(Number((await keyState(env.server, parent.id)).remaining.spend_usd), 0.2);

  // The child calls the provider with the parent's upstream credential; its spend shows on the parent.
  const before = env.mock.requests.length;
  assert.equal(await statusOf(a.json.key), 200);
  assert.equal(env.mock.requests[before].headers.authorization, `Bearer ${REAL_KEYS.openai}`);
  await waitFor(async () => {
    const [p, c] = await Promise.all([keyState(env.server, parent.id), keyState(env.server, a.json.id)]);
    return c.used.requests === 1 && p.used.requests === 1 && p.used.spend_usd === c.used.spend_usd;
  }, { what: 'child usage on the parent' });
  const spent = Number((await keyState(env.server, a.json.id)).used.spend_usd);
  assert.ok(spent > 0);

  // Revoking child b returns its unused $0.40 to the parent.
  const remainingBefore = Number((await keyState(env.server, parent.id)).remaining.spend_usd);
  assert.equal((await env.server.api('DELETE', `/api/v1/keys/${b.json.id}`)).status, 200);
  const remainingAfter = Number((await keyState(env.server, parent.id)).remaining.spend_usd);
  assert.ok(Math.abs(remainingAfter - remainingBefore - 0.4) < 1e-9, `${remainingBefore} -> ${remainingAfter}`);

  // Revoking the parent revokes its children.
  assert.equal((await env.server.api('DELETE', `/api/v1/keys/${parent.id}`)).status, 200);
  assert.equal((await keyState(env.server, a.json.id)).status, 'revoked');
  const refused = await json(await chat(a.json.key));
  assert.equal(refused.status, 403);
  assert.equal(refused.json.error.code, 'key_revoked');
});

test('sub-keys: never wider than the parent, and at most four levels deep', async () => {
  const parent = await proxyKey(env.server, 'openai', {
    max_requests: 100, models: ['gpt-4o-mini'], rpm: 60, expires_in: '1h',
  });
  const cases = [
    [{ max_requests: 5, models: ['gpt-4o'] }, 'models'],
    [{ max_requests: 5, rpm: 61 }, 'rpm'],
    [{ max_requests: 5, expires_in: '2h' }, 'expires_at'],
    [{ max_requests: 5, provider: 'anthropic' }, 'provider'],
    [{ max_requests: 5, upstream_key: 'sk-other' }, 'upstream_key'],
    [{}, 'max_requests'],
  ];
  for (const [body, param] of cases) {
    const res = await child(parent.key, body);
    assert.equal(res.status, 400, `${JSON.stringify(body)}: ${res.text}`);
    assert.equal(res.json.error.param, param);
  }
  // What it does not narrow, it inherits.
  let token = parent.key;
  for (let level = 1; level <= 4; level++) {
    const res = await child(token, { max_requests: 10 - level });
    assert.equal(res.status, 201, res.text);
    assert.deepEqual(res.json.scope.models, ['gpt-4o-mini']);
    assert.equal(res.json.scope.rpm, 60);
    assert.equal(res.json.expires_at, parent.expires_at);
    token = res.json.key;
  }
  const tooDeep = await child(token, { max_requests: 1 });
  assert.equal(tooDeep.status, 409, tooDeep.text);
  assert.match(tooDeep.json.error.message, /4 levels/);
});

test('suspending a parent suspends its sub-keys until it is resumed', async () => {
  const parent = await proxyKey(env.server, 'openai', { max_requests: 20 });
  const sub = (await child(parent.key, { max_requests: 5 })).json;
  const suspended = await env.server.api('POST', `/api/v1/keys/${parent.id}/suspend`);
  assert.equal(suspended.status, 200, suspended.text);
  assert.equal(suspended.json.status, 'suspended');
  const refused = await json(await chat(sub.key));
  assert.equal(refused.status, 403);
  assert.equal(refused.json.error.code, 'key_suspended');
  const resumedChild = await env.server.api('POST', `/api/v1/keys/${sub.id}/resume`);
  assert.equal(resumedChild.status, 409, 'a sub-key stays suspended while its parent is');

  const resumed = await env.server.api('POST', `/api/v1/keys/${parent.id}/resume`);
  assert.equal(resumed.status, 200);
  assert.equal(resumed.json.status, 'active');
  assert.equal(await statusOf(sub.key), 200);
});

test("a key's holder reads and revokes its own sub-keys, and no one else's", async () => {
  const parent = await proxyKey(env.server, 'openai', { max_requests: 20 });
  const stranger = await proxyKey(env.server, 'openai', { max_requests: 20 });
  const sub = (await child(parent.key, { max_requests: 5 })).json;
  const grandchild = (await child(sub.key, { max_requests: 2 })).json;

  const shown = await ownKey(parent.key, 'GET', `/children/${grandchild.id}`);
  assert.equal(shown.status, 200, shown.text);
  assert.equal(shown.json.parent_id, sub.id);
  assert.equal((await ownKey(stranger.key, 'GET', `/children/${sub.id}`)).status, 404);
  assert.equal((await ownKey(sub.key, 'DELETE', `/children/${parent.id}`)).status, 404, 'not upwards');

  const revoked = await ownKey(parent.key, 'DELETE', `/children/${sub.id}`);
  assert.equal(revoked.status, 200, revoked.text);
  assert.equal(revoked.json.status, 'revoked');
  assert.equal((await keyState(env.server, grandchild.id)).status, 'revoked');
  assert.equal((await keyState(env.server, parent.id)).reserved.requests, 0, 'the carve came back');
  assert.equal(await statusOf(parent.key), 200);
});
