/** SUBSCRIBE TO over HTTP (tells the client what to send on the WebSocket) and KILL LIVE QUERY. */
import { execError } from '../util/errors.js';
import { isAdminRole, qualifiedName } from '../catalog/types.js';
import { denied } from '../util/errors.js';
import type { Statement } from '../sql/statement.js';
import { messageResult, rowsResult, type RunContext, type Services, type StatementResult } from './context.js';
import { resolveTable } from './ddl-exec.js';
import { parseSubscription } from '../live/subscription-query.js';

type Of<K extends Statement['kind']> = Extract<Statement, { kind: K }>;

export function subscribe(s: Services, ctx: RunContext, st: Of<'subscribe'>): StatementResult {
  const table = resolveTable(s, ctx, st.table);
  const sql = `SELECT * FROM ${qualifiedName(table)}${st.where !== null ? ` WHERE ${st.where}` : ''}`;
  parseSubscription(sql, s.catalog, ctx.principal); // validates the filter and access now, not on the socket
  const options: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(st.options)) {
    if (!['batch_size', 'last_rows', 'from'].includes(key)) throw execError(`Unknown subscription option '${key}' (batch_size, last_rows, from)`);
    options[key] = key === 'from' ? String(value) : value;
  }
  const id = `sub_${s.seqs.next().toString(36)}`;
  // As upstream: the subscription cell is a JSON object `{id, sql}` (plus `options` when given), the
  // `subscription` of the WebSocket subscribe message: send `{"type":"subscribe","subscription":<it>}`.
  const subscription = { id, sql, ...(Object.keys(options).length > 0 ? { options } : {}) };
  const wsUrl = `ws://${s.config.host === '0.0.0.0' ? '127.0.0.1' : s.config.host}:${s.listenPort}/v1/ws`;
  return rowsResult(ctx, [
    { name: 'status', data_type: 'Text', index: 0 },
    { name: 'ws_url', data_type: 'Text', index: 1 },
    { name: 'subscription', data_type: 'Json', index: 2 },
    { name: 'message', data_type: 'Text', index: 3 },
  ], [['active', wsUrl, subscription, 'WebSocket subscription created. Connect to ws_url to receive updates.']]);
}

export function killLive(s: Services, ctx: RunContext, st: Of<'kill_live'>): StatementResult {
  const owner = s.live?.liveOwner(st.liveId);
  if (owner === undefined) {
    if (!isAdminRole(ctx.principal.role)) throw denied('Permission denied: KILL LIVE QUERY of another user needs role dba or system');
    throw execError(`Live query '${st.liveId}' does not exist`);
  }
  if (owner !== ctx.principal.userId && !isAdminRole(ctx.principal.role)) {
    throw denied('Permission denied: KILL LIVE QUERY of another user needs role dba or system');
  }
  s.live!.killLive(st.liveId);
  return messageResult(ctx, `Live query killed: ${st.liveId}`);
}
