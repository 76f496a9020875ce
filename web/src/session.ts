// The signed-in admin key. It lives in sessionStorage only (gone when the tab closes, never in
// localStorage, a cookie or a URL) and in this module; components subscribe to changes.
//
// Signing out can carry a message for the sign-in screen ("your key stopped working"), which is
// kept in memory only.

const STORAGE_KEY = 'till.admin_key';

export interface SessionState {
  adminKey: string | null;
  // Why the last session ended, when it was not the user's choice.
  notice: string | null;
}

let state: SessionState = { adminKey: readStoredKey(), notice: null };
const listeners = new Set<() => void>();

function readStoredKey(): string | null {
  try {
    return sessionStorage.getItem(STORAGE_KEY);
  } catch {
    return null; // storage disabled: the user signs in again on reload
  }
}

function update(next: SessionState): void {
  state = next;
  for (const listener of listeners) listener();
}

export function session(): SessionState {
  return state;
}

export function subscribeSession(listener: () => void): () => void {
  listeners.add(listener);
  return () => listeners.delete(listener);
}

export function signIn(adminKey: string): void {
  try {
    sessionStorage.setItem(STORAGE_KEY, adminKey);
  } catch {
    // Without storage the key still works for this page's lifetime.
  }
  update({ adminKey, notice: null });
}

export function signOut(notice: string | null = null): void {
  try {
    sessionStorage.removeItem(STORAGE_KEY);
  } catch {
    // nothing stored
  }
  update({ adminKey: null, notice });
}
