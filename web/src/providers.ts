// The providers till proxies, and the environment that points each one's SDKs at till, as
// GET /api/v1/providers gives them: src/provider/sdk_environment.cc is the one table of variables
// (`till env` and `till run` use it too). The app loads them once after signing in (App) and the
// pages read them synchronously.
import { get } from './api';

export interface Provider {
  name: string;
  display_name: string;
  // The variable the provider's SDKs read the key from.
  api_key_env: string;
  // Variable → value, with the placeholders {till_url} (where the SDK reaches till) and {key}.
  environment: Record<string, string>;
}

let providers: readonly Provider[] = [];

export async function loadProviders(signal?: AbortSignal): Promise<void> {
  providers = (await get<{ providers: Provider[] }>('/api/v1/providers', signal)).providers;
}

export function allProviders(): readonly Provider[] {
  return providers;
}

export function providerLabel(name: string): string {
  return providers.find((p) => p.name === name)?.display_name ?? name;
}

// 'value' for a POSIX shell: single quotes, each ' written as '\''.
function shellQuote(value: string): string {
  return `'${value.replaceAll("'", `'\\''`)}'`;
}

// The export lines `till env` prints, in the same (sorted) order, for a key of `providerName`
// whose token is `token`, on the till at `tillUrl`.
export function exportSnippet(tillUrl: string, providerName: string, token: string): string {
  const environment = providers.find((p) => p.name === providerName)?.environment ?? {
    TILL_BASE_URL: '{till_url}',
    TILL_KEY: '{key}',
  };
  const fill = (value: string) => value.replaceAll('{till_url}', tillUrl).replaceAll('{key}', token);
  return Object.keys(environment)
    .sort()
    .map((name) => `export ${name}=${shellQuote(fill(environment[name] ?? ''))}`)
    .join('\n');
}
