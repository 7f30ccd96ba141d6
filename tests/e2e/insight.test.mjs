// End-to-end tests of the views of what the model learned (issue 13), in headless Chromium, through
// their automation hooks (www/page/units.js, why.js, hard.js, band.js):
//
// - on the cross-origin isolated page (threads), a lecture run on the whole bundle: the hidden
//   units follow the epochs, their change since the start (offered first) is W - W0 of the
//   downloaded weights and the reference's initial ones, and their tiles are the downloaded
//   safetensors weights normalised as the page states (computed here, tests/e2e/weights.mjs);
//   the scrubber shows the weights before
//   training (the reference's initial ones); a unit's top and bottom training images are those a
//   plain JavaScript pass over the bundle finds; the PyTorch band hook reads inside or outside as
//   the band file says; the saliency maps of a picture and of a gallery image and the nearest
//   training images are the reference's (reference.mjs) for the page's weights; the hard-example
//   lists are ordered as stated;
// - on a page without isolation (the reference's own package: exact): hidden units, hard
//   examples, top activations and saliency equal the reference's to the bit; "Train more"
//   continues the run exactly as the uninterrupted run (log, epoch counter), also across a
//   reload (which keeps the change view); uploaded weights train on as the reference does from
//   the same file (and the change view says it is not available).
//
// Run from the repository root after scripts/build: `node --test tests/e2e/insight.test.mjs`
// (SKYWATCH_DATA_SOURCE names the CIFAR-10 copy; scripts/test sets it).

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import {
  DATA_DIR, ROOT, downloadWeights, errorList, guarded, metric, openBrowser, prepare, screenshot, settle, startServer,
  waitForState, watch,
} from './harness.mjs';
import { skyPicture } from './images.mjs';
import { bundle, runConfig, shown, train, trainFrom, withWeights } from './reference.mjs';
import { expectedTile, preActivations, readSafetensors, row } from './weights.mjs';
import { atlasTile, expectedAlpha, saliencyShown, tileOff, viewData, waitForView } from './views.mjs';

const TRAIN_TIMEOUT = 240_000;
const CLASSES = ['airplane', 'bird'];

let isolated;
let plain;
let data;

before(async () => {
  prepare();
  data = bundle(DATA_DIR);
  [isolated, plain] = await Promise.all([startServer({ isolation: true }), startServer({ isolation: false })]);
});
after(async () => { await Promise.all([isolated?.stop(), plain?.stop()]); });

// ---------------------------------------------------------------------------------------------
// Reading the views

const listItems = (page, selector) => page.locator(selector).evaluateAll((lis) => lis.map((li) => ({ ...li.dataset, text: li.textContent })));

const logLines = async (page) => (await page.locator('#log').textContent()).split('\n').filter((l) => l.startsWith('Epoch: '));
const logLine = (s) => `Epoch: ${s.epoch}, Loss: ${s.loss.toFixed(6)}, train accuracy: ${shown(s.train_accuracy)}, val accuracy: ${shown(s.val_accuracy)} (`;


async function classify(page, name, png) {
  await page.getByLabel('Picture to classify').setInputFiles({ name, mimeType: 'image/png', buffer: png });
  await page.waitForFunction((n) => document.getElementById('prediction-note')?.textContent.includes(n), name, { timeout: 20_000 });
  return page.locator('#picture-canvas').evaluate((c) => Array.from(c.getContext('2d').getImageData(0, 0, 32, 32).data));
}

/** The indices of `z` sorted by value, largest first (`desc`) or smallest first. */
const ranked = (z, desc) => Array.from(z.keys()).sort((a, b) => (desc ? z[b] - z[a] : z[a] - z[b]) || a - b);

function assertNoProblems(watcher, errors) {
  assert.deepEqual(watcher.problems(), [], 'page errors, console errors or failed requests');
  assert.deepEqual(errors, [], 'errors shown on the page');
}

// ---------------------------------------------------------------------------------------------

