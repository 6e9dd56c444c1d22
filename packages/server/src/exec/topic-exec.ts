/** CREATE/DROP/CLEAR/ALTER TOPIC, CONSUME and ACK (see docs/sql.md, Topics). */
import type { Statement, TableName } from '../sql/statement.js';
import { messageResult, rowsResult, type RunContext, type Services, type StatementResult, underDdlLock } from './context.js';
import { ServerError, denied, execError } from '../util/errors.js';
import { DEFAULT_RETENTION_MAX_BYTES, DEFAULT_RETENTION_SECONDS, WIRE_OP_NAMES, parseConsumeStart, type ConsumeStart, type TopicDef, type TopicMessage } from '../topics/types.js';
import { messageParts, type StoredMessage } from '../topics/message-codec.js';
import { compileRouteWhere } from '../topics/route-publisher.js';
import { isAdminRole, qualifiedName } from '../catalog/types.js';
import { resolveTable } from './ddl-exec.js';
import { requireRead, type Principal } from '../auth/access.js';
import type { SchemaField } from './duck-cells.js';

type Of<K extends Statement['kind']> = Extract<Statement, { kind: K }>;

const notFound = (message: string): ServerError => new ServerError('NOT_FOUND', message);

export function topicName(ctx: Pick<RunContext, 'namespace'>, name: TableName): string {
  return `${name.namespace ?? ctx.namespace}.${name.name}`;
}

export function requireTopic(s: Services, name: string): TopicDef {
  const topic = s.topics.get(name);
  if (topic === undefined) throw notFound(`Topic '${name}' does not exist`);
  return topic;
}

/** Managing topics is for dba and system, in upstream's words. */
function requireTopicAdmin(principal: Principal, statement: string): void {
  if (!isAdminRole(principal.role)) throw denied(`${statement} requires DBA or System role`);
}

export function requireConsumer(principal: Principal, what: 'consume from topics' | 'acknowledge topic offsets'): void {
  if (principal.role === 'user') throw denied(`Only service, dba, or system roles can ${what}`);
}

/**
 * A topic's messages carry its source tables' rows: whoever consumes them must be allowed to read
 * each of those tables (its access level; the partitions of USER tables are the topic's to give,
 * as for every consumer). Checked at each consume request and, for a WebSocket consumer, at each
 * read, so a source added or a level raised later applies at once (attack review: a service read
 * a DBA-level table through a topic).
 */
export function requireTopicSources(s: Services, principal: Principal, topic: TopicDef): void {
  for (const route of topic.routes) {
    const table = s.catalog.tableById(route.tableId);
    if (table !== undefined) requireRead(principal, table, s.catalog.hasGrant(table.id, principal));
    // A dropped source's messages stay in the topic and its access level went with it: they are
    // for dba and system (the strictest level a table can have had).
    else if (!isAdminRole(principal.role)) {
      throw denied(`Permission denied: topic ${topic.name} holds messages of the dropped table ${route.table}, readable by role dba or system only`);
    }
  }
}

export async function createTopic(s: Services, ctx: RunContext, st: Of<'create_topic'>): Promise<StatementResult> {
  requireTopicAdmin(ctx.principal, 'CREATE TOPIC');
  const namespace = st.topic.namespace ?? ctx.namespace;
  const name = topicName(ctx, st.topic);
  return underDdlLock(s, ctx, async () => {
    if (s.catalog.namespace(namespace) === undefined) throw notFound(`Namespace '${namespace}' does not exist`);
    if (s.topics.get(name) !== undefined) {
      if (st.ifNotExists) return messageResult(ctx, `Topic '${name}' already exists`);
      throw execError(`Topic '${name}' already exists`);
    }
    const now = Date.now();
    const partitions = st.partitions ?? 1;
    await s.topics.save({
      name, namespace, partitions, routes: [], createdAt: now, updatedAt: now,
      retentionSeconds: st.retentionSeconds ?? DEFAULT_RETENTION_SECONDS, retentionMaxBytes: st.retentionMaxBytes ?? DEFAULT_RETENTION_MAX_BYTES,
    });
    return messageResult(ctx, `Created topic '${name}' with ${partitions} partition(s)`);
  });
}

export async function dropTopic(s: Services, ctx: RunContext, st: Of<'drop_topic'>): Promise<StatementResult> {
  requireTopicAdmin(ctx.principal, 'DROP TOPIC');
  const name = topicName(ctx, st.topic);
  return underDdlLock(s, ctx, async () => {
    if (s.topics.get(name) === undefined) {
      if (st.ifExists) return messageResult(ctx, `Topic '${name}' does not exist`);
      throw notFound(`Topic '${name}' does not exist`);
    }
    await s.topics.remove(name, true, () => s.committer.barrier());
    return messageResult(ctx, `Dropped topic '${name}'`);
  });
}

