// The control plane through the real binary: create → list → show → revoke, validation, auth.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { TillServer, createKey, UPSTREAM_SECRET } from './lib/till.mjs';

let server;
before(async () => { server = await TillServer.start(); });
after(async () => { await server.stop(); server.cleanup(); });

test('healthz answers', async () => {
  const res = await server.api('GET', '/healthz', { auth: null });
  assert.equal(res.status, 200);
  assert.deepEqual(res.json, { status: 'ok' });
});

test('providers: every provider with the SDK environment `till env` prints, as a template', async () => {
  assert.equal((await server.api('GET', '/api/v1/providers', { auth: null })).status, 401);
  assert.equal((await server.api('POST', '/api/v1/providers')).status, 405);
  const res = await server.api('GET', '/api/v1/providers');
  assert.equal(res.status, 200);
  const names = res.json.providers.map((p) => p.name);
  assert.deepEqual(names, ['openai', 'anthropic', 'google', 'openrouter', 'mistral', 'groq', 'together',
    'fireworks', 'perplexity', 'deepseek', 'xai', 'cohere']);
  const byName = Object.fromEntries(res.json.providers.map((p) => [p.name, p]));
  assert.deepEqual(byName.openai, {
    name: 'openai', display_name: 'OpenAI', api_key_env: 'OPENAI_API_KEY',
    environment: { OPENAI_API_KEY: '{key}', OPENAI_BASE_URL: '{till_url}/proxy/openai/v1',
      TILL_BASE_URL: '{till_url}', TILL_KEY: '{key}' },
  });
  // An OpenAI-compatible provider also sets the OpenAI SDK's variables; Anthropic's SDK adds /v1 itself.
  assert.equal(byName.groq.environment.OPENAI_BASE_URL, '{till_url}/proxy/groq/v1');
  assert.equal(byName.anthropic.environment.ANTHROPIC_BASE_URL, '{till_url}/proxy/anthropic');
});

test('create → list → show → revoke', async () => {
  const created = await createKey(server, {
    name: 'research-agent', max_requests: 50, max_tokens: 100000, max_spend_usd: '5.00',
    expires_in: '24h', models: ['gpt-4o-mini'], rpm: 60, max_concurrency: 4,
    allowed_cidrs: ['127.0.0.0/8', '::1'], metadata: { team: 'r&d' },
  });
  assert.match(created.key, /^till_sk_/);
  assert.match(created.id, /^key_[0-9A-Za-z]{16}$/);
  assert.equal(created.status, 'active');
  assert.deepEqual(created.limits, { max_requests: 50, max_tokens: 100000, max_spend_usd: '5.00' });
  assert.deepEqual(created.used.requests, 0);
  assert.equal(created.used.spend_usd, '0.00');
  assert.deepEqual(created.remaining, { requests: 50, tokens: 100000, spend_usd: '5.00' });
  assert.deepEqual(created.scope, {
    models: ['gpt-4o-mini'], rpm: 60, max_concurrency: 4, allowed_cidrs: ['127.0.0.0/8', '::1/128'],
  });
  assert.deepEqual(created.metadata, { team: 'r&d' });
  const expires = Date.parse(created.expires_at) - Date.now();
  assert.ok(expires > 23.9 * 3600e3 && expires <= 24 * 3600e3, `expires_at ${created.expires_at}`);
  assert.ok(!JSON.stringify(created).includes(UPSTREAM_SECRET), 'upstream key echoed back');

  const shown = await server.api('GET', `/api/v1/keys/${created.id}`);
  assert.equal(shown.status, 200);
  assert.equal(shown.json.id, created.id);
  assert.equal(shown.json.key, undefined, 'the token is shown only at creation');
  assert.ok(!shown.text.includes(created.key.slice(8)), 'no part of the token in show');

  const list = await server.api('GET', '/api/v1/keys?name=research-agent');
  assert.equal(list.status, 200);
  assert.deepEqual(list.json.keys.map((k) => k.id), [created.id]);
  assert.equal(list.json.next_cursor, null);

  const own = await server.api('GET', '/api/v1/key', { auth: created.key });
  assert.equal(own.status, 200);
  assert.equal(own.json.id, created.id);

  const revoked = await server.api('DELETE', `/api/v1/keys/${created.id}`);
  assert.equal(revoked.status, 200);
  assert.equal(revoked.json.status, 'revoked');
  const again = await server.api('DELETE', `/api/v1/keys/${created.id}`);
  assert.equal(again.status, 200, 'revoke is idempotent');
  assert.equal(again.json.status, 'revoked');

  const after = await server.api('GET', '/api/v1/key', { auth: created.key });
  assert.equal(after.status, 403);
  assert.equal(after.json.error.code, 'key_revoked');
  assert.match(after.json.error.message, /revoked/);

  const filtered = await server.api('GET', '/api/v1/keys?status=revoked&name=research-agent');
  assert.deepEqual(filtered.json.keys.map((k) => k.id), [created.id]);
});