describe('the isolated page (threads), lecture on the whole bundle', () => {
  const RUN = { preset: 'lecture', epochs: 3, seed: 0 };
  let browser;
  let page;
  let watcher;
  let weights;
  let tensors;
  let model;
  let trained = false;

  before(async () => {
    browser = await openBrowser();
    page = await browser.context.newPage();
    watcher = watch(page);
  });
  after(async () => {
    model?.free();
    await browser?.close();
  });

  test('1. the hidden units follow the epochs; their tiles are the downloaded weights normalised as stated; the scrubber shows the initial weights', { timeout: TRAIN_TIMEOUT + 60_000 }, async (t) => {
    await guarded(page, 'insight-units', async () => {
      await page.goto(`${isolated.url}?preset=lecture&epochs=3&seed=0&autostart=1`);
      // After the first epoch, while the run goes on: the view shows it (one update per epoch).
      const during = await page.waitForFunction(() => {
        const box = document.querySelector('[data-view="hidden-units"]');
        return box?.dataset.epoch === '1' ? document.documentElement.dataset.state : false;
      }, null, { timeout: TRAIN_TIMEOUT, polling: 20 });
      t.diagnostic(`epoch 1 shown while the page was ${await during.jsonValue()}`);
      assert.equal(await during.jsonValue(), 'training', 'the tiles of epoch 1 appear while training goes on');
      await waitForState(page, 'done', { timeout: TRAIN_TIMEOUT });
      await settle(page);
      await waitForView(page, 'hidden-units', 'epoch', '3');
      const box = await viewData(page, 'hidden-units');
      t.diagnostic(JSON.stringify(box));
      assert.equal(box.units, '512');
      assert.equal(box.order, 'unit');

      weights = await downloadWeights(page, { prefix: 'insight-' });
      tensors = readSafetensors(weights.bytes);
      model = withWeights(DATA_DIR, runConfig(RUN), weights.bytes);
      trained = true;
      // Offered first: the change since the start, W - W0 (W0: the reference's initial weights,
      // the same seeded initialisation in every package), each tile normalised on its own.
      const init = train(DATA_DIR, runConfig({ ...RUN, epochs: 0 }));
      const initial = readSafetensors(init.exportWeights());
      init.free();
      assert.deepEqual([box.mode, box.change], ['change', 'available']);
      const [w, w0] = [tensors['0.weight'], initial['0.weight']];
      assert.ok(Number(box.changeRelative) > 0.01 && Number(box.changeRelative) < 0.1, `||W - W0|| / ||W0|| = ${box.changeRelative}: PyTorch 0.04`);
      for (const unit of [0, 511]) {
        const want = expectedTile({ shape: w.shape, data: w.data.map((v, i) => Math.fround(v - w0.data[i])) }, unit);
        assert.deepEqual(tileOff(await atlasTile(page, unit), want), [], `unit ${unit}: change tile bytes that differ from W - W0 normalised`);
      }
      await page.locator('#units-mode').selectOption('weights');
      await waitForView(page, 'hidden-units', 'mode', 'weights');
      for (const unit of [0, 1, 200, 511]) {
        const want = expectedTile(tensors['0.weight'], unit);
        const got = await atlasTile(page, unit);
        assert.deepEqual(tileOff(got, want), [], `unit ${unit}: tile pixels [index, page, expected] that differ from round(128 + 127 w / max|w|)`);
      }

      // The scrubber: the first kept snapshot is the model before training, the reference's
      // initial weights (the same seeded initialisation in every package).
      const kept = (await page.locator('#units-note').textContent());
      t.diagnostic(kept);
      await page.locator('#units-epoch').evaluate((r) => { r.value = '0'; r.dispatchEvent(new Event('input', { bubbles: true })); });
      await waitForView(page, 'hidden-units', 'epoch', '0');
      for (const unit of [0, 511]) {
        assert.deepEqual(tileOff(await atlasTile(page, unit), expectedTile(w0, unit)), [], `unit ${unit} before training`);
      }
      assert.match(await page.locator('#units-epoch-label').textContent(), /^before training$/);
      const last = await page.locator('#units-epoch').evaluate((r) => r.max);
      await page.locator('#units-epoch').evaluate((r, v) => { r.value = v; r.dispatchEvent(new Event('input', { bubbles: true })); }, last);
      await waitForView(page, 'hidden-units', 'epoch', '3');
      assert.match(await page.locator('#units-epoch-label').textContent(), /^after epoch 3 \(latest\)$/);
      await screenshot(page, 'insight-1-units');
      assertNoProblems(watcher, await errorList(page));
    });
  });

  test('2. a clicked unit: its votes are its outgoing weights; its top and bottom 8 training images are those a pass over the bundle finds', { timeout: 120_000 }, async (t) => {
    assert.ok(trained, 'needs the run of test 1');
    await guarded(page, 'insight-unit', async () => {
      // Strongest voters first: the first tile is the unit with the largest |W2[1,j] - W2[0,j]|.
      await page.locator('#units-order').selectOption('votes');
      await waitForView(page, 'hidden-units', 'order', 'votes');
      const w2 = tensors['2.weight'];
      const units = w2.shape[1];
      const strength = Array.from({ length: units }, (_, j) => Math.abs(w2.data[units + j] - w2.data[j]));
      const strongest = ranked(strength, true)[0];
      const canvas = page.locator('#units-atlas');
      const size = await canvas.boundingBox();
      const scale = size.width / await canvas.evaluate((c) => c.width);
      await canvas.click({ position: { x: 16 * scale, y: 16 * scale } });
      await waitForView(page, 'unit', 'unit', String(strongest));
      const votes = await listItems(page, '#unit-votes li');
      assert.deepEqual(votes.map((v) => Number(v.vote)), [w2.data[strongest], w2.data[units + strongest]].map(Math.fround),
        'the votes are W2[:, unit] of the downloaded weights');
      const first = expectedTile(tensors['0.weight'], strongest);
      assert.deepEqual(tileOff(await atlasTile(page, 0), first), [], `the first tile in this order is unit ${strongest}'s`);

      await page.waitForFunction(() => document.querySelectorAll('#unit-top li').length === 8 && document.querySelectorAll('#unit-bottom li').length === 8, null, { timeout: 60_000 });
      t.diagnostic(await page.locator('#unit-note').textContent());
      const top = await listItems(page, '#unit-top li');
      const bottom = await listItems(page, '#unit-bottom li');
      const z = preActivations(tensors, strongest, data.train);
      for (const [name, got, order] of [['top', top, ranked(z, true)], ['bottom', bottom, ranked(z, false)]]) {
        got.forEach((item, k) => {
          const i = Number(item.index);
          // The k-th image shown has the k-th largest (smallest) z, up to float32 rounding.
          assert.ok(Math.abs(z[i] - z[order[k]]) <= 1e-3, `${name} ${k}: image ${i} has z ${z[i]}, the ${k}-th is image ${order[k]} with ${z[order[k]]}`);
          assert.ok(Math.abs(Number(item.value) - z[i]) <= 1e-3, `${name} ${k}: the page says z ${item.value}, here ${z[i]}`);
          assert.ok(item.text.startsWith(CLASSES[data.train.labels[i]]), `${name} ${k}: the label of image ${i}`);
        });
      }
      await screenshot(page, 'insight-2-unit');
      assertNoProblems(watcher, await errorList(page));
    });
  });

  test('3. the PyTorch band applies to the run: drawn behind both charts, the hook reads inside or outside as the band file says', { timeout: 30_000 }, async (t) => {
    assert.ok(trained, 'needs the run of test 1');
    const band = JSON.parse(readFileSync(join(ROOT, 'www/reference/pytorch-band.json'), 'utf8')).presets.lecture;
    const val = Number(await metric(page, 'val-accuracy'));
    const [min, max] = [band.val_accuracy.min[2], band.val_accuracy.max[2]];
    const want = val >= min && val <= max ? 'inside' : 'outside';
    const text = await page.locator('#band-line').textContent();
    t.diagnostic(`val accuracy ${val}, band ${min}-${max}: ${text}`);
    assert.equal(await metric(page, 'pytorch-band'), want);
    assert.ok(text.includes(`Epoch 2: ${want} the PyTorch band (${min.toFixed(3)}-${max.toFixed(3)})`), text);
    // The charts' legends hold the band's values at the last epoch drawn (epoch 2 of the budget).
    const legends = await page.locator('.chart').evaluateAll((charts) => charts.map((c) => Object.fromEntries(
      [...c.querySelectorAll('.u-legend .u-series')].map((s) => [s.querySelector('.u-label')?.textContent, s.querySelector('.u-value')?.textContent])),
    ));
    t.diagnostic(JSON.stringify(legends));
    const [loss, accuracy] = legends;
    for (const [legend, stat] of [[loss, band.train_loss], [accuracy, band.val_accuracy]]) {
      assert.equal(legend['PyTorch min'], stat.min[2].toFixed(4));
      assert.equal(legend['PyTorch median'], stat.median[2].toFixed(4));
      assert.equal(legend['PyTorch max'], stat.max[2].toFixed(4));
    }
  });

  test('4. why this answer: the saliency maps of a picture (for either class) and of a gallery image, and the nearest training images, are the reference\'s for the page\'s weights', { timeout: 120_000 }, async (t) => {
    assert.ok(trained, 'needs the run of test 1');
    await guarded(page, 'insight-why', async () => {
      const sky = skyPicture(96);
      const seen = await classify(page, 'sky-plane.png', sky.png);
      await waitForView(page, 'saliency', 'subject', 'picture');
      const compare = async (ref, what) => {
        const got = await saliencyShown(page);
        assert.equal(got.hidden, false, `${what}: the view is shown`);
        assert.equal(Number(got.class), ref.class, `${what}: the class explained`);
        // Threads and relaxed SIMD round differently from the reference in the last bits.
        assert.ok(Math.abs(Number(got.magnitudeMax) - ref.magnitude_max) <= 1e-3 * ref.magnitude_max, `${what}: max ${got.magnitudeMax}, reference ${ref.magnitude_max}`);
        const want = expectedAlpha(ref);
        const off = got.alpha.filter((a, i) => Math.abs(a - want[i]) > 1).length;
        assert.equal(off, 0, `${what}: map values that differ from the reference's by more than 1 of 255`);
        assert.deepEqual(got.image, Array.from(ref.image), `${what}: the picture under the map is the one the model saw`);
      };
      const ref = model.saliencyRgba(seen, 32, 32);
      t.diagnostic(`picture: class ${ref.class}, max ${ref.magnitude_max}`);
      await compare(ref, 'the picture');
      // The other class: the map of d log p(other) / d pixel.
      const other = 1 - ref.class;
      await page.locator(`#why-class input[value="${other}"]`).check();
      await waitForView(page, 'saliency', 'class', String(other));
      await compare(model.saliencyRgba(seen, 32, 32, other), 'the picture, other class');

      // Its nearest training images (found once training is over).
      await page.waitForFunction(() => document.querySelectorAll('[data-view="neighbours"] li').length === 8, null, { timeout: 60_000 });
      const near = await listItems(page, '[data-view="neighbours"] li');
      const want = model.neighboursRgba(seen, 32, 32);
      t.diagnostic(`neighbours: ${near.map((n) => n.index).join(', ')}`);
      near.forEach((n, k) => {
        assert.ok(Math.abs(Number(n.distance) - want.distances[k]) <= 1e-3 * want.distances[k] + 1e-4, `neighbour ${k}: distance ${n.distance}, reference ${want.distances[k]}`);
        const tie = [k - 1, k + 1].some((j) => j >= 0 && j < 8 && Math.abs(want.distances[j] - want.distances[k]) <= 1e-4);
        if (!tie) assert.equal(Number(n.index), want.indices[k], `neighbour ${k}`);
        assert.equal(Number(n.label), data.train.labels[Number(n.index)], `neighbour ${k}: its label`);
      });
      await screenshot(page, 'insight-4-why-picture');

      // A gallery image: a click explains it.
      const first = page.locator('#gallery-grid figure').first();
      const index = Number(await first.getAttribute('data-index'));
      await first.click();
      await waitForView(page, 'saliency', 'subject', `test:${index}`);
      await compare(model.saliencyImage('test', index), `test image ${index}`);
      assert.match(await page.locator('#why-subject').textContent(), new RegExp(`^Test image ${index}, a ${CLASSES[data.test.labels[index]]}$`));
      await screenshot(page, 'insight-4-why-gallery');
      assertNoProblems(watcher, await errorList(page));
    });
  });

  test('5. hard examples: three lists of the run\'s images, ordered as stated, their values consistent', { timeout: 30_000 }, async (t) => {
    assert.ok(trained, 'needs the run of test 1');
    await page.waitForFunction(() => document.querySelector('[data-view="hard-examples"]')?.dataset.epochs === '3', null, { timeout: 20_000 });
    const items = await listItems(page, '[data-view="hard-examples"] li');
    const list = (name) => items.filter((x) => x.list === name).map((x) => ({ ...x, index: Number(x.index), loss: Number(x.loss), p: Number(x.probability), forgetting: Number(x.forgetting) }));
    const [wrong, forgotten, ambiguous] = ['most-wrong', 'forgotten', 'ambiguous'].map(list);
    t.diagnostic(`most wrong: ${wrong.map((x) => `${x.index} (${x.loss.toFixed(2)})`).join(', ')}`);
    assert.equal(wrong.length, 12);
    assert.equal(ambiguous.length, 12);
    assert.ok(forgotten.length > 0, 'after 3 epochs some images were forgotten');
    for (const x of items) {
      const i = Number(x.index);
      assert.equal(Number(x.label), data.train.labels[i], `image ${i}: its label in the bundle`);
      assert.ok(Math.abs(Number(x.probability) - Math.exp(-Number(x.loss))) <= 1e-6, `image ${i}: p = exp(-loss)`);
    }
    wrong.slice(1).forEach((x, k) => assert.ok(x.loss <= wrong[k].loss, 'most wrong: highest loss first'));
    ambiguous.slice(1).forEach((x, k) => assert.ok(Math.abs(x.p - 0.5) >= Math.abs(ambiguous[k].p - 0.5) - 1e-7, 'ambiguous: nearest 0.5 first'));
    forgotten.slice(1).forEach((x, k) => assert.ok(x.forgetting <= forgotten[k].forgetting, 'forgotten: most events first'));
    assert.ok(forgotten.every((x) => x.forgetting >= 1));
    // The most wrong image has a loss no lower than any other shown.
    assert.ok(items.every((x) => Number(x.loss) <= wrong[0].loss + 1e-6));

    // A hard example explains itself.
    await page.locator('[data-view="hard-examples"] li').first().click();
    await waitForView(page, 'saliency', 'subject', `train:${wrong[0].index}`);
    await screenshot(page, 'insight-5-hard');
  });
});

