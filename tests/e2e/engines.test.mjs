// The main end-to-end runs in every browser engine (engines.mjs: Chromium through playwright-core,
// Firefox ESR over WebDriver BiDi, WebKitGTK through WebKitWebDriver under Xvfb):
//
// 1. the page on a cross-origin isolated server trains to the accuracy the Chromium test asks
//    for, with the mode the engine allows (2 threads with relaxed SIMD in Chromium and Firefox;
//    simd128 on 1 thread in WebKitGTK, which has no SharedArrayBuffer), and classifies a picture:
//    the probabilities it shows are the reference's (reference.mjs) for its exported weights and
//    the same pixels, and it shows what the model learned: the hidden units (a tile checked
//    against the weights) and the picture's saliency map (its maximum against the reference's);
// 2. the blog widget on a host page without isolation trains single-threaded; that package's
//    arithmetic is deterministic, so its accuracy and its answer for a dropped picture equal the
//    reference's exactly;
// 3. a run interrupted by a reload ends exactly as the uninterrupted run (same weights);
// 4. the convolutional model (preset=conv) trains on the page in the engine's mode and answers as
//    the reference does (exactly on the single-threaded package);
// 5. WebKitGTK under LANG=C.UTF-8 (the default locale of Debian containers: navigator.language is
//    "C", which Intl rejects) still trains.
//
// Runs are sized for CI (2 cores): a few epochs, subsets where the assertion allows. Engines:
// SKYWATCH_E2E_ENGINES (default chromium,firefox,webkit). Run from the repository root after
// scripts/build: `node --test tests/e2e/engines.test.mjs`. Screenshots go to target/e2e-artifacts/.

import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { launch, selectedEngines } from './engines.mjs';
import { DATA_DIR, QUICK_DIR, prepare, run, startServer } from './harness.mjs';
import { skyPicture } from './images.mjs';
import { runConfig, shown, train, withWeights } from './reference.mjs';
import { tileOff } from './views.mjs';
import { expectedTile, readSafetensors } from './weights.mjs';

const ENGINES = selectedEngines();
/** The Chromium test's bar for the isolated page (page.test.mjs, test 1). */
const MIN_ACCURACY = 0.75;
/** Longest a page may take to train one of these runs (WebKitGTK on one thread is the slowest). */
const RUN_TIMEOUT = 240_000;

let isolated;
let assets;
let host;
let siteDir;
let hostDir;

before(async () => {
  prepare();
  // The widget's files come from a `skywatch build` folder on a second origin, as in widget.test.mjs.
  siteDir = join(mkdtempSync(join(tmpdir(), 'skywatch-site-')), 'site');
  run(['build', '--out', siteDir, '--data', DATA_DIR, '--no-full-data']);
  hostDir = mkdtempSync(join(tmpdir(), 'skywatch-host-'));
  [isolated, assets] = await Promise.all([startServer(), startServer({ cors: true, root: siteDir })]);
  writeFileSync(join(hostDir, 'index.html'), `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>A blog post</title>
<script type="module" src="${assets.url}widget.js"></script>
</head><body>
<p>Some text of the post.</p>
<skywatch-trainer id="widget" epochs="5" seed="0"></skywatch-trainer>
</body></html>`);
  host = await startServer({ root: hostDir, isolation: false, csp: false });
});

after(async () => {
  await Promise.all([isolated?.stop(), assets?.stop(), host?.stop()]);
  if (hostDir) rmSync(hostDir, { recursive: true, force: true });
  if (siteDir) rmSync(dirname(siteDir), { recursive: true, force: true });
});

// ---------------------------------------------------------------------------------------------
// The page's hooks, through the engine interface

const metric = (e, name) => e.evaluate((n) => document.querySelector(`[data-metric="${n}"]`)?.textContent.trim() ?? '', name);

