// End-to-end tests of the blog widget: a host page on one origin embeds <skywatch-trainer> whose
// files come from a second origin (another port). On a host without COOP/COEP the widget trains
// single-threaded, bit for bit as the reference (reference.mjs: the same package run by Node); on
// an isolated host, with threads. Either way the host's own script keeps running, two widgets work
// independently, a dropped picture gets the reference model's probabilities, and the widget
// requests nothing but its own assets and its data. How long the host's main thread is held up
// while the widgets train is measured by scripts/bench.
//
// Run from the repository root after scripts/build: `node --test tests/e2e/`.

import assert from 'node:assert/strict';
import { copyFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { DATA_DIR, QUICK_DIR, ROOT, openBrowser, prepare, run, screenshot, startServer, watch } from './harness.mjs';
import { skyPicture } from './images.mjs';
import { runConfig, shown, train } from './reference.mjs';

/** Validation accuracy the quick mode must reach (1000 images, 5 epochs; about 0.74-0.77 natively). */
const QUICK_MIN_ACCURACY = 0.70;
/** The two widgets' runs (lecture, 5 epochs on the quick subset), trained by the reference once. */
const SEEDS = { first: 0, second: 7 };
const refs = {};
const reference = (id) => (refs[id] ??= train(QUICK_DIR, runConfig({ epochs: 5, seed: SEEDS[id] })));

let assets;
let hostDir;
let siteDir;

before(async () => {
  prepare();
  // The widget's origin: the static folder `skywatch build` writes for a host (widget, both
  // packages, the quick subset), served with CORS so that another origin may load it.
  siteDir = join(mkdtempSync(join(tmpdir(), 'skywatch-site-')), 'site');
  run(['build', '--out', siteDir, '--data', DATA_DIR, '--no-full-data']);
  assets = await startServer({ cors: true, root: siteDir });
  hostDir = mkdtempSync(join(tmpdir(), 'skywatch-host-'));
  // A blog post: text, the one script tag, two widgets, and a script of the host's own that
  // counts timer ticks (it must keep running while the widgets train).
  writeFileSync(join(hostDir, 'index.html'), `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>A blog post</title>
<script type="module" src="${assets.url}widget.js"></script>
<script src="host.js"></script>
<link rel="stylesheet" href="hostile.css">
</head><body>
<p>Some text of the post.</p>
<skywatch-trainer id="first" epochs="5"></skywatch-trainer>
<p>More text.</p>
<skywatch-trainer id="second" epochs="5" seed="7" compact theme="dark"></skywatch-trainer>
</body></html>`);
  // The blog's theme: a hostile style (tests/e2e/fixtures/hostile.css) that must not reach inside.
  copyFileSync(join(ROOT, 'tests/e2e/fixtures/hostile.css'), join(hostDir, 'hostile.css'));
  writeFileSync(join(hostDir, 'host.js'), 'window.ticks = 0; setInterval(() => { window.ticks += 1; }, 20);\n');
});

after(async () => {
  await assets?.stop();
  if (hostDir) rmSync(hostDir, { recursive: true, force: true });
  if (siteDir) rmSync(dirname(siteDir), { recursive: true, force: true });
});

/** Inside the shadow root of widget `id`. */
const shadow = (page, id, selector) => page.locator(`#${id}`).locator(selector);
const widgetState = (page, id) => page.locator(`#${id}`).getAttribute('data-state');

/** Drops `png` (bytes made here, see images.mjs) on the widget's drop zone, as a file. */
async function dropPicture(page, id, png) {
  await page.evaluate(async ({ id, b64 }) => {
    const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
    const dt = new DataTransfer();
    dt.items.add(new File([bytes], 'plane.png', { type: 'image/png' }));
    const zone = document.getElementById(id).shadowRoot.getElementById('drop');
    zone.dispatchEvent(new DragEvent('drop', { dataTransfer: dt, bubbles: true, cancelable: true }));
  }, { id, b64: png.toString('base64') });
}

for (const isolated of [false, true]) {
  describe(`widget on a host page ${isolated ? 'with' : 'without'} cross-origin isolation`, () => {
    let host;
    let browser;
    before(async () => {
      // The blog is not ours: its inline <style> needs no policy of ours (--no-csp). The widget's
      // own files come from `assets`, which sends the policy; it does not apply to the host page.
      host = await startServer({ root: hostDir, isolation: isolated, csp: false });
      browser = await openBrowser();
    });
    after(async () => {
      await browser?.close();
      await host?.stop();
    });

    if (!isolated) {
      test('a widget whose start failed starts afresh on the next Train', { timeout: 90_000 }, async () => {
        const page = await browser.context.newPage();
        let fail = true;
        await browser.context.route(/\/data-quick\/manifest\.json$/, (route) => (fail ? route.abort('connectionreset') : route.continue()));
        try {
          await page.goto(host.url);
          await page.waitForFunction(() => customElements.get('skywatch-trainer') !== undefined);
          await shadow(page, 'first', '#train').click();
          await page.waitForFunction(() => document.getElementById('first').dataset.state === 'error', null, { timeout: 30_000 });
          assert.match(await shadow(page, 'first', '.error').textContent(), /manifest\.json: the download failed/);
          fail = false;
          await shadow(page, 'first', '#train').click();
          await page.waitForFunction(() => ['done', 'error'].includes(document.getElementById('first').dataset.state)
            && document.getElementById('first').shadowRoot.querySelector('#train').disabled === false, null, { timeout: 60_000 });
          assert.equal(await widgetState(page, 'first'), 'done', await shadow(page, 'first', '.error').textContent());
        } finally {
          await browser.context.unrouteAll({ behavior: 'ignoreErrors' });
          await page.close();
        }
      });
    }

    if (!isolated) {
      test('after training: the strip of the 16 strongest-voting hidden units is the reference\'s change since the start; Train more goes on as the reference\'s longer run', { timeout: 120_000 }, async () => {
        const page = await browser.context.newPage();
        const problems = watch(page);
        try {
          await page.goto(host.url);
          await page.waitForFunction(() => customElements.get('skywatch-trainer') !== undefined);
          const strip = () => shadow(page, 'first', '[data-view="hidden-units"]').evaluate((f) => ({
            hidden: f.hidden, ...f.dataset,
            first: Array.from(f.querySelector('canvas').getContext('2d').getImageData(0, 0, 32, 32).data),
          }));
          await shadow(page, 'first', '#train').click();
          await page.waitForFunction(() => ['done', 'error'].includes(document.getElementById('first').dataset.state), null, { timeout: 90_000, polling: 100 });
          assert.equal(await widgetState(page, 'first'), 'done', await shadow(page, 'first', '.error').textContent());
          // The single-threaded package: the reference's model, so its tiles and their order.
          const tiles = reference('first').unitTiles();
          const got = await strip();
          assert.equal(got.hidden, false, 'the strip is shown once training is done');
          assert.equal(got.units, '16');
          assert.equal(got.total, '512');
          assert.equal(got.epoch, '5');
          assert.equal(got.shown, Array.from(tiles.order.subarray(0, 16)).join(','), 'the 16 strongest voters, strongest first');
          // After 5 epochs the weights have moved a few percent of their random start, so the strip
          // shows what training changed (W - W0), as the page offers first.
          assert.ok(tiles.change_relative > 0 && tiles.change_relative < 1, `the reference's change, ${tiles.change_relative}, is under 1`);
          assert.equal(got.mode, 'change', 'the strip shows the change since the start');
          const u = tiles.order[0];
          assert.deepEqual(got.first, Array.from(tiles.change.subarray(u * 4096, (u + 1) * 4096)), 'the first tile is the strongest unit\'s change');
          assert.notDeepEqual(got.first, Array.from(tiles.tiles.subarray(u * 4096, (u + 1) * 4096)), 'and not its weights');

          // Train more: 5 more epochs from the model, as one run of 10.
          assert.equal(await shadow(page, 'first', '#more').textContent(), 'Train 5 more epochs');
          await shadow(page, 'first', '#more').click();
          await page.waitForFunction(() => document.getElementById('first').dataset.state === 'training', null, { timeout: 10_000, polling: 20 });
          await page.waitForFunction(() => ['done', 'error'].includes(document.getElementById('first').dataset.state), null, { timeout: 90_000, polling: 100 });
          assert.equal(await widgetState(page, 'first'), 'done', await shadow(page, 'first', '.error').textContent());
          const longer = train(QUICK_DIR, runConfig({ epochs: 10, seed: SEEDS.first }));
          try {
            assert.equal(await shadow(page, 'first', '[data-metric="epoch"]').textContent(), '10');
            assert.equal(await shadow(page, 'first', '#epochs').textContent(), '10');
            assert.equal(await shadow(page, 'first', '[data-metric="val-accuracy"]').textContent(), shown(longer.history[9].val_accuracy), 'the 10-epoch run\'s val accuracy');
            assert.equal(await shadow(page, 'first', '[data-metric="train-accuracy"]').textContent(), shown(longer.history[9].train_accuracy));
            const after = await strip();
            assert.equal(after.epoch, '10');
            assert.equal(after.shown, Array.from(longer.unitTiles().order.subarray(0, 16)).join(','));
          } finally {
            longer.free();
          }
          await screenshot(page, 'widget-strip-train-more');
          assert.deepEqual(problems.problems().filter((p) => !p.includes('favicon.ico')), []);
        } finally {
          await page.close();
        }
      });
    }

    test('two widgets train in quick mode, classify a dropped picture, the host keeps running', { timeout: 120_000 }, async () => {
      const page = await browser.context.newPage();
      const problems = watch(page);
      const requests = [];
      page.on('request', (r) => requests.push(r.url()));
      await page.goto(host.url);
      assert.equal(await page.evaluate(() => self.crossOriginIsolated), isolated);
      await page.waitForFunction(() => customElements.get('skywatch-trainer') !== undefined);

      // Host styles do not reach inside: the widget's button keeps its own background, and its
      // text is neither upper-cased nor letter-spaced, while the host's own paragraphs are.
      const bg = await shadow(page, 'first', '#train').evaluate((b) => getComputedStyle(b).backgroundColor);
      assert.notEqual(bg, 'rgb(255, 0, 0)');
      const hostP = await page.locator('body > p').first().evaluate((p) => [getComputedStyle(p).textTransform, getComputedStyle(p).letterSpacing]);
      assert.equal(hostP[0], 'uppercase', 'the hostile style applies to the host page');
      for (const sel of ['#train', '.lede', 'h2', '#bar-label']) {
        const [transform, spacing] = await shadow(page, 'first', sel).evaluate((e) => [getComputedStyle(e).textTransform, getComputedStyle(e).letterSpacing]);
        assert.equal(transform, 'none', `${sel}: text-transform`);
        assert.equal(spacing, 'normal', `${sel}: letter-spacing`);
      }

      const ticks0 = await page.evaluate(() => window.ticks);
      const t0 = Date.now();
      await shadow(page, 'first', '#train').click();
      await shadow(page, 'second', '#train').click();
      for (const id of ['first', 'second']) {
        await page.waitForFunction((id) => ['done', 'error'].includes(document.getElementById(id).dataset.state), id, { timeout: 90_000, polling: 100 });
        assert.equal(await widgetState(page, id), 'done', `widget ${id}: ${await shadow(page, id, '.error').textContent()}`);
      }
      const seconds = (Date.now() - t0) / 1000;
      const ticks = (await page.evaluate(() => window.ticks)) - ticks0;
      console.log(`# ${isolated ? 'isolated' : 'not isolated'}: both widgets trained in ${seconds.toFixed(1)} s, host timer ticked ${ticks} times`);

      for (const id of ['first', 'second']) {
        const text = (sel) => shadow(page, id, sel).textContent();
        const val = await text('[data-metric="val-accuracy"]');
        assert.ok(Number(val) >= QUICK_MIN_ACCURACY, `widget ${id}: validation accuracy ${val} < ${QUICK_MIN_ACCURACY}`);
        assert.equal(await text('[data-metric="epoch"]'), '5');
        const mode = await text('[data-metric="mode"]');
        const ref = reference(id).history[4];
        if (isolated) {
          assert.match(mode, /[2-9] threads/, `widget ${id} mode: ${mode}`);
          // The threaded package may round differently in the last bits: a few of 500 images.
          assert.ok(Math.abs(Number(val) - ref.val_accuracy) <= 0.01, `widget ${id}: ${val}, reference ${ref.val_accuracy}`);
        } else {
          assert.equal(mode, 'wasm, 1 thread (page not cross-origin isolated), simd128: no WebGPU adapter', `widget ${id} mode`);
          // The single-threaded package: bit for bit the reference's run.
          assert.equal(val, shown(ref.val_accuracy), `widget ${id}: the reference's val accuracy`);
          assert.equal(await text('[data-metric="train-accuracy"]'), shown(ref.train_accuracy), `widget ${id}: the reference's train accuracy`);
        }
      }
      // Two independent runs: different seeds give different results.
      const vals = await Promise.all(['first', 'second'].map((id) => shadow(page, id, '[data-metric="val-accuracy"]').textContent()));
      const trains = await Promise.all(['first', 'second'].map((id) => shadow(page, id, '[data-metric="train-accuracy"]').textContent()));
      assert.ok(vals[0] !== vals[1] || trains[0] !== trains[1], 'both widgets report identical runs');

      // The host's script ran on while they trained (its timer ticked).
      assert.ok(ticks > 0, 'the host page\'s timer never ticked');

      // A dropped picture: the reference model's probabilities for the same pixels (the bars'
      // `data-probability` holds them unrounded).
      const picture = skyPicture(80, 1);
      await dropPicture(page, 'first', picture.png);
      await page.waitForFunction(() => document.getElementById('first').shadowRoot.querySelector('[data-metric="prediction"]').textContent !== '', null, { timeout: 15_000 });
      const prediction = await shadow(page, 'first', '[data-metric="prediction"]').textContent();
      const meters = await shadow(page, 'first', 'li.bar-row').evaluateAll((lis) => lis.map((li) => Number(li.dataset.probability)));
      const want = reference('first').predictRgba(picture.rgba, picture.width, picture.height).probabilities;
      if (isolated) meters.forEach((p, i) => assert.ok(Math.abs(p - want[i]) <= 0.01, `probabilities ${meters}, reference ${want}`));
      else assert.deepEqual(meters.map(Math.fround), want.map(Math.fround), 'the reference model\'s probabilities (float32)');
      assert.equal(prediction, want[0] >= want[1] ? 'airplane' : 'bird');
      const percents = await shadow(page, 'first', 'li.bar-row .value').allTextContents();
      assert.deepEqual(percents, meters.map((p) => `${(100 * p).toFixed(1)}%`), 'the percentages shown are the bars\' values');

      // Nothing but the widget's own assets, its data and the host page.
      const foreign = requests.filter((u) => !u.startsWith(assets.url) && !u.startsWith(host.url) && !u.startsWith('blob:'));
      assert.deepEqual(foreign, [], 'requests outside the widget and host origins');
      await screenshot(page, `widget-${isolated ? 'isolated' : 'not-isolated'}`);
      assert.deepEqual(problems.problems().filter((p) => !p.includes('favicon.ico')), []);
      await page.close();
    });
  });
}
