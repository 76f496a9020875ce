// The web dashboard (web/) in a real browser: headless Chromium (Debian's /usr/bin/chromium, driven
// by playwright-core) against a real `till serve` in front of the mock provider.
//
// What it holds the dashboard to:
// - every request the page makes goes to till's own origin, and the page logs no console error
//   and throws nothing (a CSP violation is a console error too; the only errors allowed are the
//   "Failed to load resource" lines Chromium prints for the 4xx answers a test provokes);
// - a wrong admin key shows a clear message and no data; a 401 later signs the page out;
// - a key created through the form shows its token once, with the export snippet; a refused field
//   gets till's message next to it;
// - traffic through till shows up live (no reload) in the key table and on the key's page;
// - alerts can be acknowledged, keys revoked through the confirm dialog;
// - screenshots of every page at 1280×800 and 390×844, and in dark mode, go to
//   $TILL_BUILD_DIR/screenshots/ for a person to look at.
//
// Env: TILL_BIN (the till binary), TILL_BUILD_DIR (where screenshots go; default: a temp dir), and
// optionally TILL_DASHBOARD_DIR: serve the dashboard from that folder (`npm run build -- --outdir
// DIR` in web/) instead of the copy built into till, to try web/ changes without relinking.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { startMock } from '../mock/mock_provider.mjs';
import { TillServer, tempDir, waitFor } from '../integration/lib/till.mjs';

const CHROMIUM = '/usr/bin/chromium';
// Without Chromium the test is skipped on a developer's machine, but fails under CI.
const SKIP = !existsSync(CHROMIUM) && !process.env.CI
  ? `${CHROMIUM} is missing (scripts/install-deps --browser); the dashboard test needs it`
  : false;

const UPSTREAM_KEY = 'sk-real-dashboard-test';
const MODEL = 'gpt-4o-mini';
const T = { timeout: 60000, skip: SKIP };
// How long the page may take to show something: polling is every 2 s.
const UI_WAIT = 15000;

let mock;
let till;
let browser;
let origin;
let shotsDir;
// The signed-in admin page most tests share, and what they created.
let admin;
const created = { id: null, token: null, name: 'dash-agent' };

before(async () => {
  if (SKIP) return;
  const { chromium } = await import('playwright-core');
  mock = await startMock();
  const args = ['--upstream', `openai=${mock.url}`];
  if (process.env.TILL_DASHBOARD_DIR) args.push('--dashboard-dir', process.env.TILL_DASHBOARD_DIR);
  till = await TillServer.start({ args });
  origin = new URL(till.url).origin;
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
  shotsDir = join(process.env.TILL_BUILD_DIR || tempDir('till-screenshots-'), 'screenshots');
  mkdirSync(shotsDir, { recursive: true });
});

after(async () => {
  await browser?.close();
  await till?.stop();
  till?.cleanup();
  await mock?.close();
});

// A page in a fresh browser context (its own sessionStorage) that records every request, console
// error and uncaught exception. check() asserts on them; `allowStatuses` are the HTTP statuses a
// test provokes on purpose (Chromium logs each failed fetch as a console error).
async function openPage({ colorScheme = 'light', width = 1280, height = 800 } = {}) {
  const context = await browser.newContext({ viewport: { width, height }, colorScheme });
  const page = await context.newPage();
  const seen = { requests: [], consoleErrors: [], pageErrors: [] };
  page.on('request', (r) => seen.requests.push(r.url()));
  page.on('console', (m) => { if (m.type() === 'error') seen.consoleErrors.push(m.text()); });
  page.on('pageerror', (e) => seen.pageErrors.push(String(e)));
  // CSP violations also raise this event; record them in the page for check().
  await page.addInitScript(() => {
    window.__cspViolations = [];
    document.addEventListener('securitypolicyviolation', (e) => {
      window.__cspViolations.push(`${e.violatedDirective} ${e.blockedURI}`);
    });
  });
  return {
    page,
    context,
    seen,
    async check({ allowStatuses = [] } = {}) {
      const foreign = seen.requests.filter((url) => new URL(url).origin !== origin);
      assert.deepEqual(foreign, [], `requests outside ${origin}`);
      const unexpected = seen.consoleErrors.filter((text) => {
        const m = /^Failed to load resource: the server responded with a status of (\d+)/.exec(text);
        return !(m && allowStatuses.includes(Number(m[1])));
      });
      assert.deepEqual(unexpected, [], 'console errors');
      assert.deepEqual(seen.pageErrors, [], 'uncaught exceptions in the page');
      const csp = await page.evaluate(() => window.__cspViolations ?? []).catch(() => []);
      assert.deepEqual(csp, [], 'CSP violations');
      assert.ok(seen.requests.length > 0, 'the page made requests');
      seen.requests.length = 0;
      seen.consoleErrors.length = 0;
      seen.pageErrors.length = 0;
    },
    close: () => context.close(),
  };
}

