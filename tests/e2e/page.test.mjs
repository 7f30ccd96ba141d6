// End-to-end tests of the training page in headless Chromium, through the automation hooks of
// www/app.js: training with threads on a cross-origin isolated server, classifying uploaded
// pictures (the probabilities shown are the reference's for the page's weights, reference.mjs),
// saving and restoring weights, the single-threaded fallback without isolation (bit for bit the
// reference's run), the confusion tables and the gallery's "mistakes only" filter against the
// reference, the threaded simd128 package for browsers without relaxed SIMD, and pause and resume.
// Speed is measured by scripts/bench. Run after scripts/build: `node --test tests/e2e/`
// (SKYWATCH_DATA_SOURCE names the CIFAR-10 copy; scripts/test sets it). Artifacts: target/e2e-artifacts/.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import {
  DATA_DIR, ROOT, downloadWeights, errorList, guarded, metric, openBrowser, pageState, prepare, run, screenshot,
  settle, startServer, waitForMetric, waitForState, watch,
} from './harness.mjs';
import { skyPicture } from './images.mjs';
import { runConfig, shown, testLabels, train, withWeights } from './reference.mjs';
import { sampleIndices } from '../../www/shared/sample.js';

const TRAIN_TIMEOUT = 180_000;
/** A bundle whose test split fits the gallery's pool of mistakes (400 images: GALLERY_MISTAKE_POOL
 *  in www/app.js), so that "mistakes only" covers the whole split. */
const SMALL_DIR = join(ROOT, 'target/e2e-data-small');

/** Sets `png` on the picture input and waits for its prediction; returns the predicted class,
 *  the probability bars ({name, percent, best}) and the 32x32 RGBA the page drew (the picture the
 *  model saw). */
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
  const canvas = await page.locator('#picture-canvas').evaluate((c) => Array.from(c.getContext('2d').getImageData(0, 0, 32, 32).data));
  return { prediction, bars, canvas };
}

/** The page's answer for a picture against the reference model's for the same pixels: the same
 *  32x32 picture, and the probabilities shown are the reference's to the display's precision
 *  (one decimal; the threaded package may differ in the last bits, so half a tenth plus a hair). */
function assertReferenceAnswer(answer, ref) {
  assert.deepEqual(answer.canvas, Array.from(ref.image), 'the page drew the 32x32 picture the reference model saw');
  assert.deepEqual(answer.bars.map((b) => b.name), ['airplane', 'bird']);
  answer.bars.forEach((b, i) => {
    const want = 100 * ref.probabilities[i];
    assert.ok(Math.abs(b.percent - want) <= 0.05 + 1e-3, `${b.name}: the page shows ${b.percent}%, the reference ${want}%`);
  });
  const best = ref.probabilities[0] >= ref.probabilities[1] ? 'airplane' : 'bird';
  assert.equal(answer.prediction, best, 'the verdict is the reference\'s more probable class');
  assert.equal(answer.bars.find((b) => b.best)?.name, best, 'the highlighted bar is the verdict');
}

/** The `__e2e` record of the init script: state changes and long tasks. */
const record = (page) => page.evaluate(() => window.__e2e);

function assertNoProblems(watcher, errors) {
  assert.deepEqual(watcher.problems(), [], 'page errors, console errors or failed requests');
  assert.deepEqual(errors, [], 'errors shown on the page');
}

/** The run of tests 4 and 7 (without isolation, and the threaded simd128 package): lecture, 2
 *  epochs on 2000 images, seed 0; its reference trained once, when first needed. Test 7 also
 *  runs AUGMENTED_CONV_RUN. */
