/**
 * Every ```sql and ```sh example of README.md and docs/**\/*.md runs against a real server, one
 * fresh server per file, in document order; a broken example fails the test with its file, line
 * and statement. What runs how, and the `<!-- docs-test: ... -->` markers (skip, expect-error, as,
 * setup, stdin, server-stopped) and the `-- error: CODE` statement comment, are described at the
 * top of docs-runner.ts and in docs/README.md. Commands not run here (npm ci/start/test, which the
 * README quick-start test runs) are listed in the output, never skipped silently.
 *
 * The first test checks the runner itself on a fixture with broken examples: each must be reported
 * at its line, and the examples that are right must pass.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { REPO_ROOT, documentationFiles, extractBlocks, runDocFile, splitSqlStatements, type FileReport } from './docs-runner.js';

const FIXTURE = `# Fixture

\`\`\`sql
CREATE NAMESPACE fx;
CREATE SHARED TABLE fx.t (id INT PRIMARY KEY, v TEXT) WITH (ACCESS_LEVEL = 'PUBLIC');
INSERT INTO fx.t VALUES (1, 'a;b'), (2, 'it''s');
SELECT * FROM fx.missing;
INSERT INTO fx.t VALUES (1, 'again');   -- error: SQL_EXECUTION_ERROR (duplicate key)
SELEC 1;                                -- error: INVALID_SQL
SELECT 1;                               -- error: INVALID_SQL
BEGIN; INSERT INTO fx.t VALUES (3, 'c'); COMMIT;
\`\`\`

<!-- docs-test: skip a synopsis -->
\`\`\`sql
CREATE [USER|SHARED] TABLE ...;
\`\`\`

<!-- docs-test: as fxuser:fx-secret-1 -->
<!-- docs-test: setup CREATE USER 'fxuser' WITH PASSWORD 'fx-secret-1' ROLE user -->
\`\`\`sql
SELECT CURRENT_USER();
CREATE NAMESPACE fx2;   -- error: PERMISSION_DENIED
\`\`\`

\`\`\`sh
npm ci
curl -s localhost:8080/health
TOKEN=$(curl -s localhost:8080/v1/api/auth/login -H 'content-type: application/json' \\
  -d '{"user":"fxuser","password":"fx-secret-1"}' | sed -E 's/.*"access_token":"([^"]+)".*/\\1/')
\`\`\`

\`\`\`sh
curl -s localhost:8080/v1/api/sql -H "authorization: Bearer $TOKEN" -H 'content-type: application/json' \\
  -d '{"sql":"SELECT * FROM fx.t"}'
curl -s -u root:wrong-password localhost:8080/v1/api/sql -H 'content-type: application/json' \\
  -d '{"sql":"SELECT 1"}'
curl -s localhost:8080/health
\`\`\`

<!-- docs-test: expect-error INVALID_INPUT -->
\`\`\`sh
curl -s -u root:change-me-now localhost:8080/v1/api/sql -H 'content-type: application/json' -d '{"sql":'
\`\`\`

\`\`\`sh
npx kalam --password change-me-now -c "SELECT count(*) AS n FROM fx.t" --format csv
npx kalam --password change-me-now -c "SELEC 1"
\`\`\`

<!-- docs-test: bogus-marker -->
\`\`\`sql
SELECT 1;
\`\`\`

<!-- docs-test: skip not above a fence -->

Text.

\`\`\`bash
echo "plain commands run too"
ls /docs-test/no/such/dir
\`\`\`
`;

test('the docs runner reports each broken example at its line and passes the right ones', { timeout: 120_000 }, async () => {
  assert.deepEqual(splitSqlStatements("SELECT ';'; -- x\nSELECT 2 -- error: INVALID_SQL\n;\n\n-- c\nSELECT 3"), [
    { sql: "SELECT ';'", line: 1, expectError: null },
    { sql: 'SELECT 2 -- error: INVALID_SQL', line: 2, expectError: 'INVALID_SQL' },
    { sql: '-- c\nSELECT 3', line: 6, expectError: null },
  ]);
  const { blocks } = extractBlocks(FIXTURE);
  assert.deepEqual(blocks.map((b) => b.lang), ['sql', 'sql', 'sql', 'sh', 'sh', 'sh', 'sh', 'sql', 'bash']);

  const dir = mkdtempSync(join(tmpdir(), 'kalamdb-docs-fixture-'));
  let report: FileReport;
  try {
    writeFileSync(join(dir, 'fixture.md'), FIXTURE);
    report = await runDocFile(join(dir, 'fixture.md'), 'fixture.md');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  const lines = (text: string): string => text.split('\n').map((l, i) => `${i + 1}: ${l}`).join('\n');
  const context = `fixture:\n${lines(FIXTURE)}\nreport:\n${report.failures.join('\n')}\nskipped:\n${report.skipped.join('\n')}`;
  const failedAt = report.failures.map((f) => /^fixture\.md:(\d+): /.exec(f)?.[1]).map(Number);
  // Marker problems first (51: unknown keyword, 56: no fence under it), then in document order:
  // 7 unknown table; 10 a statement that succeeds where an error was expected; 36 bad password (the
  // block stops there: line 38 does not run); 48 an SQL error through the CLI; 62 a plain command.
  assert.deepEqual(failedAt, [51, 56, 7, 10, 36, 48, 62], context);
  assert.match(report.failures.find((f) => f.startsWith('fixture.md:7:'))!, /SELECT \* FROM fx\.missing\n\s+→ HTTP 400 SQL_EXECUTION_ERROR/, context);
  assert.match(report.failures.find((f) => f.startsWith('fixture.md:10:'))!, /expected error INVALID_SQL, got success/, context);
  assert.match(report.failures.find((f) => f.startsWith('fixture.md:36:'))!, /curl -s -u root:wrong-password .* -d '\{"sql":"SELECT 1"\}'\n\s+→ HTTP 401 .*INVALID_CREDENTIALS/, context);
  assert.match(report.failures.find((f) => f.startsWith('fixture.md:48:'))!, /npx kalam .*"SELEC 1"\n\s+→ exit code 1: ERROR INVALID_SQL/, context);
  assert.match(report.failures.find((f) => f.startsWith('fixture.md:62:'))!, /ls \/docs-test\/no\/such\/dir\n\s+→ exited with 2\n.*No such file/, context);
  assert.deepEqual(report.skipped, [
    'fixture.md:15: sql block skipped (marker): a synopsis',
    'fixture.md:27: not run here: npm ci',
  ], context);
  // Everything else ran and passed: 6 statements (BEGIN ... COMMIT is one request), the setup and
  // 2 as fxuser, 2 curls (the login inside $(...) too), the Bearer curl using TOKEN from the block
  // before, the expected INVALID_SQL, the CLI's csv query, the SELECT under the unknown marker.
  assert.equal(report.passed, 6 + 3 + 2 + 1 + 1 + 1 + 1, context);
});

for (const file of documentationFiles()) {
  test(`docs examples: ${file}`, { timeout: 180_000 }, async (t) => {
    const report = await runDocFile(join(REPO_ROOT, file), file);
    for (const s of report.skipped) t.diagnostic(s);
    if (report.passed > 0) t.diagnostic(`${report.passed} statements and commands passed`);
    assert.deepEqual(report.failures, [], `${report.failures.length} broken example(s):\n${report.failures.join('\n')}`);
  });
}
