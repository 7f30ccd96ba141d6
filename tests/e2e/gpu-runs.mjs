// What the WebGPU end-to-end tests (webgpu.test.mjs, webgpu-moves.test.mjs) share: the small
// bundle's server, a Chromium with the software adapter (checked on the page and in a worker
// before any test), the reference runs, the page's epoch log, and the tolerances of a GPU run
// against the CPU.
//
// Expected numbers: the reference's run of the same configuration (reference.mjs, the
// single-threaded simd128 package in Node, which these unisolated pages also run); the GPU sums in
// another order, so its losses match to 1e-3 relative and its accuracies to 0.01 (the tolerances
// of issue 11, which tests/webgpu.rs checks over 200 steps).

import assert from 'node:assert/strict';
import { GPU_DIR, WEBGPU_ARGS, gpuData, openBrowser, prepare, startServer } from './harness.mjs';
import { runConfig, train } from './reference.mjs';

export const TRAIN_TIMEOUT = 180_000;
/** Tolerances of a GPU run against the CPU reference (issue 11): relative loss, accuracy. */
export const LOSS_RTOL = 1e-3;
export const ACCURACY_TOL = 0.01;
/** The small model of the plumbing tests (3072-64-2, the lecture's optimizer). */
const SMALL_LAYERS = [3072, 64, 2];
export const small = (epochs, seed) => `preset=custom&layers=64&epochs=${epochs}&seed=${seed}&train_size=300`;
export const smallConfig = (epochs, seed) => {
  const c = runConfig({ preset: 'lecture', epochs, seed, trainSize: 300 });
  return { ...c, model: { ...c.model, layers: SMALL_LAYERS } };
};

export const GPU_MODE = /^WebGPU on .+\(software\), chosen by backend=webgpu$/;
export const PLAIN = 'wasm, 1 thread (page not cross-origin isolated), simd128';

const references = new Map();
/** The reference run of `config` on the GPU bundle (trained once per test file). */
export function reference(config) {
  const key = JSON.stringify(config);
  if (!references.has(key)) references.set(key, train(GPU_DIR, config));
  return references.get(key);
}

/** The small bundle (GPU_DIR: the first 600 training and 300 test images of the e2e bundle),
 *  built if needed, served without cross-origin isolation. */
export function gpuServer() {
  prepare();
  gpuData();
  return startServer({ isolation: false, data: GPU_DIR });
}

/** Chromium with its software WebGPU adapter (WEBGPU_ARGS). The adapter must be there, on the
 *  page and in a dedicated worker (where training runs), or nothing after it tests the GPU: it
 *  fails loudly, naming the flags. */
export async function gpuBrowser(server) {
  const browser = await openBrowser({ extraArgs: WEBGPU_ARGS });
  const page = await browser.context.newPage();
  let adapter;
  try {
    await page.goto(`${server.url}data/manifest.json`);
    adapter = await page.evaluate(async () => {
      const onPage = navigator.gpu ? await navigator.gpu.requestAdapter() : null;
      const src = 'self.onmessage = async () => { const a = self.navigator.gpu ? await self.navigator.gpu.requestAdapter() : null; postMessage(a ? { fallback: a.info.isFallbackAdapter, vendor: a.info.vendor } : null); };';
      const w = new Worker(URL.createObjectURL(new Blob([src], { type: 'text/javascript' })));
      const inWorker = await new Promise((r) => { w.onmessage = (e) => r(e.data); w.postMessage(null); });
      w.terminate();
      return { onPage: onPage ? { fallback: onPage.info.isFallbackAdapter, vendor: onPage.info.vendor } : null, inWorker };
    });
  } finally {
    await page.close();
  }
  if (!adapter.onPage || !adapter.inWorker) {
    await browser.close();
    throw new Error(`Chromium offers no WebGPU adapter (${JSON.stringify(adapter)}): these tests need its software adapter, `
      + `launched with ${WEBGPU_ARGS.join(' ')}; without one nothing here can test the GPU`);
  }
  return browser;
}

/** The epoch lines of the page's log: [{epoch, loss, train, val}]. */
export async function logEpochs(page) {
  const lines = (await page.locator('#log').textContent()).split('\n').filter((l) => l.startsWith('Epoch: '));
  return lines.map((l) => {
    const m = /^Epoch: (\d+), Loss: ([\d.]+), train accuracy: ([\d.]+), val accuracy: ([\d.]+) \(/.exec(l);
    assert.ok(m, l);
    return { epoch: Number(m[1]), loss: Number(m[2]), train: Number(m[3]), val: Number(m[4]) };
  });
}

/** Every epoch of the page's log against the reference's: same count, losses within LOSS_RTOL
 *  relative (the log shows 6 decimals), accuracies within ACCURACY_TOL. */
export function assertRunMatches(got, ref, what) {
  assert.deepEqual(got.map((e) => e.epoch), ref.history.map((s) => s.epoch), `${what}: the epochs logged`);
  got.forEach((e, i) => {
    const r = ref.history[i];
    const why = `${what}, epoch ${i}: page loss ${e.loss} train ${e.train} val ${e.val}; reference ${r.loss} ${r.train_accuracy} ${r.val_accuracy}`;
    assert.ok(Math.abs(e.loss - r.loss) <= LOSS_RTOL * r.loss + 5e-7, why);
    assert.ok(Math.abs(e.train - r.train_accuracy) <= ACCURACY_TOL, why);
    assert.ok(Math.abs(e.val - r.val_accuracy) <= ACCURACY_TOL, why);
  });
}
