// End-to-end tests of the training page in headless Chromium, through the automation hooks of
// www/app.js: training with threads on a cross-origin isolated server, classifying uploaded
// pictures, saving and restoring weights, the single-threaded fallback without isolation, and a
// responsive main thread with working pause and resume.
//
// Run from the repository root after scripts/build: `node --test tests/e2e/` (SKYWATCH_DATA_SOURCE
// names the CIFAR-10 copy the data bundle is built from; scripts/test sets it).
// Screenshots, the downloaded weights and timings go to target/e2e-artifacts/.

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import {
  ARTIFACTS, errorList, guarded, metric, openBrowser, pageState, prepare, saveArtifact, screenshot,
  settle, startServer, waitForMetric, waitForState, watch,
} from './harness.mjs';

const TRAIN_TIMEOUT = 180_000;
const timings = {};
const seconds = (ms) => Math.round(ms / 100) / 10;

/** Draws a picture in the page (a sky gradient with a white airplane-like shape, shifted by
 *  `variant`) and returns it as PNG bytes. */
async function drawPng(page, variant = 0) {
  const b64 = await page.evaluate(async (v) => {
    const c = new OffscreenCanvas(128, 96);
    const g = c.getContext('2d');
    const sky = g.createLinearGradient(0, 0, 0, 96);
    sky.addColorStop(0, '#2f6fc0');
    sky.addColorStop(1, '#b9dcf5');
    g.fillStyle = sky;
    g.fillRect(0, 0, 128, 96);
    g.translate(64 + 6 * v, 48 - 4 * v);
    g.fillStyle = '#f4f4f4';
    g.beginPath(); g.ellipse(0, 0, 40, 7, 0, 0, 2 * Math.PI); g.fill(); // fuselage
    g.beginPath(); g.moveTo(-6, 0); g.lineTo(14, -34); g.lineTo(22, -34); g.lineTo(10, 0); g.fill(); // wings
    g.beginPath(); g.moveTo(-6, 0); g.lineTo(14, 34); g.lineTo(22, 34); g.lineTo(10, 0); g.fill();
    g.beginPath(); g.moveTo(-34, 0); g.lineTo(-42, -16); g.lineTo(-36, -16); g.lineTo(-26, 0); g.fill(); // tail
    const bytes = new Uint8Array(await (await c.convertToBlob({ type: 'image/png' })).arrayBuffer());
    let s = '';
    for (const b of bytes) s += String.fromCharCode(b);
    return btoa(s);
  }, variant);
  const png = Buffer.from(b64, 'base64');
  assert.deepEqual([...png.subarray(0, 8)], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a], 'the canvas gave a PNG');
  return png;
}

/** Sets `png` on the picture input and waits for its prediction; returns the predicted class
 *  and the probability bars ({name, percent, best}). */
async function classify(page, name, png) {
  await page.getByLabel('Picture to classify').setInputFiles({ name, mimeType: 'image/png', buffer: png });
  // The note under the bars names the file the prediction is for.
  await page.waitForFunction((n) => document.getElementById('prediction-note')?.textContent.includes(n), name, { timeout: 20_000 });
  const prediction = await metric(page, 'prediction');
  const bars = await page.locator('#probability-bars li').evaluateAll((lis) => lis.map((li) => ({
    name: li.querySelector('.name')?.textContent.trim(),
    percent: Number.parseFloat(li.querySelector('.value')?.textContent),
    best: li.classList.contains('best'),
  })));
  return { prediction, bars };
}

/** The `__e2e` record of the init script: state changes and long tasks. */
const record = (page) => page.evaluate(() => window.__e2e);

/** performance.now() when the page first entered `state` (after `from`), from the record. */
function firstEntry(rec, state, from = -Infinity) {
  return rec.states.find((s) => s.state === state && s.t >= from)?.t;
}

function assertNoProblems(watcher, errors) {
  assert.deepEqual(watcher.problems(), [], 'page errors, console errors or failed requests');
  assert.deepEqual(errors, [], 'errors shown on the page');
}

let isolated;
let plain;

before(async () => {
  prepare();
  [isolated, plain] = await Promise.all([startServer({ isolation: true }), startServer({ isolation: false })]);
  assert.equal(isolated.isolated, true, 'the default server is cross-origin isolated');
  assert.equal(plain.isolated, false, '--no-isolation');
});

after(async () => {
  await Promise.all([isolated?.stop(), plain?.stop()]);
  saveArtifact('timings.json', `${JSON.stringify(timings, null, 2)}\n`);
});