test('max_spend_cents and numeric max_spend_usd are exact', async () => {
  const a = await createKey(server, { max_spend_cents: 250 });
  assert.equal(a.limits.max_spend_usd, '2.50');
  const b = await createKey(server, { max_spend_usd: 0.1 });
  assert.equal(b.limits.max_spend_usd, '0.10');
  const c = await createKey(server, { max_spend_usd: '0.000000001' });
  assert.equal(c.limits.max_spend_usd, '0.000000001');
});

test('pagination walks every key once', async () => {
  const ids = [];
  for (let i = 0; i < 7; i++) ids.push((await createKey(server, { name: 'page-test' })).id);
  const seen = [];
  let cursor = null;
  let pages = 0;
  do {
    const q = `/api/v1/keys?name=page-test&limit=3${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`;
    const res = await server.api('GET', q);
    assert.equal(res.status, 200);
    seen.push(...res.json.keys.map((k) => k.id));
    cursor = res.json.next_cursor;
    pages++;
  } while (cursor);
  assert.equal(pages, 3);
  assert.deepEqual(seen, ids.reverse(), 'newest first, no duplicates or gaps');
  const bad = await server.api('GET', '/api/v1/keys?cursor=garbage');
  assert.equal(bad.status, 400);
  assert.equal(bad.json.error.param, 'cursor');
});