export async function clearTopic(s: Services, ctx: RunContext, st: Of<'clear_topic'>): Promise<StatementResult> {
  requireTopicAdmin(ctx.principal, 'CLEAR TOPIC');
  const name = topicName(ctx, st.topic);
  return underDdlLock(s, ctx, async () => {
    requireTopic(s, name);
    await s.topics.remove(name, false, () => s.committer.barrier());
    return messageResult(ctx, `Cleared topic '${name}'`);
  });
}

export async function alterTopicAddSource(s: Services, ctx: RunContext, st: Of<'alter_topic_add_source'>): Promise<StatementResult> {
  requireTopicAdmin(ctx.principal, 'ALTER TOPIC');
  const name = topicName(ctx, st.topic);
  return underDdlLock(s, ctx, async () => {
    const topic = requireTopic(s, name);
    const table = resolveTable(s, ctx, st.table);
    if (table.type === 'STREAM') throw execError(`Table '${qualifiedName(table)}' is a STREAM table: topic sources are USER or SHARED tables`);
    compileRouteWhere(table, st.where);
    const duplicate = topic.routes.some((r) => r.tableId === table.id && r.op === st.op);
    const opName = WIRE_OP_NAMES[st.op];
    if (duplicate) throw execError(`Route for ${qualifiedName(table)} ON ${opName} already exists in topic '${name}'`);
    await s.topics.save({
      ...topic,
      routes: [...topic.routes, { tableId: table.id, table: qualifiedName(table), op: st.op, where: st.where, payload: st.payload }],
      updatedAt: Date.now(),
    });
    return messageResult(ctx, `Added source ${qualifiedName(table)} ON ${opName} to topic '${name}'`);
  });
}

/**
 * Who a group member is, for claims and acknowledgements (topics/group-claims.ts): the HTTP
 * `member_id` when given (our extension: workers sharing one account then ack only for themselves),
 * else the user, as upstream.
 */
function memberOf(principal: Principal, memberId?: string): string {
  return memberId === undefined ? `user:${principal.userId}` : `member:${memberId}`;
}

export const MESSAGE_SCHEMA: SchemaField[] = [
  { name: 'topic_id', data_type: 'Text', index: 0 },
  { name: 'partition_id', data_type: 'Int', index: 1 },
  { name: 'offset', data_type: 'BigInt', index: 2 },
  { name: 'key', data_type: 'Text', index: 3 },
  { name: 'payload', data_type: 'Text', index: 4 },
  { name: 'timestamp_ms', data_type: 'BigInt', index: 5 },
  { name: 'user_id', data_type: 'Text', index: 6 },
  { name: 'op', data_type: 'Text', index: 7 },
];

/** Messages one consume returns at most (SQL and HTTP alike). */
export const CONSUME_LIMIT_MAX = 10_000;

/**
 * The bytes of stored messages one consume reads at most, from `result_bytes_max`: their JSON (escaped
 * payload text in SQL, base64 over HTTP) may take about twice that, and must fit the answer.
 */
export function consumeBytesMax(s: Services): number {
  return Math.floor(s.config.resultBytesMax / 4);
}

/** Consumes up to `limit` messages over the topic's partitions (partition 0 first), within consumeBytesMax. */
export async function consumeMessages(s: Services, topic: TopicDef, group: string | null,
  from: ConsumeStart | null, limit: number, owner: string, partition?: number): Promise<TopicMessage[]> {
  let out: TopicMessage[] = [];
  let bytes = consumeBytesMax(s);
  const partitions = partition === undefined ? [...Array(topic.partitions).keys()] : [partition];
  for (const p of partitions) {
    if (out.length >= limit || bytes <= 0) break;
    const read = await s.topics.consume(topic, group, p, from, limit - out.length, owner, bytes);
    for (const m of read) bytes -= Buffer.byteLength(m.payload) + 64;
    out = out.concat(read);
  }
  return out;
}

