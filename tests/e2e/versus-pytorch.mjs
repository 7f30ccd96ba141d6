// Side-by-side benchmark (not a test): seconds per training epoch in headless Chromium against
// PyTorch (tests/reference/lecture_pytorch.py, the lecture's DataLoader) on the same bundle, in
// alternating rounds, so that both sides of a ratio ran at the same speed level of a machine
// whose speed drifts between runs. Each round measures, with one thread count: bench.html's epoch
// (the worker's own clock, training only), the training page's epoch as its user sees it (timed
// from the moments each epoch appears on the page: validation, saving and drawing included;
// backend=wasm), then PyTorch's. Prints JSON lines: one per round and thread count, then a
// summary per preset and thread count (median and range of the ratios: Chromium / PyTorch, the
// page / PyTorch, the page / bench.html, and the page / PyTorch's training with its validation
// pass, which the page's epoch includes). Presets: lecture, deep and conv (the book's Net).
//
// usage: SKYWATCH_TORCH_PYTHON=/path/to/python node tests/e2e/versus-pytorch.mjs [PRESETS] [ROUNDS] [EPOCHS]
// (`scripts/bench --pytorch` runs it with the Python of `scripts/python-env --torch`.)
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { DATA_DIR, ROOT, openBrowser, prepare, startServer } from './harness.mjs';
import { benchEpochs, pageEpochs } from './timing.mjs';

const [presets = 'lecture', rounds = '5', epochs = '3'] = process.argv.slice(2);
const python = process.env.SKYWATCH_TORCH_PYTHON;
if (!python) throw new Error('SKYWATCH_TORCH_PYTHON is not set: give a Python that has torch and numpy');
const emit = (row) => process.stdout.write(`${JSON.stringify(row)}\n`);
const median = (v) => [...v].sort((a, b) => a - b)[v.length >> 1];

/** Median seconds per epoch in Chromium (after the page's own warm-up epoch). */
async function chromium(browser, server, preset, threads) {
  const r = await benchEpochs(browser, server.url, `threads=${threads}&presets=${preset}&epochs=${epochs}&kernels=0`);
  return { seconds: r.seconds, kernel: r.kernel };
}

/** Median seconds per epoch of the training page as its user sees it (the first epoch, which
 *  warms up, left out as in bench.html), on wasm with `threads` threads. */
function trainingPage(browser, server, preset, threads) {
  const n = Number(epochs) + 1;
  return pageEpochs(browser, `${server.url}?preset=${preset}&epochs=${n}&seed=0&threads=${threads}&backend=wasm&autostart=1`, n);
}

/** Median seconds per epoch in PyTorch, training only and with its validation pass (which the
 *  page's epoch, as its user sees it, includes); its first epoch is the warm-up, as in Chromium. */
function pytorch(preset, threads) {
  const script = join(ROOT, 'tests/reference/lecture_pytorch.py');
  const args = [script, DATA_DIR, String(Number(epochs) + 1), String(threads), ...({ deep: ['--deep'], conv: ['--conv'] }[preset] ?? [])];
  const r = spawnSync(python, args, { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`PyTorch failed (${r.status ?? r.signal}): ${r.stderr.slice(-2000)}`);
  const rows = r.stdout.trim().split('\n').map((l) => JSON.parse(l));
  const timed = rows.slice(1);
  return { seconds: median(timed.map((row) => row.seconds)), withValidation: median(timed.map((row) => row.seconds + row.eval_seconds)) };
}

prepare();
const server = await startServer();
const browser = await openBrowser();
try {
  for (const preset of presets.split(',')) {
    const ratios = { 1: [], 2: [] };
    const pageRatios = { 1: [], 2: [] };
    const pageVsBench = { 1: [], 2: [] };
    const pageVsWhole = { 1: [], 2: [] };
    for (let round = 0; round < Number(rounds); round++) {
      for (const threads of [1, 2]) {
        const c = await chromium(browser, server, preset, threads);
        const g = await trainingPage(browser, server, preset, threads);
        const { seconds: p, withValidation: pv } = pytorch(preset, threads);
        ratios[threads].push(c.seconds / p);
        pageRatios[threads].push(g.seconds / p);
        pageVsBench[threads].push(g.seconds / c.seconds);
        pageVsWhole[threads].push(g.seconds / pv);
        emit({
          bench: 'versus-pytorch', preset, round, threads, kernel: c.kernel, chromium_seconds: c.seconds, page_seconds: g.seconds,
          page_epoch_seconds: g.epoch_seconds, page_in_run_ratio: g.in_run_ratio, pytorch_seconds: p, ratio: c.seconds / p, page_ratio: g.seconds / p,
          page_vs_bench: g.seconds / c.seconds, pytorch_with_validation_seconds: pv, page_ratio_with_validation: g.seconds / pv,
        });
      }
    }
    const range = (name, v) => ({ [`${name}_median`]: median(v), [`${name}_min`]: Math.min(...v), [`${name}_max`]: Math.max(...v) });
    for (const threads of [1, 2]) {
      emit({
        bench: 'versus-pytorch-summary', preset, threads, rounds: ratios[threads].length,
        ...range('ratio', ratios[threads]), ...range('page_ratio', pageRatios[threads]), ...range('page_vs_bench', pageVsBench[threads]),
        ...range('page_ratio_with_validation', pageVsWhole[threads]),
      });
    }
  }
} finally {
  await browser.close();
  await server.stop();
}
