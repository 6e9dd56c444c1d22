/**
 * EXPORT USER DATA (any authenticated user, their own data; under EXECUTE AS USER the impersonated
 * user's, with the impersonation rules of access.ts) and SHOW EXPORT (the caller's export jobs with
 * a download link once complete). Upstream's messages and result columns.
 */
import { existsSync } from 'node:fs';
import type { Statement } from '../sql/statement.js';
import { messageResult, rowsResult, type RunContext, type Services, type StatementResult } from './context.js';
import type { SchemaField } from './duck-cells.js';

type Of<K extends Statement['kind']> = Extract<Statement, { kind: K }>;

/** upstream's SHOW EXPORT lists the 20 newest. */
const SHOW_EXPORT_ROWS_MAX = 20;

export async function exportUserData(s: Services, ctx: RunContext, _st: Of<'export_user_data'>): Promise<StatementResult> {
  const job = await s.exports.begin(ctx.principal);
  return messageResult(ctx,
    `User data export started. Job ID: ${job.job_id}. Use SHOW EXPORT to check status and get the download link.`);
}

export function showExport(s: Services, ctx: RunContext, _st: Of<'show_export'>): StatementResult {
  const schema: SchemaField[] = [
    { name: 'job_id', data_type: 'Text', index: 0 },
    { name: 'status', data_type: 'Text', index: 1 },
    { name: 'created_at', data_type: 'Timestamp', index: 2 },
    { name: 'message', data_type: 'Text', index: 3 },
    { name: 'download_url', data_type: 'Text', index: 4 },
  ];
  const rows = s.exports.jobsOf(ctx.principal.id).slice(0, SHOW_EXPORT_ROWS_MAX).map(({ job, params }) => {
    const path = s.exports.archivePath(params.account_id, params.export_id);
    // A link only while the archive exists (retention deletes old ones; the job row stays a while).
    const url = job.status === 'completed' && path !== null && existsSync(path) ? downloadUrl(s, params.user_id, params.export_id) : '';
    const message = job.status === 'completed' ? resultMessage(job.result) : job.error_message ?? '';
    return [job.job_id, job.status, job.created_at * 1000, message, url];
  });
  return rowsResult(ctx, schema, rows);
}

/** upstream's link: `http://<host>:<port>/v1/exports/<user>/<export id>` (the configured host, as it is). */
export function downloadUrl(s: Services, user: string, exportId: string): string {
  const host = s.config.host.includes(':') ? `[${s.config.host}]` : s.config.host;
  return `http://${host}:${s.listenPort}/v1/exports/${encodeURIComponent(user)}/${encodeURIComponent(exportId)}`;
}

export function resultMessage(result: string | null): string {
  try {
    const message = (JSON.parse(result ?? 'null') as { message?: unknown } | null)?.message;
    return typeof message === 'string' ? message : '';
  } catch {
    return '';
  }
}