describe('a page without isolation (the reference\'s package): exact', () => {
  const RUN = { preset: 'lecture', epochs: 2, seed: 0, trainSize: 2000 };
  const URL_RUN = '?preset=lecture&epochs=2&seed=0&train_size=2000&autostart=1';
  let browser;
  let page;
  let watcher;
  let ref;
  let trained = false;

  before(async () => {
    browser = await openBrowser();
    page = await browser.context.newPage();
    watcher = watch(page);
  });
  after(async () => {
    ref?.free();
    await browser?.close();
  });

  test('6. hidden units (their change since the start), top activations, saliency and hard examples are the reference\'s to the bit; the band does not apply to a subset, and says so', { timeout: TRAIN_TIMEOUT }, async (t) => {
    await guarded(page, 'insight-exact', async () => {
      await page.goto(`${plain.url}${URL_RUN}`);
      await waitForState(page, 'done', { timeout: TRAIN_TIMEOUT });
      await settle(page);
      assert.equal(await metric(page, 'mode'), 'wasm, 1 thread (page not cross-origin isolated), simd128: no WebGPU adapter');
      ref = train(DATA_DIR, runConfig(RUN));
      trained = true;

      // Every tile of the change since the start (offered first), byte for byte.
      await waitForView(page, 'hidden-units', 'epoch', '2');
      await waitForView(page, 'hidden-units', 'mode', 'change');
      const tiles = ref.unitTiles();
      const atlas = await page.evaluate(() => {
        const c = document.getElementById('units-atlas');
        return Array.from(c.getContext('2d').getImageData(0, 0, c.width, c.height).data);
      });
      const width = 32 * 33 - 1;
      const differ = [];
      for (let u = 0; u < tiles.units; u++) {
        const x0 = (u % 32) * 33;
        const y0 = Math.floor(u / 32) * 36;
        for (let y = 0; y < 32; y++) {
          for (let k = 0; k < 128; k++) {
            if (atlas[((y0 + y) * width + x0) * 4 + k] !== tiles.change[u * 4096 + y * 128 + k]) { differ.push(u); y = 32; break; }
          }
        }
      }
      assert.deepEqual(differ, [], 'units whose tiles differ from the reference\'s unitTiles');

      // The band was measured on all 10,000 images: a run on 2,000 is not compared.
      assert.equal(await metric(page, 'pytorch-band'), '');
      assert.match(await page.locator('#band-line').textContent(), /does not apply to this run: the band was measured on all 10,000 training images; this run uses 2,000\./);

      // Hard examples: the reference's lists.
      await page.waitForFunction(() => document.querySelector('[data-view="hard-examples"]')?.dataset.epochs === '2', null, { timeout: 20_000 });
      const hard = ref.hardExamples(12);
      const items = await listItems(page, '[data-view="hard-examples"] li');
      for (const [name, want] of [['most-wrong', hard.most_wrong], ['forgotten', hard.forgotten], ['ambiguous', hard.ambiguous]]) {
        const got = items.filter((x) => x.list === name);
        assert.deepEqual(got.map((x) => [Number(x.index), Number(x.loss), Number(x.forgetting)]),
          want.map((x) => [x.index, x.loss, x.forgetting_events]), `${name}: the reference's list`);
      }

      // A unit's top activations (unit 7, by number).
      const canvas = page.locator('#units-atlas');
      const scale = (await canvas.boundingBox()).width / await canvas.evaluate((c) => c.width);
      await canvas.click({ position: { x: (7 * 33 + 16) * scale, y: 16 * scale } });
      await waitForView(page, 'unit', 'unit', '7');
      await page.waitForFunction(() => document.querySelectorAll('#unit-top li').length === 8, null, { timeout: 60_000 });
      const top = ref.topActivations(7);
      assert.deepEqual((await listItems(page, '#unit-top li')).map((x) => Number(x.index)), Array.from(top.top));
      assert.deepEqual((await listItems(page, '#unit-bottom li')).map((x) => Number(x.index)), Array.from(top.bottom));
      assert.deepEqual((await listItems(page, '#unit-top li')).map((x) => Number(x.value)), Array.from(top.top_values));

      // Saliency of a picture, exactly.
      const sky = skyPicture(96, 1);
      const seen = await classify(page, 'sky.png', sky.png);
      await waitForView(page, 'saliency', 'subject', 'picture');
      const got = await saliencyShown(page);
      const want = ref.saliencyRgba(seen, 32, 32);
      assert.equal(got.magnitudeMax, String(want.magnitude_max), 'the map\'s max');
      assert.deepEqual(got.alpha, expectedAlpha(want), 'the map');
      assertNoProblems(watcher, await errorList(page));
    });
  });

  test('7. Train more continues the run: the epochs go on from where they were, exactly as the uninterrupted run', { timeout: TRAIN_TIMEOUT }, async (t) => {
    assert.ok(trained, 'needs the run of test 6');
    await guarded(page, 'insight-train-more', async () => {
      assert.equal(await page.locator('#more').isVisible(), true, 'Train more is offered once the run is done');
      await page.locator('#more-epochs').fill('1');
      await page.getByRole('button', { name: 'Train 1 more epoch' }).click();
      await waitForState(page, 'training', { timeout: 10_000, failOn: ['error'] });
      await waitForState(page, 'done', { timeout: TRAIN_TIMEOUT });
      await settle(page);
      assert.equal(await metric(page, 'epoch'), '3');
      assert.equal(await page.locator('#epochs-total').textContent(), ' / 3');
      const whole = train(DATA_DIR, runConfig({ ...RUN, epochs: 3 }));
      try {
        const log = await logLines(page);
        t.diagnostic(log.join('\n'));
        assert.equal(log.length, 3);
        whole.history.forEach((s, i) => assert.ok(log[i].startsWith(logLine(s)), `epoch ${i}: page "${log[i]}", the uninterrupted run ${JSON.stringify(s)}`));
      } finally {
        whole.free();
      }
      await waitForView(page, 'hidden-units', 'epoch', '3');
      assertNoProblems(watcher, await errorList(page));
    });
  });

  test('8. Train more keeps its meaning across a reload: the run resumes and ends at the new budget, as the uninterrupted run', { timeout: 2 * TRAIN_TIMEOUT }, async (t) => {
    assert.ok(trained, 'needs the run of test 7');
    await guarded(page, 'insight-train-more-reload', async () => {
      await page.locator('#more-epochs').fill('3');
      await page.getByRole('button', { name: 'Train 3 more epochs' }).click();
      // Paused from inside the page as soon as epoch 4 is shown, so that the reload lands mid-run.
      await page.evaluate(() => new Promise((resolve, reject) => {
        const check = () => {
          const s = document.documentElement.dataset.state;
          if (Number(document.querySelector('[data-metric="epoch"]').textContent) >= 4 && s === 'training') {
            document.getElementById('pause').click();
            resolve();
          } else if (s === 'error' || s === 'done') reject(new Error(`the run ended (${s}) before it could be paused`));
          else setTimeout(check, 2);
        };
        check();
      }));
      await waitForState(page, 'paused');
      const saved = await page.waitForFunction(() => new Promise((resolve) => {
        const open = indexedDB.open('skywatch-db');
        open.onsuccess = () => {
          const get = open.result.transaction('runs').objectStore('runs').get('model');
          get.onsuccess = () => { open.result.close(); resolve(get.result?.interrupted && get.result.history.length >= 4 ? get.result.config.epochs : false); };
        };
      }), null, { timeout: 20_000 });
      assert.equal(await saved.jsonValue(), 6, 'the saved run has the new budget');
      await page.reload();
      await waitForState(page, 'done', { timeout: TRAIN_TIMEOUT });
      await settle(page);
      assert.equal(await metric(page, 'epoch'), '6');
      await waitForView(page, 'hidden-units', 'change', 'available'); // the resumed run knows its start
      const whole = train(DATA_DIR, runConfig({ ...RUN, epochs: 6 }));
      try {
        const log = await logLines(page);
        t.diagnostic(log.slice(-3).join('\n'));
        assert.equal(log.length, 6);
        whole.history.forEach((s, i) => assert.ok(log[i].startsWith(logLine(s)), `epoch ${i}: page "${log[i]}"`));
      } finally {
        whole.free();
      }
      assert.deepEqual(watcher.problems().filter((p) => !/net::ERR_ABORTED/.test(p)), [], 'page errors, console errors');
    });
  });

  test('9. uploaded weights train on: Train more from the file is the reference\'s run from the same file; the band says it does not apply', { timeout: TRAIN_TIMEOUT }, async (t) => {
    assert.ok(trained, 'needs the run of test 8');
    await guarded(page, 'insight-upload-more', async () => {
      const weights = await downloadWeights(page, { prefix: 'insight-' });
      await page.getByLabel('Weights file to upload').setInputFiles(weights.path);
      await page.waitForFunction(() => /^Loaded /.test(document.getElementById('weights-message')?.textContent ?? ''), null, { timeout: 20_000 });
      assert.equal(await metric(page, 'epoch'), '0');
      assert.equal(await page.locator('#more').isVisible(), true, 'Train more is offered for uploaded weights');
      assert.equal(await page.locator('#continue').isVisible(), false);
      await page.locator('#more-epochs').fill('1');
      await page.getByRole('button', { name: 'Train 1 more epoch' }).click();
      await waitForState(page, 'training', { timeout: 10_000, failOn: ['error'] });
      await waitForState(page, 'done', { timeout: TRAIN_TIMEOUT });
      const from = trainFrom(DATA_DIR, runConfig(RUN), weights.bytes, 1);
      try {
        const log = await logLines(page);
        t.diagnostic(log.join('\n'));
        assert.equal(log.length, 1);
        assert.ok(log[0].startsWith(logLine(from.history[0])), `page "${log[0]}", reference ${JSON.stringify(from.history[0])}`);
      } finally {
        from.free();
      }
      assert.match(await page.locator('#log').textContent(), /\(loaded from insight-skywatch-lecture-epoch6\.safetensors\)/);
      assert.match(await page.locator('#band-line').textContent(), /does not apply to this run: this model started from uploaded weights/);
      await waitForView(page, 'hidden-units', 'change', 'unavailable');
      assert.match(await page.locator('#units-mode-note').textContent(), /not available for this run: it started from weights loaded from a file/);
      assertNoProblems(watcher, await errorList(page));
    });
  });
});
