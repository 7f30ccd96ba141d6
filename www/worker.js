// The training worker: loads the wasm package (threaded when the page is cross-origin isolated),
// picks the backend (WebGPU or wasm: worker/backend.js), fetches and caches the CIFAR-2 bundle
// (worker/data.js), trains in time slices so that control messages (pause, stop, predict) are
// handled between them (worker/training.js), and keeps the latest model in IndexedDB
// (worker/saving.js). This file holds the worker's state, the package's loading and the message
// handlers; the modules in worker/ get them as `ctx` ({state, post, fail, modelContext, ...}).
//
// Protocol: listed at the top of client.js; each request is handled by `handlers[type]` at the end
// of this file. Every reply is `{type, ...}`; an error is `{type: 'error', where, message}` and
// never leaves the worker in a broken state.

import { relaxedSimd, simd, threads as threadsSupported } from './vendor/wasm-feature-detect/index.js';
import { createStore } from './vendor/idb-keyval/index.js';
import { sameOriginWorkerUrl } from './client.js';
import { inspectHandlers } from './worker/inspect.js';
import { translationHandlers } from './worker/translation.js';
import { Model, modeLine, resolveBackend } from './worker/backend.js';
import { bench } from './worker/bench.js';
import { loadData } from './worker/data.js';
import { forget, restore, saveModel } from './worker/saving.js';
import { train } from './worker/training.js';
import { PACKAGES, benchPackage } from './worker/packages.js';

// The blog widget may load this worker from another origin than the page's: it then runs from a
// blob: URL (page origin) that imports this module. The pool workers wasm-bindgen-rayon starts
// from its own (cross-origin) URL need the same treatment, which WorkerClient's helper gives.
// Every worker started here is also kept referenced: Firefox collects a worker that shares wasm
// memory but that nothing references (https://bugzilla.mozilla.org/show_bug.cgi?id=1702191), and
// wasm-bindgen-rayon references its pool workers only once all have started, so one collected
// before then left `initThreadPool` waiting for ever (the page stuck at "Starting the training
// worker…", 1 start in 12 to 24 in Firefox ESR 153; none in 24 with the references kept).
//
// The pool's start message is also handed over in the form wasm-bindgen asks for: the helper of
// wasm-bindgen-rayon 1.3 (workerHelpers.no-bundler.js) calls `pkg.default(data.module,
// data.memory)`, the two-argument form that wasm-bindgen 0.2.130's glue deprecates with a console
// warning ("using deprecated parameters for the initialization function; pass a single object
// instead"), once per pool worker on every start. Given `module` as the single object
// `{module_or_path, memory}` (and no `memory`), the same call takes the current form.
if (self.Worker) {
  const NativeWorker = self.Worker;
  const started = [];
  self.Worker = class extends NativeWorker {
    constructor(url, options) {
      super(sameOriginWorkerUrl(url), options);
      started.push(this);
    }

    postMessage(msg, transfer) {
      if (msg?.type === 'wasm_bindgen_worker_init' && msg.module instanceof WebAssembly.Module) {
        msg = { ...msg, module: { module_or_path: msg.module, memory: msg.memory }, memory: undefined };
      }
      super.postMessage(msg, transfer ?? []);
    }
  };
}

// A content security policy violation in this worker is logged as an error (the page logs its
// own), so that it is seen; the e2e tests fail on any.
self.addEventListener('securitypolicyviolation', (e) => {
  console.error(`CSP violation: ${e.effectiveDirective} blocked ${e.blockedURI || 'an inline resource'} at ${e.sourceFile || self.location.href}:${e.lineNumber} (training worker)`);
});

/** Settles once `init` has loaded the package (or failed to), so that `load-data`, sent at the
 *  same time, downloads and hashes meanwhile and only waits for the wasm to hand the bytes over. */
let settleWasm;
const wasmReady = new Promise((resolve, reject) => { settleWasm = { resolve, reject }; });
wasmReady.catch(() => {}); // reported by `init` itself; `load-data` reports it again if it waits

const state = {
  wasm: null,        // the imported package module
  pkg: null,         // the package: {threads, kernel, isolated, reason, threadsWhy}
  mode: null,        // pkg and the backend: {..., backend, line, adapter}, as `ready` and `mode` send it
  choice: 'auto',    // the backend asked for: auto, webgpu or wasm
  backend: null,     // what the choice resolves to (backend.js resolveBackend)
  gpuFault: null,    // the message of a GPU fault: this worker stays on wasm after one
  data: null,        // wasm Data
  session: null,     // backend.js Model: the run, on WebGPU or wasm
  config: null,      // TrainConfig of the session
  seedDrawn: false,  // the session's seed was drawn at random (train's drawSeed)
  origin: 'init',    // where the session's weights started: 'init' (the seed's) or 'weights' (uploaded)
  history: [],       // EpochStats of the session so far
  running: false,    // a training loop is active
  translation: null, // the last translation test's result (worker/translation.js)
  translationRun: null, // the wasm TranslationRun in progress, if any
  saving: Promise.resolve(), // the latest IndexedDB write, chained so that writes keep their order
  epochWrite: null,  // the epoch snapshot being written, if any (a promise that never rejects)
  pendingSave: null, // the latest epoch's snapshot (a record), not written yet (saving.js)
  lastWriteAt: -Infinity, // performance.now() of the latest epoch write
  paused: false,
  stopRequested: false,
  store: null,       // idb-keyval store for the saved model
  storeKey: 'model',
};

