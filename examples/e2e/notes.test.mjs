// The notes example in real headless Chromium: serve.mjs starts its own KalamDB (temp data dir, free
// ports); two pages of alice stay in sync live, and bob sees none of her notes.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { BROWSER_SKIP, assertChromium, closeBrowser, launchBrowser, openPage, outputDir, startExample, stopAll, tempDir } from './helpers.mjs';

const out = outputDir('notes');
let example;
let browser;
const pages = {};

const notes = (page) => page.locator('#notes li').evaluateAll((items) => items.map((li) => li.firstChild.textContent));

async function login(label, user) {
  const page = await openPage(browser, label);
  await page.goto(`${example.base}/?user=${user}&password=${user}-demo-1`);
  await page.waitForSelector('#app:not([hidden])', { timeout: 45_000 });
  pages[label] = page;
  return page;
}

// Without Chromium these are skipped with the reason (BROWSER_SKIP); with KALAMDB_REQUIRE_BROWSER=1 (CI) a missing one fails here with the fix.
test('headless Chromium is installed', { skip: BROWSER_SKIP }, () => assertChromium());

describe('notes example in Chromium', { timeout: 180_000, skip: BROWSER_SKIP }, () => {
  before(async () => {
    browser = await launchBrowser();
    example = await startExample('notes', ['--data-dir', join(tempDir('kalamdb-notes-e2e-'), 'data'), '--db-port', '0', '--port', '0']);
  });

  after(async () => {
    const logs = Object.values(pages).flatMap((page) => page.log);
    if (logs.length > 0) writeFileSync(join(out, 'console.log'), logs.join('\n'));
    if (example) writeFileSync(join(out, 'serve.log'), example.output.join(''));
    await closeBrowser(browser);
    await stopAll();
    console.log(`# screenshots and logs: ${out}`);
  });

  test('a note added in one of alice\'s tabs appears live in her other tab, never in bob\'s', async () => {
    const tab1 = await login('alice-1', 'alice');
    const tab2 = await login('alice-2', 'alice');
    const bob = await login('bob', 'bob');
    await tab1.locator('#body').fill('buy milk');
    await tab1.locator('#body').press('Enter');
    await tab2.waitForFunction(() => [...document.querySelectorAll('#notes li')].some((li) => li.firstChild.textContent === 'buy milk'), null, { timeout: 30_000 });
    await tab1.waitForFunction(() => document.querySelectorAll('#notes li').length === 1, null, { timeout: 30_000 });
    await tab2.screenshot({ path: join(out, '1-alice-second-tab.png'), fullPage: true });
    assert.deepEqual(await notes(bob), [], 'bob sees none of alice\'s notes');

    await tab2.locator('#notes li', { hasText: 'buy milk' }).getByRole('button', { name: 'delete' }).click();
    await tab1.waitForFunction(() => document.querySelectorAll('#notes li').length === 0, null, { timeout: 30_000 });
    await tab1.screenshot({ path: join(out, '2-alice-after-delete.png'), fullPage: true });
    assert.deepEqual(await notes(bob), []);
  });
});
