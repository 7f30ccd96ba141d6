// The worker protocol, in one place, and its page-side client (the training page, the blog widget
// and the benchmark page all talk to www/worker.js through WorkerClient).
//
// Every message is `{type, ...}`. Requests (page -> worker) are routed by worker.js's
// `handlers[type]` to one function each, there or in worker/ (load-data: data.js; train:
// training.js; restore, forget: saving.js; bench: bench.js; the views: inspect.js). Replies and events (worker -> page) are handled on the page
// by the `ON` table of app.js (events) or where the request is sent (`client.request`, replies),
// and in the widget by widget/trainer.js.
//
//   request       fields                          replies, in order               sent by
//   init          {threads?, store?, persist?,    alive* (every second while it   shared/startup.js,
//                  noRelaxedSimd?, bench?,          runs: the worker's pulse),    bench.js
//                  backend?}                      ready {mode: {threads, kernel,
//                 persist: false keeps the model    isolated, reason, backend,
//                 in memory only, not IndexedDB;    line, adapter, notice}}
//                 bench: the packages' benchmark    (reason: the wasm package;
//                 build, pkg*-bench/ (bench.js);    backend: webgpu | wasm, what
//                 backend: auto (default), webgpu,  trains; line: the mode line;
//                 wasm (worker/backend.js)          notice: why WebGPU, asked
//                                                    for, cannot run)
//   backend       {backend}                       mode {mode}                     page/training.js
//                 the form's backend field: new
//                 runs, restored and loaded models
//                 take it (a continued run moves
//                 to it between epochs)
//   load-data     {url}                           data-progress {file, loaded,    shared/startup.js
//                                                   total, fromCache, retry?}*,
//                                                 data-ready {classes, train,
//                                                   test, fromCache}
//   preset        {name}                          preset {name, config}           shared/startup.js,
//                 (config: TrainConfig, from the                                  widget/trainer.js
//                 core's presetConfig)
//   restore       {}                              restored {found, config?,       shared/startup.js
//                                                   history?, summary?,
//                                                   interrupted?, seedDrawn?,
//                                                   discarded?}
//   train         {config, continueRun?,          started {config, summary,       page/training.js,
//                  drawSeed?, more?}                batchesPerEpoch, trainSize,     widget/trainer.js
//                 drawSeed: the worker replaces     epochsDone, seedDrawn, backend},
//                 config.seed by one drawn from   progress {progress, batches,
//                 the browser's entropy source      seconds}*, epoch {stats}*,
//                 (wasm randomSeed); more: with   done | stopped {epochs}
//                 continueRun, "train more": the
//                 budget becomes at least epochs
//                 done + more (wasm extendEpochs)
//   pause/resume  {}                              paused / resumed                page/training.js
//   stop          {}                              (the running train's stopped)   page/training.js
//   describe      {config}                        described {summary}             page/training.js
//   evaluate      {}                              evaluation {train, test}        page/confusion.js
//                                                   (EvalStats: accuracy, loss,
//                                                   confusion)
//   gallery       {indices}                       gallery {items: [{index, label, page/gallery.js
//                                                   probabilities}], images:
//                                                   Uint8Array, classes}
//   predict       {rgba: ArrayBuffer (moved),     prediction {probabilities,      shared/prediction.js
//                  width, height}                   image: 32x32 RGBA, classes}
//   export        {}                              weights {bytes (safetensors),   page/weights.js
//                                                   config}
//   import        {bytes: ArrayBuffer (moved),    imported {config, summary}      page/weights.js
//                  config}                          (a new run from the file's
//                                                   weights, budget 0 epochs)
//   units         {epoch?}: the latest kept       units {epoch, epochs (kept),    page/units.js,
//                 snapshot, or the kept one         units, classes, tiles: RGBA    widget/trainer.js
//                 nearest to epoch                  units*4096, scale, votes
//                                                   [classes x units], votesExact,
//                                                   order, change: W - W0 as RGBA
//                                                   tiles or null, changeScale,
//                                                   changeRelative}
//                                                   (worker/inspect.js)
//   unit          {unit}                          unit {unit, epoch, top,         page/units.js
//                 (the scan of the training set:    topValues, topLabels, bottom,
//                 seconds, once per model; never    bottomValues, bottomLabels,
//                 while training runs)              images: 16*4096 RGBA} or
//                                                   {unit, deferred: 'training'}
//   why           {rgba: ArrayBuffer (moved),     why {class, probabilities,      page/why.js
//                  width, height} or {split,        logProbability, magnitude:
//                  index}; class? (default: the     Float32Array(1024),
//                  predicted one)                   magnitudeMax, image, label,
//                                                   epoch, classes}
//   neighbours    as why, k? (default 8)          neighbours {indices, labels,    page/why.js
//                 (the scan, as unit)               distances, images, epoch} or
//                                                   {deferred: 'training'}
//   shift         as why, dx, dy (-8..8); class?  shift {dx, dy, image, probabi-  page/shift.js
//                 (worker/translation.js)           lities, class, magnitude,
//                                                   kind: hidden|conv, original,
//                                                   shifted, side, second,
//                                                   secondShifted, secondSide,
//                                                   similarity, classes, epoch}
//   translation   {} (also run by itself when a   translation-progress {progress, page/translation.js
//                 run ends, in slices between       epoch}*, translation {shifts,
//                 which other requests are          accuracies, similarities,
//                 answered)                         seconds, slices, longest-
//                                                   SliceMs, epoch, conv, augment}
//   hard          {n?}                            hard {epochs, images,           page/hard.js
//                                                   forgettable, mostWrong,
//                                                   forgotten, ambiguous: [{index,
//                                                   label, loss, probability,
//                                                   correct, forgetting_events,
//                                                   first_learned, history,
//                                                   thumb}], thumbs, classes}
//   band          {}                              band {preset | null, reason,    page/band.js
//                                                   series?, provenance?,
//                                                   positions, lossPositions
//                                                   (BandPosition per epoch)}
//   forget        {}                              forgotten                       page/weights.js
//   bench         {presets, epochs, kernels?,     bench-result {row}*,            bench.js
//                  gpu?, images?}                   bench-done
//                 kernels: false skips the peak
//                 and GEMM rows; gpu: the WebGPU
//                 rows (GEMM, epochs of `images`)
//   debug-crash   {}                              none: the worker dies as a real app.js (test hook)
//                                                 crash does (an uncaught error)
//   debug-lose-gpu {}                             none; the run's next GPU call   app.js (test hook)
//                 destroys the GPU device of a      fails and the run moves to
//                 WebGPU run                        wasm: mode {fault}
//
// Events the worker sends by itself: `mode {mode, fault: {message, epochs}}` when a GPU fault (the
// device lost, out of GPU memory, a shader that does not compile) moved the run to wasm, from the
// state after its last finished epoch (`epochs` of them); handled by app.js and widget/trainer.js.
// Any request can instead get `error {where: <request type>, message}`; `where` is also 'save' (an
// IndexedDB write after an epoch) or 'protocol' (an unknown message type). Besides the worker's
// messages, WorkerClient emits `crash {message, starting}` when the worker dies (an uncaught error,
// out of memory) or cannot start at all (a missing or failing script: `starting` is then true).
// Types of config and stats: the TypeScript declarations in pkg/skywatch.d.ts.
//
// Replies carry no id: `request` sends requests of one type one after the other (a second
// `predict` waits for the first one's reply), so that a reply always answers the request it
// resolves.

