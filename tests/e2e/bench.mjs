// Driver of the browser half of scripts/bench (not a test). In headless Chromium:
// 1. www/bench.html once with a single thread and once with two: peak FMA rate, GEMM
//    GFLOP/s, seconds per epoch (synthetic data);
// 2. the training page itself, lecture preset: time from opening the page to the first finished
//    epoch, with the data downloaded and then from the cache, and the peak memory while training
//    (the browser's own measurement of the page and its workers, and the renderer process's
//    private memory from /proc).
// Prints JSON lines.
import { readFileSync, readdirSync } from 'node:fs';
import { openBrowser, prepare, startServer } from './harness.mjs';

const [presets = 'lecture', epochs = '3'] = process.argv.slice(2);
const emit = (row) => process.stdout.write(`${JSON.stringify({ where: 'chromium', ...row })}\n`);

/** Private memory (USS, MB) of this profile's renderer processes, from /proc/PID/smaps_rollup. */
function rendererMegabytes(profile) {
  let total = 0;
  for (const pid of readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
    try {
      const cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
      if (!cmd.includes('--type=renderer') || !cmd.includes(profile)) continue;
      const rollup = readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8');
      for (const key of ['Private_Clean', 'Private_Dirty']) total += Number(new RegExp(`${key}:\\s+(\\d+)`).exec(rollup)?.[1] ?? 0);
    } catch { /* the process ended */ }
  }
  return total / 1024;
}

prepare();
const server = await startServer();
// Eager memory measurement: measureUserAgentSpecificMemory() otherwise waits for a GC.
const browser = await openBrowser({ extraArgs: ['--enable-blink-features=ForceEagerMeasureMemory'] });
try {
  for (const threads of [1, 2]) {
    const page = await browser.context.newPage();
    await page.goto(`${server.url}bench.html?threads=${threads}&presets=${presets}&epochs=${epochs}`);
    await page.waitForFunction(() => ['done', 'error'].includes(document.documentElement.dataset.state), null, { timeout: 600_000 });
    const status = await page.textContent('#status');
    if (!status.startsWith('done')) throw new Error(`benchmark with ${threads} thread(s): ${status}`);
    for (const line of (await page.textContent('#results')).trim().split('\n')) {
      emit({ package: threads > 1 ? 'threads' : 'single', ...JSON.parse(line) });
    }
    await page.close();
  }

  for (const cache of ['download', 'cached']) {
    const page = await browser.context.newPage();
    let peakPage = 0;
    let peakRenderer = 0;
    const sample = async () => {
      peakRenderer = Math.max(peakRenderer, rendererMegabytes(browser.profile));
      const bytes = await page.evaluate(async () => (await performance.measureUserAgentSpecificMemory()).bytes).catch(() => 0);
      peakPage = Math.max(peakPage, bytes / 2 ** 20);
    };
    await page.goto(`${server.url}?preset=lecture&epochs=3&seed=0&autostart=1`);
    // The first epoch of the new run: a model restored from the previous visit shows its own
    // epochs until the new run is drawn (epoch 0), so wait for that first.
    // Functions, not strings: the page's content security policy allows no eval after the first.
    await page.waitForFunction(() => document.documentElement.dataset.state === 'training'
      && document.querySelector('[data-metric="epoch"]')?.textContent === '0', null, { timeout: 120_000, polling: 10 });
    const firstEpoch = await page.waitForFunction(() => (Number(document.querySelector('[data-metric="epoch"]')?.textContent) >= 1
      ? performance.now() : false), null, { timeout: 120_000, polling: 10 });
    const ms = await firstEpoch.jsonValue();
    const timer = setInterval(() => { sample(); }, 250);
    await page.waitForFunction(() => ['done', 'error'].includes(document.documentElement.dataset.state), null, { timeout: 120_000 });
    clearInterval(timer);
    await sample();
    const mode = await page.textContent('[data-metric="mode"]');
    emit({ bench: 'first-epoch', preset: 'lecture', data: cache, mode, seconds: ms / 1000 });
    emit({ bench: 'memory', preset: 'lecture', mode, page_and_workers_mb: Math.round(peakPage), renderer_private_mb: Math.round(peakRenderer) });
    await page.close();
  }
} finally {
  await browser.close();
  await server.stop();
}
