// A mock AI provider for till's tests: one HTTP server that speaks the OpenAI-compatible,
// Anthropic, Gemini and Cohere dialects (JSON and server-sent events), reports deterministic
// usage, records every request, and injects faults on demand. No dependencies.
//
// In-process (the main way):
//   import { startMock } from '../mock/mock_provider.mjs';
//   const mock = await startMock();            // listens on 127.0.0.1, port 0
//   mock.url                                   // 'http://127.0.0.1:PORT'
//   mock.requests                              // every request, in arrival order (live array)
//   mock.behave(matcher, behaviour, {times})   // fault/usage injection for matching requests
//   mock.reset(); await mock.close();
// Over HTTP (for manual runs): GET /__mock/requests, POST /__mock/behave, POST /__mock/reset.
// CLI: `node tests/mock/mock_provider.mjs --port 0` prints the URL on stdout.
//
// Routes match on the path *suffix*, so any prefix works (/v1/chat/completions,
// /openai/v1/chat/completions, /api/v1/chat/completions, …):
//   POST …/chat/completions   OpenAI chat (JSON; SSE when "stream": true)
//   POST …/responses          OpenAI Responses (JSON; SSE when "stream": true)
//   POST …/embeddings         OpenAI embeddings (float or base64)
//   GET  …/models             model list (Anthropic shape if `anthropic-version` is sent,
//                             Gemini shape under /v1beta/, otherwise OpenAI shape)
//   POST …/messages           Anthropic Messages (JSON; SSE when "stream": true)
//   POST …/messages/count_tokens
//   POST …/models/{model}:generateContent | :streamGenerateContent[?alt=sse] | :countTokens
//   POST …/v2/chat            Cohere v2 chat (JSON; SSE when "stream": true)
//
// Usage is a pure function of the request (see planUsage and docs/testing.md):
//   input  = max(1, ceil(UTF-8 bytes of the prompt text / 4))
//   output = min(the dialect's max-output field if set, DEFAULT_OUTPUT_TOKENS (5))
// and the answer is MOCK_WORD repeated once per visible output token.
import http from 'node:http';
import { EventEmitter } from 'node:events';
import { pathToFileURL } from 'node:url';

export const MOCK_WORD = 'hello';
export const DEFAULT_OUTPUT_TOKENS = 5;
// Cohere reports billed tokens and, separately, tokens including its prompt template; the mock
// makes usage.tokens.input_tokens exceed usage.billed_units.input_tokens by this much.
export const COHERE_TEMPLATE_TOKENS = 7;

const EMBEDDING_DIMENSIONS = 8;

// ---------------------------------------------------------------------------------------------
// Deterministic usage

// The text of a prompt value: strings as they are; arrays concatenated; objects contribute their
// `text`, `content` and `parts` members (recursively). Roles, types and other fields do not count.
export function textOf(value) {
  if (typeof value === 'string') return value;
  if (Array.isArray(value)) return value.map(textOf).join('');
  if (value && typeof value === 'object') return textOf(value.text) + textOf(value.content) + textOf(value.parts);
  return '';
}

export function tokensForText(text) {
  return Math.max(1, Math.ceil(Buffer.byteLength(text, 'utf8') / 4));
}

// Which fields of a request body are the prompt, per endpoint.
function promptText(endpoint, body) {
  switch (endpoint) {
    case 'chat.completions': return textOf(body.messages);
    case 'responses': return textOf(body.instructions) + textOf(body.input);
    case 'messages':
    case 'messages.count_tokens': return textOf(body.system) + textOf(body.messages);
    case 'generateContent':
    case 'streamGenerateContent':
    case 'countTokens':
      return textOf(body.systemInstruction ?? body.system_instruction) + textOf(body.contents);
    case 'chat': return textOf(body.messages);
    default: return '';
  }
}

// Input tokens of a request: the formula above; for embeddings, token-id arrays count one token
// per id and strings follow the formula.
export function inputTokens(endpoint, body) {
  if (endpoint === 'embeddings') {
    const input = body.input;
    if (Array.isArray(input) && input.length && typeof input[0] === 'number') return input.length;
    if (Array.isArray(input) && input.length && Array.isArray(input[0])) {
      return input.reduce((n, ids) => n + ids.length, 0);
    }
    return tokensForText(textOf(input));
  }
  return tokensForText(promptText(endpoint, body));
}

// The request's cap on output tokens, in each dialect's own field; undefined if none.
export function outputCap(endpoint, body) {
  const gen = body.generationConfig ?? body.generation_config ?? {};
  const value = {
    'chat.completions': body.max_completion_tokens ?? body.max_tokens,
    responses: body.max_output_tokens,
    messages: body.max_tokens,
    generateContent: gen.maxOutputTokens ?? gen.max_output_tokens,
    streamGenerateContent: gen.maxOutputTokens ?? gen.max_output_tokens,
    chat: body.max_tokens,
  }[endpoint];
  return Number.isInteger(value) && value >= 0 ? value : undefined;
}

