/** Live view: subscribe to a SELECT and watch inserts, updates, deletes and flushes arrive, newest first. */
import { useEffect, useRef, useState } from 'preact/hooks';
import type { KalamClient, Row, Subscription } from '@kalamdb/client';
import { errorText } from './errors.js';

interface Event {
  readonly id: number;
  readonly kind: 'initial' | 'insert' | 'update' | 'delete' | 'flush';
  readonly seq: string;
  readonly text: string;
  readonly at: string;
}

const EVENTS_MAX = 500;
/** The matching rows come first, in batches of this many. */
const INITIAL_BATCH_ROWS = 200;

function rowText(row: Row): string {
  const { _seq, _deleted, ...rest } = row as Record<string, unknown>;
  void _seq; void _deleted;
  return JSON.stringify(rest);
}

export function LivePage({ client }: { client: KalamClient }): preact.JSX.Element {
  const [sql, setSql] = useState('');
  const [events, setEvents] = useState<readonly Event[]>([]);
  const [error, setError] = useState<string | null>(null);
  const [active, setActive] = useState<string | null>(null);
  const sub = useRef<Subscription | null>(null);
  const counter = useRef(0);

  const add = (kind: Event['kind'], rows: readonly Row[], fallbackSeq = ''): void => {
    const at = new Date().toISOString().slice(11, 23);
    const added = rows.map((r) => ({ id: ++counter.current, kind, seq: String((r as Record<string, unknown>)._seq ?? fallbackSeq), text: rowText(r), at }));
    setEvents((prev) => [...added.reverse(), ...prev].slice(0, EVENTS_MAX));
  };

  const stop = async (): Promise<void> => {
    const s = sub.current;
    sub.current = null;
    setActive(null);
    if (s !== null) await s.unsubscribe().catch(() => undefined);
  };
  useEffect(() => () => { void stop(); }, []);

  const start = async (): Promise<void> => {
    await stop();
    setError(null);
    setEvents([]);
    try {
      sub.current = await client.subscribe(sql, {
        onInitialData: (rows) => add('initial', rows),
        onInsert: (rows) => add('insert', rows),
        onUpdate: (rows) => add('update', rows),
        onDelete: (old) => add('delete', old),
        onFlush: (flush) => {
          const at = new Date().toISOString().slice(11, 23);
          setEvents((prev) => [{ id: ++counter.current, kind: 'flush' as const, seq: '', text: JSON.stringify(flush), at }, ...prev].slice(0, EVENTS_MAX));
        },
        onError: (e) => setError(errorText(e)),
      }, { batchSize: INITIAL_BATCH_ROWS });
      setActive(sql);
    } catch (e) {
      setError(errorText(e));
    }
  };

  return (
    <div>
      <div class="panel">
        <div class="row">
          <input data-testid="live-sql" placeholder="SELECT * FROM app.messages WHERE room = 'r1'" value={sql} onInput={(e) => setSql((e.target as HTMLInputElement).value)} />
          <button class="primary" data-testid="subscribe" onClick={() => void start()}>Subscribe</button>
          {active !== null && <button class="act" onClick={() => void stop()}>Stop</button>}
        </div>
        {active !== null && <div class="muted" data-testid="live-active">Subscribed: {active}</div>}
      </div>
      {error !== null && <div class="panel error" data-testid="live-error">{error}</div>}
      <div class="panel grid">
        <table data-testid="live-events">
          <thead><tr><th>time</th><th>change</th><th>_seq</th><th>row</th></tr></thead>
          <tbody>{events.map((e) => <tr key={e.id} class={e.kind}><td class="mono">{e.at}</td><td>{e.kind}</td><td class="mono">{e.seq}</td><td class="mono">{e.text}</td></tr>)}</tbody>
        </table>
      </div>
    </div>
  );
}
