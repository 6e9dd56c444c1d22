// The admin console at /ui in headless Chromium against the real server: log in, run a query, download
// CSV, watch a row inserted by another client arrive in the live view within 1 s and a flush
// notification after it, kill a subscription from the Subscriptions page. A screenshot of each page
// goes to the test output directory (helpers.mjs, outputDir).
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { KalamProcess, ROOT_PASSWORD, closeBrowser, freePort, launchBrowser, openPage, outputDir, stopAll, tempDir, waitFor } from './helpers.mjs';

describe('admin console (/ui) in Chromium', () => {
  let db;
  let browser;
  let page;
  const out = outputDir('console');
  before(async () => {
    db = new KalamProcess(await freePort(), tempDir('kalamdb-console-'));
    await db.start();
    await db.rows('CREATE NAMESPACE app');
    await db.rows('CREATE SHARED TABLE app.messages (id BIGINT PRIMARY KEY, room TEXT, body TEXT)');
    await db.rows("INSERT INTO app.messages VALUES (9007199254740993, 'r1', 'exact bigint'), (2, 'r1', 'hello, \"world\"')");
    browser = await launchBrowser();
    page = await openPage(browser, 'console');
    console.log(`# screenshots: ${out}`);
  });
  after(async () => {
    if (page) console.log(page.log.join('\n'));
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
    await page.getByTestId('sql').fill('SELECT id, body FROM app.messages ORDER BY id');
    await page.getByTestId('sql').press('Control+Enter');
    const result = page.getByTestId('result');
    await result.waitFor();
    const text = await result.textContent();
    assert.match(text, /9007199254740993/);
    assert.match(text, /BigInt/);
    const [download] = await Promise.all([page.waitForEvent('download'), page.getByTestId('csv').click()]);
    const csv = readFileSync(await download.path(), 'utf8');
    assert.equal(csv, 'id,body\r\n2,"hello, ""world"""\r\n9007199254740993,exact bigint\r\n');
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
});
