// `till credential …` and `till key create --credential | rotate | suspend | resume` against a real
// server forwarding to the mock provider, so the tests also see which secret reaches upstream.
//
// Secrets reach the CLI only through the environment or stdin: till() below fails a test that
// puts one in argv, or whose till invocation prints one on stdout or stderr.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { runTill, UPSTREAM_SECRET } from './lib/till.mjs';
import { startProxy, post, json, chatBody } from './lib/proxy.mjs';

const VAULT_SECRET = 'sk-vault-FIRST-0f1e2d3c4b5a69788796a5b4c3d2e1f0';
const VAULT_ROTATED = 'sk-vault-ROTATED-a1b2c3d4e5f60718293a4b5c6d7e8f90';
const STDIN_SECRET = 'sk-ant-vault-STDIN-99887766554433221100aabbccddeeff';
const NEW_UPSTREAM = 'sk-sealed-NEW-13579bdf02468ace13579bdf02468ace';
const SECRETS = [VAULT_SECRET, VAULT_ROTATED, STDIN_SECRET, NEW_UPSTREAM, UPSTREAM_SECRET];

let env;
before(async () => { env = await startProxy(); });
after(async () => { await env.stop(); });

// Runs the CLI against the server with only TILL_URL, TILL_ADMIN_KEY and `vars` in its
// environment (no OPENAI_API_KEY unless given).
function till(args, { vars = {}, input } = {}) {
  for (const s of SECRETS) assert.ok(!args.some((a) => a.includes(s)), `a secret in argv: ${args.join(' ')}`);
  const r = runTill(args, { env: env.server.cliEnv(vars), input });
  for (const s of SECRETS) {
    assert.ok(!r.stdout.includes(s), `till ${args.join(' ')} printed a secret on stdout`);
    assert.ok(!r.stderr.includes(s), `till ${args.join(' ')} printed a secret on stderr`);
  }
  return r;
}

function tillJson(args, options) {
  const r = till([...args, '--json'], options);
  assert.equal(r.status, 0, r.stderr);
  return JSON.parse(r.stdout);
}

// The Authorization header the mock provider saw for one chat request made with `token`.
async function upstreamAuthFor(token) {
  const before = env.mock.requests.length;
  const res = await json(await post(env.server, '/proxy/openai/v1/chat/completions', token, chatBody()));
  assert.equal(res.status, 200, res.text);
  assert.equal(env.mock.requests.length, before + 1);
  return env.mock.requests[before].headers.authorization;
}

// The status of a chat request made with `token` (and its error code, if any).
async function proxyStatus(token) {
  const res = await json(await post(env.server, '/proxy/openai/v1/chat/completions', token, chatBody()));
  return { status: res.status, code: res.json?.error?.code };
}

function onlyLine(stdout) {
  const lines = stdout.trim().split('\n');
  assert.equal(lines.length, 1, stdout);
  return lines[0];
}

// Creates a key on vault credential `credential`; returns { id, token }.
function vaultKey(credential, extra = []) {
  const r = till(['key', 'create', '--provider', 'openai', '--credential', credential, ...extra]);
  assert.equal(r.status, 0, r.stderr);
  const token = onlyLine(r.stdout);
  assert.match(token, /^till_sk_\S+$/);
  const id = r.stderr.match(/created (key_\w+)/)[1];
  return { id, token };
}

test('credential add reads the secret from the provider variable, --secret-env or stdin', () => {
  const fromDefault = till(['credential', 'add', 'add-default', '--provider', 'openai'],
    { vars: { OPENAI_API_KEY: VAULT_SECRET } });
  assert.equal(fromDefault.status, 0, fromDefault.stderr);
  assert.match(fromDefault.stdout, /^name\s+add-default$/m);
  assert.match(fromDefault.stdout, /^provider\s+openai$/m);
  assert.match(fromDefault.stdout, /^keys\s+0$/m);
  assert.match(fromDefault.stderr, /^till: added credential add-default for openai/);

  const fromVar = tillJson(['credential', 'add', 'add-env', '--provider', 'openai', '--secret-env', 'MY_VAR'],
    { vars: { MY_VAR: VAULT_SECRET } });
  assert.equal(fromVar.name, 'add-env');
  assert.equal(fromVar.key_count, 0);
  assert.deepEqual(fromVar.keys, []);
  assert.equal(fromVar.secret, undefined, 'the record carries no secret');

  const fromStdin = tillJson(['credential', 'add', 'add-stdin', '--provider', 'anthropic', '--secret-stdin',
    '--rotate-every', '30d'], { input: `${STDIN_SECRET}\n` });
  assert.equal(fromStdin.provider, 'anthropic');
  assert.equal(fromStdin.rotate_every, '30d');
  assert.match(fromStdin.rotation_due_at, /^\d{4}-\d\d-\d\dT/);
  assert.equal(fromStdin.master_key_version, 1);

  const shown = tillJson(['credential', 'show', 'add-stdin']);
  assert.equal(shown.name, 'add-stdin');
  assert.equal(shown.rotate_every, '30d');

  const duplicate = till(['credential', 'add', 'add-env', '--provider', 'openai'],
    { vars: { OPENAI_API_KEY: VAULT_SECRET } });
  assert.equal(duplicate.status, 1);
  assert.equal(duplicate.stderr.trim().split('\n').length, 1);
  assert.match(duplicate.stderr, /^till: /);

  const badName = till(['credential', 'add', 'no spaces/allowed', '--provider', 'openai'],
    { vars: { OPENAI_API_KEY: VAULT_SECRET } });
  assert.equal(badName.status, 1);
  assert.match(badName.stderr, /^till: .*name/);

  const names = tillJson(['credential', 'list']).credentials.map((c) => c.name);
  assert.ok(names.includes('add-default') && !names.includes('no spaces/allowed'), names.join(' '));
});

