// The shell: sign-in until there is an admin key, then the header, the navigation and the page
// the location hash names.
import { useEffect, useRef, useState } from 'preact/hooks';
import { loadProviders } from '../providers';
import { session, signOut, subscribeSession } from '../session';
import { href, useRoute, type Route } from '../router';
import { SignIn } from './SignIn';
import { Overview } from './Overview';
import { KeysPage } from './KeysPage';
import { CreateKey } from './CreateKey';
import { KeyDetail } from './KeyDetail';
import { AlertsPage } from './AlertsPage';
import { ErrorNote, Loading, PageHeader } from './ui';

function useSession() {
  const [state, setState] = useState(session());
  useEffect(() => subscribeSession(() => setState(session())), []);
  return state;
}

function Page({ route }: { route: Route }) {
  switch (route.page) {
    case 'overview':
      return <Overview />;
    case 'keys':
      return <KeysPage />;
    case 'create':
      return <CreateKey />;
    case 'key':
      return <KeyDetail id={route.id} key={route.id} />;
    case 'alerts':
      return <AlertsPage />;
    case 'not-found':
      return (
        <>
          <PageHeader title="Not found" />
          <p>
            There is no page at <code>#{route.path}</code>. Go to the <a href={href.overview}>overview</a>.
          </p>
        </>
      );
  }
}

const NAV: { label: string; to: string; active: (r: Route) => boolean }[] = [
  { label: 'Overview', to: href.overview, active: (r) => r.page === 'overview' },
  {
    label: 'Keys',
    to: href.keys,
    active: (r) => r.page === 'keys' || r.page === 'key' || r.page === 'create',
  },
  { label: 'Alerts', to: href.alerts, active: (r) => r.page === 'alerts' },
];

export function App() {
  const { adminKey, notice } = useSession();
  const route = useRoute();
  const mainRef = useRef<HTMLElement>(null);
  const firstRoute = useRef(true);

  // After navigating, move focus to the new page's heading so keyboard and screen-reader users
  // start there (not on the first load: the browser's own start is right then).
  useEffect(() => {
    if (firstRoute.current) {
      firstRoute.current = false;
      return;
    }
    mainRef.current?.querySelector<HTMLElement>('h1')?.focus();
    window.scrollTo(0, 0);
  }, [route.page, route.page === 'key' ? route.id : '']);

  // The provider table (names, SDK variables) is loaded once per sign-in, before any page.
  const [providers, setProviders] = useState<{ key: string; error?: Error } | null>(null);
  useEffect(() => {
    if (!adminKey) return;
    const controller = new AbortController();
    loadProviders(controller.signal).then(
      () => setProviders({ key: adminKey }),
      (error: unknown) => {
        if (!controller.signal.aborted) {
          setProviders({ key: adminKey, error: error instanceof Error ? error : new Error(String(error)) });
        }
      },
    );
    return () => controller.abort();
  }, [adminKey]);

  if (!adminKey) return <SignIn notice={notice} />;
  if (providers?.key !== adminKey) return <Loading what="till's providers" />;
  if (providers.error) {
    return (
      <main class="content">
        <ErrorNote error={`Could not load till's providers: ${providers.error.message}`} />
        <button type="button" class="button" onClick={() => signOut()}>
          Sign out
        </button>
      </main>
    );
  }

  return (
    <>
      {/* A button, not an <a href="#main">: the hash is the router's. */}
      <button
        type="button"
        class="skip-link"
        onClick={() => mainRef.current?.querySelector<HTMLElement>('h1')?.focus()}
      >
        Skip to content
      </button>
      <header class="topbar">
        <div class="topbar-inner">
          <a class="brand" href={href.overview}>
            till
          </a>
          <nav aria-label="Main">
            <ul>
              {NAV.map((item) => (
                <li key={item.to}>
                  <a href={item.to} aria-current={item.active(route) ? 'page' : undefined}>
                    {item.label}
                  </a>
                </li>
              ))}
            </ul>
          </nav>
          <button type="button" class="button subtle signout" onClick={() => signOut()}>
            Sign out
          </button>
        </div>
      </header>
      <main id="main" ref={mainRef} class="content">
        <Page route={route} />
      </main>
    </>
  );
}