const post = (msg, transfer = []) => self.postMessage(msg, transfer);
const fail = (where, err) => post({ type: 'error', where, message: String(err?.message ?? err) });

/** While `init` runs, the worker says it is alive every PULSE_MS: a start that is slow (a big
 *  download, a slow compile) keeps its pulse, while a worker whose thread is stuck loses it, which
 *  the page's start-up sequence (shared/startup.js) answers by starting a fresh worker. */
const PULSE_MS = 1000;

async function init(options) {
  const pulse = setInterval(() => post({ type: 'alive' }), PULSE_MS);
  try {
    try {
      await loadPackage(options);
      settleWasm.resolve();
    } catch (e) {
      settleWasm.reject(e);
      throw e;
    }
    await chooseBackend(options.backend);
  } finally {
    clearInterval(pulse);
  }
  post({ type: 'ready', mode: state.mode });
}

const BACKENDS = ['auto', 'webgpu', 'wasm'];

/** Resolves the backend choice `choice` (auto, webgpu, wasm) into `state.backend` and
 *  `state.mode`. `mode.notice` says why WebGPU, asked for by name, is not used. */
async function chooseBackend(choice = 'auto') {
  if (!BACKENDS.includes(choice)) throw new Error(`unknown backend ${JSON.stringify(choice)} (expected ${BACKENDS.join(', ')})`);
  state.choice = choice;
  state.backend = await resolveBackend(state.wasm, choice, state.gpuFault);
  setMode();
}

function setMode(extra = {}) {
  const b = state.backend;
  state.mode = {
    ...state.pkg,
    backend: b.kind,
    line: modeLine(state.pkg, b),
    adapter: b.adapter?.available ? b.adapter.description : null,
    notice: b.asked ? `WebGPU was asked for (backend=webgpu), but it cannot run here: ${b.why}. Training runs on wasm instead.` : null,
    ...extra,
  };
}

/** The run moved from WebGPU to wasm after a GPU fault (backend.js): the page is told why, and
 *  from which epoch the run goes on. */
function onFallback(message, epochsDone) {
  state.gpuFault = `the GPU failed (${message})`;
  state.backend = { kind: 'wasm', why: state.gpuFault, adapter: state.backend?.adapter ?? null, asked: false };
  setMode();
  post({ type: 'mode', mode: state.mode, fault: { message, epochs: epochsDone } });
}

/** What a Model needs: the package, the data, and the fallback's report. */
const modelContext = () => ({ wasm: state.wasm, data: state.data, onFallback });

/** What the modules in worker/ share with this file. */
const ctx = { state, post, fail, modelContext, wasmReady };

/** Picks and loads the package: threads where the page is cross-origin isolated and the browser
 *  has wasm threads (`pkg-threads/` with relaxed SIMD, or `pkg-threads-simd/` with simd128 only
 *  for browsers without relaxed SIMD, such as Safari), else the single-threaded `pkg/` (simd128).
 *  `noRelaxedSimd: true` is a test hook (tests/e2e/page.test.mjs): it pretends relaxed SIMD is
 *  missing, so that the simd128 threaded package can be tested in a browser that has both.
 *  `bench: true` (the bench page) takes the benchmark build of the same package, `pkg*-bench/`
 *  (scripts/build --bench): only it has the benchmark exports. */
async function loadPackage({ threads = navigator.hardwareConcurrency || 1, store = 'skywatch', persist = true, noRelaxedSimd = false, bench = false }) {
  if (!(await simd())) throw new Error('this browser does not support WebAssembly SIMD, which Skywatch needs');
  const isolated = self.crossOriginIsolated === true;
  let threadsWhy = null;
  let pkg = 'pkg';
  if (threads <= 1) threadsWhy = 'asked for one';
  else if (!isolated) threadsWhy = 'page not cross-origin isolated';
  else if (!(await threadsSupported())) threadsWhy = 'no WebAssembly threads in this browser';
  else pkg = !noRelaxedSimd && (await relaxedSimd()) ? 'pkg-threads' : 'pkg-threads-simd';
  const useThreads = pkg !== 'pkg';
  // Each package a literal import (worker/packages.js), so that bundlers carry all three.
  const wasm = await (bench ? benchPackage(pkg) : PACKAGES[pkg]());
  await wasm.default();
  let n = 1;
  if (useThreads) {
    n = threads;
    // wasm-bindgen-rayon: the pool's workers are started from here, never from the page's main
    // thread, where rayon would spin-wait (the main thread may not block).
    await wasm.initThreadPool(n);
  }
  const info = wasm.buildInfo();
  state.wasm = wasm;
  // `reason`: the package alone ("2 threads + SIMD (relaxed-simd)", "1 thread: page not
  // cross-origin isolated, simd128"); the mode line (`mode.line`) adds the backend.
  const reason = useThreads ? `${n} threads + SIMD (${info.kernel})` : `1 thread: ${threadsWhy}, ${info.kernel}`;
  state.pkg = { threads: n, kernel: info.kernel, isolated, reason, threadsWhy };
  state.mode = { ...state.pkg };
  state.store = persist ? createStore(`${store}-db`, 'runs') : null;
}

