/**
 * What /health reports about this build. There is no build step besides tsc, so the build date is
 * when tsc wrote this file (its mtime), in upstream KalamDB's format `YYYY-MM-DD HH:MM:SS UTC`.
 */
import { statSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export { SERVER_VERSION } from '../util/version.js';

export const BUILD_DATE: string = buildDate();

function buildDate(): string {
  let when: Date;
  try {
    when = statSync(fileURLToPath(import.meta.url)).mtime;
  } catch {
    when = new Date();
  }
  return `${when.toISOString().slice(0, 19).replace('T', ' ')} UTC`;
}