/** Waits for `<html data-state>` in `want`; `error` (or another state of `failOn`) fails at once. */
async function waitForState(e, want, { timeout = 60_000, failOn = ['error'] } = {}) {
  const got = await e.waitFor(({ want, failOn }) => {
    const s = document.documentElement.dataset.state;
    return want.includes(s) || failOn.includes(s) ? s : false;
  }, { want: [want].flat(), failOn }, { timeout, what: `data-state ${[want].flat().join('|')}` });
  if (![want].flat().includes(got)) {
    const errors = await e.evaluate(() => [...document.querySelectorAll('#error-list li')].map((li) => li.textContent));
    throw new Error(`page state became ${got} while waiting for ${want}; errors: ${JSON.stringify(errors)}`);
  }
}

/** After `done`: the final evaluation and the gallery are drawn. */
const settled = (e) => e.waitFor(() => !document.getElementById('evaluate').disabled
  && document.getElementById('gallery-grid').childElementCount > 0, null, { what: 'the final evaluation and gallery' });

/** Gives a picture to the page's file input; the shown answer: {prediction, percents, canvas}
 *  (canvas: the 32x32 RGBA the page drew, which is the picture the model saw). */
async function classify(e, name, png) {
  await e.setFiles('#picture-input', [{ name, mimeType: 'image/png', buffer: png }]);
  await e.waitFor((n) => document.getElementById('prediction-note')?.textContent.includes(n)
    || document.getElementById('picture-error')?.textContent.trim(), name, { what: `the answer for ${name}` });
  return e.evaluate(() => ({
    error: document.getElementById('picture-error').textContent.trim(),
    prediction: document.querySelector('[data-metric="prediction"]').textContent,
    percents: [...document.querySelectorAll('#probability-bars li')].map((li) => [li.querySelector('.name').textContent, Number.parseFloat(li.querySelector('.value').textContent)]),
    canvas: Array.from(document.getElementById('picture-canvas').getContext('2d').getImageData(0, 0, 32, 32).data),
  }));
}

/** The weights the page's "Download weights" button saves (safetensors bytes). The blob is
 *  caught where the page makes its object URL: reading the blob: URL back with fetch would be a
 *  request the page's policy (connect-src 'self') refuses. */
async function downloadedWeights(e) {
  const before = await e.evaluate(() => {
    if (!window.__e2eBlobs) {
      const make = URL.createObjectURL.bind(URL);
      window.__e2eBlobs = [];
      URL.createObjectURL = (blob) => { window.__e2eBlobs.push(blob); return make(blob); };
    }
    return window.__e2eBlobs.length;
  });
  await e.click('#download');
  const b64 = await e.waitFor(async (n) => {
    const blob = window.__e2eBlobs[n];
    if (!blob || !document.querySelector('#weights-message a')) return false;
    const bytes = new Uint8Array(await blob.arrayBuffer());
    let s = '';
    for (let i = 0; i < bytes.length; i += 0x8000) s += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
    return btoa(s);
  }, before, { what: 'the downloaded weights' });
  return Buffer.from(b64, 'base64');
}

/** What the reference says of `model` for a picture, against what the page showed. */
function assertSameAnswer(shownAnswer, ref, { exact }) {
  assert.equal(shownAnswer.error, '', 'no error for the picture');
  assert.deepEqual(shownAnswer.canvas, Array.from(ref.image), 'the page drew the 32x32 picture the reference model saw');
  const names = shownAnswer.percents.map(([n]) => n);
  assert.deepEqual(names, ['airplane', 'bird']);
  shownAnswer.percents.forEach(([name, percent], i) => {
    const want = 100 * ref.probabilities[i];
    if (exact) assert.equal(percent.toFixed(1), want.toFixed(1), `${name}: the page shows ${percent}%, the reference ${want}%`);
    // The threaded package rounds differently in the last bits: the display's half a tenth.
    else assert.ok(Math.abs(percent - want) <= 0.05 + 1e-3, `${name}: the page shows ${percent}%, the reference ${want}%`);
  });
  const best = ref.probabilities[0] >= ref.probabilities[1] ? 'airplane' : 'bird';
  assert.equal(shownAnswer.prediction, best, 'the verdict is the reference\'s more probable class');
}

/** Why these engines train on wasm (backend auto): Chromium without its WebGPU flags offers no
 *  adapter; Firefox ESR on Linux and WebKitGTK have no WebGPU at all (the core's probe reasons). */