function requireSession() {
  if (!state.session) throw new Error('no model yet: train or load one first');
  return state.session;
}

async function evaluate() {
  const s = requireSession();
  const train = await s.evaluate('train');
  const test = await s.evaluate('test');
  post({ type: 'evaluation', train, test });
}

async function predict({ rgba, width, height }) {
  const p = await requireSession().predictRgba(new Uint8Array(rgba), width, height);
  post({ type: 'prediction', probabilities: p.probabilities, image: p.image, classes: state.data.classes() }, [p.image.buffer]);
}

async function gallery({ indices }) {
  const s = requireSession();
  const idx = Uint32Array.from(indices);
  const probs = await s.predictTest(idx);
  const k = state.data.classes().length;
  const images = new Uint8Array(idx.length * 32 * 32 * 4);
  const items = [];
  for (const [n, i] of idx.entries()) {
    images.set(state.data.testImageRgba(i), n * 4096);
    items.push({ index: i, label: state.data.testLabel(i), probabilities: Array.from(probs.subarray(n * k, (n + 1) * k)) });
  }
  post({ type: 'gallery', items, images, classes: state.data.classes() }, [images.buffer]);
}

async function exportWeights() {
  const bytes = await requireSession().exportWeights();
  post({ type: 'weights', bytes, config: state.config }, [bytes.buffer]);
}

async function importWeights({ bytes, config }) {
  if (state.running) throw new Error('stop training before loading weights');
  if (!state.data) throw new Error('the data is not loaded yet');
  // A new run from the file's weights with a budget of 0 epochs: "train more" sets how many. The
  // current model stays if the file is refused.
  const model = await Model.create(modelContext(), { ...config, epochs: 0 }, state.backend.kind);
  try {
    await model.importWeights(new Uint8Array(bytes));
  } catch (e) {
    model.free();
    throw e;
  }
  state.session?.free();
  state.session = model;
  const info = await state.session.info();
  state.config = info.config;
  state.seedDrawn = false;
  state.origin = 'weights';
  state.history = [];
  await (await saveModel(ctx)).written;
  post({ type: 'imported', config: state.config, summary: info.summary });
}

/** The backend choice changed (the page's form): new runs, restored and loaded models take it;
 *  the run on the page moves to it when it continues. */
async function setBackend({ backend }) {
  await chooseBackend(backend);
  post({ type: 'mode', mode: state.mode });
}

/** Test hook (tests/e2e/webgpu-moves.test.mjs): destroys the GPU device of the run, as a driver reset
 *  would; the run's next call moves it to wasm. */
function debugLoseGpu() {
  requireSession().debugLoseDevice();
}

const handlers = {
  bench: (msg) => bench(ctx, msg),
  init,
  // The bundle's folder is relative to this module, not to self.location, which is a blob: URL
  // for the widget. With `files` (a bundle's files.js), `url` is the manifest's own URL.
  'load-data': ({ url = 'data/', files = null }) => loadData(ctx, new URL(url, import.meta.url), files),
  restore: () => restore(ctx),
  train: (msg) => train(ctx, msg),
  evaluate, predict, gallery,
  export: exportWeights, import: importWeights,
  describe: ({ config }) => post({ type: 'described', summary: state.wasm.describeConfig(JSON.stringify(config)) }),
  preset: ({ name }) => post({ type: 'preset', name, config: JSON.parse(state.wasm.presetConfig(name)) }),
  pause: () => { state.paused = true; post({ type: 'paused' }); },
  resume: () => { state.paused = false; state.resume?.(); state.resume = null; post({ type: 'resumed' }); },
  stop: () => { state.stopRequested = true; state.paused = false; state.resume?.(); state.resume = null; },
  forget: () => forget(ctx),
  backend: setBackend,
  'debug-crash': debugCrash,
  ...inspectHandlers(state, post),
  ...translationHandlers(state, post),
  'debug-lose-gpu': debugLoseGpu,
};

/** Test hook (tests/e2e/hardening.test.mjs): the worker dies the way a real crash does. The
 *  error is thrown outside any handler, so nothing here catches it and the page's Worker gets an
 *  `error` event (WorkerClient's `crash`); closing first ends the worker for good, training loop
 *  and all, as an abort would. */
function debugCrash() {
  setTimeout(() => {
    self.close();
    throw new Error('debug-crash: the training worker was made to crash (a test hook)');
  }, 0);
}

self.onmessage = async ({ data: msg }) => {
  const handler = handlers[msg?.type];
  if (!handler) { fail('protocol', `unknown message type ${JSON.stringify(msg?.type)}`); return; }
  try {
    await handler(msg);
  } catch (e) {
    fail(msg.type, e);
  }
};
