/** Asking for a password on the terminal without echoing it. */

/**
 * Reads one line from the TTY on stdin with echo off; the prompt goes to stderr. Resolves with the
 * text, or null when the user gives up (Ctrl-C, or Ctrl-D on an empty line).
 */
export function readHidden(prompt: string): Promise<string | null> {
  const stdin = process.stdin;
  return new Promise((resolve) => {
    let value = '';
    stdin.setRawMode(true); // before the prompt: nothing typed after seeing it is echoed
    process.stderr.write(prompt);
    stdin.setEncoding('utf8');
    const finish = (result: string | null): void => {
      stdin.off('data', onData);
      stdin.setRawMode(false);
      stdin.pause();
      process.stderr.write('\n');
      resolve(result);
    };
    const onData = (chunk: string): void => {
      for (const ch of chunk) {
        if (ch === '\r' || ch === '\n') return finish(value);
        if (ch === '\u0003') return finish(null);
        if (ch === '\u0004') {
          if (value === '') return finish(null);
          continue;
        }
        if (ch === '\u007f' || ch === '\b') value = value.slice(0, -1);
        else if (ch === '\u0015') value = ''; // Ctrl-U
        else if (ch >= ' ') value += ch;
      }
    };
    stdin.on('data', onData);
    stdin.resume();
  });
}
