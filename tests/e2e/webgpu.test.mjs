// End-to-end tests of the WebGPU backend, part 1: the page and the widget training on the GPU as
// the CPU does, and every feature on the GPU's weights. Part 2 (webgpu-moves.test.mjs): runs that
// move between the backends (resume across them, a device lost, no adapter) and augmentation.
//
// Headless Chromium offers WebGPU through its software adapter, SwiftShader, with the flags of
// WEBGPU_ARGS. That adapter is a fallback one, which `backend=auto` rightly does not take, so the
// GPU runs here ask for `backend=webgpu`. Before anything else the adapter must be there, on the
// page and in the training worker (gpu-runs.mjs gpuBrowser): without it every GPU test fails,
// naming the flags (never a silent skip).
//
// SwiftShader computes on the CPU (about 0.5 GFLOP/s), so the runs are small: a bundle of 600
// training and 300 test images (`skywatch subset` of the e2e bundle), the lecture model where the
// point is parity with the CPU. The pages are served without cross-origin isolation: the worker
// then runs the single-threaded simd128 package, whose CPU side (predictions with the GPU's
// weights) computes what the Node reference computes (reference.mjs), bit for bit.
//
// Expected numbers: the reference's run of the same configuration; the GPU sums in another order,
// so its losses match to 1e-3 relative and its accuracies to 0.01 (gpu-runs.mjs). Run from the
// repository root after scripts/build: `node --test tests/e2e/webgpu.test.mjs`.

import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import {
  ACCURACY_TOL, GPU_MODE, LOSS_RTOL, PLAIN, TRAIN_TIMEOUT, assertRunMatches, gpuBrowser, gpuServer, logEpochs, reference,
} from './gpu-runs.mjs';
import {
  GPU_DIR, downloadWeights, errorList, guarded, metric, run, screenshot, settle, startServer, waitForState, watch,
} from './harness.mjs';
import { skyPicture } from './images.mjs';
import { runConfig, shown, train, trainFrom, withWeights } from './reference.mjs';
import { atlasTile, expectedAlpha, saliencyShown, tileOff, viewData, waitForView } from './views.mjs';
import { expectedTile, readSafetensors } from './weights.mjs';

/** The lecture run of the parity test: 2 epochs of 400 images, seed 0. */
const PARITY = { preset: 'lecture', epochs: 2, seed: 0, trainSize: 400 };

/** The tensors of a safetensors file: {name: values} (weights.mjs readSafetensors). */
const tensors = (bytes) => Object.fromEntries(Object.entries(readSafetensors(bytes)).map(([name, t]) => [name, t.data]));

/** Classifies `png` on the page: the bars ({name, percent}) and the verdict. */
async function classify(page, name, png) {
  await page.getByLabel('Picture to classify').setInputFiles({ name, mimeType: 'image/png', buffer: png });
  await page.waitForFunction((n) => document.getElementById('prediction-note')?.textContent.includes(n), name, { timeout: 30_000 });
  const bars = await page.locator('#probability-bars li').evaluateAll((lis) => lis.map((li) => ({
    name: li.querySelector('.name')?.textContent.trim(), percent: Number.parseFloat(li.querySelector('.value')?.textContent),
  })));
  return { bars, prediction: await metric(page, 'prediction') };
}

let server;

before(async () => { server = await gpuServer(); });
after(async () => { await server?.stop(); });

