/**
 * Pages that are one query, refreshed: live subscriptions (KILL LIVE), sessions and the audit log.
 * Each reads a system table through the public SQL API. (Jobs and users have their own pages.)
 */
import { useEffect, useState } from 'preact/hooks';
import type { KalamClient } from '@kalamdb/client';
import { isAdmin, type PageProps } from './role.js';
import { Grid } from './grid.js';
import { errorText } from './errors.js';
import { useQuery } from './use-query.js';
import { sqlString } from './sql-text.js';

interface QueryPageProps {
  readonly client: KalamClient;
  readonly sql: string;
  /** Refresh period; 0: only on demand. */
  readonly everyMs: number;
  readonly action?: { readonly label: string; readonly column: string; readonly sql: (value: string) => string };
  readonly testId: string;
}

function QueryPage({ client, sql, everyMs, action, testId }: QueryPageProps): preact.JSX.Element {
  const { result, error, load } = useQuery(client, sql);
  const [notice, setNotice] = useState<string | null>(null);
  useEffect(() => {
    if (everyMs === 0) return undefined;
    const timer = setInterval(() => void load(), everyMs);
    return () => clearInterval(timer);
  }, [sql]);
  const index = action === undefined ? -1 : (result?.schema ?? []).findIndex((f) => f.name === action.column);
  return (
    <div class="panel" data-testid={testId}>
      <div class="row"><button class="act" onClick={() => void load()}>Refresh</button>{notice !== null && <span class="muted">{notice}</span>}</div>
      {error !== null && <div class="error">{error}</div>}
      {result !== null && (
        <Grid result={result} downloads={false} actions={action === undefined || index < 0 ? undefined : (row) => (
          <button class="danger" data-testid={`kill-${String(row[index])}`} onClick={async () => {
            try {
              const res = await client.query(action.sql(String(row[index])));
              setNotice(res.results[0]?.message ?? 'done');
            } catch (e) {
              setNotice(errorText(e));
            }
            void load();
          }}>{action.label}</button>
        )} />
      )}
    </div>
  );
}


export const SubscriptionsPage = ({ client, role }: PageProps): preact.JSX.Element => (
  <QueryPage client={client} testId="subscriptions" everyMs={2000}
    sql="SELECT live_id, user_id, namespace_id, table_name, query, created_at, changes FROM system.live ORDER BY created_at DESC"
    action={isAdmin(role) ? { label: 'KILL', column: 'live_id', sql: (id) => `KILL LIVE QUERY ${sqlString(id)}` } : undefined} />
);

export const SessionsPage = ({ client }: PageProps): preact.JSX.Element => (
  <QueryPage client={client} testId="sessions" everyMs={2000} sql="SELECT * FROM system.sessions ORDER BY connected_at DESC" />
);

export const AuditPage = ({ client }: PageProps): preact.JSX.Element => (
  <QueryPage client={client} testId="audit" everyMs={0}
    sql="SELECT timestamp, actor, effective_user, action, target, status, details FROM system.audit_log ORDER BY timestamp DESC LIMIT 200" />
);
