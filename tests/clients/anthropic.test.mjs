// The official `@anthropic-ai/sdk` through till: a scoped key and till's URL are all an agent
// changes. Both SDK generations run: 1.x sends the key as `Authorization: Bearer` (API version
// 2026-10-21), 0.x as `x-api-key` (2023-06-01); till must take the scoped key from either.
// With CLIENTS_DIRECT=1 the same scenarios run against the mock directly (see lib/world.mjs).
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import Anthropic1 from '@anthropic-ai/sdk';
import Anthropic0 from 'anthropic-sdk-0';
import { MOCK_WORD } from '../mock/mock_provider.mjs';
import {
  startWorld, issueKey, baseURL, upstreamRequests, carriesCredential, spyFetch, keyRecordWhen, sumUsage,
  simulatedLimitError,
} from './lib/world.mjs';

let world;
before(async () => { world = await startWorld(); });
after(async () => { await world?.close(); });

const T = { timeout: 60000 };
const MODEL = 'claude-sonnet-4-5';
const words = (n) => Array.from({ length: n }, () => MOCK_WORD).join(' ');
const ask = (extra = {}) => ({
  model: MODEL, max_tokens: 256, messages: [{ role: 'user', content: 'Say hello five times.' }], ...extra,
});

const SDKS = [
  { name: '@anthropic-ai/sdk 1.x', Anthropic: Anthropic1, sends: 'authorization' },
  { name: '@anthropic-ai/sdk 0.x', Anthropic: Anthropic0, sends: 'x-api-key' },
];

async function drainRaw(stream) {
  const types = [];
  let text = '';
  for await (const event of stream) {
    types.push(event.type);
    if (event.type === 'content_block_delta' && event.delta.type === 'text_delta') text += event.delta.text;
  }
  return { types, text };
}

for (const sdk of SDKS) describe(sdk.name, () => suite(sdk));

