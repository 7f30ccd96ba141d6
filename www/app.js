// The training page: its start-up sequence, the table of the worker's messages, and the render
// pass over the panels. Loaded by boot.js, which shows any failure to load it.
//
//   app.js ── page/state.js          the state, the worker client, scheduleRender
//          ├─ page/status.js         header (mode), error box, data progress, address notice
//          ├─ page/training.js       form, controls, status, progress, epoch log
//          ├─ page/charts.js         loss and accuracy charts (uPlot), the PyTorch band behind them
//          ├─ page/band.js           where the run stands in the PyTorch band
//          ├─ page/units.js          hidden units as pictures, a unit's votes and top images
//          ├─ page/confusion.js      confusion matrices (evaluate)
//          ├─ page/gallery.js        test images with the model's guesses
//          ├─ page/picture.js        "bird or airplane?" (shared/prediction.js)
//          ├─ page/why.js            "why this answer?": saliency and nearest training images
//          ├─ page/hard.js           hard examples
//          └─ page/weights.js        download, upload, forget
//   page/config.js: the form's values (pure); shared/: what the widget uses too.
//
// Automation hooks (end-to-end tests rely on them): `<html data-state>` is one of loading, ready,
// training, paused, done, error; `[data-metric=...]` elements hold plain-text values;
// `[data-view=...]` elements the views of what the model learned (hidden-units, saliency,
// neighbours, hard-examples; see their modules); URL
// parameters preset, epochs, seed (a number, or `random`: a seed drawn when the run starts, then
// written back), train_size, lr, batch_size, layers, activation, loss, optimizer, momentum,
// threads, backend (auto, webgpu, wasm), autostart=1. `[data-metric="backend"]` holds the
// backend that trains (webgpu or wasm). A `skywatch:debug-crash` event dispatched at the document
// makes the training worker crash (`debug-crash` in client.js), to test the recovery; a
// `skywatch:debug-lose-gpu` event destroys the GPU device of a WebGPU run (`debug-lose-gpu`), to
// test the move to wasm.

import {
  $, client, dropErrors, pushError, render, scheduleRender, setRenderer, state,
} from './page/state.js';
import { formFromParams, presetForms, runFromParams } from './page/config.js';
import { startWorker, StartError } from './shared/startup.js';
import { renderData, renderErrors, renderHeader } from './page/status.js';
import {
  onDone, onEpoch, onPaused, onProgress, onResumed, onStarted, onStopped, onTrainError, renderForm, renderTraining,
  requestDescribe, showConfig, startTraining, wireTraining, writeFormInputs,
} from './page/training.js';
import { renderCharts } from './page/charts.js';
import { clearEvaluation, renderEvaluation, requestEvaluation, wireEvaluation } from './page/confusion.js';
import { refreshGallery, renderGallery, wireGallery } from './page/gallery.js';
import { renderPicture, wirePicture } from './page/picture.js';
import { renderWeights, wireWeights } from './page/weights.js';
import { renderBand } from './page/band.js';
import { renderUnits, wireUnits } from './page/units.js';
import { renderWhy, wireWhy } from './page/why.js';
import { renderTranslation, requestTranslation, wireTranslation } from './page/translation.js';
import { renderHard, wireHard } from './page/hard.js';

// The worker's messages that are not replies to a request (those are handled where the request
// is sent: `client.request`, see client.js). Each goes to the panel that owns it.
const ON = {
  'data-progress': (d) => {
    state.data.files[d.file] = { loaded: d.loaded, total: d.total, fromCache: d.fromCache };
    scheduleRender();
  },
  started: onStarted,
  progress: onProgress,
  epoch: onEpoch,
  paused: onPaused,
  resumed: onResumed,
  done: onDone,
  stopped: onStopped,
  mode: onMode,
  error: onWorkerError,
  crash: onCrash,
};

// Requests whose errors reach their sender (client.request): not reported twice.
const REQUESTED = new Set(['init', 'load-data', 'preset', 'restore', 'describe', 'evaluate', 'gallery', 'predict', 'export', 'import', 'forget', 'backend',
  'units', 'unit', 'why', 'neighbours', 'hard', 'band', 'shift']);

