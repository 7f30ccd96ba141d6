// The page's state: one object that every panel reads when it renders and that the worker's
// messages (app.js), the user's actions (the panels) and the start-up sequence change, then
// `scheduleRender()`. Rendering is batched to one pass per frame; each panel keeps its own memo of
// what it last drew.

import { configFromForm } from './config.js';
import { WorkerClient } from '../client.js';

export const state = {
  phase: 'loading',             // <html data-state>: loading, ready, training, paused, done, error
  mode: null,                   // ready.mode, then each `mode` event: {line, backend, reason, threads, ...}
  threads: 1,                   // asked of `init`
  backend: 'auto',              // the backend asked for: auto, webgpu or wasm (address and form)
  threadsParam: null,           // a valid `threads` from the address, kept there
  autostart: false,
  autostartHeld: false,         // the address asked for autostart but held a value not understood
  presets: null,                // name -> the form of that preset (from the core, at start-up)
  urlHasConfig: false,          // the address named a preset or a field
  urlProblems: [],              // [{param, value, message, fallback}]
  form: null,                   // the form's values (config.js); null until the presets are in
  fieldErrors: {},              // form key -> message
  describe: { busy: false, again: false, summary: '', error: '' },
  data: { files: {}, ready: null }, // files: name -> {loaded, total, fromCache}; ready: data-ready
  restored: null,               // {found, epochs, discarded, interrupted}
  model: null,                  // the worker's model: {config, summary, source, history: EpochStats[], seedDrawn, name?}
  historyVersion: 0,            // bumped when model.history changes (charts and log redraw)
  run: null,                    // the training loop: {continueRun, stopping, batchesPerEpoch, trainSize, progress, window, flops}
  status: 'Starting the training worker…',
  errors: [],                   // {where, message}
  crashed: false,
  startFailed: false,           // the data (or the worker) could not load: offer to try again
  evaluation: { busy: false, again: false, result: null, version: 0 },
  gallery: { busy: false, again: false, draw: 0, mistakesOnly: false, result: null, version: 0, lastAt: 0, timer: 0 },
  picture: { busy: false, result: null, error: '', version: 0 },
  weights: { busy: false, message: '', link: null },
};

export const client = new WorkerClient(new URL('../worker.js', import.meta.url));

export const $ = (id) => document.getElementById(id);
export const metricEl = (name) => document.querySelector(`[data-metric="${name}"]`);

let renderAll = () => {};
let renderQueued = false;

/** Sets the function that draws the whole page from `state` (app.js). */
export function setRenderer(fn) {
  renderAll = fn;
}

/** Draws the page now. */
export function render() {
  renderAll();
}

export function scheduleRender() {
  // A new phase is shown at once (tests and assistive technology see every state); the rest is
  // batched into one render per frame.
  if (state.phase !== document.documentElement.dataset.state) { render(); return; }
  if (renderQueued) return;
  renderQueued = true;
  const run = () => { renderQueued = false; render(); };
  // Animation frames stop in a hidden tab; the hooks must stay current there too.
  if (document.hidden) setTimeout(run, 50); else requestAnimationFrame(run);
}

/** Least time between two renders for the progress within an epoch (the bar, the running loss,
 *  the speed). On two cores every frame the page draws is taken from the training threads: a
 *  progress bar redrawn 12 times a second (each ~80 ms slice) cost more than it shows: each frame
 *  of the page costs about 9 ms of the main thread (commit, paint, layout) and more of the
 *  compositor's, on those same two cores. */
export const PROGRESS_RENDER_MS = 1000;
/** Least time between refreshes, while training, of what the model shows besides its epochs: the
 *  gallery and the picture (48 predictions, 48 images drawn), the saliency map and the hard
 *  examples. Each takes the main thread and the worker from the training threads on a machine with
 *  few cores; once training pauses or ends they follow the model at once. */
export const REFRESH_MS = 10_000;

/** Whether the view `part` may follow the model now: at once unless training, else at most every
 *  REFRESH_MS after `part.askedAt`, which a `true` stamps. When it may not yet, one timer (kept in
 *  `part.timer`) renders again when it may. */
export function refreshDue(part) {
  const wait = state.phase === 'training' ? part.askedAt + REFRESH_MS - performance.now() : 0;
  if (wait <= 0) {
    part.askedAt = performance.now();
    return true;
  }
  if (!part.timer) part.timer = setTimeout(() => { part.timer = 0; scheduleRender(); }, wait);
  return false;
}
let progressAt = -Infinity;
let progressTimer = 0;

/** `scheduleRender` for what only moves the progress: at most every PROGRESS_RENDER_MS (any other
 *  render meanwhile draws it too). */
export function scheduleProgressRender() {
  if (progressTimer) return;
  const wait = progressAt + PROGRESS_RENDER_MS - performance.now();
  const run = () => { progressTimer = 0; progressAt = performance.now(); scheduleRender(); };
  if (wait <= 0) run(); else progressTimer = setTimeout(run, wait);
}

/** One request of a kind at a time (replies carry no id, and a second one would only repeat the
 *  work): `ask()` sends it and returns its promise, unless one is running; then `again()` runs
 *  once it has settled, with the state as it is by then. `part` holds the flags {busy, again}. */
export function oneAtATime(part, again, ask) {
  if (part.busy) { part.again = true; return; }
  part.busy = true;
  ask().finally(() => {
    part.busy = false;
    if (part.again) { part.again = false; again(); }
    scheduleRender();
  });
}

export function pushError(where, message) {
  state.errors.push({ where, message });
  if (state.errors.length > 6) state.errors.shift();
  scheduleRender();
}

export function dropErrors(where) {
  state.errors = state.errors.filter((e) => e.where !== where);
  scheduleRender();
}

export const formValid = () => Boolean(state.form) && Object.keys(state.fieldErrors).length === 0;
/** Whether the model has convolutions (the book's Net): its first layer is filters, not units
 *  over the pixels, so the views built on pixel-wise first-layer units say they do not apply. */
export const isConv = () => (state.model?.config?.model?.conv?.length ?? 0) > 0;

export const classes = () => state.data.ready?.classes ?? ['airplane', 'bird'];
export const currentConfig = () => configFromForm(state.form, classes().length);
/** Nothing running, the worker alive and the data in: a new run, an upload may start. */
export const idle = () => ['ready', 'done', 'error'].includes(state.phase) && !state.crashed && Boolean(state.data.ready);

/** Which model a result came from, e.g. "after epoch 3" or "with the weights from x.safetensors". */
export function modelLabel() {
  const m = state.model;
  if (!m) return '';
  const n = m.history.length;
  if (m.source === 'imported' && n === 0) return `with the weights from ${m.name}`;
  return `after epoch ${n}`;
}
