// Driver of the browser half of scripts/bench (not a test). In headless Chromium:
// 1. www/bench.html with a single thread, with two (relaxed SIMD), and with two in the threaded
//    package built without relaxed SIMD: peak FMA rate, GEMM GFLOP/s, seconds per epoch
//    (synthetic data);
// 2. the training page itself, each of PRESETS: time from opening the page to the first finished
//    epoch, with the data downloaded and then from the cache, and the peak memory while training
//    (the browser's own measurement of the page and its workers, and the renderer process's
//    private memory from /proc);
// 3. how responsive the page stays: its main thread's long tasks while it trains, the time from a
//    click on Pause to the paused state, and the same on a blog page while two widgets train
//    (longest task, how often the host's 20 ms timer ran);
// 4. bad input that must be dealt with quickly: classifying a 10000x10000 PNG, refusing a 300 MB
//    weights file;
// then, in every engine (engines.mjs; SKYWATCH_E2E_ENGINES, default chromium,firefox,webkit):
// 5. the mode line of the isolated page and seconds per lecture epoch on the whole bundle, timed
//    from outside the page (when each epoch appears), training and validation together;
// then in Chromium:
// 6. the WebGPU backend on the adapter Chromium offers (WEBGPU_ARGS: here SwiftShader, a software
//    adapter, whose rows say `"software": true`: correctness runs, not GPU speed): the adapter,
//    GEMM GFLOP/s per shape, seconds per epoch in the worker (bench.html, synthetic data) and on
//    the page as its user sees it (validation included); on a real GPU the whole bundle and, on
//    the page, the lecture's 100 epochs; on a software one the 600-image bundle of the tests;
// 7. the CPU page's epoch as its user sees it against bench.html's, in alternating rounds
//    (2 threads, wasm; SKYWATCH_BENCH_ROUNDS, default 3): the ratio issue 11 asks to bring within
//    1.10; with, from the same runs, the visible epoch over the worker's own training seconds, and
//    the CPU the browser spent besides the training threads (per epoch, from /proc), which other
//    load on the machine disturbs far less;
// 8. what the views of what the model learned cost: seconds per lecture epoch of the isolated page
//    (timed as in 5) with the hidden units, "why this answer?" (a picture's saliency) and the hard
//    examples open, against the same run with them closed, in alternating rounds.
// Prints JSON lines. usage: node tests/e2e/bench.mjs [PRESETS] [EPOCHS] [PARTS, e.g. 5 or 1,5]
import { mkdtempSync, readFileSync, readdirSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { launch, selectedEngines } from './engines.mjs';
import { DATA_DIR, WEBGPU_ARGS, gpuData, openBrowser, prepare, run, startServer } from './harness.mjs';
import { png } from './images.mjs';
import { benchEpochs, median, pageEpochs } from './timing.mjs';

const [presets = 'lecture', epochs = '3', only = ''] = process.argv.slice(2);
/** Which numbered parts to run: the third argument (e.g. `5` or `1,5`), all by default. */
const part = (n) => !only || only.split(',').includes(String(n));
const emit = (row) => process.stdout.write(`${JSON.stringify({ where: 'chromium', ...row })}\n`);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

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

/** CPU seconds so far of this profile's renderer processes, by thread: the page's main thread
 *  (the process's first thread), the workers (Chromium names them DedicatedWorker) and the rest
 *  (compositor, raster and pools), from /proc/PID/task/TID/stat (utime + stime). */
function rendererCpu(profile) {
  const cpu = { main: 0, workers: 0, other: 0 };
  for (const pid of readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
    try {
      const cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
      if (!cmd.includes('--type=renderer') || !cmd.includes(profile)) continue;
      for (const tid of readdirSync(`/proc/${pid}/task`)) {
        const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
        const name = /\((.*)\)/.exec(stat)[1];
        const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
        const seconds = (Number(f[11]) + Number(f[12])) / 100; // clock ticks (USER_HZ = 100)
        cpu[tid === pid ? 'main' : /DedicatedWorker/.test(name) ? 'workers' : 'other'] += seconds;
      }
    } catch { /* the process or thread ended */ }
  }
  return cpu;
}

prepare();
const server = await startServer();
// Eager memory measurement: measureUserAgentSpecificMemory() otherwise waits for a GC.
const browser = await openBrowser({ extraArgs: ['--enable-blink-features=ForceEagerMeasureMemory'] });
try {
  for (const [pkg, query] of part(1) ? [['single', 'threads=1'], ['threads', 'threads=2'], ['threads-simd', 'threads=2&relaxed_simd=0']] : []) {
    const page = await browser.context.newPage();
    await page.goto(`${server.url}bench.html?${query}&presets=${presets}&epochs=${epochs}`);
    await page.waitForFunction(() => ['done', 'error'].includes(document.documentElement.dataset.state), null, { timeout: 600_000 });
    const status = await page.textContent('#status');
    if (!status.startsWith('done')) throw new Error(`benchmark of the ${pkg} package: ${status}`);
    for (const line of (await page.textContent('#results')).trim().split('\n')) {
      emit({ package: pkg, ...JSON.parse(line) });
    }
    await page.close();
  }

  for (const [preset, cache] of part(2) ? presets.split(',').flatMap((p, i) => (i ? [[p, 'cached']] : [[p, 'download'], [p, 'cached']])) : []) {
    const page = await browser.context.newPage();
    let peakPage = 0;
    let peakRenderer = 0;
    const sample = async () => {
      peakRenderer = Math.max(peakRenderer, rendererMegabytes(browser.profile));
      const bytes = await page.evaluate(async () => (await performance.measureUserAgentSpecificMemory()).bytes).catch(() => 0);
      peakPage = Math.max(peakPage, bytes / 2 ** 20);
    };
    await page.goto(`${server.url}?preset=${preset}&epochs=3&seed=0&autostart=1`);
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
    emit({ bench: 'first-epoch', preset, data: cache, mode, seconds: ms / 1000 });
    emit({ bench: 'memory', preset, mode, page_and_workers_mb: Math.round(peakPage), renderer_private_mb: Math.round(peakRenderer) });
    await page.close();
  }

  if (part(3)) await responsiveness(browser, server);
  if (part(3)) await widgetHost(browser);
  if (part(4)) await badInput(browser, server);
} finally {
  await browser.close();
  await server.stop();
}

if (part(5)) await engines();
if (part(6)) await webgpu();
if (part(7)) await pageVersusBench();
if (part(8)) await viewsCost();

/** Part 6: the WebGPU rows (see the header). */
async function webgpu() {
  const browser = await openBrowser({ extraArgs: WEBGPU_ARGS });
  const full = await startServer();
  const small = await startServer({ isolation: false, data: gpuData() });
  const out = (row) => process.stdout.write(`${JSON.stringify({ where: 'chromium-webgpu', ...row })}\n`);
  try {
    const probe = await browser.context.newPage();
    await probe.goto(`${full.url}data/manifest.json`);
    const adapter = await probe.evaluate(async () => {
      const a = navigator.gpu ? await navigator.gpu.requestAdapter({ powerPreference: 'high-performance' }) : null;
      if (!a) return null;
      const { vendor, architecture, device, description, isFallbackAdapter } = a.info;
      return { vendor, architecture, device, description, software: isFallbackAdapter };
    });
    await probe.close();
    if (!adapter) {
      out({ bench: 'gpu-adapter', error: 'Chromium offers no WebGPU adapter: no WebGPU rows' });
      return;
    }
    const software = adapter.software;
    const note = software ? { note: 'software adapter (no GPU): a correctness run, not GPU speed' } : {};
    out({ bench: 'gpu-adapter', ...adapter, ...note });
    const images = software ? 600 : 10000;
    const r = await benchEpochs(browser, full.url, `backend=webgpu&presets=${presets}&epochs=${epochs}&images=${images}`);
    for (const row of r.rows) out(row);
    // The page: the lecture preset as its user sees it; on a real GPU the whole bundle and the
    // lecture's 100 epochs (issue 11: under 15 s on the page), on a software adapter the small one.
    const n = software ? Number(epochs) + 1 : 100;
    const server = software ? small : full;
    const t0 = Date.now();
    const g = await pageEpochs(browser, `${server.url}?backend=webgpu&preset=lecture&epochs=${n}&seed=0&autostart=1`, n);
    out({
      bench: 'gpu-page-epoch', preset: 'lecture', mode: g.mode, backend: g.backend, software, images: software ? 600 : 10000,
      validation_images: software ? 300 : 2000, epochs: n, seconds_per_epoch: g.seconds,
      all_epochs_seconds: g.epoch_seconds.reduce((a, b) => a + b, 0), wall_seconds: (Date.now() - t0) / 1000, ...note,
    });
  } finally {
    await browser.close();
    await full.stop();
    await small.stop();
  }
}

/** Part 7: the CPU page's epoch as its user sees it against bench.html's, alternating. */
async function pageVersusBench() {
  // The first of PRESETS (lecture by default).
  const preset = presets.split(',')[0];
  const browser = await openBrowser();
  const server = await startServer();
  const rounds = Number(process.env.SKYWATCH_BENCH_ROUNDS || 3);
  const ratios = [];
  const inRun = [];
  const cpuOverhead = [];
  try {
    for (let round = 0; round < rounds; round++) {
      const b = await benchEpochs(browser, server.url, `threads=2&presets=${preset}&epochs=${epochs}&kernels=0`);
      const n = Number(epochs) + 1;
      const g = await pageEpochs(browser, `${server.url}?preset=${preset}&epochs=${n}&seed=0&threads=2&backend=wasm&autostart=1`, n, { cpu: true });
      ratios.push(g.seconds / b.seconds);
      inRun.push(g.in_run_ratio);
      cpuOverhead.push(g.cpu_per_epoch.overhead);
      emit({
        bench: 'page-vs-bench', round, preset, threads: 2, mode: g.mode, bench_seconds: b.seconds, page_seconds: g.seconds,
        page_epoch_seconds: g.epoch_seconds, page_train_seconds: g.train_seconds, ratio: g.seconds / b.seconds, in_run_ratio: g.in_run_ratio,
        page_cpu_per_epoch: g.cpu_per_epoch,
      });
    }
    emit({
      bench: 'page-vs-bench-summary', preset, threads: 2, rounds, ratio_median: median(ratios), ratio_min: Math.min(...ratios), ratio_max: Math.max(...ratios),
      in_run_ratio_median: median(inRun), in_run_ratio_min: Math.min(...inRun), in_run_ratio_max: Math.max(...inRun),
      cpu_overhead_median: median(cpuOverhead),
    });
  } finally {
    await browser.close();
    await server.stop();
  }
}

/** The page's main thread while it trains (lecture, 4 epochs on 4000 images, threads): its long
 *  tasks (over 50 ms, the Long Tasks API), and the latency of Pause. */
async function responsiveness(browser, server) {
  const page = await browser.context.newPage();
  try {
    await page.goto(`${server.url}?preset=lecture&epochs=4&seed=1&train_size=4000&autostart=1`);
    await page.waitForFunction(() => Number(document.querySelector('[data-metric="epoch"]')?.textContent) >= 1
      && document.documentElement.dataset.state === 'training', null, { timeout: 120_000, polling: 20 });
    await page.click('#pause');
    await page.waitForFunction(() => document.documentElement.dataset.state === 'paused', null, { timeout: 30_000, polling: 10 });
    await page.click('#resume');
    await page.waitForFunction(() => ['done', 'error'].includes(document.documentElement.dataset.state), null, { timeout: 120_000 });
    const rec = await page.evaluate(() => window.__e2e);
    const at = (state, from = -Infinity) => rec.states.find((x) => x.state === state && x.t >= from)?.t;
    const from = at('training');
    const to = at('done', from);
    const clicked = rec.clicks.findLast((c) => c.id === 'pause').t;
    const during = rec.longtasks.filter((l) => l.start + l.duration >= from && l.start <= to);
    emit({
      bench: 'page-main-thread', preset: 'lecture', mode: await page.textContent('[data-metric="mode"]'),
      training_seconds: (to - from) / 1000, long_tasks: during.length,
      longest_task_ms: Math.round(Math.max(0, ...during.map((l) => l.duration))),
      pause_latency_ms: Math.round(at('paused', clicked) - clicked),
    });
  } finally {
    await page.close();
  }
}

/** Bad input that must be dealt with at once, timed on a trained page (1 epoch on 1000 images). */
async function badInput(browser, server) {
  const tmp = mkdtempSync(join(tmpdir(), 'skywatch-bench-'));
  const page = await browser.context.newPage();
  try {
    await page.goto(`${server.url}?preset=lecture&epochs=1&seed=0&train_size=1000&autostart=1`);
    await page.waitForFunction(() => document.documentElement.dataset.state === 'done', null, { timeout: 120_000 });
    // A 10000x10000 PNG (100 megapixels, 22 kB of file): decoded once, its centre scaled down.
    const stripes = png(10000, 10000, { row: (r, y) => { if (y % 100 < 50) r.fill(0xff); } });
    let t0 = Date.now();
    await page.setInputFiles('#picture-input', { name: 'huge.png', mimeType: 'image/png', buffer: stripes });
    await page.waitForFunction(() => document.getElementById('prediction-note').textContent.includes('huge.png')
      || document.getElementById('picture-error').textContent.includes('huge.png'), null, { timeout: 120_000, polling: 20 });
    emit({ bench: 'classify-picture', picture: '10000x10000 PNG', ms: Date.now() - t0, error: (await page.textContent('#picture-error')).trim() || undefined });
    // A 300 MB weights file (sparse): refused by its size before it is read.
    const huge = join(tmp, 'huge.safetensors');
    writeFileSync(huge, '');
    truncateSync(huge, 300e6);
    t0 = Date.now();
    await page.setInputFiles('#weights-input', huge);
    await page.waitForFunction(() => /^Could not load huge/.test(document.getElementById('weights-message').textContent), null, { timeout: 120_000, polling: 20 });
    emit({ bench: 'refuse-weights', file: '300 MB', ms: Date.now() - t0 });
  } finally {
    await page.close();
    rmSync(tmp, { recursive: true, force: true });
  }
}

/** A blog page (another origin than the widget's files, built by `skywatch build`) whose two
 *  widgets train at once: the host's longest main-thread task and how often its 20 ms timer ran,
 *  without and with cross-origin isolation. */
async function widgetHost(browser) {
  const siteDir = join(mkdtempSync(join(tmpdir(), 'skywatch-site-')), 'site');
  const hostDir = mkdtempSync(join(tmpdir(), 'skywatch-host-'));
  run(['build', '--out', siteDir, '--data', DATA_DIR, '--no-full-data']);
  const assets = await startServer({ cors: true, root: siteDir });
  try {
    writeFileSync(join(hostDir, 'index.html'), `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>A blog post</title>
<script type="module" src="${assets.url}widget.js"></script>
<script src="host.js"></script>
</head><body>
<skywatch-trainer id="first" epochs="5"></skywatch-trainer>
<skywatch-trainer id="second" epochs="5" seed="7" compact></skywatch-trainer>
</body></html>`);
    writeFileSync(join(hostDir, 'host.js'), 'window.ticks = 0; setInterval(() => { window.ticks += 1; }, 20);\n');
    for (const isolated of [false, true]) {
      const host = await startServer({ root: hostDir, isolation: isolated, csp: false });
      const page = await browser.context.newPage();
      try {
        await page.goto(host.url);
        await page.waitForFunction(() => customElements.get('skywatch-trainer') !== undefined);
        const ticks0 = await page.evaluate(() => window.ticks);
        const t0 = Date.now();
        for (const id of ['first', 'second']) await page.locator(`#${id}`).locator('#train').click();
        await page.waitForFunction(() => ['first', 'second'].every((id) => ['done', 'error'].includes(document.getElementById(id).dataset.state)), null, { timeout: 120_000, polling: 50 });
        const seconds = (Date.now() - t0) / 1000;
        const ticks = (await page.evaluate(() => window.ticks)) - ticks0;
        const longest = await page.evaluate(() => Math.max(0, ...window.__e2e.longtasks.map((t) => t.duration)));
        emit({
          bench: 'widget-host', isolated, widgets: 2, seconds, mode: await page.locator('#first').locator('[data-metric="mode"]').textContent(),
          host_timer_share: Math.round((100 * ticks) / (seconds * 50)) / 100, longest_task_ms: Math.round(longest),
        });
      } finally {
        await page.close();
        await host.stop();
      }
    }
  } finally {
    await assets.stop();
    rmSync(hostDir, { recursive: true, force: true });
    rmSync(dirname(siteDir), { recursive: true, force: true });
  }
}

/** Per engine: the isolated page's mode line and seconds per lecture epoch on the whole bundle,
 *  timed from outside the page: the moments each epoch's result appears, polled every 20 ms. */
async function engines() {
  const server = await startServer();
  try {
    for (const name of selectedEngines()) {
      const e = await launch(name);
      try {
        await e.goto(`${server.url}?preset=lecture&epochs=${epochs}&seed=0&autostart=1`);
        const times = await epochTimes((fn) => e.evaluate(fn), Number(epochs), name);
        process.stdout.write(`${JSON.stringify({
          where: 'engine', engine: name, version: e.version, mode: await e.evaluate(() => document.querySelector('[data-metric="mode"]').textContent),
          preset: 'lecture', epochs: Number(epochs), epoch_seconds: times,
          // The first epoch includes compiling and warming up; the median is over the others.
          seconds_per_epoch: times.length > 1 ? median(times.slice(1)) : times[0],
        })}\n`);
      } finally {
        await e.close();
      }
    }
  } finally {
    await server.stop();
  }
}

/** Seconds per epoch of a page that has been started, timed from outside: the moments each
 *  epoch's result appears, polled every 20 ms, until `epochs` are done. */
async function epochTimes(evaluate, epochs, name) {
  const seen = [];
  const deadline = Date.now() + 600_000;
  let last = -1;
  for (;;) {
    const now = await evaluate(() => ({
      state: document.documentElement.dataset.state,
      epoch: Number(document.querySelector('[data-metric="epoch"]')?.textContent || 0),
    }));
    const t = Date.now();
    if (now.state === 'error') throw new Error(`${name}: the page stopped with an error`);
    if (now.state === 'training' && seen.length === 0) seen.push({ epoch: 0, t });
    if (seen.length && now.epoch !== last && now.epoch > 0) { seen.push({ epoch: now.epoch, t }); last = now.epoch; }
    if (now.state === 'done' && now.epoch >= epochs) break;
    if (Date.now() > deadline) throw new Error(`${name}: ${epochs} epochs did not finish in 600 s`);
    await sleep(20);
  }
  return seen.slice(1).map((x, i) => (x.t - seen[i].t) / 1000);
}

/** Part 8: the isolated page's lecture epochs (whole bundle) with the views of what the model
 *  learned open (hidden units updated every epoch, a unit selected, the saliency of a picture
 *  refreshed as training goes, the hard examples every epoch) and closed, alternating, ROUNDS
 *  rounds each (SKYWATCH_BENCH_VIEW_ROUNDS, default 6); the picture is classified in both, so that
 *  only the views differ. Then the worker's share, measured directly: the milliseconds of each
 *  view's request in the reference package (one thread, in Node) against its epoch. */
async function viewsCost() {
  const rounds = Number(process.env.SKYWATCH_BENCH_VIEW_ROUNDS || 6);
  const server = await startServer();
  const browser = await openBrowser();
  const picture = png(64, 64, { row: (r, y) => { if (y % 16 < 8) r.fill(0xff); } });
  const per = { open: [], closed: [] };
  const cpu = { open: { main: 0, workers: 0, other: 0, epochs: 0 }, closed: { main: 0, workers: 0, other: 0, epochs: 0 } };
  try {
    for (let round = 0; round < rounds; round++) {
      for (const views of round % 2 ? ['closed', 'open'] : ['open', 'closed']) {
        const page = await browser.context.newPage();
        try {
          // Closed before the page's first render (autostart: a new run, nothing restored).
          await page.addInitScript((open) => {
            document.addEventListener('DOMContentLoaded', () => {
              for (const id of ['units-details', 'why-details', 'hard-details']) document.getElementById(id).open = open;
            });
          }, views === 'open');
          await page.goto(`${server.url}?preset=lecture&epochs=${epochs}&seed=0&autostart=1`);
          // After the first epoch: a picture to explain, and (views open) a unit selected.
          await page.waitForFunction(() => Number(document.querySelector('[data-metric="epoch"]')?.textContent) >= 1, null, { timeout: 120_000, polling: 20 });
          const times = [];
          const cpu0 = rendererCpu(browser.profile);
          const epoch0 = Number(await page.textContent('[data-metric="epoch"]'));
          const timing = epochTimes((fn) => page.evaluate(fn), Number(epochs), `views ${views}`).then((t) => times.push(...t));
          await page.setInputFiles('#picture-input', { name: 'stripes.png', mimeType: 'image/png', buffer: picture });
          if (views === 'open') await page.click('#units-atlas', { position: { x: 5, y: 5 } });
          await timing;
          const cpu1 = rendererCpu(browser.profile);
          for (const k of ['main', 'workers', 'other']) cpu[views][k] += cpu1[k] - cpu0[k];
          cpu[views].epochs += Number(epochs) - epoch0;
          const shown = await page.evaluate(() => ({
            units: document.querySelector('[data-view="hidden-units"]')?.dataset.epoch ?? null,
            saliency: !document.querySelector('[data-view="saliency"]').hidden,
            hard: document.querySelectorAll('[data-view="hard-examples"] li').length,
          }));
          // Timed from epoch 1 on (the picture is there); the first interval is cut short.
          per[views].push(...times.slice(1));
          emit({ bench: 'views-round', round, views, preset: 'lecture', epoch_seconds: times, shown });
        } finally {
          await page.close();
        }
      }
    }
  } finally {
    await browser.close();
    await server.stop();
  }
  const open = median(per.open);
  const closed = median(per.closed);
  // CPU milliseconds per epoch of the page's threads (one epoch's wait for the `done` state and
  // the final evaluation fall inside the last interval, alike in both).
  const perEpoch = (c) => Object.fromEntries(['main', 'workers', 'other'].map((k) => [k, Math.round((1000 * c[k]) / c.epochs)]));
  emit({
    bench: 'views-cost', preset: 'lecture', rounds, epochs_each: per.open.length / rounds,
    open_seconds_per_epoch: open, closed_seconds_per_epoch: closed, slowdown: Math.round(10000 * (open / closed - 1)) / 10000,
    cpu_ms_per_epoch: { open: perEpoch(cpu.open), closed: perEpoch(cpu.closed) },
  });

  // The worker's side, per request, in the reference package (Node, one thread).
  const { newSession, runConfig } = await import('./reference.mjs');
  const { session: s, data: d } = newSession(DATA_DIR, runConfig({ epochs: 1, seed: 0 }));
  const t0 = performance.now();
  while (!s.trainBatches(1000).epoch);
  const epochMs = performance.now() - t0;
  const time = (fn, n = 10) => {
    fn();
    const t = performance.now();
    for (let i = 0; i < n; i++) fn();
    return (performance.now() - t) / n;
  };
  const rgba = new Uint8Array(4096).fill(200);
  const ms = {
    units: time(() => { const kept = s.unitTileEpochs().epochs; s.unitTilesAt(kept[kept.length - 1]); }),
    hard: time(() => {
      const h = s.hardExamples(12);
      d.imagesRgba('train', Uint32Array.from(new Set([...h.most_wrong, ...h.forgotten, ...h.ambiguous].map((x) => x.index))));
    }),
    saliency: time(() => s.saliencyRgba(rgba, 32, 32)),
    band: time(() => s.bandPosition('val_accuracy', 0, 0.8), 100),
  };
  s.free();
  // Per epoch: tiles, hard examples and the band once each; the saliency at most every 3 s.
  const share = (x, perEpoch = 1) => Math.round((10000 * x * perEpoch) / epochMs) / 10000;
  emit({
    bench: 'views-worker-ms', preset: 'lecture', threads: 1, epoch_ms: Math.round(epochMs), ...Object.fromEntries(Object.entries(ms).map(([k, v]) => [k, Math.round(100 * v) / 100])),
    share_of_epoch: { units: share(ms.units), hard: share(ms.hard), band: share(ms.band), saliency: share(ms.saliency, Math.max(1, epochMs / 3000)) },
  });
}
