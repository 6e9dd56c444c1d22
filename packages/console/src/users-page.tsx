/**
 * Users and roles (dba/system): list accounts, create one (name, password, role, email), change its
 * role, reset its password, drop it, with the statements of docs/sql.md. dba manage user and service
 * accounts, system every account: the page offers only what the logged-in role may do (the server
 * refuses the rest anyway) and shows refusals with their code.
 */
import { useState } from 'preact/hooks';
import { errorText } from './errors.js';
import { useQuery } from './use-query.js';
import { isAdmin, records, type ConsoleRole, type PageProps } from './role.js';
import { cellText, sqlString } from './sql-text.js';

const USERS_SQL = 'SELECT user_id, role, email, created_at, updated_at, deleted_at FROM system.users ORDER BY user_id';
const ROLES = ['user', 'service', 'dba', 'system'] as const;
type Role = (typeof ROLES)[number];

/** The roles an account managed by `actor` may have (docs/sql.md, "Users and impersonation"). */
const grantable = (actor: ConsoleRole): readonly Role[] => (actor === 'system' ? ROLES : actor === 'dba' ? ['user', 'service'] : []);
const manages = (actor: ConsoleRole, target: unknown): boolean => grantable(actor).includes(target as Role);

const inputValue = (e: Event): string => (e.target as HTMLInputElement).value;

function RoleSelect({ actor, value, onChange, testId }: { actor: ConsoleRole; value: Role; onChange: (r: Role) => void; testId: string }): preact.JSX.Element {
  return (
    <select data-testid={testId} value={value} onChange={(e) => onChange(inputValue(e) as Role)} style={{ width: 'auto' }}>
      {grantable(actor).map((r) => <option key={r} value={r}>{r}</option>)}
    </select>
  );
}

export function UsersPage({ client, role }: PageProps): preact.JSX.Element {
  const { result, error, load } = useQuery(client, USERS_SQL);
  const users = result === null ? null : records(result);
  const [notice, setNotice] = useState<{ ok: boolean; text: string } | null>(null);
  const [form, setForm] = useState({ name: '', password: '', role: 'user' as Role, email: '' });
  const [editing, setEditing] = useState<{ name: string; role: Role; password: string; confirmDrop: boolean } | null>(null);

  /** Runs one statement, shows its message or its error (with the code), reloads the list. */
  const run = async (sql: string, after?: () => void): Promise<void> => {
    try {
      const res = await client.query(sql);
      setNotice({ ok: true, text: res.results[0]?.message ?? 'done' });
      after?.();
    } catch (e) {
      setNotice({ ok: false, text: errorText(e) });
    }
    await load();
  };

  const create = (e: Event): void => {
    e.preventDefault();
    const email = form.email.trim() === '' ? '' : ` EMAIL ${sqlString(form.email.trim())}`;
    void run(`CREATE USER ${sqlString(form.name.trim())} WITH PASSWORD ${sqlString(form.password)} ROLE ${form.role}${email}`,
      () => setForm({ name: '', password: '', role: 'user', email: '' }));
  };

  return (
    <div data-testid="users">
      {isAdmin(role) ? (
        <form class="panel" data-testid="create-user-form" onSubmit={create}>
          <b>Create user</b>
          <div class="row">
            <input data-testid="new-user-name" placeholder="name" autocomplete="off" value={form.name} onInput={(e) => setForm({ ...form, name: inputValue(e) })} style={{ width: '160px' }} />
            <input data-testid="new-user-password" type="password" placeholder="password (8+ characters)" autocomplete="new-password" value={form.password} onInput={(e) => setForm({ ...form, password: inputValue(e) })} style={{ width: '200px' }} />
            <RoleSelect actor={role} value={form.role} onChange={(r) => setForm({ ...form, role: r })} testId="new-user-role" />
            <input data-testid="new-user-email" placeholder="email (optional)" value={form.email} onInput={(e) => setForm({ ...form, email: inputValue(e) })} style={{ width: '200px' }} />
            <button class="primary" type="submit" data-testid="create-user">Create</button>
          </div>
        </form>
      ) : (
        <div class="panel muted" data-testid="users-readonly">Managing users needs role dba or system.</div>
      )}
      {editing !== null && (
        <form class="panel" data-testid="edit-user" onSubmit={(e) => e.preventDefault()}>
          <b>{editing.name}</b>
          <div class="row">
            <RoleSelect actor={role} value={editing.role} onChange={(r) => setEditing({ ...editing, role: r })} testId="edit-role" />
            <button type="button" class="act" data-testid="set-role" onClick={() => void run(`ALTER USER ${sqlString(editing.name)} SET ROLE ${editing.role}`)}>Set role</button>
            <input data-testid="edit-password" type="password" placeholder="new password" autocomplete="new-password" value={editing.password} onInput={(e) => setEditing({ ...editing, password: inputValue(e) })} style={{ width: '200px' }} />
            <button type="button" class="act" data-testid="reset-password" onClick={() => void run(`ALTER USER ${sqlString(editing.name)} SET PASSWORD ${sqlString(editing.password)}`, () => setEditing({ ...editing, password: '' }))}>Reset password</button>
            {editing.confirmDrop
              ? <button type="button" class="danger" data-testid="confirm-drop" onClick={() => void run(`DROP USER ${sqlString(editing.name)}`, () => setEditing(null))}>Really drop {editing.name}</button>
              : <button type="button" class="danger" data-testid="drop-user" onClick={() => setEditing({ ...editing, confirmDrop: true })}>Drop user</button>}
            <button class="act" type="button" onClick={() => setEditing(null)}>Close</button>
          </div>
        </form>
      )}
      {notice !== null && <div class={notice.ok ? 'panel' : 'panel error'} data-testid="users-notice">{notice.text}</div>}
      <div class="panel">
        <div class="row"><button class="act" onClick={() => void load()}>Refresh</button></div>
        {error !== null && <div class="error" data-testid="users-error">{error}</div>}
        {users !== null && (
          <div class="grid">
            <table>
              <thead><tr><th>user_id</th><th>role</th><th>email</th><th>created</th><th>deleted</th><th /></tr></thead>
              <tbody>
                {users.map((u) => {
                  const name = String(u.user_id);
                  const live = u.deleted_at === null;
                  return (
                    <tr key={`${name}-${String(u.created_at)}`} data-testid={live ? `user-${name}` : undefined}>
                      <td class="mono">{name}</td>
                      <td data-testid={live ? `role-${name}` : undefined}>{String(u.role)}</td>
                      <td>{u.email === null ? '' : String(u.email)}</td>
                      <td class="mono">{cellText(u.created_at, 'Timestamp')}</td>
                      <td class="mono">{u.deleted_at === null ? '' : cellText(u.deleted_at, 'Timestamp')}</td>
                      <td>{live && manages(role, u.role) && (
                        <button class="act" data-testid={`edit-${name}`} onClick={() => setEditing({ name, role: u.role as Role, password: '', confirmDrop: false })}>Edit</button>
                      )}</td>
                    </tr>
                  );
                })}
              </tbody>
            </table>
          </div>
        )}
      </div>
    </div>
  );
}
