// The data plane through the real binary and the mock provider: every provider's dialect,
// credentials, scope, limits under concurrency, failure paths and path tricks.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { startProxy, proxyKey, post, json, keyState, chatBody, REAL_KEYS } from './lib/proxy.mjs';
import { waitFor } from './lib/till.mjs';

let env;
before(async () => { env = await startProxy({ args: ['--upstream-timeout', '2s'] }); });
after(async () => { await env.stop(); });

const requestsOf = (key) => env.mock.requests.filter((r) => r.headers.authorization === `Bearer ${REAL_KEYS[key.provider]}`
  || r.headers['x-api-key'] === REAL_KEYS[key.provider] || r.headers['x-goog-api-key'] === REAL_KEYS[key.provider]);

// One end-to-end call per provider, in its own dialect and credential style.
const CASES = [
  { provider: 'openai', path: '/proxy/openai/v1/chat/completions', body: chatBody(), inject: ['authorization', 'Bearer'] },
  { provider: 'anthropic', path: '/proxy/anthropic/v1/messages', auth: 'x-api-key',
    headers: { 'anthropic-version': '2023-06-01' },
    body: { model: 'claude-3-5-haiku-20241022', max_tokens: 20, messages: [{ role: 'user', content: 'Say hello' }] },
    inject: ['x-api-key', ''] },
  { provider: 'google', path: '/proxy/google/v1beta/models/gemini-2.0-flash:generateContent', auth: 'x-goog-api-key',
    body: { contents: [{ parts: [{ text: 'Say hello' }] }], generationConfig: { maxOutputTokens: 20 } },
    inject: ['x-goog-api-key', ''] },
  { provider: 'openrouter', path: '/proxy/openrouter/v1/chat/completions', body: chatBody({ model: 'openai/gpt-4o-mini' }), inject: ['authorization', 'Bearer'] },
  { provider: 'mistral', path: '/proxy/mistral/v1/chat/completions', body: chatBody({ model: 'mistral-small-latest' }), inject: ['authorization', 'Bearer'] },
  { provider: 'groq', path: '/proxy/groq/v1/chat/completions', body: chatBody({ model: 'llama-3.1-8b-instant' }), inject: ['authorization', 'Bearer'] },
  { provider: 'together', path: '/proxy/together/v1/chat/completions', body: chatBody({ model: 'meta-llama/Llama-3.3-70B-Instruct-Turbo' }), inject: ['authorization', 'Bearer'] },
  { provider: 'fireworks', path: '/proxy/fireworks/v1/chat/completions', body: chatBody({ model: 'accounts/fireworks/models/llama-v3p1-8b-instruct' }), inject: ['authorization', 'Bearer'] },
  { provider: 'perplexity', path: '/proxy/perplexity/chat/completions', body: chatBody({ model: 'sonar' }), inject: ['authorization', 'Bearer'] },
  { provider: 'deepseek', path: '/proxy/deepseek/v1/chat/completions', body: chatBody({ model: 'deepseek-chat' }), inject: ['authorization', 'Bearer'] },
  { provider: 'xai', path: '/proxy/xai/v1/chat/completions', body: chatBody({ model: 'grok-3-mini' }), inject: ['authorization', 'Bearer'] },
  { provider: 'cohere', path: '/proxy/cohere/v2/chat', body: { model: 'command-r-08-2024', max_tokens: 20, messages: [{ role: 'user', content: 'Say hello' }] }, inject: ['authorization', 'Bearer'] },
];

