/**
 * @kalamdb/client: the TypeScript SDK for KalamDB. No native dependencies; runs in browsers and in
 * Node >= 20 (global WebSocket where there is one, the `ws` package otherwise).
 *
 * @example
 * const client = createClient({ url: 'http://localhost:8080', auth: { user: 'alice', password: '...' } });
 * const rows = await client.queryRows('SELECT * FROM chat.messages WHERE room = $1', ['r1']);
 * const stop = await client.live("SELECT * FROM chat.messages WHERE room = 'r1'", (rows) => render(rows));
 */
export { createClient } from './client.js';
export type { ClientOptions, KalamClient, LiveOptions, SubscribeHandlers, SubscribeOptions, Subscription, TopicMessage, ConsumeOptions, TopicsApi } from './client.js';
export type { AuthOptions } from './auth.js';
export type { ConnectionState, ConnectionStateInfo, ConnectionStateListener } from './live-connection.js';
export { KalamError } from './errors.js';
export { ConsumerHandlerError } from './consumer.js';
export type { Consumer, ConsumerContext, ConsumerFailure, ConsumerHandler, ConsumerOptions, ConsumerRetry } from './consumer.js';
export type { ChangeEvent, QueryResponse, QueryResult, Row, SchemaChange, SchemaField } from './types.js';
