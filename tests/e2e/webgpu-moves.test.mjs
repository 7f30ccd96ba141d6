// End-to-end tests of the WebGPU backend, part 2: runs that move between the backends (a run
// saved on one resumes on the other; a device lost mid-run ends on wasm; Chromium without an
// adapter trains on wasm and says why) and augmentation in the GPU's gather. Part 1
// (webgpu.test.mjs): training on the GPU as the CPU does, and the features on its weights.
//
// Headless Chromium offers WebGPU through its software adapter, SwiftShader (WEBGPU_ARGS, a
// fallback adapter, so the runs ask for `backend=webgpu`); gpu-runs.mjs gpuBrowser checks that it
// is there, on the page and in a worker, and fails naming the flags when it is not. The runs are
// a 3072-64-2 model on 300 images of the small bundle: the point is the plumbing. The pages are
// served without cross-origin isolation, so their wasm runs are the Node reference's (reference.mjs)
// bit for bit, and their GPU runs match it within the tolerances of gpu-runs.mjs. Run from the
// repository root after scripts/build: `node --test tests/e2e/webgpu-moves.test.mjs`.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import {
  GPU_MODE, LOSS_RTOL, PLAIN, TRAIN_TIMEOUT, assertRunMatches, gpuBrowser, gpuServer, logEpochs, reference, small, smallConfig,
} from './gpu-runs.mjs';
import {
  WEBGPU_ARGS, errorList, guarded, metric, openBrowser, savedEpochs, screenshot, waitForState, watch,
} from './harness.mjs';
import { shown } from './reference.mjs';

let server;

before(async () => { server = await gpuServer(); });
after(async () => { await server?.stop(); });

describe('WebGPU on the software adapter: moving between backends', () => {
  let browser;
  before(async () => { browser = await gpuBrowser(server); });
  after(async () => { await browser?.close(); });

  // A run paused after its first epochs, the page reloaded: it resumes from the saved epoch on
  // the backend the address asks for, whichever saved it, and ends as the reference run.
  for (const [first, second] of [['webgpu', 'webgpu'], ['webgpu', 'wasm'], ['wasm', 'webgpu']]) {
    test(`a run saved on ${first} resumes on ${second} after a reload and ends as the reference run`, { timeout: TRAIN_TIMEOUT }, async (t) => {
      const b = await openBrowser({ extraArgs: WEBGPU_ARGS });
      // On wasm this model's epochs take milliseconds: a click after the first one shows would
      // land after the run's end. So the pause goes to the worker the moment it reports its
      // first epoch (as the page's Pause button sends it); the worker takes it after the slice
      // it is in, within the second epoch at the latest.
      await b.context.addInitScript(() => {
        const Native = window.Worker;
        window.Worker = class extends Native {
          constructor(...args) {
            super(...args);
            this.addEventListener('message', (e) => {
              if (e.data?.type === 'epoch' && e.data.stats.epoch === 0) this.postMessage({ type: 'pause' });
            });
          }
        };
      });
      try {
        const page = await b.context.newPage();
        const watcher = watch(page);
        await guarded(page, `webgpu-resume-${first}-${second}`, async () => {
          const epochs = 5;
          const seed = 5;
          await page.goto(`${server.url}?backend=${first}&${small(epochs, seed)}&autostart=1`);
          await waitForState(page, 'paused', { timeout: 120_000, failOn: ['error', 'done'] });
          assert.equal(await metric(page, 'backend'), first);
          for (let i = 0; i < 100 && (await savedEpochs(page)) < 1; i++) await new Promise((r) => setTimeout(r, 100));
          const saved = await savedEpochs(page);
          assert.ok(saved >= 1 && saved < epochs, `saved after ${saved} epochs`);
          t.diagnostic(`reloading on ${second} with ${saved} epoch(s) saved on ${first}`);
          // Another address (the backend), no autostart: the page restores the run and carries on.
          await page.goto(`${server.url}?backend=${second}&${small(epochs, seed)}`);
          await page.waitForFunction(() => document.getElementById('status')?.textContent.includes('Resuming')
            || document.documentElement.dataset.state === 'training', null, { timeout: 60_000, polling: 20 });
          await waitForState(page, 'done', { timeout: TRAIN_TIMEOUT });
          assert.equal(await metric(page, 'backend'), second);
          if (second === 'webgpu') assert.match(await metric(page, 'mode'), GPU_MODE);
          else assert.equal(await metric(page, 'mode'), `${PLAIN}: chosen (backend=wasm)`);
          assertRunMatches(await logEpochs(page), reference(smallConfig(epochs, seed)), `${first} then ${second}`);
          assert.deepEqual(await errorList(page), []);
          assert.deepEqual(watcher.problems(), []);
        });
      } finally {
        await b.close();
      }
    });
  }

  test('a GPU device lost mid-run: a clear message, and the run ends on wasm from the last finished epoch', { timeout: TRAIN_TIMEOUT }, async (t) => {
    const page = await browser.context.newPage();
    const watcher = watch(page);
    try {
      await guarded(page, 'webgpu-device-lost', async () => {
        const epochs = 4;
        const seed = 3;
        await page.goto(`${server.url}?backend=webgpu&${small(epochs, seed)}&autostart=1`);
        await page.waitForFunction(() => Number(document.querySelector('[data-metric="epoch"]').textContent) >= 1, null, { timeout: 120_000, polling: 20 });
        assert.equal(await metric(page, 'backend'), 'webgpu');
        const lostAfter = Number(await metric(page, 'epoch'));
        await page.evaluate(() => document.dispatchEvent(new CustomEvent('skywatch:debug-lose-gpu')));
        await waitForState(page, 'done', { timeout: TRAIN_TIMEOUT });
        const errors = await errorList(page);
        t.diagnostic(`lost after epoch ${lostAfter}; ${JSON.stringify(errors)}`);
        assert.equal(errors.length, 1, JSON.stringify(errors));
        const m = /^The GPU stopped working \(the GPU device was lost \(destroyed by debugLoseDevice\)\)\. Training continues on WebAssembly from the model of epoch (\d+), the last finished one; nothing finished is lost\.$/.exec(errors[0]);
        assert.ok(m, errors[0]);
        assert.ok(Number(m[1]) >= lostAfter && Number(m[1]) < epochs, `continued from epoch ${m[1]}`);
        assert.equal(await metric(page, 'backend'), 'wasm');
        assert.equal(await metric(page, 'mode'), `${PLAIN}: the GPU failed (the GPU device was lost (destroyed by debugLoseDevice))`);
        // The page never showed an error state: training went on.
        const states = (await page.evaluate(() => window.__e2e.states)).map((s) => s.state);
        assert.ok(!states.includes('error'), states.join(', '));
        // Every epoch once, as the reference run's (GPU epochs approximately, then wasm).
        assertRunMatches(await logEpochs(page), reference(smallConfig(epochs, seed)), 'GPU then wasm');
        await screenshot(page, 'webgpu-device-lost');
        assert.deepEqual(watcher.problems(), []);
      });
    } finally {
      await page.close();
    }
  });

  // Augmentation happens in the GPU's gather (docs/translation.md): the run stays on the GPU (the
  // worker's `started` names the session's own backend, which the mode line would not show if it
  // moved silently) and ends as the reference run of its configuration, which the augmentation
  // takes away from the plain one.
  test('an augmented run (flip,shift:4) stays on the GPU and ends as the reference run', { timeout: TRAIN_TIMEOUT }, async () => {
    const page = await browser.context.newPage();
    await page.addInitScript(() => {
      const Native = window.Worker;
      window.__started = [];
      window.Worker = class extends Native {
        constructor(...args) {
          super(...args);
          this.addEventListener('message', (e) => { if (e.data?.type === 'started') window.__started.push(e.data.backend); });
        }
      };
    });
    const watcher = watch(page);
    try {
      await guarded(page, 'webgpu-augment', async () => {
        await page.goto(`${server.url}?backend=webgpu&${small(2, 4)}&augment=flip,shift:4&autostart=1`);
        await waitForState(page, 'done', { timeout: TRAIN_TIMEOUT });
        assert.deepEqual(await page.evaluate(() => window.__started), ['webgpu']);
        assert.equal(await metric(page, 'backend'), 'webgpu');
        assert.match(await metric(page, 'mode'), GPU_MODE);
        const [ref, plain] = [reference({ ...smallConfig(2, 4), augment: 'flip,shift:4' }), reference(smallConfig(2, 4))];
        assertRunMatches(await logEpochs(page), ref, 'augmented on WebGPU against the CPU reference');
        assert.ok(Math.abs(plain.history[1].loss / ref.history[1].loss - 1) > 10 * LOSS_RTOL, 'the augmentation changes the run');
        assert.deepEqual([await errorList(page), watcher.problems()], [[], []]);
      });
    } finally {
      await page.close();
    }
  });
});

