// Test harness: runs the real `till` binary (TILL_BIN) on an ephemeral port with a fresh data
// dir, and its CLI. Waits on conditions with deadlines, never on fixed sleeps.
import { spawn, spawnSync } from 'node:child_process';
import { after } from 'node:test';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const TILL_BIN = process.env.TILL_BIN;

// The line `till serve` logs once it accepts connections. The " (" after the URL makes sure the
// whole URL has arrived, not a prefix split across two reads of the pipe.
export const LISTENING = /listening on (http:\/\/\S+) \(/;

// Servers still running after the file's tests (a failed assertion skips its cleanup) are
// killed, so they do not keep the test runner waiting. Import this module at the top level of a
// test file: the hook belongs to whatever test is running when it is first imported.
const live = new Set();
after(() => { for (const proc of live) proc.kill('SIGKILL'); });

function tillBin() {
  if (!TILL_BIN) throw new Error('TILL_BIN is not set: run these tests through ctest');
  return TILL_BIN;
}

export function tempDir(prefix = 'till-test-') {
  return mkdtempSync(join(tmpdir(), prefix));
}

// Polls `condition` until it returns a truthy value or `timeoutMs` passes.
export async function waitFor(condition, { timeoutMs = 10000, intervalMs = 10, what = 'condition' } = {}) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await condition();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

// Runs the CLI synchronously; returns { status, stdout, stderr }.
export function runTill(args, { env = {}, input } = {}) {
  const r = spawnSync(tillBin(), args, {
    env: { PATH: process.env.PATH, ...env },
    input,
    encoding: 'utf8',
    timeout: 30000,
  });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr, signal: r.signal };
}

// `till init` in a new data dir; returns { dataDir, adminKey }.
export function initDataDir(dataDir = tempDir(), env = {}) {
  const r = runTill(['init', '--data-dir', dataDir], { env });
  if (r.status !== 0) throw new Error(`till init failed (${r.status}): ${r.stderr}`);
  return { dataDir, adminKey: r.stdout.trim() };
}

// A running `till serve`. Use start() to create one.
export class TillServer {
  constructor(proc, dataDir, adminKey) {
    this.proc = proc;
    this.dataDir = dataDir;
    this.adminKey = adminKey;
    this.stderr = '';
    this.url = null;
    this.exit = new Promise((resolve) => proc.on('exit', (code, signal) => {
      live.delete(proc);
      resolve({ code, signal });
    }));
    live.add(proc);
    proc.stderr.setEncoding('utf8');
    proc.stderr.on('data', (chunk) => { this.stderr += chunk; });
  }

  // Starts a server; `args` are extra `serve` arguments. With no dataDir, a fresh one is
  // initialised first so the admin key is known.
  static async start({ dataDir, adminKey, args = [], env = {} } = {}) {
    if (!dataDir) ({ dataDir, adminKey } = initDataDir(tempDir(), env));
    const proc = spawn(tillBin(), ['serve', '--data-dir', dataDir, '--listen', '127.0.0.1:0', ...args], {
      env: { PATH: process.env.PATH, ...env },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    const server = new TillServer(proc, dataDir, adminKey);
    let exited = null;
    server.exit.then((e) => { exited = e; });
    await waitFor(() => {
      if (exited) throw new Error(`till serve exited early (${JSON.stringify(exited)}): ${server.stderr}`);
      const m = server.stderr.match(LISTENING);
      return m && (server.url = m[1]);
    }, { what: 'till serve to listen' });
    return server;
  }

  // fetch() against the server with the admin key unless `auth` is given (null = no header).
  async api(method, path, { body, auth = this.adminKey, headers = {} } = {}) {
    const h = { ...headers };
    if (auth) h.authorization = `Bearer ${auth}`;
    if (body !== undefined) h['content-type'] = 'application/json';
    const res = await fetch(this.url + path, {
      method,
      headers: h,
      body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
    });
    const text = await res.text();
    let json = null;
    try { json = JSON.parse(text); } catch { /* not JSON */ }
    return { status: res.status, headers: res.headers, json, text };
  }

  cliEnv(extra = {}) {
    return { TILL_URL: this.url, TILL_ADMIN_KEY: this.adminKey, ...extra };
  }

  async stop(signal = 'SIGTERM') {
    if (this.proc.exitCode === null && this.proc.signalCode === null) this.proc.kill(signal);
    return this.exit;
  }

  async kill9() {
    return this.stop('SIGKILL');
  }

  cleanup() {
    rmSync(this.dataDir, { recursive: true, force: true });
  }
}

export const UPSTREAM_SECRET = 'sk-test-UPSTREAM-5f4dcc3b5aa765d61d8327deb882cf99';

// Creates a scoped key through REST; returns the 201 body.
export async function createKey(server, fields = {}) {
  const res = await server.api('POST', '/api/v1/keys', {
    body: { provider: 'openai', upstream_key: UPSTREAM_SECRET, ...fields },
  });
  if (res.status !== 201) throw new Error(`create key: ${res.status} ${res.text}`);
  return res.json;
}
