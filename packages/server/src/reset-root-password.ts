/**
 * `reset-root-password`: sets root's password on a stopped server's data dir. Offline on purpose:
 * it opens the data dir like the server does, so the data dir's lock refuses it while a server runs
 * (a running server keeps its catalog in memory and would never see the change).
 */
import { createInterface } from 'node:readline';
import { Writable } from 'node:stream';
import type { Config } from './config/config.js';
import { StartupError } from './util/errors.js';
import { openDataDir } from './startup.js';
import { Catalog } from './catalog/catalog.js';
import { MAX_SEQ_KEY } from './storage/hot/committer.js';
import { SnowflakeGenerator } from './util/snowflake.js';
import { PasswordHasher, PASSWORD_LENGTH_MIN } from './auth/passwords.js';
import { setRootPassword } from './auth/root-account.js';

export async function resetRootPassword(config: Config): Promise<string> {
  const password = config.rootPassword ?? (await askPassword());
  if (password.length < PASSWORD_LENGTH_MIN) {
    throw new StartupError(`the new root password is too short`, `Use at least ${PASSWORD_LENGTH_MIN} characters`);
  }
  let hot;
  try {
    hot = await openDataDir(config);
  } catch (error) {
    if (error instanceof StartupError && /in use/.test(error.problem)) {
      throw new StartupError(`a KalamDB server is running on data dir ${config.dataDir}`,
        'Stop it first (reset-root-password only works on a stopped server), or change the password online with ALTER USER root SET PASSWORD', { cause: error });
    }
    throw error;
  }
  try {
    const catalog = await Catalog.load(hot);
    const seqs = new SnowflakeGenerator();
    const maxSeq = catalog.meta.get(MAX_SEQ_KEY);
    if (typeof maxSeq === 'string') seqs.observe(BigInt(maxSeq));
    const outcome = await setRootPassword(catalog, new PasswordHasher(), seqs, password);
    return outcome === 'created'
      ? `Created user 'root' with the new password in ${config.dataDir}`
      : `Changed the password of 'root' in ${config.dataDir}; tokens issued before no longer work`;
  } finally {
    await hot.close();
  }
}

/** The new password from a terminal (asked twice, not echoed) or the first line of piped stdin. */
async function askPassword(): Promise<string> {
  if (!process.stdin.isTTY) {
    const line = await readLine(false, '');
    if (line === '') throw new StartupError('no new root password given', 'Set KALAMDB_ROOT_PASSWORD, or pipe the password on stdin');
    return line;
  }
  const first = await readLine(true, 'New password for root: ');
  const second = await readLine(true, 'Repeat it: ');
  if (first !== second) throw new StartupError('the two passwords differ', 'Run the command again');
  return first;
}

function readLine(hidden: boolean, prompt: string): Promise<string> {
  // A muted output stream keeps the typed characters off the terminal; the prompt goes around it.
  const muted = new Writable({ write: (_chunk, _encoding, done) => done() });
  if (prompt !== '') process.stderr.write(prompt);
  const rl = createInterface({ input: process.stdin, output: hidden ? muted : process.stderr, terminal: hidden });
  return new Promise((resolve) => {
    let answered = false;
    rl.once('line', (line) => {
      answered = true;
      rl.close();
      if (hidden) process.stderr.write('\n');
      resolve(line);
    });
    rl.once('close', () => {
      if (!answered) resolve('');
    });
  });
}
