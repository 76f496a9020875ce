// The mock provider itself: every dialect's JSON and SSE is well formed and carries the documented
// usage, requests are recorded, behaviours do what they say. Run: node --test tests/mock/
import { test, before, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import {
  startMock, tokensForText, MOCK_WORD, DEFAULT_OUTPUT_TOKENS, COHERE_TEMPLATE_TOKENS,
} from './mock_provider.mjs';

let mock;
before(async () => { mock = await startMock(); });
after(async () => { await mock.close(); });
beforeEach(() => { mock.reset(); });

const words = (n) => Array.from({ length: n }, () => MOCK_WORD).join(' ');

async function post(path, body, { headers = {}, signal } = {}) {
  return fetch(mock.url + path, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
    signal,
  });
}

async function postJson(path, body, options) {
  const res = await post(path, body, options);
  return { status: res.status, headers: res.headers, json: await res.json() };
}

// Parses a complete SSE body into [{ event, data }] (data JSON-parsed unless it is [DONE]).
function parseSse(text) {
  return text.split(/\r?\n\r?\n/).filter((block) => block.trim()).map((block) => {
    const event = {};
    for (const line of block.split(/\r?\n/)) {
      const m = line.match(/^(\w+): ?(.*)$/);
      assert.ok(m, `malformed SSE line ${JSON.stringify(line)}`);
      event[m[1]] = m[2];
    }
    if (event.data !== undefined && event.data !== '[DONE]') event.data = JSON.parse(event.data);
    return event;
  });
}

async function postSse(path, body, options) {
  const res = await post(path, body, options);
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type'), /^text\/event-stream/);
  const text = await res.text();
  return { text, events: parseSse(text) };
}

const chatBody = (extra = {}) => ({
  model: 'gpt-4o-mini', messages: [{ role: 'system', content: 'Be brief.' }, { role: 'user', content: 'Say hello, please.' }], ...extra,
});
const chatInput = tokensForText('Be brief.Say hello, please.');

test('usage formula: ceil(prompt bytes / 4), at least 1', () => {
  assert.equal(tokensForText(''), 1);
  assert.equal(tokensForText('abcd'), 1);
  assert.equal(tokensForText('abcde'), 2);
  assert.equal(tokensForText('é'.repeat(4)), 2, 'UTF-8 bytes, not characters');
  assert.equal(chatInput, 7);
});

test('openai chat JSON', async () => {
  const { status, headers, json } = await postJson('/v1/chat/completions', chatBody());
  assert.equal(status, 200);
  assert.equal(headers.get('x-request-id'), 'req_mock_' + mock.requests[0].seq);
  assert.equal(json.object, 'chat.completion');
  assert.equal(json.model, 'gpt-4o-mini');
  assert.deepEqual(json.choices[0].message, { role: 'assistant', content: words(5), refusal: null, annotations: [] });
  assert.equal(json.choices[0].finish_reason, 'stop');
  assert.equal(json.usage.prompt_tokens, chatInput);
  assert.equal(json.usage.completion_tokens, DEFAULT_OUTPUT_TOKENS);
  assert.equal(json.usage.total_tokens, chatInput + DEFAULT_OUTPUT_TOKENS);
  assert.equal(json.usage.prompt_tokens_details.cached_tokens, 0);

  const capped = await postJson('/v1/chat/completions', chatBody({ max_completion_tokens: 2 }));
  assert.equal(capped.json.choices[0].message.content, words(2));
  assert.equal(capped.json.choices[0].finish_reason, 'length');
  assert.equal(capped.json.usage.completion_tokens, 2);
  const legacy = await postJson('/v1/chat/completions', chatBody({ max_tokens: 3 }));
  assert.equal(legacy.json.usage.completion_tokens, 3);
});

