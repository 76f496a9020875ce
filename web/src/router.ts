// Hash routing: the server serves only / and /assets/*, so every page lives after the '#'.
//   #/            overview
//   #/keys        the key table
//   #/keys/new    the create-key form
//   #/keys/<id>   one key
//   #/alerts      alerts
import { useEffect, useState } from 'preact/hooks';

export type Route =
  | { page: 'overview' }
  | { page: 'keys' }
  | { page: 'create' }
  | { page: 'key'; id: string }
  | { page: 'alerts' }
  | { page: 'not-found'; path: string };

// Key ids are "key_" + base62 (src/api/control_plane.cc); nothing else reaches the API as an id.
export const KEY_ID = /^key_[A-Za-z0-9]{1,60}$/;

export function parseRoute(hash: string): Route {
  const path = hash.replace(/^#/, '').replace(/\/+$/, '') || '/';
  if (path === '/') return { page: 'overview' };
  if (path === '/keys') return { page: 'keys' };
  if (path === '/keys/new') return { page: 'create' };
  if (path === '/alerts') return { page: 'alerts' };
  const key = /^\/keys\/([^/]+)$/.exec(path);
  if (key?.[1] && KEY_ID.test(key[1])) return { page: 'key', id: key[1] };
  return { page: 'not-found', path };
}

export const href = {
  overview: '#/',
  keys: '#/keys',
  create: '#/keys/new',
  key: (id: string) => `#/keys/${id}`,
  alerts: '#/alerts',
};

export function navigate(to: string): void {
  location.hash = to;
}

export function useRoute(): Route {
  const [route, setRoute] = useState(() => parseRoute(location.hash));
  useEffect(() => {
    const onChange = () => setRoute(parseRoute(location.hash));
    window.addEventListener('hashchange', onChange);
    return () => window.removeEventListener('hashchange', onChange);
  }, []);
  return route;
}
