// Helpers for data-plane tests: a till server whose every provider points at one mock provider.
import { startMock } from '../../mock/mock_provider.mjs';
import { TillServer, createKey } from './till.mjs';

export const PROVIDERS = ['openai', 'anthropic', 'google', 'openrouter', 'mistral', 'groq',
  'together', 'fireworks', 'perplexity', 'deepseek', 'xai', 'cohere'];

export const REAL_KEYS = Object.fromEntries(PROVIDERS.map((p) => [p, `sk-real-${p}-0123456789abcdef`]));

// Starts a mock provider and a till server forwarding every provider to it.
export async function startProxy({ args = [], env = {} } = {}) {
  const mock = await startMock();
  const upstreams = PROVIDERS.flatMap((p) => ['--upstream', `${p}=${mock.url}`]);
  const server = await TillServer.start({ args: [...upstreams, ...args], env });
  return {
    mock,
    server,
    async stop() {
      await server.stop();
      server.cleanup();
      await mock.close();
    },
  };
}

// A scoped key for `provider` whose upstream credential is REAL_KEYS[provider].
export async function proxyKey(server, provider, fields = {}) {
  return createKey(server, { provider, upstream_key: REAL_KEYS[provider], ...fields });
}

// POSTs JSON to a data-plane path with the scoped key in the given header style.
export async function post(server, path, key, body, { auth = 'bearer', headers = {}, signal } = {}) {
  const h = { 'content-type': 'application/json', ...headers };
  if (auth === 'bearer') h.authorization = `Bearer ${key}`;
  if (auth === 'x-api-key') h['x-api-key'] = key;
  if (auth === 'x-goog-api-key') h['x-goog-api-key'] = key;
  const res = await fetch(server.url + path, { method: 'POST', headers: h, body: JSON.stringify(body), signal });
  return res;
}

export async function json(res) {
  const text = await res.text();
  try { return { status: res.status, json: JSON.parse(text), text, headers: res.headers }; } catch {
    return { status: res.status, json: null, text, headers: res.headers };
  }
}

// The key's live record (used, reserved, remaining, status) through the admin API.
export async function keyState(server, id) {
  const res = await server.api('GET', `/api/v1/keys/${id}`);
  if (res.status !== 200) throw new Error(`GET key ${id}: ${res.status} ${res.text}`);
  return res.json;
}

export function chatBody(extra = {}) {
  return { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'Say hello' }], max_tokens: 16, ...extra };
}
