/**
 * A request's open transaction (BEGIN ... COMMIT): its row writes are held here, visible to its
 * own later statements, and handed to the committer as one intent at COMMIT. Several writes to one
 * key collapse into the last one, keeping the first write's expectation of the committed state.
 */
import { primaryKeyIndex, type TableDef } from '../catalog/types.js';
import { encodePk } from '../storage/hot/keys.js';
import { SchemaChangedError, type RowWrite } from '../storage/hot/committer.js';

export class Transaction {
  private readonly writes = new Map<string, RowWrite>();

  add(write: RowWrite): void {
    const key = writeKey(write.table, write.partition, write);
    const earlier = this.writes.get(key);
    if (earlier !== undefined) sameSchema(earlier.table, write.table);
    // The committed state the transaction started from is what the first write saw.
    this.writes.set(key, earlier ? { ...write, expect: earlier.expect, previous: earlier.previous } : write);
  }

  /** The pending writes to one partition of a table, for reads inside the transaction. */
  overlay(table: TableDef, partition: string): RowWrite[] {
    const out: RowWrite[] = [];
    for (const w of this.writes.values()) {
      if (w.table.id !== table.id || w.partition !== partition) continue;
      sameSchema(w.table, table);
      out.push(w);
    }
    return out;
  }

  /** What to commit: an insert that the transaction itself deleted again never reaches storage. */
  finalWrites(): RowWrite[] {
    return [...this.writes.values()].filter((w) => !(w.expect === 'absent' && w.deleted));
  }

  get size(): number {
    return this.writes.size;
  }
}

/**
 * A statement of the transaction runs under another schema version of a table than an earlier one
 * wrote rows in (an ALTER TABLE committed in between): the rows held here have the old columns, so the
 * transaction cannot go on; it is refused as a write conflict and writes nothing.
 */
function sameSchema(earlier: TableDef, now: TableDef): void {
  if (earlier.schemaVersion !== now.schemaVersion) throw new SchemaChangedError(earlier, now.schemaVersion);
}

function writeKey(table: TableDef, partition: string, write: RowWrite): string {
  const pkIdx = primaryKeyIndex(table);
  return `${table.id}\u0000${partition}\u0000${encodePk(table.columns[pkIdx]!.type, write.values[pkIdx]!).toString('latin1')}`;
}

/** The key string used to match overlay writes to stored rows. */
export function pkString(table: TableDef, value: RowWrite['values'][number]): string {
  return encodePk(table.columns[primaryKeyIndex(table)]!.type, value).toString('latin1');
}
