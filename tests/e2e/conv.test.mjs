// End-to-end tests of the convolutional model (preset `conv`, the book's Net of chapter 8) in
// Chromium: the page trains it from a link and shows it (the form's convolution channels, the
// first-layer filters as the unit tiles and their change since the start, the nearest training
// images in fc1's space, the views that do not apply saying so) on the WebGPU backend
// (SwiftShader), and the widget trains it on wasm with `preset="conv"`. Kept small (one epoch
// on a few hundred images): the layers themselves are checked natively against PyTorch
// (tests/conv.rs).
//
// Run from the repository root after scripts/build: `node --test tests/e2e/`.

import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, before, test } from 'node:test';
import {
  DATA_DIR, WEBGPU_ARGS, guarded, metric, openBrowser, prepare, run, screenshot, startServer, waitForState, watch,
} from './harness.mjs';
import { atlasTile, viewData, waitForView } from './views.mjs';

let server;

before(async () => {
  prepare();
  server = await startServer();
});
after(async () => { await server?.stop(); });

test('the page trains preset=conv on the GPU and shows its filters', { timeout: 240_000 }, async (t) => {
  // With a WebGPU adapter (SwiftShader) and backend=webgpu asked for: the convolutions run on
  // the GPU's kernels (the mode line says webgpu), and the views read the weights back.
  const browser = await openBrowser({ extraArgs: WEBGPU_ARGS });
  try {
    const page = await browser.context.newPage();
    const watcher = watch(page);
    await guarded(page, 'conv-page', async () => {
      await page.goto(`${server.url}?preset=conv&epochs=1&train_size=320&seed=0&backend=webgpu&autostart=1`);
      await waitForState(page, 'done', { timeout: 200_000 });
      assert.equal(await page.locator('#f-preset').inputValue(), 'conv');
      assert.equal(await page.locator('#f-conv').inputValue(), '16,8', 'the form shows the convolution channels');
      assert.equal(await page.locator('#f-hidden').inputValue(), '32');
      const mode = await metric(page, 'mode');
      t.diagnostic(`mode: ${mode}`);
      assert.match(mode, /^WebGPU on .+\(software\)/, 'the convolutional run trains on the GPU');
      assert.match(await page.locator('#param-summary').textContent(), /18090/, "the book's parameter count");
      const val = Number(await metric(page, 'val-accuracy'));
      t.diagnostic(`validation accuracy after 1 epoch on 320 images: ${val}`);
      // Two classes: a model that learned nothing stays near 0.5; PyTorch's Net passes 0.6 here.
      assert.ok(val > 0.55 && val <= 1, `validation accuracy ${val}`);

      // The first layer's 16 filters as the unit tiles, with the help that says what they are.
      const units = page.locator('[data-view="hidden-units"]');
      await page.waitForFunction(() => document.querySelector('[data-view="hidden-units"]')?.dataset.epoch === '1', null, { timeout: 30_000 });
      assert.equal(await units.getAttribute('data-units'), '16');
      assert.equal(await page.locator('#units-conv-help').isVisible(), true);
      assert.equal(await page.locator('#units-help').isVisible(), false);
      // A clicked filter says what it is instead of asking for top images it does not have.
      await page.locator('#units-atlas').click({ position: { x: 5, y: 5 } });
      await page.waitForFunction(() => /Filter 0 of the first convolution/.test(document.getElementById('unit-note')?.textContent ?? ''), null, { timeout: 10_000 });

      // The filters' change since the start (W - W0): offered first while it is smaller than the
      // start (||W - W0|| < ||W0||), else the weights; the toggle shows the other picture.
      const box = await viewData(page, 'hidden-units');
      t.diagnostic(`filters: ${box.mode} first, ||W - W0|| / ||W0|| = ${box.changeRelative}`);
      assert.equal(box.change, 'available');
      assert.ok(Number(box.changeRelative) > 0, 'one epoch changed the filters');
      assert.equal(box.mode, Number(box.changeRelative) < 1 ? 'change' : 'weights');
      const shown = await atlasTile(page, 0);
      const other = box.mode === 'change' ? 'weights' : 'change';
      await page.locator('#units-mode').selectOption(other);
      await waitForView(page, 'hidden-units', 'mode', other);
      assert.notDeepEqual(await atlasTile(page, 0), shown, `filter 0 as ${other} is another picture`);

      // Nearest training images of a gallery image, in fc1's 32-dimensional space.
      const first = page.locator('#gallery-grid figure').first();
      const index = await first.getAttribute('data-index');
      await first.click();
      await waitForView(page, 'saliency', 'subject', `test:${index}`);
      await page.waitForFunction(() => document.querySelectorAll('[data-view="neighbours"] li').length === 8, null, { timeout: 60_000 });
      const near = await page.locator('[data-view="neighbours"] li').evaluateAll((lis) => lis.map((li) => ({ ...li.dataset })));
      t.diagnostic(`neighbours of test image ${index}: ${near.map((n) => `${n.index} (${Number(n.distance).toFixed(3)})`).join(', ')}`);
      near.slice(1).forEach((n, k) => assert.ok(Number(n.distance) >= Number(near[k].distance), 'nearest first'));
      assert.equal(new Set(near.map((n) => n.index)).size, 8);
      assert.match(await page.locator('#neighbours-note').textContent(), /fc1/);
      await screenshot(page, 'conv-page');
      assert.deepEqual(watcher.problems(), []);
      assert.deepEqual(await page.locator('#error-list li').allTextContents(), []);
    });
  } finally {
    await browser.close();
  }
});

test('the widget trains preset="conv" on one thread', { timeout: 240_000 }, async () => {
  const siteDir = join(mkdtempSync(join(tmpdir(), 'skywatch-site-')), 'site');
  const hostDir = mkdtempSync(join(tmpdir(), 'skywatch-host-'));
  run(['build', '--out', siteDir, '--data', DATA_DIR, '--no-full-data']);
  const assets = await startServer({ cors: true, root: siteDir });
  writeFileSync(join(hostDir, 'index.html'), `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>A post about convolutions</title>
<link rel="icon" href="data:,">
<script type="module" src="${assets.url}widget.js"></script>
</head><body><skywatch-trainer id="c" preset="conv" epochs="1" train-size="320"></skywatch-trainer></body></html>`);
  const host = await startServer({ isolation: false, root: hostDir, csp: false });
  const browser = await openBrowser();
  try {
    const page = await browser.context.newPage();
    const watcher = watch(page);
    await guarded(page, 'conv-widget', async () => {
      await page.goto(host.url);
      await page.waitForFunction(() => document.getElementById('c')?.dataset.state === 'ready', null, { timeout: 60_000 });
      await page.locator('#c').locator('#train').click();
      await page.waitForFunction(() => ['done', 'error'].includes(document.getElementById('c').dataset.state), null, { timeout: 200_000, polling: 200 });
      const error = await page.locator('#c').locator('.error').textContent();
      assert.equal(await page.evaluate(() => document.getElementById('c').dataset.state), 'done', error);
      const strip = page.locator('#c').locator('[data-view="hidden-units"]');
      assert.equal(await strip.getAttribute('data-total'), '16', "the strip shows the first convolution's 16 filters");
      assert.deepEqual(watcher.problems(), []);
    });
  } finally {
    await browser.close();
    await host.stop();
    await assets.stop();
    rmSync(hostDir, { recursive: true, force: true });
    rmSync(dirname(siteDir), { recursive: true, force: true });
  }
});
