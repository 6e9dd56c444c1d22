/**
 * storage/storage-health.ts: which failed write means the data dir's disk is full (writes refused
 * until space is freed) and which means only the cold tier's is (flushes wait, writes go on), as
 * /health and the log report them. A fault review saw /health flip to degraded and back every half
 * second, once per failed flush, while the cold tier alone was full.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { StorageHealth } from '../src/storage/storage-health.js';
import { createLogger } from '../src/util/log.js';

const enospc = (): Error => Object.assign(new Error('IO Error: Could not write file "batch-3.parquet.tmp": No space left on device'), { code: 'ENOSPC' });

describe('storage health', () => {
  it('a flush failing for a full disk while the data dir has room: the cold tier is full, writes stay allowed, logged once', () => {
    const lines: string[] = [];
    const health = new StorageHealth(mkdtempSync(join(tmpdir(), 'kalamdb-health-')), createLogger('info', (line) => lines.push(line)));
    try {
      for (let i = 0; i < 3; i++) assert.equal(health.writeFailed(enospc(), 'flush').name, 'StorageFullError');
      assert.equal(health.state, 'ok');
      assert.equal(health.writable, true);
      const fields = health.healthFields();
      assert.equal(fields.cold_storage, 'full');
      assert.equal(fields.storage, undefined);
      assert.equal(lines.filter((l) => l.includes('cold storage full')).length, 1);
      health.flushSucceeded();
      assert.deepEqual(health.healthFields(), {});
      assert.equal(lines.filter((l) => l.includes('cold storage writable again')).length, 1);
      health.flushSucceeded();
      assert.equal(lines.filter((l) => l.includes('cold storage writable again')).length, 1, 'said once');
      // A commit that fails for a full disk is the hot store's volume: writes are refused.
      health.writeFailed(enospc(), 'commit');
      assert.equal(health.state, 'full');
      assert.equal(health.healthFields().storage, 'full');
    } finally {
      health.close();
    }
  });
});