describe('cross-origin isolated server', () => {
  let browser;
  let page;
  let watcher;
  let trained = false;
  let weightsPath;
  let valAfterTraining;
  let firstPicture;
  let firstBars;

  before(async () => {
    browser = await openBrowser();
    page = await browser.context.newPage();
    watcher = watch(page);
  });
  after(async () => { await browser?.close(); });

  test('1. trains the lecture preset with threads to >= 0.75 validation accuracy', { timeout: TRAIN_TIMEOUT + 30_000 }, async (t) => {
    await guarded(page, 'train-isolated', async () => {
      const started = Date.now();
      await page.goto(`${isolated.url}?preset=lecture&epochs=4&seed=0&autostart=1`);
      await waitForState(page, 'done', { timeout: TRAIN_TIMEOUT });
      const wall = Date.now() - started;
      const rec = await record(page);
      const trainingStart = firstEntry(rec, 'training');
      const doneAt = firstEntry(rec, 'done', trainingStart);
      timings.isolatedLoadSeconds = seconds(trainingStart);
      timings.isolatedTrainingSeconds = seconds(doneAt - trainingStart);
      timings.isolatedTotalSeconds = seconds(wall);
      t.diagnostic(`page load to training: ${timings.isolatedLoadSeconds} s; 4 epochs: ${timings.isolatedTrainingSeconds} s; goto to done: ${timings.isolatedTotalSeconds} s`);
      const sequence = rec.states.map((s) => s.state);
      t.diagnostic(`states: ${sequence.join(' → ')}`);
      assert.equal(sequence[0], 'loading');
      assert.ok(trainingStart !== undefined && doneAt !== undefined && !sequence.includes('error'), `states: ${sequence.join(', ')}`);
      // The final evaluation and gallery come after `done`; the screenshot should show them.
      await settle(page);
      await screenshot(page, '1-isolated-trained');

      assert.equal(await page.evaluate(() => self.crossOriginIsolated), true, 'crossOriginIsolated');
      const mode = await metric(page, 'mode');
      t.diagnostic(`mode: ${mode}`);
      const threads = Number(/(\d+) threads/.exec(mode)?.[1] ?? 1);
      assert.ok(threads >= 2, `mode "${mode}" should say 2 or more threads`);
      assert.equal(await metric(page, 'epoch'), '4');
      const val = Number(await metric(page, 'val-accuracy'));
      const train = Number(await metric(page, 'train-accuracy'));
      t.diagnostic(`val accuracy ${val}, train accuracy ${train}`);
      assert.ok(train > 0 && train <= 1, `train accuracy ${train} in (0, 1]`);
      assert.ok(val >= 0.75 && val <= 1, `val accuracy ${val} >= 0.75`);
      valAfterTraining = await metric(page, 'val-accuracy');
      assertNoProblems(watcher, await errorList(page));
      trained = true;
    });
  });

  test('2. classifies an uploaded picture; a non-image gives an inline error', { timeout: 60_000 }, async (t) => {
    assert.ok(trained, 'needs the model of test 1');
    await guarded(page, 'classify', async () => {
      const picture = page.getByLabel('Picture to classify');
      assert.equal(await picture.getAttribute('type'), 'file');
      assert.match(await picture.getAttribute('accept'), /^image/);

      firstPicture = await drawPng(page, 0);
      const { prediction, bars } = await classify(page, 'sky-plane.png', firstPicture);
      assert.ok(['airplane', 'bird'].includes(prediction), `prediction "${prediction}"`);
      firstBars = bars;
      t.diagnostic(`prediction ${prediction}: ${bars.map((b) => `${b.name} ${b.percent}%`).join(', ')}`);
      assert.deepEqual(bars.map((b) => b.name), ['airplane', 'bird']);
      const sum = bars.reduce((s, b) => s + b.percent, 0);
      assert.ok(Math.abs(sum - 100) <= 0.2, `the probabilities add up to ${sum}%`);
      assert.equal(bars.find((b) => b.best)?.name, prediction, 'the highlighted bar is the prediction');
      assert.equal(await page.locator('#picture-error').textContent(), '');
      await screenshot(page, '2-classified');

      // A text file that claims to be a PNG: an inline message, nothing stuck.
      await picture.setInputFiles({ name: 'not-a-picture.png', mimeType: 'image/png', buffer: Buffer.from('this is plain text, not a PNG\n') });
      await page.waitForFunction(() => document.getElementById('picture-error')?.textContent.trim() !== '', null, { timeout: 20_000 });
      const inline = await page.locator('#picture-error').textContent();
      t.diagnostic(`inline error: ${inline}`);
      assert.match(inline, /not-a-picture\.png/);
      assert.equal(await pageState(page), 'done', 'the page state stays done');
      assert.equal(await page.locator('#picture-error').isVisible(), true, 'the inline error is visible');
      await screenshot(page, '2-not-an-image');

      // Still usable: another picture is classified and the message goes away.
      const second = await classify(page, 'sky-plane-2.png', await drawPng(page, 1));
      assert.ok(['airplane', 'bird'].includes(second.prediction));
      assert.equal(await page.locator('#picture-error').textContent(), '', 'the inline error is cleared');
      assert.equal(await pageState(page), 'done');
      assertNoProblems(watcher, await errorList(page));
    });
  });

  test('3. downloads the weights, restores the model after a reload, uploads the weights', { timeout: 90_000 }, async (t) => {
    assert.ok(trained, 'needs the model of test 1');
    await guarded(page, 'weights', async () => {
      const [download] = await Promise.all([
        page.waitForEvent('download', { timeout: 20_000 }),
        page.getByRole('button', { name: 'Download weights' }).click(),
      ]);
      const name = download.suggestedFilename();
      t.diagnostic(`downloaded ${name}`);
      assert.match(name, /\.safetensors$/);
      weightsPath = join(ARTIFACTS, name);
      await download.saveAs(weightsPath);
      const bytes = readFileSync(weightsPath);
      assert.ok(bytes.length > 8, 'the file has a header');
      const headerLength = Number(bytes.readBigUInt64LE(0));
      assert.ok(headerLength > 0 && 8 + headerLength <= bytes.length, `safetensors header length ${headerLength} of ${bytes.length} bytes`);
      const header = JSON.parse(bytes.subarray(8, 8 + headerLength).toString('utf8'));
      assert.ok(bytes.subarray(8, 8 + headerLength).includes('0.weight'), 'the header names 0.weight');
      assert.deepEqual(header['0.weight'].shape, [512, 3072]);
      assert.deepEqual(header['2.weight'].shape, [2, 512]);
      assert.equal(header['0.weight'].dtype, 'F32');

      // Same context, so IndexedDB keeps the model; autostart was honoured once only.
      const epochBefore = await metric(page, 'epoch');
      await page.reload();
      await waitForState(page, ['ready', 'done'], { timeout: 60_000 });
      assert.equal(await pageState(page), 'ready', 'a reload does not start training again');
      assert.equal(await metric(page, 'restored'), 'yes', 'restored');
      assert.equal(await metric(page, 'epoch'), epochBefore, 'epochs after the reload');
      assert.equal(await metric(page, 'val-accuracy'), valAfterTraining, 'val accuracy after the reload');
      t.diagnostic(`restored: ${await page.locator('.restored').textContent()}`);
      await settle(page);
      await screenshot(page, '3-restored');

      // Upload the downloaded file: it replaces the model without an error.
      await page.getByLabel('Weights file to upload').setInputFiles(weightsPath);
      await page.waitForFunction(() => /^(Loaded|Could not)/.test(document.getElementById('weights-message')?.textContent ?? ''), null, { timeout: 20_000 });
      const message = await page.locator('#weights-message').textContent();
      t.diagnostic(`weights message: ${message}`);
      assert.match(message, /^Loaded /);
      assert.equal(await pageState(page), 'ready');
      assert.equal(await page.locator('#weights-message').isVisible(), true);
      // The uploaded weights are the trained ones: the first picture gets the same probabilities.
      const again = await classify(page, 'sky-plane-again.png', firstPicture);
      t.diagnostic(`the first picture with the uploaded weights: ${again.bars.map((b) => `${b.name} ${b.percent}%`).join(', ')}`);
      assert.deepEqual(again.bars, firstBars, 'same probabilities as with the trained model');
      await settle(page);
      await screenshot(page, '3-uploaded');
      assertNoProblems(watcher, await errorList(page));
    });
  });
});

