// The bytes budget of the blog widget: what a first-time reader's browser downloads before the
// quick widget's first epoch, file by file, and the start times (to ready, to the first epoch,
// cold and warm cache). Measured in headless Chromium with a fresh profile (cold cache) over
// `skywatch serve --no-isolation` of a `skywatch build --no-full-data` folder, on a page at the
// folder's root that loads widget.js from beside it. A benchmark that prints figures, not a test.
//
//   node tests/e2e/budget.mjs            # what `skywatch build` writes by default
//   node tests/e2e/budget.mjs --before   # the same site with the quick data as version 1 (raw)
//                                        # and without the precompressed .br/.gz siblings
//
// Run from the repository root after scripts/build (SKYWATCH_DATA_SOURCE as for the tests).

import { mkdtempSync, readdirSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DATA_DIR, openBrowser, prepare, run, startServer } from './harness.mjs';

const before = process.argv.includes('--before');
const BUDGET = 0.6 * 5.47e6;

prepare();
const tmp = mkdtempSync(join(tmpdir(), 'skywatch-budget-'));
const site = join(tmp, 'site');
run(['build', '--out', site, '--data', DATA_DIR, '--no-full-data']);
if (before) {
  run(['subset', '--raw', '--data', DATA_DIR, '--out', join(site, 'data-quick')]);
  for (const f of readdirSync(site, { recursive: true })) if (/\.(br|gz)$/.test(f)) unlinkSync(join(site, f));
}
writeFileSync(join(site, 'budget.html'), `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>budget</title>
<script type="module" src="widget.js"></script></head><body>
<skywatch-trainer id="w" epochs="5"></skywatch-trainer></body></html>`);
const server = await startServer({ root: site, isolation: false, csp: false });
const browser = await openBrowser();

/** One visit: navigation, widget ready, Train, first epoch. Returns times (ms) and the bytes of
 *  every response finished before the first epoch. */
async function visit(page) {
  const files = new Map();
  let recording = true;
  const onFinished = async (r) => {
    if (!recording) return;
    const sizes = await r.sizes().catch(() => null);
    if (!sizes) return;
    const res = await r.response();
    const path = new URL(r.url()).pathname.replace(/^\//, '') || '(page)';
    const enc = res?.headers()['content-encoding'] ?? '';
    // Summed per path: a module the page and the worker both import is fetched, then revalidated.
    const prev = files.get(path) ?? { bytes: 0, body: 0, enc, statuses: [] };
    files.set(path, {
      bytes: prev.bytes + sizes.responseBodySize + sizes.responseHeadersSize,
      body: prev.body + sizes.responseBodySize,
      enc: prev.enc || enc,
      statuses: [...prev.statuses, res?.status() ?? 0],
    });
  };
  browser.context.on('requestfinished', onFinished);
  const t0 = Date.now();
  await page.goto(`${server.url}budget.html`);
  await page.waitForFunction(() => document.getElementById('w').dataset.state === 'ready'
    && !document.getElementById('w').shadowRoot.querySelector('#train').disabled, null, { timeout: 60_000 });
  const ready = Date.now() - t0;
  await page.locator('#w').locator('#train').click();
  await page.waitForFunction(() => Number(document.getElementById('w').shadowRoot.querySelector('[data-metric="epoch"]').textContent) >= 1,
    null, { timeout: 120_000, polling: 20 });
  const firstEpoch = Date.now() - t0;
  recording = false;
  browser.context.off('requestfinished', onFinished);
  await page.waitForFunction(() => document.getElementById('w').dataset.state === 'done', null, { timeout: 120_000 });
  return { ready, firstEpoch, files };
}

const group = (p) => (p.startsWith('data-quick/') && !p.endsWith('.js') && !p.endsWith('.json') ? 'data'
  : p.endsWith('.wasm') ? 'wasm' : 'scripts, styles, page');
try {
  const page = await browser.context.newPage();
  const cold = await visit(page);
  const warm = await visit(page); // the same profile: HTTP cache, and the data in the Cache API
  const rows = [...cold.files].sort((a, b) => b[1].bytes - a[1].bytes);
  console.log(`\n${before ? 'BEFORE (raw data, no precompressed siblings)' : 'AFTER (skywatch build defaults)'}: bytes before the first epoch, cold cache`);
  console.log('| file | bytes (body + headers) | content-encoding | responses |\n|------|------:|------|------|');
  for (const [p, f] of rows) console.log(`| ${p} | ${f.bytes} | ${f.enc || '-'} | ${f.statuses.join(', ')} |`);
  const sums = {};
  for (const [p, f] of rows) sums[group(p)] = (sums[group(p)] ?? 0) + f.bytes;
  const total = rows.reduce((a, [, f]) => a + f.bytes, 0);
  for (const [g, n] of Object.entries(sums)) console.log(`${g}: ${(n / 1e6).toFixed(3)} MB`);
  console.log(`total: ${(total / 1e6).toFixed(3)} MB (${(100 * total / 5.47e6).toFixed(1)}% of 5.47 MB; budget ${(BUDGET / 1e6).toFixed(2)} MB: ${total <= BUDGET ? 'met' : 'NOT met'})`);
  console.log(`start times: cold ready ${cold.ready} ms, first epoch ${cold.firstEpoch} ms; warm ready ${warm.ready} ms, first epoch ${warm.firstEpoch} ms`);
  const warmBytes = [...warm.files.values()].reduce((a, f) => a + f.body, 0);
  console.log(`warm visit: ${warmBytes} body bytes over the network before the first epoch`);
} finally {
  await browser.close();
  await server.stop();
  rmSync(tmp, { recursive: true, force: true });
}
