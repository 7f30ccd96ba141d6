// Side-by-side benchmark (not a test): seconds per training epoch in headless Chromium against
// PyTorch (tests/reference/lecture_pytorch.py, the lecture's DataLoader) on the same bundle, in
// alternating rounds, so that both sides of a ratio ran at the same speed level of a machine
// whose speed drifts between runs. Prints JSON lines: one per round and thread count, then a
// summary per preset and thread count (median and range of the ratios, Chromium / PyTorch).
//
// usage: SKYWATCH_TORCH_PYTHON=/path/to/python node tests/e2e/versus-pytorch.mjs [PRESETS] [ROUNDS] [EPOCHS]
// (`scripts/bench --pytorch` runs it with the Python of `scripts/python-env --torch`.)
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { DATA_DIR, ROOT, openBrowser, prepare, startServer } from './harness.mjs';

const [presets = 'lecture', rounds = '5', epochs = '3'] = process.argv.slice(2);
const python = process.env.SKYWATCH_TORCH_PYTHON;
if (!python) throw new Error('SKYWATCH_TORCH_PYTHON is not set: give a Python that has torch and numpy');
const emit = (row) => process.stdout.write(`${JSON.stringify(row)}\n`);
const median = (v) => [...v].sort((a, b) => a - b)[v.length >> 1];

/** Median seconds per epoch in Chromium (after the page's own warm-up epoch). */
async function chromium(browser, server, preset, threads) {
  const page = await browser.context.newPage();
  try {
    await page.goto(`${server.url}bench.html?threads=${threads}&presets=${preset}&epochs=${epochs}&kernels=0`);
    await page.waitForFunction(() => ['done', 'error'].includes(document.documentElement.dataset.state), null, { timeout: 600_000 });
    const status = await page.textContent('#status');
    if (!status.startsWith('done')) throw new Error(`Chromium, ${threads} thread(s): ${status}`);
    const row = JSON.parse((await page.textContent('#results')).trim().split('\n').at(-1));
    return { seconds: row.seconds, kernel: row.kernel };
  } finally {
    await page.close();
  }
}

/** Median seconds per epoch in PyTorch; its first epoch is the warm-up, as in Chromium. */
function pytorch(preset, threads) {
  const script = join(ROOT, 'tests/reference/lecture_pytorch.py');
  const args = [script, DATA_DIR, String(Number(epochs) + 1), String(threads), ...(preset === 'deep' ? ['--deep'] : [])];
  const r = spawnSync(python, args, { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`PyTorch failed (${r.status ?? r.signal}): ${r.stderr.slice(-2000)}`);
  const rows = r.stdout.trim().split('\n').map((l) => JSON.parse(l));
  return median(rows.slice(1).map((row) => row.seconds));
}

prepare();
const server = await startServer();
const browser = await openBrowser();
try {
  for (const preset of presets.split(',')) {
    const ratios = { 1: [], 2: [] };
    for (let round = 0; round < Number(rounds); round++) {
      for (const threads of [1, 2]) {
        const c = await chromium(browser, server, preset, threads);
        const p = pytorch(preset, threads);
        ratios[threads].push(c.seconds / p);
        emit({ bench: 'versus-pytorch', preset, round, threads, kernel: c.kernel, chromium_seconds: c.seconds, pytorch_seconds: p, ratio: c.seconds / p });
      }
    }
    for (const threads of [1, 2]) {
      const r = ratios[threads];
      emit({ bench: 'versus-pytorch-summary', preset, threads, rounds: r.length, ratio_median: median(r), ratio_min: Math.min(...r), ratio_max: Math.max(...r) });
    }
  }
} finally {
  await browser.close();
  await server.stop();
}