describe('server without cross-origin isolation', () => {
  let browser;
  let page;
  let watcher;
  before(async () => {
    browser = await openBrowser();
    page = await browser.context.newPage();
    watcher = watch(page);
  });
  after(async () => { await browser?.close(); });

  test('4. falls back to one thread and still learns', { timeout: TRAIN_TIMEOUT + 30_000 }, async (t) => {
    await guarded(page, 'no-isolation', async () => {
      const started = Date.now();
      await page.goto(`${plain.url}?preset=lecture&epochs=2&seed=0&train_size=2000&autostart=1`);
      await waitForState(page, 'done', { timeout: TRAIN_TIMEOUT });
      timings.plainTotalSeconds = seconds(Date.now() - started);
      const rec = await record(page);
      const trainingStart = firstEntry(rec, 'training');
      timings.plainTrainingSeconds = seconds(firstEntry(rec, 'done', trainingStart) - trainingStart);
      t.diagnostic(`2 epochs on 2000 images, 1 thread: ${timings.plainTrainingSeconds} s (goto to done ${timings.plainTotalSeconds} s)`);
      await settle(page);
      await screenshot(page, '4-no-isolation-trained');

      assert.equal(await page.evaluate(() => self.crossOriginIsolated), false, 'crossOriginIsolated');
      const mode = await metric(page, 'mode');
      t.diagnostic(`mode: ${mode}`);
      assert.match(mode, /\b1 thread\b/);
      assert.equal(await metric(page, 'epoch'), '2');
      const val = Number(await metric(page, 'val-accuracy'));
      t.diagnostic(`val accuracy ${val}`);
      assert.ok(val >= 0.7 && val <= 1, `val accuracy ${val} >= 0.70`);
      assertNoProblems(watcher, await errorList(page));
    });
  });
});