export async function consume(s: Services, ctx: RunContext, st: Of<'consume'>): Promise<StatementResult> {
  requireConsumer(ctx.principal, 'consume from topics');
  const topic = requireTopic(s, topicName(ctx, st.topic));
  requireTopicSources(s, ctx.principal, topic);
  const owner = memberOf(ctx.principal);
  const messages = await consumeMessages(s, topic, st.group, st.from, Math.min(st.limit ?? 100, CONSUME_LIMIT_MAX), owner);
  if (st.group !== null) {
    // As upstream: a grouped SQL CONSUME commits what it returned (the HTTP route waits for an ACK).
    const last = new Map<number, number>();
    for (const m of messages) last.set(m.partition_id, Math.max(last.get(m.partition_id) ?? -1, m.offset));
    for (const [partition, offset] of last) await s.topics.ack(topic.name, st.group, partition, offset, owner);
  }
  return rowsResult(ctx, MESSAGE_SCHEMA, // BIGINT cells are strings of digits, as every other 64-bit value in a result (protocol: value encoding).
    messages.map((m) => [m.topic_id, m.partition_id, String(m.offset), m.key, m.payload, String(m.timestamp_ms), m.user_id, m.op]));
}

export async function ack(s: Services, ctx: RunContext, st: Of<'ack'>): Promise<StatementResult> {
  requireConsumer(ctx.principal, 'acknowledge topic offsets');
  const name = topicName(ctx, st.topic);
  const topic = requireTopic(s, name);
  requireTopicSources(s, ctx.principal, topic);
  if (st.partition >= topic.partitions) throw execError(`Topic '${name}' has no partition ${st.partition} (partitions: ${topic.partitions})`);
  await s.topics.ack(name, st.group, st.partition, st.uptoOffset, memberOf(ctx.principal));
  return rowsResult(ctx, [
    { name: 'topic', data_type: 'Text', index: 0 },
    { name: 'group_id', data_type: 'Text', index: 1 },
    { name: 'partition', data_type: 'Int', index: 2 },
    { name: 'committed_offset', data_type: 'BigInt', index: 3 },
  ], [[name, st.group, st.partition, String(st.uptoOffset)]]);
}

function field(body: Record<string, unknown>, name: string, kind: 'string' | 'integer', required: boolean): unknown {
  const v = body[name];
  if (v === undefined || v === null) {
    if (required) throw new ServerError('BAD_REQUEST', `Missing field '${name}'`);
    return undefined;
  }
  if (kind === 'string' ? typeof v !== 'string' || v === '' : !Number.isSafeInteger(v) || (v as number) < 0) {
    throw new ServerError('BAD_REQUEST', `Field '${name}' must be ${kind === 'string' ? 'a non-empty string' : 'a non-negative integer'}`);
  }
  return v;
}

/** `partition_id` (default 0), one the topic has. */
function partitionField(body: Record<string, unknown>, topic: TopicDef): number {
  const partition = (field(body, 'partition_id', 'integer', false) as number | undefined) ?? 0;
  if (partition >= topic.partitions) throw new ServerError('BAD_REQUEST', `Topic '${topic.name}' has no partition ${partition}`);
  return partition;
}

function startOf(value: unknown): ConsumeStart {
  const start = parseConsumeStart(value);
  if (start === null) throw new ServerError('BAD_REQUEST', "Field 'start' must be 'Latest', 'Earliest' or {\"Offset\": n}");
  return start;
}

/**
 * The consume response, `{"messages":[...],"next_offset":n,"has_more":b}`, written as JSON text
 * directly from the stored messages: the payload's bytes go to base64 without being decoded, and no
 * object per message is built for JSON.stringify (the drain benchmark's hot path). Field order and
 * values are those of the object form: topic_id, partition_id, offset, payload, key, timestamp_ms,
 * user (when there is one), op.
 */
function encodeConsumed(topic: string, partition: number, messages: readonly StoredMessage[], nextOffset: number, hasMore: boolean): Buffer {
  const head = `{"topic_id":${JSON.stringify(topic)},"partition_id":${partition},"offset":`;
  // Each message's text is written into one buffer as it is made: concatenating them all first made a
  // string of thousands of pieces whose flattening and encoding cost more than building it.
  let out = Buffer.allocUnsafe(16_384 + messages.length * 512);
  let at = out.write('{"messages":[', 0, 'latin1');
  for (let i = 0; i < messages.length; i++) {
    const m = messages[i]!;
    const parts = messageParts(m);
    const text = `${i === 0 ? '' : ','}${head}${m.offset},"payload":"${m.value.toString('base64', parts.payloadStart, parts.payloadEnd)}","key":${parts.key === null ? 'null' : JSON.stringify(parts.key)},"timestamp_ms":${JSON.stringify(parts.timestamp)}${parts.user === null ? '' : `,"user":${JSON.stringify(parts.user)}`},"op":"${WIRE_OP_NAMES[parts.op]}"}`;
    // UTF-8 takes at most 3 bytes per UTF-16 unit; 64 more for the closing text below.
    if (out.length - at < text.length * 3 + 64) {
      const bigger = Buffer.allocUnsafe(Math.max(out.length * 2, at + text.length * 3 + 64));
      out.copy(bigger, 0, 0, at);
      out = bigger;
    }
    at += out.write(text, at, 'utf8');
  }
  at += out.write(`],"next_offset":${nextOffset},"has_more":${hasMore}}`, at, 'latin1');
  return out.subarray(0, at);
}

