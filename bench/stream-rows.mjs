// The STREAM benchmark's subscriber side, lean enough to read 5M rows/s next to the server on 2
// cores without parsing every row as JSON, and still checking every row (bench/stream.mjs).
//
// Every event the benchmark writes has the same width: `room` is padded so that a row and its
// separator take a multiple of 4 bytes, `sent_at` is the send time in integer microseconds (16
// digits) and every `_seq` of a run has the same number of digits (the probe's: 18 today). The rows
// of one message then differ only in `_seq` and, where a server that fell behind delivers several
// INSERTs' events in one message, in `sent_at` from one INSERT's run of rows to the next. The fast
// path copies a message so its rows start 4-byte aligned and compares them as 32-bit words: every
// row must equal the message's first row outside `sent_at` and `_seq`, each row's `_seq` bytes must
// be greater than the row's before it, and where `sent_at` changes a new run starts (its 16 digits
// read as text). The first row is read as text (sent_at, first `_seq`). Any message that is not
// exactly of that form (another layout, another message type, a `_seq` one digit longer some day)
// goes through JSON.parse and is checked row by row: the fast path only
// decides how a message is read, never what is accepted.
//
// Every subscription gets the same rows for one INSERT (only the subscription id differs), so a
// message whose rows part is byte for byte the rows part of a message checked already (same first
// `_seq`, found in a small table of the latest ones) is taken with that message's count, runs and
// last `_seq` after one memcmp: the rows are checked once per INSERT instead of once per subscription
// (100×), and what each subscription accepts is unchanged.
//
// What a subscription accepts: `_seq` strictly increasing over its whole stream (so no event twice),
// and at the end as many rows as events were inserted (so none lost).

const HEAD = '{"type":"change","subscription_id":"';
const INSERT_ROWS = '","change_type":"insert","rows":[';
const FIRST_ROW = /^\{"room":"([a-z]+)","sent_at":(\d{16}),"_seq":"(\d{1,19})"\}$/;
const SENT_AT = /^\d{16}$/;
const SEQ_AT = '{"room":"'.length; // plus the room's length and the sent_at part, see rowLayout

/** The room value that makes a row plus its separator a multiple of 4 bytes, for `_seq`s of `seqDigits` digits. */
export function paddedRoom(seqDigits) {
  const width = (room) => `{"room":"${room}","sent_at":${'1'.repeat(16)},"_seq":"${'7'.repeat(seqDigits)}"}`.length + 1;
  let room = 'r';
  while (width(room) % 4 !== 0) room += 'r';
  return room;
}

/** The send time as the benchmark stores it: integer microseconds since the epoch (exact in a DOUBLE). */
export function sentAtMicros() {
  return Math.round((performance.timeOrigin + performance.now()) * 1000);
}

/** One subscription's stream: rows received and the last `_seq` (a string of digits). */
export class SubscriptionTally {
  rows = 0;
  lastSeq = '';
  firstSeq = '';
  violations = 0;

  /** Takes a message's rows, given its first and last `_seq` (its own rows were checked in order). */
  take(n, firstSeq, lastSeq) {
    if (this.lastSeq !== '' && !seqAfter(firstSeq, this.lastSeq)) this.violations++;
    if (this.firstSeq === '') this.firstSeq = firstSeq;
    this.rows += n;
    this.lastSeq = lastSeq;
  }
}

/** a > b for `_seq` strings (digits, no leading zeros). */
function seqAfter(a, b) {
  return a.length !== b.length ? a.length > b.length : a > b;
}

const scratch = new ArrayBuffer(1 << 22);
const bytes = new Uint8Array(scratch);
const words = new Int32Array(scratch);

function bswap(x) {
  return (((x & 0xff) << 24) | ((x & 0xff00) << 8) | ((x >>> 8) & 0xff00) | (x >>> 24)) >>> 0;
}

/** Rows parts checked row by row lately, by their first `_seq`: bytes (a copy), row count, last `_seq`. */
const checked = new Map();
const CHECKED_KEPT = 256;

/**
 * Reads change messages for a set of subscriptions. `onRows(tally, n, sentAtMicros)` is called once
 * per run of rows with the same sent_at (one INSERT's events) in an insert message that checked
 * out; `other(msg)` gets every other message, parsed.
 */
