// Schema-evolution benchmarks (ALTER TABLE issue): ALTER on a table with ROWS rows across 20 Parquet
// segments (metadata only: target < 50 ms), and the same query over 20 segments written under one
// schema version vs under several (ADD/RENAME between flushes: target <= 1.2x). Also reported: the
// first query after an ALTER (the query engine's mirror of the table is rebuilt then) and a point
// lookup of a row in a segment of the oldest version.
// Standalone: `node bench/alter.mjs [--seconds N] [--rows N]` (prints JSON); or `npm run bench -- --only alter`.
import { bulkInsert, latencyStats, machine, startBenchServer, timeRepeated, waitForJob } from './lib.mjs';

const NO_FLUSH = "WITH (FLUSH_POLICY = 'rows:100000000')";
const COLUMNS = 'id, user_id, body, n, score';
const row = (i) => `${i}, 'user_${i % 1000}', 'message body number ${i}', ${i % 1000}, ${(i % 997) / 7}`;
const SEGMENTS = 20;

async function flush(sql, table) {
  const res = await sql(`STORAGE FLUSH TABLE ${table}`);
  return waitForJob(sql, res.results[0].message);
}

async function timed(fn) {
  const t = performance.now();
  const res = await fn();
  return { ms: Math.round((performance.now() - t) * 1000) / 1000, server_took_ms: res.took, message: res.results[0].message };
}

/** Fills `table` with `rows` rows in 20 flushed segments; `between(s)` runs after segment s is flushed. */
async function fill(sql, table, rows, between = async () => {}) {
  const per = Math.ceil(rows / SEGMENTS);
  for (let s = 0; s < SEGMENTS; s++) {
    await bulkInsert(sql, table, COLUMNS, s * per, Math.min(rows, (s + 1) * per), row);
    await flush(sql, table);
    await between(s);
  }
}

