// The training worker's backends: wasm (the core's `Session`, on the CPU, threaded where the page
// allows it) and WebGPU (`GpuSession`, on the reader's GPU), the choice between them, and the move
// from WebGPU to wasm when the GPU fails. worker.js uses only this module's `Model`; the choice
// `auto | webgpu | wasm` comes from the page (URL parameter `backend`, the form) or the widget
// (attribute `backend`).
//
//   resolveBackend(wasm, choice)  -> {kind: 'webgpu' | 'wasm', why, adapter}   (one adapter probe, kept)
//   Model.create / Model.resume    -> a run on that backend; its methods are all async:
//     trainBatches(n), evaluate(split), predictRgba(rgba, w, h), predictTest(indices), saveState(),
//     exportWeights(), importWeights(bytes), extendEpochs(n), hardExamples(n), info() ({config, summary,
//     batchesPerEpoch, trainLength, epochsDone}), debugLoseDevice(), free(); and, synchronous,
//     inspection(): the wasm Session the other inspection views read (worker/inspect.js)
//
// `auto` takes WebGPU when the adapter is a real GPU, and wasm when there is no adapter or only a
// fallback (software) one; `webgpu` takes any adapter, software included (the tests' SwiftShader).
//
// A GpuSession takes one call at a time (a second call while one is pending is rejected), so the
// GPU engine queues its calls: a `predict` arriving while a `trainBatches` slice is on the GPU
// waits for it. A fault of the GPU itself (the device lost, out of GPU memory, a shader that does
// not compile, a buffer over the device's limits) rejects with an Error named `GpuError`
// (src/wasm/gpu.rs). The model then continues on wasm from the state saved after the last
// finished epoch: on WebGPU that state is taken at the end of every epoch (and when the run is
// created, resumed or given new weights) and kept here, because after a device loss nothing can
// be read back from the GPU. The call that failed is made again on wasm, so a training slice that
// fails goes on as a wasm slice of the same epoch, from its start. An epoch is reported only once
// its state is kept, so nothing that was shown is lost. After a fault this worker stays on wasm
// (a reload tries the GPU again).

/** `Error.name` of the GPU's own faults (src/wasm/gpu.rs). */
const GPU_ERROR = 'GpuError';

const isGpuFault = (e) => e?.name === GPU_ERROR;

let probed = null;

/** The adapter report of the core's probe (`gpuProbe`), asked once per worker. */
function probe(wasm) {
  probed ??= wasm.gpuProbe().catch((e) => ({ available: false, fallback: false, reason: String(e?.message ?? e) }));
  return probed;
}

/** Which backend a run takes for the choice `choice` ('auto', 'webgpu' or 'wasm'), and why:
 *  `{kind, why, adapter, asked}`. `why` says why wasm runs (null on WebGPU: the adapter says it);
 *  `asked` is set when WebGPU was asked for but cannot run. `fault`: the message of an earlier GPU
 *  fault in this worker, which keeps it on wasm. */
export async function resolveBackend(wasm, choice, fault = null) {
  if (choice === 'wasm') return { kind: 'wasm', why: 'chosen (backend=wasm)', adapter: null, asked: false };
  if (fault) return { kind: 'wasm', why: fault, adapter: null, asked: false };
  const adapter = await probe(wasm);
  if (!adapter.available) return { kind: 'wasm', why: adapter.reason, adapter, asked: choice === 'webgpu' };
  if (adapter.fallback && choice !== 'webgpu') return { kind: 'wasm', why: adapter.reason, adapter, asked: false };
  return { kind: 'webgpu', why: null, adapter, asked: false };
}

/** The line the page and the widget show as their mode: the backend and why, e.g.
 *  "WebGPU on nvidia ampere (NVIDIA GeForce RTX 3060)", "wasm, 2 threads + SIMD (relaxed-simd):
 *  no WebGPU adapter", "wasm, 1 thread (page not cross-origin isolated), simd128: the WebGPU
 *  adapter is software (fallback)". `pkg` is the loaded package ({threads, kernel, threadsWhy}). */
export function modeLine(pkg, backend) {
  if (backend.kind === 'webgpu') {
    const chosen = backend.adapter?.fallback ? ', chosen by backend=webgpu' : '';
    return `WebGPU on ${backend.adapter?.description ?? 'an unnamed adapter'}${chosen}`;
  }
  const cpu = pkg.threads > 1 ? `${pkg.threads} threads + SIMD (${pkg.kernel})` : `1 thread (${pkg.threadsWhy}), ${pkg.kernel}`;
  return `wasm, ${cpu}${backend.why ? `: ${backend.why}` : ''}`;
}

/** The core's `Session`: synchronous calls, wrapped as promises. */
class WasmEngine {
  kind = 'wasm';

  constructor(session) {
    this.s = session;
  }