test('credential add: a missing variable or empty stdin is a one-line error before any request', () => {
  const noVar = till(['credential', 'add', 'never-made', '--provider', 'openai']);
  assert.equal(noVar.status, 1);
  assert.equal(noVar.stderr, 'till: OPENAI_API_KEY is not set; pass --secret-env VAR or --secret-stdin\n');

  const namedVar = till(['credential', 'add', 'never-made', '--provider', 'openai', '--secret-env', 'UNSET_VAR']);
  assert.equal(namedVar.status, 1);
  assert.match(namedVar.stderr, /^till: UNSET_VAR is not set/);

  const emptyStdin = till(['credential', 'add', 'never-made', '--provider', 'openai', '--secret-stdin'], { input: '' });
  assert.equal(emptyStdin.status, 1);
  assert.match(emptyStdin.stderr, /^till: --secret-stdin: nothing on stdin/);

  const unreachable = runTill(['credential', 'add', 'never-made', '--provider', 'openai'],
    { env: env.server.cliEnv({ TILL_URL: 'http://127.0.0.1:1', OPENAI_API_KEY: VAULT_SECRET }) });
  assert.equal(unreachable.status, 3);
  assert.match(unreachable.stderr, /^till: cannot reach till/);
});

test('credential list prints a table and JSON', () => {
  assert.equal(till(['credential', 'add', 'list-plain', '--provider', 'openai'],
    { vars: { OPENAI_API_KEY: VAULT_SECRET } }).status, 0);
  assert.equal(till(['credential', 'add', 'list-due', '--provider', 'openai', '--rotate-every', '7d'],
    { vars: { OPENAI_API_KEY: VAULT_SECRET } }).status, 0);
  vaultKey('list-due');
  vaultKey('list-due');

  const list = till(['credential', 'list']);
  assert.equal(list.status, 0, list.stderr);
  const [header, ...rows] = list.stdout.trim().split('\n');
  assert.match(header, /^NAME\s+PROVIDER\s+AGE\s+KEYS\s+ROTATION DUE$/);
  const plain = rows.find((r) => r.startsWith('list-plain '));
  const due = rows.find((r) => r.startsWith('list-due '));
  assert.match(plain, /^list-plain\s+openai\s+\d+[smhd]\s+0\s+-$/);
  assert.match(due, /^list-due\s+openai\s+\d+[smhd]\s+2\s+\d{4}-\d\d-\d\dT\S+$/);
  assert.equal(header.indexOf('KEYS'), due.search(/\s2\s/) + 1, 'columns aligned');
  assert.match(list.stderr, /^till: \d+ credentials\n$/);

  const listed = tillJson(['credential', 'list']);
  const record = listed.credentials.find((c) => c.name === 'list-due');
  assert.equal(record.key_count, 2);
  assert.equal(record.keys.length, 2);
  assert.equal(record.rotate_every, '7d');
  assert.ok(listed.credentials.some((c) => c.name === 'list-plain' && c.rotation_due_at === null));
});

