// Browser benchmark page: runs the worker's `bench` request (peak FMA rate, GEMM GFLOP/s, seconds
// per epoch on synthetic data; `kernels=0`: epochs only) and prints one JSON line per figure. Driven by
// scripts/bench, which reads `#results` once `data-state` is `done`. `relaxed_simd=0` makes the
// worker take the threaded package built without relaxed SIMD (its `noRelaxedSimd` test hook).
// The worker loads the benchmark build of the packages (`bench: true`: www/pkg*-bench/, from
// `scripts/build --bench`); the production packages carry no benchmark code.
import { WorkerClient } from './client.js';

const params = new URLSearchParams(location.search);
const threads = Number(params.get('threads') || navigator.hardwareConcurrency || 1);
const presets = (params.get('presets') || 'lecture').split(',');
const epochs = Number(params.get('epochs') || 3);
const kernels = params.get('kernels') !== '0';
const noRelaxedSimd = params.get('relaxed_simd') === '0';
const status = document.getElementById('status');
const results = document.getElementById('results');
const root = document.documentElement;
root.dataset.state = 'loading';

const client = new WorkerClient(new URL('./worker.js', import.meta.url));
client.on('bench-result', ({ row }) => { results.textContent += `${JSON.stringify(row)}\n`; });
client.on('error', ({ message }) => { status.textContent = `error: ${message}`; root.dataset.state = 'error'; });
client.on('crash', ({ message }) => { status.textContent = `crash: ${message}`; root.dataset.state = 'error'; });

const { mode } = await client.request({ type: 'init', threads, noRelaxedSimd, bench: true }, 'ready');
status.textContent = `running: ${mode.reason}`;
root.dataset.state = 'training';
await client.request({ type: 'bench', presets, epochs, kernels }, 'bench-done');
status.textContent = `done: ${mode.reason}`;
root.dataset.state = 'done';
