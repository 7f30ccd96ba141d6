// End-to-end test of the "new seed" choice: `seed=random` in the address (or the New seed button)
// makes the worker draw a seed from the browser's entropy source (wasm randomSeed, getrandom);
// the drawn number then stands in the address and the form (so the link reproduces the run), in
// the epoch log ("seed N (drawn at random)"), and in the run saved in IndexedDB (its
// configuration), which a reload restores with it.
//
// Run from the repository root after scripts/build: `node --test tests/e2e/`.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { guarded, metric, openBrowser, prepare, screenshot, startServer, waitForState, watch } from './harness.mjs';

let server;

before(async () => {
  prepare();
  server = await startServer();
});
after(async () => { await server?.stop(); });

const urlSeed = (page) => new URL(page.url()).searchParams.get('seed');
const logText = (page) => page.locator('#log').textContent();

/** The configuration of the run the worker saved in IndexedDB (null while there is none). */
const readSavedConfig = (page) => page.evaluate(() => new Promise((resolve, reject) => {
  const open = indexedDB.open('skywatch-db');
  open.onerror = () => reject(open.error);
  open.onsuccess = () => {
    const db = open.result;
    if (!db.objectStoreNames.contains('runs')) { db.close(); resolve(null); return; }
    const get = db.transaction('runs').objectStore('runs').get('model');
    get.onsuccess = () => { db.close(); resolve(get.result?.config ?? null); };
    get.onerror = () => { db.close(); reject(get.error); };
  };
}));

/** The seed of the saved run once it is `seed`: the worker writes after the epoch, without
 *  holding up the run, so the write may land after `done`. Gives up after 5 s with what is there. */
async function savedSeed(page, seed) {
  let config = null;
  for (let i = 0; i < 50; i++) {
    config = await readSavedConfig(page);
    if (String(config?.seed) === seed) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  return String(config?.seed);
}

test('seed=random: a drawn seed in the address, the form, the log and the saved run', { timeout: 120_000 }, async (t) => {
  const browser = await openBrowser();
  try {
    const page = await browser.context.newPage();
    const watcher = watch(page);
    await guarded(page, 'seed-random', async () => {
      await page.goto(`${server.url}?preset=lecture&epochs=1&seed=random&train_size=1000&autostart=1`);
      await waitForState(page, 'done', { timeout: 60_000 });

      const seed = urlSeed(page);
      t.diagnostic(`drawn seed: ${seed}`);
      assert.match(seed, /^\d+$/, `the address holds a number: ${page.url()}`);
      assert.ok(Number(seed) < 2 ** 32, 'drawn below 2^32 (config::RANDOM_SEED_BOUND)');
      assert.equal(await page.locator('#f-seed').inputValue(), seed, 'the form holds the same number');
      assert.ok((await logText(page)).includes(`seed ${seed} (drawn at random)`), await logText(page));
      assert.equal(await savedSeed(page, seed), seed, 'the saved run carries the drawn seed');
      await screenshot(page, 'seed-random');

      // The New seed button: the field says random, and the next run draws again.
      await page.getByRole('button', { name: 'New seed' }).click();
      assert.equal(await page.locator('#f-seed').inputValue(), 'random');
      assert.equal(urlSeed(page), 'random', 'the address says random until the run starts');
      await page.getByRole('button', { name: 'Start' }).click();
      await page.waitForFunction(() => /^\d+$/.test(document.getElementById('f-seed').value), null, { timeout: 30_000 });
      await waitForState(page, 'done', { timeout: 60_000 });
      const second = urlSeed(page);
      t.diagnostic(`second drawn seed: ${second}`);
      assert.match(second, /^\d+$/);
      assert.equal(await page.locator('#f-seed').inputValue(), second);
      assert.ok((await logText(page)).includes(`seed ${second} (drawn at random)`), await logText(page));
      assert.equal(await savedSeed(page, second), second);

      // A reload restores the run with its seed and says how it was chosen.
      await page.reload();
      await waitForState(page, 'ready', { timeout: 60_000 });
      await page.waitForFunction(() => document.getElementById('log').textContent.includes('restored from this browser'), null, { timeout: 30_000 });
      assert.equal(await metric(page, 'restored'), 'yes');
      assert.ok((await logText(page)).includes(`seed ${second} (drawn at random) (restored from this browser)`), await logText(page));
      assert.deepEqual(watcher.problems(), []);
    });
  } finally {
    await browser.close();
  }
});

test('a fixed seed is not drawn: seed=7 stays 7, and the log does not say random', { timeout: 60_000 }, async () => {
  const browser = await openBrowser();
  try {
    const page = await browser.context.newPage();
    await guarded(page, 'seed-fixed', async () => {
      await page.goto(`${server.url}?preset=lecture&epochs=1&seed=7&train_size=1000&autostart=1`);
      await waitForState(page, 'done', { timeout: 60_000 });
      assert.equal(urlSeed(page), '7');
      assert.equal(await page.locator('#f-seed').inputValue(), '7');
      const log = await logText(page);
      assert.ok(log.includes('seed 7\n') || log.includes('seed 7 '), log);
      assert.ok(!log.includes('drawn at random'), log);
    });
  } finally {
    await browser.close();
  }
});
