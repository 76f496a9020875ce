// The create-key form: every field of POST /api/v1/keys. Only filled fields are sent, and till
// validates them: a 400 puts till's message next to the field it names (error.param) and focuses
// that field. On 201 the new token is shown once (TokenPanel).
import type { ComponentChildren } from 'preact';
import { useEffect, useLayoutEffect, useState } from 'preact/hooks';
import { ApiError, get, post } from '../api';
import { rememberKeys } from '../keyNames';
import { allProviders } from '../providers';
import { href, navigate } from '../router';
import type { Credential, IssuedKey } from '../types';
import { TokenPanel } from './TokenPanel';
import { ErrorNote, PageHeader } from './ui';

// The form's fields, named as POST /api/v1/keys names them, so error.param finds its field.
const FIELDS = [
  'provider',
  'name',
  'upstream_key',
  'credential',
  'max_requests',
  'max_tokens',
  'max_spend_usd',
  'expires_in',
  'models',
  'rpm',
  'max_concurrency',
  'allowed_cidrs',
  'rotate_every',
  'metadata',
] as const;
type FieldName = (typeof FIELDS)[number];
type Values = Record<FieldName, string>;

const EMPTY: Values = Object.fromEntries(FIELDS.map((f) => [f, ''])) as Values;
const INTEGER_FIELDS: readonly FieldName[] = ['max_requests', 'max_tokens', 'rpm', 'max_concurrency'];
const STRING_FIELDS: readonly FieldName[] = ['name', 'expires_in', 'rotate_every'];

const fieldId = (name: FieldName) => `create-${name}`;
const errorId = (name: FieldName) => `create-${name}-error`;

function isField(name: string | null): name is FieldName {
  return name !== null && (FIELDS as readonly string[]).includes(name);
}

function list(text: string): string[] {
  return text
    .split(/[,\n]/)
    .map((item) => item.trim())
    .filter((item) => item !== '');
}

// The request body: filled fields only. Whole numbers go as JSON numbers; anything else typed into
// a number field goes as typed, for till to refuse with its own message.
function requestBody(
  values: Values,
  source: 'upstream' | 'credential',
): { body: Record<string, unknown> } | { field: FieldName; message: string } {
  const body: Record<string, unknown> = { provider: values.provider };
  for (const field of STRING_FIELDS) {
    if (values[field].trim() !== '') body[field] = values[field].trim();
  }
  if (source === 'upstream' && values.upstream_key.trim() !== '')
    body.upstream_key = values.upstream_key.trim();
  if (source === 'credential' && values.credential !== '') body.credential = values.credential;
  for (const field of INTEGER_FIELDS) {
    const text = values[field].trim();
    if (text === '') continue;
    body[field] = /^-?\d{1,15}$/.test(text) ? Number(text) : text;
  }
  const spend = values.max_spend_usd.trim().replace(/^\$/, '');
  if (spend !== '') body.max_spend_usd = spend;
  for (const field of ['models', 'allowed_cidrs'] as const) {
    const items = list(values[field]);
    if (items.length > 0) body[field] = items;
  }
  if (values.metadata.trim() !== '') {
    try {
      body.metadata = JSON.parse(values.metadata);
    } catch (e) {
      return {
        field: 'metadata',
        message: `metadata: not valid JSON (${e instanceof Error ? e.message : String(e)})`,
      };
    }
  }
  return { body };
}

interface FieldProps {
  name: FieldName;
  label: string;
  hint?: ComponentChildren;
  error: string | undefined;
  children: (common: Record<string, unknown>) => ComponentChildren;
  wide?: boolean;
}

// A labelled field with its hint and, when till refused it, till's message right below it.
function Field({ name, label, hint, error, children, wide }: FieldProps) {
  const describedBy = [hint ? `${fieldId(name)}-hint` : '', error ? errorId(name) : '']
    .filter(Boolean)
    .join(' ');
  const common = {
    id: fieldId(name),
    name,
    'aria-invalid': error ? true : undefined,
    'aria-describedby': describedBy || undefined,
  };
  return (
    <div class={`field${wide ? ' wide' : ''}${error ? ' has-error' : ''}`} data-field={name}>
      <label for={fieldId(name)}>{label}</label>
      {children(common)}
      {hint && (
        <p class="hint" id={`${fieldId(name)}-hint`}>
          {hint}
        </p>
      )}
      {error && (
        <p class="field-error" id={errorId(name)} role="alert">
          {error}
        </p>
      )}
    </div>
  );
}

