// End-to-end tests of "Move the picture" (the lecture's last slide) in Chromium: a run from a link
// (with data augmentation for the MLP), the translation test measured by itself when the run
// ends, a test picture moved with the keyboard, and the answer and the first layer's response
// following it; for `lecture` and `conv`. Kept small (one epoch on a few hundred images): the
// shift, the similarity and the test's accuracy at 0 px are checked natively
// (tests/translation.rs).
//
// Run from the repository root after scripts/build: `node --test tests/e2e/`.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { guarded, metric, openBrowser, prepare, startServer, waitForState, watch } from './harness.mjs';

let server;

before(async () => {
  prepare();
  server = await startServer();
});
after(async () => { await server?.stop(); });

for (const [preset, extra, kind] of [['lecture', '&augment=flip,shift:2', 'hidden'], ['conv', '', 'conv']]) {
  test(`translation for ${preset}: the test after the run, a picture moved with the keyboard`, { timeout: 420_000 }, async (t) => {
    const browser = await openBrowser();
    try {
      const page = await browser.context.newPage();
      const watcher = watch(page);
      await guarded(page, `translation-${preset}`, async () => {
        // The control is on the page from the start, disabled until there is a picture.
        await page.goto(`${server.url}?preset=${preset}&epochs=1&train_size=320&seed=0${extra}&autostart=1`);
        const control = page.locator('[data-control="shift"]');
        assert.equal(await control.count(), 1);
        assert.equal(await page.locator('#shift-dx').isDisabled(), true);
        await waitForState(page, 'done', { timeout: 240_000 });
        if (extra) assert.equal(await page.locator('#f-augment').inputValue(), 'flip,shift:2');

        // The translation test, with no click: 7 shifts, accuracy at 0 px = the validation accuracy.
        await page.waitForFunction(() => JSON.parse(document.querySelector('[data-view="translation"]').dataset.accuracies).length === 7, null, { timeout: 180_000 });
        const view = page.locator('[data-view="translation"]');
        const shifts = JSON.parse(await view.getAttribute('data-shifts'));
        const accuracies = JSON.parse(await view.getAttribute('data-accuracies'));
        t.diagnostic(`${preset}: ${JSON.stringify(accuracies)}; ${await page.locator('#translation-text').textContent()}`);
        assert.deepEqual(shifts, [0, 1, 2, 3, 4, 6, 8]);
        assert.ok(accuracies.every((a) => a >= 0 && a <= 1));
        assert.equal(accuracies[0].toFixed(4), await metric(page, 'val-accuracy'));

        // A test picture, then moved right twice and down once with the arrow keys.
        await page.locator('#gallery-grid figure').first().click();
        await page.waitForFunction(() => !document.getElementById('shift-view').hidden, null, { timeout: 30_000 });
        assert.equal(await page.locator('#shift-dx').isDisabled(), false);
        const response = page.locator('[data-view="shift-response"]');
        await page.waitForFunction(() => Math.abs(Number(document.querySelector('[data-view="shift-response"]')?.dataset.similarity) - 1) < 1e-9, null, { timeout: 30_000 });
        const before = await page.locator('#shift-answer').textContent();
        await page.locator('#shift-image').focus();
        for (const key of ['ArrowRight', 'ArrowRight', 'ArrowDown']) await page.keyboard.press(key);
        // The page renders on the next frame.
        await page.waitForFunction(() => document.querySelector('[data-control="shift"]').dataset.dx === '2', null, { timeout: 10_000 });
        assert.equal(await control.getAttribute('data-dy'), '1');
        await page.waitForFunction(() => /^Moved 2 right, 1 down/.test(document.getElementById('shift-answer').textContent), null, { timeout: 30_000 });
        const after = await page.locator('#shift-answer').textContent();
        assert.notEqual(after, before, 'the answer follows the picture');
        const similarity = Number(await response.getAttribute('data-similarity'));
        t.diagnostic(`${preset}: similarity at (2, 1) = ${similarity}; ${after}`);
        if (kind === 'conv') assert.ok(Math.abs(similarity - 1) < 1e-5, `conv1 maps shifted back: ${similarity}`);
        else assert.ok(similarity < 0.999, `the hidden units change: ${similarity}`);
        await page.locator('#shift-reset').click();
        await page.waitForFunction(() => document.querySelector('[data-control="shift"]').dataset.dx === '0', null, { timeout: 10_000 });
        assert.equal(await control.getAttribute('data-dy'), '0');
        assert.deepEqual(watcher.problems(), []);
        assert.deepEqual(await page.locator('#error-list li').allTextContents(), []);
      });
    } finally {
      await browser.close();
    }
  });
}
