/**
 * Schema browser: namespaces and their tables (type, access level, storage, flush policy, status);
 * for a table its columns, its schema history and its Parquet segments (system.manifest).
 */
import { useEffect, useState } from 'preact/hooks';
import type { KalamClient, QueryResult } from '@kalamdb/client';
import { Grid } from './grid.js';
import { errorText } from './errors.js';
import { sqlIdent, sqlString } from './sql-text.js';


export function SchemaPage({ client }: { client: KalamClient }): preact.JSX.Element {
  const [tables, setTables] = useState<readonly (readonly unknown[])[]>([]);
  const [picked, setPicked] = useState<{ ns: string; name: string } | null>(null);
  const [details, setDetails] = useState<readonly [string, QueryResult][]>([]);
  const [error, setError] = useState<string | null>(null);

  useEffect(() => {
    client.query('SELECT t.namespace_id, t.table_name, t.table_type, t.access_level, s.storage_id, t.flush_policy, t.status '
      + 'FROM system.tables t LEFT JOIN system.schemas s ON s.namespace_id = t.namespace_id AND s.table_name = t.table_name AND s.is_latest '
      + 'ORDER BY t.namespace_id, t.table_name')
      .then((r) => setTables(r.results[0]?.rows ?? []), (e: unknown) => setError(errorText(e)));
  }, []);

  const open = async (ns: string, name: string): Promise<void> => {
    setPicked({ ns, name });
    try {
      const table = `${sqlIdent(ns)}.${sqlIdent(name)}`;
      const res = await client.query(`DESCRIBE TABLE ${table}; DESCRIBE TABLE ${table} HISTORY; `
        + `SELECT user_id, path, row_count, size_bytes, min_seq, max_seq, schema_version, created_at FROM system.manifest WHERE namespace_id = ${sqlString(ns)} AND table_name = ${sqlString(name)}`);
      setDetails([['Columns', res.results[0]!], ['Schema history', res.results[1]!], ['Segments (cold tier)', res.results[2]!]]);
      setError(null);
    } catch (e) {
      setError(errorText(e));
    }
  };

  const byNs = new Map<string, (readonly unknown[])[]>();
  for (const t of tables) byNs.set(String(t[0]), [...(byNs.get(String(t[0])) ?? []), t]);
  return (
    <div class="cols">
      <div class="panel tree" data-testid="schema-tree">
        {[...byNs].map(([ns, list]) => (
          <div key={ns}>
            <b>{ns}</b>
            {list.map((t) => (
              <div key={String(t[1])} class={picked?.ns === ns && picked.name === t[1] ? 'on' : ''} onClick={() => void open(ns, String(t[1]))}>
                {String(t[1])} <span class="muted">{String(t[2]).toLowerCase()}{t[4] ? ` · ${String(t[4])}` : ''}{t[6] !== 'available' && t[6] !== null ? ` · ${String(t[6])}` : ''}</span>
              </div>
            ))}
          </div>
        ))}
      </div>
      <div>
        {error !== null && <div class="panel error">{error}</div>}
        {picked !== null && details.map(([title, result]) => (
          <div class="panel" key={title}><b>{title}</b><Grid result={result} downloads={false} /></div>
        ))}
      </div>
    </div>
  );
}