test('openai chat SSE: role, content, finish, usage only when asked, [DONE]', async () => {
  const plain = await postSse('/v1/chat/completions', chatBody({ stream: true }));
  const data = plain.events.map((e) => e.data);
  assert.equal(data.at(-1), '[DONE]');
  assert.equal(data[0].choices[0].delta.role, 'assistant');
  assert.equal(data.at(-2).choices[0].finish_reason, 'stop');
  assert.ok(data.slice(0, -1).every((c) => c.object === 'chat.completion.chunk' && c.choices.length === 1 && !('usage' in c)));
  assert.equal(data.slice(0, -1).map((c) => c.choices[0].delta.content ?? '').join(''), words(5));
  assert.equal(mock.requests[0].usage, null, 'no usage reported without include_usage');
  assert.equal(mock.requests[0].outcome, 'complete');

  const withUsage = await postSse('/openai/v1/chat/completions',
    chatBody({ stream: true, stream_options: { include_usage: true }, max_tokens: 4 }));
  const chunks = withUsage.events.map((e) => e.data);
  assert.equal(chunks.at(-1), '[DONE]');
  const last = chunks.at(-2);
  assert.deepEqual(last.choices, []);
  assert.equal(last.usage.prompt_tokens, chatInput);
  assert.equal(last.usage.completion_tokens, 4);
  assert.ok(chunks.slice(0, -2).every((c) => c.usage === null), 'usage: null on the other chunks');
  assert.equal(chunks.at(-3).choices[0].finish_reason, 'length');
  const rec = mock.requests[1];
  assert.deepEqual(rec.usage, { input_tokens: chatInput, output_tokens: 4, cached_tokens: 0, cache_creation_tokens: 0, reasoning_tokens: 0 });
  assert.deepEqual(rec.wireUsage, last.usage);
  assert.equal(rec.responseBody, withUsage.text);
  assert.equal(rec.eventsSent, chunks.length);
});

test('openai responses JSON and SSE', async () => {
  const body = { model: 'gpt-4o-mini', instructions: 'Be brief.', input: [{ role: 'user', content: [{ type: 'input_text', text: 'Hi!' }] }] };
  const input = tokensForText('Be brief.Hi!');
  const { json } = await postJson('/v1/responses', body);
  assert.equal(json.object, 'response');
  assert.equal(json.status, 'completed');
  assert.equal(json.output[0].content[0].text, words(5));
  assert.deepEqual(json.usage, {
    input_tokens: input, input_tokens_details: { cached_tokens: 0 }, output_tokens: 5,
    output_tokens_details: { reasoning_tokens: 0 }, total_tokens: input + 5,
  });

  const { events } = await postSse('/v1/responses', { ...body, stream: true, max_output_tokens: 3 });
  assert.deepEqual(events.map((e) => e.event), [
    'response.created', 'response.in_progress', 'response.output_item.added', 'response.content_part.added',
    'response.output_text.delta', 'response.output_text.delta', 'response.output_text.delta',
    'response.output_text.done', 'response.content_part.done', 'response.output_item.done', 'response.incomplete',
  ]);
  events.forEach((e, i) => { assert.equal(e.data.type, e.event); assert.equal(e.data.sequence_number, i); });
  assert.equal(events.at(-1).data.response.usage.output_tokens, 3);
  assert.equal(events.at(-1).data.response.incomplete_details.reason, 'max_output_tokens');

  const full = await postSse('/v1/responses', { ...body, stream: true });
  assert.equal(full.events.at(-1).event, 'response.completed');
  assert.equal(full.events.at(-1).data.response.usage.input_tokens, input);
  assert.equal(mock.requests[2].usage.output_tokens, 5);
});

