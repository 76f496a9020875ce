// kill -9 in the middle of load: after a restart the key never has more budget than it had,
// and the provider never sees more requests than the limit allows.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startMock } from '../mock/mock_provider.mjs';
import { TillServer, waitFor } from './lib/till.mjs';
import { PROVIDERS, proxyKey, post, keyState, chatBody, REAL_KEYS } from './lib/proxy.mjs';

test('no overrun across kill -9 and restart mid-load', async () => {
  const mock = await startMock();
  const args = PROVIDERS.flatMap((p) => ['--upstream', `${p}=${mock.url}`]);
  const first = await TillServer.start({ args });
  const key = await proxyKey(first, 'openai', { max_requests: 60, max_spend_usd: '0.01' });
  const forKey = () => mock.requests.filter((r) => r.headers.authorization === `Bearer ${REAL_KEYS.openai}`).length;

  mock.behave({ path: '/chat/completions' }, { delayMs: 20 });
  const load = Array.from({ length: 100 }, () =>
    post(first, '/proxy/openai/v1/chat/completions', key.key, chatBody()).then((r) => r.status, () => 'dropped'));
  await waitFor(() => forKey() >= 20, { what: '20 requests at the mock' });
  await first.kill9();
  const statuses = await Promise.all(load);
  assert.ok(statuses.includes('dropped'), 'the crash cut requests off');

  const second = await TillServer.start({ dataDir: first.dataDir, adminKey: first.adminKey, args });
  const afterRestart = await keyState(second, key.id);
  assert.ok(afterRestart.used.requests >= forKey() - 0, 'every forwarded request is charged');
  assert.equal(afterRestart.reserved.requests, 0, 'orphaned leases were charged at start-up');

  mock.behave({ path: '/chat/completions' }, { delayMs: 0 });
  let refused = false;
  for (let i = 0; i < 100 && !refused; i++) {
    const r = await post(second, '/proxy/openai/v1/chat/completions', key.key, chatBody());
    await r.text();
    refused = r.status === 402;
  }
  assert.ok(refused, 'the key ran out');
  assert.ok(forKey() <= 60, `the mock saw ${forKey()} requests for a 60-request key`);
  const final = await keyState(second, key.id);
  assert.ok(Number(final.used.spend_usd) <= 0.01);
  await second.stop();
  second.cleanup();
  await mock.close();
});
