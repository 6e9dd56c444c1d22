/** A result set as a table: column names with their types, cells as exact text, NULLs marked. */
import type { QueryResult } from '@kalamdb/client';
import { cellText, download, toCsv } from './sql-text.js';

export interface GridProps {
  readonly result: QueryResult;
  /** Extra cells at the end of each row (e.g. a KILL button), by row index. */
  readonly actions?: (row: readonly unknown[], index: number) => preact.ComponentChildren;
  readonly downloads?: boolean;
}

export function Grid({ result, actions, downloads = true }: GridProps): preact.JSX.Element {
  const schema = result.schema ?? [];
  const rows = (result.rows ?? []) as unknown[][];
  const text = rows.map((r) => schema.map((f, i) => cellText(r[i], f.data_type)));
  const names = schema.map((f) => f.name);
  return (
    <div>
      {downloads && (
        <div class="row">
          <span class="muted">{result.row_count} row(s)</span>
          <button class="act" data-testid="csv" onClick={() => download('result.csv', 'text/csv', toCsv(names, text))}>CSV</button>
          <button class="act" data-testid="json" onClick={() => download('result.json', 'application/json',
            JSON.stringify(rows.map((r) => Object.fromEntries(schema.map((f, i) => [f.name, r[i]]))), null, 2))}>JSON</button>
        </div>
      )}
      <div class="grid">
        <table>
          <thead><tr>{schema.map((f) => <th key={f.name}>{f.name}<small>{typeof f.data_type === 'string' ? f.data_type : `Decimal(${f.data_type.Decimal.precision},${f.data_type.Decimal.scale})`}</small></th>)}{actions && <th />}</tr></thead>
          <tbody>
            {text.map((cells, ri) => (
              <tr key={ri}>
                {cells.map((c, ci) => <td key={ci} class={rows[ri]![ci] === null ? 'null' : 'mono'}>{c}</td>)}
                {actions && <td>{actions(rows[ri]!, ri)}</td>}
              </tr>
            ))}
          </tbody>
        </table>
      </div>
    </div>
  );
}
