// The training worker: loads the wasm package (threaded when the page is cross-origin isolated),
// picks the backend (WebGPU or wasm: worker/backend.js), fetches and caches the CIFAR-2 bundle,
// trains in time slices so that control messages (pause, stop, predict) are handled between them,
// and keeps the latest model in IndexedDB.
//
// Protocol: listed at the top of client.js; each request is handled by `handlers[type]` at the end
// of this file. Every reply is `{type, ...}`; an error is `{type: 'error', where, message}` and
// never leaves the worker in a broken state.

import { relaxedSimd, simd, threads as threadsSupported } from './vendor/wasm-feature-detect/index.js';
import { createStore, del, get, set, update } from './vendor/idb-keyval/index.js';
import { sameOriginWorkerUrl } from './client.js';
import { inspectHandlers, trainMore } from './worker/inspect.js';
import { Model, modeLine, resolveBackend } from './worker/backend.js';
import { inflateSplit } from './worker/decode.js';
import { PACKAGES, benchPackage } from './worker/packages.js';

// The blog widget may load this worker from another origin than the page's: it then runs from a
// blob: URL (page origin) that imports this module. The pool workers wasm-bindgen-rayon starts
// from its own (cross-origin) URL need the same treatment, which WorkerClient's helper gives.
// Every worker started here is also kept referenced: Firefox collects a worker that shares wasm
// memory but that nothing references (https://bugzilla.mozilla.org/show_bug.cgi?id=1702191), and
// wasm-bindgen-rayon references its pool workers only once all have started, so one collected
// before then left `initThreadPool` waiting for ever (the page stuck at "Starting the training
// worker…", 1 start in 12 to 24 in Firefox ESR 153; none in 24 with the references kept).
if (self.Worker) {
  const NativeWorker = self.Worker;
  const started = [];
  self.Worker = class extends NativeWorker {
    constructor(url, options) {
      super(sameOriginWorkerUrl(url), options);
      started.push(this);
    }
  };
}

// A content security policy violation in this worker is logged as an error (the page logs its
// own), so that it is seen; the e2e tests fail on any.
self.addEventListener('securitypolicyviolation', (e) => {
  console.error(`CSP violation: ${e.effectiveDirective} blocked ${e.blockedURI || 'an inline resource'} at ${e.sourceFile || self.location.href}:${e.lineNumber} (training worker)`);
});

/** Milliseconds of training per slice: short enough for a prompt pause, long enough to be cheap. */
const SLICE_MS = 80;
/** Least time between two IndexedDB writes of the run while it trains. Each writes the whole run
 *  (6 MB for the lecture model), which cost the training threads of a 2-core machine a few
 *  percent when written after every epoch. The snapshot is still taken after every epoch; a pause,
 *  a stop, a failure and the run's end write the latest one at once. */
const SAVE_EVERY_MS = 5000;
const DATA_CACHE = 'skywatch-data-v1';
/** Tries per data file before the download is reported as failed. */
const DOWNLOAD_ATTEMPTS = 3;

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
  saving: Promise.resolve(), // the latest IndexedDB write, chained so that writes keep their order
  epochWrite: null,  // the epoch snapshot being written, if any (a promise that never rejects)
  pendingSave: null, // the latest epoch's snapshot (a record), not written yet (SAVE_EVERY_MS)
  lastWriteAt: -Infinity, // performance.now() of the latest epoch write
  paused: false,
  stopRequested: false,
  store: null,       // idb-keyval store for the saved model
  storeKey: 'model',
};

const post = (msg, transfer = []) => self.postMessage(msg, transfer);
const fail = (where, err) => post({ type: 'error', where, message: String(err?.message ?? err) });

/** Lets queued messages run between training slices (faster than setTimeout's 4 ms clamp). */
const yieldToEvents = () => new Promise((resolve) => {
  const ch = new MessageChannel();
  ch.port1.onmessage = () => resolve();
  ch.port2.postMessage(null);
});

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

/** Fetches `url` with progress reports, from the Cache API when it holds it. The bytes land in
 *  one buffer of the announced length (no list of chunks to concatenate: the page's peak memory
 *  is what the issue on speed counts). */
