// A run interrupted by a reload resumes from its last finished epoch (weights, optimizer state,
// shuffling state and epoch count come back from IndexedDB) and ends exactly as the same run
// without the interruption: same accuracies, same weights to the byte.
//
// Run from the repository root after scripts/build: `node --test tests/e2e/`.

import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { after, before, test } from 'node:test';
import { guarded, metric, openBrowser, prepare, savedEpochs, screenshot, startServer, waitForState, watch } from './harness.mjs';

const RUN = '?preset=lecture&epochs=4&seed=5&train_size=3000&autostart=1';
let server;

before(async () => {
  prepare();
  server = await startServer();
});
after(async () => { await server?.stop(); });

/** sha256 of the weights the page downloads. */
async function weightsHash(page) {
  const [download] = await Promise.all([
    page.waitForEvent('download', { timeout: 20_000 }),
    page.getByRole('button', { name: 'Download weights' }).click(),
  ]);
  return createHash('sha256').update(readFileSync(await download.path())).digest('hex');
}

async function finish(page) {
  await waitForState(page, 'done', { timeout: 120_000 });
  // The final evaluation and gallery follow `done`; wait for them before reading the results.
  await page.waitForFunction(() => !document.getElementById('evaluate').disabled, null, { timeout: 30_000 });
  return { val: await metric(page, 'val-accuracy'), train: await metric(page, 'train-accuracy'), epoch: await metric(page, 'epoch'), weights: await weightsHash(page) };
}

test('a run interrupted by a reload ends exactly as the uninterrupted run', { timeout: 240_000 }, async (t) => {
  const straight = await openBrowser();
  let want;
  try {
    const page = await straight.context.newPage();
    const problems = watch(page);
    await page.goto(`${server.url}${RUN}`);
    want = await guarded(page, 'resume-straight', () => finish(page));
    assert.deepEqual(problems.problems(), []);
  } finally {
    await straight.close();
  }

  const interrupted = await openBrowser();
  try {
    const page = await interrupted.context.newPage();
    const problems = watch(page);
    await page.goto(`${server.url}${RUN}`);
    await guarded(page, 'resume-interrupted', async () => {
      // Pause once an epoch is saved (so that the reload lands mid-run), then reload.
      await page.waitForFunction(() => Number(document.querySelector('[data-metric="epoch"]').textContent) >= 1, null, { timeout: 60_000, polling: 20 });
      await page.locator('#pause').click();
      await waitForState(page, 'paused');
      for (let i = 0; i < 50 && (await savedEpochs(page)) < 1; i++) await new Promise((r) => setTimeout(r, 100));
      const saved = await savedEpochs(page);
      assert.ok(saved >= 1 && saved < 4, `saved after ${saved} epochs`);
      t.diagnostic(`reloading with ${saved} epoch(s) saved, epoch ${await metric(page, 'epoch')} shown`);
      await page.reload();
      // The page resumes by itself from the saved epoch and finishes the run.
      await page.waitForFunction(() => document.getElementById('status')?.textContent.includes('Resuming')
        || document.documentElement.dataset.state === 'training', null, { timeout: 60_000, polling: 20 });
      const got = await finish(page);
      await screenshot(page, 'resume-finished');
      assert.deepEqual(got, want, 'the resumed run ends as the uninterrupted one');
    });
    assert.deepEqual(problems.problems(), []);
  } finally {
    await interrupted.close();
  }
});