test('key create --credential sends no upstream key; the vault secret reaches the provider', async () => {
  assert.equal(till(['credential', 'add', 'vault-a', '--provider', 'openai'],
    { vars: { OPENAI_API_KEY: VAULT_SECRET } }).status, 0);
  const { id, token } = vaultKey('vault-a', ['--name', 'vault-agent', '--max-requests', '10']);
  const record = tillJson(['key', 'show', id]);
  assert.equal(record.credential, 'vault-a');
  assert.equal(record.limits.max_requests, 10);
  const show = till(['key', 'show', id]);
  assert.match(show.stdout, /^credential\s+vault-a$/m);

  assert.equal(await upstreamAuthFor(token), `Bearer ${VAULT_SECRET}`);

  const withRotation = tillJson(['key', 'create', '--provider', 'openai', '--credential', 'vault-a',
    '--rotate-every', '7d']);
  assert.equal(withRotation.credential, 'vault-a');
  assert.equal(withRotation.rotate_every, '7d');
  assert.match(withRotation.rotation_due_at, /^\d{4}-\d\d-\d\dT/);
  assert.match(withRotation.key, /^till_sk_/);

  const unknown = till(['key', 'create', '--provider', 'openai', '--credential', 'no-such-credential']);
  assert.equal(unknown.status, 1);
  assert.match(unknown.stderr, /^till: .*no-such-credential/);
});

test('credential rotate replaces the secret the keys send, from the provider variable or stdin', async () => {
  assert.equal(till(['credential', 'add', 'vault-rot', '--provider', 'openai'],
    { vars: { OPENAI_API_KEY: VAULT_SECRET } }).status, 0);
  const { token } = vaultKey('vault-rot');
  assert.equal(await upstreamAuthFor(token), `Bearer ${VAULT_SECRET}`);

  // The default variable is the credential's provider's, learnt from the server.
  const rotated = till(['credential', 'rotate', 'vault-rot'], { vars: { OPENAI_API_KEY: VAULT_ROTATED } });
  assert.equal(rotated.status, 0, rotated.stderr);
  assert.match(rotated.stdout, /^name\s+vault-rot$/m);
  assert.match(rotated.stderr, /^till: rotated credential vault-rot/);
  assert.equal(await upstreamAuthFor(token), `Bearer ${VAULT_ROTATED}`);

  const fromStdin = tillJson(['credential', 'rotate', 'vault-rot', '--secret-stdin'], { input: `${VAULT_SECRET}\r\n` });
  assert.equal(fromStdin.name, 'vault-rot');
  assert.equal(fromStdin.key_count, 1);
  assert.equal(await upstreamAuthFor(token), `Bearer ${VAULT_SECRET}`);

  const noVar = till(['credential', 'rotate', 'vault-rot']);
  assert.equal(noVar.status, 1);
  assert.match(noVar.stderr, /^till: OPENAI_API_KEY is not set/);

  const unknown = till(['credential', 'rotate', 'no-such-credential'], { vars: { OPENAI_API_KEY: VAULT_ROTATED } });
  assert.equal(unknown.status, 1);
  assert.equal(unknown.stderr.trim().split('\n').length, 1);
});

test('credential remove is refused while a key uses it, then --force removes it', () => {
  assert.equal(till(['credential', 'add', 'vault-rm', '--provider', 'openai'],
    { vars: { OPENAI_API_KEY: VAULT_SECRET } }).status, 0);
  const { id } = vaultKey('vault-rm');

  const refused = till(['credential', 'remove', 'vault-rm']);
  assert.equal(refused.status, 1);
  assert.equal(refused.stderr.trim().split('\n').length, 1, refused.stderr);
  assert.match(refused.stderr, /^till: /);
  assert.ok(refused.stderr.includes(id), `the message names the key: ${refused.stderr}`);
  assert.ok(tillJson(['credential', 'list']).credentials.some((c) => c.name === 'vault-rm'));

  const forced = till(['credential', 'remove', 'vault-rm', '--force']);
  assert.equal(forced.status, 0, forced.stderr);
  assert.match(forced.stderr, /^till: removed credential vault-rm/);
  assert.ok(!tillJson(['credential', 'list']).credentials.some((c) => c.name === 'vault-rm'));

  const gone = till(['credential', 'show', 'vault-rm']);
  assert.equal(gone.status, 1);

  // Unused, or used only by revoked keys: no --force needed.
  assert.equal(till(['credential', 'add', 'vault-rm2', '--provider', 'openai'],
    { vars: { OPENAI_API_KEY: VAULT_SECRET } }).status, 0);
  const revoked = vaultKey('vault-rm2');
  assert.equal(till(['key', 'revoke', revoked.id]).status, 0);
  const removed = tillJson(['credential', 'remove', 'vault-rm2']);
  assert.equal(removed.name, 'vault-rm2');
});