function onWorkerError(d) {
  if (REQUESTED.has(d.where)) return;
  if (d.where === 'train') onTrainError(d.message);
  else pushError(d.where, d.message);
}

/** The backend changed: asked for (the form), or a GPU fault moved the run to wasm. */
function onMode(d) {
  state.mode = d.mode;
  if (d.fault) {
    const n = d.fault.epochs;
    const from = n ? `the model of epoch ${n}, the last finished one` : 'the start of the run';
    const what = state.run ? 'Training continues' : 'The model continues';
    pushError('gpu', `The GPU stopped working (${d.fault.message}). ${what} on WebAssembly from ${from}; nothing finished is lost.`);
  }
  scheduleRender();
}

function onCrash(d) {
  // A worker that never ran: the start-up sequence reports it (`init` fails with the reason).
  if (d.starting) return;
  state.crashed = true;
  state.phase = 'error';
  state.run = null;
  state.status = 'The training worker stopped.';
  const why = /stopped unexpectedly/.test(d.message) ? '' : ` (${d.message})`;
  pushError('crash', `The training worker stopped unexpectedly${why}. Restart it to go on; the model saved after the last epoch is restored.`);
}

// ---------------------------------------------------------------------------------------------
// Start-up: init (+ the core's presets) and load-data at once, then restore (again after a crash
// or a failed start, with Restart / Try again)

const params = new URLSearchParams(location.search);
const run = runFromParams(params, navigator.hardwareConcurrency || 1);
Object.assign(state, { threads: run.threads, threadsParam: run.threadsParam, backend: run.backend, autostart: run.autostart, urlProblems: run.problems });

/** The preset names the page offers: its select's options (the core knows their recipes). */
const presetNames = () => [...$('f-preset').options].map((o) => o.value).filter((v) => v !== 'custom');

/** The core's presets are in: the form, from the address the first time. */
function onPresets(configs) {
  if (state.presets) return; // a restart: the form stays as the user left it
  state.presets = presetForms(configs);
  const initial = formFromParams(params, state.presets);
  state.form = initial.form;
  state.urlHasConfig = initial.hasConfig;
  state.urlProblems = [...state.urlProblems, ...initial.problems];
  writeFormInputs();
}

async function boot() {
  state.phase = 'loading';
  state.status = 'Starting the training worker…';
  scheduleRender();
  let started;
  try {
    started = await startWorker(client, {
      init: { threads: state.threads, store: 'skywatch', backend: state.backend },
      dataUrl: 'data/',
      presets: presetNames(),
      // With autostart a new run begins at once; restoring the saved model first would only delay it.
      restore: !state.autostart,
      onReady(ready, configs) {
        state.mode = ready.mode;
        // WebGPU asked for by name but not there: said plainly (training runs on wasm).
        if (ready.mode.notice) pushError('backend', ready.mode.notice);
        onPresets(configs);
        state.status = 'Loading the training data…';
        requestDescribe();
        scheduleRender();
      },
      onSilent(seconds) {
        dropErrors('watchdog');
        if (seconds != null) {
          pushError('watchdog', `The training worker has not answered for ${seconds} s (${state.mode ? 'loading the data' : 'starting'}); `
            + 'it may still be busy on a slow connection. Try again to start it afresh.');
        }
      },
    });
  } catch (e) {
    state.phase = 'error';
    state.status = 'The page could not start.';
    // A failed download or a corrupt bundle (its cached copy is dropped) can be tried again.
    state.startFailed = true;
    // A worker that crashed after it had started has said so (onCrash); one that never started
    // is reported here, with the reason (a missing file, a module that threw).
    if (!state.crashed) pushError(e instanceof StartError ? e.step : 'init', e.message);
    scheduleRender();
    return;
  }
  state.data.ready = started.data;
  requestDescribe();
  if (started.restored) onRestored(started.restored);
  if (started.restoreError && !state.crashed) pushError('restore', `The saved model could not be restored: ${started.restoreError.message}`);
  if (state.crashed) return;
  state.phase = 'ready';
  if (!state.model) state.status = 'Ready: press Start to train.';
  scheduleRender();
  if (state.restored?.interrupted) {
    setTimeout(() => startTraining(true), 0);
    return;
  }
  if (state.autostart) {
    state.autostart = false;
    // Honoured once: a reload then restores the model instead of starting over.
    const now = new URLSearchParams(location.search);
    now.delete('autostart');
    history.replaceState(history.state, '', `${location.pathname}${now.size ? `?${now}` : ''}${location.hash}`);
    // A link with a value the page did not understand waits for Start: the reader sees which
    // values were replaced before a run other than the one meant begins.
    if (state.urlProblems.length > 0) {
      state.autostartHeld = true;
      scheduleRender();
      return;
    }
    // In a later task, so that `ready` is observable before `training`.
    setTimeout(() => startTraining(false), 0);
  }
}

