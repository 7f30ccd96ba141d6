// End-to-end tests of bad input and faults (docs/faults.md): the content security
// policy (the page, its widget page and its benchmark page run under it without a violation, and a
// violation would be caught), pictures that are not pictures or are huge, animated, SVG, cut short
// or empty, weights files that are wrong in every way, a crash of the training worker, malformed
// URL parameters, and a run whose loss diverges. Each must give a clear inline message (or a
// correct result) and leave the page usable.
//
// Every file these tests upload is made here: PNGs by images.mjs, GIFs by the encoder below, large
// files as sparse files in a temporary folder. Run from the repository root after scripts/build:
// `node --test tests/e2e/`.

import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import {
  assertNoCspViolations, errorList, guarded, metric, openBrowser, pageState, prepare, screenshot,
  startServer, waitForState, watch,
} from './harness.mjs';
import { png } from './images.mjs';

/** A small run that trains in about a second. */
const QUICK_RUN = 'preset=lecture&epochs=1&seed=0&train_size=1000';

let server;
let tmp;

before(async () => {
  prepare();
  server = await startServer();
  tmp = mkdtempSync(join(tmpdir(), 'skywatch-hardening-'));
});

after(async () => {
  await server?.stop();
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

// ---------------------------------------------------------------------------------------------
// Files

/** A sky-blue 64x48 RGB PNG with a white cross (an airplane of sorts). */
function skyPng() {
  return png(64, 48, {
    colorType: 2,
    bitDepth: 8,
    row: (r, y) => {
      for (let x = 0; x < 64; x++) {
        const plane = (y >= 22 && y < 26 && x >= 8 && x < 56) || (x >= 28 && x < 34 && y >= 10 && y < 38);
        r.set(plane ? [250, 250, 250] : [90, 150, 220 - y], 3 * x);
      }
    },
  });
}

/** An animated GIF: `frames` frames of `size` x `size`, each one colour of `colours` (RGB
 *  triples), looping. LZW codes are written uncompressed (a clear code every 2 pixels keeps the
 *  code width at 3 bits), which any decoder reads. */
function animatedGif(size, colours) {
  const out = [...Buffer.from('GIF89a'), size & 255, size >> 8, size & 255, size >> 8, 0xf1, 0, 0];
  // Global colour table of 4 entries (flags 0xf1: table present, 2 bits per entry).
  for (let i = 0; i < 4; i++) out.push(...(colours[i] ?? [0, 0, 0]));
  out.push(0x21, 0xff, 11, ...Buffer.from('NETSCAPE2.0'), 3, 1, 0, 0, 0); // loop forever
  for (let f = 0; f < colours.length; f++) {
    out.push(0x21, 0xf9, 4, 0, 50, 0, 0, 0); // 0.5 s a frame
    out.push(0x2c, 0, 0, 0, 0, size & 255, size >> 8, size & 255, size >> 8, 0);
    const codes = [4];
    for (let p = 0; p < size * size; p++) {
      codes.push(f);
      if (p % 2 === 1) codes.push(4);
    }
    codes.push(5);
    const bytes = [];
    let acc = 0;
    let bits = 0;
    for (const c of codes) {
      acc |= c << bits;
      bits += 3;
      while (bits >= 8) { bytes.push(acc & 255); acc >>= 8; bits -= 8; }
    }
    if (bits) bytes.push(acc & 255);
    out.push(2); // LZW minimum code size
    for (let i = 0; i < bytes.length; i += 255) {
      const block = bytes.slice(i, i + 255);
      out.push(block.length, ...block);
    }
    out.push(0);
  }
  out.push(0x3b);
  return Buffer.from(out);
}

/** A safetensors file: `tensors` maps names to {shape, values (Float32Array)} (F32) or to
 *  {dtype, shape, bytes}. */
function safetensors(tensors) {
  const header = {};
  const parts = [];
  let offset = 0;
  for (const [name, t] of Object.entries(tensors)) {
    const bytes = t.bytes ?? Buffer.from(t.values.buffer, t.values.byteOffset, t.values.byteLength);
    header[name] = { dtype: t.dtype ?? 'F32', shape: t.shape, data_offsets: [offset, offset + bytes.length] };
    parts.push(bytes);
    offset += bytes.length;
  }
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - (json.length % 8)) % 8);
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(json.length));
  return Buffer.concat([len, Buffer.from(json), ...parts]);
}

