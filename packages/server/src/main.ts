/** `npm start`: read the configuration, start the server, stop cleanly on SIGTERM/SIGINT. */
import { loadConfig } from './config/config.js';
import { createLogger } from './util/log.js';
import { startServer } from './app.js';

async function main(): Promise<void> {
  let config;
  try {
    config = loadConfig(process.argv.slice(2), process.env);
  } catch (error) {
    process.stderr.write(`kalamdb: ${(error as Error).message}\n`);
    process.exit(2);
  }
  const log = createLogger(config.logLevel);
  const server = await startServer(config, log);
  let stopping = false;
  const stop = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    log.info('shutting down', { signal });
    server.close().then(() => process.exit(0), (error: unknown) => {
      log.error('shutdown failed', { error: String(error) });
      process.exit(1);
    });
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}

main().catch((error: unknown) => {
  process.stderr.write(`kalamdb: failed to start: ${(error as Error)?.stack ?? String(error)}\n`);
  process.exit(1);
});