function onRestored(r) {
  state.restored = { found: r.found, epochs: r.history?.length ?? 0, discarded: r.discarded ?? '', interrupted: Boolean(r.interrupted) };
  if (!r.found) return;
  state.model = { config: r.config, summary: r.summary, source: 'restored', history: r.history ?? [], seedDrawn: Boolean(r.seedDrawn) };
  state.historyVersion++;
  // Nothing asked for in the address: show the restored model's settings.
  if (!state.urlHasConfig) showConfig(r.config);
  const n = state.model.history.length;
  if (r.interrupted) {
    // The tab was closed or reloaded mid-run: carry on from the last finished epoch, with the
    // optimizer and shuffling state of then, so the run ends as if nothing had happened.
    state.status = `Resuming the run interrupted after epoch ${n} of ${r.config.epochs}.`;
    return;
  }
  state.status = `Restored the model saved after ${n} epoch${n === 1 ? '' : 's'}. Start trains a new one.`;
  requestEvaluation();
  requestTranslation();
  refreshGallery();
}

async function restart() {
  state.errors = [];
  state.crashed = false;
  state.startFailed = false;
  state.data = { files: {}, ready: null };
  state.run = null;
  state.model = null;
  state.restored = null;
  state.mode = null;
  state.historyVersion++;
  for (const part of [state.evaluation, state.gallery, state.picture]) { part.busy = false; part.again = false; }
  clearEvaluation();
  state.gallery.result = null;
  state.gallery.version++;
  client.restart();
  await boot();
}

// ---------------------------------------------------------------------------------------------

function renderAll() {
  const root = document.documentElement;
  if (root.dataset.state !== state.phase) root.dataset.state = state.phase;
  renderHeader();
  renderErrors();
  renderData();
  renderForm();
  renderTraining();
  renderBand();
  renderCharts();
  renderUnits();
  renderEvaluation();
  renderGallery();
  renderPicture();
  renderWhy();
  renderTranslation();
  renderHard();
  renderWeights();
}

/** An uncaught error or rejection after the start (boot.js forwards it): shown, never silent. */
export function reportUncaught(message) {
  pushError('page', `Something went wrong on this page: ${message}`);
}

for (const [type, handler] of Object.entries(ON)) client.on(type, handler);
wireTraining();
wireEvaluation();
wireGallery();
wirePicture();
wireWeights();
wireUnits();
wireWhy();
wireTranslation();
wireHard();
$('restart').addEventListener('click', restart);
$('dismiss-errors').addEventListener('click', () => { state.errors = []; scheduleRender(); });
document.addEventListener('visibilitychange', scheduleRender);
// The back-forward cache. A page left for another one (not a reload) may be kept frozen, its
// worker with it, in the middle of an IndexedDB write; Firefox then holds that write's
// transaction open and the next page's writes wait on it for good (its run never reaches "done").
// So the worker ends with the page: the run saved after its last finished epoch stays in
// IndexedDB, and a page brought back from the cache reloads, which restores (and resumes) it.
// https://developer.mozilla.org/docs/Web/API/Window/pagehide_event
addEventListener('pagehide', (e) => { if (e.persisted) client.worker.terminate(); });
addEventListener('pageshow', (e) => { if (e.persisted) location.reload(); });
// Test hook (see the header): crash the worker as a real crash would.
document.addEventListener('skywatch:debug-crash', () => client.send({ type: 'debug-crash' }));
document.addEventListener('skywatch:debug-lose-gpu', () => client.send({ type: 'debug-lose-gpu' }));
setRenderer(renderAll);
render();
boot();