/** The tensors of a 3072-`hidden`-2 MLP (PyTorch names), small random values. */
function mlpTensors(hidden, fill = (i) => Math.sin(i) * 0.01) {
  const t = (shape) => ({ shape, values: Float32Array.from({ length: shape.reduce((a, b) => a * b) }, (_, i) => fill(i)) });
  return { '0.weight': t([hidden, 3072]), '0.bias': t([hidden]), '2.weight': t([2, hidden]), '2.bias': t([2]) };
}

/** A sparse file of `bytes` bytes in the temporary folder (it takes no disk space). */
function sparseFile(name, bytes) {
  const path = join(tmp, name);
  writeFileSync(path, '');
  truncateSync(path, bytes);
  return path;
}

// ---------------------------------------------------------------------------------------------
// The page

/** Gives `file` (a path, or {name, mimeType, buffer}) to the picture input; resolves with
 *  {error} (the inline message) or {prediction, percents, note} once the page has answered. */
async function classify(page, file, { timeout = 20_000 } = {}) {
  const name = typeof file === 'string' ? file.split('/').pop() : file.name;
  await page.getByLabel('Picture to classify').setInputFiles(file);
  await page.waitForFunction((n) => document.getElementById('picture-error').textContent.includes(n)
    || document.getElementById('prediction-note').textContent.includes(n), name, { timeout, polling: 50 });
  const error = (await page.locator('#picture-error').textContent()).trim();
  if (error.includes(name)) return { error };
  return {
    prediction: await metric(page, 'prediction'),
    percents: await page.locator('#probability-bars .value').allTextContents().then((v) => v.map(Number.parseFloat)),
    note: await page.locator('#prediction-note').textContent(),
  };
}

function assertPrediction(r, what) {
  assert.equal(r.error, undefined, `${what}: ${r.error}`);
  assert.ok(['airplane', 'bird'].includes(r.prediction), `${what}: prediction "${r.prediction}"`);
  assert.ok(r.percents.length === 2 && r.percents.every(Number.isFinite), `${what}: probabilities ${r.percents}`);
  assert.ok(Math.abs(r.percents[0] + r.percents[1] - 100) <= 0.2, `${what}: probabilities ${r.percents} add up to 100%`);
}

/** Gives `file` to the weights input; resolves with the message once it is final. */
async function uploadWeights(page, file) {
  const name = typeof file === 'string' ? file.split('/').pop() : file.name;
  await page.getByLabel('Weights file to upload').setInputFiles(file);
  await page.waitForFunction((n) => /^(Loaded|Could not)/.test(document.getElementById('weights-message').textContent)
    && document.getElementById('weights-message').textContent.includes(n), name, { timeout: 20_000, polling: 50 });
  return page.locator('#weights-message').textContent();
}

/** A page in a fresh browser with the problems watched: {browser, page, watcher}. */
async function freshPage() {
  const browser = await openBrowser();
  const page = await browser.context.newPage();
  return { browser, page, watcher: watch(page) };
}

function assertClean(watcher, allowed = []) {
  const problems = watcher.problems().filter((p) => !allowed.some((re) => re.test(p)));
  assert.deepEqual(problems, [], 'page errors, console errors or failed requests');
  assert.deepEqual(watcher.csp(), [], 'content security policy violations');
}

// ---------------------------------------------------------------------------------------------

