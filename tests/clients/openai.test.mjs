// The official `openai` npm SDK through till: a scoped key and till's URL are all an agent changes.
// With CLIENTS_DIRECT=1 the same scenarios run against the mock provider directly (see lib/world.mjs).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { MOCK_WORD } from '../mock/mock_provider.mjs';
import {
  startWorld, issueKey, baseURL, upstreamRequests, spyFetch, keyRecordWhen, sumUsage, simulatedLimitError,
} from './lib/world.mjs';

let world;
before(async () => { world = await startWorld(); });
after(async () => { await world?.close(); });

const T = { timeout: 60000 };
const MODEL = 'gpt-4o-mini';
const words = (n) => Array.from({ length: n }, () => MOCK_WORD).join(' ');
const ask = (extra = {}) => ({ model: MODEL, messages: [{ role: 'user', content: 'Say hello five times.' }], ...extra });

function client(key, { route, fetch } = {}) {
  return new OpenAI({
    apiKey: key.apiKey, baseURL: baseURL(world, 'openai', route), maxRetries: 0, timeout: 20000,
    organization: null, project: null, ...(fetch ? { fetch } : {}),
  });
}

async function drain(stream) {
  let text = '';
  let finish = null;
  for await (const chunk of stream) {
    const choice = chunk.choices[0];
    if (!choice) continue; // the usage chunk has no choices
    text += choice.delta?.content ?? '';
    finish = choice.finish_reason ?? finish;
  }
  return { text, finish };
}

// Through till: the key's used tokens equal what the provider reported for the key's requests.
async function assertUsageCounted(key, requests) {
  const recs = upstreamRequests(world, key);
  assert.equal(recs.length, requests);
  assert.ok(recs.every((r) => r.usage), 'the provider reported usage for every request');
  const expected = sumUsage(recs);
  const want = { requests, ...expected, tokens: expected.input_tokens + expected.output_tokens };
  const record = await keyRecordWhen(world, key, (k) => k.used.requests === requests
    && k.used.input_tokens === want.input_tokens && k.used.output_tokens === want.output_tokens);
  const { requests: r, input_tokens, output_tokens, tokens } = record.used;
  assert.deepEqual({ requests: r, input_tokens, output_tokens, tokens }, want);
}

test('chat completion through /proxy/openai/v1 and /v1', T, async () => {
  const key = await issueKey(world, 'openai', { max_requests: 10 });
  for (const route of ['proxy', 'v1']) {
    const completion = await client(key, { route }).chat.completions.create(ask());
    assert.equal(completion.object, 'chat.completion');
    assert.equal(completion.model, MODEL);
    assert.equal(completion.choices[0].message.content, words(5));
    assert.equal(completion.choices[0].finish_reason, 'stop');
    const rec = upstreamRequests(world, key).at(-1);
    assert.ok(rec, `${route}: the request reached the provider with the upstream credential`);
    assert.equal(rec.endpoint, 'chat.completions');
    assert.match(rec.path, /\/chat\/completions$/);
    assert.equal(rec.json.model, MODEL);
    assert.deepEqual(rec.json.messages, ask().messages, 'the request body arrives as sent');
    assert.equal(completion.usage.prompt_tokens, rec.usage.input_tokens);
    assert.equal(completion.usage.completion_tokens, rec.usage.output_tokens);
  }
  assert.equal(upstreamRequests(world, key).length, 2);
});

test('streaming chat completion: iterate the stream, and the SDK stream helper', T, async () => {
  const key = await issueKey(world, 'openai', { max_requests: 10 });
  const c = client(key);
  const { text, finish } = await drain(await c.chat.completions.create(ask({ stream: true })));
  assert.equal(text, words(5));
  assert.equal(finish, 'stop');

  const runner = c.chat.completions.stream(ask({ max_tokens: 3 }));
  let deltas = '';
  runner.on('content', (delta) => { deltas += delta; });
  const final = await runner.finalChatCompletion();
  assert.equal(final.choices[0].message.content, words(3));
  assert.equal(final.choices[0].finish_reason, 'length');
  assert.equal(deltas, words(3));

  const recs = upstreamRequests(world, key);
  assert.equal(recs.length, 2);
  assert.ok(recs.every((r) => r.stream && r.outcome === 'complete'));
});

test('usage is counted exactly as the provider reported it (JSON and stream)', T, async () => {
  const key = await issueKey(world, 'openai', { max_requests: 10 });
  const c = client(key);
  const completion = await c.chat.completions.create(ask({ max_tokens: 3 }));
  await drain(await c.chat.completions.create({
    model: MODEL, stream: true,
    messages: [{ role: 'system', content: 'You are terse.' }, { role: 'user', content: 'A longer prompt. '.repeat(20) }],
  }));
  const recs = upstreamRequests(world, key);
  assert.equal(recs.length, 2);
  assert.deepEqual(completion.usage.prompt_tokens, recs[0].usage.input_tokens);
  assert.equal(completion.usage.completion_tokens, 3);
  if (world.direct) return;
  assert.equal(recs[1].json.stream_options?.include_usage, true, 'till asks the provider to include stream usage');
  await assertUsageCounted(key, 2);
});

