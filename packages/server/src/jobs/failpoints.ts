/**
 * Crash injection for tests: KALAMDB_FAILPOINT=<name> makes the process kill itself with SIGKILL
 * when it reaches that point, so crash tests stop a flush at an exact step instead of by luck.
 * Unset in production; checking it costs one string comparison.
 */
const armed = process.env.KALAMDB_FAILPOINT ?? '';

export function failpoint(name: string): void {
  if (armed !== '' && armed === name) {
    process.stderr.write(`failpoint ${name}: killing the process\n`);
    process.kill(process.pid, 'SIGKILL');
  }
}
