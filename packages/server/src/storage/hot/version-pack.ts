/**
 * Version packs: the versions one commit group wrote to one partition, stored as ONE RocksDB entry
 * (decision 0018). Reading a version entry through rocksdb-native costs 3–6 µs of CPU whatever its
 * size (two external ArrayBuffers with finalizers, mallocs), which capped a flush at ~200k versions/s;
 * a pack of a 1,000-row INSERT is one entry.
 *
 * Key: the version key of the pack's LAST (highest) `_seq`, so a range delete up to a flush
 * watermark removes exactly the packs whose every version is flushed; a pack reaching above the
 * watermark stays, and readers skip its versions at or below the watermark (`forEachPacked` takes
 * the lower bound). Value: PACK_MAGIC, then per version `_seq` u64 BE, length u32 BE, the encoded
 * version (row-codec.ts). A value that does not start with PACK_MAGIC is one version whose `_seq` is
 * the key's (one-version groups, and every entry written before packs): no migration is needed.
 */
import { writeU64BE } from './u64.js';

/** 0xc1 is never used by msgpack, so no encoded version (a msgpack array) starts with it. */
const PACK_MAGIC = 0xc1;
const HEAD = 12;

/** A pack stops growing at about this size (a multi-megabyte value would be read and held in one piece). */
const PACK_BYTES_MAX = 256 * 1024;

/** Collects one partition's versions of a commit group, in commit order, as one or more entries. */
export class VersionPackBuilder {
  private readonly done: { lastSeq: bigint; value: Buffer }[] = [];
  private seqs: bigint[] = [];
  private encoded: Buffer[] = [];
  private bytes = 1;

  /** Adds the next version of the group: `seq` above every one added before. */
  add(seq: bigint, encoded: Buffer): void {
    this.seqs.push(seq);
    this.encoded.push(encoded);
    this.bytes += HEAD + encoded.length;
    if (this.bytes >= PACK_BYTES_MAX) this.close();
  }

  /** The entries to write: `lastSeq` (the highest `_seq` of each, for its key) and the value. */
  entries(): { lastSeq: bigint; value: Buffer }[] {
    this.close();
    return this.done;
  }

  private close(): void {
    if (this.seqs.length === 0) return;
    // Versions are added in commit order (ascending `_seq`): the last is the highest.
    this.done.push({ lastSeq: this.seqs[this.seqs.length - 1]!, value: this.value() });
    this.seqs = [];
    this.encoded = [];
    this.bytes = 1;
  }

  /** The plain version when there is one, else the pack. */
  private value(): Buffer {
    if (this.encoded.length === 1) return this.encoded[0]!;
    const out = Buffer.allocUnsafe(this.bytes);
    out[0] = PACK_MAGIC;
    let at = 1;
    for (let i = 0; i < this.encoded.length; i++) {
      const e = this.encoded[i]!;
      writeU64BE(out, this.seqs[i]!, at);
      out.writeUInt32BE(e.length, at + 8);
      e.copy(out, at + HEAD);
      at += HEAD + e.length;
    }
    return out;
  }
}

/**
 * Visits the versions of one version entry with `after` < `_seq` <= `upTo` (`keySeq`: the `_seq` in
 * its key). `bytes` is a view into `value`, valid during the call. Returns how many it visited.
 */
export function forEachPacked(
  keySeq: bigint, value: Uint8Array, after: bigint, upTo: bigint, visit: (seq: bigint, bytes: Uint8Array) => void,
): number {
  return forEachPackedAt(keySeq, value, after, upTo, (hi, lo, start, end) => visit((BigInt(hi) << 32n) | BigInt(lo), value.subarray(start, end)));
}

/**
 * forEachPacked with each version as its `_seq` in two unsigned 32-bit halves and its byte range
 * [start, end) in `value`: no bigint and no view per version (the flush reads a million of them).
 */
export function forEachPackedAt(
  keySeq: bigint, value: Uint8Array, after: bigint, upTo: bigint, visit: (seqHi: number, seqLo: number, start: number, end: number) => void,
): number {
  if (value[0] !== PACK_MAGIC) {
    if (keySeq <= after || keySeq > upTo) return 0;
    visit(Number(keySeq >> 32n), Number(BigInt.asUintN(32, keySeq)), 0, value.length);
    return 1;
  }
  const afterHi = Number(after >> 32n);
  const afterLo = Number(BigInt.asUintN(32, after));
  const upToHi = Number(upTo >> 32n);
  const upToLo = Number(BigInt.asUintN(32, upTo));
  const view = new DataView(value.buffer, value.byteOffset, value.byteLength);
  let n = 0;
  let at = 1;
  while (at < value.length) {
    const hi = view.getUint32(at);
    const lo = view.getUint32(at + 4);
    const length = view.getUint32(at + 8);
    const start = at + HEAD;
    at = start + length;
    if (at > value.length) throw new Error('corrupt version pack');
    if (hi < afterHi || (hi === afterHi && lo <= afterLo) || hi > upToHi || (hi === upToHi && lo > upToLo)) continue;
    visit(hi, lo, start, at);
    n++;
  }
  return n;
}

/** How many versions of one entry have a `_seq` above `after` (without decoding them). */
export function countPacked(keySeq: bigint, value: Uint8Array, after: bigint): number {
  return forEachPacked(keySeq, value, after, BigInt.asUintN(64, -1n), () => undefined);
}

/** The lowest `_seq` of one entry above `after` (a pack's versions are in commit order); the key's when it holds one version. */
export function firstPackedSeq(keySeq: bigint, value: Uint8Array, after = 0n): bigint {
  if (value[0] !== PACK_MAGIC) return keySeq;
  const view = new DataView(value.buffer, value.byteOffset, value.byteLength);
  for (let at = 1; at < value.length; at += HEAD + view.getUint32(at + 8)) {
    const seq = view.getBigUint64(at);
    if (seq > after) return seq;
  }
  return keySeq;
}