export class StreamRowReader {
  fastMessages = 0;
  slowMessages = 0;
  /** Of the fast ones: rows part equal to one checked before (another subscription's copy of the same INSERT). */
  matchedMessages = 0;

  constructor(tallies, onRows, other) {
    this.tallies = tallies;
    this.onRows = onRows;
    this.other = other;
  }

  read(buf) {
    if (!this.fast(buf)) this.slow(buf);
  }

  fast(buf) {
    if (buf.length > bytes.length - 4 || buf[2] !== 0x74 /* t of "type" */) return false;
    const headEnd = buf.indexOf(INSERT_ROWS, HEAD.length, 'latin1');
    if (headEnd < 0 || headEnd > 200 || buf.latin1Slice(0, HEAD.length) !== HEAD) return false;
    const tally = this.tallies.get(buf.latin1Slice(HEAD.length, headEnd));
    if (tally === undefined) return false;
    const rowsAt = headEnd + INSERT_ROWS.length;
    const firstEnd = buf.indexOf(0x7d /* } */, rowsAt);
    if (firstEnd < 0) return false;
    const m = FIRST_ROW.exec(buf.latin1Slice(rowsAt, firstEnd + 1));
    if (m === null) return false;
    const width = firstEnd + 2 - rowsAt; // row and separator
    const n = (buf.length - 1 - rowsAt) / width;
    if (width % 4 !== 0 || !Number.isInteger(n) || buf[buf.length - 2] !== 0x5d || buf[buf.length - 1] !== 0x7d) return false;
    const rowsEnd = buf.length - 1;
    const same = checked.get(m[3]);
    if (same !== undefined && same.rows.length === rowsEnd - rowsAt && buf.compare(same.rows, 0, same.rows.length, rowsAt, rowsEnd) === 0) {
      this.fastMessages++;
      this.matchedMessages++;
      tally.take(n, m[3], same.lastSeq);
      for (let i = 0; i < same.runs.length; i += 2) this.onRows(tally, same.runs[i], same.runs[i + 1]);
      return true;
    }
    let lastSeq = m[3];
    // Runs of rows with the same sent_at (one INSERT's events): [count, sent_at, ...]. A server
    // that fell behind delivers the events of several INSERTs in one message.
    const runs = [];
    let runStart = 0;
    let runSent = Number(m[2]);
    if (n > 1) {
      const pad = (4 - (rowsAt % 4)) % 4;
      bytes.set(buf, pad);
      const rw = width / 4;
      const base = (rowsAt + pad) / 4;
      const sentFrom = SEQ_AT + m[1].length + '","sent_at":'.length;
      const seqFrom = sentFrom + 16 + ',"_seq":"'.length;
      const seqDigits = m[3].length;
      const { constant, seq, sent, w0, w1, s0, s1 } = rowMasks(rw, sentFrom, seqFrom, seqFrom + seqDigits);
      const sep = width - 1; // the separator's byte in a row: ',' between rows, ']' after the last
      const end = base + n * rw;
      for (let r = base + rw; r < end; r += rw) {
        const p = r - rw;
        // Everything but sent_at, `_seq` (and the separator) as in the first row: the words before
        // sent_at whole, the others under a mask.
        for (let k = 0; k < s0; k++) if (words[r + k] !== words[base + k]) return false;
        for (let k = s0; k < rw; k++) if (((words[r + k] ^ words[base + k]) & constant[k]) !== 0) return false;
        if (bytes[4 * p + sep] !== 0x2c) return false;
        // `_seq` greater than the row before: the first word that differs decides, in byte order.
        let k = w0;
        let a = 0;
        let b = 0;
        for (; k < w1; k++) {
          a = words[r + k] & seq[k];
          b = words[p + k] & seq[k];
          if (a !== b) break;
        }
        if (k === w1 || bswap(a) < bswap(b)) return false;
        // sent_at as the row before's, or the first row of the next INSERT's run (16 digits, read as text).
        for (k = s0; k < s1; k++) if (((words[r + k] ^ words[p + k]) & sent[k]) !== 0) break;
        if (k < s1) {
          const row = (r - base) / rw;
          const text = buf.latin1Slice(rowsAt + row * width + sentFrom, rowsAt + row * width + sentFrom + 16);
          if (!SENT_AT.test(text)) return false;
          runs.push(row - runStart, runSent);
          runStart = row;
          runSent = Number(text);
        }
      }
      const lastRow = rowsAt + (n - 1) * width;
      lastSeq = buf.latin1Slice(lastRow + seqFrom, lastRow + seqFrom + seqDigits);
    }
    runs.push(n - runStart, runSent);
    if (checked.size >= CHECKED_KEPT) checked.delete(checked.keys().next().value);
    checked.set(m[3], { rows: Buffer.from(buf.subarray(rowsAt, rowsEnd)), lastSeq, runs });
    this.fastMessages++;
    tally.take(n, m[3], lastSeq);
    for (let i = 0; i < runs.length; i += 2) this.onRows(tally, runs[i], runs[i + 1]);
    return true;
  }

