// The providers till proxies, and the environment that points each one's SDKs at till: a mirror
// of src/provider/provider_table.cc (names and api_key_env) and src/cli/sdk_environment.cc (the
// variables `till env` prints). Keep the three in step.

export interface Provider {
  name: string;
  displayName: string;
  // The variable the provider's SDKs read the key from.
  apiKeyEnv: string;
  dialect: 'openai' | 'anthropic' | 'gemini' | 'cohere';
}

export const PROVIDERS: readonly Provider[] = [
  { name: 'openai', displayName: 'OpenAI', apiKeyEnv: 'OPENAI_API_KEY', dialect: 'openai' },
  { name: 'anthropic', displayName: 'Anthropic', apiKeyEnv: 'ANTHROPIC_API_KEY', dialect: 'anthropic' },
  { name: 'google', displayName: 'Google Gemini', apiKeyEnv: 'GEMINI_API_KEY', dialect: 'gemini' },
  { name: 'openrouter', displayName: 'OpenRouter', apiKeyEnv: 'OPENROUTER_API_KEY', dialect: 'openai' },
  { name: 'mistral', displayName: 'Mistral', apiKeyEnv: 'MISTRAL_API_KEY', dialect: 'openai' },
  { name: 'groq', displayName: 'Groq', apiKeyEnv: 'GROQ_API_KEY', dialect: 'openai' },
  { name: 'together', displayName: 'Together AI', apiKeyEnv: 'TOGETHER_API_KEY', dialect: 'openai' },
  { name: 'fireworks', displayName: 'Fireworks AI', apiKeyEnv: 'FIREWORKS_API_KEY', dialect: 'openai' },
  { name: 'perplexity', displayName: 'Perplexity', apiKeyEnv: 'PERPLEXITY_API_KEY', dialect: 'openai' },
  { name: 'deepseek', displayName: 'DeepSeek', apiKeyEnv: 'DEEPSEEK_API_KEY', dialect: 'openai' },
  { name: 'xai', displayName: 'xAI', apiKeyEnv: 'XAI_API_KEY', dialect: 'openai' },
  { name: 'cohere', displayName: 'Cohere', apiKeyEnv: 'CO_API_KEY', dialect: 'cohere' },
];

export function findProvider(name: string): Provider | undefined {
  return PROVIDERS.find((p) => p.name === name);
}

export function providerLabel(name: string): string {
  return findProvider(name)?.displayName ?? name;
}

// The base URL an SDK of `provider` takes through till at `tillUrl` (sdk_base_url).
export function sdkBaseUrl(tillUrl: string, provider: Provider): string {
  const base = `${tillUrl}/proxy/${provider.name}`;
  if (provider.dialect !== 'openai' || provider.name === 'perplexity') return base;
  return `${base}/v1`;
}

// Variable → value, as sdk_environment() builds them.
export function sdkEnvironment(tillUrl: string, provider: Provider, token: string): Map<string, string> {
  const vars = new Map<string, string>([
    ['TILL_KEY', token],
    ['TILL_BASE_URL', tillUrl],
  ]);
  const base = sdkBaseUrl(tillUrl, provider);
  vars.set(provider.apiKeyEnv, token);
  if (provider.name === 'google') {
    vars.set('GOOGLE_API_KEY', token);
    vars.set('GOOGLE_GEMINI_BASE_URL', base);
  } else {
    // OPENAI_API_KEY → OPENAI_BASE_URL, GROQ_API_KEY → GROQ_BASE_URL, CO_API_KEY → CO_BASE_URL.
    vars.set(`${provider.apiKeyEnv.slice(0, provider.apiKeyEnv.lastIndexOf('_API_KEY'))}_BASE_URL`, base);
  }
  if (provider.dialect === 'openai' && provider.name !== 'openai') {
    // Agents built on the OpenAI SDK reach OpenAI-compatible providers through its variables.
    vars.set('OPENAI_API_KEY', token);
    vars.set('OPENAI_BASE_URL', base);
  }
  return vars;
}

// 'value' for a POSIX shell: single quotes, each ' written as '\''.
function shellQuote(value: string): string {
  return `'${value.replaceAll("'", `'\\''`)}'`;
}

// The export lines `till env` prints, in the same (sorted) order.
export function exportSnippet(tillUrl: string, providerName: string, token: string): string {
  const provider = findProvider(providerName);
  if (!provider) return `export TILL_BASE_URL=${shellQuote(tillUrl)}\nexport TILL_KEY=${shellQuote(token)}`;
  const vars = sdkEnvironment(tillUrl, provider, token);
  return [...vars.keys()]
    .sort()
    .map((name) => `export ${name}=${shellQuote(vars.get(name) ?? '')}`)
    .join('\n');
}
