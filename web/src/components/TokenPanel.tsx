// The new token of a created or rotated key, shown once: till keeps only its hash. The token
// lives in the caller's component state and nowhere else (no URL, no storage, no console); it is
// gone once the panel is dismissed or the page changes.
import { useRef } from 'preact/hooks';
import { exportSnippet, providerLabel } from '../providers';
import type { IssuedKey } from '../types';
import { CopyButton, Time } from './ui';

export function TokenPanel({
  issued,
  title,
  onDone,
  doneLabel,
}: {
  issued: IssuedKey;
  title: string;
  onDone: () => void;
  doneLabel: string;
}) {
  const tokenRef = useRef<HTMLElement>(null);
  const snippetRef = useRef<HTMLPreElement>(null);
  const snippet = exportSnippet(location.origin, issued.provider, issued.key);
  return (
    <section class="card token-panel" aria-labelledby="token-title">
      <h2 id="token-title">{title}</h2>
      <p>
        Copy the key now: <strong>this is the only time till shows it.</strong> till keeps only a hash, so a
        lost key cannot be shown again (rotate it for a new one).
      </p>
      <div class="token-row">
        <code ref={tokenRef} class="token" aria-label="New key token">
          {issued.key}
        </code>
        <CopyButton text={issued.key} fallbackTarget={() => tokenRef.current} label="Copy key" />
      </div>
      {issued.previous_token_valid_until && (
        <p class="muted">
          The previous token keeps working until{' '}
          <Time at={issued.previous_token_valid_until} seconds relative />.
        </p>
      )}
      <h3>Point the {providerLabel(issued.provider)} SDKs at till</h3>
      <p class="muted">
        Paste into a shell, or the agent's environment (the same lines as <code>till env</code>):
      </p>
      <pre ref={snippetRef} class="snippet" aria-label="Export snippet">
        {snippet}
      </pre>
      <div class="token-actions">
        <CopyButton text={snippet} fallbackTarget={() => snippetRef.current} label="Copy snippet" />
        <button type="button" class="button primary" onClick={onDone}>
          {doneLabel}
        </button>
      </div>
    </section>
  );
}