export async function benchAlter({ sql }, seconds, rows) {
  const out = {};
  await sql('CREATE NAMESPACE IF NOT EXISTS alterbench');
  const create = (name) => sql(`CREATE SHARED TABLE alterbench.${name} (id BIGINT PRIMARY KEY, user_id TEXT, body TEXT, n INT, score DOUBLE) ${NO_FLUSH}`);

  // 1. ALTER on ROWS rows in 20 segments: each form, timed at the client (HTTP round trip included).
  await create('big');
  await fill(sql, 'alterbench.big', rows);
  let t0 = performance.now();
  await sql('SELECT count(*) FROM alterbench.big');
  const firstLoadMs = performance.now() - t0;
  const alters = {};
  alters.add_column_with_default = await timed(() => sql('ALTER TABLE alterbench.big ADD COLUMN flag INT DEFAULT 1'));
  // The query engine's copy of the table follows the ALTER in memory (no segment is read again).
  t0 = performance.now();
  const check = await sql('SELECT count(*), sum(flag) FROM alterbench.big');
  const afterAlterMs = performance.now() - t0;
  const [count, flags] = check.results[0].rows[0];
  if (String(count) !== String(rows) || String(flags) !== String(rows)) throw new Error(`after ALTER: count ${count}, sum(flag) ${flags}`);
  alters.rename_column = await timed(() => sql('ALTER TABLE alterbench.big RENAME COLUMN body TO text'));
  alters.modify_widen = await timed(() => sql('ALTER TABLE alterbench.big MODIFY COLUMN n BIGINT'));
  alters.set_default = await timed(() => sql('ALTER TABLE alterbench.big ALTER COLUMN flag SET DEFAULT 2'));
  alters.drop_column = await timed(() => sql('ALTER TABLE alterbench.big DROP COLUMN score'));
  // Repeated ADD/DROP pairs for a latency distribution.
  const samples = [];
  for (let i = 0; i < 20; i++) {
    let t = performance.now();
    await sql(`ALTER TABLE alterbench.big ADD COLUMN extra_${i} TEXT DEFAULT 'x'`);
    samples.push(performance.now() - t);
    t = performance.now();
    await sql(`ALTER TABLE alterbench.big DROP COLUMN extra_${i}`);
    samples.push(performance.now() - t);
  }
  const round = (x) => Math.round(x * 1000) / 1000;
  out.alter_1m_rows_20_segments = {
    rows, segments: SEGMENTS, single: alters, add_drop_repeated: latencyStats(samples), target_ms: 50,
    first_select_loading_all_segments_ms: round(firstLoadMs),
    first_select_after_add_column_ms: round(afterAlterMs),
    point_lookup_oldest_segment: await timeRepeated(seconds, async (i) => {
      const res = await sql('SELECT * FROM alterbench.big WHERE id = $1', [(i * 7919) % Math.ceil(rows / SEGMENTS)]);
      if (res.results[0].row_count !== 1) throw new Error('lookup missed');
    }),
  };
  await sql('DROP TABLE alterbench.big');

  // 2. The same reads over 20 segments of one schema version vs 20 segments of 12 versions.
  const queryRows = Math.min(rows, 200_000);
  await create('single');
  // The same final columns as 'mixed' ends with (w15 added with a default), so the comparison is of
  // versions, not of column counts: this ALTER comes before any row, so every segment is one version.
  await sql('ALTER TABLE alterbench.single ADD COLUMN w15 INT DEFAULT 15');
  await fill(sql, 'alterbench.single', queryRows);
  await create('mixed');
  await fill(sql, 'alterbench.mixed', queryRows, async (s) => {
    if (s % 4 !== 3 || s === SEGMENTS - 1) return;
    // Every fourth segment other versions: a column added, renamed, and the previous one dropped
    // (the INSERTs name the original columns, which stay).
    await sql(`ALTER TABLE alterbench.mixed ADD COLUMN v${s} INT DEFAULT ${s}`);
    await sql(`ALTER TABLE alterbench.mixed RENAME COLUMN v${s} TO w${s}`);
    if (s > 3) await sql(`ALTER TABLE alterbench.mixed DROP COLUMN w${s - 4}`);
  });
  const versions = (await sql("SELECT count(*) FROM system.schemas WHERE namespace_id = 'alterbench' AND table_name = 'mixed'")).results[0].rows[0][0];
  const query = (t) => `SELECT user_id, count(*) AS c, avg(score) AS a FROM ${t} WHERE n < 500 GROUP BY user_id ORDER BY c DESC, user_id LIMIT 10`;
  const result = { rows: queryRows, segments: SEGMENTS, mixed_schema_versions: Number(versions), query: query('t'), target_mixed_over_single: 1.2 };
  // a) Reading every segment: one more row flushed makes the next query load the table's segments again.
  const load = { single: [], mixed: [] };
  for (let i = 0; i < 6; i++) {
    for (const t of ['single', 'mixed']) {
      await sql(`INSERT INTO alterbench.${t} (${COLUMNS}) VALUES (${row(queryRows + i)})`);
      await flush(sql, `alterbench.${t}`);
      const t1 = performance.now();
      const res = await sql(query(`alterbench.${t}`));
      load[t].push(performance.now() - t1);
      if (res.results[0].row_count !== 10) throw new Error('expected 10 groups');
    }
  }
  result.query_reading_all_segments = { single: latencyStats(load.single), mixed: latencyStats(load.mixed) };
  result.query_reading_all_segments.mixed_over_single_p50 = round(result.query_reading_all_segments.mixed.p50_ms / result.query_reading_all_segments.single.p50_ms);
  // b) Point lookups of cold rows (each reads the segment that holds the key).
  // Interleaved (single, mixed, single, ...) so both see the same machine load.
  const lookupSamples = { single: [], mixed: [] };
  const lookupEnd = performance.now() + 2 * seconds * 1000;
  for (let i = 0; performance.now() < lookupEnd || i < 40; i++) {
    for (const t of ['single', 'mixed']) {
      const t1 = performance.now();
      const res = await sql(`SELECT * FROM alterbench.${t} WHERE id = $1`, [(i * 7919) % queryRows]);
      lookupSamples[t].push(performance.now() - t1);
      if (res.results[0].row_count !== 1) throw new Error('lookup missed');
    }
  }
  const lookups = { single: latencyStats(lookupSamples.single), mixed: latencyStats(lookupSamples.mixed) };
  result.cold_point_lookup = { ...lookups, mixed_over_single_p50: round(lookups.mixed.p50_ms / lookups.single.p50_ms) };
  // c) The query once the table is loaded in the query engine (steady state).
  const steadySamples = { single: [], mixed: [] };
  const steadyEnd = performance.now() + 2 * seconds * 1000;
  for (let i = 0; performance.now() < steadyEnd || i < 20; i++) {
    for (const t of ['single', 'mixed']) {
      const t1 = performance.now();
      const res = await sql(query(`alterbench.${t}`));
      steadySamples[t].push(performance.now() - t1);
      if (res.results[0].row_count !== 10) throw new Error('expected 10 groups');
    }
  }
  const steady = { single: latencyStats(steadySamples.single), mixed: latencyStats(steadySamples.mixed) };
  result.query_loaded = { ...steady, mixed_over_single_p50: round(steady.mixed.p50_ms / steady.single.p50_ms) };
  out.select_mixed_vs_single_version = result;
  return out;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const arg = (name, fallback) => {
    const i = process.argv.indexOf(`--${name}`);
    return i > 0 ? process.argv[i + 1] : fallback;
  };
  const server = await startBenchServer('compact_segments_max = 1000\n');
  try {
    const results = { machine: machine(), alter: await benchAlter(server, Number(arg('seconds', '5')), Number(arg('rows', '1000000'))) };
    process.stdout.write(JSON.stringify(results, null, 2) + '\n');
  } finally {
    await server.stop();
  }
}