  /** Any message, parsed: insert rows are checked one by one (and reported per distinct sent_at). */
  slow(buf) {
    const msg = JSON.parse(buf.toString());
    const tally = msg.type === 'change' && msg.change_type === 'insert' ? this.tallies.get(msg.subscription_id) : undefined;
    if (tally === undefined) return this.other(msg);
    this.slowMessages++;
    for (const row of msg.rows) {
      tally.take(1, row._seq, row._seq);
      this.onRows(tally, 1, Number(row.sent_at));
    }
  }
}

/**
 * Runs the reader's code over synthetic insert messages of the benchmark's layout (`room` and
 * `_seq`s of `seqDigits` digits, runs of two sent_at values, each message twice as two subscriptions
 * get it) for about `ms`, on throwaway tallies, then forgets them: a fresh subscriber thread reads at
 * its JIT-compiled speed from the first real message instead of interpreting its first second.
 */
export function warmUpReader(room, seqDigits, ms = 300) {
  const tallies = new Map([['w0', new SubscriptionTally()], ['w1', new SubscriptionTally()]]);
  const reader = new StreamRowReader(tallies, () => undefined, () => undefined);
  const deadline = performance.now() + ms;
  let seq = 10n ** BigInt(seqDigits - 1);
  const sentAt = sentAtMicros();
  while (performance.now() < deadline) {
    const rows = [];
    for (let i = 0; i < 100; i++) rows.push(`{"room":"${room}","sent_at":${i < 50 ? sentAt : sentAt + 1},"_seq":"${seq++}"}`);
    const body = `","change_type":"insert","rows":[${rows.join(',')}]}`;
    for (const id of tallies.keys()) reader.read(Buffer.from(`${HEAD}${id}${body}`, 'latin1'));
  }
  checked.clear();
  return reader.fastMessages;
}

const masks = new Map();

/**
 * Per 32-bit word of a row (little-endian): the bytes that must equal the first row's (all but
 * sent_at [sentFrom, sentFrom + 16), the `_seq` digits [seqFrom, seqTo) and the separator, the
 * row's last byte), the `_seq` bytes and the sent_at bytes; the words [w0, w1) that hold `_seq`
 * and [s0, s1) that hold sent_at.
 */
function rowMasks(rw, sentFrom, seqFrom, seqTo) {
  const key = `${rw} ${sentFrom} ${seqFrom} ${seqTo}`;
  let out = masks.get(key);
  if (out === undefined) {
    const constant = new Int32Array(rw);
    const seq = new Int32Array(rw);
    const sent = new Int32Array(rw);
    for (let b = 0; b < 4 * rw; b++) {
      const bit = 0xff << (8 * (b & 3));
      if (b >= seqFrom && b < seqTo) seq[b >> 2] |= bit;
      else if (b >= sentFrom && b < sentFrom + 16) sent[b >> 2] |= bit;
      else if (b !== 4 * rw - 1) constant[b >> 2] |= bit;
    }
    out = { constant, seq, sent, w0: seqFrom >> 2, w1: (seqTo + 3) >> 2, s0: sentFrom >> 2, s1: (sentFrom + 16 + 3) >> 2 };
    masks.set(key, out);
  }
  return out;
}