describe('responsiveness', () => {
  let browser;
  let page;
  let watcher;
  before(async () => {
    browser = await openBrowser();
    page = await browser.context.newPage();
    watcher = watch(page);
  });
  after(async () => { await browser?.close(); });

  test('5. no long tasks over 200 ms while training; pause and resume work', { timeout: TRAIN_TIMEOUT + 30_000 }, async (t) => {
    await guarded(page, 'responsiveness', async () => {
      await page.goto(`${isolated.url}?preset=lecture&epochs=4&seed=1&train_size=4000&autostart=1`);
      await waitForState(page, 'training', { timeout: 60_000, failOn: ['error', 'done'] });
      await waitForMetric(page, 'epoch', (text) => Number(text) >= 1, { timeout: 60_000 });

      await page.getByRole('button', { name: 'Pause' }).click();
      await waitForState(page, 'paused', { timeout: 10_000, failOn: ['error', 'done'] });
      const paused = await record(page);
      const pauseClicked = paused.clicks.findLast((c) => c.id === 'pause').t;
      timings.pauseLatencyMs = Math.round(firstEntry(paused, 'paused', pauseClicked) - pauseClicked);
      t.diagnostic(`paused ${timings.pauseLatencyMs} ms after the click, in epoch ${await metric(page, 'epoch')}`);
      const epochPaused = await metric(page, 'epoch');
      const batchPaused = await page.locator('#batch-progress').evaluate((p) => p.value);
      await new Promise((r) => setTimeout(r, 2000)); // the one fixed wait: nothing may move
      assert.equal(await pageState(page), 'paused');
      assert.equal(await metric(page, 'epoch'), epochPaused, 'the epoch metric does not change while paused');
      assert.equal(await page.locator('#batch-progress').evaluate((p) => p.value), batchPaused, 'the batch progress does not move while paused');
      assert.ok(Number(epochPaused) < 4, `paused before the end (epoch ${epochPaused})`);

      await page.getByRole('button', { name: 'Resume' }).click();
      await waitForState(page, 'training', { timeout: 10_000, failOn: ['error'] });
      await waitForState(page, 'done', { timeout: TRAIN_TIMEOUT });
      assert.equal(await metric(page, 'epoch'), '4', 'training went on after resuming');

      const rec = await record(page);
      assert.equal(rec.longtaskError, undefined, 'the long task observer started');
      const from = firstEntry(rec, 'training');
      const to = firstEntry(rec, 'done', from);
      const during = rec.longtasks.filter((l) => l.start + l.duration >= from && l.start <= to);
      const longest = Math.max(0, ...during.map((l) => l.duration));
      timings.responsivenessTrainingSeconds = seconds(to - from);
      timings.longTasksDuringTraining = during.length;
      timings.longestTaskMs = Math.round(longest);
      t.diagnostic(`training window ${seconds(to - from)} s: ${during.length} long tasks, longest ${Math.round(longest)} ms `
        + `(all long tasks of the page, including loading: ${rec.longtasks.map((l) => Math.round(l.duration)).join(', ') || 'none'})`);
      await settle(page);
      await screenshot(page, '5-responsiveness-done');
      const over = during.filter((l) => l.duration > 200);
      assert.deepEqual(over, [], 'main-thread tasks over 200 ms during training');
      assertNoProblems(watcher, await errorList(page));
    });
  });
});