test('key rotate of a vault key needs no upstream key; the old token is refused or kept for --grace', async () => {
  assert.equal(till(['credential', 'add', 'vault-keyrot', '--provider', 'openai'],
    { vars: { OPENAI_API_KEY: VAULT_SECRET } }).status, 0);
  const { id, token: first } = vaultKey('vault-keyrot');

  const rotated = till(['key', 'rotate', id]);  // no OPENAI_API_KEY in its environment
  assert.equal(rotated.status, 0, rotated.stderr);
  const second = onlyLine(rotated.stdout);
  assert.match(second, /^till_sk_\S+$/);
  assert.notEqual(second, first);
  assert.equal(rotated.stderr,
    `till: rotated ${id}; the old token works until now: it is refused from the next request\n`);
  assert.ok([401, 403].includes((await proxyStatus(first)).status), 'the old token is refused');
  assert.equal(await upstreamAuthFor(second), `Bearer ${VAULT_SECRET}`);

  const graced = tillJson(['key', 'rotate', id, '--grace', '10m']);
  assert.equal(graced.id, id);
  assert.equal(graced.credential, 'vault-keyrot');
  assert.match(graced.key, /^till_sk_/);
  assert.match(graced.previous_token_valid_until, /^\d{4}-\d\d-\d\dT/);
  assert.equal((await proxyStatus(second)).status, 200, 'the old token works during the grace');
  assert.equal((await proxyStatus(graced.key)).status, 200);

  const plainGrace = till(['key', 'rotate', id, '--grace', '5m']);
  assert.equal(plainGrace.status, 0, plainGrace.stderr);
  assert.match(plainGrace.stderr, /^till: rotated key_\w+; the old token works until \d{4}-\d\d-\d\dT\S+\n$/);

  const withKey = till(['key', 'rotate', id, '--upstream-key-stdin'], { input: `${NEW_UPSTREAM}\n` });
  assert.equal(withKey.status, 1);
  assert.match(withKey.stderr, /^till: .*vault credential "vault-keyrot"/);
  assert.equal(withKey.stdout, '');
});

test('key rotate of a sealed key gives it the upstream key again from OPENAI_API_KEY or stdin', async () => {
  const created = till(['key', 'create', '--provider', 'openai'], { vars: { OPENAI_API_KEY: UPSTREAM_SECRET } });
  assert.equal(created.status, 0, created.stderr);
  const first = onlyLine(created.stdout);
  const id = created.stderr.match(/created (key_\w+)/)[1];
  assert.equal(tillJson(['key', 'show', id]).credential, null);
  assert.match(till(['key', 'show', id]).stdout, /^credential\s+- \(holds its own upstream key\)$/m);
  assert.equal(await upstreamAuthFor(first), `Bearer ${UPSTREAM_SECRET}`);

  const noKey = till(['key', 'rotate', id]);
  assert.equal(noKey.status, 1);
  assert.equal(noKey.stderr, 'till: OPENAI_API_KEY is not set; pass --upstream-key-env VAR or --upstream-key-stdin\n');
  assert.equal((await proxyStatus(first)).status, 200, 'a failed rotation leaves the token alone');

  const rotated = till(['key', 'rotate', id], { vars: { OPENAI_API_KEY: NEW_UPSTREAM } });
  assert.equal(rotated.status, 0, rotated.stderr);
  const second = onlyLine(rotated.stdout);
  assert.match(second, /^till_sk_\S+$/);
  assert.match(rotated.stderr, new RegExp(`^till: rotated ${id}; the old token works until now`));
  assert.equal(await upstreamAuthFor(second), `Bearer ${NEW_UPSTREAM}`);
  assert.ok([401, 403].includes((await proxyStatus(first)).status), 'the old token is refused');

  const fromStdin = till(['key', 'rotate', id, '--upstream-key-stdin'], { input: `${UPSTREAM_SECRET}\n` });
  assert.equal(fromStdin.status, 0, fromStdin.stderr);
  assert.equal(await upstreamAuthFor(onlyLine(fromStdin.stdout)), `Bearer ${UPSTREAM_SECRET}`);

  const fromVar = tillJson(['key', 'rotate', id, '--upstream-key-env', 'ROTATED_KEY'], { vars: { ROTATED_KEY: NEW_UPSTREAM } });
  assert.equal(fromVar.id, id);
  assert.equal(await upstreamAuthFor(fromVar.key), `Bearer ${NEW_UPSTREAM}`);

  const missing = till(['key', 'rotate', 'key_doesnotexist0000'], { vars: { OPENAI_API_KEY: NEW_UPSTREAM } });
  assert.equal(missing.status, 1);
  assert.match(missing.stderr, /^till: no key with id key_doesnotexist0000/);
});