describe('content security policy', () => {
  test('the page, embed.html (the widget) and bench.html (rayon workers) run under it without a violation', { timeout: 60_000 }, async (t) => {
    const { browser, page, watcher } = await freshPage();
    try {
      await guarded(page, 'csp-pages', async () => {
        const res = await page.goto(`${server.url}?${QUICK_RUN}&autostart=1`);
        const csp = res.headers()['content-security-policy'];
        t.diagnostic(`Content-Security-Policy: ${csp}`);
        assert.match(csp, /script-src 'self' 'wasm-unsafe-eval';/);
        assert.doesNotMatch(csp, /unsafe-inline|'unsafe-eval'/);
        await waitForState(page, 'done');
        assert.match(await metric(page, 'mode'), /threads/, 'the threaded package (rayon workers) ran');
        await assertNoCspViolations(page);

        // The widget alone, as a blog's iframe shows it: trains and classifies.
        await page.goto(`${server.url}embed.html?epochs=1&train-size=300&autostart`);
        await page.waitForFunction(() => ['done', 'error'].includes(document.querySelector('skywatch-trainer')?.dataset.state), null, { timeout: 30_000, polling: 100 });
        const widget = page.locator('skywatch-trainer');
        assert.equal(await widget.getAttribute('data-state'), 'done', await widget.locator('.error').textContent());
        assert.notEqual(await widget.locator('#train').evaluate((b) => getComputedStyle(b).backgroundColor), 'rgba(0, 0, 0, 0)', 'widget.css applies');
        await widget.locator('#file').setInputFiles({ name: 'sky.png', mimeType: 'image/png', buffer: skyPng() });
        await page.waitForFunction(() => document.querySelector('skywatch-trainer').shadowRoot.querySelector('[data-metric="prediction"]').textContent !== '', null, { timeout: 10_000 });
        await assertNoCspViolations(page);

        // The benchmark page: its worker starts the rayon pool (blob: workers).
        await page.goto(`${server.url}bench.html?threads=2&presets=lecture&epochs=1`);
        await page.waitForFunction(() => ['training', 'done', 'error'].includes(document.documentElement.dataset.state), null, { timeout: 30_000 });
        const status = await page.locator('#status').textContent();
        assert.match(status, /^(running|done): 2 threads/, status);
        await assertNoCspViolations(page);
        assertClean(watcher);
      });
    } finally {
      await browser.close();
    }
  });

  test('a violation is enforced and caught: the detector itself works', { timeout: 30_000 }, async () => {
    const { browser, page, watcher } = await freshPage();
    let closeError;
    try {
      await page.goto(`${server.url}bench.html?threads=1`);
      // An inline style on the page, and eval in a worker (a blob: worker takes the page's policy).
      const applied = await page.evaluate(async () => {
        const s = document.createElement('style');
        s.textContent = '#status { color: rgb(255, 0, 0) }';
        document.head.append(s);
        const blocked = getComputedStyle(document.getElementById('status')).color !== 'rgb(255, 0, 0)';
        const source = "self.addEventListener('securitypolicyviolation', (e) => console.error(`CSP violation: ${e.effectiveDirective} (test)`)); try { eval('1'); } catch {}";
        const evil = new Worker(URL.createObjectURL(new Blob([source], { type: 'text/javascript' })));
        await new Promise((r) => setTimeout(r, 300));
        evil.terminate();
        return blocked;
      });
      assert.equal(applied, true, 'the inline style was blocked');
      const recorded = await page.evaluate(() => window.__e2e.csp.map((v) => v.directive));
      assert.deepEqual(recorded, ['style-src-elem']);
      assert.ok(watcher.csp().some((m) => /style-src/.test(m)), `page console: ${watcher.csp()}`);
      assert.ok(watcher.csp().some((m) => /script-src.*\(test\)/.test(m)), `worker console: ${watcher.csp()}`);
    } finally {
      closeError = await browser.close().then(() => null, (e) => e);
    }
    assert.match(String(closeError?.message), /content security policy violations/, 'openBrowser().close() fails on a violation');
  });
});