const PLAIN_RUN = { preset: 'lecture', epochs: 2, seed: 0, trainSize: 2000 };
const AUGMENTED_CONV_RUN = { preset: 'conv', epochs: 1, seed: 3, trainSize: 1000, augment: 'flip,shift:4' };
let plainReference;
const plainRef = () => (plainReference ??= train(DATA_DIR, runConfig(PLAIN_RUN)));

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
      await page.goto(`${isolated.url}?preset=lecture&epochs=4&seed=0&autostart=1`);
      await waitForState(page, 'done', { timeout: TRAIN_TIMEOUT });
      const sequence = (await record(page)).states.map((s) => s.state);
      t.diagnostic(`states: ${sequence.join(' → ')}`);
      assert.equal(sequence[0], 'loading');
      assert.ok(sequence.includes('training') && !sequence.includes('error'), `states: ${sequence.join(', ')}`);
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
      const trainAccuracy = Number(await metric(page, 'train-accuracy'));
      t.diagnostic(`val accuracy ${val}, train accuracy ${trainAccuracy}`);
      assert.ok(trainAccuracy > 0 && trainAccuracy <= 1, `train accuracy ${trainAccuracy} in (0, 1]`);
      assert.ok(val >= 0.75 && val <= 1, `val accuracy ${val} >= 0.75`);
      valAfterTraining = await metric(page, 'val-accuracy');
      assertNoProblems(watcher, await errorList(page));
      trained = true;
    });
  });

  test('2. classifies an uploaded picture as the reference does with the page\'s weights; a non-image gives an inline error', { timeout: 60_000 }, async (t) => {
    assert.ok(trained, 'needs the model of test 1');
    await guarded(page, 'classify', async () => {
      const picture = page.getByLabel('Picture to classify');
      assert.equal(await picture.getAttribute('type'), 'file');
      assert.match(await picture.getAttribute('accept'), /^image/);

      const weights = await downloadWeights(page);
      const model = withWeights(DATA_DIR, runConfig({ epochs: 4, seed: 0 }), weights.bytes);
      try {
        // The page's validation accuracy is what the reference measures for its weights (the
        // threaded package may round a borderline image differently: at most 2 of 2000).
        const refVal = model.evaluate('test').accuracy;
        t.diagnostic(`val accuracy: page ${valAfterTraining}, reference for its weights ${shown(refVal)}`);
        assert.ok(Math.abs(Number(valAfterTraining) - refVal) <= 0.001, `page ${valAfterTraining}, reference ${refVal}`);

        const sky = skyPicture(96);
        firstPicture = sky.png;
        const answer = await classify(page, 'sky-plane.png', sky.png);
        firstBars = answer.bars;
        t.diagnostic(`prediction ${answer.prediction}: ${answer.bars.map((b) => `${b.name} ${b.percent}%`).join(', ')}`);
        assertReferenceAnswer(answer, model.predictRgba(sky.rgba, sky.width, sky.height));
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

        // Still usable: another picture is classified (as the reference does) and the message goes away.
        const shifted = skyPicture(96, 1);
        assertReferenceAnswer(await classify(page, 'sky-plane-2.png', shifted.png), model.predictRgba(shifted.rgba, shifted.width, shifted.height));
        assert.equal(await page.locator('#picture-error').textContent(), '', 'the inline error is cleared');
        assert.equal(await pageState(page), 'done');
        assertNoProblems(watcher, await errorList(page));
      } finally {
        model.free();
      }
    });
  });

  test('3. downloads the weights, restores the model after a reload, uploads the weights', { timeout: 90_000 }, async (t) => {
    assert.ok(trained, 'needs the model of test 1');
    await guarded(page, 'weights', async () => {
      const { name, path, bytes } = await downloadWeights(page);
      t.diagnostic(`downloaded ${name}`);
      assert.match(name, /\.safetensors$/);
      weightsPath = path;
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

  test('4. falls back to one thread and learns exactly as the reference run', { timeout: TRAIN_TIMEOUT + 30_000 }, async (t) => {
    await guarded(page, 'no-isolation', async () => {
      await page.goto(`${plain.url}?preset=lecture&epochs=2&seed=0&train_size=2000&autostart=1`);
      await waitForState(page, 'done', { timeout: TRAIN_TIMEOUT });
      await settle(page);
      await screenshot(page, '4-no-isolation-trained');

      assert.equal(await page.evaluate(() => self.crossOriginIsolated), false, 'crossOriginIsolated');
      const mode = await metric(page, 'mode');
      t.diagnostic(`mode: ${mode}`);
      assert.equal(mode, 'wasm, 1 thread (page not cross-origin isolated), simd128: no WebGPU adapter', 'wasm (Chromium without its WebGPU flags offers no adapter)');
      assert.equal(await metric(page, 'backend'), 'wasm');
      assert.equal(await metric(page, 'epoch'), '2');
      const val = Number(await metric(page, 'val-accuracy'));
      t.diagnostic(`val accuracy ${val}`);
      assert.ok(val >= 0.7 && val <= 1, `val accuracy ${val} >= 0.70`);
      // The single-threaded simd128 package computes deterministically: the reference's numbers.
      const ref = plainRef();
      const log = (await page.locator('#log').textContent()).split('\n').filter((l) => l.startsWith('Epoch: '));
      assert.equal(log.length, 2, log.join('\n'));
      ref.history.forEach((s, i) => {
        assert.ok(log[i].startsWith(`Epoch: ${i}, Loss: ${s.loss.toFixed(6)}, train accuracy: ${shown(s.train_accuracy)}, val accuracy: ${shown(s.val_accuracy)} (`),
          `epoch ${i}: page "${log[i]}", reference loss ${s.loss}, train ${s.train_accuracy}, val ${s.val_accuracy}`);
      });
      assertNoProblems(watcher, await errorList(page));
    });
  });
});

describe('the confusion tables and the gallery', () => {
  let server;
  let browser;
  let page;
  let watcher;
  let ref;
  const RUN = { preset: 'lecture', epochs: 2, seed: 0 };

  before(async () => {
    run(['subset', '--raw', '--data', DATA_DIR, '--out', SMALL_DIR, '--train', '2000', '--test', '400']);
    // Without isolation, so that the page runs the reference's package (exact comparisons).
    server = await startServer({ isolation: false, data: SMALL_DIR });
    browser = await openBrowser();
    page = await browser.context.newPage();
    watcher = watch(page);
  });
  after(async () => {
    await browser?.close();
    await server?.stop();
    ref?.free();
  });

  /** The two tables as {caption, names, rows (counts, true class by predicted class)}. */
  const tables = () => page.locator('#confusion table.matrix').evaluateAll((ts) => ts.map((tb) => ({
    caption: tb.querySelector('caption').textContent,
    names: [...tb.querySelectorAll('thead th')].map((th) => th.textContent),
    rows: [...tb.querySelectorAll('tbody tr')].map((tr) => ({
      name: tr.querySelector('th').textContent,
      counts: [...tr.querySelectorAll('td')].map((td) => Number(td.textContent.replaceAll(',', ''))),
    })),
  })));

  test('5. the confusion tables: rows add up to the split sizes, the diagonal gives the accuracy shown, the counts are the reference\'s', { timeout: 120_000 }, async (t) => {
    await guarded(page, 'confusion', async () => {
      await page.goto(`${server.url}?preset=lecture&epochs=2&seed=0&autostart=1`);
      await waitForState(page, 'done', { timeout: 60_000 });
      await settle(page);
      assert.equal(await metric(page, 'mode'), 'wasm, 1 thread (page not cross-origin isolated), simd128: no WebGPU adapter');
      ref = train(SMALL_DIR, runConfig(RUN));
      const manifest = JSON.parse(readFileSync(join(SMALL_DIR, 'manifest.json'), 'utf8'));
      const got = await tables();
      t.diagnostic(got.map((tb) => tb.caption).join(' | '));
      assert.equal(got.length, 2, 'a table for each split');
      for (const [tb, split, title] of [[got[0], 'test', 'Test'], [got[1], 'train', 'Train']]) {
        assert.deepEqual(tb.names, ['airplane', 'bird']);
        assert.deepEqual(tb.rows.map((r) => r.name), ['airplane', 'bird']);
        // Each row holds the images of one true class: the split's count of that class.
        assert.deepEqual(tb.rows.map((r) => r.counts.reduce((a, b) => a + b, 0)), manifest[split].per_class, `${title}: rows against the manifest`);
        const total = manifest[split].count;
        const correct = tb.rows.reduce((s, r, i) => s + r.counts[i], 0);
        const m = /^(Test|Train): accuracy (\d\.\d{4}) \(([\d,]+) of ([\d,]+)\), loss (\d+\.\d{4})$/.exec(tb.caption);
        assert.ok(m, tb.caption);
        assert.equal(m[1], title);
        assert.equal(m[2], shown(correct / total), `${title}: the diagonal over the total is the accuracy shown`);
        assert.deepEqual([Number(m[3].replaceAll(',', '')), Number(m[4].replaceAll(',', ''))], [correct, total]);
        // The same package on the same weights: the reference's counts exactly.
        const r = ref.evaluate(split);
        assert.deepEqual(tb.rows.map((row) => row.counts), r.confusion, `${title}: the reference's confusion matrix`);
        assert.equal(m[5], r.loss.toFixed(4), `${title}: the reference's loss`);
      }
      // The test table's accuracy is the last epoch's validation accuracy.
      assert.equal(await metric(page, 'val-accuracy'), shown(ref.history[1].val_accuracy));
      assertNoProblems(watcher, await errorList(page));
    });
  });

  test('6. "mistakes only" shows only mistakes, as many as the confusion table\'s off-diagonal, the reference\'s', { timeout: 60_000 }, async (t) => {
    assert.ok(ref, 'needs the model of test 5');
    await guarded(page, 'mistakes-only', async () => {
      const labels = testLabels(SMALL_DIR);
      const classes = ['airplane', 'bird'];
      const tiles = () => page.locator('#gallery-grid figure').evaluateAll((fs) => fs.map((f) => ({
        wrong: f.classList.contains('wrong'), right: f.classList.contains('right'), label: f.getAttribute('aria-label'),
      })));
      const parse = (label) => {
        const m = /^Test image (\d+), a (\w+): (right|wrong), predicted (\w+) \(/.exec(label);
        assert.ok(m, label);
        return { index: Number(m[1]), truth: m[2], verdict: m[3], guess: m[4] };
      };
      const guessOf = (i) => { const [p] = ref.predictTest([i]); return classes[p[0] >= p[1] ? 0 : 1]; };

      // All images first: 48 drawn with the page's seed, each marked as the reference predicts.
      const all = (await tiles()).map((x) => ({ ...x, ...parse(x.label) }));
      assert.equal(all.length, 48);
      assert.deepEqual(all.map((x) => x.index), sampleIndices(400, 48, RUN.seed, 0), 'the seeded draw of www/shared/sample.js');
      for (const x of all) {
        assert.equal(x.truth, classes[labels[x.index]], `image ${x.index}: its label in the bundle`);
        assert.equal(x.guess, guessOf(x.index), `image ${x.index}: the reference's prediction`);
        assert.equal(x.verdict, x.truth === x.guess ? 'right' : 'wrong');
        assert.equal(x.wrong, x.verdict === 'wrong');
      }
      const right = all.filter((x) => x.verdict === 'right').length;
      assert.match(await page.locator('#gallery-note').textContent(), new RegExp(`^${right} of 48 right; `));

      // Mistakes only: the pool (400) is the whole test split here.
      await page.locator('#mistakes-only').check();
      await page.waitForFunction(() => /mistakes among/.test(document.getElementById('gallery-note').textContent), null, { timeout: 20_000 });
      const note = await page.locator('#gallery-note').textContent();
      t.diagnostic(note);
      const m = /^(\d+) mistakes among (\d+) random test images \((\d+\.\d)%\)(, first (\d+) shown)?; /.exec(note);
      assert.ok(m, note);
      const mistakes = Number(m[1]);
      assert.equal(Number(m[2]), 400);
      const [testTable] = await tables();
      const offDiagonal = testTable.rows.reduce((s, r, i) => s + r.counts.reduce((a, b, j) => a + (i === j ? 0 : b), 0), 0);
      assert.equal(mistakes, offDiagonal, 'as many mistakes as the test table\'s off-diagonal');
      const shownTiles = (await tiles()).map((x) => ({ ...x, ...parse(x.label) }));
      assert.equal(shownTiles.length, Math.min(mistakes, 96), 'every mistake shown, up to 96');
      assert.equal(m[4] !== undefined, mistakes > 96);
      for (const x of shownTiles) {
        assert.ok(x.wrong && !x.right && x.verdict === 'wrong', x.label);
        assert.equal(x.truth, classes[labels[x.index]], `image ${x.index}: its label in the bundle`);
        assert.notEqual(x.guess, x.truth, x.label);
        assert.equal(x.guess, guessOf(x.index), `image ${x.index}: the reference's prediction`);
      }
      // Exactly the reference's mistakes, in the order of the page's seeded draw.
      const order = sampleIndices(400, 400, RUN.seed, 0);
      const refMistakes = order.filter((i) => guessOf(i) !== classes[labels[i]]);
      assert.deepEqual(shownTiles.map((x) => x.index), refMistakes.slice(0, 96));
      await screenshot(page, '6-mistakes-only');

      await page.locator('#mistakes-only').uncheck();
      await page.waitForFunction(() => /of 48 right/.test(document.getElementById('gallery-note').textContent), null, { timeout: 20_000 });
      assert.equal((await tiles()).length, 48);
      assertNoProblems(watcher, await errorList(page));
    });
  });
});

describe('the threaded simd128 package (browsers with threads but without relaxed SIMD)', () => {
  let browser;
  let page;
  let watcher;
  before(async () => {
    browser = await openBrowser();
    page = await browser.context.newPage();
    watcher = watch(page);
  });
  after(async () => { await browser?.close(); });

  test('7. chosen when relaxed SIMD is missing (test hook), it trains on 2 threads as the simd128 reference, an augmented conv run too', { timeout: 120_000 }, async (t) => {
    await guarded(page, 'threads-simd128', async () => {
      // The isolated page, not started: its own worker stays idle while the test drives one of
      // its own through the page's protocol client, with the worker's test hook `noRelaxedSimd`.
      await page.goto(`${isolated.url}?threads=1`);
      await waitForState(page, 'ready', { timeout: 60_000 });
      const requested = [];
      browser.context.on('request', (r) => requested.push(new URL(r.url()).pathname));
      const got = await page.evaluate(async (run) => {
        const { augmented } = run;
        const { WorkerClient } = await import(new URL('client.js', location.href).href);
        const client = new WorkerClient(new URL('worker.js', location.href));
        try {
          const { mode } = await client.request({ type: 'init', threads: 2, persist: false, noRelaxedSimd: true }, 'ready');
          await client.request({ type: 'load-data', url: 'data/' }, 'data-ready');
          const { config } = await client.request({ type: 'preset', name: run.preset }, 'preset');
          const history = [];
          client.on('epoch', ({ stats }) => history.push(stats));
          await client.request({ type: 'train', config: { ...config, epochs: run.epochs, seed: run.seed, train_size: run.trainSize } }, 'done');
          // Then conv with augmentation, whose blocks split their images between the threads.
          const { config: conv } = await client.request({ type: 'preset', name: augmented.preset }, 'preset');
          const convHistory = [];
          client.on('epoch', ({ stats }) => convHistory.push(stats));
          const { epochs, seed, trainSize: train_size, augment } = augmented;
          await client.request({ type: 'train', config: { ...conv, epochs, seed, train_size, augment } }, 'done');
          return { mode, history: history.slice(0, run.epochs), convHistory };
        } finally {
          client.worker.terminate();
        }
      }, { ...PLAIN_RUN, augmented: AUGMENTED_CONV_RUN });
      t.diagnostic(`mode: ${JSON.stringify(got.mode)}`);
      assert.equal(got.mode.reason, '2 threads + SIMD (simd128)');
      assert.equal(got.mode.threads, 2);
      assert.equal(got.mode.kernel, 'simd128');
      assert.ok(requested.includes('/pkg-threads-simd/skywatch_bg.wasm'), `the worker loaded the simd128 threaded package: ${requested.filter((u) => u.includes('pkg')).join(', ')}`);
      assert.equal(got.history.length, 2);
      // simd128 arithmetic is the reference's, on any number of threads.
      const ref = plainRef();
      got.history.forEach((s, i) => {
        t.diagnostic(`epoch ${i}: loss ${s.loss}, val ${s.val_accuracy} (reference ${ref.history[i].loss}, ${ref.history[i].val_accuracy})`);
        assert.equal(shown(s.val_accuracy), shown(ref.history[i].val_accuracy), `epoch ${i}: val accuracy`);
        assert.equal(shown(s.train_accuracy), shown(ref.history[i].train_accuracy), `epoch ${i}: train accuracy`);
        assert.equal(s.loss, ref.history[i].loss, `epoch ${i}: loss, to the last bit`);
      });
      const conv = train(DATA_DIR, runConfig(AUGMENTED_CONV_RUN));
      const pick = (h) => h.map((s) => [s.loss, s.val_accuracy]);
      t.diagnostic(`conv + ${AUGMENTED_CONV_RUN.augment}: ${JSON.stringify(pick(got.convHistory))}, one thread: ${JSON.stringify(pick(conv.history))}`);
      assert.deepEqual(pick(got.convHistory), pick(conv.history), 'conv + augment on 2 threads: the losses (to the last bit) and val accuracies of one thread');
      conv.free();
      assertNoProblems(watcher, await errorList(page));
    });
  });
});

describe('pause and resume', () => {
  let browser;
  let page;
  let watcher;
  before(async () => {
    browser = await openBrowser();
    page = await browser.context.newPage();
    watcher = watch(page);
  });
  after(async () => { await browser?.close(); });

  test('8. pause holds the run where it is; resume finishes it', { timeout: TRAIN_TIMEOUT + 30_000 }, async (t) => {
    await guarded(page, 'pause-resume', async () => {
      await page.goto(`${isolated.url}?preset=lecture&epochs=4&seed=1&train_size=4000&autostart=1`);
      await waitForState(page, 'training', { timeout: 60_000, failOn: ['error', 'done'] });
      await waitForMetric(page, 'epoch', (text) => Number(text) >= 1, { timeout: 60_000 });

      await page.getByRole('button', { name: 'Pause' }).click();
      await waitForState(page, 'paused', { timeout: 10_000, failOn: ['error', 'done'] });
      t.diagnostic(`paused in epoch ${await metric(page, 'epoch')}`);
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
      await settle(page);
      await screenshot(page, '8-pause-resume-done');
      assertNoProblems(watcher, await errorList(page));
    });
  });
});