describe('WebGPU on the software adapter', () => {
  let browser;
  before(async () => { browser = await gpuBrowser(server); });
  after(async () => { await browser?.close(); });

  test('the backend field: auto passes over the software adapter; webgpu takes it; wasm; each in the address and the mode line', { timeout: 60_000 }, async () => {
    const page = await browser.context.newPage();
    const watcher = watch(page);
    try {
      await guarded(page, 'webgpu-backend-field', async () => {
        await page.goto(`${server.url}?preset=lecture&epochs=2`);
        await waitForState(page, 'ready', { timeout: 60_000 });
        assert.equal(await page.locator('#f-backend').inputValue(), 'auto');
        assert.equal(await metric(page, 'mode'), `${PLAIN}: the WebGPU adapter is software (fallback)`);
        const expect = [
          ['webgpu', (mode) => assert.match(mode, GPU_MODE), 'webgpu'],
          ['wasm', (mode) => assert.equal(mode, `${PLAIN}: chosen (backend=wasm)`), 'wasm'],
          ['auto', (mode) => assert.equal(mode, `${PLAIN}: the WebGPU adapter is software (fallback)`), null],
        ];
        for (const [choice, check, param] of expect) {
          const before = await metric(page, 'mode');
          await page.locator('#f-backend').selectOption(choice);
          await page.waitForFunction((b) => document.querySelector('[data-metric="mode"]').textContent !== b, before, { timeout: 30_000 });
          check(await metric(page, 'mode'));
          assert.equal(new URL(page.url()).searchParams.get('backend'), param, `the address after choosing ${choice}`);
          assert.equal(await metric(page, 'backend'), choice === 'webgpu' ? 'webgpu' : 'wasm');
        }
        assert.deepEqual(await errorList(page), []);
        assert.deepEqual(watcher.problems(), []);
      });
    } finally {
      await page.close();
    }
  });

  describe('the page on backend=webgpu', () => {
    let page;
    let watcher;
    let trained = false;
    before(async () => {
      page = await browser.context.newPage();
      watcher = watch(page);
    });

    test('trains the lecture model as the CPU reference does: losses within 1e-3 relative, accuracies within 0.01', { timeout: TRAIN_TIMEOUT }, async (t) => {
      await guarded(page, 'webgpu-parity', async () => {
        const { preset, epochs, seed, trainSize } = PARITY;
        await page.goto(`${server.url}?backend=webgpu&preset=${preset}&epochs=${epochs}&seed=${seed}&train_size=${trainSize}&autostart=1`);
        await waitForState(page, 'done', { timeout: TRAIN_TIMEOUT });
        const mode = await metric(page, 'mode');
        t.diagnostic(`mode: ${mode}`);
        assert.match(mode, GPU_MODE);
        assert.equal(await metric(page, 'backend'), 'webgpu');
        const got = await logEpochs(page);
        const ref = reference(runConfig(PARITY));
        t.diagnostic(`page: ${JSON.stringify(got)}; reference: ${JSON.stringify(ref.history.map((s) => [s.loss, s.train_accuracy, s.val_accuracy]))}`);
        assertRunMatches(got, ref, 'WebGPU against the CPU reference');
        assert.deepEqual(await errorList(page), []);
        trained = true;
      });
    });

    // What it learned, for a run on the GPU: the views read a copy of the run on the CPU, brought
    // up to date after every epoch (worker/backend.js Model.inspection). So the hidden units are
    // the GPU's weights as downloaded, tile for tile (weights.mjs: the formula docs/learned.md states),
    // and a picture's saliency is the reference's for those weights (this page runs the
    // reference's package: exact). The hard examples come from the GPU's own loss kernel: the
    // highest losses are the reference run's, within the tolerance of the losses.
    test('what it learned: hidden units and saliency from the GPU\'s weights; hard examples from the GPU\'s losses, as the reference run\'s', { timeout: 120_000 }, async (t) => {
      assert.ok(trained, 'needs the run of the first test');
      await guarded(page, 'webgpu-insight', async () => {
        await settle(page, { timeout: 60_000 });
        const epochs = String(PARITY.epochs);
        await waitForView(page, 'hidden-units', 'epoch', epochs);
        const box = await viewData(page, 'hidden-units');
        assert.equal(box.units, '512');
        const { bytes } = await downloadWeights(page, { prefix: 'webgpu-', timeout: 30_000 });
        const w = readSafetensors(bytes);
        await page.locator('#units-mode').selectOption('weights'); // the change since the start is offered first
        await waitForView(page, 'hidden-units', 'mode', 'weights');
        for (const unit of [0, 1, 511]) {
          const want = expectedTile(w['0.weight'], unit);
          assert.deepEqual(tileOff(await atlasTile(page, unit), want), [], `unit ${unit}: tile bytes [index, page, expected] that differ from round(128 + 127 w / max|w|) of the GPU's weights`);
        }
        // The scrubber goes back to the weights before training, as on wasm.
        assert.equal(await page.locator('#units-epoch').evaluate((r) => r.min), '0');

        const model = withWeights(GPU_DIR, runConfig(PARITY), bytes);
        try {
          const sky = skyPicture(96);
          await classify(page, 'sky-why.png', sky.png);
          await waitForView(page, 'saliency', 'subject', 'picture');
          const seen = await page.locator('#picture-canvas').evaluate((c) => Array.from(c.getContext('2d').getImageData(0, 0, 32, 32).data));
          const ref = model.saliencyRgba(Uint8Array.from(seen), 32, 32);
          const got = await saliencyShown(page);
          t.diagnostic(`saliency: class ${got.class}, max ${got.magnitudeMax}; reference class ${ref.class}, max ${ref.magnitude_max}`);
          assert.equal(Number(got.class), ref.class);
          assert.equal(Number(got.magnitudeMax), Math.fround(ref.magnitude_max));
          assert.deepEqual(got.alpha, expectedAlpha(ref), 'the saliency map: the reference\'s for the GPU\'s weights');
        } finally {
          model.free();
        }
        await page.waitForFunction((e) => document.querySelector('[data-view="hard-examples"]')?.dataset.epochs === e, epochs, { timeout: 60_000 });
        const losses = await page.locator('[data-view="hard-examples"] li[data-list="most-wrong"]').evaluateAll((lis) => lis.map((li) => Number(li.dataset.loss)));
        const want = reference(runConfig(PARITY)).hardExamples(12).most_wrong.map((x) => x.loss);
        t.diagnostic(`highest losses: page ${losses.map((l) => l.toFixed(4)).join(' ')}; reference ${want.map((l) => l.toFixed(4)).join(' ')}`);
        assert.equal(losses.length, want.length, 'the most-wrong list is full');
        losses.forEach((l, i) => assert.ok(Math.abs(l - want[i]) <= LOSS_RTOL * want[i] + 1e-5, `loss ${i}: page ${l}, reference ${want[i]}`));
        await screenshot(page, 'webgpu-insight');
        assert.deepEqual(await errorList(page), []);
      });
    });

    test('evaluation, the gallery and a picture use the GPU\'s weights; they download close to the CPU\'s, and upload', { timeout: 120_000 }, async (t) => {
      assert.ok(trained, 'needs the run of the previous test');
      await guarded(page, 'webgpu-features', async () => {
        await settle(page, { timeout: 60_000 });
        await screenshot(page, 'webgpu-trained');
        const { bytes } = await downloadWeights(page, { prefix: 'webgpu-', timeout: 30_000 });
        const config = runConfig(PARITY);
        const ref = reference(config);
        // The weights: the CPU run's within what float32 sums in another order give (the GPU's
        // products and the CPU's GEMM add in different orders: a few units in the last place,
        // 1.2e-7 each, after these 14 steps; 1e-4 leaves room for other adapters), and the CPU's
        // code reads them.
        const mine = tensors(bytes);
        const cpu = tensors(ref.exportWeights());
        assert.deepEqual(Object.keys(mine).sort(), Object.keys(cpu).sort());
        let worst = 0;
        for (const [name, w] of Object.entries(mine)) {
          assert.equal(w.length, cpu[name].length, name);
          for (let i = 0; i < w.length; i++) worst = Math.max(worst, Math.abs(w[i] - cpu[name][i]) / (1e-3 + Math.abs(cpu[name][i])));
        }
        t.diagnostic(`largest difference from the CPU's weights: ${worst.toExponential(2)} (relative, above 1e-3)`);
        assert.ok(worst < 1e-4, `the weights differ from the CPU run's by ${worst}`);
        const model = withWeights(GPU_DIR, config, bytes);
        try {
          // The confusion tables (evaluated on the GPU): the CPU's counts for these weights, up to
          // the borderline images that float32 rounding may tip (at most 1%).
          const counts = await page.locator('#confusion table.matrix').evaluateAll((ts) => ts.map((tb) => [...tb.querySelectorAll('tbody tr')]
            .map((tr) => [...tr.querySelectorAll('td')].map((td) => Number(td.textContent.replaceAll(',', ''))))));
          assert.equal(counts.length, 2);
          for (const [i, split] of ['test', 'train'].entries()) {
            const want = model.evaluate(split);
            const total = counts[i].flat().reduce((a, b) => a + b, 0);
            assert.equal(total, want.count, `${split}: every image counted`);
            const correct = counts[i][0][0] + counts[i][1][1];
            assert.ok(Math.abs(correct / total - want.accuracy) <= ACCURACY_TOL, `${split}: page ${correct}/${total}, CPU ${want.accuracy}`);
          }
          // The gallery: the verdicts the CPU gives with these weights (the page's package computes
          // predictions as the reference does: exactly).
          const tiles = await page.locator('#gallery-grid figure').evaluateAll((fs) => fs.map((f) => f.getAttribute('aria-label')));
          assert.ok(tiles.length > 0, 'the gallery is drawn');
          for (const label of tiles) {
            const m = /^Test image (\d+), a (\w+): (right|wrong), predicted (\w+) \(/.exec(label);
            assert.ok(m, label);
            const [p] = model.predictTest([Number(m[1])]);
            assert.equal(m[4], p[0] >= p[1] ? 'airplane' : 'bird', label);
          }
          // A picture: the probabilities of the CPU with these weights, to the display's precision.
          const sky = skyPicture(96);
          const answer = await classify(page, 'sky-plane.png', sky.png);
          const want = model.predictRgba(sky.rgba, sky.width, sky.height).probabilities;
          t.diagnostic(`picture: ${JSON.stringify(answer.bars)}, CPU ${want}`);
          answer.bars.forEach((b, i) => assert.ok(Math.abs(b.percent - 100 * want[i]) <= 0.05 + 1e-3, `${b.name}: ${b.percent}%, CPU ${100 * want[i]}%`));
          assert.equal(answer.prediction, want[0] >= want[1] ? 'airplane' : 'bird');

          // Upload the downloaded file: the model on the GPU takes it; the same picture, the same answer.
          await page.getByLabel('Weights file to upload').setInputFiles({ name: 'gpu.safetensors', mimeType: 'application/octet-stream', buffer: bytes });
          await page.waitForFunction(() => /^(Loaded|Could not)/.test(document.getElementById('weights-message')?.textContent ?? ''), null, { timeout: 60_000 });
          assert.match(await page.locator('#weights-message').textContent(), /^Loaded gpu\.safetensors/);
          assert.equal(await metric(page, 'backend'), 'webgpu');
          const again = await classify(page, 'sky-plane-again.png', sky.png);
          assert.deepEqual(again, answer, 'the uploaded weights answer as the trained ones');
        } finally {
          model.free();
        }
        await settle(page, { timeout: 60_000 });
        assert.deepEqual(await errorList(page), []);
        assert.deepEqual(watcher.problems(), []);
      });
    });
    // The previous test ended with the GPU's weights uploaded: a new run of 0 epochs on the GPU.
    // "Train more" trains it on, on the GPU, as the reference trains on from the same file.
    test('Train more from the uploaded weights trains on, on the GPU, as the reference run from the same file', { timeout: TRAIN_TIMEOUT }, async (t) => {
      assert.ok(trained, 'needs the run of the first test');
      await guarded(page, 'webgpu-more', async () => {
        assert.equal(await metric(page, 'epoch'), '0', 'the uploaded weights: a run of 0 epochs');
        const { bytes } = await downloadWeights(page, { prefix: 'webgpu-', timeout: 30_000 });
        await page.locator('#more-epochs').fill('2');
        await page.getByRole('button', { name: 'Train 2 more epochs' }).click();
        await waitForState(page, 'training', { timeout: 10_000, failOn: ['error'] });
        await waitForState(page, 'done', { timeout: TRAIN_TIMEOUT });
        assert.equal(await metric(page, 'backend'), 'webgpu');
        const from = trainFrom(GPU_DIR, runConfig(PARITY), bytes, 2);
        try {
          const got = await logEpochs(page);
          t.diagnostic(`page: ${JSON.stringify(got)}`);
          assertRunMatches(got, from, 'Train more on WebGPU against the reference from the same file');
        } finally {
          from.free();
        }
        assert.deepEqual(await errorList(page), []);
      });
    });
  });

  describe('the widget on a blog page without isolation', () => {
    let assets;
    let host;
    let hostDir;
    let siteDir;
    before(async () => {
      // The widget's static folder, its full bundle the small one of these tests.
      siteDir = join(mkdtempSync(join(tmpdir(), 'skywatch-site-')), 'site');
      run(['build', '--out', siteDir, '--data', GPU_DIR, '--quick-train', '300', '--quick-test', '300']);
      assets = await startServer({ cors: true, root: siteDir });
      hostDir = mkdtempSync(join(tmpdir(), 'skywatch-host-'));
      writeFileSync(join(hostDir, 'index.html'), `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>A blog post</title>
<script type="module" src="${assets.url}widget.js"></script>
</head><body>
<skywatch-trainer id="gpu" backend="webgpu" recipe="full" epochs="1" train-size="300"></skywatch-trainer>
<skywatch-trainer id="auto" epochs="1"></skywatch-trainer>
</body></html>`);
      host = await startServer({ root: hostDir, isolation: false, csp: false });
    });
    after(async () => {
      await host?.stop();
      await assets?.stop();
      if (hostDir) rmSync(hostDir, { recursive: true, force: true });
      if (siteDir) rmSync(dirname(siteDir), { recursive: true, force: true });
    });

    test('offers the full lecture run with WebGPU, trains it on the GPU as the reference; auto takes wasm on a software adapter', { timeout: TRAIN_TIMEOUT }, async (t) => {
      const page = await browser.context.newPage();
      const watcher = watch(page);
      const requests = [];
      page.on('request', (r) => requests.push(r.url()));
      try {
        await page.goto(host.url);
        assert.equal(await page.evaluate(() => self.crossOriginIsolated), false);
        await page.waitForFunction(() => ['gpu', 'auto'].every((id) => document.getElementById(id).dataset.gpuOffered), null, { timeout: 30_000 });
        const shadow = (id, sel) => page.locator(`#${id}`).locator(sel);
        const offered = await page.evaluate(() => ['gpu', 'auto'].map((id) => document.getElementById(id).dataset.gpuOffered));
        assert.deepEqual(offered, ['true', 'false'], 'the full run is offered with WebGPU asked for, not to auto on a software adapter');
        assert.equal(await shadow('gpu', '.recipe').isVisible(), true);
        assert.equal(await shadow('auto', '.recipe').isVisible(), false);
        assert.equal(await shadow('gpu', '#recipe').inputValue(), 'full');

        await shadow('gpu', '#train').click();
        await shadow('auto', '#train').click();
        for (const id of ['gpu', 'auto']) {
          await page.waitForFunction((i) => ['done', 'error'].includes(document.getElementById(i).dataset.state), id, { timeout: TRAIN_TIMEOUT - 30_000, polling: 100 });
          assert.equal(await page.locator(`#${id}`).getAttribute('data-state'), 'done', await shadow(id, '.error').textContent());
        }
        const text = (id, sel) => shadow(id, sel).textContent();
        t.diagnostic(`modes: ${await text('gpu', '[data-metric="mode"]')} | ${await text('auto', '[data-metric="mode"]')}`);
        assert.match(await text('gpu', '[data-metric="mode"]'), GPU_MODE);
        assert.equal(await text('gpu', '[data-metric="backend"]'), 'webgpu');
        assert.equal(await text('auto', '[data-metric="mode"]'), `${PLAIN}: the WebGPU adapter is software (fallback)`);
        assert.equal(await text('auto', '[data-metric="backend"]'), 'wasm');
        // The full run reads the full bundle (data/), the quick one its subset (data-quick/).
        assert.ok(requests.some((u) => u.startsWith(`${assets.url}data/manifest.json`)), 'the full run fetched data/');
        assert.ok(requests.some((u) => u.startsWith(`${assets.url}data-quick/manifest.json`)), 'the quick run fetched data-quick/');

        // The GPU run: 1 epoch of 300 images of the full bundle, as the reference within 0.01.
        const config = runConfig({ epochs: 1, seed: 0, trainSize: 300 });
        const ref = train(GPU_DIR, config);
        try {
          const val = Number(await text('gpu', '[data-metric="val-accuracy"]'));
          t.diagnostic(`GPU widget: val ${val}, reference ${ref.history[0].val_accuracy}`);
          assert.ok(Math.abs(val - ref.history[0].val_accuracy) <= ACCURACY_TOL, `val ${val}, reference ${ref.history[0].val_accuracy}`);
          assert.equal(await text('gpu', '[data-metric="epoch"]'), '1');
          // A dropped picture: the reference model's probabilities within 0.01.
          const picture = skyPicture(80, 1);
          await page.evaluate(async ({ b64 }) => {
            const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
            const dt = new DataTransfer();
            dt.items.add(new File([bytes], 'plane.png', { type: 'image/png' }));
            document.getElementById('gpu').shadowRoot.getElementById('drop').dispatchEvent(new DragEvent('drop', { dataTransfer: dt, bubbles: true, cancelable: true }));
          }, { b64: picture.png.toString('base64') });
          await page.waitForFunction(() => document.getElementById('gpu').shadowRoot.querySelector('[data-metric="prediction"]').textContent !== '', null, { timeout: 30_000 });
          const meters = await shadow('gpu', 'li.bar-row').evaluateAll((lis) => lis.map((li) => Number(li.dataset.probability)));
          const want = ref.predictRgba(picture.rgba, picture.width, picture.height).probabilities;
          assert.equal(meters.length, 2, 'a bar per class');
          meters.forEach((p, i) => assert.ok(Math.abs(p - want[i]) <= 0.01, `probabilities ${meters}, reference ${want}`));
        } finally {
          ref.free();
        }
        // The quick run on wasm (one thread, simd128): the reference's, exactly.
        const quick = train(join(siteDir, 'data-quick'), runConfig({ epochs: 1, seed: 0 }));
        try {
          assert.equal(await text('auto', '[data-metric="val-accuracy"]'), shown(quick.history[0].val_accuracy));
        } finally {
          quick.free();
        }
        await screenshot(page, 'webgpu-widget');
        assert.deepEqual(watcher.problems().filter((p) => !p.includes('favicon.ico')), []);
      } finally {
        await page.close();
      }
    });
  });
});
