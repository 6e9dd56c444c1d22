// The admin console at /ui in headless Chromium against the real server: log in, run a query, download
// CSV, watch a row inserted by another client arrive in the live view within 1 s and a flush
// notification after it, kill a subscription from the Subscriptions page; create a user on the Users
// page who logs in in a second browser context (and sees no admin actions), change its role (its
// console then reads system tables), reset its password, drop it; start a flush from the schema
// browser and watch it reach completed on the Jobs page, with the table's hot/cold row counts before
// and after. A screenshot of each page goes to the test output directory (helpers.mjs, outputDir).
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { BROWSER_SKIP, KalamProcess, ROOT_PASSWORD, closeBrowser, freePort, launchBrowser, openPage, outputDir, stopAll, tempDir, waitFor } from './helpers.mjs';

describe('admin console (/ui) in Chromium', { skip: BROWSER_SKIP }, () => {
  let db;
  let browser;
  let page;
  let second;
  const out = outputDir('console');
  before(async () => {
    db = new KalamProcess(await freePort(), tempDir('kalamdb-console-'));
    await db.start();
    await db.rows('CREATE NAMESPACE app');
    await db.rows('CREATE SHARED TABLE app.messages (id BIGINT PRIMARY KEY, room TEXT, body TEXT)');
    await db.rows("INSERT INTO app.messages VALUES (9007199254740993, 'r1', 'exact bigint'), (2, 'r1', 'hello, \"world\"'), (-3, 'r2', '=HYPERLINK(\"http://evil.example/\")')");
    browser = await launchBrowser();
    page = await openPage(browser, 'console');
    console.log(`# screenshots: ${out}`);
  });
  after(async () => {
    if (page) console.log(page.log.join('\n'));
    if (second) console.log(second.log.join('\n'));
    await closeBrowser(browser);
    await stopAll();
  });

  it('refuses wrong credentials with the code, then logs in', async () => {
    await page.goto(`${db.url}/ui`);
    await page.getByTestId('user').fill('root');
    await page.getByTestId('password').fill('wrong-password');
    await page.getByTestId('login').click();
    await page.getByTestId('login-error').waitFor();
    assert.match(await page.getByTestId('login-error').textContent(), /INVALID_CREDENTIALS|UNAUTHORIZED|401/);
    await page.screenshot({ path: join(out, '0-login.png'), fullPage: true });
    await page.getByTestId('password').fill(ROOT_PASSWORD);
    await page.getByTestId('login').click();
    await page.getByTestId('nav-SQL').waitFor();
  });

  it('runs a query with Ctrl+Enter, shows types and exact BIGINTs, and downloads CSV', async () => {
    await page.getByTestId('sql').fill("SELECT id, body FROM app.messages WHERE room = 'r1' ORDER BY id");
    await page.getByTestId('sql').press('Control+Enter');
    const result = page.getByTestId('result');
    await result.waitFor();
    const text = await result.textContent();
    assert.match(text, /9007199254740993/);
    assert.match(text, /BigInt/);
    const [download] = await Promise.all([page.waitForEvent('download'), page.getByTestId('csv').click()]);
    const csv = readFileSync(await download.path(), 'utf8');
    assert.equal(csv, 'id,body\r\n2,"hello, ""world"""\r\n9007199254740993,exact bigint\r\n');
    // A cell a spreadsheet would take for a formula gets a leading quote; a negative number does not.
    await page.getByTestId('sql').fill("SELECT id, body FROM app.messages WHERE room = 'r2'");
    await page.getByTestId('sql').press('Control+Enter');
    await page.getByTestId('result').getByText('HYPERLINK', { exact: false }).waitFor();
    const [formula] = await Promise.all([page.waitForEvent('download'), page.getByTestId('csv').click()]);
    assert.equal(readFileSync(await formula.path(), 'utf8'), 'id,body\r\n-3,"\'=HYPERLINK(""http://evil.example/"")"\r\n');
    // A statement with a password is in the page's history but never written to the browser's storage.
    await page.getByTestId('sql').fill("CREATE USER 'histtest' WITH PASSWORD 'not-on-disk-123' ROLE user");
    await page.getByTestId('sql').press('Control+Enter');
    await waitFor('the CREATE USER to run', async () => (await db.rows("SELECT user_id FROM system.users WHERE user_id = 'histtest'")).length === 1);
    await page.waitForTimeout(500);
    const stored = await page.evaluate(() => Object.keys(localStorage).map((k) => `${k}=${localStorage.getItem(k)}`).join('\n'));
    assert.ok(!stored.includes('not-on-disk-123'), stored);
    assert.match(stored, /kalamdb\.console\.history:root=.*room = 'r2'/);
    await page.getByTestId('sql').fill('SELECT * FROM app.nope');
    await page.getByTestId('run').click();
    await page.getByTestId('error').waitFor();
    assert.match(await page.getByTestId('error').textContent(), /^[A-Z_]+: /);
    await page.screenshot({ path: join(out, '1-sql.png'), fullPage: true });
  });

  it('shows a row inserted by another client in the live view within 1 s, then a flush notification', async () => {
    await page.getByTestId('nav-Live').click();
    await page.getByTestId('live-sql').fill("SELECT * FROM app.messages WHERE room = 'r1'");
    await page.getByTestId('subscribe').click();
    await page.getByTestId('live-active').waitFor();
    await waitFor('initial rows', async () => (await page.getByTestId('live-events').textContent()).includes('exact bigint'), 10_000);
    const sent = Date.now();
    await db.rows("INSERT INTO app.messages VALUES (3, 'r1', 'from another client')");
    await page.locator('tr.insert', { hasText: 'from another client' }).waitFor({ timeout: 1000 });
    console.log(`# insert visible in the console after ${Date.now() - sent} ms`);
    await db.rows('STORAGE FLUSH TABLE app.messages');
    await page.locator('tr.flush').first().waitFor({ timeout: 10_000 });
    await page.screenshot({ path: join(out, '2-live.png'), fullPage: true });
  });

  it('lists the subscription and kills it', async () => {
    await page.getByTestId('nav-Subscriptions').click();
    const table = page.getByTestId('subscriptions');
    await waitFor('the subscription listed', async () => (await table.textContent()).includes("room = 'r1'"), 10_000);
    await page.screenshot({ path: join(out, '3-subscriptions.png'), fullPage: true });
    await table.locator('button.danger').first().click();
    await waitFor('the subscription gone', async () => (await db.rows('SELECT live_id FROM system.live')).length === 0, 10_000);
    await page.getByTestId('nav-Live').click();
  });

  it('shows the other pages', async () => {
    for (const [nav, testId, file] of [['Schema', 'schema-tree', '4-schema'], ['Jobs', 'jobs', '5-jobs'], ['Sessions', 'sessions', '6-sessions'], ['Users', 'users', '7-users'], ['Audit', 'audit', '8-audit']]) {
      await page.getByTestId(`nav-${nav}`).click();
      await page.getByTestId(testId).waitFor();
      if (nav === 'Schema') {
        await page.getByTestId('schema-tree').getByText('messages').click();
        await page.getByText('Schema history').waitFor();
      }
      if (nav === 'Jobs') await waitFor('the flush job', async () => (await page.getByTestId('jobs').textContent()).includes('flush'), 10_000);
      await page.screenshot({ path: join(out, `${file}.png`), fullPage: true });
    }
    assert.deepEqual(page.log.filter((l) => l.includes('pageerror')), []);
  });

  it('creates a user on the Users page; the user logs in elsewhere and sees no admin actions until its role changes', async () => {
    await page.getByTestId('nav-Users').click();
    await page.getByTestId('new-user-name').fill('frank');
    await page.getByTestId('new-user-password').fill('short');
    await page.getByTestId('create-user').click();
    await waitFor('the refusal with its code', async () => /^[A-Z_]+: .*password/i.test(await page.getByTestId('users-notice').textContent()), 10_000);
    await page.getByTestId('new-user-name').fill('erin');
    await page.getByTestId('new-user-password').fill('erin-password-1');
    await page.getByTestId('new-user-role').selectOption('user');
    await page.getByTestId('new-user-email').fill('erin@example.com');
    await page.getByTestId('create-user').click();
    await page.getByTestId('user-erin').waitFor();
    assert.equal(await page.getByTestId('role-erin').textContent(), 'user');
    assert.deepEqual(await db.rows("SELECT role, email FROM system.users WHERE user_id = 'erin'"), [{ role: 'user', email: 'erin@example.com' }]);
    await page.screenshot({ path: join(out, '9-users-created.png'), fullPage: true });

    second = await openPage(browser, 'erin');
    await second.goto(`${db.url}/ui`);
    await second.getByTestId('user').fill('erin');
    await second.getByTestId('password').fill('erin-password-1');
    await second.getByTestId('login').click();
    await second.getByTestId('nav-SQL').waitFor();
    assert.match(await second.getByTestId('who').textContent(), /erin \(no admin role\)/);
    await second.getByTestId('nav-Users').click();
    await second.getByTestId('users-readonly').waitFor();
    assert.equal(await second.getByTestId('create-user-form').count(), 0, 'no create form for role user');
    assert.match(await second.getByTestId('users-error').textContent(), /^PERMISSION_DENIED: /);
    await second.getByTestId('nav-Jobs').click();
    await second.getByTestId('jobs-error').waitFor();
    assert.match(await second.getByTestId('jobs-error').textContent(), /^PERMISSION_DENIED: /);
    await second.screenshot({ path: join(out, '10-as-user-jobs.png'), fullPage: true });

    await page.getByTestId('edit-erin').click();
    await page.getByTestId('edit-role').selectOption('dba');
    await page.getByTestId('set-role').click();
    await waitFor('the role changed', async () => (await page.getByTestId('role-erin').textContent()) === 'dba', 10_000);
    assert.deepEqual(await db.rows("SELECT role FROM system.users WHERE user_id = 'erin'"), [{ role: 'dba' }]);
    // The change invalidated erin's token: the SDK logs in again and the same page now reads system.jobs.
    await second.getByTestId('jobs').getByText('Refresh').click();
    await waitFor('erin reads system.jobs as dba', async () => (await second.getByTestId('jobs-error').count()) === 0
      && (await second.getByTestId('jobs').textContent()).includes('flush'), 10_000);
    // The header follows the new role on the next page switch, and the Users page offers dba's actions.
    await second.getByTestId('nav-Users').click();
    await waitFor('the header shows dba', async () => /erin \(dba\)/.test(await second.getByTestId('who').textContent()), 10_000);
    await second.getByTestId('create-user-form').waitFor();
    await second.getByTestId('nav-Jobs').click();
    await second.screenshot({ path: join(out, '11-as-dba-jobs.png'), fullPage: true });
  });

  it('resets a password and drops the user from the Users page', async () => {
    const login = (password) => fetch(`${db.url}/v1/api/auth/login`, {
      method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ user: 'erin', password }),
    }).then((r) => r.status);
    await page.getByTestId('edit-password').fill('erin-password-2');
    await page.getByTestId('reset-password').click();
    await waitFor('the new password works', async () => (await login('erin-password-2')) === 200, 10_000);
    assert.equal(await login('erin-password-1'), 401);
    await page.getByTestId('drop-user').click();
    await page.getByTestId('confirm-drop').click();
    await waitFor('erin dropped', async () => (await db.rows("SELECT deleted_at FROM system.users WHERE user_id = 'erin'"))[0]?.deleted_at != null, 10_000);
    await page.getByTestId('user-erin').waitFor({ state: 'detached' });
    await page.screenshot({ path: join(out, '12-users-dropped.png'), fullPage: true });
  });

  it('starts a flush from the schema browser and shows it completing on the Jobs page', async () => {
    await db.rows("INSERT INTO app.messages VALUES (10, 'r2', 'to flush'), (11, 'r2', 'to flush too')");
    await page.getByTestId('nav-Schema').click();
    await page.getByTestId('table-app.messages').click();
    await page.getByTestId('table-summary').waitFor();
    await waitFor('the hot rows counted', async () => (await page.getByTestId('stat-hot-rows').textContent()) === '2', 10_000);
    assert.equal(await page.getByTestId('stat-segments').textContent(), '1');
    assert.equal(await page.getByTestId('stat-cold-rows').textContent(), '4');
    assert.equal(await page.getByTestId('stat-flush-policy').textContent(), 'rows:10000,interval:300');
    await page.getByTestId('flush-table').click();
    await page.getByTestId('flush-notice').waitFor();
    const notice = await page.getByTestId('flush-notice').textContent();
    const jobId = /Job ID: (\S+?)[.)\s]/.exec(notice)?.[1];
    assert.ok(jobId, notice);
    await page.screenshot({ path: join(out, '13-schema-flush.png'), fullPage: true });
    await page.getByTestId('nav-Jobs').click();
    const row = page.getByTestId(`job-${jobId}`);
    await row.waitFor();
    // A progress bar shows while a job runs and reports progress; a two-row flush is usually done first.
    const sawProgress = (await page.getByTestId(`progress-${jobId}`).count()) > 0;
    await waitFor('the flush job completed', async () => (await row.getAttribute('data-status')) === 'completed', 15_000);
    console.log(`# flush ${jobId} completed on the Jobs page (progress bar seen while running: ${sawProgress})`);
    await waitFor('polling stopped', async () => (await page.getByTestId('jobs-polling').textContent()) === 'no job running', 5000);
    await page.screenshot({ path: join(out, '14-jobs-flush-completed.png'), fullPage: true });
    await page.getByTestId('nav-Schema').click();
    await page.getByTestId('table-app.messages').click();
    await waitFor('the rows counted cold', async () => (await page.getByTestId('stat-hot-rows').textContent()) === '0'
      && (await page.getByTestId('stat-cold-rows').textContent()) === '6' && (await page.getByTestId('stat-segments').textContent()) === '2', 10_000);
    await page.screenshot({ path: join(out, '15-schema-after-flush.png'), fullPage: true });
    assert.deepEqual(page.log.filter((l) => l.includes('pageerror')), []);
  });

  it('shows a running backup with a progress bar refreshed each second until it completes', async () => {
    // ~120k rows make a backup that runs for a second or more (measured 1.7 s for 100k), long enough to watch.
    await db.rows("CREATE SHARED TABLE app.bulk (id BIGINT PRIMARY KEY, body TEXT) WITH (FLUSH_POLICY = 'rows:10000000')");
    for (let i = 0; i < 120_000; i += 2000) {
      await db.rows(`INSERT INTO app.bulk VALUES ${Array.from({ length: 2000 }, (_, k) => `(${i + k}, 'row ${i + k} of the bulk table')`).join(',')}`);
    }
    await page.getByTestId('nav-Audit').click();
    const jobId = await startBackup();
    await page.getByTestId('nav-Jobs').click();
    const row = page.getByTestId(`job-${jobId}`);
    const seen = new Set();
    let screenshot = false;
    // No Refresh click: the page polls by itself while the job runs.
    await waitFor('the backup completed on the page', async () => {
      const bar = page.getByTestId(`progress-${jobId}`);
      if ((await bar.count()) > 0) {
        seen.add((await bar.textContent().catch(() => '')).trim());
        if (!screenshot) {
          screenshot = true;
          await page.screenshot({ path: join(out, '16-jobs-backup-progress.png'), fullPage: true });
        }
      }
      return (await row.count()) > 0 && (await row.getAttribute('data-status')) === 'completed';
    }, 60_000, 50);
    console.log(`# backup ${jobId}: progress shown on the Jobs page: ${[...seen].join(', ')}`);
    assert.ok(seen.size > 0, 'a progress bar was shown while the backup ran');
    await page.screenshot({ path: join(out, '17-jobs-backup-completed.png'), fullPage: true });
  });

  it('kills a running job from the Jobs page', async () => {
    await page.getByTestId('nav-Audit').click();
    const jobId = await startBackup();
    await page.getByTestId('nav-Jobs').click();
    await page.getByTestId(`kill-${jobId}`).click();
    await waitFor('the backup cancelled', async () => (await page.getByTestId(`job-${jobId}`).getAttribute('data-status')) === 'cancelled', 30_000);
    assert.match(await page.getByTestId('jobs-notice').textContent(), new RegExp(jobId));
    await page.screenshot({ path: join(out, '18-jobs-killed.png'), fullPage: true });
  });

  /** BACKUP DATABASE into a new directory; returns the job id. */
  async function startBackup() {
    const res = await fetch(`${db.url}/v1/api/sql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Basic ${Buffer.from(`root:${ROOT_PASSWORD}`).toString('base64')}` },
      body: JSON.stringify({ sql: `BACKUP DATABASE TO '${join(tempDir('kalamdb-console-backup-'), 'b1')}'` }),
    });
    const started = (await res.json()).results?.[0]?.message ?? '';
    const jobId = /Job ID: (\S+?)(?:[.)\s]|$)/.exec(started)?.[1];
    assert.ok(jobId, started);
    return jobId;
  }
});
