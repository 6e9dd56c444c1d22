/** The SQL editor: highlighted text, Ctrl/Cmd+Enter runs the selection (or everything), history, results. */
import { useRef, useState } from 'preact/hooks';
import type { KalamClient, QueryResult } from '@kalamdb/client';
import { Grid } from './grid.js';
import { tokenize } from './sql-text.js';
import { errorText } from './errors.js';

/** Each user's history is kept under its own key; Log out removes every one (forgetHistory). */
const HISTORY_PREFIX = 'kalamdb.console.history:';
const HISTORY_MAX = 50;

/**
 * Statements with a secret in them (a password, storage credentials) are shown in this page's history
 * but never written to localStorage: a review found `ALTER USER ... SET PASSWORD '...'` on disk after
 * Log out, and shown to the next user of the browser.
 */
export function holdsSecret(sql: string): boolean {
  return /\b(PASSWORD|CREDENTIALS)\b/i.test(sql);
}

function loadHistory(user: string): string[] {
  try {
    const v = JSON.parse(localStorage.getItem(HISTORY_PREFIX + user) ?? '[]') as unknown;
    return Array.isArray(v) ? v.filter((s): s is string => typeof s === 'string') : [];
  } catch {
    return [];
  }
}

/** Removes every user's saved history (Log out), and the key of versions that kept one for all users. */
export function forgetHistory(): void {
  try {
    for (let i = localStorage.length - 1; i >= 0; i--) {
      const key = localStorage.key(i);
      if (key !== null && (key.startsWith(HISTORY_PREFIX) || key === 'kalamdb.console.history')) localStorage.removeItem(key);
    }
  } catch {
    // Storage unavailable (private mode): nothing was saved.
  }
}

export function SqlPage({ client, user }: { client: KalamClient; user: string }): preact.JSX.Element {
  const [sql, setSql] = useState('SELECT * FROM system.namespaces');
  const [results, setResults] = useState<readonly QueryResult[]>([]);
  const [error, setError] = useState<string | null>(null);
  const [took, setTook] = useState<number | null>(null);
  const [running, setRunning] = useState(false);
  const [history, setHistory] = useState<string[]>(() => loadHistory(user));
  const area = useRef<HTMLTextAreaElement>(null);
  const pre = useRef<HTMLPreElement>(null);

  const run = async (): Promise<void> => {
    const ta = area.current;
    const selected = ta !== null && ta.selectionEnd > ta.selectionStart ? ta.value.slice(ta.selectionStart, ta.selectionEnd) : sql;
    if (selected.trim() === '') return;
    setRunning(true);
    setError(null);
    try {
      const res = await client.query(selected);
      setResults(res.results);
      setTook(res.took);
      const next = [selected, ...history.filter((h) => h !== selected)].slice(0, HISTORY_MAX);
      setHistory(next);
      localStorage.setItem(HISTORY_PREFIX + user, JSON.stringify(next.filter((h) => !holdsSecret(h))));
    } catch (e) {
      setResults([]);
      setError(errorText(e));
    } finally {
      setRunning(false);
    }
  };

  return (
    <div>
      <div class="panel">
        <div class="editor">
          <pre ref={pre} aria-hidden="true">{tokenize(sql + '\n').map((t, i) => (t.kind === 'text' ? t.text : <span key={i} class={t.kind}>{t.text}</span>))}</pre>
          <textarea ref={area} data-testid="sql" spellcheck={false} value={sql}
            onInput={(e) => setSql((e.target as HTMLTextAreaElement).value)}
            onScroll={(e) => { if (pre.current) pre.current.scrollTop = (e.target as HTMLTextAreaElement).scrollTop; }}
            onKeyDown={(e) => { if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) { e.preventDefault(); void run(); } }} />
        </div>
        <div class="row">
          <button class="primary" data-testid="run" disabled={running} onClick={() => void run()}>Run</button>
          <span class="muted">Ctrl/Cmd+Enter runs the selection, or everything</span>
          {took !== null && <span class="muted">took {took} ms</span>}
        </div>
        {history.length > 0 && (
          <details><summary class="muted">History ({history.length})</summary>
            <div class="history">{history.map((h) => <div key={h} title={h} onClick={() => setSql(h)}>{h}</div>)}</div>
          </details>
        )}
      </div>
      {error !== null && <div class="panel error" data-testid="error">{error}</div>}
      {results.map((r, i) => (
        <div class="panel" key={i} data-testid="result">
          {r.schema !== undefined ? <Grid result={r} /> : <div>{r.message ?? `${r.row_count} row(s)`}</div>}
        </div>
      ))}
    </div>
  );
}