describe('bad input on a trained page', () => {
  let browser;
  let page;
  let watcher;
  let trained = false;

  before(async () => {
    ({ browser, page, watcher } = await freshPage());
  });
  after(async () => { await browser?.close(); });

  test('pictures: not an image, empty, too large, huge, animated, SVG, cut short', { timeout: 90_000 }, async (t) => {
    await guarded(page, 'bad-pictures', async () => {
      await page.goto(`${server.url}?${QUICK_RUN}&autostart=1`);
      await waitForState(page, 'done');
      trained = true;
      const check = async (file, expect, what) => {
        const t0 = Date.now();
        const r = await classify(page, file);
        t.diagnostic(`${what} (${Date.now() - t0} ms): ${r.error ?? `${r.prediction} ${r.percents.join('/')}%; ${r.note}`}`);
        if (expect instanceof RegExp) assert.match(r.error ?? `(a prediction: ${r.note})`, expect, what);
        else assertPrediction(r, what);
        assert.equal(await pageState(page), 'done', `${what}: the page state stays done`);
        return r;
      };

      const base = await check({ name: 'sky.png', mimeType: 'image/png', buffer: skyPng() }, null, 'a plain PNG');
      await check({ name: 'notes.png', mimeType: 'image/png', buffer: Buffer.from('plain text, not a PNG\n') },
        /^notes\.png is not a picture this browser can read/, 'text named .png');
      await check({ name: 'empty.jpg', mimeType: 'image/jpeg', buffer: Buffer.alloc(0) }, /^empty\.jpg is empty \(0 bytes\)/, 'a zero-byte file');
      await check(sparseFile('video.jpg', 60e6), /^video\.jpg is 60\.0 MB: pictures of up to 50\.0 MB can be classified/, 'a 60 MB file');
      await check({ name: 'giant.png', mimeType: 'image/png', buffer: png(12000, 12000) },
        /^giant\.png is 12000 × 12000 pixels \(144 megapixels\): pictures of up to 100 megapixels/, 'a 12000x12000 PNG');

      // 100 megapixels (22 kB of PNG, 400 MB decoded): classified (scripts/bench times it).
      const stripes = png(10000, 10000, { row: (r, y) => { if (y % 100 < 50) r.fill(0xff); } });
      await check({ name: 'huge.png', mimeType: 'image/png', buffer: stripes }, null, 'a 10000x10000 PNG');

      // Animated GIF: the first frame, and the page says so.
      const gif = await check({ name: 'blink.gif', mimeType: 'image/gif', buffer: animatedGif(64, [[90, 150, 220], [200, 40, 40]]) }, null, 'an animated GIF');
      assert.match(gif.note, /blink\.gif \(an animated GIF: its first frame is classified\)/);
      const canvasTop = await page.locator('#picture-canvas').evaluate((c) => Array.from(c.getContext('2d').getImageData(16, 16, 1, 1).data));
      assert.deepEqual(canvasTop.slice(0, 3), [90, 150, 220], 'the first frame is the one shown');

      // SVG (no createImageBitmap for it: drawn through an <img> from a blob: URL).
      const svg = '<svg xmlns="http://www.w3.org/2000/svg" width="120" height="90"><rect width="120" height="90" fill="#5a96dc"/>'
        + '<rect x="20" y="40" width="80" height="8" fill="#fff"/><script>parent.pwned = 1</script></svg>';
      await check({ name: 'drawing.svg', mimeType: 'image/svg+xml', buffer: Buffer.from(svg) }, null, 'an SVG');
      assert.equal(await page.evaluate(() => window.pwned), undefined, 'no script of the SVG ran');
      // Also when the browser gives no type (a file without extension).
      await check({ name: 'drawing-without-type', mimeType: '', buffer: Buffer.from(svg) }, null, 'an SVG without a type');

      // A PNG cut in half: Chromium refuses what it cannot decode whole.
      const whole = png(200, 200, { colorType: 2, bitDepth: 8, row: (r, y) => { for (let i = 0; i < r.length; i++) r[i] = (i * 7 + y * 13) & 255; } });
      await check({ name: 'cut.png', mimeType: 'image/png', buffer: whole.subarray(0, whole.length >> 1) },
        /^cut\.png looks like a PNG file but could not be decoded: it may be damaged or cut short/, 'a truncated PNG');

      // Still usable: the first picture again gives the same answer, and the message is gone.
      const again = await check({ name: 'sky-again.png', mimeType: 'image/png', buffer: skyPng() }, null, 'the plain PNG again');
      assert.deepEqual(again.percents, base.percents);
      assert.equal((await page.locator('#picture-error').textContent()).trim(), '');
      await screenshot(page, 'hardening-pictures');
      assertClean(watcher);
      assert.deepEqual(await errorList(page), []);
    });
  });

  test('weights: not safetensors, wrong names, wrong shapes, NaN, empty, 300 MB', { timeout: 60_000 }, async (t) => {
    assert.ok(trained, 'needs the model of the previous test');
    await guarded(page, 'bad-weights', async () => {
      const val = await metric(page, 'val-accuracy');
      const check = async (file, expect, what) => {
        const t0 = Date.now();
        const message = await uploadWeights(page, file);
        t.diagnostic(`${what} (${Date.now() - t0} ms): ${message}`);
        assert.match(message, expect, what);
        assert.equal(await pageState(page), 'done', `${what}: the page state stays done`);
        assert.equal(await metric(page, 'val-accuracy'), val, `${what}: the model is unchanged`);
        assert.ok(await page.locator('#weights-message').isVisible(), `${what}: the message is visible`);
      };
      await check({ name: 'notes.safetensors', mimeType: 'application/octet-stream', buffer: Buffer.from('not a safetensors file at all') },
        /^Could not load notes\.safetensors: checkpoint: not a safetensors file/, 'text');
      await check({ name: 'names.safetensors', mimeType: 'application/octet-stream', buffer: safetensors({ 'fc1.weight': { shape: [2, 2], values: new Float32Array(4) } }) },
        /^Could not load names\.safetensors: checkpoint: .*'0\.weight'/, 'wrong tensor names');
      const shapes = mlpTensors(8);
      shapes['0.weight'] = { shape: [8, 100], values: new Float32Array(800) };
      await check({ name: 'shapes.safetensors', mimeType: 'application/octet-stream', buffer: safetensors(shapes) },
        /^Could not load shapes\.safetensors: .*(3072|shape)/, 'wrong shapes');
      await check({ name: 'nan.safetensors', mimeType: 'application/octet-stream', buffer: safetensors(mlpTensors(8, (i) => (i === 5 ? NaN : 0.01))) },
        /^Could not load nan\.safetensors: checkpoint: tensor '0\.weight' holds a non-finite value \(NaN\) at index 5/, 'a NaN');
      await check({ name: 'empty.safetensors', mimeType: 'application/octet-stream', buffer: Buffer.alloc(0) },
        /^Could not load empty\.safetensors: the file is empty\.$/, 'an empty file');
      // Refused by its size, before a byte is read (scripts/bench times it).
      await check(sparseFile('huge.safetensors', 300e6),
        /^Could not load huge\.safetensors: it is 300\.0 MB, larger than any model this page can hold \(at most 269\.5 MB\)\.$/, '300 MB');

      // Still usable: a picture is classified with the trained model.
      assertPrediction(await classify(page, { name: 'after-weights.png', mimeType: 'image/png', buffer: skyPng() }), 'after the bad weights');
      await screenshot(page, 'hardening-weights');
      assertClean(watcher);
      assert.deepEqual(await errorList(page), []);
    });
  });
});

