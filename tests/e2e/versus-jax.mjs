// Skywatch against jax-js (@jax-js/jax 0.1.25 from npm, its WebGPU backend) in the same headless
// Chromium, one after the other in the same run: the lecture MLP, batch 64, training only.
//
// Skywatch's figure is the page's own: ?preset=lecture&epochs=2&train_size=2000&seed=0&backend=webgpu,
// the training seconds of epoch 2 in its epoch log ("Epoch: 1, ... (S s)", validation excluded),
// over 2,000 images. jax-js's: tests/e2e/jax/train.mjs, the same model and optimizer on 2,000
// seeded random images on the device, its second epoch (the first compiles). Prints one JSON
// line per trainer and one with the ratio (jax-js time / Skywatch time: above 1, Skywatch is
// faster). Without a GPU Chromium's adapter is SwiftShader (software): the rows say so.
// Usage: node tests/e2e/versus-jax.mjs (scripts/bench runs it with the WebGPU rows).
import { cpSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { WEBGPU_ARGS, openBrowser, prepare, startServer } from './harness.mjs';
import { pageEpochs } from './timing.mjs';

const HERE = dirname(fileURLToPath(import.meta.url));
const IMAGES = 2000;
const out = (row) => process.stdout.write(`${JSON.stringify({ where: 'chromium-webgpu', ...row })}\n`);

prepare();
const root = mkdtempSync(join(tmpdir(), 'skywatch-jax-'));
cpSync(join(HERE, 'jax'), root, { recursive: true });
cpSync(resolve(HERE, '../../node_modules/@jax-js/jax/dist'), join(root, 'jax'), { recursive: true });
const browser = await openBrowser({ extraArgs: WEBGPU_ARGS });
const page = await startServer();
const jaxHost = await startServer({ root, csp: false });
try {
  const probe = await browser.context.newPage();
  await probe.goto(`${page.url}data/manifest.json`);
  const adapter = await probe.evaluate(async () => {
    const a = navigator.gpu ? await navigator.gpu.requestAdapter({ powerPreference: 'high-performance' }) : null;
    return a ? { vendor: a.info.vendor, architecture: a.info.architecture, software: a.info.isFallbackAdapter } : null;
  });
  await probe.close();
  if (!adapter) throw new Error('Chromium offers no WebGPU adapter');
  const note = adapter.software ? { note: 'software adapter (SwiftShader): CPU figures, not GPU speed' } : {};

  const g = await pageEpochs(browser, `${page.url}?preset=lecture&epochs=2&train_size=${IMAGES}&seed=0&backend=webgpu&autostart=1`, 2);
  if (g.backend && !/webgpu/i.test(g.backend)) throw new Error(`the page trained on ${g.backend}, not WebGPU`);
  const sky = g.train_seconds[g.train_seconds.length - 1];
  out({ bench: 'versus-jax', trainer: 'skywatch', adapter, images: IMAGES, epoch: 2, train_seconds: sky, ms_per_image: (sky * 1e3) / IMAGES, mode: g.mode, ...note });

  const jp = await browser.context.newPage();
  try {
    await jp.goto(`${jaxHost.url}train.html?images=${IMAGES}&epochs=2`);
    await jp.waitForFunction(() => window.__result, null, { timeout: 900_000, polling: 500 });
    const r = await jp.evaluate(() => window.__result);
    if (r.error) throw new Error(`jax-js: ${r.error}`);
    const jax = r.epochs[r.epochs.length - 1];
    out({ bench: 'versus-jax', trainer: 'jax-js 0.1.25', adapter, images: IMAGES, epoch: 2, train_seconds: jax, ms_per_image: (jax * 1e3) / IMAGES, losses: r.losses, ...note });
    out({ bench: 'versus-jax', ratio_jax_over_skywatch: jax / sky, ...note });
  } finally {
    await jp.close();
  }
} finally {
  await browser.close();
  await page.stop();
  await jaxHost.stop();
  rmSync(root, { recursive: true, force: true });
}
