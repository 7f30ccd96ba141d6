// Timing the training page as its user sees it (benchmarks, not tests): seconds per epoch from the
// moments each epoch's result appears on the page, validation, saving and drawing included; and
// bench.html's epoch (the worker's own clock, training only), for comparison. Used by
// tests/e2e/bench.mjs and tests/e2e/versus-pytorch.mjs.

import { readFileSync, readdirSync } from 'node:fs';

/** CPU seconds so far of the threads of the Chromium processes of `profile` (a profile folder on
 *  their command lines), summed by `process type:thread name` (from /proc; Linux). */
export function threadCpu(profile) {
  const out = {};
  for (const pid of readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
    let cmd;
    try { cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8'); } catch { continue; }
    if (!cmd.includes(profile)) continue;
    const type = /--type=([a-z-]+)/.exec(cmd)?.[1] ?? 'browser';
    let tids;
    try { tids = readdirSync(`/proc/${pid}/task`); } catch { continue; }
    for (const tid of tids) {
      try {
        const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
        const name = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')')).replace(/\d+$/, '#');
        const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
        const key = `${type}:${name}`;
        out[key] = (out[key] ?? 0) + (Number(f[11]) + Number(f[12])) / 100; // utime + stime, in clock ticks of 1/100 s
      } catch { /* the thread ended */ }
    }
  }
  return out;
}

/** Where the CPU went between two `threadCpu` readings, per epoch: the training worker and its
 *  rayon threads (the renderer's DedicatedWorker threads), the page's main thread, and the rest of
 *  the browser (compositor, GPU process, IndexedDB, IO). */
function cpuPerEpoch(before, after, epochs) {
  const d = (pred) => Object.keys(after).filter(pred).reduce((s, k) => s + after[k] - (before[k] ?? 0), 0) / epochs;
  const workers = d((k) => k === 'renderer:DedicatedWorker');
  const main = d((k) => k === 'renderer:chromium' || k === 'renderer:CrRendererMain');
  const all = d(() => true);
  return { workers, main, rest: all - workers - main, overhead: (all - workers) / workers };
}

const median = (v) => {
  const s = [...v].sort((a, b) => a - b);
  return s.length % 2 ? s[s.length >> 1] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

/** Opens `url` (the page with `autostart=1` and `epochs` epochs) in a new tab of `browser` (from
 *  harness.mjs's openBrowser) and
 *  records, in the page, when `[data-metric="epoch"]` changes (a MutationObserver: no polling
 *  from outside, which would itself cost the page time). Resolves with `{mode, backend,
 *  epoch_seconds, seconds, train_seconds, in_run_ratio}`: the seconds of each epoch as it
 *  appeared (the first from the start of training, so it includes compiling and warming up) and
 *  their median without the first; the worker's own training seconds of the same epochs (the
 *  epoch log's, validation excluded, as bench.html's) and the median of visible / training
 *  without the first: the page's overhead measured within one run, whatever else the machine
 *  does meanwhile. */
export async function pageEpochs(browser, url, epochs, { timeout = 900_000, cpu = false } = {}) {
  const page = await browser.context.newPage();
  try {
    // With `cpu`, also `cpu_per_epoch`: {workers, main, rest, overhead} (CPU seconds per epoch,
    // and what the browser spent besides the training threads, as a share of theirs: a measure
    // that other load on the machine disturbs far less than wall time).
    await page.addInitScript(() => {
      const times = [];
      window.__epochTimes = times;
      const start = () => {
        const el = document.querySelector('[data-metric="epoch"]');
        if (!el) { requestAnimationFrame(start); return; }
        let last = el.textContent;
        new MutationObserver(() => {
          if (el.textContent !== last) { last = el.textContent; times.push({ epoch: Number(last), t: performance.now() }); }
        }).observe(el, { childList: true, characterData: true, subtree: true });
      };
      document.addEventListener('DOMContentLoaded', start);
    });
    await page.goto(url);
    // `cpu`: the CPU the browser spent from the first epoch's end to the last's, per epoch.
    let cpuAt = null;
    if (cpu) {
      await page.waitForFunction(() => Number(document.querySelector('[data-metric="epoch"]')?.textContent) >= 1, null, { timeout, polling: 20 });
      cpuAt = threadCpu(browser.profile);
    }
    await page.waitForFunction((n) => ['done', 'error'].includes(document.documentElement.dataset.state)
      && (document.documentElement.dataset.state === 'error' || Number(document.querySelector('[data-metric="epoch"]').textContent) >= n), epochs, { timeout, polling: 500 });
    const got = await page.evaluate(() => ({
      state: document.documentElement.dataset.state,
      errors: [...document.querySelectorAll('#error-list li')].map((li) => li.textContent),
      mode: document.querySelector('[data-metric="mode"]').textContent,
      backend: document.querySelector('[data-metric="backend"]')?.textContent ?? '',
      times: window.__epochTimes,
      log: [...document.getElementById('log').textContent.matchAll(/^Epoch: \d+, .*\(([\d.]+) s\)$/gm)].map((m) => Number(m[1])),
      trainingAt: window.__e2e?.states.findLast((s) => s.state === 'training')?.t,
    }));
    if (got.state !== 'done') throw new Error(`the page at ${url} stopped: ${got.errors.join('; ')}`);
    const cpuSeconds = cpuAt ? cpuPerEpoch(cpuAt, threadCpu(browser.profile), epochs - 1) : undefined;
    // From the new run's epoch 0 (a restored model may show its own epochs first).
    const run = got.times.slice(got.times.findLastIndex((x) => x.epoch === 0) + 1).filter((x) => x.epoch > 0);
    const marks = [got.trainingAt, ...run.map((x) => x.t)];
    const seconds = run.map((x, i) => (x.t - marks[i]) / 1000);
    const train = got.log.slice(-seconds.length);
    const ratios = seconds.map((s, i) => s / train[i]);
    return {
      mode: got.mode, backend: got.backend, epoch_seconds: seconds, seconds: seconds.length > 1 ? median(seconds.slice(1)) : seconds[0],
      train_seconds: train, in_run_ratio: ratios.length > 1 ? median(ratios.slice(1)) : ratios[0], cpu_per_epoch: cpuSeconds,
    };
  } finally {
    await page.close();
  }
}

/** bench.html's seconds per training epoch (median after its warm-up epoch) with `query`
 *  (e.g. `threads=2&presets=lecture&epochs=3&kernels=0`): `{seconds, kernel, rows}`. */
export async function benchEpochs(browser, baseUrl, query, { timeout = 900_000 } = {}) {
  const page = await browser.context.newPage();
  try {
    await page.goto(`${baseUrl}bench.html?${query}`);
    await page.waitForFunction(() => ['done', 'error'].includes(document.documentElement.dataset.state), null, { timeout });
    const status = await page.textContent('#status');
    if (!status.startsWith('done')) throw new Error(`bench.html?${query}: ${status}`);
    const rows = (await page.textContent('#results')).trim().split('\n').map((l) => JSON.parse(l));
    const epoch = rows.findLast((r) => r.bench === 'epoch' || r.bench === 'gpu-epoch');
    return { seconds: epoch?.seconds, kernel: epoch?.kernel, rows, status };
  } finally {
    await page.close();
  }
}

export { median };