for (const c of CASES) {
  test(`${c.provider}: forwards in its dialect, injects the real credential, meters usage`, async () => {
    const key = await proxyKey(env.server, c.provider, { max_requests: 10, max_tokens: 100000 });
    const before = env.mock.requests.length;
    const res = await json(await post(env.server, c.path, key.key, c.body, { auth: c.auth ?? 'bearer', headers: c.headers }));
    assert.equal(res.status, 200, res.text);
    assert.ok(!res.text.includes(REAL_KEYS[c.provider]), 'the client saw the real credential');
    for (const [, v] of res.headers) assert.ok(!v.includes(REAL_KEYS[c.provider]));
    const seen = env.mock.requests.slice(before);
    assert.equal(seen.length, 1);
    const [header, scheme] = c.inject;
    assert.equal(seen[0].headers[header], scheme ? `${scheme} ${REAL_KEYS[c.provider]}` : REAL_KEYS[c.provider]);
    const raw = JSON.stringify(seen[0].rawHeaders) + seen[0].body + seen[0].url;
    assert.ok(!raw.includes(key.key) && !raw.includes(key.key.slice(8, 40)), 'the provider saw the scoped key');
    const state = await keyState(env.server, key.id);
    assert.equal(state.used.requests, 1);
    assert.equal(state.used.input_tokens, seen[0].usage.input_tokens, `input tokens for ${c.provider}`);
    assert.equal(state.used.output_tokens, seen[0].usage.output_tokens, `output tokens for ${c.provider}`);
    assert.deepEqual(state.reserved, { requests: 0, tokens: 0, spend_usd: '0.00' });
  });
}

test('gemini: the key is accepted as ?key= and removed before forwarding', async () => {
  const key = await proxyKey(env.server, 'google', { max_requests: 5 });
  const before = env.mock.requests.length;
  const res = await fetch(`${env.server.url}/proxy/google/v1beta/models/gemini-2.0-flash:generateContent?key=${key.key}`, {
    method: 'POST', headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ contents: [{ parts: [{ text: 'hi' }] }] }),
  });
  assert.equal(res.status, 200, await res.text());
  const seen = env.mock.requests[before];
  assert.ok(!seen.url.includes(key.key) && !seen.url.includes('key='), seen.url);
  assert.equal(seen.headers['x-goog-api-key'], REAL_KEYS.google);
});

test('OpenAI-compatible /v1 route goes to the key\'s own provider', async () => {
  const key = await proxyKey(env.server, 'groq', { max_requests: 5 });
  const before = env.mock.requests.length;
  const res = await json(await post(env.server, '/v1/chat/completions', key.key, chatBody({ model: 'llama-3.1-8b-instant' })));
  assert.equal(res.status, 200, res.text);
  assert.equal(env.mock.requests[before].headers.authorization, `Bearer ${REAL_KEYS.groq}`);
});

test('streaming: events relayed, include_usage requested, usage metered', async () => {
  const key = await proxyKey(env.server, 'openai', { max_requests: 5 });
  const before = env.mock.requests.length;
  const res = await post(env.server, '/proxy/openai/v1/chat/completions', key.key, chatBody({ stream: true }));
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type'), /text\/event-stream/);
  const text = await res.text();
  assert.match(text, /data: \[DONE\]/);
  const seen = env.mock.requests[before];
  assert.equal(seen.json.stream_options.include_usage, true);
  const state = await keyState(env.server, key.id);
  assert.equal(state.used.output_tokens, seen.usage.output_tokens);
  assert.equal(state.used.input_tokens, seen.usage.input_tokens);
});

test('scope: provider, model, address, status', async () => {
  const anthropicKey = await proxyKey(env.server, 'anthropic');
  let r = await json(await post(env.server, '/proxy/openai/v1/chat/completions', anthropicKey.key, chatBody()));
  assert.equal(r.status, 403);
  assert.equal(r.json.error.code, 'scope_denied');

  const modelKey = await proxyKey(env.server, 'openai', { models: ['gpt-4o-mini'] });
  r = await json(await post(env.server, '/proxy/openai/v1/chat/completions', modelKey.key, chatBody({ model: 'gpt-4o' })));
  assert.equal(r.status, 403);
  assert.equal(r.json.error.code, 'scope_denied');
  assert.match(r.json.error.message, /gpt-4o/);

  const cidrKey = await proxyKey(env.server, 'openai', { allowed_cidrs: ['10.0.0.0/8'] });
  r = await json(await post(env.server, '/proxy/openai/v1/chat/completions', cidrKey.key, chatBody()));
  assert.equal(r.status, 403);
  assert.equal(r.json.error.code, 'scope_denied');

  const revoked = await proxyKey(env.server, 'openai');
  await env.server.api('DELETE', `/api/v1/keys/${revoked.id}`);
  r = await json(await post(env.server, '/proxy/openai/v1/chat/completions', revoked.key, chatBody()));
  assert.equal(r.status, 403);
  assert.equal(r.json.error.code, 'key_revoked');

  r = await json(await post(env.server, '/proxy/openai/v1/chat/completions', 'till_sk_nonsense', chatBody()));
  assert.equal(r.status, 401);
  assert.equal(r.json.error.code, 'invalid_api_key');
});

