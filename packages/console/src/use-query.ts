/**
 * One SQL read kept in a page's state: its result, its error (with the code), and `load` to read it
 * again (Refresh, after an action, a poll). Read once when the page shows and whenever `sql` changes.
 */
import { useEffect, useState } from 'preact/hooks';
import type { KalamClient, QueryResult } from '@kalamdb/client';
import { errorText } from './errors.js';

export interface QueryState {
  readonly result: QueryResult | null;
  readonly error: string | null;
  readonly load: () => Promise<void>;
}

export function useQuery(client: KalamClient, sql: string): QueryState {
  const [result, setResult] = useState<QueryResult | null>(null);
  const [error, setError] = useState<string | null>(null);
  const load = async (): Promise<void> => {
    try {
      setResult((await client.query(sql)).results[0] ?? null);
      setError(null);
    } catch (e) {
      setError(errorText(e));
    }
  };
  useEffect(() => { void load(); }, [sql]);
  return { result, error, load };
}
