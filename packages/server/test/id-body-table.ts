/** A table definition `(id BIGINT PRIMARY KEY, body TEXT)` for tests that drive the hot store and committer directly. */
import type { TableDef } from '../src/catalog/types.js';

export function idBodyTable(id: number, type: TableDef['type'], namespace: string, name: string): TableDef {
  return {
    id, namespace, name, type, schemaVersion: 1,
    columns: [
      { id: 1, name: 'id', type: 'BigInt', nullable: false, primaryKey: true },
      { id: 2, name: 'body', type: 'Text', nullable: true, primaryKey: false },
    ],
    nextColumnId: 3,
    options: { flushPolicy: { rows: null, intervalSeconds: null }, accessLevel: null, ttlSeconds: null, maxBuffer: null, ephemeral: false, deletedRetentionHours: 0 },
    createdAt: 0, createdBy: 'root',
  };
}
