/**
 * The console: log in with a user and password (the SDK keeps the token in memory and refreshes it),
 * then SQL, live view, schema, jobs, subscriptions, sessions, users and audit pages. Everything goes
 * through the public HTTP and WebSocket API with @kalamdb/client.
 */
import { render } from 'preact';
import { useState } from 'preact/hooks';
import { createClient, type KalamClient } from '@kalamdb/client';
import { SqlPage, forgetHistory } from './sql-page.js';
import { LivePage } from './live-page.js';
import { SchemaPage } from './schema-page.js';
import { AuditPage, SessionsPage, SubscriptionsPage } from './admin-pages.js';
import { JobsPage } from './jobs-page.js';
import { UsersPage } from './users-page.js';
import { detectRole, type ConsoleRole } from './role.js';
import { errorText } from './errors.js';

const PAGES = {
  SQL: SqlPage, Live: LivePage, Schema: SchemaPage, Jobs: JobsPage, Subscriptions: SubscriptionsPage,
  Sessions: SessionsPage, Users: UsersPage, Audit: AuditPage,
} as const;
type PageName = keyof typeof PAGES;
const KEPT: ReadonlySet<PageName> = new Set(['SQL', 'Live']);

function Login({ onLogin }: { onLogin: (client: KalamClient, user: string, role: ConsoleRole) => void }): preact.JSX.Element {
  const [user, setUser] = useState('');
  const [password, setPassword] = useState('');
  const [error, setError] = useState<string | null>(null);
  const submit = async (e: Event): Promise<void> => {
    e.preventDefault();
    const client = createClient({ url: location.origin, auth: { user, password } });
    try {
      // One authenticated round trip proves the credentials before the console opens.
      await client.query('SELECT 1');
      onLogin(client, user, await detectRole(client, user));
    } catch (err) {
      setError(errorText(err));
      await client.disconnect().catch(() => undefined);
    }
  };
  return (
    <form class="panel login" onSubmit={(e) => void submit(e)}>
      <b>KalamDB console</b>
      <label for="user">User</label>
      <input id="user" data-testid="user" autocomplete="username" value={user} onInput={(e) => setUser((e.target as HTMLInputElement).value)} />
      <label for="password">Password</label>
      <input id="password" data-testid="password" type="password" autocomplete="current-password" value={password} onInput={(e) => setPassword((e.target as HTMLInputElement).value)} />
      <div class="row"><button class="primary" data-testid="login" type="submit">Log in</button></div>
      {error !== null && <div class="error" data-testid="login-error">{error}</div>}
    </form>
  );
}

function App(): preact.JSX.Element {
  const [session, setSession] = useState<{ client: KalamClient; user: string; role: ConsoleRole } | null>(null);
  const [page, setPage] = useState<PageName>('SQL');
  const [visited, setVisited] = useState<ReadonlySet<PageName>>(new Set(['SQL']));
  if (session === null) return <Login onLogin={(client, user, role) => setSession({ client, user, role })} />;
  const show = (p: PageName): void => {
    setPage(p);
    setVisited((v) => new Set([...v, p]));
    // A role changed by an admin elsewhere shows up on the next page switch (header and offered actions).
    const { client, user, role } = session;
    void detectRole(client, user).then((now) => {
      if (now !== role) setSession((cur) => (cur !== null && cur.client === client ? { ...cur, role: now } : cur));
    });
  };
  // The editor and the live view keep their state (and the live subscription) while other pages are
  // shown; the polling pages exist only while shown.
  const mounted = (Object.keys(PAGES) as PageName[]).filter((p) => p === page || (KEPT.has(p) && visited.has(p)));
  return (
    <div>
      <header>
        <b>KalamDB</b>
        <nav>{(Object.keys(PAGES) as PageName[]).map((p) => <button key={p} data-testid={`nav-${p}`} class={p === page ? 'on' : ''} onClick={() => show(p)}>{p}</button>)}</nav>
        <span class="who" data-testid="who">{session.user} ({session.role === 'other' ? 'no admin role' : session.role})</span>
        <button class="act" onClick={() => { void session.client.disconnect(); forgetHistory(); setSession(null); }}>Log out</button>
      </header>
      <main>{mounted.map((p) => {
        const Page = PAGES[p];
        return <div key={p} style={{ display: p === page ? '' : 'none' }}><Page client={session.client} role={session.role} user={session.user} /></div>;
      })}</main>
    </div>
  );
}

render(<App />, document.getElementById('app')!);
