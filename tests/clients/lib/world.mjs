// Shared setup for the real-SDK tests: a mock provider and, unless CLIENTS_DIRECT=1, a real
// `till serve` (TILL_BIN) in front of it.
//
// Through till (the default, as ctest runs them) the SDKs get a scoped key and till's URL; with
// CLIENTS_DIRECT=1 they get the upstream key and the mock's URL, which proves the SDKs accept the
// mock's responses and lets the scenarios run before the proxy exists. Assertions that only make
// sense through till are guarded by `world.direct`.
import { startMock } from '../../mock/mock_provider.mjs';
import * as harness from '../../integration/lib/till.mjs';

export const DIRECT = process.env.CLIENTS_DIRECT === '1';

// Starts the mock and (through till) the server. Call world.close() in after().
export async function startWorld() {
  const mock = await startMock();
  if (DIRECT) {
    return { direct: true, mock, till: null, harness: null, close: () => mock.close() };
  }
  let till;
  try {
    till = await harness.TillServer.start({
      args: ['--upstream', `openai=${mock.url}`, '--upstream', `anthropic=${mock.url}`],
    });
  } catch (e) {
    await mock.close();
    throw e;
  }
  return {
    direct: false, mock, till, harness,
    async close() {
      await till.stop();
      till.cleanup();
      await mock.close();
    },
  };
}

let serial = 0;

// A key for one scenario. The upstream credential is unique per call so each scenario's upstream
// requests are told apart by it. Through till, `apiKey` is a fresh scoped key (`limits` are passed
// to POST /api/v1/keys); directly, it is the upstream credential itself.
export async function issueKey(world, provider, limits = {}) {
  serial += 1;
  const tag = `${process.pid}-${serial}-${Math.random().toString(36).slice(2, 10)}`;
  const upstream = provider === 'anthropic' ? `sk-ant-real-${tag}` : `sk-real-${tag}`;
  if (world.direct) return { provider, upstream, apiKey: upstream, id: null };
  const created = await world.harness.createKey(world.till, { provider, upstream_key: upstream, ...limits });
  return { provider, upstream, apiKey: created.key, id: created.id };
}

// The base URL an SDK is given. `route` 'v1' is till's OpenAI-compatible /v1 route.
export function baseURL(world, provider, route = 'proxy') {
  if (world.direct) return provider === 'anthropic' ? world.mock.url : `${world.mock.url}/v1`;
  if (provider === 'anthropic') return `${world.till.url}/proxy/anthropic`;
  return route === 'v1' ? `${world.till.url}/v1` : `${world.till.url}/proxy/openai/v1`;
}

// Whether a mock request carries a key's upstream credential: `Authorization: Bearer` (OpenAI,
// and @anthropic-ai/sdk 1.x talking to the mock directly) or `x-api-key` (Anthropic).
export function carriesCredential(record, key) {
  return record.headers.authorization === `Bearer ${key.upstream}`
    || (key.provider === 'anthropic' && record.headers['x-api-key'] === key.upstream);
}

// The upstream requests made with a key's credential, in arrival order.
export function upstreamRequests(world, key) {
  return world.mock.requests.filter((r) => carriesCredential(r, key));
}

// A fetch for an SDK that keeps a copy of every response it hands the SDK (status, headers,
// body text), so a test can assert on what the client saw. Consume every response fully.
export function spyFetch() {
  const seen = [];
  async function spy(input, init) {
    const res = await fetch(input, init);
    const copy = res.clone();
    seen.push(copy.text().then((body) => ({
      url: String(input?.url ?? input), status: res.status, headers: Object.fromEntries(res.headers), body,
    })));
    return res;
  }
  return { fetch: spy, responses: () => Promise.all(seen) };
}

// Through till: GET /api/v1/keys/{id} until `predicate(record)` holds or the deadline passes,
// then the last record either way, so the caller's assertion shows the difference. Settle may
// finish just after the client has its answer, hence the polling.
export async function keyRecordWhen(world, key, predicate, { timeoutMs = 10000 } = {}) {
  let last;
  await world.harness.waitFor(async () => {
    last = await world.till.api('GET', `/api/v1/keys/${key.id}`);
    return last.status === 200 && predicate(last.json);
  }, { timeoutMs, what: `key ${key.id}` }).catch(() => {});
  if (last?.status !== 200) throw new Error(`GET /api/v1/keys/${key.id}: ${last?.status} ${last?.text}`);
  return last.json;
}

export function sumUsage(records) {
  return records.reduce((sum, r) => ({
    input_tokens: sum.input_tokens + (r.usage?.input_tokens ?? 0),
    output_tokens: sum.output_tokens + (r.usage?.output_tokens ?? 0),
  }), { input_tokens: 0, output_tokens: 0 });
}

// The body till returns when a request limit is exhausted, in each dialect's error shape. Only
// used directly (CLIENTS_DIRECT=1), where the mock stands in for till to prove each SDK surfaces
// that shape as an APIError carrying till's message.
export function simulatedLimitError(provider) {
  const message = 'till: request limit exhausted (2 of 2 used); create a new key or raise max_requests';
  return provider === 'anthropic'
    ? { type: 'error', error: { type: 'limit_exhausted', message } }
    : { error: { message, type: 'insufficient_quota', code: 'limit_exhausted', param: null } };
}