test('rpm: 429 rate_limited with a Retry-After that says when the window opens', async () => {
  const key = await proxyKey(env.server, 'openai', { rpm: 1 });
  assert.equal((await json(await post(env.server, '/proxy/openai/v1/chat/completions', key.key, chatBody()))).status, 200);
  const r = await json(await post(env.server, '/proxy/openai/v1/chat/completions', key.key, chatBody()));
  assert.equal(r.status, 429);
  assert.equal(r.json.error.code, 'rate_limited');
  assert.equal(r.json.error.param, null);
  const wait = Number(r.headers.get('retry-after'));
  assert.ok(wait >= 55 && wait <= 60, `retry-after ${wait}`);
  assert.match(r.json.error.message, new RegExp(`retry in ${wait}s`));
});

test('errors use the client\'s dialect: Anthropic shape on the Anthropic route', async () => {
  const key = await proxyKey(env.server, 'anthropic', { max_requests: 1 });
  const body = { model: 'claude-3-5-haiku-20241022', max_tokens: 20, messages: [{ role: 'user', content: 'hi' }] };
  assert.equal((await post(env.server, '/proxy/anthropic/v1/messages', key.key, body, { auth: 'x-api-key' })).status, 200);
  const r = await json(await post(env.server, '/proxy/anthropic/v1/messages', key.key, body, { auth: 'x-api-key' }));
  assert.equal(r.status, 402);
  assert.equal(r.json.type, 'error');
  assert.match(r.json.error.message, /^till: key key_\w+ has used its 1 requests limit/);
});

test('max_requests=50 under 200 concurrent requests lets exactly 50 reach the mock', async () => {
  const key = await proxyKey(env.server, 'openai', { max_requests: 50 });
  const before = env.mock.requests.length;
  const results = await Promise.all(Array.from({ length: 200 }, () =>
    post(env.server, '/proxy/openai/v1/chat/completions', key.key, chatBody()).then(json)));
  const ok = results.filter((r) => r.status === 200).length;
  const refused = results.filter((r) => r.status === 402);
  assert.equal(ok, 50);
  assert.equal(refused.length, 150);
  assert.equal(refused[0].json.error.code, 'limit_exhausted');
  assert.equal(env.mock.requests.length - before, 50);
  const state = await keyState(env.server, key.id);
  assert.equal(state.used.requests, 50);
  assert.equal(state.status, 'exhausted');
});

test('a spend limit under 100 concurrent streams is never overrun', async () => {
  const key = await proxyKey(env.server, 'openai', { max_spend_usd: '0.0005' });
  const before = env.mock.requests.length;
  env.mock.behave({ path: '/chat/completions' }, { delayMs: 5 }, { times: 100 });
  const results = await Promise.all(Array.from({ length: 100 }, () =>
    post(env.server, '/proxy/openai/v1/chat/completions', key.key, chatBody({ stream: true, max_tokens: 50 }))
      .then(async (res) => ({ status: res.status, text: await res.text() }))));
  const ok = results.filter((r) => r.status === 200).length;
  assert.ok(ok > 0, 'some streams ran');
  assert.equal(env.mock.requests.length - before, ok, 'every request the mock saw was granted');
  const state = await keyState(env.server, key.id);
  assert.ok(Number(state.used.spend_usd) <= 0.0005, `spent ${state.used.spend_usd}`);
  assert.ok(Number(state.used.spend_usd) > 0);
  assert.equal(state.reserved.spend_usd, '0.00');
});