test('key suspend refuses the key\'s requests until key resume', async () => {
  const created = tillJson(['key', 'create', '--provider', 'openai'], { vars: { OPENAI_API_KEY: UPSTREAM_SECRET } });

  const suspended = till(['key', 'suspend', created.id]);
  assert.equal(suspended.status, 0, suspended.stderr);
  assert.match(suspended.stdout, /^status\s+suspended$/m);
  assert.match(suspended.stderr, new RegExp(`^till: suspended ${created.id}; status suspended\n$`));
  assert.deepEqual(await proxyStatus(created.key), { status: 403, code: 'key_suspended' });

  const resumed = till(['key', 'resume', created.id]);
  assert.equal(resumed.status, 0, resumed.stderr);
  assert.match(resumed.stdout, /^status\s+active$/m);
  assert.match(resumed.stderr, new RegExp(`^till: resumed ${created.id}; status active\n$`));
  assert.equal((await proxyStatus(created.key)).status, 200);

  assert.equal(tillJson(['key', 'suspend', created.id]).status, 'suspended');
  assert.equal(tillJson(['key', 'resume', created.id]).status, 'active');

  const missing = till(['key', 'suspend', 'key_doesnotexist0000']);
  assert.equal(missing.status, 1);
  assert.match(missing.stderr, /^till: no key with id key_doesnotexist0000/);
});

test('usage errors exit 2 before any request', () => {
  // TILL_URL points nowhere: an attempted request would exit 3, not 2.
  const nowhere = { TILL_URL: 'http://127.0.0.1:1', TILL_ADMIN_KEY: 'till_admin_x' };
  const usage = (args, input) => {
    const r = runTill(args, { env: nowhere, input });
    assert.equal(r.status, 2, `till ${args.join(' ')}: ${r.stderr}`);
    assert.equal(r.stdout, '');
    return r;
  };
  assert.match(usage(['key', 'create', '--provider', 'openai', '--credential', 'c', '--upstream-key-stdin'],
    `${UPSTREAM_SECRET}\n`).stderr, /--upstream-key-stdin excludes --credential|--credential excludes --upstream-key-stdin/);
  assert.match(usage(['key', 'create', '--provider', 'openai', '--credential', 'c', '--upstream-key-env', 'X']).stderr,
    /excludes/);
  usage(['env', '--create', '--provider', 'openai', '--credential', 'c', '--upstream-key-stdin']);
  usage(['run', '--provider', 'openai', '--credential', 'c', '--upstream-key-env', 'X', '--', 'true']);
  // An embedded server's vault is empty: --credential needs TILL_URL.
  const embedded = runTill(['run', '--provider', 'openai', '--credential', 'c', '--', 'true'], { env: {} });
  assert.equal(embedded.status, 2);
  assert.match(embedded.stderr, /^till: --credential .*TILL_URL/);

  usage(['key', 'rotate']);
  usage(['key', 'rotate', 'key_x', '--upstream-key-env', 'X', '--upstream-key-stdin']);
  usage(['key', 'suspend']);
  usage(['key', 'resume']);
  usage(['credential']);
  usage(['credential', 'add', 'name-only']);
  usage(['credential', 'add', '--provider', 'openai']);
  usage(['credential', 'add', 'n', '--provider', 'openai', '--secret-env', 'X', '--secret-stdin']);
  usage(['credential', 'add', 'n', '--provider', 'openai', '--secret', 'sk-on-argv']);
  usage(['credential', 'rotate']);
  usage(['credential', 'rotate', 'n', '--secret-env', 'X', '--secret-stdin']);
  usage(['credential', 'remove']);
  usage(['credential', 'show']);
});

test('help describes every new command and option', () => {
  const help = (args) => {
    const r = runTill([...args, '--help']);
    assert.equal(r.status, 0, r.stderr);
    return r.stdout;
  };
  const create = help(['key', 'create']);
  for (const o of ['--credential', '--rotate-every']) assert.ok(create.includes(o), o);
  for (const o of ['--grace', '--upstream-key-env', '--upstream-key-stdin', '--json']) {
    assert.ok(help(['key', 'rotate']).includes(o), o);
  }
  const credential = help(['credential']);
  for (const c of ['add', 'list', 'show', 'rotate', 'remove']) assert.match(credential, new RegExp(`^  ${c}\\s+\\S`, 'm'));
  for (const o of ['--provider', '--secret-env', '--secret-stdin', '--rotate-every']) {
    assert.ok(help(['credential', 'add']).includes(o), o);
  }
  assert.ok(help(['credential', 'remove']).includes('--force'));
  assert.ok(help(['run']).includes('--credential'));
  assert.ok(help(['env']).includes('--credential'));
});
