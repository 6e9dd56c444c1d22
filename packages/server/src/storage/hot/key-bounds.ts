/**
 * An upper bound of the primary-key index keys of each partition the committer has written to. A key
 * above its partition's bound has no index entry, so validating it needs no RocksDB read: that is the
 * common case for generated keys (SNOWFLAKE_ID(), which only grows) and for bulk loads with ascending
 * ids. Keys compare as latin1 strings, which is RocksDB's bytewise order.
 *
 * A bound only has to be >= every index key of its partition. It is learned once from RocksDB (the
 * partition's last index key) and raised by every write the committer stages. Index entries are only
 * ever added by the committer; removals (partition purge, DROP TABLE) leave the bound too high, which
 * is safe. Forgetting a bound is safe too: the partition is read and learned again.
 */
import type { HotStore } from './hot-store.js';

/** Partitions remembered at most (USER tables have one per user); past it, all are forgotten at once. */
const PARTITIONS_MAX = 65_536;

export class PartitionKeyBounds {
  /** Partition prefix (latin1) → upper bound of its index keys (latin1; '' for an empty partition). */
  private readonly bounds = new Map<string, string>();

  /** True when `key` is known to have no index entry in its partition (prefix). */
  isAbsent(prefix: string, key: string): boolean {
    const bound = this.bounds.get(prefix);
    return bound !== undefined && key > bound;
  }

  known(prefix: string): boolean {
    return this.bounds.has(prefix);
  }

  /** Raises a known partition's bound to cover `key` (a key being written). */
  wrote(prefix: string, key: string): void {
    const bound = this.bounds.get(prefix);
    if (bound !== undefined && key > bound) this.bounds.set(prefix, key);
  }

  /**
   * Reads the last index key of each partition from RocksDB. The caller installs the result with
   * `install` once no write it cannot see is in flight (see Committer.drain).
   */
  async learn(hot: HotStore, prefixes: Iterable<string>): Promise<Map<string, string>> {
    const list = [...prefixes];
    const last = await Promise.all(list.map((p) => hot.lastIndexKey(Buffer.from(p, 'latin1'))));
    const out = new Map<string, string>();
    list.forEach((p, i) => out.set(p, last[i]?.toString('latin1') ?? ''));
    return out;
  }

  /** Installs learned bounds, raised by `alsoWritten` (keys of a group written while they were read). */
  install(learned: ReadonlyMap<string, string>, alsoWritten: Iterable<string>): void {
    if (learned.size === 0) return;
    if (this.bounds.size + learned.size > PARTITIONS_MAX) this.bounds.clear();
    const fresh = new Map(learned);
    for (const key of alsoWritten) {
      for (const [prefix, bound] of fresh) if (key.startsWith(prefix) && key > bound) fresh.set(prefix, key);
    }
    for (const [prefix, bound] of fresh) if (!this.bounds.has(prefix)) this.bounds.set(prefix, bound);
  }
}