test('upstream 500 is relayed and settles the reservation once', async () => {
  const key = await proxyKey(env.server, 'openai', { max_requests: 5, max_tokens: 10000 });
  env.mock.behave({ path: '/chat/completions' }, { status: 500 }, { times: 1 });
  const r = await json(await post(env.server, '/proxy/openai/v1/chat/completions', key.key, chatBody()));
  assert.equal(r.status, 500);
  const state = await keyState(env.server, key.id);
  assert.equal(state.used.requests, 1);
  assert.equal(state.used.tokens, 0);
  assert.deepEqual(state.reserved, { requests: 0, tokens: 0, spend_usd: '0.00' });
});

test('upstream timeout answers 504 and settles once', async () => {
  const key = await proxyKey(env.server, 'openai', { max_requests: 5, max_tokens: 10000 });
  env.mock.behave({ path: '/chat/completions' }, { stall: true }, { times: 1 });
  const r = await json(await post(env.server, '/proxy/openai/v1/chat/completions', key.key, chatBody()));
  assert.equal(r.status, 504);
  assert.equal(r.json.error.code, 'upstream_timeout');
  const state = await keyState(env.server, key.id);
  assert.equal(state.used.requests, 1);
  assert.deepEqual(state.reserved, { requests: 0, tokens: 0, spend_usd: '0.00' });
});

test('upstream reset mid-stream settles once', async () => {
  const key = await proxyKey(env.server, 'openai', { max_requests: 5, max_tokens: 10000 });
  env.mock.behave({ path: '/chat/completions' }, { dropMidStream: true, afterEvents: 2 }, { times: 1 });
  const res = await post(env.server, '/proxy/openai/v1/chat/completions', key.key, chatBody({ stream: true }));
  await res.text().catch(() => null);
  await waitFor(async () => (await keyState(env.server, key.id)).reserved.requests === 0, { what: 'settle' });
  const state = await keyState(env.server, key.id);
  assert.equal(state.used.requests, 1);
  assert.ok(state.used.tokens > 0, 'the reservation stands as the charge when no usage arrived');
});

test('client disconnect mid-stream settles once', async () => {
  const key = await proxyKey(env.server, 'openai', { max_requests: 5, max_tokens: 10000 });
  env.mock.behave({ path: '/chat/completions' }, { delayMs: 200 }, { times: 1 });
  const controller = new AbortController();
  const res = await post(env.server, '/proxy/openai/v1/chat/completions', key.key, chatBody({ stream: true }), { signal: controller.signal });
  const reader = res.body.getReader();
  await reader.read();
  controller.abort();
  await waitFor(async () => (await keyState(env.server, key.id)).reserved.requests === 0, { what: 'settle after disconnect' });
  const state = await keyState(env.server, key.id);
  assert.equal(state.used.requests, 1);
});

function rawRequest(url, requestText) {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = connect(Number(port), hostname, () => socket.end(requestText));
    let data = '';
    socket.on('data', (c) => { data += c; });
    socket.on('close', () => resolve(data));
    socket.on('error', reject);
  });
}

test('path tricks never reach the control plane or another upstream path', async () => {
  const key = await proxyKey(env.server, 'openai');
  const before = env.mock.requests.length;
  for (const path of ['/proxy/openai/../../api/v1/keys', '/proxy/openai/%2e%2e/%2e%2e/api/v1/keys',
    '/proxy/openai//v1/chat/completions', '/proxy/openai/v1/..%2f..%2fapi', '/v1/../api/v1/keys']) {
    const reply = await rawRequest(env.server.url,
      `GET ${path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${env.server.adminKey}\r\nConnection: close\r\n\r\n`);
    assert.match(reply, /^HTTP\/1\.1 (400|404)/, `${path}: ${reply.slice(0, 60)}`);
    assert.ok(!reply.includes('"keys"'), `${path} reached the control plane`);
  }
  const unknown = await json(await post(env.server, '/proxy/nosuch/v1/chat/completions', key.key, chatBody()));
  assert.equal(unknown.status, 404);
  assert.equal(env.mock.requests.length, before, 'nothing reached the mock');
});
