// Sign-in with an admin key (till_admin_…). The key is checked with GET /api/v1/keys?limit=1
// before it is kept; a refused key shows a message and nothing else.
import { useState } from 'preact/hooks';
import { ApiError, request } from '../api';
import { signIn } from '../session';

export function SignIn({ notice }: { notice: string | null }) {
  const [adminKey, setAdminKey] = useState('');
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  const submit = async (e: Event) => {
    e.preventDefault();
    const candidate = adminKey.trim();
    if (!candidate) {
      setError('Enter an admin key.');
      return;
    }
    setBusy(true);
    setError(null);
    try {
      await request('GET', '/api/v1/keys?limit=1', { adminKey: candidate });
      setAdminKey('');
      signIn(candidate);
    } catch (err) {
      if (err instanceof ApiError && (err.status === 401 || err.status === 403)) {
        setError(
          `That admin key was not accepted (${err.message}). Use the till_admin_… key that till init printed, or the one in TILL_ADMIN_KEY.`,
        );
      } else {
        setError(err instanceof Error ? err.message : String(err));
      }
    } finally {
      setBusy(false);
    }
  };

  return (
    <main class="signin" id="main">
      <form class="card signin-card" onSubmit={(e) => void submit(e)} noValidate>
        <div class="brand brand-large" aria-hidden="true">
          till
        </div>
        <h1>Sign in</h1>
        <p class="muted">
          The dashboard talks to till's API with an admin key. It is kept in this tab only and forgotten when
          the tab closes.
        </p>
        {notice && !error && (
          <p class="note warning" role="status">
            {notice}
          </p>
        )}
        <label for="admin-key">Admin key</label>
        <input
          id="admin-key"
          type="password"
          autoComplete="off"
          spellcheck={false}
          placeholder="till_admin_…"
          value={adminKey}
          onInput={(e) => setAdminKey(e.currentTarget.value)}
          aria-invalid={error ? true : undefined}
          aria-describedby={error ? 'signin-error' : undefined}
          autoFocus
        />
        {error && (
          <p id="signin-error" class="note error" role="alert">
            {error}
          </p>
        )}
        <button type="submit" class="button primary wide" disabled={busy}>
          {busy ? 'Checking…' : 'Sign in'}
        </button>
      </form>
    </main>
  );
}