async function fetchCached(url, name, cache) {
  const cached = cache ? await cache.match(url) : undefined;
  if (cached) return readBody(cached, name, true);
  // A connection that drops half way restarts the file from its start (a clean restart: nothing
  // partial is kept or cached), a few times with a growing pause.
  for (let attempt = 1; ; attempt++) {
    try {
      const res = await fetch(url);
      if (!res.ok) throw new HttpError(`${name}: HTTP ${res.status} ${res.statusText} for ${url}`);
      return await readBody(res, name, false);
    } catch (e) {
      if (e instanceof HttpError) throw e;
      if (attempt >= DOWNLOAD_ATTEMPTS) {
        throw new Error(`${name}: the download failed ${attempt} times (${e.message}); check the connection and try again`);
      }
      post({ type: 'data-progress', file: name, loaded: 0, total: 0, fromCache: false, retry: attempt });
      await new Promise((r) => setTimeout(r, 500 * attempt));
    }
  }
}

/** An HTTP error status: retrying the same request would not help. */
class HttpError extends Error {}

async function readBody(res, name, fromCache) {
  const total = Number(res.headers.get('content-length')) || 0;
  const reader = res.body.getReader();
  let bytes = new Uint8Array(total);
  let loaded = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    if (loaded + value.length > bytes.length) {
      // No or a wrong Content-Length: grow (doubling), which only a misconfigured server causes.
      const bigger = new Uint8Array(Math.max(2 * bytes.length, loaded + value.length));
      bigger.set(bytes.subarray(0, loaded));
      bytes = bigger;
    }
    bytes.set(value, loaded);
    loaded += value.length;
    post({ type: 'data-progress', file: name, loaded, total, fromCache });
  }
  return { bytes: loaded === bytes.length ? bytes : bytes.slice(0, loaded), fromCache };
}

/** Lower-case hex sha256 by the browser's native implementation, or undefined where
 *  `crypto.subtle` is missing (pages over plain http): the wasm side then hashes. */
async function sha256(bytes) {
  if (!self.crypto?.subtle) return undefined;
  const d = new Uint8Array(await self.crypto.subtle.digest('SHA-256', bytes));
  return Array.from(d, (b) => b.toString(16).padStart(2, '0')).join('');
}

/** `url`: a bundle folder (default the page's data/), relative to this module, not to
 *  self.location (a blob: URL for the widget); or, with `files` (a bundle's files.js: its file
 *  names mapped to URLs that a bundler may have rewritten), the manifest's own URL. Every error
 *  names the URL it is about. */
async function loadData({ url = 'data/', files = null }) {
  const base = new URL(url, import.meta.url);
  const manifestUrl = files ? base.href : new URL('manifest.json', base).href;
  const res = await fetch(manifestUrl, { cache: 'no-cache' }).catch((e) => {
    throw new Error(`manifest.json: the download failed (${e.message}) for ${manifestUrl}; check the connection and try again`);
  });
  if (!res.ok) throw new Error(`manifest.json: HTTP ${res.status} for ${manifestUrl} (build the data with \`skywatch data\`)`);
  const manifestText = await res.text();
  let manifest;
  try {
    manifest = JSON.parse(manifestText);
  } catch (e) {
    throw new Error(`manifest.json: not valid JSON (${e.message}) at ${manifestUrl}; rebuild the bundle with \`skywatch data\``);
  }
  // The wasm side checks the whole manifest; before fetching, only this: the files must be plain
  // names inside the bundle folder (a manifest cannot send the page elsewhere).
  for (const split of ['train', 'test']) {
    const file = manifest?.[split]?.file;
    if (typeof file !== 'string' || !/^[A-Za-z0-9_-][A-Za-z0-9._-]*$/.test(file) || (files && typeof files[file] !== 'string')) {
      throw new Error(`manifest.json: ${split}.file ${JSON.stringify(file)} is not a plain file name in the bundle folder (${manifestUrl})`);
    }
  }
  const cache = self.caches ? await self.caches.open(DATA_CACHE).catch(() => null) : null;
  const splits = [manifest.train, manifest.test];
  const urls = splits.map((s) => new URL(files ? files[s.file] : s.file, base).href);
  const [train, test] = await Promise.all(splits.map((s, i) => fetchCached(urls[i], s.file, cache)));
  try {
    // The sha256 of each file as downloaded; a version-2 file is then inflated (worker/decode.js).
    // Data checks sizes, sha256 and labels against the manifest (and undoes version 2's pixel
    // predictor); it copies the bytes into wasm memory.
    const [trainSha, testSha] = await Promise.all([sha256(train.bytes), sha256(test.bytes)]);
    const [trainBytes, testBytes] = await Promise.all([train, test].map((got, i) => inflateSplit(splits[i], got.bytes, urls[i])));
    await wasmReady;
    try {
      state.data = new state.wasm.Data(manifestText, trainBytes, testBytes, trainSha, testSha);
    } catch (e) {
      throw new Error(`${e.message} (the bundle at ${manifestUrl})`);
    }
  } catch (e) {
    // A corrupt cached copy must not be served again.
    if (cache) await Promise.all(urls.map((f) => cache.delete(f)));
    throw e;
  }
  if (cache) {
    // Record files carry their hash in their name, so a cached copy never goes stale.
    for (const [i, got] of [train, test].entries()) {
      if (!got.fromCache) await cache.put(urls[i], new Response(got.bytes, { headers: { 'content-type': 'application/octet-stream', 'content-length': String(got.bytes.length) } }));
    }
  }
  post({
    type: 'data-ready',
    classes: state.data.classes(),
    train: state.data.trainLength(),
    test: state.data.testLength(),
    fromCache: train.fromCache && test.fromCache,
  });
}

