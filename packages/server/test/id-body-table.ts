/** A table definition `(id BIGINT PRIMARY KEY, body TEXT)` for tests that drive the hot store and committer directly, and a read of its hot versions. */
import type { TableDef } from '../src/catalog/types.js';
import type { HotStore } from '../src/storage/hot/hot-store.js';
import type { RowVersion } from '../src/storage/hot/row-codec.js';
import { HotVersionTail } from '../src/live/hot-version-tail.js';

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

/** A partition's hot versions above its flush watermark, read as a resume reads them (live/hot-version-tail.ts). */
export async function hotVersions(hot: HotStore, table: TableDef, partition: string): Promise<readonly RowVersion[]> {
  return (await new HotVersionTail(hot).read(table, partition, (1n << 64n) - 1n)).versions;
}
