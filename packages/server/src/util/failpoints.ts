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

/**
 * Pause injection for tests: KALAMDB_PAUSEPOINT=<name>@<ms>[,<name>@<ms>...] makes a job wait `ms`
 * milliseconds when it reaches that point, so a test can watch it mid-way (e.g. its progress in
 * system.jobs). Unset in production: one map lookup on an empty map.
 */
const pauses = new Map((process.env.KALAMDB_PAUSEPOINT ?? '').split(',').filter((p) => p.includes('@'))
  .map((p) => [p.slice(0, p.lastIndexOf('@')), Number(p.slice(p.lastIndexOf('@') + 1))] as const));

/** Whether any pause point is set (a hot path skips the await when none is). */
export const pausesArmed = pauses.size > 0;

export async function pausepoint(name: string): Promise<void> {
  const ms = pauses.get(name);
  if (ms !== undefined) await new Promise((resolve) => setTimeout(resolve, ms));
}