/** A new run of `config` on the chosen backend (a run WebGPU cannot take starts on wasm, and
 *  the page is told why: backend.js). */
async function newSession(config, seedDrawn = false) {
  if (!state.data) throw new Error('the data is not loaded yet');
  state.session?.free();
  state.session = null;
  state.session = await Model.create(modelContext(), config, state.backend.kind);
  state.config = (await state.session.info()).config;
  state.seedDrawn = seedDrawn;
  state.origin = 'init';
  state.history = [];
}

/** Snapshots the run now (weights, optimizer state, loader position: `saveState`, only between
 *  epochs) and queues its IndexedDB write behind earlier ones. Resolves once the snapshot is
 *  taken, with `{written}`: the write's promise (training need not wait for the disk).
 *  `interrupted` marks a run that should carry on by itself after a reload. */
async function saveModel({ interrupted = false } = {}) {
  if (!state.store) return { written: Promise.resolve() };
  const record = await snapshot(interrupted);
  return { written: queueWrite(() => set(state.storeKey, record, state.store)) };
}

/** After an epoch: its snapshot, written at once unless the previous one is still being written
 *  or was written less than SAVE_EVERY_MS ago; then it waits for the next epoch's end or
 *  `flushSave`. Resolves once the snapshot is taken, before the write. */
async function saveEpoch(interrupted) {
  if (!state.store) return;
  try {
    state.pendingSave = await snapshot(interrupted);
  } catch (e) {
    fail('save', e);
    return;
  }
  if (!state.epochWrite && performance.now() - state.lastWriteAt >= SAVE_EVERY_MS) writePending();
}

/** The run as IndexedDB keeps it (between epochs). */
async function snapshot(interrupted) {
  const history = [...state.history];
  return { config: state.config, history, state: await state.session.saveState(), interrupted, seedDrawn: state.seedDrawn, origin: state.origin, savedAt: Date.now() };
}

function writePending() {
  const record = state.pendingSave;
  if (!record) return;
  state.pendingSave = null;
  state.lastWriteAt = performance.now();
  const write = queueWrite(() => set(state.storeKey, record, state.store)).catch((e) => fail('save', e))
    .finally(() => { if (state.epochWrite === write) state.epochWrite = null; });
  state.epochWrite = write;
}

/** Writes the snapshot still waiting, if any; resolves when the writes are done. */
async function flushSave() {
  writePending();
  await state.epochWrite; // never rejects: writePending reports its failure
}

/** Marks the saved run as not to be resumed by itself (the user stopped it). */
function markNotInterrupted() {
  if (!state.store) return Promise.resolve();
  return queueWrite(() => update(state.storeKey, (r) => (r ? { ...r, interrupted: false } : r), state.store));
}

