// Live data: usePoll loads something now and again every `intervalMs` (2 s by default) while the
// tab is visible, without remounting anything, so focus, scroll and half-typed form input survive
// each refresh. A hidden tab makes no requests; it refreshes as soon as it is shown again.
//
// Loads never overlap: the next one is scheduled when the previous one ends. When `deps` change
// (another key, another range) the request in flight is aborted, so an old answer never lands on
// a new page, and the data is cleared (or, with keepData, kept on screen until the new answer
// replaces it: for filters, where a blank table between two answers would only flash).
import { useCallback, useEffect, useRef, useState } from 'preact/hooks';
import { isAbortError } from './api';

export const POLL_INTERVAL_MS = 2000;

export interface Polled<T> {
  data: T | undefined;
  error: Error | undefined;
  // Loads again now (after an action changed what the page shows).
  refresh: () => void;
}

export interface PollOptions {
  intervalMs?: number;
  keepData?: boolean;
}

export function usePoll<T>(
  load: (signal: AbortSignal) => Promise<T>,
  deps: readonly unknown[],
  { intervalMs = POLL_INTERVAL_MS, keepData = false }: PollOptions = {},
): Polled<T> {
  const [data, setData] = useState<T | undefined>(undefined);
  const [error, setError] = useState<Error | undefined>(undefined);
  const loadRef = useRef(load);
  loadRef.current = load;
  const refreshRef = useRef<() => void>(() => {});

  useEffect(() => {
    if (!keepData) setData(undefined);
    setError(undefined);
    const controller = new AbortController();
    let timer: ReturnType<typeof setTimeout> | undefined;
    let running = false;
    let again = false; // a refresh asked for while a load was running

    const schedule = () => {
      clearTimeout(timer);
      timer = setTimeout(tick, intervalMs);
    };
    const tick = async () => {
      if (controller.signal.aborted) return;
      if (running) {
        again = true;
        return;
      }
      if (document.hidden) return; // visibilitychange restarts the loop
      running = true;
      try {
        const value = await loadRef.current(controller.signal);
        if (controller.signal.aborted) return;
        setData(value);
        setError(undefined);
      } catch (e) {
        if (controller.signal.aborted || isAbortError(e)) return;
        setError(e instanceof Error ? e : new Error(String(e)));
      } finally {
        running = false;
      }
      if (again) {
        again = false;
        void tick();
      } else {
        schedule();
      }
    };
    const onVisibility = () => {
      if (!document.hidden) {
        clearTimeout(timer);
        void tick();
      }
    };
    refreshRef.current = () => {
      clearTimeout(timer);
      void tick();
    };

    document.addEventListener('visibilitychange', onVisibility);
    void tick();
    return () => {
      controller.abort();
      clearTimeout(timer);
      document.removeEventListener('visibilitychange', onVisibility);
    };
    // The caller's deps, not `load`: a new closure every render must not restart the loop.
  }, [...deps, intervalMs]);

  const refresh = useCallback(() => refreshRef.current(), []);
  return { data, error, refresh };
}