const NO_GPU = '(no WebGPU adapter|this browser has no WebGPU \\(navigator\\.gpu is missing\\))';

/** The expected mode line of the isolated page. */
const ISOLATED_MODE = {
  chromium: new RegExp(`^wasm, [2-9] threads \\+ SIMD \\(relaxed-simd\\): ${NO_GPU}$`),
  firefox: new RegExp(`^wasm, [2-9] threads \\+ SIMD \\(relaxed-simd\\): ${NO_GPU}$`),
  // No SharedArrayBuffer (although crossOriginIsolated is true): simd128 on one thread.
  webkit: new RegExp(`^wasm, 1 thread \\(no WebAssembly threads in this browser\\), simd128: ${NO_GPU}$`),
};

/** Reference runs, computed once when first needed. */
const references = new Map();
function reference(key, make) {
  if (!references.has(key)) references.set(key, make());
  return references.get(key);
}

for (const name of ENGINES) {
  describe(name, () => {
    test('the isolated page trains to the accuracy asked, in the mode the engine allows, and classifies a picture as the reference does', { timeout: RUN_TIMEOUT + 60_000 }, async (t) => {
      const e = await launch(name);
      try {
        t.diagnostic(e.version);
        await e.guarded('engines-isolated', async () => {
          const config = runConfig({ epochs: 2, seed: 0 });
          await e.goto(`${isolated.url}?preset=lecture&epochs=2&seed=0&autostart=1`);
          await waitForState(e, 'done', { timeout: RUN_TIMEOUT });
          await settled(e);
          const mode = await metric(e, 'mode');
          t.diagnostic(`mode: ${mode}`);
          assert.match(mode, ISOLATED_MODE[name]);
          assert.equal(await e.evaluate(() => self.crossOriginIsolated), true, 'crossOriginIsolated');
          assert.equal(await metric(e, 'epoch'), '2');
          const val = Number(await metric(e, 'val-accuracy'));
          t.diagnostic(`val accuracy ${val}`);
          assert.ok(val >= MIN_ACCURACY && val <= 1, `val accuracy ${val} >= ${MIN_ACCURACY}`);
          const single = mode.startsWith('wasm, 1 thread');
          if (single) {
            // The single-threaded simd128 package: bit for bit the reference's run.
            const ref = reference('full-2-0', () => train(DATA_DIR, config));
            assert.equal(await metric(e, 'val-accuracy'), shown(ref.history[1].val_accuracy), 'val accuracy as the reference run');
            assert.equal(await metric(e, 'train-accuracy'), shown(ref.history[1].train_accuracy), 'train accuracy as the reference run');
          }
          await e.screenshot('engines-isolated-trained');

          const picture = skyPicture(96);
          const answer = await classify(e, 'sky-plane.png', picture.png);
          t.diagnostic(`answer: ${JSON.stringify(answer.percents)}`);
          const weights = await downloadedWeights(e);
          const model = withWeights(QUICK_DIR, config, weights);
          try {
            assertSameAnswer(answer, model.predictRgba(picture.rgba, picture.width, picture.height), { exact: single });
            // What it learned: the hidden units of the last epoch (unit 0's tile is the downloaded
            // weights normalised as the page states) and the picture's saliency map.
            const views = await e.waitFor(() => {
              const u = document.querySelector('[data-view="hidden-units"]');
              const s = document.querySelector('[data-view="saliency"]');
              if (u?.dataset.epoch !== '2' || s.hidden || s.dataset.subject !== 'picture') return false;
              // The tiles of the weights (the change since the start is offered first).
              const mode = document.getElementById('units-mode');
              if (u.dataset.mode !== 'weights') { mode.value = 'weights'; mode.dispatchEvent(new Event('change')); return false; }
              const px = (c, w) => Array.from(c.getContext('2d').getImageData(0, 0, w, 32).data);
              return { units: u.dataset.units, tile: px(document.getElementById('units-atlas'), 32), max: s.dataset.magnitudeMax, cls: s.dataset.class };
            }, null, { what: 'the hidden units and the saliency view' });
            assert.equal(views.units, '512');
            const tile = expectedTile(readSafetensors(weights)['0.weight'], 0);
            assert.deepEqual(tileOff(views.tile, tile), [], 'unit 0\'s tile');
            const saliency = model.saliencyRgba(answer.canvas, 32, 32);
            t.diagnostic(`saliency: class ${views.cls}, max ${views.max} (reference ${saliency.magnitude_max})`);
            assert.equal(Number(views.cls), saliency.class);
            if (single) assert.equal(views.max, String(saliency.magnitude_max), 'the saliency map\'s max, as the reference\'s');
            else assert.ok(Math.abs(Number(views.max) - saliency.magnitude_max) <= 1e-3 * saliency.magnitude_max, 'the saliency map\'s max');
          } finally {
            model.free();
          }
          await e.screenshot('engines-isolated-classified');
          assert.deepEqual(e.problems(), [], 'page errors or console errors');
        });
      } finally {
        await e.close();
      }
    });

    test('the widget on a host page without isolation trains single-threaded, exactly as the reference', { timeout: 120_000 }, async (t) => {
      const e = await launch(name);
      try {
        await e.guarded('engines-widget', async () => {
          await e.goto(host.url);
          assert.equal(await e.evaluate(() => self.crossOriginIsolated), false);
          // Train is disabled until the widget's module has loaded (data-state "ready"); a click
          // before then would do nothing, as for a reader.
          await e.waitFor(() => document.getElementById('widget')?.dataset.state === 'ready', null, { what: 'the widget to be ready' });
          await e.evaluate(() => document.getElementById('widget').shadowRoot.getElementById('train').click());
          const got = await e.waitFor(() => ['done', 'error'].includes(document.getElementById('widget').dataset.state)
            && document.getElementById('widget').dataset.state, null, { timeout: 90_000, what: 'the widget to finish' });
          const read = () => e.evaluate(() => {
            const root = document.getElementById('widget').shadowRoot;
            const text = (sel) => root.querySelector(sel)?.textContent.trim();
            return {
              error: text('.error'), mode: text('[data-metric="mode"]'), epoch: text('[data-metric="epoch"]'),
              val: text('[data-metric="val-accuracy"]'), train: text('[data-metric="train-accuracy"]'),
              prediction: text('[data-metric="prediction"]'),
              meters: [...root.querySelectorAll('li.bar-row')].map((li) => Number(li.dataset.probability)),
            };
          });
          const w = await read();
          t.diagnostic(JSON.stringify(w));
          assert.equal(got, 'done', w.error);
          assert.match(w.mode, new RegExp(`^wasm, 1 thread \\(page not cross-origin isolated\\), simd128: ${NO_GPU}$`));
          assert.equal(w.epoch, '5');
          // The widget's defaults: lecture, 5 epochs, seed 0, the whole quick subset.
          const ref = reference('quick-5-0', () => train(QUICK_DIR, runConfig({ epochs: 5, seed: 0 })));
          assert.equal(w.val, shown(ref.history[4].val_accuracy), 'val accuracy as the reference run');
          assert.equal(w.train, shown(ref.history[4].train_accuracy), 'train accuracy as the reference run');

          // A dropped picture: the same probabilities as the reference model's, to the last bit.
          const picture = skyPicture(80, 1);
          await e.evaluate(async (b64) => {
            const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
            const dt = new DataTransfer();
            dt.items.add(new File([bytes], 'plane.png', { type: 'image/png' }));
            const zone = document.getElementById('widget').shadowRoot.getElementById('drop');
            zone.dispatchEvent(new DragEvent('drop', { dataTransfer: dt, bubbles: true, cancelable: true }));
          }, picture.png.toString('base64'));
          await e.waitFor(() => document.getElementById('widget').shadowRoot.querySelector('[data-metric="prediction"]').textContent !== '', null, { what: 'the widget\'s answer' });
          const answered = await read();
          const want = ref.predictRgba(picture.rgba, picture.width, picture.height);
          // The bars carry the float32 probabilities (`data-probability`), compared as float32.
          assert.deepEqual(answered.meters.map(Math.fround), want.probabilities.map(Math.fround), 'probabilities as the reference model\'s');
          assert.equal(answered.prediction, want.probabilities[0] >= want.probabilities[1] ? 'airplane' : 'bird');
          await e.screenshot('engines-widget');
          assert.deepEqual(e.problems().filter((p) => !p.includes('favicon.ico')), [], 'page errors or console errors');
        });
      } finally {
        await e.close();
      }
    });

    test('a run interrupted by a reload ends exactly as the uninterrupted run', { timeout: 2 * RUN_TIMEOUT + 60_000 }, async (t) => {
      const url = `${isolated.url}?preset=lecture&epochs=4&seed=5&train_size=3000&autostart=1`;
      /** Once the run is done: what it shows, and the sha256 of the weights it saves. */
      const finish = async (e) => {
        await waitForState(e, 'done', { timeout: RUN_TIMEOUT });
        await e.waitFor(() => !document.getElementById('evaluate').disabled, null, { what: 'the final evaluation' });
        const weights = await downloadedWeights(e);
        return {
          epoch: await metric(e, 'epoch'), val: await metric(e, 'val-accuracy'), train: await metric(e, 'train-accuracy'),
          weights: createHash('sha256').update(weights).digest('hex'),
        };
      };
      // Each run in a fresh browser (fresh storage), as a second visit would be.
      let want;
      const straight = await launch(name);
      try {
        await straight.guarded('engines-resume-straight', async () => {
          await straight.goto(url);
          want = await finish(straight);
        });
      } finally {
        await straight.close();
      }

      const e = await launch(name);
      try {
        await e.guarded('engines-resume', async () => {
          await e.goto(url);
          // Paused from inside the page as soon as epoch 1 is shown, so that it lands mid-run.
          await e.evaluate(() => new Promise((resolve, reject) => {
            const deadline = performance.now() + 120_000;
            const check = () => {
              if (Number(document.querySelector('[data-metric="epoch"]')?.textContent) >= 1 && document.documentElement.dataset.state === 'training') {
                document.getElementById('pause').click();
                resolve();
              } else if (document.documentElement.dataset.state === 'error' || performance.now() > deadline) {
                reject(new Error(`no epoch to pause after: state ${document.documentElement.dataset.state}`));
              } else setTimeout(check, 5);
            };
            check();
          }));
          await waitForState(e, 'paused');
          const saved = await e.waitFor(() => new Promise((resolve) => {
            const open = indexedDB.open('skywatch-db');
            open.onsuccess = () => {
              const db = open.result;
              if (!db.objectStoreNames.contains('runs')) { db.close(); resolve(0); return; }
              const get = db.transaction('runs').objectStore('runs').get('model');
              get.onsuccess = () => { db.close(); resolve(get.result?.interrupted ? get.result.history.length : 0); };
              get.onerror = () => { db.close(); resolve(0); };
            };
            open.onerror = () => resolve(0);
          }), null, { what: 'an epoch saved in IndexedDB' });
          assert.ok(saved >= 1 && saved < 4, `saved after ${saved} epochs`);
          t.diagnostic(`reloading with ${saved} epoch(s) saved`);
          await e.reload();
          await e.waitFor(() => document.getElementById('status')?.textContent.includes('Resuming')
            || ['training', 'done'].includes(document.documentElement.dataset.state), null, { what: 'the run to resume' });
          const got = await finish(e);
          await e.screenshot('engines-resumed');
          assert.deepEqual(got, want, 'the resumed run ends as the uninterrupted one');
          assert.deepEqual(e.problems(), [], 'page errors or console errors');
        });
      } finally {
        await e.close();
      }
    });

    test('the isolated page trains the convolutional model (preset=conv) and answers for a picture as the reference does', { timeout: 2 * RUN_TIMEOUT + 60_000 }, async (t) => {
      // The book's Net in the engine's own mode: on 2 threads with relaxed SIMD (Chromium,
      // Firefox) or the deterministic simd128 package on one thread (WebKitGTK), then compared
      // with the reference (reference.mjs) as the lecture's run is above. Kept small: one epoch
      // on 320 images (the walk through every feature is conv.test.mjs, in Chromium).
      const e = await launch(name);
      try {
        await e.guarded('engines-conv', async () => {
          const config = runConfig({ preset: 'conv', epochs: 1, seed: 0, trainSize: 320 });
          await e.goto(`${isolated.url}?preset=conv&epochs=1&seed=0&train_size=320&autostart=1`);
          await waitForState(e, 'done', { timeout: RUN_TIMEOUT });
          await settled(e);
          // The translation test follows the run in the worker, in slices (the page is answered
          // meanwhile: translation.test.mjs); here it must end in every engine's mode.
          await e.waitFor(() => JSON.parse(document.querySelector('[data-view="translation"]')?.dataset.accuracies || '[]').length > 0,
            null, { timeout: RUN_TIMEOUT, what: 'the translation test' });
          const mode = await metric(e, 'mode');
          t.diagnostic(`mode: ${mode}`);
          assert.match(mode, ISOLATED_MODE[name]);
          const val = Number(await metric(e, 'val-accuracy'));
          t.diagnostic(`conv val accuracy after 1 epoch on 320 images: ${val}`);
          // Two classes: a model that learned nothing stays near 0.5; PyTorch's Net passes 0.6 here.
          assert.ok(val > 0.55 && val <= 1, `val accuracy ${val}`);
          const single = mode.startsWith('wasm, 1 thread');
          if (single) {
            const ref = reference('conv-1-0-320', () => train(DATA_DIR, config));
            assert.equal(await metric(e, 'val-accuracy'), shown(ref.history[0].val_accuracy), 'val accuracy as the reference run');
            assert.equal(await metric(e, 'train-accuracy'), shown(ref.history[0].train_accuracy), 'train accuracy as the reference run');
          }
          const picture = skyPicture(96);
          const answer = await classify(e, 'sky-plane.png', picture.png);
          t.diagnostic(`answer: ${JSON.stringify(answer.percents)}`);
          const model = withWeights(QUICK_DIR, config, await downloadedWeights(e));
          try {
            assertSameAnswer(answer, model.predictRgba(picture.rgba, picture.width, picture.height), { exact: single });
          } finally {
            model.free();
          }
          const units = await e.waitFor(() => document.querySelector('[data-view="hidden-units"]')?.dataset.units ?? false, null, { what: 'the first-layer filters' });
          assert.equal(units, '16', "the first convolution's 16 filters as the unit tiles");
          await e.screenshot('engines-conv');
          assert.deepEqual(e.problems(), [], 'page errors or console errors');
        });
      } finally {
        await e.close();
      }
    });

    if (name === 'webkit') {
      // The page falls back to `en` where Intl rejects navigator.language (www/boot.js): without
      // it uPlot's `new Intl.NumberFormat("C")` throws while app.js loads and the page never starts.
      test('under LANG=C.UTF-8 (navigator.language "C") the page still trains', { timeout: 120_000 }, async () => {
        const e = await launch(name, { env: { LANG: 'C.UTF-8' } });
        try {
          await e.guarded('engines-lang-c', async () => {
            await e.goto(`${isolated.url}?preset=lecture&epochs=1&seed=0&train_size=1000&autostart=1`);
            // Once the page runs (WebKitWebDriver's navigation may return before its modules have).
            await waitForState(e, ['training', 'done'], { timeout: 60_000 });
            // The browser's own value (Navigator.prototype's getter: boot.js shadows it with "en"),
            // and proof that Intl rejects it, so that the test tests the fallback.
            const browser = await e.evaluate(() => {
              const language = Object.getOwnPropertyDescriptor(Navigator.prototype, 'language').get.call(navigator);
              let rejected = false;
              try { new Intl.NumberFormat(language); } catch { rejected = true; }
              return { language, rejected, page: navigator.language };
            });
            assert.deepEqual(browser, { language: 'C', rejected: true, page: 'en' }, 'the browser runs under the C locale, and the page under en');
            await waitForState(e, 'done', { timeout: 60_000 });
            assert.equal(await metric(e, 'epoch'), '1');
            assert.ok(Number(await metric(e, 'val-accuracy')) > 0.6);
          });
        } finally {
          await e.close();
        }
      });
    }
  });
}
