/**
 * Schema browser: namespaces (empty ones too) and their tables with type and storage; for a table its
 * properties (type, access level, storage, flush policy, status), row counts per tier and segments
 * (system.table_stats), its columns, its schema history and its Parquet segments (system.manifest).
 * dba/system can start a flush of the table (STORAGE FLUSH TABLE) and follow it on the Jobs page.
 */
import { useEffect, useState } from 'preact/hooks';
import type { QueryResult } from '@kalamdb/client';
import { Grid } from './grid.js';
import { errorText } from './errors.js';
import { isAdmin, records, type PageProps } from './role.js';
import { sqlIdent, sqlString } from './sql-text.js';

const CATALOG_SQL = 'SELECT namespace_id FROM system.namespaces ORDER BY namespace_id; '
  + 'SELECT t.namespace_id, t.table_name, t.table_type, t.access_level, s.storage_id, t.flush_policy, t.status, t.unavailable_reason, t.schema_version '
  + 'FROM system.tables t LEFT JOIN system.schemas s ON s.namespace_id = t.namespace_id AND s.table_name = t.table_name AND s.is_latest '
  + 'ORDER BY t.namespace_id, t.table_name';

type TableRow = Record<string, unknown>;
const text = (v: unknown): string => (v === null || v === undefined ? '—' : String(v));

function Summary({ table, stats }: { table: TableRow; stats: Record<string, unknown> | undefined }): preact.JSX.Element {
  const items: [string, string][] = [
    ['type', text(table.table_type)], ['access level', text(table.access_level)], ['storage', text(table.storage_id)],
    ['flush policy', text(table.flush_policy)], ['schema version', text(table.schema_version)],
    ['status', table.status === 'available' ? 'available' : `${text(table.status)}: ${text(table.unavailable_reason)}`],
    ['hot rows', stats === undefined ? '—' : stats.hot_rows === null ? 'not counted (scan budget)' : text(stats.hot_rows)],
    ['cold rows', text(stats?.cold_rows)], ['segments', text(stats?.segments)], ['cold bytes', text(stats?.cold_bytes)],
  ];
  return (
    <table data-testid="table-summary" style={{ width: 'auto' }}>
      <tbody>{items.map(([k, v]) => <tr key={k}><th>{k}</th><td class="mono" data-testid={`stat-${k.replace(/ /g, '-')}`}>{v}</td></tr>)}</tbody>
    </table>
  );
}

export function SchemaPage({ client, role }: PageProps): preact.JSX.Element {
  const [namespaces, setNamespaces] = useState<readonly string[]>([]);
  const [tables, setTables] = useState<readonly TableRow[]>([]);
  const [picked, setPicked] = useState<TableRow | null>(null);
  const [stats, setStats] = useState<Record<string, unknown> | undefined>(undefined);
  const [details, setDetails] = useState<readonly [string, QueryResult][]>([]);
  const [error, setError] = useState<string | null>(null);
  const [notice, setNotice] = useState<{ ok: boolean; text: string } | null>(null);

  useEffect(() => {
    client.query(CATALOG_SQL).then((r) => {
      setNamespaces(records(r.results[0]).map((n) => String(n.namespace_id)));
      setTables(records(r.results[1]));
    }, (e: unknown) => setError(errorText(e)));
  }, []);

  const open = async (table: TableRow): Promise<void> => {
    setPicked(table);
    const ns = String(table.namespace_id);
    const name = String(table.table_name);
    try {
      const id = `${sqlIdent(ns)}.${sqlIdent(name)}`;
      const where = `WHERE namespace_id = ${sqlString(ns)} AND table_name = ${sqlString(name)}`;
      const res = await client.query(`DESCRIBE TABLE ${id}; DESCRIBE TABLE ${id} HISTORY; `
        + `SELECT user_id, path, row_count, size_bytes, min_seq, max_seq, schema_version, created_at FROM system.manifest ${where}; `
        + `SELECT hot_rows, cold_rows, segments, cold_bytes FROM system.table_stats ${where}`);
      setDetails([['Columns', res.results[0]!], ['Schema history', res.results[1]!], ['Segments (cold tier)', res.results[2]!]]);
      setStats(records(res.results[3])[0]);
      setError(null);
    } catch (e) {
      setError(errorText(e));
    }
  };

  const flush = async (table: TableRow): Promise<void> => {
    try {
      const res = await client.query(`STORAGE FLUSH TABLE ${sqlIdent(String(table.namespace_id))}.${sqlIdent(String(table.table_name))}`);
      setNotice({ ok: true, text: `${res.results[0]?.message ?? 'started'} (see Jobs)` });
    } catch (e) {
      setNotice({ ok: false, text: errorText(e) });
    }
  };

  const isPicked = (t: TableRow): boolean => picked !== null && picked.namespace_id === t.namespace_id && picked.table_name === t.table_name;
  return (
    <div class="cols">
      <div class="panel tree" data-testid="schema-tree">
        {namespaces.map((ns) => (
          <div key={ns}>
            <b>{ns}</b>
            {tables.filter((t) => t.namespace_id === ns).map((t) => (
              <div key={String(t.table_name)} class={isPicked(t) ? 'on' : ''} data-testid={`table-${ns}.${String(t.table_name)}`} onClick={() => { setNotice(null); void open(t); }}>
                {String(t.table_name)} <span class="muted">{String(t.table_type).toLowerCase()}{t.storage_id ? ` · ${String(t.storage_id)}` : ''}{t.status !== 'available' && t.status !== null ? ` · ${String(t.status)}` : ''}</span>
              </div>
            ))}
          </div>
        ))}
      </div>
      <div>
        {error !== null && <div class="panel error">{error}</div>}
        {picked !== null && (
          <div class="panel">
            <div class="row">
              <b>{String(picked.namespace_id)}.{String(picked.table_name)}</b>
              <button class="act" data-testid="refresh-table" onClick={() => void open(picked)}>Refresh</button>
              {isAdmin(role) && String(picked.table_type).toLowerCase() !== 'stream' && (
                <button class="act" data-testid="flush-table" onClick={() => void flush(picked)}>Flush table</button>
              )}
              {notice !== null && <span class={notice.ok ? '' : 'error'} data-testid="flush-notice">{notice.text}</span>}
            </div>
            <Summary table={picked} stats={stats} />
          </div>
        )}
        {picked !== null && details.map(([title, result]) => (
          <div class="panel" key={title}><b>{title}</b><Grid result={result} downloads={false} /></div>
        ))}
      </div>
    </div>
  );
}