describe('without a WebGPU adapter (Chromium without its WebGPU flags)', () => {
  let browser;
  before(async () => { browser = await openBrowser(); });
  after(async () => { await browser?.close(); });

  test('auto trains on wasm and says why; backend=webgpu says it cannot, and trains on wasm', { timeout: TRAIN_TIMEOUT }, async (t) => {
    for (const backend of ['auto', 'webgpu']) {
      const page = await browser.context.newPage();
      const watcher = watch(page);
      try {
        await guarded(page, `webgpu-no-adapter-${backend}`, async () => {
          await page.goto(`${server.url}?backend=${backend}&${small(1, 0)}&autostart=1`);
          await waitForState(page, 'done', { timeout: 60_000 });
          const mode = await metric(page, 'mode');
          t.diagnostic(`${backend}: ${mode}`);
          assert.equal(mode, `${PLAIN}: no WebGPU adapter`);
          assert.equal(await metric(page, 'backend'), 'wasm');
          const errors = await errorList(page);
          if (backend === 'auto') assert.deepEqual(errors, []);
          else assert.deepEqual(errors, ['WebGPU was asked for (backend=webgpu), but it cannot run here: no WebGPU adapter. Training runs on wasm instead.']);
          // On wasm: the reference's run, exactly.
          const ref = reference(smallConfig(1, 0));
          const [e] = await logEpochs(page);
          assert.equal(e.loss.toFixed(6), ref.history[0].loss.toFixed(6));
          assert.equal(e.val.toFixed(4), shown(ref.history[0].val_accuracy));
          if (backend === 'auto') {
            // WebGPU chosen in the form: said at once, and the mode stays wasm.
            await page.locator('#f-backend').selectOption('webgpu');
            await page.waitForFunction(() => document.getElementById('error-list').childElementCount > 0, null, { timeout: 30_000 });
            assert.deepEqual(await errorList(page), ['WebGPU was asked for (backend=webgpu), but it cannot run here: no WebGPU adapter. Training runs on wasm instead.']);
            assert.equal(await metric(page, 'backend'), 'wasm');
          }
          assert.deepEqual(watcher.problems(), []);
        });
      } finally {
        await page.close();
      }
    }
  });
});
