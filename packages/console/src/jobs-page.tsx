/**
 * Jobs: system.jobs with a progress bar (progress 0..1 and the job's message) for running jobs, and
 * KILL JOB for queued and running ones (dba/system). System tables cannot be subscribed to, so the page
 * polls: once a second while some job is queued or running and the page is shown, not at all otherwise
 * (Refresh, or showing the page again, reads it once).
 */
import { useEffect, useState } from 'preact/hooks';
import { errorText } from './errors.js';
import { useQuery } from './use-query.js';
import { isAdmin, records, type PageProps } from './role.js';
import { cellText, sqlString } from './sql-text.js';

const JOBS_SQL = 'SELECT job_id, job_type, status, namespace_id, table_name, progress, message, rows_processed, created_at, finished_at '
  + 'FROM system.jobs ORDER BY created_at DESC LIMIT 200';
const POLL_MS = 1000;

type Job = Record<string, unknown>;
const isActive = (j: Job): boolean => j.status === 'running' || j.status === 'queued';

function Progress({ job }: { job: Job }): preact.JSX.Element {
  const p = typeof job.progress === 'number' ? Math.min(1, Math.max(0, job.progress)) : null;
  if (job.status !== 'running' || p === null) return <span class="muted">{job.status === 'running' ? 'running…' : ''}</span>;
  return (
    <span data-testid={`progress-${String(job.job_id)}`}>
      <span class="progress"><i style={{ width: `${(p * 100).toFixed(1)}%` }} /></span> {Math.floor(p * 100)}%
    </span>
  );
}

export function JobsPage({ client, role }: PageProps): preact.JSX.Element {
  const { result, error, load } = useQuery(client, JOBS_SQL);
  const jobs: readonly Job[] | null = result === null ? null : records(result);
  const [notice, setNotice] = useState<string | null>(null);
  // One read at a time: the next is scheduled when the last one's rows arrived, only while jobs run.
  const active = jobs?.some(isActive) ?? false;
  useEffect(() => {
    if (!active) return undefined;
    const timer = setTimeout(() => void load(), POLL_MS);
    return () => clearTimeout(timer);
  }, [result]);
  const kill = async (id: string): Promise<void> => {
    try {
      setNotice((await client.query(`KILL JOB ${sqlString(id)}`)).results[0]?.message ?? 'done');
    } catch (e) {
      setNotice(errorText(e));
    }
    void load();
  };
  const time = (v: unknown): string => (v === null || v === undefined ? '' : cellText(v, 'Timestamp'));
  return (
    <div class="panel" data-testid="jobs">
      <div class="row">
        <button class="act" onClick={() => void load()}>Refresh</button>
        <span class="muted" data-testid="jobs-polling">{active ? 'refreshing every second while jobs run' : 'no job running'}</span>
        {notice !== null && <span data-testid="jobs-notice">{notice}</span>}
      </div>
      {error !== null && <div class="error" data-testid="jobs-error">{error}</div>}
      {jobs !== null && (
        <div class="grid">
          <table>
            <thead><tr><th>job_id</th><th>type</th><th>status</th><th>table</th><th>progress</th><th>message</th><th>rows</th><th>created</th><th>finished</th><th /></tr></thead>
            <tbody>
              {jobs.map((j) => (
                <tr key={String(j.job_id)} data-testid={`job-${String(j.job_id)}`} data-status={String(j.status)}>
                  <td class="mono nowrap">{String(j.job_id)}</td>
                  <td>{String(j.job_type)}</td>
                  <td class={j.status === 'failed' ? 'error' : ''}>{String(j.status)}</td>
                  <td>{j.namespace_id !== null && j.table_name !== null ? `${String(j.namespace_id)}.${String(j.table_name)}` : ''}</td>
                  <td class="nowrap"><Progress job={j} /></td>
                  <td>{j.message === null ? '' : String(j.message)}</td>
                  <td class="mono">{String(j.rows_processed)}</td>
                  <td class="mono">{time(j.created_at)}</td>
                  <td class="mono">{time(j.finished_at)}</td>
                  <td>{isAdmin(role) && isActive(j) && <button class="danger" data-testid={`kill-${String(j.job_id)}`} onClick={() => void kill(String(j.job_id))}>KILL</button>}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </div>
  );
}
