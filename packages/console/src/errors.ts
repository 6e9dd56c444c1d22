/** An error as the console shows it: the protocol's code, then the message. */
import { KalamError } from '@kalamdb/client';

export function errorText(error: unknown): string {
  if (error instanceof KalamError) return `${error.code}: ${error.message}`;
  return error instanceof Error ? error.message : String(error);
}