test('every invalid field gets 400 naming the field', async () => {
  const cases = [
    [{ upstream_key: 'sk-x' }, 'provider'],
    [{ provider: 'nosuch', upstream_key: 'sk-x' }, 'provider'],
    [{ provider: 'openai' }, 'upstream_key'],
    [{ provider: 'openai', upstream_key: 'has space' }, 'upstream_key'],
    [{ provider: 'openai', upstream_key: 'sk', max_requests: 0 }, 'max_requests'],
    [{ provider: 'openai', upstream_key: 'sk', max_requests: 1.5 }, 'max_requests'],
    [{ provider: 'openai', upstream_key: 'sk', max_requests: '5' }, 'max_requests'],
    [{ provider: 'openai', upstream_key: 'sk', max_tokens: -1 }, 'max_tokens'],
    [{ provider: 'openai', upstream_key: 'sk', max_spend_usd: '-1' }, 'max_spend_usd'],
    [{ provider: 'openai', upstream_key: 'sk', max_spend_usd: '1.0000000001' }, 'max_spend_usd'],
    [{ provider: 'openai', upstream_key: 'sk', max_spend_usd: 'five' }, 'max_spend_usd'],
    [{ provider: 'openai', upstream_key: 'sk', max_spend_cents: 1.5 }, 'max_spend_cents'],
    [{ provider: 'openai', upstream_key: 'sk', max_spend_usd: '1', max_spend_cents: 100 }, 'max_spend_cents'],
    [{ provider: 'openai', upstream_key: 'sk', expires_in: '10 minutes' }, 'expires_in'],
    [{ provider: 'openai', upstream_key: 'sk', expires_at: '2020-01-01T00:00:00Z' }, 'expires_at'],
    [{ provider: 'openai', upstream_key: 'sk', expires_at: 'tomorrow' }, 'expires_at'],
    [{ provider: 'openai', upstream_key: 'sk', models: 'gpt-4o' }, 'models'],
    [{ provider: 'openai', upstream_key: 'sk', models: [''] }, 'models'],
    [{ provider: 'openai', upstream_key: 'sk', rpm: 0 }, 'rpm'],
    [{ provider: 'openai', upstream_key: 'sk', max_concurrency: 'many' }, 'max_concurrency'],
    [{ provider: 'openai', upstream_key: 'sk', allowed_cidrs: ['10.0.0.1/8'] }, 'allowed_cidrs'],
    [{ provider: 'openai', upstream_key: 'sk', allowed_cidrs: ['nonsense'] }, 'allowed_cidrs'],
    [{ provider: 'openai', upstream_key: 'sk', metadata: [1] }, 'metadata'],
    [{ provider: 'openai', upstream_key: 'sk', name: 'x'.repeat(201) }, 'name'],
    [{ provider: 'openai', upstream_key: 'sk', max_request: 5 }, 'max_request'],
  ];
  const before = (await server.api('GET', '/api/v1/keys?limit=1000')).json.keys.length;
  for (const [body, field] of cases) {
    const res = await server.api('POST', '/api/v1/keys', { body });
    assert.equal(res.status, 400, `${JSON.stringify(body)} → ${res.status}`);
    assert.equal(res.json.error.code, 'invalid_request');
    assert.equal(res.json.error.param, field, `${JSON.stringify(body)}: ${res.json.error.message}`);
    assert.ok(res.json.error.message.startsWith(field), res.json.error.message);
    assert.ok(!res.text.includes('sk-x') || field === 'provider', 'secret echoed in an error');
  }
  for (const raw of ['{', '[]', '"x"', '']) {
    const res = await server.api('POST', '/api/v1/keys', { body: raw });
    assert.equal(res.status, 400, `body ${JSON.stringify(raw)}`);
    assert.equal(res.json.error.code, 'invalid_request');
  }
  const afterCount = (await server.api('GET', '/api/v1/keys?limit=1000')).json.keys.length;
  assert.equal(afterCount, before, 'no key was created by an invalid request');
});

test('without the admin key every /api/v1/keys call answers 401 and changes nothing', async () => {
  const victim = await createKey(server, { name: 'victim' });
  const scoped = victim.key;
  const badAuths = [null, 'till_admin_nope', scoped, `${server.adminKey}x`, server.adminKey.slice(0, -1),
    'Basic Zm9vOmJhcg=='];
  const calls = [
    ['GET', '/api/v1/keys'],
    ['POST', '/api/v1/keys', { provider: 'openai', upstream_key: 'sk-attacker' }],
    ['GET', `/api/v1/keys/${victim.id}`],
    ['DELETE', `/api/v1/keys/${victim.id}`],
    ['GET', '/api/v1/keys/key_doesnotexist0000'],
  ];
  const before = (await server.api('GET', '/api/v1/keys?limit=1000')).json.keys.length;
  for (const auth of badAuths) {
    for (const [method, path, body] of calls) {
      const headers = auth && auth.startsWith('Basic') ? { authorization: auth } : {};
      const res = await server.api(method, path, { body, auth: auth && !auth.startsWith('Basic') ? auth : null, headers });
      assert.equal(res.status, 401, `${method} ${path} with ${auth ? auth.slice(0, 12) : 'no auth'}`);
      assert.equal(res.json.error.code, 'invalid_api_key');
    }
  }
  const afterList = (await server.api('GET', '/api/v1/keys?limit=1000')).json.keys;
  assert.equal(afterList.length, before);
  assert.equal(afterList.find((k) => k.id === victim.id).status, 'active');
});

test('unknown routes and methods', async () => {
  assert.equal((await server.api('GET', '/api/v1/nothing')).status, 404);
  assert.equal((await server.api('PUT', '/api/v1/keys')).status, 405);
  assert.equal((await server.api('GET', '/api/v1/keys/key_unknown00000000')).status, 404);
  assert.equal((await server.api('GET', '/nope', { auth: null })).status, 404);
});