  async trainBatches(n) { return this.s.trainBatches(n); }
  async evaluate(split) { return this.s.evaluate(split); }
  async predictRgba(rgba, width, height) { return this.s.predictRgba(rgba, width, height); }
  async predictTest(indices) { return this.s.predictTest(indices); }
  async saveState() { return this.s.saveState(); }
  async exportWeights() { return this.s.exportWeights(); }
  async importWeights(bytes) { this.s.importWeights(bytes); }
  async extendEpochs(n) { return this.s.extendEpochs(n); }
  async hardExamples(n) { return this.s.hardExamples(n); }
  async info() { return sessionInfo(this.s); }
  free() { this.s.free(); }
}

/** The sync getters of a Session or GpuSession. */
function sessionInfo(s) {
  return {
    config: JSON.parse(s.config()),
    summary: s.parameterSummary(),
    batchesPerEpoch: s.batchesPerEpoch(),
    trainLength: s.trainLength(),
    epochsDone: s.epochsDone(),
  };
}

/** A `GpuSession`, one call at a time: each call waits for the previous one to settle. */
class GpuEngine {
  kind = 'webgpu';
  #queue = Promise.resolve();
  #closed = false;

  constructor(session) {
    this.s = session;
  }

  /** Runs `fn(session)` after the calls queued before it. */
  #call(fn) {
    if (this.#closed) return Promise.reject(Object.assign(new Error('the GPU session was closed'), { name: GPU_ERROR }));
    const run = this.#queue.then(() => fn(this.s));
    this.#queue = run.catch(() => {});
    return run;
  }