// The normalized usage the mock will report for a request, before dialect encoding:
//   input_tokens          the whole prompt, cached or not
//   cached_tokens         of those, read from cache (behaviour; default 0)
//   cache_creation_tokens of those, written to cache (Anthropic only; behaviour; default 0)
//   output_tokens         everything generated, reasoning included
//   reasoning_tokens      of those, reasoning (behaviour; default 0)
// `behaviour.defaultOutputTokens` replaces DEFAULT_OUTPUT_TOKENS (still capped by the request);
// `behaviour.usage` overrides any field outright (uncapped, so tests can simulate overshoot).
export function planUsage(endpoint, body, behaviour = {}) {
  const input = inputTokens(endpoint, body);
  if (endpoint === 'embeddings' || endpoint === 'messages.count_tokens' || endpoint === 'countTokens') {
    return { input_tokens: input, output_tokens: 0, cached_tokens: 0, cache_creation_tokens: 0, reasoning_tokens: 0, capped: false };
  }
  const wanted = behaviour.defaultOutputTokens ?? DEFAULT_OUTPUT_TOKENS;
  const cap = outputCap(endpoint, body);
  const output = cap === undefined ? wanted : Math.min(cap, wanted);
  return {
    input_tokens: input,
    output_tokens: output,
    cached_tokens: 0,
    cache_creation_tokens: 0,
    reasoning_tokens: 0,
    ...(behaviour.usage ?? {}),
    capped: cap !== undefined && cap < wanted,
  };
}

function visibleWords(u) {
  return Math.max(0, u.output_tokens - u.reasoning_tokens);
}

function answerPieces(u) {
  return Array.from({ length: visibleWords(u) }, (_, i) => (i === 0 ? MOCK_WORD : ` ${MOCK_WORD}`));
}

// Dialect encodings of a normalized usage.
const wire = {
  openaiChat: (u) => ({
    prompt_tokens: u.input_tokens,
    completion_tokens: u.output_tokens,
    total_tokens: u.input_tokens + u.output_tokens,
    prompt_tokens_details: { cached_tokens: u.cached_tokens, audio_tokens: 0 },
    completion_tokens_details: {
      reasoning_tokens: u.reasoning_tokens, audio_tokens: 0,
      accepted_prediction_tokens: 0, rejected_prediction_tokens: 0,
    },
  }),
  openaiResponses: (u) => ({
    input_tokens: u.input_tokens,
    input_tokens_details: { cached_tokens: u.cached_tokens },
    output_tokens: u.output_tokens,
    output_tokens_details: { reasoning_tokens: u.reasoning_tokens },
    total_tokens: u.input_tokens + u.output_tokens,
  }),
  // Anthropic's input_tokens excludes cache reads and writes; the three add up to the prompt.
  anthropic: (u, outputTokens = u.output_tokens) => ({
    input_tokens: Math.max(0, u.input_tokens - u.cached_tokens - u.cache_creation_tokens),
    cache_creation_input_tokens: u.cache_creation_tokens,
    cache_read_input_tokens: u.cached_tokens,
    output_tokens: outputTokens,
    service_tier: 'standard',
  }),
  // Gemini's candidatesTokenCount excludes thoughts; promptTokenCount includes cached content.
  gemini: (u, visibleSoFar = visibleWords(u)) => ({
    promptTokenCount: u.input_tokens,
    candidatesTokenCount: visibleSoFar,
    totalTokenCount: u.input_tokens + visibleSoFar + u.reasoning_tokens,
    ...(u.cached_tokens ? { cachedContentTokenCount: u.cached_tokens } : {}),
    ...(u.reasoning_tokens ? { thoughtsTokenCount: u.reasoning_tokens } : {}),
    promptTokensDetails: [{ modality: 'TEXT', tokenCount: u.input_tokens }],
  }),
  cohere: (u) => ({
    billed_units: { input_tokens: u.input_tokens, output_tokens: u.output_tokens },
    tokens: { input_tokens: u.input_tokens + COHERE_TEMPLATE_TOKENS, output_tokens: u.output_tokens },
    ...(u.cached_tokens ? { cached_tokens: u.cached_tokens } : {}),
  }),
};

function publicUsage(u) {
  const { capped, ...rest } = u;
  return rest;
}

// ---------------------------------------------------------------------------------------------
// Routing