describe('faults', () => {
  test('a crash of the training worker is shown; Restart trains again to done', { timeout: 90_000 }, async (t) => {
    const { browser, page, watcher } = await freshPage();
    try {
      await guarded(page, 'worker-crash', async () => {
        // An epoch of 5000 images takes most of a second: the crash comes early in the first.
        await page.goto(`${server.url}?preset=lecture&epochs=2&seed=0&train_size=5000&autostart=1`);
        await waitForState(page, 'training', { failOn: ['error', 'done'] });
        await page.waitForFunction(() => document.getElementById('batch-progress').value > 0, null, { timeout: 30_000, polling: 20 });
        await page.evaluate(() => document.dispatchEvent(new CustomEvent('skywatch:debug-crash')));
        await waitForState(page, 'error', { timeout: 10_000, failOn: ['done'] });
        const errors = await errorList(page);
        t.diagnostic(`shown: ${errors.join(' | ')}; status: ${await page.locator('#status').textContent()}`);
        assert.equal(errors.length, 1);
        assert.match(errors[0], /^The training worker stopped unexpectedly \(.*debug-crash.*\)\. Restart it to go on/);
        const restart = page.getByRole('button', { name: 'Restart the worker' });
        assert.ok(await restart.isVisible(), 'the Restart button is shown');
        assert.ok(await page.locator('#start').isDisabled(), 'Start waits for the restart');
        // A picture asked for meanwhile gets a message, not a hang.
        const r = await classify(page, { name: 'meanwhile.png', mimeType: 'image/png', buffer: skyPng() });
        assert.match(r.error ?? '', /^Could not classify meanwhile\.png: the training worker has stopped \(.*\); restart it first$/, JSON.stringify(r));
        await screenshot(page, 'hardening-crash');

        await restart.click();
        // The run may carry on by itself from its last saved epoch; otherwise Start begins anew.
        const got = await waitForState(page, ['ready', 'training'], { timeout: 30_000 });
        if (got === 'ready') await page.getByRole('button', { name: 'Start' }).click();
        await waitForState(page, 'done', { timeout: 60_000 });
        assert.equal(await metric(page, 'epoch'), '2');
        assert.deepEqual(await errorList(page), []);
        assert.ok(!(await restart.isVisible()), 'the Restart button is gone');
        assertPrediction(await classify(page, { name: 'after-restart.png', mimeType: 'image/png', buffer: skyPng() }), 'after the restart');
        // The crash is the worker's uncaught error, reported to the page as an event (handled).
        assertClean(watcher, [/debug-crash/]);
      });
    } finally {
      await browser.close();
    }
  });

  test('malformed URL parameters: a notice, the defaults, and Start works', { timeout: 60_000 }, async (t) => {
    const { browser, page, watcher } = await freshPage();
    try {
      await guarded(page, 'url-parameters', async () => {
        const junk = 'x'.repeat(2000);
        const query = new URLSearchParams([
          ['epochs', 'abc'], ['seed', '-1'], ['preset', 'huge'], ['lr', 'NaN'], ['batch_size', '0'], ['layers', '0,0'],
          ['train_size', '1e99'], ['momentum', '2'], ['activation', '<img src=x onerror=alert(1)>'], ['loss', 'mse'],
          ['optimizer', 'rmsprop'], ['threads', '0'], ['autostart', 'maybe'], ['unknown', junk],
        ]);
        await page.goto(`${server.url}?${query}&epochs=${junk}`);
        await waitForState(page, 'ready', { timeout: 30_000 });
        const notice = page.locator('#url-problems');
        assert.ok(await notice.isVisible(), 'the notice is shown');
        const items = await page.locator('#url-problem-list li').allTextContents();
        t.diagnostic(items.join('\n'));
        for (const p of ['epochs', 'seed', 'preset', 'lr', 'batch_size', 'layers', 'train_size', 'momentum', 'activation', 'loss', 'optimizer', 'threads']) {
          assert.ok(items.some((i) => i.startsWith(`${p}=`)), `${p} is listed`);
        }
        assert.ok(items.every((i) => i.length < 300), 'long values are cut short');
        assert.equal(await page.locator('#url-problem-list img').count(), 0, 'values are shown as text');
        const field = (id) => page.locator(`#f-${id}`).inputValue();
        assert.deepEqual(
          [await field('preset'), await field('hidden'), await field('lr'), await field('batchSize'), await field('epochs'), await field('seed'), await field('trainSize'), await field('activation')],
          ['lecture', '512', '0.01', '64', '100', '0', '', 'tanh'], 'the defaults are used');
        assert.equal(await page.locator('#config .field-error:not([hidden])').count(), 0, 'no field errors');
        assert.deepEqual(await errorList(page), [], 'no errors: a notice only');
        assert.ok(await page.locator('#start').isEnabled(), 'Start is enabled');
        await screenshot(page, 'hardening-url-parameters');

        await page.locator('#f-epochs').fill('1');
        await page.locator('#f-trainSize').fill('1000');
        await page.getByRole('button', { name: 'Start' }).click();
        await waitForState(page, 'done', { timeout: 60_000 });
        assert.equal(await metric(page, 'epoch'), '1');
        assert.ok(!(await page.evaluate(() => window.__e2e.states.some((s) => s.state === 'error'))), 'never in the error state');
        assertClean(watcher);
      });
    } finally {
      await browser.close();
    }
  });

  test('a diverging run stops with the message, keeps the last good model, and can start again', { timeout: 90_000 }, async (t) => {
    const { browser, page, watcher } = await freshPage();
    try {
      await guarded(page, 'divergence', async () => {
        // ReLU with learning rate 1 overflows within the second epoch (natively: epoch 1, batch 4).
        await page.goto(`${server.url}?preset=custom&layers=512&activation=relu&lr=1&epochs=5&seed=0&train_size=1000&autostart=1`);
        await waitForState(page, 'error', { timeout: 60_000, failOn: ['done'] });
        const errors = await errorList(page);
        t.diagnostic(`shown: ${errors.join(' | ')}`);
        assert.equal(errors.length, 1);
        const m = /^Training failed: training diverged: loss became (NaN|inf|-inf) at epoch (\d+), batch (\d+); the weights of the last finished epoch were kept \(try a smaller learning rate\)$/.exec(errors[0]);
        assert.ok(m, errors[0]);
        assert.equal(await metric(page, 'epoch'), m[2], 'the epochs finished before the divergence are kept');
        assert.ok(!(await page.locator('#restart').isVisible()), 'no restart needed');

        // The last good model answers (finite probabilities), and is evaluated.
        const r = await classify(page, { name: 'after-divergence.png', mimeType: 'image/png', buffer: skyPng() });
        assertPrediction(r, 'after the divergence');
        await screenshot(page, 'hardening-divergence');

        // Start again with a sane learning rate.
        await page.locator('#f-activation').selectOption('tanh');
        await page.locator('#f-lr').fill('0.01');
        await page.locator('#f-epochs').fill('1');
        await page.getByRole('button', { name: 'Start' }).click();
        await waitForState(page, 'done', { timeout: 60_000 });
        assert.equal(await metric(page, 'epoch'), '1');
        const val = Number(await metric(page, 'val-accuracy'));
        assert.ok(val > 0.6, `val accuracy ${val}`);
        assertClean(watcher);
      });
    } finally {
      await browser.close();
    }
  });
});
