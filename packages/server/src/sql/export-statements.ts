/**
 * EXPORT USER DATA and SHOW EXPORT: upstream's two keyword-only statements, with its messages for
 * anything written after the keywords.
 */
import { invalidSql } from '../util/errors.js';
import type { StatementText } from './lexer.js';
import type { Statement } from './statement.js';

export function parseExportUserData(stmt: StatementText): Statement {
  keywordsOnly(stmt, ['EXPORT', 'USER', 'DATA'], 'Expected EXPORT USER DATA statement');
  return { kind: 'export_user_data' };
}

export function parseShowExport(stmt: StatementText): Statement {
  keywordsOnly(stmt, ['SHOW', 'EXPORT'], 'Expected SHOW EXPORT statement');
  return { kind: 'show_export' };
}

function keywordsOnly(stmt: StatementText, words: readonly string[], expected: string): void {
  const { tokens } = stmt;
  if (words.some((w, i) => tokens[i]?.kind !== 'word' || tokens[i]!.value !== w)) throw invalidSql(expected);
  const rest = tokens[words.length];
  if (rest !== undefined) {
    const text = stmt.text.slice(rest.start).trim().replace(/;$/, '').trim();
    throw invalidSql(`Unexpected tokens after ${words.join(' ')}: '${text.slice(0, 200)}'`);
  }
}