// Classifies a request by method and path suffix.
export function route(method, path, headers = {}) {
  let m;
  if (method === 'GET' && path.endsWith('/models')) {
    if (headers['anthropic-version']) return { dialect: 'anthropic', endpoint: 'models' };
    if (path.includes('/v1beta/') || path.includes('/v1alpha/')) return { dialect: 'gemini', endpoint: 'models' };
    return { dialect: 'openai', endpoint: 'models' };
  }
  if (method !== 'POST') return { dialect: null, endpoint: null };
  if (path.endsWith('/chat/completions')) return { dialect: 'openai', endpoint: 'chat.completions' };
  if (path.endsWith('/responses')) return { dialect: 'openai', endpoint: 'responses' };
  if (path.endsWith('/embeddings')) return { dialect: 'openai', endpoint: 'embeddings' };
  if (path.endsWith('/messages/count_tokens')) return { dialect: 'anthropic', endpoint: 'messages.count_tokens' };
  if (path.endsWith('/messages')) return { dialect: 'anthropic', endpoint: 'messages' };
  if ((m = path.match(/\/models\/([^/:]+):(generateContent|streamGenerateContent|countTokens)$/))) {
    return { dialect: 'gemini', endpoint: m[2], model: m[1] };
  }
  if (path.endsWith('/v2/chat')) return { dialect: 'cohere', endpoint: 'chat' };
  return { dialect: null, endpoint: null };
}

// Error bodies in each dialect's shape.
const STATUS_NAMES = {
  400: ['invalid_request_error', 'INVALID_ARGUMENT'], 401: ['authentication_error', 'UNAUTHENTICATED'],
  402: ['billing_error', 'FAILED_PRECONDITION'], 403: ['permission_error', 'PERMISSION_DENIED'],
  404: ['not_found_error', 'NOT_FOUND'], 413: ['request_too_large', 'INVALID_ARGUMENT'],
  429: ['rate_limit_error', 'RESOURCE_EXHAUSTED'], 500: ['api_error', 'INTERNAL'],
  503: ['overloaded_error', 'UNAVAILABLE'], 529: ['overloaded_error', 'UNAVAILABLE'],
};