async function signIn(page, adminKey) {
  await page.goto(`${origin}/`);
  await page.getByLabel('Admin key').fill(adminKey);
  await page.getByRole('button', { name: 'Sign in' }).click();
}

// Full-page screenshots at 1280×800, then at 390×844 (the viewport is put back after).
async function shoot(page, name, { widths = [1280, 390] } = {}) {
  const before = page.viewportSize();
  for (const width of widths) {
    await page.setViewportSize(width === 390 ? { width: 390, height: 844 } : { width: 1280, height: 800 });
    // Charts follow their container's width through a ResizeObserver: let layout settle.
    await page.evaluate(() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r))));
    await page.screenshot({ path: join(shotsDir, `${name}-${width}.png`), fullPage: true });
  }
  await page.setViewportSize(before);
}

// POSTs `n` chat completions through till with the created key, as an agent would.
async function sendTraffic(n, token = created.token) {
  for (let i = 0; i < n; i++) {
    const res = await fetch(`${till.url}/proxy/openai/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model: MODEL, messages: [{ role: 'user', content: `Say hello (${i}).` }] }),
    });
    assert.equal(res.status, 200, await res.text());
  }
}

const keyRow = (page, id) => page.locator(`tr[data-key-id="${id}"]`);

test('a wrong admin key: a clear message and no data', T, async () => {
  const p = await openPage();
  try {
    await signIn(p.page, 'till_admin_not-the-right-key-0000000000');
    const alert = p.page.getByRole('alert');
    await alert.waitFor({ timeout: UI_WAIT });
    assert.match(await alert.innerText(), /That admin key was not accepted/);
    assert.equal(await p.page.locator('tr[data-key-id]').count(), 0, 'no key rows');
    assert.equal(await p.page.getByRole('navigation', { name: 'Main' }).count(), 0, 'no navigation');
    assert.equal(await p.page.evaluate(() => sessionStorage.length), 0, 'nothing kept');
    await shoot(p.page, 'signin-error');
    await p.check({ allowStatuses: [401] });
  } finally {
    await p.close();
  }
});

test('sign in, create a key through the form, see its token once', T, async () => {
  admin = await openPage();
  const { page } = admin;
  await signIn(page, till.adminKey);
  await page.getByRole('heading', { level: 1, name: 'Overview' }).waitFor({ timeout: UI_WAIT });
  assert.ok(!page.url().includes(till.adminKey), 'the admin key is not in the URL');
  assert.deepEqual(await page.evaluate(() => localStorage.length), 0, 'nothing in localStorage');

  await page.getByRole('link', { name: 'Keys', exact: true }).click();
  await page.getByRole('heading', { level: 1, name: 'Keys' }).waitFor();
  await page.getByRole('link', { name: 'Create key' }).click();
  await page.getByRole('heading', { level: 1, name: 'Create key' }).waitFor();
  assert.equal(new URL(page.url()).hash, '#/keys/new');

  await page.getByLabel('Provider', { exact: true }).selectOption('openai');
  await page.getByLabel('Name', { exact: true }).fill(created.name);
  await page.getByLabel('Upstream API key', { exact: true }).fill(UPSTREAM_KEY);
  await page.getByLabel('Max requests').fill('0');
  await page.getByLabel('Max spend (USD)').fill('1.00');
  await page.getByLabel('Models').fill(`${MODEL}, gpt-4o`);
  await shoot(page, 'create-form');

  // till refuses max_requests 0: its message appears next to that field, which gets the focus.
  await page.getByRole('button', { name: 'Create key' }).click();
  const fieldError = page.locator('[data-field="max_requests"] .field-error');
  await fieldError.waitFor({ timeout: UI_WAIT });
  assert.match(await fieldError.innerText(), /^max_requests: must be a whole number of at least 1/);
  await page.waitForFunction(() => document.activeElement?.id === 'create-max_requests', null, { timeout: UI_WAIT });
  assert.equal(await page.getByLabel('Max requests').getAttribute('aria-invalid'), 'true');
  assert.equal(await page.locator('.field-error').count(), 1, 'only that field is marked');
  await shoot(page, 'create-form-error', { widths: [1280] });

  await page.getByLabel('Max requests').fill('20');
  const answer = page.waitForResponse((r) => r.url() === `${origin}/api/v1/keys` && r.request().method() === 'POST');
  await page.getByRole('button', { name: 'Create key' }).click();
  assert.equal((await answer).status(), 201);

  const token = page.getByLabel('New key token');
  await token.waitFor({ timeout: UI_WAIT });
  created.token = (await token.innerText()).trim();
  assert.match(created.token, /^till_sk_/);
  const snippet = await page.getByLabel('Export snippet').innerText();
  for (const line of [
    `export OPENAI_API_KEY='${created.token}'`,
    `export OPENAI_BASE_URL='${origin}/proxy/openai/v1'`,
    `export TILL_BASE_URL='${origin}'`,
    `export TILL_KEY='${created.token}'`,
  ]) {
    assert.ok(snippet.includes(line), `the snippet has ${line}:\n${snippet}`);
  }
  // The token is shown, never kept: not in the URL, not in any storage.
  assert.ok(!page.url().includes(created.token));
  const stored = await page.evaluate(() => JSON.stringify({ ...localStorage }) + JSON.stringify({ ...sessionStorage }));
  assert.ok(!stored.includes(created.token), 'the token is in no storage');
  await shoot(page, 'new-key');

  const record = await till.api('GET', `/api/v1/keys?name=${created.name}`);
  assert.equal(record.json.keys.length, 1);
  const key = record.json.keys[0];
  created.id = key.id;
  assert.deepEqual(key.limits, { max_requests: 20, max_tokens: null, max_spend_usd: '1.00' });
  assert.deepEqual(key.scope.models, [MODEL, 'gpt-4o']);
  assert.equal(key.credential, null);

  await page.getByRole('button', { name: 'Done: view the key' }).click();
  await page.waitForURL(`${origin}/#/keys/${created.id}`);
  await page.getByRole('heading', { level: 1, name: created.name }).waitFor({ timeout: UI_WAIT });
  assert.equal(await page.getByLabel('New key token').count(), 0, 'the token is gone once dismissed');
  await admin.check({ allowStatuses: [400] });
});

test('traffic through till shows up live in the table and on the key page', T, async () => {
  assert.ok(created.token, 'the previous test created a key');
  const { page } = admin;
  await page.goto(`${origin}/#/keys`);
  const row = keyRow(page, created.id);
  await row.waitFor({ timeout: UI_WAIT });
  assert.match(await row.locator('[data-limit="requests"]').innerText(), /0 \/ 20/);
  assert.match(await row.locator('[data-limit="tokens"]').innerText(), /no limit/);
  assert.equal(await row.locator('.badge').innerText(), 'active');

  // Typed input and focus must survive the live refreshes; so must the page itself (no reload).
  const search = page.getByLabel('Search');
  await search.fill('dash');
  await page.evaluate(() => { window.__sameDocument = true; });

  await sendTraffic(5);
  await page.waitForFunction(
    (id) => document.querySelector(`tr[data-key-id="${id}"] [data-limit="requests"]`)?.textContent?.includes('5 / 20'),
    created.id, { timeout: UI_WAIT },
  );
  const bar = row.locator('[data-limit="requests"] [role="progressbar"]');
  assert.equal(await bar.getAttribute('aria-valuenow'), '5');
  assert.equal(await bar.getAttribute('aria-valuemax'), '20');
  assert.equal(await page.evaluate(() => window.__sameDocument), true, 'no reload');
  assert.equal(await page.evaluate(() => document.activeElement?.id), 'keys-search', 'focus kept');
  assert.equal(await search.inputValue(), 'dash', 'input kept');
  await search.fill('');

  await row.getByRole('link', { name: created.name }).click();
  await page.getByRole('heading', { level: 1, name: created.name }).waitFor({ timeout: UI_WAIT });
  const totals = page.getByTestId('usage-totals');
  await waitFor(async () => /\b5 requests\b/.test(await totals.innerText()), { timeoutMs: UI_WAIT, what: 'totals: 5 requests' });
  // uPlot draws after the first render: wait for its three canvases.
  await page.locator('.chart canvas').nth(2).waitFor({ timeout: UI_WAIT });
  assert.equal(await page.locator('.chart canvas').count(), 3, 'three uPlot charts');

  // More traffic while the key's page is open: 10 of 20 crosses the 50 % budget mark.
  await sendTraffic(5);
  await waitFor(async () => /\b10 requests\b/.test(await totals.innerText()), { timeoutMs: UI_WAIT, what: 'totals: 10 requests' });
  await page.waitForFunction(
    () => document.querySelector('[data-limit="requests"]')?.textContent?.includes('10 / 20'),
    null, { timeout: UI_WAIT },
  );
  await waitFor(async () => (await page.locator('.events-table tbody tr').count()) === 10, { timeoutMs: UI_WAIT, what: '10 events' });
  assert.match(await page.locator('.events-table tbody tr').first().innerText(), new RegExp(MODEL));

  // The key's holder carves a sub-key for a sub-agent: it appears on the key's page.
  const res = await fetch(`${till.url}/api/v1/key/children`, {
    method: 'POST',
    headers: { authorization: `Bearer ${created.token}`, 'content-type': 'application/json' },
    body: JSON.stringify({ name: 'dash-sub-agent', max_requests: 2, max_spend_usd: '0.10' }),
  });
  const text = await res.text();
  assert.equal(res.status, 201, text);
  const child = JSON.parse(text);
  const childRow = page.locator(`[aria-label="Sub-keys"] tr[data-key-id="${child.id}"]`);
  await childRow.waitFor({ timeout: UI_WAIT });
  assert.match(await childRow.innerText(), /dash-sub-agent/);
  assert.match(await childRow.locator('[data-limit="requests"]').innerText(), /0 \/ 2/);
  await admin.check();
});

test('an alert is shown and acknowledged', T, async () => {
  assert.ok(created.id);
  const { page } = admin;
  // 10 of 20 requests raised budget_threshold for the key; its page lists it.
  const alertRow = page.locator('.alerts-table tr', { hasText: 'budget_threshold' }).first();
  await alertRow.waitFor({ timeout: UI_WAIT });
  await shoot(page, 'key-detail');
  const alertId = await alertRow.getAttribute('data-alert-id');
  await alertRow.getByRole('button', { name: /^Acknowledge alert/ }).click();
  await page.locator(`tr[data-alert-id="${alertId}"].acknowledged`).waitFor({ timeout: UI_WAIT });
  const stored = await till.api('GET', `/api/v1/alerts?key=${created.id}&rule=budget_threshold`);
  assert.equal(stored.json.alerts.find((a) => String(a.id) === alertId)?.acknowledged, true);

  // The alerts page lists it; "unacknowledged only" leaves it out.
  await page.getByRole('link', { name: 'Alerts', exact: true }).click();
  await page.getByRole('heading', { level: 1, name: 'Alerts' }).waitFor();
  await page.locator(`tr[data-alert-id="${alertId}"]`).waitFor({ timeout: UI_WAIT });
  await shoot(page, 'alerts');
  await page.getByLabel('Unacknowledged only').check();
  await page.locator(`tr[data-alert-id="${alertId}"]`).waitFor({ state: 'detached', timeout: UI_WAIT });
  await page.getByLabel('Unacknowledged only').uncheck();
  await admin.check();
});

test('overview and key table screenshots, light and dark', T, async () => {
  assert.ok(created.id);
  const { page } = admin;
  await page.goto(`${origin}/#/`);
  await page.getByRole('heading', { level: 1, name: 'Overview' }).waitFor();
  // Top keys lists the key by name once usage is loaded.
  await page.locator('section', { hasText: 'Top keys' }).getByRole('link', { name: created.name }).waitFor({ timeout: UI_WAIT });
  await page.locator('.chart canvas').first().waitFor();
  await shoot(page, 'overview');
  await page.goto(`${origin}/#/keys`);
  await keyRow(page, created.id).waitFor({ timeout: UI_WAIT });
  await shoot(page, 'keys');
  await admin.check();

  const dark = await openPage({ colorScheme: 'dark' });
  try {
    await signIn(dark.page, till.adminKey);
    await dark.page.getByRole('heading', { level: 1, name: 'Overview' }).waitFor({ timeout: UI_WAIT });
    await dark.page.locator('.chart canvas').first().waitFor({ timeout: UI_WAIT });
    await shoot(dark.page, 'overview-dark', { widths: [1280] });
    await dark.page.goto(`${origin}/#/keys/${created.id}`);
    await dark.page.getByTestId('usage-totals').waitFor({ timeout: UI_WAIT });
    await shoot(dark.page, 'key-detail-dark', { widths: [1280] });
    await dark.check();
  } finally {
    await dark.close();
  }
});

test('suspend, resume and rotate through their dialogs', T, async () => {
  assert.ok(created.id);
  const { page } = admin;
  await page.goto(`${origin}/#/keys/${created.id}`);
  await page.getByRole('heading', { level: 1, name: created.name }).waitFor({ timeout: UI_WAIT });
  const status = page.locator('h1 .badge');
  const button = (name) => page.getByRole('button', { name, exact: true });
  const statusIs = (want) => waitFor(async () => (await status.innerText()) === want, { timeoutMs: UI_WAIT, what: `status ${want}` });

  await button('Suspend').click();
  await page.getByRole('dialog', { name: `Suspend ${created.name}?` }).getByRole('button', { name: 'Suspend key' }).click();
  await statusIs('suspended');
  assert.equal(await button('Suspend').count(), 0, 'a suspended key offers no Suspend');
  await button('Resume').click();
  await page.getByRole('dialog', { name: `Resume ${created.name}?` }).getByRole('button', { name: 'Resume key' }).click();
  await statusIs('active');
  assert.equal(await button('Resume').count(), 0, 'an active key offers no Resume');

  // The key carries its upstream key sealed in its token: a rotation without it is refused, and
  // till's message shows next to that field.
  await button('Rotate').click();
  const rotate = page.getByRole('dialog', { name: `Rotate ${created.name}?` });
  await rotate.waitFor();
  assert.equal(await rotate.getByLabel('Grace for the old token').inputValue(), '10m');
  await rotate.getByRole('button', { name: 'Rotate key' }).click();
  const upstreamError = rotate.locator('#rotate-upstream-error');
  await upstreamError.waitFor({ timeout: UI_WAIT });
  assert.match(await upstreamError.innerText(), /^upstream_key: key .* sealed in its token/);
  await rotate.getByLabel('Upstream API key').fill(UPSTREAM_KEY);
  await rotate.getByRole('button', { name: 'Rotate key' }).click();
  await rotate.waitFor({ state: 'hidden', timeout: UI_WAIT });
  const token = page.getByLabel('New key token');
  await token.waitFor({ timeout: UI_WAIT });
  const oldToken = created.token;
  created.token = (await token.innerText()).trim();
  assert.match(created.token, /^till_sk_/);
  assert.notEqual(created.token, oldToken);
  assert.match(await page.locator('.token-panel').innerText(), /previous token keeps working until/);
  await sendTraffic(1); // the new token works
  await sendTraffic(1, oldToken); // and the old one, for its 10 minutes of grace
  await shoot(page, 'rotated', { widths: [1280] });
  await page.getByRole('button', { name: 'Done', exact: true }).click();
  await token.waitFor({ state: 'detached' });
  await admin.check({ allowStatuses: [400] });
});

test('revoke through the confirm dialog: Escape cancels, confirming revokes', T, async () => {
  assert.ok(created.id);
  const { page } = admin;
  await page.goto(`${origin}/#/keys/${created.id}`);
  await page.getByRole('heading', { level: 1, name: created.name }).waitFor({ timeout: UI_WAIT });
  const status = page.locator('h1 .badge');
  assert.equal(await status.innerText(), 'active');

  await page.getByRole('button', { name: 'Revoke', exact: true }).click();
  const dialog = page.getByRole('dialog', { name: `Revoke ${created.name}?` });
  await dialog.waitFor();
  // Cancel has the focus: a stray Enter revokes nothing.
  await page.waitForFunction(() => document.activeElement?.textContent === 'Cancel', null, { timeout: UI_WAIT });
  await shoot(page, 'revoke-dialog', { widths: [1280] });
  await page.keyboard.press('Escape');
  await dialog.waitFor({ state: 'hidden' });
  assert.equal((await till.api('GET', `/api/v1/keys/${created.id}`)).json.status, 'active', 'Escape revoked nothing');

  await page.getByRole('button', { name: 'Revoke', exact: true }).click();
  await dialog.waitFor();
  await dialog.getByRole('button', { name: 'Revoke key' }).click();
  await dialog.waitFor({ state: 'hidden' });
  await waitFor(async () => (await status.innerText()) === 'revoked', { timeoutMs: UI_WAIT, what: 'status revoked' });
  for (const action of ['Revoke', 'Suspend', 'Resume', 'Rotate']) {
    assert.equal(await page.getByRole('button', { name: action, exact: true }).count(), 0, `no ${action} on a revoked key`);
  }
  assert.equal((await till.api('GET', `/api/v1/keys/${created.id}`)).json.status, 'revoked');
  const refused = await fetch(`${till.url}/proxy/openai/v1/chat/completions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${created.token}`, 'content-type': 'application/json' },
    body: JSON.stringify({ model: MODEL, messages: [{ role: 'user', content: 'hello?' }] }),
  });
  assert.equal(refused.status, 403);
  await admin.check();
});

test('an admin key refused later signs the page out, showing no data', T, async () => {
  const { page } = admin;
  await page.goto(`${origin}/#/keys`);
  await keyRow(page, created.id).waitFor({ timeout: UI_WAIT });
  // Stand in for a rotated admin key: till's API now answers 401 to this page.
  await page.route(`${origin}/api/v1/**`, (route) => route.fulfill({
    status: 401,
    contentType: 'application/json',
    body: JSON.stringify({ error: { message: 'invalid admin key', type: 'invalid_request_error', code: 'invalid_api_key', param: null } }),
  }));
  await page.getByText(/You were signed out/).waitFor({ timeout: UI_WAIT });
  assert.equal(await page.locator('tr[data-key-id]').count(), 0, 'no key rows');
  assert.equal(await page.getByLabel('Admin key').count(), 1, 'the sign-in form');
  assert.equal(await page.evaluate(() => sessionStorage.length), 0, 'the admin key is forgotten');
  await page.unroute(`${origin}/api/v1/**`);
  await admin.check({ allowStatuses: [401] });
  await admin.close();
});
