// The HTTP client for till's control-plane API (/api/v1): adds the admin key, turns till's error
// body {"error":{"message","type","code","param"}} into an ApiError, and signs the session out on
// a 401 (an admin key that stopped working must not leave stale data on screen).
//
// Every request goes to this page's own origin: paths only, never absolute URLs.

import { session, signOut } from './session';

export class ApiError extends Error {
  constructor(
    message: string,
    readonly status: number,
    readonly code: string | null = null,
    readonly param: string | null = null,
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

export function isAbortError(error: unknown): boolean {
  return error instanceof DOMException && error.name === 'AbortError';
}

interface RequestOptions {
  body?: unknown;
  signal?: AbortSignal;
  // The admin key to use instead of the session's: the sign-in check, before there is a session.
  adminKey?: string;
}

async function errorFrom(response: Response): Promise<ApiError> {
  let message = `${response.status} ${response.statusText}`.trim();
  let code: string | null = null;
  let param: string | null = null;
  try {
    const body: unknown = await response.json();
    const error = (body as { error?: Record<string, unknown> } | null)?.error;
    if (error && typeof error.message === 'string') message = error.message;
    if (error && typeof error.code === 'string') code = error.code;
    if (error && typeof error.param === 'string' && error.param !== '') param = error.param;
  } catch {
    // not JSON (a proxy in front of till, say): keep the status line
  }
  return new ApiError(message, response.status, code, param);
}

export async function request<T>(method: string, path: string, options: RequestOptions = {}): Promise<T> {
  const signedIn = options.adminKey === undefined;
  const adminKey = options.adminKey ?? session().adminKey;
  if (!adminKey) throw new ApiError('Not signed in.', 401);

  const headers: Record<string, string> = { authorization: `Bearer ${adminKey}`, accept: 'application/json' };
  const init: RequestInit = { method, headers, cache: 'no-store', credentials: 'omit', redirect: 'error' };
  if (options.signal) init.signal = options.signal;
  if (options.body !== undefined) {
    headers['content-type'] = 'application/json';
    init.body = JSON.stringify(options.body);
  }

  let response: Response;
  try {
    response = await fetch(path, init);
  } catch (error) {
    if (isAbortError(error)) throw error;
    throw new ApiError('Could not reach till. Is the server running?', 0);
  }
  if (!response.ok) {
    const error = await errorFrom(response);
    // Only a key that was accepted before is signed out here; the sign-in form shows its own 401.
    if (response.status === 401 && signedIn && session().adminKey === adminKey) {
      signOut(`You were signed out: till stopped accepting the admin key (${error.message}).`);
    }
    throw error;
  }
  return (await response.json()) as T;
}

export const get = <T>(path: string, signal?: AbortSignal): Promise<T> =>
  request<T>('GET', path, signal ? { signal } : {});

export const post = <T>(path: string, body?: unknown): Promise<T> =>
  request<T>('POST', path, body === undefined ? {} : { body });

export const del = <T>(path: string): Promise<T> => request<T>('DELETE', path);

// A query string from the parameters that have a value ('' and undefined are left out).
export function query(params: Record<string, string | number | boolean | undefined | null>): string {
  const search = new URLSearchParams();
  for (const [name, value] of Object.entries(params)) {
    if (value !== undefined && value !== null && value !== '') search.set(name, String(value));
  }
  const text = search.toString();
  return text ? `?${text}` : '';
}

// A path segment for an id that came from the API or the location hash.
export const segment = (id: string): string => encodeURIComponent(id);
