// Browser benchmark page: runs the worker's `bench` request (peak FMA rate, GEMM GFLOP/s, seconds
// per epoch on synthetic data; `kernels=0`: epochs only) and prints one JSON line per figure. Driven by
// scripts/bench, which reads `#results` once `data-state` is `done`. `relaxed_simd=0` makes the
// worker take the threaded package built without relaxed SIMD (its `noRelaxedSimd` test hook).
// `backend=webgpu`: the WebGPU backend's rows instead (GEMM GFLOP/s per shape, seconds per epoch
// of `images` synthetic images, default 10000), each naming the adapter; a software adapter's
// rows say `"software": true` (a correctness run, not GPU speed).
// The worker loads the benchmark build of the packages (`bench: true`: www/pkg*-bench/, from
// `scripts/build --bench`); the production packages carry no benchmark code.
import { WorkerClient } from './client.js';

const params = new URLSearchParams(location.search);
const threads = Number(params.get('threads') || navigator.hardwareConcurrency || 1);
const presets = (params.get('presets') || 'lecture').split(',');
const epochs = Number(params.get('epochs') || 3);
const kernels = params.get('kernels') !== '0';
const noRelaxedSimd = params.get('relaxed_simd') === '0';
const gpu = params.get('backend') === 'webgpu';
const images = Number(params.get('images') || 10000);
const status = document.getElementById('status');
const results = document.getElementById('results');
const root = document.documentElement;
root.dataset.state = 'loading';

const client = new WorkerClient(new URL('./worker.js', import.meta.url));
client.on('bench-result', ({ row }) => { results.textContent += `${JSON.stringify(row)}\n`; });
client.on('error', ({ message }) => { status.textContent = `error: ${message}`; root.dataset.state = 'error'; });
client.on('crash', ({ message }) => { status.textContent = `crash: ${message}`; root.dataset.state = 'error'; });

const { mode } = await client.request({ type: 'init', threads, noRelaxedSimd, bench: true, backend: gpu ? 'webgpu' : 'wasm' }, 'ready');
// The package's own description on wasm ("2 threads + SIMD (relaxed-simd)"), the mode line on WebGPU.
const what = gpu ? mode.line : mode.reason;
status.textContent = `running: ${what}`;
root.dataset.state = 'training';
await client.request({ type: 'bench', presets, epochs, kernels, gpu, images }, 'bench-done');
status.textContent = `done: ${what}`;
root.dataset.state = 'done';