export function CreateKey() {
  const [values, setValues] = useState<Values>({ ...EMPTY, provider: 'openai' });
  const [source, setSource] = useState<'upstream' | 'credential'>('upstream');
  const [credentials, setCredentials] = useState<Credential[] | null>(null);
  const [errors, setErrors] = useState<Partial<Record<FieldName, string>>>({});
  const [formError, setFormError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const [issued, setIssued] = useState<IssuedKey | null>(null);
  const [focusField, setFocusField] = useState<FieldName | null>(null);

  useEffect(() => {
    const controller = new AbortController();
    get<{ credentials: Credential[] }>('/api/v1/credentials', controller.signal)
      .then((r) => setCredentials(r.credentials))
      .catch(() => setCredentials([]));
    return () => controller.abort();
  }, []);

  // Layout effect: the field has the focus by the time its message is painted.
  useLayoutEffect(() => {
    if (!focusField) return;
    document.getElementById(fieldId(focusField))?.focus();
    setFocusField(null);
  }, [focusField]);

  const set = (field: FieldName) => (e: Event) => {
    const value = (e.currentTarget as HTMLInputElement).value;
    setValues((v) => ({ ...v, [field]: value }));
    if (errors[field]) setErrors((errs) => ({ ...errs, [field]: undefined }));
  };

  const providerCredentials = (credentials ?? []).filter((c) => c.provider === values.provider);

  const submit = async (e: Event) => {
    e.preventDefault();
    if (busy) return;
    setErrors({});
    setFormError(null);
    const built = requestBody(values, source);
    if ('field' in built) {
      setErrors({ [built.field]: built.message });
      setFocusField(built.field);
      return;
    }
    setBusy(true);
    try {
      const created = await post<IssuedKey>('/api/v1/keys', built.body);
      rememberKeys([created]);
      setValues({ ...EMPTY, provider: values.provider });
      setIssued(created);
    } catch (err) {
      if (err instanceof ApiError && err.status === 400 && isField(err.param)) {
        // Without an upstream key till names upstream_key; with "vault credential" chosen the
        // field on screen is the credential select.
        const field: FieldName =
          err.param === 'upstream_key' && source === 'credential' ? 'credential' : err.param;
        setErrors({ [field]: err.message });
        setFocusField(field);
      } else {
        setFormError(err instanceof Error ? err.message : String(err));
      }
    } finally {
      setBusy(false);
    }
  };

  if (issued) {
    return (
      <>
        <PageHeader title="Key created" sub={<>{issued.name || issued.id}</>} />
        <TokenPanel
          issued={issued}
          title="Your new key"
          doneLabel="Done: view the key"
          onDone={() => navigate(href.key(issued.id))}
        />
      </>
    );
  }

  // A one-line text field (a function, not a component: a component defined here would be a new
  // type on every render, and remount, losing focus and caret).
  const textField = (
    name: FieldName,
    label: string,
    hint: ComponentChildren,
    { wide = false, ...extra }: { wide?: boolean; inputMode?: string; maxLength?: number } = {},
  ) => (
    <Field name={name} label={label} hint={hint} error={errors[name]} wide={wide}>
      {(common) => (
        <input
          type="text"
          {...common}
          autoComplete="off"
          {...extra}
          value={values[name]}
          onInput={set(name)}
        />
      )}
    </Field>
  );

  return (
    <>
      <PageHeader
        title="Create key"
        sub="A scoped key for one agent. Empty fields are left out: no limit, any model, never expires."
      />
      <form
        class="card form"
        onSubmit={(e) => void submit(e)}
        noValidate
        aria-describedby={formError ? 'create-form-error' : undefined}
      >
        <fieldset>
          <legend>Provider</legend>
          <div class="grid">
            <Field name="provider" label="Provider" error={errors.provider}>
              {(common) => (
                <select
                  {...common}
                  value={values.provider}
                  onChange={(e) => {
                    // A credential belongs to one provider: the choice does not carry over.
                    const provider = e.currentTarget.value;
                    setValues((v) => ({ ...v, provider, credential: '' }));
                  }}
                >
                  {allProviders().map((p) => (
                    <option key={p.name} value={p.name}>
                      {p.display_name}
                    </option>
                  ))}
                </select>
              )}
            </Field>
            {textField('name', 'Name', 'Up to 200 bytes, e.g. research-agent.', { maxLength: 200 })}
          </div>
          <div class="radio-row" role="radiogroup" aria-label="Upstream credential">
            <label class="radio">
              <input
                type="radio"
                name="source"
                value="upstream"
                checked={source === 'upstream'}
                onChange={() => setSource('upstream')}
              />
              Upstream API key (sealed into the token)
            </label>
            <label class="radio">
              <input
                type="radio"
                name="source"
                value="credential"
                checked={source === 'credential'}
                onChange={() => setSource('credential')}
              />
              Vault credential
            </label>
          </div>
          {source === 'upstream' ? (
            <Field
              name="upstream_key"
              label="Upstream API key"
              hint="The provider's real key. Sealed into the new token; till stores it nowhere."
              error={errors.upstream_key}
              wide
            >
              {(common) => (
                <input
                  type="password"
                  {...common}
                  autoComplete="off"
                  spellcheck={false}
                  value={values.upstream_key}
                  onInput={set('upstream_key')}
                />
              )}
            </Field>
          ) : (
            <Field
              name="credential"
              label="Vault credential"
              hint={
                credentials === null
                  ? 'Loading credentials…'
                  : providerCredentials.length === 0
                    ? `No vault credential for this provider yet (till credential add).`
                    : 'A provider key kept by till; replacing its secret reaches this key too.'
              }
              error={errors.credential}
              wide
            >
              {(common) => (
                <select {...common} value={values.credential} onChange={set('credential')}>
                  <option value="">Choose a credential</option>
                  {providerCredentials.map((c) => (
                    <option key={c.name} value={c.name}>
                      {c.name} ({c.key_count} {c.key_count === 1 ? 'key' : 'keys'})
                    </option>
                  ))}
                </select>
              )}
            </Field>
          )}
        </fieldset>

        <fieldset>
          <legend>Limits</legend>
          <div class="grid">
            {textField('max_requests', 'Max requests', 'Requests that reach the provider.', {
              inputMode: 'numeric',
            })}
            {textField('max_tokens', 'Max tokens', 'Input + output tokens.', { inputMode: 'numeric' })}
            {textField(
              'max_spend_usd',
              'Max spend (USD)',
              <>
                A decimal, e.g. <code>5.00</code>.
              </>,
              { inputMode: 'decimal' },
            )}
            {textField(
              'expires_in',
              'Expires in',
              <>
                A duration: <code>90m</code>, <code>24h</code>, <code>7d</code>.
              </>,
            )}
          </div>
        </fieldset>

        <fieldset>
          <legend>Scope</legend>
          <div class="grid">
            {textField(
              'models',
              'Models',
              <>
                Comma-separated, e.g. <code>gpt-4o-mini, gpt-4o</code>; empty allows any.
              </>,
              { wide: true },
            )}
            {textField('rpm', 'Requests per minute', undefined, { inputMode: 'numeric' })}
            {textField('max_concurrency', 'Max concurrency', 'Requests in flight at once.', {
              inputMode: 'numeric',
            })}
            {textField(
              'allowed_cidrs',
              'Allowed client addresses',
              <>
                Comma-separated CIDRs: <code>10.0.0.0/8, ::1</code>.
              </>,
              { wide: true },
            )}
          </div>
        </fieldset>

        <fieldset>
          <legend>Rotation and metadata</legend>
          <div class="grid">
            {textField(
              'rotate_every',
              'Rotate every',
              <>
                Each token is refused this long after issue (at least <code>1m</code>).
              </>,
            )}
            <Field
              name="metadata"
              label="Metadata (JSON object)"
              hint={
                <>
                  e.g. <code>{'{"team": "research"}'}</code>; stored as given, up to 16 KiB.
                </>
              }
              error={errors.metadata}
              wide
            >
              {(common) => (
                <textarea
                  {...common}
                  rows={3}
                  spellcheck={false}
                  value={values.metadata}
                  onInput={set('metadata')}
                />
              )}
            </Field>
          </div>
        </fieldset>

        {formError && <ErrorNote>{<span id="create-form-error">{formError}</span>}</ErrorNote>}
        <div class="form-actions">
          <a class="button" href={href.keys}>
            Cancel
          </a>
          <button type="submit" class="button primary" disabled={busy}>
            {busy ? 'Creating…' : 'Create key'}
          </button>
        </div>
      </form>
    </>
  );
}