import { missingModule } from './shared/probe.js';

/** Blob URLs standing in for worker scripts on other origins, one per script. */
const sameOriginUrls = new Map();

/** `url`, or a same-origin blob module that imports it when it is on another origin (a blog
 *  loading the widget from a CDN): a Worker must be same-origin with its creator.
 *  https://html.spec.whatwg.org/multipage/workers.html#dom-worker */
export function sameOriginWorkerUrl(url) {
  const target = new URL(url, location.href);
  if (target.origin === location.origin) return target;
  if (!sameOriginUrls.has(target.href)) {
    const source = `import ${JSON.stringify(target.href)};`;
    sameOriginUrls.set(target.href, URL.createObjectURL(new Blob([source], { type: 'text/javascript' })));
  }
  return sameOriginUrls.get(target.href);
}

export class WorkerClient extends EventTarget {
  /** @param {URL | string} workerUrl URL of worker.js (any origin)
   *  @param {() => Worker} [create] starts the worker (the widget's literal
   *  `new Worker(new URL('./worker.js', import.meta.url), ...)`, which bundlers follow); by default
   *  a module worker from `workerUrl`, through a same-origin blob when it is on another origin */
  constructor(workerUrl, create) {
    super();
    this.scriptUrl = new URL(workerUrl, location.href).href;
    this.#create = create ?? (() => new Worker(sameOriginWorkerUrl(this.scriptUrl), { type: 'module' }));
    this.#start();
  }