test('Responses API: JSON and streaming, usage counted', T, async () => {
  const key = await issueKey(world, 'openai', { max_requests: 10 });
  const c = client(key);
  const response = await c.responses.create({ model: MODEL, instructions: 'Be brief.', input: 'Say hello.' });
  assert.equal(response.status, 'completed');
  assert.equal(response.output_text, words(5));

  const stream = await c.responses.create({ model: MODEL, input: 'Say hello again.', stream: true });
  let text = '';
  let completed = null;
  for await (const event of stream) {
    if (event.type === 'response.output_text.delta') text += event.delta;
    if (event.type === 'response.completed') completed = event.response;
  }
  assert.equal(text, words(5));
  assert.equal(completed?.usage.output_tokens, 5);
  const recs = upstreamRequests(world, key);
  assert.deepEqual(recs.map((r) => r.endpoint), ['responses', 'responses']);
  assert.equal(completed.usage.input_tokens, recs[1].usage.input_tokens);
  if (!world.direct) await assertUsageCounted(key, 2);
});

test('embeddings and models pass through', T, async () => {
  const key = await issueKey(world, 'openai', { max_requests: 10 });
  const c = client(key);
  const embedded = await c.embeddings.create({ model: 'text-embedding-3-small', input: ['first text', 'second'] });
  assert.equal(embedded.data.length, 2);
  assert.equal(embedded.data[1].embedding.length, 8);
  assert.ok(embedded.data[1].embedding.every((x) => typeof x === 'number'), 'the SDK decoded base64 embeddings');
  const rec = upstreamRequests(world, key)[0];
  assert.equal(embedded.usage.prompt_tokens, rec.usage.input_tokens);

  const ids = [];
  for await (const model of c.models.list()) ids.push(model.id);
  assert.ok(ids.includes(MODEL), `models: ${ids}`);
  assert.equal(upstreamRequests(world, key).at(-1).endpoint, 'models');
});

test('the provider sees the real credential, never the scoped key; the client never sees the real one', T, async () => {
  const key = await issueKey(world, 'openai', { max_requests: 10 });
  const spy = spyFetch();
  const c = client(key, { fetch: spy.fetch });
  await c.chat.completions.create(ask());
  await drain(await c.chat.completions.create(ask({ stream: true })));

  const recs = upstreamRequests(world, key);
  assert.equal(recs.length, 2, 'both requests reached the provider with the real credential');
  for (const r of recs) {
    assert.equal(r.headers.authorization, `Bearer ${key.upstream}`);
    assert.equal(r.rawHeaders.filter((h) => h.toLowerCase() === 'authorization').length, 1, 'exactly one Authorization header');
  }
  if (!world.direct) {
    assert.match(key.apiKey, /^till_sk_/);
    const upstreamSaw = JSON.stringify(world.mock.requests.map((r) => [r.url, r.rawHeaders, r.body]));
    assert.ok(!upstreamSaw.includes(key.apiKey), 'the scoped key reached the provider');
    assert.ok(!upstreamSaw.includes('till_sk_'), 'part of a scoped key reached the provider');
  }
  const seen = await spy.responses();
  assert.equal(seen.length, 2);
  assert.ok(seen.every((r) => r.status === 200));
  assert.ok(!JSON.stringify(seen).includes(key.upstream), 'the real credential reached the client');
});

test('an exhausted request limit is an SDK APIError (402) carrying till\'s message', T, async () => {
  const key = await issueKey(world, 'openai', { max_requests: 2 });
  const spy = spyFetch();
  const c = client(key, { fetch: spy.fetch });
  await c.chat.completions.create(ask());
  await drain(await c.chat.completions.create(ask({ stream: true })));
  if (world.direct) {
    world.mock.behave((r) => r.headers.authorization === `Bearer ${key.upstream}`,
      { status: 402, body: simulatedLimitError('openai') }, { times: 2 });
  }

  for (const body of [ask(), ask({ stream: true })]) {
    const err = await c.chat.completions.create(body).then(() => null, (e) => e);
    assert.ok(err instanceof OpenAI.APIError, `expected an APIError, got ${err}`);
    assert.equal(err.status, 402);
    assert.match(err.message, /till:/);
    assert.match(err.message, /limit/);
    assert.equal(err.code, 'limit_exhausted');
    assert.equal(typeof err.error.message, 'string');
    assert.equal(typeof err.error.type, 'string');
    assert.ok('param' in err.error, 'OpenAI error shape has param');
  }
  assert.equal(upstreamRequests(world, key).length, world.direct ? 4 : 2, 'refused requests never reach the provider');
  const seen = await spy.responses();
  assert.deepEqual(seen.map((r) => r.status), [200, 200, 402, 402]);
  assert.ok(!JSON.stringify(seen).includes(key.upstream), 'the real credential reached the client');
});