// The scenarios, for one SDK generation.
function suite({ Anthropic, sends }) {
  function client(key, { fetch } = {}) {
    return new Anthropic({
      apiKey: key.apiKey, authToken: null, baseURL: baseURL(world, 'anthropic'), maxRetries: 0, timeout: 20000,
      ...(fetch ? { fetch } : {}),
    });
  }

  test('message (JSON)', T, async () => {
    const key = await issueKey(world, 'anthropic', { max_requests: 10 });
    const message = await client(key).messages.create(ask({ system: 'Be brief.' }));
    assert.equal(message.type, 'message');
    assert.equal(message.role, 'assistant');
    assert.equal(message.model, MODEL);
    assert.deepEqual(message.content, [{ type: 'text', text: words(5) }]);
    assert.equal(message.stop_reason, 'end_turn');
    const [rec] = upstreamRequests(world, key);
    assert.ok(rec, 'the request reached the provider with the upstream credential');
    assert.equal(rec.endpoint, 'messages');
    assert.match(rec.path, /\/v1\/messages$/);
    assert.ok(rec.headers['anthropic-version'], 'anthropic-version is forwarded');
    assert.equal(rec.json.system, 'Be brief.');
    assert.equal(message.usage.input_tokens, rec.usage.input_tokens);
    assert.equal(message.usage.output_tokens, rec.usage.output_tokens);
  });

  test('streaming message: raw events, and the SDK MessageStream helper', T, async () => {
    const key = await issueKey(world, 'anthropic', { max_requests: 10 });
    const c = client(key);
    const { types, text } = await drainRaw(await c.messages.create(ask({ stream: true })));
    assert.equal(text, words(5));
    assert.equal(types[0], 'message_start');
    assert.equal(types.at(-1), 'message_stop');
    assert.ok(types.includes('message_delta'));

    const stream = c.messages.stream(ask({ max_tokens: 3 }));
    let streamed = '';
    stream.on('text', (delta) => { streamed += delta; });
    const final = await stream.finalMessage();
    assert.equal(streamed, words(3));
    assert.deepEqual(final.content, [{ type: 'text', text: words(3) }]);
    assert.equal(final.stop_reason, 'max_tokens');
    assert.equal(final.usage.output_tokens, 3);

    const recs = upstreamRequests(world, key);
    assert.equal(recs.length, 2);
    assert.ok(recs.every((r) => r.stream && r.outcome === 'complete'));
    assert.equal(final.usage.input_tokens, recs[1].usage.input_tokens);
  });

  test('usage is counted exactly as the provider reported it (JSON and stream)', T, async () => {
    const key = await issueKey(world, 'anthropic', { max_requests: 10 });
    const c = client(key);
    await c.messages.create(ask({ max_tokens: 2 }));
    await drainRaw(await c.messages.create({
      model: MODEL, max_tokens: 512, stream: true, system: 'You are terse.',
      messages: [{ role: 'user', content: [{ type: 'text', text: 'A longer prompt. '.repeat(20) }] }],
    }));
    const recs = upstreamRequests(world, key);
    assert.equal(recs.length, 2);
    assert.ok(recs.every((r) => r.usage), 'the provider reported usage for every request');
    if (world.direct) return;
    const expected = sumUsage(recs);
    const want = { requests: 2, ...expected, tokens: expected.input_tokens + expected.output_tokens };
    const record = await keyRecordWhen(world, key, (k) => k.used.requests === 2
      && k.used.input_tokens === want.input_tokens && k.used.output_tokens === want.output_tokens);
    const { requests, input_tokens, output_tokens, tokens } = record.used;
    assert.deepEqual({ requests, input_tokens, output_tokens, tokens }, want);
  });

  test('the provider sees the real credential, never the scoped key; the client never sees the real one', T, async () => {
    const key = await issueKey(world, 'anthropic', { max_requests: 10 });
    const spy = spyFetch();
    const c = client(key, { fetch: spy.fetch });
    await c.messages.create(ask());
    await drainRaw(await c.messages.create(ask({ stream: true })));

    const recs = upstreamRequests(world, key);
    assert.equal(recs.length, 2, 'both requests reached the provider with the real credential');
    // Through till the credential goes in x-api-key whichever header the client used; directly, it
    // is where this SDK generation puts it.
    const header = world.direct ? sends : 'x-api-key';
    for (const r of recs) {
      assert.equal(r.headers[header], header === 'authorization' ? `Bearer ${key.upstream}` : key.upstream);
      assert.equal(r.rawHeaders.filter((h) => h.toLowerCase() === header).length, 1, `exactly one ${header} header`);
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
    const key = await issueKey(world, 'anthropic', { max_requests: 2 });
    const spy = spyFetch();
    const c = client(key, { fetch: spy.fetch });
    await c.messages.create(ask());
    await drainRaw(await c.messages.create(ask({ stream: true })));
    if (world.direct) {
      world.mock.behave((r) => carriesCredential(r, key),
        { status: 402, body: simulatedLimitError('anthropic') }, { times: 2 });
    }

    const attempts = [
      () => c.messages.create(ask()),
      () => c.messages.stream(ask()).finalMessage(),
    ];
    for (const attempt of attempts) {
      const err = await attempt().then(() => null, (e) => e);
      assert.ok(err instanceof Anthropic.APIError, `expected an APIError, got ${err}`);
      assert.equal(err.status, 402);
      assert.match(err.message, /till:/);
      assert.match(err.message, /limit/);
      assert.equal(err.error?.type, 'error', 'Anthropic error shape: {"type":"error","error":{…}}');
      assert.equal(typeof err.error.error.type, 'string');
      assert.match(err.error.error.message, /till:/);
    }
    assert.equal(upstreamRequests(world, key).length, world.direct ? 4 : 2, 'refused requests never reach the provider');
    const seen = await spy.responses();
    assert.deepEqual(seen.map((r) => r.status), [200, 200, 402, 402]);
    assert.ok(!JSON.stringify(seen).includes(key.upstream), 'the real credential reached the client');
  });
}