  #create;

  /** Set by a crash: the worker is gone (or in an unknown state) until `restart`. */
  dead = null;
  /** performance.now() of the worker's latest message other than its pulse (`alive`), or of its
   *  start: the start-up's silence watchdog (a start that makes no progress, such as a download
   *  that hangs, is reported even though the worker is alive). */
  heardAt = 0;
  /** performance.now() of the worker's latest message of any kind, its pulse included: a worker
   *  whose thread is stuck stops sending even that (shared/startup.js starts a fresh one). */
  pulseAt = 0;
  /** Per request type, the latest request's settling (see the header: one at a time). */
  #lanes = new Map();
  #heard = false;

  #start() {
    this.dead = null;
    this.#heard = false;
    this.#lanes.clear();
    this.heardAt = performance.now();
    this.pulseAt = this.heardAt;
    const worker = this.#create();
    this.worker = worker;
    worker.onmessage = ({ data }) => {
      this.#heard = true;
      this.pulseAt = performance.now();
      if (data.type !== 'alive') this.heardAt = this.pulseAt;
      this.dispatchEvent(new CustomEvent(data.type, { detail: data }));
    };
    // A crash (an uncaught error, out of memory while loading) ends up here, not as a message;
    // so does a worker that never started: its script or a module it imports is missing (a plain
    // Event, no message) or throws while loading (an ErrorEvent with the message).
    worker.onerror = async (e) => {
      e.preventDefault?.();
      if (worker !== this.worker || this.dead) return; // a terminated worker's last words
      const starting = !this.#heard;
      this.dead = { message: e.message || 'the training worker stopped unexpectedly', starting };
      if (starting) {
        const why = e.message || (await missingModule(this.scriptUrl)) || 'its script or a module it imports did not load';
        this.dead.message = `the training worker could not start: ${why}`;
      }
      if (worker !== this.worker) return; // restarted while probing
      this.dispatchEvent(new CustomEvent('crash', { detail: this.dead }));
    };
  }

  /** Ends the worker and starts a fresh one (after a crash). */
  restart() {
    this.worker.terminate();
    this.#start();
  }

  send(msg, transfer = []) {
    this.worker.postMessage(msg, transfer);
  }

  /** Calls `fn(detail)` for every message of `type`; returns a function that unsubscribes. */
  on(type, fn) {
    const h = (e) => fn(e.detail);
    this.addEventListener(type, h);
    return () => this.removeEventListener(type, h);
  }

  /** Sends `msg` once the previous request of its type has settled, and resolves with the first
   *  `replyType` message, or rejects with its error. After a crash it rejects at once: a dead
   *  worker would never answer. */
  request(msg, replyType, transfer = []) {
    const worker = this.worker;
    const prev = this.#lanes.get(msg.type) ?? Promise.resolve();
    const run = prev.then(() => new Promise((resolve, reject) => {
      if (this.dead || worker !== this.worker) {
        const why = this.dead?.message ?? 'it was restarted';
        reject(new Error(this.dead?.starting ? why : `the training worker has stopped (${why}); restart it first`));
        return;
      }
      const offs = [];
      const done = () => offs.forEach((off) => off());
      offs.push(this.on(replyType, (d) => { done(); resolve(d); }));
      offs.push(this.on('error', (d) => { if (d.where === msg.type) { done(); reject(new Error(d.message)); } }));
      offs.push(this.on('crash', (d) => { done(); reject(new Error(d.message)); }));
      this.send(msg, transfer);
    }));
    this.#lanes.set(msg.type, run.catch(() => {}));
    return run;
  }
}