export function errorBody(dialect, status, message = `mock: injected ${status}`) {
  const [anthropicType, googleStatus] = STATUS_NAMES[status] ?? (status >= 500 ? STATUS_NAMES[500] : STATUS_NAMES[400]);
  switch (dialect) {
    case 'anthropic': return { type: 'error', error: { type: anthropicType, message } };
    case 'gemini': return { error: { code: status, message, status: googleStatus } };
    case 'cohere': return { message };
    default: {
      const type = status === 429 ? 'rate_limit_error' : status === 401 ? 'invalid_request_error'
        : status >= 500 ? 'server_error' : 'invalid_request_error';
      const code = status === 401 ? 'invalid_api_key' : status === 429 ? 'rate_limit_exceeded' : null;
      return { error: { message, type, code, param: null } };
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Response builders. Each returns { json } for a plain response or { events, eol } for a stream;
// an event is { event?, data, reportsUsage? } where data is an object or a literal string.

function now() {
  return Math.floor(Date.now() / 1000);
}

function openaiChat(ctx) {
  const { body, u, id, model } = ctx;
  const text = answerPieces(u).join('');
  const finish = u.capped ? 'length' : 'stop';
  const created = now();
  if (!ctx.stream) {
    return {
      json: {
        id, object: 'chat.completion', created, model, system_fingerprint: 'fp_mock',
        choices: [{
          index: 0, message: { role: 'assistant', content: text, refusal: null, annotations: [] },
          logprobs: null, finish_reason: finish,
        }],
        ...(ctx.noUsage ? {} : { usage: wire.openaiChat(u) }),
        service_tier: 'default',
      },
    };
  }
  const includeUsage = body.stream_options?.include_usage === true;
  const chunk = (choices, extra = {}) => ({
    id, object: 'chat.completion.chunk', created, model, system_fingerprint: 'fp_mock',
    choices, ...(includeUsage ? { usage: null } : {}), ...extra,
  });
  const events = [
    { data: chunk([{ index: 0, delta: { role: 'assistant', content: '', refusal: null }, logprobs: null, finish_reason: null }]) },
    ...answerPieces(u).map((piece) => ({
      data: chunk([{ index: 0, delta: { content: piece }, logprobs: null, finish_reason: null }]),
    })),
    { data: chunk([{ index: 0, delta: {}, logprobs: null, finish_reason: finish }]) },
  ];
  if (includeUsage && !ctx.noUsage) {
    events.push({ data: chunk([], { usage: wire.openaiChat(u) }), reportsUsage: true });
  }
  events.push({ data: '[DONE]' });
  return { events };
}

function openaiResponses(ctx) {
  const { body, u, id, model, seq } = ctx;
  const text = answerPieces(u).join('');
  const msgId = `msg_mock_${seq}`;
  const base = {
    id, object: 'response', created_at: now(), status: 'in_progress', error: null,
    incomplete_details: null, instructions: body.instructions ?? null,
    max_output_tokens: body.max_output_tokens ?? null, model, output: [],
    parallel_tool_calls: true, previous_response_id: body.previous_response_id ?? null,
    reasoning: { effort: null, summary: null }, store: body.store ?? true,
    temperature: body.temperature ?? 1, text: { format: { type: 'text' } }, tool_choice: 'auto',
    tools: [], top_p: body.top_p ?? 1, truncation: 'disabled', usage: null, user: null,
    metadata: body.metadata ?? {},
  };
  const part = { type: 'output_text', text, annotations: [], logprobs: [] };
  const item = { id: msgId, type: 'message', status: 'completed', role: 'assistant', content: [part] };
  const final = {
    ...base,
    status: u.capped ? 'incomplete' : 'completed',
    incomplete_details: u.capped ? { reason: 'max_output_tokens' } : null,
    output: [item],
    usage: ctx.noUsage ? null : wire.openaiResponses(u),
  };
  if (!ctx.stream) return { json: final };
  let n = 0;
  const ev = (type, fields, extra = {}) => ({ event: type, data: { type, sequence_number: n++, ...fields }, ...extra });
  const where = { item_id: msgId, output_index: 0, content_index: 0 };
  return {
    events: [
      ev('response.created', { response: base }),
      ev('response.in_progress', { response: base }),
      ev('response.output_item.added', {
        output_index: 0, item: { id: msgId, type: 'message', status: 'in_progress', role: 'assistant', content: [] },
      }),
      ev('response.content_part.added', { ...where, part: { type: 'output_text', text: '', annotations: [], logprobs: [] } }),
      ...answerPieces(u).map((delta) => ev('response.output_text.delta', { ...where, delta, logprobs: [] })),
      ev('response.output_text.done', { ...where, text, logprobs: [] }),
      ev('response.content_part.done', { ...where, part }),
      ev('response.output_item.done', { output_index: 0, item }),
      ev(u.capped ? 'response.incomplete' : 'response.completed', { response: final }, { reportsUsage: !ctx.noUsage }),
    ],
  };
}

function openaiEmbeddings(ctx) {
  const { body, u, model } = ctx;
  const inputs = Array.isArray(body.input) && body.input.length && typeof body.input[0] !== 'number'
    ? body.input : [body.input];
  const data = inputs.map((_, index) => {
    const vector = Array.from({ length: body.dimensions ?? EMBEDDING_DIMENSIONS }, (_, k) => (index + 1) / (k + 2));
    const embedding = body.encoding_format === 'base64'
      ? Buffer.from(new Float32Array(vector).buffer).toString('base64') : vector;
    return { object: 'embedding', index, embedding };
  });
  return {
    json: {
      object: 'list', data, model,
      ...(ctx.noUsage ? {} : { usage: { prompt_tokens: u.input_tokens, total_tokens: u.input_tokens } }),
    },
  };
}

function models(ctx) {
  const created = 1700000000;
  if (ctx.dialect === 'anthropic') {
    const data = ['claude-sonnet-4-5', 'claude-haiku-4-5'].map((id) => ({
      type: 'model', id, display_name: id, created_at: '2025-01-01T00:00:00Z',
    }));
    return { json: { data, has_more: false, first_id: data[0].id, last_id: data.at(-1).id } };
  }
  if (ctx.dialect === 'gemini') {
    return {
      json: {
        models: ['gemini-2.5-flash', 'gemini-2.5-pro'].map((id) => ({
          name: `models/${id}`, displayName: id, inputTokenLimit: 1048576, outputTokenLimit: 65536,
          supportedGenerationMethods: ['generateContent', 'countTokens'],
        })),
      },
    };
  }
  return {
    json: {
      object: 'list',
      data: ['gpt-4o-mini', 'gpt-4o', 'text-embedding-3-small'].map((id) => ({ id, object: 'model', created, owned_by: 'mock' })),
    },
  };
}

function anthropicMessages(ctx) {
  const { u, id, model } = ctx;
  const stop = u.capped ? 'max_tokens' : 'end_turn';
  const text = answerPieces(u).join('');
  if (!ctx.stream) {
    return {
      json: {
        id, type: 'message', role: 'assistant', model, content: [{ type: 'text', text }],
        stop_reason: stop, stop_sequence: null,
        ...(ctx.noUsage ? {} : { usage: wire.anthropic(u) }),
      },
    };
  }
  const ev = (type, fields = {}, extra = {}) => ({ event: type, data: { type, ...fields }, ...extra });
  return {
    events: [
      ev('message_start', {
        message: {
          id, type: 'message', role: 'assistant', model, content: [], stop_reason: null, stop_sequence: null,
          ...(ctx.noUsage ? {} : { usage: wire.anthropic(u, 1) }),
        },
      }),
      ev('content_block_start', { index: 0, content_block: { type: 'text', text: '' } }),
      ev('ping'),
      ...answerPieces(u).map((piece) => ev('content_block_delta', { index: 0, delta: { type: 'text_delta', text: piece } })),
      ev('content_block_stop', { index: 0 }),
      ev('message_delta', {
        delta: { stop_reason: stop, stop_sequence: null },
        ...(ctx.noUsage ? {} : { usage: { output_tokens: u.output_tokens } }),
      }, { reportsUsage: !ctx.noUsage }),
      ev('message_stop'),
    ],
  };
}

function anthropicCountTokens(ctx) {
  return { json: { input_tokens: ctx.u.input_tokens } };
}

function gemini(ctx) {
  const { u, model, seq } = ctx;
  const finish = u.capped ? 'MAX_TOKENS' : 'STOP';
  const responseId = `mock-gemini-${seq}`;
  const modelVersion = model;
  if (ctx.endpoint === 'countTokens') return { json: { totalTokens: u.input_tokens } };
  if (ctx.endpoint === 'generateContent') {
    return {
      json: {
        candidates: [{
          content: { parts: [{ text: answerPieces(u).join('') }], role: 'model' }, finishReason: finish, index: 0,
        }],
        ...(ctx.noUsage ? {} : { usageMetadata: wire.gemini(u) }),
        modelVersion, responseId,
      },
    };
  }
  // streamGenerateContent: one chunk per word, each with cumulative usage; the last one carries
  // finishReason. With no words, a single empty chunk.
  const pieces = answerPieces(u);
  if (!pieces.length) pieces.push('');
  const events = pieces.map((text, i) => {
    const last = i === pieces.length - 1;
    return {
      data: {
        candidates: [{
          content: { parts: [{ text }], role: 'model' }, index: 0, ...(last ? { finishReason: finish } : {}),
        }],
        ...(ctx.noUsage ? {} : { usageMetadata: wire.gemini(u, Math.min(i + 1, visibleWords(u))) }),
        modelVersion, responseId,
      },
      reportsUsage: last && !ctx.noUsage,
    };
  });
  if (ctx.query.alt === 'sse') return { events, eol: '\r\n' };
  return { events, jsonArray: true };
}

function cohereChat(ctx) {
  const { u, id } = ctx;
  const finish = u.capped ? 'MAX_TOKENS' : 'COMPLETE';
  if (!ctx.stream) {
    return {
      json: {
        id, finish_reason: finish,
        message: { role: 'assistant', content: [{ type: 'text', text: answerPieces(u).join('') }] },
        ...(ctx.noUsage ? {} : { usage: wire.cohere(u) }),
      },
    };
  }
  const ev = (type, fields = {}, extra = {}) => ({ event: type, data: { type, ...fields }, ...extra });
  return {
    events: [
      ev('message-start', { id, delta: { message: { role: 'assistant', content: [], tool_plan: '', tool_calls: [], citations: [] } } }),
      ev('content-start', { index: 0, delta: { message: { content: { type: 'text', text: '' } } } }),
      ...answerPieces(u).map((text) => ev('content-delta', { index: 0, delta: { message: { content: { text } } } })),
      ev('content-end', { index: 0 }),
      ev('message-end', {
        delta: { finish_reason: finish, ...(ctx.noUsage ? {} : { usage: wire.cohere(u) }) },
      }, { reportsUsage: !ctx.noUsage }),
    ],
  };
}

const BUILDERS = {
  'openai chat.completions': openaiChat,
  'openai responses': openaiResponses,
  'openai embeddings': openaiEmbeddings,
  'openai models': models,
  'anthropic models': models,
  'gemini models': models,
  'anthropic messages': anthropicMessages,
  'anthropic messages.count_tokens': anthropicCountTokens,
  'gemini generateContent': gemini,
  'gemini streamGenerateContent': gemini,
  'gemini countTokens': gemini,
  'cohere chat': cohereChat,
};

const ID_PREFIX = {
  'chat.completions': 'chatcmpl-mock-', responses: 'resp_mock_', messages: 'msg_mock_', chat: 'cohere-mock-',
};

// Headers each provider sends that clients or proxies may look at.
function dialectHeaders(dialect, seq) {
  switch (dialect) {
    case 'openai': return { 'x-request-id': `req_mock_${seq}`, 'openai-processing-ms': '1' };
    case 'anthropic': return { 'request-id': `req_mock_${seq}` };
    case 'cohere': return { 'x-debug-trace-id': `mock-${seq}` };
    default: return {};
  }
}

// ---------------------------------------------------------------------------------------------
// Behaviours and matchers

// A matcher selects requests: null/undefined/'*' = all; a string = path contains it; a RegExp =
// tested against the path; a function = called with the request record; an object = every given
// field equals the record's (method, path [substring], dialect, endpoint, model, stream), or
// { regex: '…' } for a path pattern (the JSON form of a RegExp, for the HTTP control surface).
export function compileMatcher(matcher) {
  if (matcher === null || matcher === undefined || matcher === '*') return () => true;
  if (typeof matcher === 'string') return (r) => r.path.includes(matcher);
  if (matcher instanceof RegExp) return (r) => matcher.test(r.path);
  if (typeof matcher === 'function') return matcher;
  if (typeof matcher === 'object') {
    if (typeof matcher.regex === 'string') {
      const re = new RegExp(matcher.regex);
      return (r) => re.test(r.path);
    }
    return (r) => Object.entries(matcher).every(([k, v]) => (k === 'path' ? r.path.includes(v) : r[k] === v));
  }
  throw new TypeError(`mock: bad matcher ${String(matcher)}`);
}

function delay(ms, res) {
  if (!ms) return Promise.resolve();
  return new Promise((resolve) => {
    const t = setTimeout(done, ms);
    function done() { clearTimeout(t); res.off('close', done); resolve(); }
    res.once('close', done);
  });
}

// ---------------------------------------------------------------------------------------------
// The server

class MockProvider extends EventEmitter {
  constructor() {
    super();
    this.setMaxListeners(0);
    this.server = http.createServer((req, res) => this.#handle(req, res));
    this.url = null;
    this.requests = [];
    this.rules = [];
    this.seq = 0;
  }

  async listen(port = 0, host = '127.0.0.1') {
    await new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(port, host, () => { this.server.off('error', reject); resolve(); });
    });
    const addr = this.server.address();
    this.url = `http://${addr.family === 'IPv6' ? `[${addr.address}]` : addr.address}:${addr.port}`;
    return this;
  }

  // Applies `behaviour` to the next `times` requests that match (default: all of them). The most
  // recently added rule that still has uses wins; one rule applies per request. Returns the rule,
  // whose `hits` counts the requests it was applied to.
  //
  // Behaviours (fields combine where that makes sense):
  //   { status, body?, headers? }     answer with this status; body defaults to the dialect's error shape
  //   { stall: true }                 read the request, never answer (until the client or close() hangs up)
  //   { stallAfterHead: true }        send status and headers, then nothing
  //   { resetConnection: true }       destroy the connection before any response byte
  //   { dropMidStream: true, afterEvents: k }  send k events (or, for JSON, half the body), then destroy
  //   { delayMs }                     wait this long before each event (streams) or before answering (JSON)
  //   { chunkBytes }                  write the stream in pieces of at most this many bytes
  //   { noUsage: true }               leave usage out of the response
  //   { usage: {...} }                override normalized usage fields (see planUsage)
  //   { defaultOutputTokens }         output tokens when the request sets no lower cap
  //   { headers }                     extra response headers (any response)
  behave(matcher, behaviour, { times = Infinity } = {}) {
    const rule = { match: compileMatcher(matcher), behaviour, remaining: times, hits: 0 };
    this.rules.push(rule);
    return rule;
  }

  // Forgets recorded requests and behaviours (the requests array is emptied in place).
  reset() {
    this.requests.length = 0;
    this.rules.length = 0;
  }

  // Resolves with mock.requests once at least `count` requests have arrived.
  waitForRequests(count, options) {
    return this.waitUntil(() => this.requests.length >= count && this.requests, {
      what: `${count} mock requests (have ${this.requests.length})`, ...options,
    });
  }

  // Resolves with predicate()'s value once truthy; re-checked whenever a request arrives or a
  // request's record changes (response sent, client closed, …). Rejects after timeoutMs.
  waitUntil(predicate, { timeoutMs = 10000, what = 'mock condition' } = {}) {
    return new Promise((resolve, reject) => {
      const check = () => {
        let value;
        try { value = predicate(); } catch (e) { finish(); reject(e); return; }
        if (value) { finish(); resolve(value); }
      };
      const timer = setTimeout(() => { finish(); reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)); }, timeoutMs);
      const finish = () => { clearTimeout(timer); this.off('change', check); };
      this.on('change', check);
      check();
    });
  }

  async close() {
    this.closing = true;
    this.server.closeAllConnections();
    await new Promise((resolve) => this.server.close(() => resolve()));
  }

  #changed(record) {
    this.emit('change', record);
  }

  async #handle(req, res) {
    res.on('error', () => {});
    try {
      await this.#serve(req, res);
    } catch (e) {
      // A bug in the mock, not a behaviour: make it loud in the test that hit it.
      process.stderr.write(`mock provider: ${e.stack ?? e}\n`);
      if (!res.headersSent) {
        res.writeHead(599, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ error: { message: `mock internal error: ${e.message}`, type: 'mock_error' } }));
      } else {
        res.destroy();
      }
    }
  }

  async #serve(req, res) {
    const chunks = [];
    try {
      for await (const chunk of req) chunks.push(chunk);
    } catch {
      return;
    }
    const raw = Buffer.concat(chunks).toString('utf8');
    const url = new URL(req.url, 'http://mock.invalid');
    let path = url.pathname;
    try { path = decodeURIComponent(path); } catch { /* keep it encoded */ }

    if (path.startsWith('/__mock/')) return this.#control(req, res, path, raw);

    let json = null;
    try { json = raw ? JSON.parse(raw) : null; } catch { /* not JSON */ }
    const r = route(req.method, path, req.headers);
    const seq = ++this.seq;
    const body = json && typeof json === 'object' && !Array.isArray(json) ? json : {};
    const record = {
      seq, time: new Date().toISOString(), method: req.method, url: req.url, path,
      query: Object.fromEntries(url.searchParams), search: url.search,
      headers: { ...req.headers }, rawHeaders: [...req.rawHeaders], body: raw, json,
      dialect: r.dialect, endpoint: r.endpoint,
      model: r.model ?? (typeof body.model === 'string' ? body.model : null),
      stream: r.endpoint === 'streamGenerateContent' || body.stream === true,
      behaviour: null, status: null, responseHeaders: null, responseBody: '', eventsSent: 0,
      plannedUsage: null, usage: null, wireUsage: null,
      outcome: 'pending', closedByClient: false,
    };
    const rule = [...this.rules].reverse().find((x) => x.remaining > 0 && x.match(record));
    if (rule) { rule.remaining--; rule.hits++; }
    const behaviour = rule?.behaviour ?? {};
    record.behaviour = rule ? behaviour : null;

    let finishedByUs = false;
    res.on('close', () => {
      if (!res.writableFinished && !finishedByUs && !this.closing) {
        record.closedByClient = true;
        if (record.outcome === 'pending' || record.outcome === 'stalled' || record.outcome === 'streaming') {
          record.outcome = 'client_closed';
        }
      }
      this.#changed(record);
    });
    this.requests.push(record);
    this.#changed(record);

    const extraHeaders = { ...dialectHeaders(r.dialect, seq), ...(behaviour.headers ?? {}) };
    const head = (status, headers) => {
      record.status = status;
      record.responseHeaders = { ...headers, ...extraHeaders };
      res.writeHead(status, record.responseHeaders);
    };
    // `reported` is the usage this answer carries, recorded only once the answer is sent whole.
    const sendJson = async (status, payload, reported = null) => {
      const text = typeof payload === 'string' ? payload : JSON.stringify(payload);
      await delay(behaviour.delayMs, res);
      if (res.destroyed) return;
      const bytes = Buffer.from(text);
      head(status, { 'content-type': 'application/json', 'content-length': String(bytes.length) });
      if (behaviour.dropMidStream) {
        const half = bytes.subarray(0, Math.floor(bytes.length / 2));
        record.responseBody = half.toString('utf8');
        res.write(half, () => { finishedByUs = true; record.outcome = 'dropped'; res.destroy(); });
        return;
      }
      record.responseBody = text;
      res.end(bytes);
      if (reported) Object.assign(record, reported);
      record.outcome = status < 400 ? 'complete' : 'error';
      this.#changed(record);
    };

    if (behaviour.resetConnection) {
      finishedByUs = true;
      record.outcome = 'reset';
      req.socket.destroy();
      return;
    }
    if (behaviour.stall) {
      record.outcome = 'stalled';
      this.#changed(record);
      return;
    }
    if (behaviour.status) {
      const payload = behaviour.body ?? errorBody(r.dialect, behaviour.status);
      return sendJson(behaviour.status, payload);
    }
    if (!r.endpoint) {
      return sendJson(404, errorBody(r.dialect ?? 'openai', 404, `mock: no route for ${req.method} ${path}`));
    }
    if (req.method === 'POST' && json === null) {
      return sendJson(400, errorBody(r.dialect, 400, 'mock: request body is not JSON'));
    }

    const u = r.endpoint === 'models' ? null : planUsage(r.endpoint, body, behaviour);
    record.plannedUsage = u && publicUsage(u);
    const ctx = {
      ...r, seq, body, u, stream: record.stream, query: record.query, noUsage: !!behaviour.noUsage,
      model: record.model ?? 'mock-model', id: `${ID_PREFIX[r.endpoint] ?? 'mock-'}${seq}`,
    };
    const built = BUILDERS[`${r.dialect} ${r.endpoint}`](ctx);

    if (behaviour.stallAfterHead) {
      head(200, built.events
        ? { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache' }
        : { 'content-type': 'application/json' });
      res.flushHeaders();
      record.outcome = 'stalled';
      this.#changed(record);
      return;
    }

    if (built.json) {
      let reported = null;
      if (u && !behaviour.noUsage) {
        const counting = r.endpoint === 'messages.count_tokens' || r.endpoint === 'countTokens';
        reported = {
          usage: publicUsage(u),
          wireUsage: counting ? null : built.json.usage ?? built.json.usageMetadata ?? null,
        };
      }
      return sendJson(200, built.json, reported);
    }

    // A stream: SSE (or, for Gemini without alt=sse, a JSON array written element by element).
    const eol = built.eol ?? '\n';
    const frame = (e, i) => {
      if (built.jsonArray) {
        return (i === 0 ? '[' : ',\r\n') + JSON.stringify(e.data) + (i === built.events.length - 1 ? ']' : '');
      }
      const data = typeof e.data === 'string' ? e.data : JSON.stringify(e.data);
      return (e.event ? `event: ${e.event}${eol}` : '') + `data: ${data}${eol}${eol}`;
    };
    head(200, built.jsonArray
      ? { 'content-type': 'application/json; charset=utf-8' }
      : { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache', connection: 'keep-alive' });
    res.flushHeaders();
    record.outcome = 'streaming';
    const dropAt = behaviour.dropMidStream ? (behaviour.afterEvents ?? 0) : Infinity;
    let flushed = Promise.resolve();
    for (let i = 0; i < built.events.length; i++) {
      if (i >= dropAt) {
        finishedByUs = true;
        record.outcome = 'dropped';
        await flushed; // what was written reaches the socket before it is torn down
        res.destroy();
        this.#changed(record);
        return;
      }
      await delay(behaviour.delayMs, res);
      if (res.destroyed) return;
      const text = frame(built.events[i], i);
      const bytes = Buffer.from(text);
      const step = behaviour.chunkBytes > 0 ? behaviour.chunkBytes : bytes.length;
      for (let off = 0; off < bytes.length; off += step) {
        const piece = bytes.subarray(off, off + step);
        if (off + step >= bytes.length) flushed = new Promise((resolve) => res.write(piece, () => resolve()));
        else res.write(piece);
      }
      record.responseBody += text;
      record.eventsSent = i + 1;
      if (built.events[i].reportsUsage) {
        record.usage = publicUsage(u);
        const d = built.events[i].data;
        record.wireUsage = d.usage ?? d.response?.usage ?? d.usageMetadata ?? d.delta?.usage ?? null;
      }
      this.#changed(record);
    }
    if (res.destroyed) return;
    res.end();
    record.outcome = 'complete';
    this.#changed(record);
  }

  #control(req, res, path, raw) {
    const reply = (status, payload) => {
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(payload));
    };
    try {
      if (req.method === 'GET' && path === '/__mock/requests') return reply(200, this.requests);
      if (req.method === 'POST' && path === '/__mock/reset') { this.reset(); return reply(200, { ok: true }); }
      if (req.method === 'POST' && path === '/__mock/behave') {
        const { match = null, behaviour, times } = JSON.parse(raw || '{}');
        if (!behaviour || typeof behaviour !== 'object') return reply(400, { error: 'behaviour (object) is required' });
        this.behave(match, behaviour, { times: times ?? Infinity });
        return reply(200, { ok: true });
      }
      return reply(404, { error: `no control route ${req.method} ${path}` });
    } catch (e) {
      return reply(400, { error: String(e.message ?? e) });
    }
  }
}

// Starts a mock provider; resolves once it listens. `port` 0 (default) picks a free port.
export async function startMock({ port = 0, host = '127.0.0.1' } = {}) {
  return new MockProvider().listen(port, host);
}

// CLI: node tests/mock/mock_provider.mjs [--port N] [--host H]
if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const arg = (name, fallback) => {
    const i = process.argv.indexOf(name);
    return i > 0 && process.argv[i + 1] !== undefined ? process.argv[i + 1] : fallback;
  };
  const mock = await startMock({ port: Number(arg('--port', '0')), host: arg('--host', '127.0.0.1') });
  process.stdout.write(`${mock.url}\n`);
  const stop = async () => { await mock.close(); process.exit(0); };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
}