  trainBatches(n) { return this.#call((s) => s.trainBatches(n)); }
  evaluate(split) { return this.#call((s) => s.evaluate(split)); }
  predictRgba(rgba, width, height) { return this.#call((s) => s.predictRgba(rgba, width, height)); }
  predictTest(indices) { return this.#call((s) => s.predictTest(indices)); }
  saveState() { return this.#call((s) => s.saveState()); }
  exportWeights() { return this.#call((s) => s.exportWeights()); }
  importWeights(bytes) { return this.#call((s) => s.importWeights(bytes)); }
  extendEpochs(n) { return this.#call((s) => s.extendEpochs(n)); }
  hardExamples(n) { return this.#call((s) => s.hardExamples(n)); }
  info() { return this.#call((s) => sessionInfo(s)); }
  debugLoseDevice() { this.s.debugLoseDevice(); }

  /** Frees the GPU memory once the calls already queued have settled (after a device loss they
   *  fail at once, as GpuError, and move to wasm); later calls are refused. */
  free() {
    if (this.#closed) return;
    this.#closed = true;
    this.#queue.then(() => this.s.free());
  }
}

/**
 * A training run on one backend, which moves to wasm if the GPU fails. `ctx`: {wasm (the
 * package), data (wasm Data), onFallback(message, epochsDone)}: called once when the run has
 * moved to wasm after a GPU fault, with the fault's message and the epochs the run keeps.
 */
export class Model {
  #ctx;
  /** WasmEngine or GpuEngine. */
  engine = null;
  /** On WebGPU: the run's state after its last finished epoch (or as created, resumed or
   *  imported), the point a move to wasm continues from; null: a new run, recreated from
   *  `configJson` (same seed, same initial weights). */
  #kept = null;
  /** `#kept` is the run's current state (no training since): saveState need not ask the GPU. */
  #keptIsCurrent = false;
  #configJson;
  /** On WebGPU: a wasm Session on the CPU that follows the kept state, for the inspection views
   *  (`inspection()`), and the kept state it last took. */
  #mirror = null;
  #mirrorOf = undefined;

  constructor(ctx, configJson) {
    this.#ctx = ctx;
    this.#configJson = configJson;
  }

  get kind() {
    return this.engine.kind;
  }

  /** A new run of `config` on `kind`. If the GPU cannot take it (out of GPU memory, a shader that
   *  does not compile, no device), the run starts on wasm and `onFallback` says why. */
  static async create(ctx, config, kind) {
    const json = JSON.stringify(config);
    const model = new Model(ctx, json);
    if (kind === 'webgpu') {
      try {
        model.engine = new GpuEngine(await ctx.wasm.GpuSession.create(json, ctx.data));
        model.#keptIsCurrent = true; // #kept null: the new run itself
        return model;
      } catch (e) {
        if (!isGpuFault(e)) throw e;
        model.#fallBack(null, e.message);
        return model;
      }
    }
    model.engine = new WasmEngine(new ctx.wasm.Session(json, ctx.data));
    return model;
  }

  /** The run saved by `saveState` (of either backend), continued on `kind`. */
  static async resume(ctx, state, kind) {
    const model = new Model(ctx, null);
    if (kind === 'webgpu') {
      model.#kept = state.slice();
      try {
        model.engine = new GpuEngine(await ctx.wasm.GpuSession.resume(state, ctx.data));
        model.#keptIsCurrent = true;
        return model;
      } catch (e) {
        if (!isGpuFault(e)) throw e;
        model.#fallBack(null, e.message);
        return model;
      }
    }
    model.engine = new WasmEngine(ctx.wasm.Session.resume(state, ctx.data));
    return model;
  }

  /** Runs `fn(engine)`; after a GPU fault, moves the run to wasm and runs it again there. */
  async #guard(fn) {
    const engine = this.engine;
    if (!engine) throw new Error('this model was replaced by another one meanwhile');
    try {
      return await fn(engine);
    } catch (e) {
      if (engine.kind !== 'webgpu' || !isGpuFault(e)) throw e;
      // Another call may have moved the run already (calls queued behind the failing one).
      if (this.engine === engine) this.#fallBack(engine, e.message);
      return fn(this.engine);
    }
  }

  /** Continues on wasm from the kept state (synchronous: no call can slip in between). */
  #fallBack(failed, message) {
    failed?.free();
    const session = this.#cpuSession();
    this.engine = new WasmEngine(session);
    this.#kept = null;
    this.#dropMirror();
    this.#ctx.onFallback?.(message, session.epochsDone());
  }

  /** A wasm Session of the kept state, or of the new run (same seed, same initial weights). */
  #cpuSession() {
    const { wasm, data } = this.#ctx;
    return this.#kept ? wasm.Session.resume(this.#kept, data) : new wasm.Session(this.#configJson, data);
  }

  /** Trains up to `n` batches: `{progress, epoch: EpochStats | null}`. On WebGPU an epoch is
   *  reported once its state is kept (see the header). */
  trainBatches(n) {
    return this.#guard(async (engine) => {
      if (engine.kind === 'wasm') return engine.trainBatches(n);
      this.#keptIsCurrent = false;
      const step = await engine.trainBatches(n);
      if (step.epoch) this.#keep(await engine.saveState());
      return step;
    });
  }

  #keep(state) {
    this.#kept = state;
    this.#keptIsCurrent = true;
  }

  evaluate(split) { return this.#guard((e) => e.evaluate(split)); }
  predictRgba(rgba, width, height) { return this.#guard((e) => e.predictRgba(rgba, width, height)); }
  predictTest(indices) { return this.#guard((e) => e.predictTest(indices)); }
  exportWeights() { return this.#guard((e) => e.exportWeights()); }
  info() { return this.#guard((e) => e.info()); }

  /** The run between epochs (either backend resumes it). On WebGPU, the kept state when it is
   *  current: no GPU call. */
  saveState() {
    return this.#guard(async (e) => {
      if (e.kind === 'webgpu' && this.#keptIsCurrent && this.#kept) return this.#kept;
      return e.saveState();
    });
  }

  importWeights(bytes) {
    return this.#guard(async (e) => {
      await e.importWeights(bytes);
      if (e.kind === 'webgpu') this.#keep(await e.saveState());
    });
  }

  /** "Train more": the budget grows by `n` epochs. On WebGPU the kept state takes the new
   *  budget too, so that a save (or a move to wasm) keeps it. */
  extendEpochs(n) {
    return this.#guard(async (e) => {
      const epochs = await e.extendEpochs(n);
      if (e.kind === 'webgpu' && this.#keptIsCurrent) this.#keep(await e.saveState());
      return epochs;
    });
  }

  /** The run's hard examples (both backends record every image's loss as they train). */
  hardExamples(n) { return this.#guard((e) => e.hardExamples(n)); }

  /** The wasm Session that the other inspection views (unit tiles, top activations, saliency,
   *  neighbours, the band) read: on wasm the run itself; on WebGPU a copy on the CPU of the
   *  state kept after the last finished epoch, brought up to date here (the GPU is not asked:
   *  nothing waits for it), whose unit tiles gain one snapshot per epoch it sees. */
  inspection() {
    const engine = this.engine;
    if (!engine) throw new Error('this model was replaced by another one meanwhile');
    if (engine.kind === 'wasm') return engine.s;
    if (!this.#mirror) {
      this.#mirror = this.#cpuSession();
    } else if (this.#kept && this.#kept !== this.#mirrorOf) {
      this.#mirror.adoptState(this.#kept);
    }
    this.#mirrorOf = this.#kept;
    return this.#mirror;
  }

  /** Test hook: destroys the GPU device, as a driver reset would (the next call moves the run to
   *  wasm). */
  debugLoseDevice() {
    if (this.engine.kind !== 'webgpu') throw new Error('the run is not on WebGPU: there is no GPU device to lose');
    this.engine.debugLoseDevice();
  }

  free() {
    this.engine?.free();
    this.engine = null;
    this.#dropMirror();
  }

  #dropMirror() {
    this.#mirror?.free();
    this.#mirror = null;
    this.#mirrorOf = undefined;
  }
}
