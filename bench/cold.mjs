// Cold-tier benchmarks: flush throughput (1,000,000 rows x 5 columns), a filtered ORDER BY/LIMIT
// over 20 Parquet segments, a primary-key lookup of a cold row, and one query over hot-only,
// cold-only and mixed data. Targets come from the cold-tier issue.
import { bulkInsert, timeRepeated, waitForJob } from './lib.mjs';

const NO_FLUSH = "WITH (FLUSH_POLICY = 'rows:100000000')";
const COLUMNS = 'id, user_id, body, n, score';
const row = (i) => `${i}, 'user_${i % 1000}', 'message body number ${i}', ${i % 1000}, ${(i % 997) / 7}`;

async function flush(sql, table) {
  const res = await sql(`STORAGE FLUSH TABLE ${table}`);
  return waitForJob(sql, res.results[0].message);
}

async function createTable(sql, name) {
  await sql(`CREATE SHARED TABLE ${name} (id BIGINT PRIMARY KEY, user_id TEXT, body TEXT, n INT, score DOUBLE) ${NO_FLUSH}`);
}

export async function benchCold({ sql }, seconds, flushRows) {
  const out = {};
  await sql('CREATE NAMESPACE IF NOT EXISTS coldbench');

  await createTable(sql, 'coldbench.big');
  await bulkInsert(sql, 'coldbench.big', COLUMNS, 0, flushRows, row);
  const job = await flush(sql, 'coldbench.big');
  out.flush = {
    rows: job.rows_processed, columns: 5, duration_ms: job.result.duration_ms,
    rows_per_s: Math.round(job.rows_processed / (job.result.duration_ms / 1000)), target_rows_per_s: 300000,
  };

  await createTable(sql, 'coldbench.seg20');
  for (let s = 0; s < 20; s++) {
    await bulkInsert(sql, 'coldbench.seg20', COLUMNS, s * 10_000, (s + 1) * 10_000, row);
    await flush(sql, 'coldbench.seg20');
  }
  out.filter_order_limit_20_segments = {
    segments: 20, rows: 200_000,
    latency: await timeRepeated(seconds, async () => {
      const res = await sql("SELECT * FROM coldbench.seg20 WHERE user_id = 'user_42' AND n < 500 ORDER BY id DESC LIMIT 20");
      if (res.results[0].row_count !== 20) throw new Error('expected 20 rows');
    }),
    target_p50_ms: 20,
  };
  out.pk_lookup_cold_row = {
    latency: await timeRepeated(seconds, async (i) => {
      const res = await sql('SELECT * FROM coldbench.seg20 WHERE id = $1', [(i * 7919) % 200_000]);
      if (res.results[0].row_count !== 1) throw new Error('cold lookup missed');
    }),
    target_p50_ms: 3,
  };

  // The same aggregate over 100,000 rows: all hot, all cold (10 segments), half and half.
  await createTable(sql, 'coldbench.hot');
  await bulkInsert(sql, 'coldbench.hot', COLUMNS, 0, 100_000, row);
  await createTable(sql, 'coldbench.cold');
  for (let s = 0; s < 10; s++) {
    await bulkInsert(sql, 'coldbench.cold', COLUMNS, s * 10_000, (s + 1) * 10_000, row);
    await flush(sql, 'coldbench.cold');
  }
  await createTable(sql, 'coldbench.mixed');
  for (let s = 0; s < 5; s++) {
    await bulkInsert(sql, 'coldbench.mixed', COLUMNS, s * 10_000, (s + 1) * 10_000, row);
    await flush(sql, 'coldbench.mixed');
  }
  await bulkInsert(sql, 'coldbench.mixed', COLUMNS, 50_000, 100_000, row);
  const query = (t) => `SELECT user_id, count(*) AS c, avg(score) AS a FROM ${t} WHERE n < 500 GROUP BY user_id ORDER BY c DESC, user_id LIMIT 10`;
  const tiers = {};
  for (const t of ['hot', 'cold', 'mixed']) {
    tiers[t] = await timeRepeated(seconds, async () => {
      const res = await sql(query(`coldbench.${t}`));
      if (res.results[0].row_count !== 10) throw new Error('expected 10 groups');
    });
  }
  out.hot_vs_cold_vs_mixed = {
    rows: 100_000, query: query('t'), ...tiers,
    mixed_over_cold_p50: Math.round((tiers.mixed.p50_ms / tiers.cold.p50_ms) * 100) / 100, target_mixed_over_cold: 1.5,
  };
  return out;
}