function queueWrite(write) {
  state.saving = state.saving.catch(() => {}).then(write);
  return state.saving;
}

async function restore() {
  const saved = state.store ? await get(state.storeKey, state.store) : undefined;
  if (!saved || !state.data) { post({ type: 'restored', found: false }); return; }
  try {
    state.session?.free();
    state.session = null;
    // Resumes exactly where the saved epoch ended (the run then ends as an uninterrupted one), on
    // the chosen backend, whichever saved it: both save the same state.
    state.session = await Model.resume(modelContext(), new Uint8Array(saved.state), state.backend.kind);
    const info = await state.session.info();
    state.config = info.config;
    state.history = saved.history ?? [];
    state.seedDrawn = Boolean(saved.seedDrawn);
    state.origin = saved.origin === 'weights' ? 'weights' : 'init';
    if (info.epochsDone !== state.history.length) throw new Error('the saved history does not match the saved run');
    post({ type: 'restored', found: true, config: state.config, history: state.history, summary: info.summary, interrupted: Boolean(saved.interrupted) && state.history.length < state.config.epochs, seedDrawn: state.seedDrawn });
  } catch (e) {
    await del(state.storeKey, state.store);
    state.session?.free();
    state.session = null;
    post({ type: 'restored', found: false, discarded: String(e?.message ?? e) });
  }
}

async function train({ config, continueRun = false, drawSeed = false, more = 0 }) {
  if (state.running) throw new Error('training is already running');

  state.running = true;
  try {
    if (!continueRun || !state.session) {
      // A new seed from the browser's entropy source (getrandom in the core); it is recorded in
      // the run's configuration, so the run can be repeated with it.
      await newSession(drawSeed ? { ...config, seed: state.wasm.randomSeed() } : config, drawSeed);
    } else {
      if (state.session.kind !== state.backend.kind) await moveSession();
      // "Train more": the same run, its epoch budget raised (saveState records it, so a reload
      // resumes to the new budget).
      if (more) await trainMore(state, more);
    }
    state.paused = false;
    state.stopRequested = false;
    const info = await state.session.info();
    post({ type: 'started', config: state.config, summary: info.summary, batchesPerEpoch: info.batchesPerEpoch, trainSize: info.trainLength, epochsDone: state.history.length, seedDrawn: state.seedDrawn, backend: state.session.kind });
    await trainEpochs(state.config.epochs);
  } finally {
    state.running = false;
  }
}

/** The training loop: slices of about SLICE_MS until `epochs` epochs are done or a stop. */
async function trainEpochs(epochs) {
  let batches = 4;
  try {
    while (state.history.length < epochs && !state.stopRequested) {
      if (state.paused) {
        await flushSave(); // a reload while paused finds the latest epoch
        if (state.paused) await new Promise((r) => { state.resume = r; });
        continue;
      }
      const t0 = performance.now();
      const kind = state.session.kind;
      const step = await state.session.trainBatches(batches);
      const ms = performance.now() - t0;
      post({ type: 'progress', progress: step.progress, batches, seconds: ms / 1000 });
      if (step.epoch) {
        state.history.push(step.epoch);
        post({ type: 'epoch', stats: step.epoch });
        await saveEpoch(state.history.length < epochs);
      }
      // A move to wasm mid-run (a GPU fault): the slice size is measured anew.
      if (state.session.kind !== kind) { batches = 4; await yieldToEvents(); continue; }
      // Aim for SLICE_MS per slice whatever the machine and model.
      batches = Math.max(1, Math.min(1000, Math.round(batches * SLICE_MS / Math.max(ms, 1))));
      await yieldToEvents();
    }
    await flushSave();
    if (state.stopRequested) markNotInterrupted().catch((e) => fail('save', e));
    post({ type: state.stopRequested ? 'stopped' : 'done', epochs: state.history.length });
  } catch (e) {
    // A run that failed (it diverged) must not resume by itself after a reload only to fail
    // again: the saved model of its last good epoch stays, for the user to continue or not.
    flushSave().then(markNotInterrupted).catch(() => {});
    throw e;
  }
}

/** Moves the run to the chosen backend (the choice changed since it was made), between epochs;
 *  a run stopped within an epoch stays where it is until that epoch ends. */
