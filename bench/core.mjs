// Core write/read benchmarks: single-row INSERT with 16 clients, 1,000-row INSERTs, primary-key
// point SELECT, SELECT of 1,000 rows. Targets come from the core-server issue.
import { bulkInsert, latencyStats, timeRepeated } from './lib.mjs';

// Tables never flush during these runs: this measures the hot tier alone.
const noFlush = "WITH (FLUSH_POLICY = 'rows:100000000')";

export async function benchCore({ sql }, seconds) {
  const out = await benchWrites({ sql }, seconds);

  out.select_point_pk = {
    latency: await timeRepeated(seconds, async (i) => {
      const res = await sql('SELECT * FROM bench.multi WHERE id = $1', [(i * 7919) % 400_000]);
      if (res.results[0].row_count !== 1) throw new Error('point select missed');
    }),
    target_p50_ms: 1,
  };

  await sql(`CREATE SHARED TABLE bench.read1k (id BIGINT PRIMARY KEY, user_id TEXT, body TEXT, n INT) ${noFlush}`);
  await bulkInsert(sql, 'bench.read1k', 'id, user_id, body, n', 0, 10_000, (i) => `${i}, 'u${i % 100}', 'body ${i}', ${i % 1000}`);
  out.select_1000_rows = {
    table_rows: 10_000,
    latency: await timeRepeated(seconds, async () => {
      const res = await sql('SELECT * FROM bench.read1k WHERE n < 100 ORDER BY id LIMIT 1000');
      if (res.results[0].row_count !== 1000) throw new Error(`expected 1000 rows, got ${res.results[0].row_count}`);
    }),
  };
  return out;
}

/** The two write benchmarks alone (the durability comparison runs them once per mode). */
export async function benchWrites({ sql }, seconds) {
  const out = {};
  await sql('CREATE NAMESPACE IF NOT EXISTS bench');
  await sql(`CREATE SHARED TABLE bench.single (id BIGINT PRIMARY KEY DEFAULT SNOWFLAKE_ID(), user_id TEXT, body TEXT, n INT) ${noFlush}`);
  await sql(`CREATE SHARED TABLE bench.multi (id BIGINT PRIMARY KEY, user_id TEXT, body TEXT, n INT) ${noFlush}`);

  {
    const concurrency = 16;
    let rows = 0;
    const latencies = [];
    const deadline = performance.now() + seconds * 1000;
    await Promise.all(Array.from({ length: concurrency }, async (_, c) => {
      for (let i = 0; performance.now() < deadline; i++) {
        const t = performance.now();
        await sql('INSERT INTO bench.single (user_id, body, n) VALUES ($1, $2, $3)', [`u${c}`, `message ${i} from client ${c}`, i]);
        latencies.push(performance.now() - t);
        rows++;
      }
    }));
    out.insert_single_row_16_clients = { rows, rows_per_s: Math.round(rows / seconds), latency: latencyStats(latencies), target_rows_per_s: 8000 };
  }

  {
    const total = 400_000;
    const latencies = [];
    const timed = async (text, params) => {
      const t = performance.now();
      const res = await sql(text, params);
      latencies.push(performance.now() - t);
      return res;
    };
    const started = performance.now();
    await bulkInsert(timed, 'bench.multi', 'id, user_id, body, n', 0, total, (i) => `${i}, 'u${i % 100}', 'bulk body number ${i}', ${i % 1000}`);
    const elapsed = (performance.now() - started) / 1000;
    out.insert_multi_row_1000 = {
      rows: total, clients: 2, rows_per_s: Math.round(total / elapsed), statement_latency: latencyStats(latencies), target_rows_per_s: 150000,
    };
  }

  return out;
}
