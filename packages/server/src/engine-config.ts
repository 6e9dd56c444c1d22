/**
 * The two DuckDB instances' settings, in one place so tests open them exactly as the server does.
 * User SQL runs on the query engine, which has no file access at all; only the file engine, which
 * never runs SQL a user wrote, may read and write the cold tier's directory.
 */
import { join } from 'node:path';
import type { Config } from './config/config.js';
import type { DuckConfig } from './storage/duck/duck-engine.js';
import { engineMacros } from './sql/bind/engine-names.js';

const FILE_ENGINE_MEMORY_LIMIT = '1GB';

export function queryEngineConfig(config: Config): DuckConfig {
  return {
    threads: config.duckdbThreads, memoryLimit: config.duckdbMemoryLimit,
    connections: config.queryConnections, queryTimeoutMs: config.queryTimeoutMs, storageDirs: null,
    resultRowsMax: config.resultRowsMax, resultBytesMax: config.resultBytesMax,
    setup: engineMacros(config.generatedValuesMax),
  };
}

/** `storageDirs`: filesystem storages' base directories beyond the data dir's `storage/` and `remote/`. */
export function fileEngineConfig(config: Config, storageDirs: readonly string[] = []): DuckConfig {
  return {
    // Flushes, compaction and segment loads stream; they do not need the query engine's budget.
    threads: config.duckdbThreads, memoryLimit: FILE_ENGINE_MEMORY_LIMIT,
    connections: 2, queryTimeoutMs: config.queryTimeoutMs, storageDirs: [join(config.dataDir, 'storage'), join(config.dataDir, 'remote'), ...storageDirs],
    resultRowsMax: Number.MAX_SAFE_INTEGER, resultBytesMax: Number.MAX_SAFE_INTEGER,
  };
}