async function moveSession() {
  let saved;
  try {
    saved = await state.session.saveState();
  } catch {
    return; // within an epoch
  }
  const moved = await Model.resume(modelContext(), saved, state.backend.kind);
  state.session.free();
  state.session = moved;
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
  await (await saveModel()).written;
  post({ type: 'imported', config: state.config, summary: info.summary });
}

/** The backend choice changed (the page's form): new runs, restored and loaded models take it;
 *  the run on the page moves to it when it continues. */
async function setBackend({ backend }) {
  await chooseBackend(backend);
  post({ type: 'mode', mode: state.mode });
}

/** Test hook (tests/e2e/webgpu.test.mjs): destroys the GPU device of the run, as a driver reset
 *  would; the run's next call moves it to wasm. */
function debugLoseGpu() {
  requireSession().debugLoseDevice();
}

/** What every WebGPU benchmark row says about its adapter; a software adapter's figures are
 *  correctness runs, not GPU speed. */
function adapterFields(adapter) {
  return {
    adapter: adapter.description,
    software: adapter.fallback,
    ...(adapter.fallback ? { note: 'software adapter (no GPU): a correctness run, not GPU speed' } : {}),
  };
}

/** Browser benchmark: peak, GEMM and epoch timings with this worker's thread count; with
 *  `gpu: true` the WebGPU backend's instead (GEMM GFLOP/s per shape, seconds per epoch of
 *  `images` synthetic training images), on whatever adapter the browser offers. */
async function bench({ presets = ['lecture'], epochs = 3, kernels = true, gpu = false, images = 10000 }) {
  const w = state.wasm;
  const mode = state.mode;
  if (gpu) {
    if (kernels) {
      const g = await w.gpuBenchGemm();
      for (const r of g.rows) post({ type: 'bench-result', row: { bench: 'gpu-gemm', ...adapterFields(g.adapter), ...r } });
    }
    for (const preset of presets) {
      const g = await w.gpuBenchEpochs(preset, epochs, images);
      const secs = [...g.seconds].sort((a, b) => a - b);
      post({ type: 'bench-result', row: { bench: 'gpu-epoch', preset, ...adapterFields(g.adapter), images, seconds: secs[secs.length >> 1], min: secs[0], max: secs[secs.length - 1], data: 'synthetic' } });
    }
    post({ type: 'bench-done' });
    return;
  }
  if (kernels) {
    post({ type: 'bench-result', row: { bench: 'peak', kernel: mode.kernel, threads: 1, gflops: w.benchPeak() } });
    // In the threaded package, 1 thread too: the scaling within one build.
    for (const t of mode.threads > 1 ? [1, mode.threads] : [1]) {
      for (const r of w.benchGemm(t)) post({ type: 'bench-result', row: { bench: 'gemm', kernel: mode.kernel, threads: t, ...r } });
    }
  }
  for (const preset of presets) {
    const secs = Array.from(w.benchEpochs(preset, epochs)).sort((a, b) => a - b);
    post({ type: 'bench-result', row: { bench: 'epoch', preset, kernel: mode.kernel, threads: mode.threads, seconds: secs[secs.length >> 1], min: secs[0], max: secs[secs.length - 1], data: 'synthetic' } });
  }
  post({ type: 'bench-done' });
}

const handlers = {
  bench,
  init, 'load-data': loadData, restore, train, evaluate, predict, gallery,
  export: exportWeights, import: importWeights,
  describe: ({ config }) => post({ type: 'described', summary: state.wasm.describeConfig(JSON.stringify(config)) }),
  preset: ({ name }) => post({ type: 'preset', name, config: JSON.parse(state.wasm.presetConfig(name)) }),
  pause: () => { state.paused = true; post({ type: 'paused' }); },
  resume: () => { state.paused = false; state.resume?.(); state.resume = null; post({ type: 'resumed' }); },
  stop: () => { state.stopRequested = true; state.paused = false; state.resume?.(); state.resume = null; },
  forget: async () => { if (state.store) await del(state.storeKey, state.store); post({ type: 'forgotten' }); },
  backend: setBackend,
  'debug-crash': debugCrash,
  ...inspectHandlers(state, post),
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