/** Upstream's /v1/api/topics/consume and /ack request and response shapes. */
export function topicRoutes(s: Services): { consume(p: Principal, b: Record<string, unknown>, gone?: AbortSignal, recheck?: () => void): Promise<unknown>; ack(p: Principal, b: Record<string, unknown>): Promise<unknown> } {
  return {
    async consume(principal, body, gone, recheck) {
      // Upstream's words on its HTTP route (SQL CONSUME says "Only service, dba, or system roles can ...").
      if (principal.role === 'user') throw denied('Topic consumption requires service, dba, or system role');
      const topic = requireTopic(s, field(body, 'topic_id', 'string', true) as string);
      requireTopicSources(s, principal, topic);
      const group = field(body, 'group_id', 'string', true) as string;
      const partition = partitionField(body, topic);
      const limit = Math.min((field(body, 'limit', 'integer', false) as number | undefined) ?? 100, CONSUME_LIMIT_MAX) || 1;
      const timeout = Math.min((field(body, 'timeout_seconds', 'integer', false) as number | undefined) ?? 0, 300);
      const asked = startOf(body.start);
      // 'Latest' is where the partition ends when the poll starts: taken again at each wake-up, a new
      // group's start moved past the message the poll was waiting for, and recorded it as acknowledged.
      const start = asked === 'latest' ? s.topics.latestOffset(topic.name, partition) : asked;
      const member = memberOf(principal, field(body, 'member_id', 'string', false) as string | undefined);
      const deadline = Date.now() + timeout * 1000;
      const isGone = (): boolean => gone?.aborted === true;
      let messages = await s.topics.consumeStored(topic, group, partition, start, limit, member, consumeBytesMax(s));
      while (messages.length === 0 && Date.now() < deadline && s.topics.get(topic.name) !== undefined && !isGone()) {
        await s.topics.waitForMessages(Math.min(deadline - Date.now(), 1000));
        if (isGone()) break;
        // The caller's account and the topic's sources as they are now: a source added since, a role
        // taken away or DROP USER ends the poll (an attack review received a DBA table's row after each).
        recheck?.();
        const current = s.topics.get(topic.name);
        if (current === undefined || current.createdAt !== topic.createdAt) break;
        requireTopicSources(s, principal, current);
        messages = await s.topics.consumeStored(current, group, partition, start, limit, member, consumeBytesMax(s));
      }
      if (isGone() && messages.length > 0) {
        // The client went away (a consumer stopped during its long-poll): nobody will handle these,
        // so the group's next member gets them now rather than after the visibility timeout.
        s.topics.releaseSpan(topic.name, group, partition, member, messages[0]!.offset, messages[messages.length - 1]!.offset + 1);
        return { messages: [], next_offset: messages[0]!.offset, has_more: true };
      }
      const last = messages[messages.length - 1];
      const nextOffset = last === undefined ? s.topics.latestOffset(topic.name, partition) : last.offset + 1;
      // As upstream: the payload's bytes in base64, the op capitalized (Insert, Update, Delete).
      // A Buffer: the HTTP layer sends it as the JSON body it already is.
      return encodeConsumed(topic.name, partition, messages, nextOffset, nextOffset < s.topics.latestOffset(topic.name, partition));
    },
    async ack(principal, body) {
      if (principal.role === 'user') throw denied('Topic acknowledgment requires service, dba, or system role');
      const topic = requireTopic(s, field(body, 'topic_id', 'string', true) as string);
      requireTopicSources(s, principal, topic);
      const group = field(body, 'group_id', 'string', true) as string;
      const partition = partitionField(body, topic);
      const upto = field(body, 'upto_offset', 'integer', true) as number;
      const member = memberOf(principal, field(body, 'member_id', 'string', false) as string | undefined);
      const from = (field(body, 'from_offset', 'integer', false) as number | undefined) ?? 0;
      await s.topics.ack(topic.name, group, partition, upto, member, from);
      return { success: true, acknowledged_offset: upto };
    },
  };
}