test('openai embeddings (float and base64) and models', async () => {
  const { json } = await postJson('/v1/embeddings', { model: 'text-embedding-3-small', input: ['abcdefgh', 'ij'] });
  assert.equal(json.object, 'list');
  assert.equal(json.data.length, 2);
  assert.equal(json.data[1].embedding.length, 8);
  assert.deepEqual(json.usage, { prompt_tokens: 3, total_tokens: 3 });
  const b64 = await postJson('/v1/embeddings', { model: 'm', input: 'x', encoding_format: 'base64' });
  const floats = new Float32Array(Uint8Array.from(Buffer.from(b64.json.data[0].embedding, 'base64')).buffer);
  assert.equal(floats.length, 8);
  assert.ok(Math.abs(floats[0] - 0.5) < 1e-6);
  const ids = await postJson('/v1/embeddings', { model: 'm', input: [1, 2, 3, 4, 5, 6] });
  assert.equal(ids.json.usage.prompt_tokens, 6, 'token ids count one each');

  const openaiModels = await (await fetch(`${mock.url}/v1/models`)).json();
  assert.equal(openaiModels.object, 'list');
  assert.ok(openaiModels.data.every((m) => m.object === 'model' && m.id));
  const anthropicModels = await (await fetch(`${mock.url}/v1/models`, { headers: { 'anthropic-version': '2023-06-01' } })).json();
  assert.ok(anthropicModels.data.every((m) => m.type === 'model'));
  assert.equal(anthropicModels.has_more, false);
  const geminiModels = await (await fetch(`${mock.url}/v1beta/models`)).json();
  assert.match(geminiModels.models[0].name, /^models\//);
});

const anthropicBody = (extra = {}) => ({
  model: 'claude-sonnet-4-5', max_tokens: 1024, system: [{ type: 'text', text: 'Be brief.' }],
  messages: [{ role: 'user', content: [{ type: 'text', text: 'Say hello, please.' }] }], ...extra,
});

test('anthropic messages JSON and SSE', async () => {
  const { json, headers } = await postJson('/v1/messages', anthropicBody(), { headers: { 'anthropic-version': '2023-06-01' } });
  assert.match(headers.get('request-id'), /^req_mock_/);
  assert.equal(json.type, 'message');
  assert.deepEqual(json.content, [{ type: 'text', text: words(5) }]);
  assert.equal(json.stop_reason, 'end_turn');
  assert.deepEqual(json.usage, {
    input_tokens: chatInput, cache_creation_input_tokens: 0, cache_read_input_tokens: 0, output_tokens: 5, service_tier: 'standard',
  });

  const { events } = await postSse('/v1/messages', anthropicBody({ stream: true, max_tokens: 3 }));
  assert.deepEqual(events.map((e) => e.event), [
    'message_start', 'content_block_start', 'ping', 'content_block_delta', 'content_block_delta', 'content_block_delta',
    'content_block_stop', 'message_delta', 'message_stop',
  ]);
  events.forEach((e) => assert.equal(e.data.type, e.event));
  assert.deepEqual(events[0].data.message.usage, {
    input_tokens: chatInput, cache_creation_input_tokens: 0, cache_read_input_tokens: 0, output_tokens: 1, service_tier: 'standard',
  });
  assert.deepEqual(events[0].data.message.content, []);
  assert.equal(events.filter((e) => e.event === 'content_block_delta').map((e) => e.data.delta.text).join(''), words(3));
  assert.deepEqual(events[7].data, { type: 'message_delta', delta: { stop_reason: 'max_tokens', stop_sequence: null }, usage: { output_tokens: 3 } });
  assert.equal(mock.requests[1].usage.output_tokens, 3);

  const count = await postJson('/v1/messages/count_tokens', anthropicBody());
  assert.deepEqual(count.json, { input_tokens: chatInput });
});

test('anthropic cache tokens: input_tokens excludes cache reads and writes', async () => {
  mock.behave({ dialect: 'anthropic' }, { usage: { input_tokens: 100, cached_tokens: 60, cache_creation_tokens: 30 } });
  const { events } = await postSse('/v1/messages', anthropicBody({ stream: true }));
  assert.deepEqual(events[0].data.message.usage, {
    input_tokens: 10, cache_creation_input_tokens: 30, cache_read_input_tokens: 60, output_tokens: 1, service_tier: 'standard',
  });
  assert.deepEqual(mock.requests[0].usage, { input_tokens: 100, output_tokens: 5, cached_tokens: 60, cache_creation_tokens: 30, reasoning_tokens: 0 });
});

const geminiBody = (extra = {}) => ({
  systemInstruction: { parts: [{ text: 'Be brief.' }] },
  contents: [{ role: 'user', parts: [{ text: 'Say hello, please.' }] }], ...extra,
});

test('gemini generateContent and streamGenerateContent (SSE with CRLF, and JSON array)', async () => {
  const { json } = await postJson('/v1beta/models/gemini-2.5-flash:generateContent', geminiBody());
  assert.equal(json.candidates[0].content.parts[0].text, words(5));
  assert.equal(json.candidates[0].finishReason, 'STOP');
  assert.equal(json.usageMetadata.promptTokenCount, chatInput);
  assert.equal(json.usageMetadata.candidatesTokenCount, 5);
  assert.equal(json.usageMetadata.totalTokenCount, chatInput + 5);
  assert.equal(mock.requests[0].model, 'gemini-2.5-flash');
  const capped = await postJson('/v1beta/models/gemini-2.5-flash:generateContent', geminiBody({ generationConfig: { maxOutputTokens: 2 } }));
  assert.equal(capped.json.usageMetadata.candidatesTokenCount, 2);
  assert.equal(capped.json.candidates[0].finishReason, 'MAX_TOKENS');

  mock.behave({ endpoint: 'streamGenerateContent' }, { usage: { reasoning_tokens: 2, cached_tokens: 3 } }, { times: 1 });
  const { text, events } = await postSse('/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse', geminiBody());
  assert.ok(text.includes('\r\n\r\n'), 'Gemini frames end in CRLF CRLF');
  assert.equal(events.length, 3, 'one chunk per visible word (5 output - 2 reasoning)');
  events.forEach((e, i) => {
    assert.equal(e.data.usageMetadata.promptTokenCount, chatInput);
    assert.equal(e.data.usageMetadata.candidatesTokenCount, i + 1, 'cumulative');
    assert.equal(e.data.usageMetadata.thoughtsTokenCount, 2);
    assert.equal(e.data.usageMetadata.cachedContentTokenCount, 3);
  });
  assert.equal(events.at(-1).data.candidates[0].finishReason, 'STOP');
  assert.equal(events.at(-1).data.usageMetadata.totalTokenCount, chatInput + 5);
  assert.ok(events.slice(0, -1).every((e) => !e.data.candidates[0].finishReason));
  assert.equal(mock.requests[2].query.alt, 'sse');
  assert.equal(mock.requests[2].usage.output_tokens, 5);
  assert.equal(mock.requests[2].usage.reasoning_tokens, 2);

  const arrayRes = await post('/v1beta/models/gemini-2.5-flash:streamGenerateContent', geminiBody());
  const array = JSON.parse(await arrayRes.text());
  assert.equal(array.length, 5);
  assert.equal(array.map((c) => c.candidates[0].content.parts[0].text).join(''), words(5));

  const encoded = await postJson('/v1beta/models/gemini-2.5-pro%3AgenerateContent', geminiBody());
  assert.equal(encoded.json.candidates[0].finishReason, 'STOP', 'an encoded colon routes too');
});

test('cohere v2 chat JSON and SSE', async () => {
  const body = { model: 'command-a-03-2025', messages: [{ role: 'user', content: 'Say hello, please.' }] };
  const input = tokensForText('Say hello, please.');
  const { json } = await postJson('/v2/chat', body);
  assert.equal(json.finish_reason, 'COMPLETE');
  assert.deepEqual(json.message, { role: 'assistant', content: [{ type: 'text', text: words(5) }] });
  assert.deepEqual(json.usage, {
    billed_units: { input_tokens: input, output_tokens: 5 },
    tokens: { input_tokens: input + COHERE_TEMPLATE_TOKENS, output_tokens: 5 },
  });

  const { events } = await postSse('/v2/chat', { ...body, stream: true, max_tokens: 2 });
  assert.deepEqual(events.map((e) => e.event), ['message-start', 'content-start', 'content-delta', 'content-delta', 'content-end', 'message-end']);
  events.forEach((e) => assert.equal(e.data.type, e.event));
  assert.equal(events.filter((e) => e.event === 'content-delta').map((e) => e.data.delta.message.content.text).join(''), words(2));
  assert.equal(events.at(-1).data.delta.finish_reason, 'MAX_TOKENS');
  assert.deepEqual(events.at(-1).data.delta.usage.billed_units, { input_tokens: input, output_tokens: 2 });
});

test('records method, path, query, every header, raw body; any path prefix works', async () => {
  const raw = JSON.stringify(chatBody({ stream: false }));
  await post('/openai/v1/chat/completions?api-version=1', raw, { headers: { authorization: 'Bearer sk-real-abc', 'x-extra': 'yes' } });
  await post('/api/v1/chat/completions', chatBody());
  const [a, b] = await mock.waitForRequests(2);
  assert.equal(a.method, 'POST');
  assert.equal(a.path, '/openai/v1/chat/completions');
  assert.equal(a.url, '/openai/v1/chat/completions?api-version=1');
  assert.deepEqual(a.query, { 'api-version': '1' });
  assert.equal(a.headers.authorization, 'Bearer sk-real-abc');
  assert.equal(a.headers['x-extra'], 'yes');
  assert.ok(a.rawHeaders.includes('authorization') || a.rawHeaders.includes('Authorization'));
  assert.equal(a.body, raw);
  assert.equal(a.dialect, 'openai');
  assert.equal(a.endpoint, 'chat.completions');
  assert.equal(a.model, 'gpt-4o-mini');
  assert.equal(a.stream, false);
  assert.equal(a.status, 200);
  assert.equal(a.usage.input_tokens, chatInput);
  assert.equal(b.endpoint, 'chat.completions');

  const missing = await post('/v1/unknown', {});
  assert.equal(missing.status, 404);
  assert.match((await missing.json()).error.message, /no route/);
});

test('behaviour: status with the dialect error shape, custom body, times', async () => {
  mock.behave('/chat/completions', { status: 500 }, { times: 1 });
  const first = await postJson('/v1/chat/completions', chatBody());
  assert.equal(first.status, 500);
  assert.deepEqual(first.json, { error: { message: 'mock: injected 500', type: 'server_error', code: null, param: null } });
  assert.equal((await postJson('/v1/chat/completions', chatBody())).status, 200, 'times: 1 applies once');

  mock.behave({ dialect: 'anthropic' }, { status: 429, headers: { 'retry-after': '3' } });
  const limited = await postJson('/v1/messages', anthropicBody());
  assert.equal(limited.status, 429);
  assert.equal(limited.headers.get('retry-after'), '3');
  assert.deepEqual(limited.json, { type: 'error', error: { type: 'rate_limit_error', message: 'mock: injected 429' } });
  assert.equal((await postJson('/v1/messages', anthropicBody())).status, 429, 'no times: every request');

  mock.behave({ dialect: 'gemini' }, { status: 401 }, { times: 1 });
  const denied = await postJson('/v1beta/models/g:generateContent', geminiBody());
  assert.deepEqual(denied.json, { error: { code: 401, message: 'mock: injected 401', status: 'UNAUTHENTICATED' } });

  mock.behave('/v2/chat', { status: 400, body: { message: 'custom' } }, { times: 1 });
  assert.deepEqual((await postJson('/v2/chat', { messages: [] })).json, { message: 'custom' });

  mock.behave(null, { status: 503 }, { times: 1 });
  const rule = mock.behave((r) => r.model === 'special', { status: 418, body: 'teapot' }, { times: 1 });
  const res = await post('/v1/chat/completions', chatBody({ model: 'special' }));
  assert.equal(res.status, 418, 'the newest matching rule wins');
  assert.equal(await res.text(), 'teapot');
  assert.equal(rule.hits, 1);
  assert.equal((await post('/v1/chat/completions', chatBody())).status, 503);
  assert.equal(mock.requests.at(-1).outcome, 'error');
});

test('behaviour: stall never answers; the record shows the client hanging up', async () => {
  mock.behave('/chat/completions', { stall: true }, { times: 1 });
  const controller = new AbortController();
  const pending = post('/v1/chat/completions', chatBody(), { signal: controller.signal });
  const [rec] = await mock.waitUntil(() => mock.requests[0]?.outcome === 'stalled' && mock.requests);
  assert.equal(rec.status, null);
  controller.abort();
  await assert.rejects(pending, { name: 'AbortError' });
  await mock.waitUntil(() => rec.closedByClient);
  assert.equal(rec.outcome, 'client_closed');
});

test('behaviour: stallAfterHead sends status and headers, then nothing', async () => {
  mock.behave('/v1/messages', { stallAfterHead: true }, { times: 1 });
  const controller = new AbortController();
  const res = await post('/v1/messages', anthropicBody({ stream: true }), { signal: controller.signal });
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type'), /^text\/event-stream/);
  const reader = res.body.getReader();
  const read = reader.read();
  assert.equal(mock.requests[0].outcome, 'stalled');
  controller.abort();
  await assert.rejects(read);
  await mock.waitUntil(() => mock.requests[0].closedByClient);
});

test('behaviour: dropMidStream sends k events then destroys the socket', async () => {
  mock.behave('/chat/completions', { dropMidStream: true, afterEvents: 2 }, { times: 1 });
  const res = await post('/v1/chat/completions', chatBody({ stream: true, stream_options: { include_usage: true } }));
  assert.equal(res.status, 200);
  const received = [];
  const decoder = new TextDecoder();
  await assert.rejects(async () => { for await (const chunk of res.body) received.push(decoder.decode(chunk, { stream: true })); });
  const rec = mock.requests[0];
  await mock.waitUntil(() => rec.outcome === 'dropped');
  assert.equal(rec.eventsSent, 2);
  assert.equal(received.join(''), rec.responseBody);
  assert.equal(parseSse(rec.responseBody).length, 2);
  assert.equal(rec.usage, null, 'usage never reported');
  assert.equal(rec.closedByClient, false);

  mock.behave('/v1/messages', { dropMidStream: true }, { times: 1 });
  const json = await post('/v1/messages', anthropicBody());
  await assert.rejects(json.text(), 'a JSON body cut in half fails to read');
});

test('behaviour: resetConnection fails the request before any byte', async () => {
  mock.behave('/v2/chat', { resetConnection: true }, { times: 1 });
  await assert.rejects(post('/v2/chat', { messages: [] }), TypeError);
  assert.equal(mock.requests[0].outcome, 'reset');
});

test('behaviour: delayMs paces events; chunkBytes splits them without changing the stream', async () => {
  mock.behave('/chat/completions', { delayMs: 20 }, { times: 1 });
  const started = Date.now();
  const paced = await postSse('/v1/chat/completions', chatBody({ stream: true }));
  assert.ok(Date.now() - started >= 15 * paced.events.length, 'about delayMs per event (timers may fire a little early)');

  mock.behave('/chat/completions', { chunkBytes: 3 }, { times: 1 });
  const split = await postSse('/v1/chat/completions', chatBody({ stream: true }));
  assert.equal(split.events.length, paced.events.length);
  assert.equal(split.events.slice(0, -1).map((e) => e.data.choices[0].delta.content ?? '').join(''), words(5));
});

test('behaviour: noUsage, usage override, defaultOutputTokens', async () => {
  mock.behave(null, { noUsage: true }, { times: 4 });
  assert.equal((await postJson('/v1/chat/completions', chatBody())).json.usage, undefined);
  const sse = await postSse('/v1/chat/completions', chatBody({ stream: true, stream_options: { include_usage: true } }));
  assert.ok(sse.events.every((e) => e.data === '[DONE]' || e.data.choices.length === 1), 'no usage chunk');
  const anth = await postSse('/v1/messages', anthropicBody({ stream: true }));
  assert.ok(anth.events.every((e) => !e.data.usage && !e.data.message?.usage));
  const gem = await postJson('/v1beta/models/g:generateContent', geminiBody());
  assert.equal(gem.json.usageMetadata, undefined);
  assert.ok(mock.requests.every((r) => r.usage === null));

  mock.behave(null, { usage: { input_tokens: 1000, output_tokens: 7, reasoning_tokens: 2, cached_tokens: 400 } }, { times: 1 });
  const over = await postJson('/v1/chat/completions', chatBody({ max_tokens: 3 }));
  assert.equal(over.json.usage.prompt_tokens, 1000);
  assert.equal(over.json.usage.completion_tokens, 7, 'override is not capped: tests can simulate overshoot');
  assert.equal(over.json.usage.prompt_tokens_details.cached_tokens, 400);
  assert.equal(over.json.usage.completion_tokens_details.reasoning_tokens, 2);
  assert.equal(over.json.choices[0].message.content, words(5), 'visible words = output - reasoning');

  mock.behave(null, { defaultOutputTokens: 50 }, { times: 2 });
  assert.equal((await postJson('/v1/chat/completions', chatBody())).json.usage.completion_tokens, 50);
  assert.equal((await postJson('/v1/chat/completions', chatBody({ max_tokens: 9 }))).json.usage.completion_tokens, 9);
});

test('HTTP control surface: behave, requests, reset', async () => {
  const control = (method, path, body) => fetch(mock.url + path, {
    method, headers: { 'content-type': 'application/json' }, body: body && JSON.stringify(body),
  });
  assert.equal((await control('POST', '/__mock/behave', { match: { regex: 'completions$' }, behaviour: { status: 502 }, times: 1 })).status, 200);
  assert.equal((await post('/v1/chat/completions', chatBody())).status, 502);
  assert.equal((await post('/v1/chat/completions', chatBody())).status, 200);
  const listed = await (await control('GET', '/__mock/requests')).json();
  assert.deepEqual(listed.map((r) => r.status), [502, 200], 'control calls are not recorded');
  assert.equal(listed[1].usage.input_tokens, chatInput);
  assert.equal((await control('POST', '/__mock/behave', { behaviour: null })).status, 400);
  assert.equal((await control('POST', '/__mock/reset')).status, 200);
  assert.deepEqual(await (await control('GET', '/__mock/requests')).json(), []);
});

test('CLI mode prints its URL and serves', async () => {
  const script = fileURLToPath(new URL('./mock_provider.mjs', import.meta.url));
  const child = spawn(process.execPath, [script, '--port', '0'], { stdio: ['ignore', 'pipe', 'inherit'] });
  try {
    let out = '';
    child.stdout.setEncoding('utf8');
    const url = await new Promise((resolve, reject) => {
      child.stdout.on('data', (d) => { out += d; if (out.includes('\n')) resolve(out.trim()); });
      child.on('exit', (code) => reject(new Error(`mock CLI exited ${code}`)));
    });
    assert.match(url, /^http:\/\/127\.0\.0\.1:\d+$/);
    const res = await fetch(`${url}/v1/chat/completions`, { method: 'POST', body: JSON.stringify(chatBody()) });
    assert.equal((await res.json()).choices[0].message.content, words(5));
  } finally {
    child.kill('SIGTERM');
  }
});
