// The training page: talks to the training worker through WorkerClient, keeps everything the page
// shows in one `state` object, and renders from it (batched to one render per frame).
//
// Automation hooks (end-to-end tests rely on them): `<html data-state>` is one of loading, ready,
// training, paused, done, error; `[data-metric=...]` elements hold plain-text values; URL
// parameters preset, epochs, seed, train_size, lr, batch_size, layers, activation, loss,
// optimizer, momentum, threads, autostart=1. A `skywatch:debug-crash` event dispatched at the
// document makes the training worker crash (`debug-crash` in client.js), to test the recovery.

import { WorkerClient, decodeImage, megabytes as mb, trainFlopsPerSample } from './client.js';
import { Charts } from './charts.js';
import { argmax, imageCanvas, sampleIndices } from './gallery.js';
import {
  DEFAULT_FORM, FIELDS, MAX_WEIGHTS_BYTES, applyPreset, configFromForm, describeRecipe, format, formFromConfig,
  formFromParams, matchPreset, paramsFromForm,
} from './config.js';

const GALLERY_SIZE = 48;
const GALLERY_MISTAKE_POOL = 400;
const GALLERY_MAX_MISTAKES = 96;
const REFRESH_MS = 3000;        // least time between gallery/picture refreshes while training
const SPEED_WINDOW_S = 2;       // moving window for samples/s
const RECIPE = new Set(['hidden', 'activation', 'loss', 'optimizer', 'lr', 'momentum', 'batchSize']);
// Replies these requests get are handled where they are sent (WorkerClient.request).
const REQUESTED = new Set(['init', 'load-data', 'restore', 'describe', 'evaluate', 'gallery', 'predict', 'export', 'import', 'forget']);

const $ = (id) => document.getElementById(id);
const initial = formFromParams(new URLSearchParams(location.search), navigator.hardwareConcurrency || 1);

const state = {
  phase: 'loading',             // <html data-state>
  mode: null,                   // ready.mode
  threads: initial.threads,
  threadsParam: initial.threadsParam,   // a valid `threads` from the address, kept there
  autostart: initial.autostart,
  urlHasConfig: initial.hasConfig,
  urlProblems: initial.problems,
  form: initial.form,
  fieldErrors: {},              // form key -> message
  describe: { busy: false, again: false, summary: '', error: '' },
  data: { files: {}, ready: null }, // files: name -> {loaded, total, fromCache}; ready: data-ready
  restored: null,               // {found, epochs, discarded}
  model: null,                  // the worker's model: {config, summary, source, history: EpochStats[], name?}
  run: null,                    // the training loop: {continueRun, stopping, batchesPerEpoch, trainSize, progress, window, flops}
  status: 'Starting the training worker…',
  errors: [],                   // {where, message}
  crashed: false,
  startFailed: false,           // the data (or the worker) could not load: offer to try again
  evaluation: { busy: false, again: false, result: null, version: 0 },
  gallery: { busy: false, again: false, draw: 0, mistakesOnly: false, result: null, version: 0, lastAt: 0, timer: 0 },
  picture: { busy: false, result: null, error: '', version: 0, queue: Promise.resolve() },
  weights: { busy: false, message: '', link: null },
  historyVersion: 0,
  rendered: { history: -1, log: null, logCount: 0, gallery: -1, evaluation: -1, picture: -1, errors: -1, problems: false },
  renderQueued: false,
};

const client = new WorkerClient(new URL('./worker.js', import.meta.url));
const charts = new Charts($('chart-loss'), $('chart-accuracy'));

// ---------------------------------------------------------------------------------------------
// Helpers

const acc = (x) => x.toFixed(4);
const pct = (x) => `${(x * 100).toFixed(x >= 0.995 || x < 0.005 ? 1 : 0)}%`;
const int = (n) => n.toLocaleString('en-US');
const presetOf = (config) => matchPreset(formFromConfig(config));
const formValid = () => Object.keys(state.fieldErrors).length === 0;
const classes = () => state.data.ready?.classes ?? ['airplane', 'bird'];
const currentConfig = () => configFromForm(state.form, classes().length);
const idle = () => ['ready', 'done', 'error'].includes(state.phase) && !state.crashed && Boolean(state.data.ready);

function setText(el, text) {
  if (el.textContent !== text) el.textContent = text;
}

function el(tag, props = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (k === 'class') e.className = v;
    else if (k in e && typeof v !== 'string') e[k] = v;
    else e.setAttribute(k, v);
  }
  e.append(...children);
  return e;
}

function pushError(where, message) {
  state.errors.push({ where, message });
  if (state.errors.length > 6) state.errors.shift();
  scheduleRender();
}

/** Which model a result came from, e.g. "after epoch 3" or "with the weights from x.safetensors". */
function modelLabel() {
  const m = state.model;
  if (!m) return '';
  const n = m.history.length;
  if (m.source === 'imported' && n === 0) return `with the weights from ${m.name}`;
  return `after epoch ${n}`;
}

function epochLine(s) {
  return `Epoch: ${s.epoch}, Loss: ${s.loss.toFixed(6)}, train accuracy: ${acc(s.train_accuracy)}, `
    + `val accuracy: ${acc(s.val_accuracy)} (${s.seconds.toFixed(2)} s)`;
}

function scheduleRender() {
  // A new phase is shown at once (tests and assistive technology see every state); the rest is
  // batched into one render per frame.
  if (state.phase !== document.documentElement.dataset.state) { render(); return; }
  if (state.renderQueued) return;
  state.renderQueued = true;
  const run = () => { state.renderQueued = false; render(); };
  // Animation frames stop in a hidden tab; the hooks must stay current there too.
  if (document.hidden) setTimeout(run, 50); else requestAnimationFrame(run);
}

// ---------------------------------------------------------------------------------------------
// Start-up: init -> load-data -> restore (again after a crash, with Restart)

async function boot() {
  state.phase = 'loading';
  state.status = 'Starting the training worker…';
  scheduleRender();
  try {
    // Both at once: the worker downloads (or reads from its cache) and hashes the data while the
    // wasm module compiles and its threads start.
    const readyP = client.request({ type: 'init', threads: state.threads, store: 'skywatch' }, 'ready');
    const dataP = client.request({ type: 'load-data', url: 'data/' }, 'data-ready');
    dataP.catch(() => {}); // reported below, after init's own error if both fail
    const ready = await readyP;
    state.mode = ready.mode;
    state.status = 'Loading the training data…';
    requestDescribe();
    scheduleRender();
    state.data.ready = await dataP;
    requestDescribe();
  } catch (e) {
    state.phase = 'error';
    state.status = 'The page could not start.';
    // A failed download or a corrupt bundle (its cached copy is dropped) can be tried again.
    state.startFailed = true;
    if (!state.crashed) pushError(state.mode ? 'load-data' : 'init', e.message);
    scheduleRender();
    return;
  }
  try {
    // With autostart a new run begins at once; restoring the saved model first would only delay it.
    if (!state.autostart) onRestored(await client.request({ type: 'restore' }, 'restored'));
  } catch (e) {
    if (state.crashed) return;
    pushError('restore', `The saved model could not be restored: ${e.message}`);
  }
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
    const params = new URLSearchParams(location.search);
    params.delete('autostart');
    history.replaceState(history.state, '', `${location.pathname}${params.size ? `?${params}` : ''}${location.hash}`);
    // In a later task, so that `ready` is observable before `training`.
    setTimeout(() => startTraining(false), 0);
  }
}

function onRestored(r) {
  state.restored = { found: r.found, epochs: r.history?.length ?? 0, discarded: r.discarded ?? '', interrupted: Boolean(r.interrupted) };
  if (!r.found) return;
  state.model = { config: r.config, summary: r.summary, source: 'restored', history: r.history ?? [] };
  state.historyVersion++;
  if (!state.urlHasConfig) {
    // Nothing asked for in the address: show the restored model's settings.
    state.form = formFromConfig(r.config);
    writeFormInputs();
    requestDescribe();
  }
  const n = state.model.history.length;
  if (r.interrupted) {
    // The tab was closed or reloaded mid-run: carry on from the last finished epoch, with the
    // optimizer and shuffling state of then, so the run ends as if nothing had happened.
    state.status = `Resuming the run interrupted after epoch ${n} of ${r.config.epochs}.`;
    return;
  }
  state.status = `Restored the model saved after ${n} epoch${n === 1 ? '' : 's'}. Start trains a new one.`;
  requestEvaluation();
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
  state.evaluation.result = null;
  state.evaluation.version++;
  state.gallery.result = null;
  state.gallery.version++;
  client.restart();
  await boot();
}

// ---------------------------------------------------------------------------------------------
// Training

function startTraining(continueRun) {
  if (continueRun ? !canContinue() : !canStart()) return;
  const config = continueRun ? state.model.config : currentConfig();
  state.run = { continueRun, stopping: false, progress: null, window: [], batchesPerEpoch: 0, trainSize: 0, flops: trainFlopsPerSample(config.model.layers) };
  state.phase = 'training';
  state.status = continueRun ? 'Continuing the training…' : 'Starting the training…';
  scheduleRender();
  client.send({ type: 'train', config, continueRun });
}

function canStart() {
  return idle() && formValid() && !state.describe.error;
}

function canContinue() {
  const m = state.model;
  return idle() && Boolean(m) && m.history.length < m.config.epochs;
}

client.on('started', (d) => {
  const keep = state.run?.continueRun && state.model && d.epochsDone > 0;
  const history = keep ? state.model.history.slice(0, d.epochsDone) : [];
  state.model = { config: d.config, summary: d.summary, source: 'trained', history };
  state.historyVersion++;
  state.run = { ...(state.run ?? { continueRun: false, stopping: false }), progress: null, window: [], batchesPerEpoch: d.batchesPerEpoch, trainSize: d.trainSize, flops: trainFlopsPerSample(d.config.model.layers) };
  state.phase = 'training';
  state.evaluation.result = null;
  state.evaluation.version++;
  const c = d.config;
  state.status = `${keep ? 'Continuing' : 'Training'} ${presetOf(c)} (${describeRecipe(c)}) on ${int(d.trainSize)} images for ${c.epochs} epochs.`;
  scheduleRender();
});

client.on('progress', (d) => {
  const r = state.run;
  if (!r) return;
  const p = d.progress;
  const prev = r.progress;
  // `samples` counts from the start of the epoch; a slice never spans two epochs.
  const samples = prev && prev.epoch === p.epoch && p.samples >= prev.samples ? p.samples - prev.samples : p.samples;
  r.window.push({ samples, seconds: d.seconds });
  let total = r.window.reduce((s, w) => s + w.seconds, 0);
  while (r.window.length > 2 && total - r.window[0].seconds >= SPEED_WINDOW_S) total -= r.window.shift().seconds;
  r.progress = p;
  scheduleRender();
});

client.on('epoch', ({ stats }) => {
  if (!state.model) return;
  state.model.history.push(stats);
  state.historyVersion++;
  const n = state.model.history.length;
  state.status = `Epoch ${n} of ${state.model.config.epochs}: loss ${stats.loss.toFixed(4)}, `
    + `train accuracy ${acc(stats.train_accuracy)}, val accuracy ${acc(stats.val_accuracy)}.`;
  throttledRefresh();
  scheduleRender();
});

client.on('paused', () => {
  if (state.phase !== 'training') return;
  state.phase = 'paused';
  const p = state.run?.progress;
  state.status = `Paused${p ? ` in epoch ${p.epoch + 1}, batch ${p.batch} of ${p.batches}` : ''}.`;
  scheduleRender();
});

client.on('resumed', () => {
  if (state.phase !== 'paused') return;
  state.phase = 'training';
  state.status = 'Training resumed.';
  scheduleRender();
});

client.on('done', (d) => {
  state.run = state.run && { ...state.run, stopping: false };
  const last = state.model?.history.at(-1);
  state.status = `Done: ${d.epochs} epoch${d.epochs === 1 ? '' : 's'}${last ? `, val accuracy ${acc(last.val_accuracy)}` : ''}.`;
  afterRun('done');
});

client.on('stopped', (d) => {
  state.run = state.run && { ...state.run, stopping: false };
  state.status = `Stopped after ${d.epochs} epoch${d.epochs === 1 ? '' : 's'}.`;
  afterRun('ready');
});

/** At the end of a run: the final evaluation, gallery and picture, then the new phase. */
function afterRun(phase) {
  clearTimeout(state.gallery.timer);
  state.gallery.timer = 0;
  requestEvaluation();
  refreshGallery();
  refreshPicture();
  if (phase) state.phase = phase;
  scheduleRender();
}

client.on('error', (d) => {
  if (REQUESTED.has(d.where)) return;
  if (d.where === 'train') {
    state.phase = 'error';
    state.run = null;
    state.status = 'Training stopped with an error.';
    pushError('train', `Training failed: ${d.message}`);
    if (state.model?.history.length) afterRun();
    return;
  }
  pushError(d.where, d.message);
});

client.on('crash', (d) => {
  state.crashed = true;
  state.phase = 'error';
  state.run = null;
  state.status = 'The training worker stopped.';
  const why = /stopped unexpectedly/.test(d.message) ? '' : ` (${d.message})`;
  pushError('crash', `The training worker stopped unexpectedly${why}. Restart it to go on; the model saved after the last epoch is restored.`);
});

client.on('data-progress', (d) => {
  state.data.files[d.file] = { loaded: d.loaded, total: d.total, fromCache: d.fromCache };
  scheduleRender();
});

// ---------------------------------------------------------------------------------------------
// Requests with replies: describe, evaluate, gallery, predict, export, import, forget.
// One of each kind at a time (replies carry no id); a request made meanwhile runs afterwards.

function requestDescribe() {
  const d = state.describe;
  if (!state.mode || state.crashed) return;
  if (!formValid()) { d.summary = ''; d.error = ''; scheduleRender(); return; }
  if (d.busy) { d.again = true; return; }
  d.busy = true;
  client.request({ type: 'describe', config: currentConfig() }, 'described')
    .then((r) => { d.summary = r.summary; d.error = ''; }, (e) => { d.summary = ''; d.error = state.crashed ? '' : e.message; })
    .finally(() => {
      d.busy = false;
      if (d.again) { d.again = false; requestDescribe(); }
      scheduleRender();
    });
}

function requestEvaluation() {
  const ev = state.evaluation;
  if (!state.model || state.crashed) return;
  if (ev.busy) { ev.again = true; return; }
  ev.busy = true;
  const model = modelLabel();
  scheduleRender();
  client.request({ type: 'evaluate' }, 'evaluation')
    .then((r) => { ev.result = { train: r.train, test: r.test, model, classes: classes() }; ev.version++; },
      (e) => { if (!state.crashed) pushError('evaluate', `Evaluation failed: ${e.message}`); })
    .finally(() => {
      ev.busy = false;
      if (ev.again) { ev.again = false; requestEvaluation(); }
      scheduleRender();
    });
}

function refreshGallery() {
  const g = state.gallery;
  if (!state.model || !state.data.ready || state.crashed) return;
  if (g.busy) { g.again = true; return; }
  g.busy = true;
  g.lastAt = performance.now();
  const mistakesOnly = g.mistakesOnly;
  const asked = mistakesOnly ? GALLERY_MISTAKE_POOL : GALLERY_SIZE;
  const indices = sampleIndices(state.data.ready.test, asked, state.form.seed, g.draw);
  const model = modelLabel();
  client.request({ type: 'gallery', indices }, 'gallery')
    .then((r) => { g.result = { items: r.items, images: r.images, classes: r.classes, mistakesOnly, asked, model }; g.version++; },
      (e) => { if (!state.crashed) pushError('gallery', `The test images could not be shown: ${e.message}`); })
    .finally(() => {
      g.busy = false;
      if (g.again) { g.again = false; refreshGallery(); }
      scheduleRender();
    });
}

/** After an epoch: refresh the gallery and the picture at most every REFRESH_MS. */
function throttledRefresh() {
  const g = state.gallery;
  if (g.timer) return;
  const wait = Math.max(0, g.lastAt + REFRESH_MS - performance.now());
  g.timer = setTimeout(() => {
    g.timer = 0;
    refreshGallery();
    refreshPicture();
  }, wait);
}

async function classifyBlob(blob) {
  const pic = state.picture;
  pic.error = '';
  if (!state.model) {
    pic.error = 'There is no model yet: train one (Start) or upload weights first.';
    scheduleRender();
    return;
  }
  pic.busy = true;
  scheduleRender();
  try {
    // decodeImage's messages name the file; the worker's do not.
    const { rgba, width, height, note } = await decodeImage(blob);
    const name = blob.name || 'pasted picture';
    await predictPicture(rgba, width, height, note ? `${name} (${note})` : name)
      .catch((e) => { throw new Error(`Could not classify ${name}: ${e.message}`); });
  } catch (e) {
    pic.error = e.message;
  } finally {
    pic.busy = false;
    scheduleRender();
  }
}

/** Replies carry no id: predictions are asked one at a time, in order. */
function predictPicture(rgba, width, height, name) {
  const pic = state.picture;
  const run = pic.queue.then(() => predictNow(rgba, width, height, name));
  pic.queue = run.catch(() => {});
  return run;
}

async function predictNow(rgba, width, height, name) {
  const pic = state.picture;
  const model = modelLabel();
  const r = await client.request({ type: 'predict', rgba, width, height }, 'prediction', [rgba]);
  pic.result = { probabilities: r.probabilities, image: r.image, classes: r.classes, name, model };
  pic.version++;
  scheduleRender();
}

/** Classifies the last picture again with the current model (from its 32x32 version). */
function refreshPicture() {
  const pic = state.picture;
  if (!pic.result || pic.busy || !state.model || state.crashed) return;
  pic.busy = true;
  const copy = Uint8Array.from(pic.result.image).buffer;
  predictPicture(copy, 32, 32, pic.result.name)
    .catch((e) => { pic.error = e.message; })
    .finally(() => { pic.busy = false; scheduleRender(); });
}

async function downloadWeights() {
  const w = state.weights;
  if (!state.model || w.busy) return;
  w.busy = true;
  w.message = '';
  scheduleRender();
  try {
    const r = await client.request({ type: 'export' }, 'weights');
    const name = `skywatch-${presetOf(r.config)}-epoch${state.model?.history.length ?? 0}.safetensors`;
    if (w.link) URL.revokeObjectURL(w.link.href);
    w.link = { href: URL.createObjectURL(new Blob([r.bytes], { type: 'application/octet-stream' })), name, size: r.bytes.length };
    w.message = '';
    render();
    $('weights-message').querySelector('a')?.click();
  } catch (e) {
    w.message = `Could not export the weights: ${e.message}`;
  } finally {
    w.busy = false;
    scheduleRender();
  }
}

async function uploadWeights(file) {
  const w = state.weights;
  if (w.busy) return;
  if (!idle()) { w.message = 'Stop the training before loading weights.'; scheduleRender(); return; }
  // Refused by size before a byte is read: a file far larger than any model is not read into memory.
  if (file.size > MAX_WEIGHTS_BYTES || file.size === 0) {
    w.message = file.size
      ? `Could not load ${file.name}: it is ${mb(file.size)}, larger than any model this page can hold (at most ${mb(MAX_WEIGHTS_BYTES)}).`
      : `Could not load ${file.name}: the file is empty.`;
    scheduleRender();
    return;
  }
  w.busy = true;
  w.message = `Loading ${file.name}…`;
  scheduleRender();
  try {
    const bytes = await file.arrayBuffer();
    // The file decides the architecture when it says; the form's settings fill in the rest.
    const config = formValid() && !state.describe.error
      ? currentConfig()
      : state.model?.config ?? configFromForm(DEFAULT_FORM, classes().length);
    const r = await client.request({ type: 'import', bytes, config }, 'imported', [bytes]);
    state.model = { config: r.config, summary: r.summary, source: 'imported', history: [], name: file.name };
    state.historyVersion++;
    state.run = null;
    if (state.phase === 'done' || (state.phase === 'error' && !state.crashed)) state.phase = 'ready';
    w.message = `Loaded ${file.name}: ${describeRecipe(r.config)}, parameters ${r.summary}.`;
    state.status = `Loaded weights from ${file.name}.`;
    requestEvaluation();
    refreshGallery();
    refreshPicture();
  } catch (e) {
    w.message = `Could not load ${file.name}: ${e.message}`;
  } finally {
    w.busy = false;
    scheduleRender();
  }
}

async function forgetSaved() {
  try {
    await client.request({ type: 'forget' }, 'forgotten');
    state.weights.message = 'The saved model was deleted from this browser. The model on this page stays until you reload (or the next epoch saves it again).';
  } catch (e) {
    state.weights.message = `Could not delete the saved model: ${e.message}`;
  }
  scheduleRender();
}

// ---------------------------------------------------------------------------------------------
// The form

const FORM_KEYS = ['hidden', 'activation', 'loss', 'optimizer', 'lr', 'momentum', 'batchSize', 'epochs', 'trainSize', 'seed'];

function writeFormInputs() {
  $('f-preset').value = state.form.preset;
  for (const key of FORM_KEYS) {
    $(`f-${key}`).value = format(key, state.form[key]);
    delete state.fieldErrors[key];
  }
  scheduleRender();
}

function onFieldChange(key, text) {
  if (key === 'preset') {
    state.form = text === 'custom' ? { ...state.form, preset: 'custom' } : applyPreset(state.form, text);
    if (text !== 'custom') {
      for (const k of RECIPE) { $(`f-${k}`).value = format(k, state.form[k]); delete state.fieldErrors[k]; }
    }
  } else {
    try {
      state.form = { ...state.form, [key]: FIELDS[key].parse(text) };
      delete state.fieldErrors[key];
    } catch (e) {
      state.fieldErrors[key] = e.message;
    }
    if (RECIPE.has(key) && !state.fieldErrors[key]) state.form.preset = matchPreset(state.form);
    $('f-preset').value = state.form.preset;
  }
  if (formValid()) {
    const url = `${location.pathname}?${paramsFromForm(state.form, state.threadsParam)}${location.hash}`;
    history.replaceState(history.state, '', url);
  }
  if (key === 'seed' && state.model && !state.fieldErrors.seed) refreshGallery();
  requestDescribe();
  scheduleRender();
}

// ---------------------------------------------------------------------------------------------
// Rendering

function render() {
  const root = document.documentElement;
  if (root.dataset.state !== state.phase) root.dataset.state = state.phase;
  renderHeader();
  renderErrors();
  renderData();
  renderForm();
  renderTraining();
  renderEvaluation();
  renderGallery();
  renderPicture();
  renderWeights();
}

function renderHeader() {
  setText(document.querySelector('[data-metric="mode"]'), state.mode?.reason ?? '');
  document.querySelector('.mode').classList.toggle('threaded', (state.mode?.threads ?? 1) > 1);
  document.querySelector('.mode').classList.toggle('failed', !state.mode && state.phase === 'error');
}

function renderErrors() {
  const key = `${state.errors.length}:${state.errors.map((e) => e.message).join('|')}:${state.crashed}:${state.startFailed}`;
  if (state.rendered.errors === key) return;
  state.rendered.errors = key;
  $('error-list').replaceChildren(...state.errors.map((e) => el('li', {}, e.message)));
  $('error-actions').hidden = state.errors.length === 0;
  $('restart').hidden = !(state.crashed || state.startFailed);
  $('restart').textContent = state.crashed ? 'Restart the worker' : 'Try again';
  $('dismiss-errors').hidden = state.crashed || state.startFailed;
}

function renderData() {
  const files = Object.values(state.data.files);
  const loaded = files.reduce((s, f) => s + f.loaded, 0);
  const total = files.reduce((s, f) => s + f.total, 0);
  const fromCache = files.length > 0 && files.every((f) => f.fromCache);
  const bar = $('data-progress');
  const ready = state.data.ready;
  let text;
  if (ready) {
    bar.max = 1;
    bar.value = 1;
    text = `${int(ready.train)} training and ${int(ready.test)} test images (${ready.classes.join(', ')}), `
      + (ready.fromCache ? 'loaded from the browser cache.' : `downloaded (${mb(total)}) and cached for next time.`);
  } else if (files.length) {
    if (total > 0) { bar.max = total; bar.value = Math.min(loaded, total); } else bar.removeAttribute('value');
    text = `${fromCache ? 'Reading from the browser cache' : 'Downloading'}: ${mb(loaded)}${total ? ` of ${mb(total)} (${Math.floor((100 * loaded) / total)}%)` : ''}`;
  } else if (state.phase === 'error') {
    text = 'The data could not be loaded.';
  } else {
    text = state.mode ? 'Fetching the data manifest…' : 'Waiting for the training worker…';
  }
  setText($('data-text'), text);

  const r = state.restored;
  setText(document.querySelector('[data-metric="restored"]'), r?.found ? 'yes' : 'no');
  let rt = '';
  if (r?.found) rt = ` (${r.epochs} epoch${r.epochs === 1 ? '' : 's'}, from your last visit)`;
  else if (r?.discarded) rt = ` (a saved model was unreadable and discarded: ${r.discarded})`;
  setText($('restored-text'), rt);

  if (!state.rendered.problems) {
    state.rendered.problems = true;
    const box = $('url-problems');
    box.hidden = state.urlProblems.length === 0;
    // Shown as text (never markup), a long value cut short.
    const clip = (v) => (v.length > 60 ? `${v.slice(0, 60)}…` : v);
    $('url-problem-list').replaceChildren(...state.urlProblems.map((p) => el('li', {},
      el('code', {}, `${p.param}=${clip(p.value)}`), `: ${p.message}; using ${p.fallback === '' ? 'the default' : p.fallback}.`)));
  }
}

function renderForm() {
  const busy = state.phase === 'training' || state.phase === 'paused';
  $('config-fields').disabled = busy || state.crashed;
  for (const key of FORM_KEYS) {
    const msg = state.fieldErrors[key] ?? '';
    const input = $(`f-${key}`);
    const err = $(`e-${key}`);
    if (err) { setText(err, msg); err.hidden = !msg; }
    if (msg) input.setAttribute('aria-invalid', 'true'); else input.removeAttribute('aria-invalid');
  }
  $('f-momentum').disabled = state.form.optimizer !== 'sgd';
  const d = state.describe;
  setText($('param-summary'), formValid() ? d.summary : '');
  setText($('config-error'), d.error ? `This configuration cannot be trained: ${d.error}` : '');
  $('config-error').hidden = !d.error;

  const r = state.run;
  $('start').disabled = !canStart();
  $('pause').disabled = state.phase !== 'training' || !r || r.stopping;
  $('resume').disabled = state.phase !== 'paused' || !r || r.stopping;
  $('stop').disabled = !['training', 'paused'].includes(state.phase) || !r || r.stopping;
  const cont = $('continue');
  const m = state.model;
  cont.hidden = !canContinue();
  if (m) setText(cont, `Continue training to ${m.config.epochs} epochs`);
}

function renderTraining() {
  setText($('status'), state.status);
  const m = state.model;
  const history = m?.history ?? [];
  const last = history.at(-1);
  setText(document.querySelector('[data-metric="epoch"]'), String(history.length));
  setText($('epochs-total'), m ? ` / ${m.config.epochs}` : '');
  setText(document.querySelector('[data-metric="train-accuracy"]'), last ? acc(last.train_accuracy) : '');
  setText(document.querySelector('[data-metric="val-accuracy"]'), last ? acc(last.val_accuracy) : '');
  setText($('metric-loss'), last ? last.loss.toFixed(4) : '');

  // Within the epoch.
  const r = state.run;
  const p = r?.progress;
  const bar = $('batch-progress');
  if (p) {
    const finished = p.batch >= p.batches;
    bar.max = p.batches;
    bar.value = p.batch;
    setText($('batch-label'), finished && state.phase !== 'training'
      ? `Epoch ${p.epoch + 1}: all ${p.batches} batches`
      : `Epoch ${p.epoch + 1}, batch ${p.batch} of ${p.batches}`);
    setText($('running-loss'), `running loss ${p.loss.toFixed(4)}`);
  } else {
    bar.max = 1;
    bar.value = 0;
    setText($('batch-label'), 'Epoch progress');
    setText($('running-loss'), '');
  }
  const seconds = r?.window.reduce((s, w) => s + w.seconds, 0) ?? 0;
  if (seconds > 0 && state.phase === 'training') {
    const perSecond = r.window.reduce((s, w) => s + w.samples, 0) / seconds;
    setText($('speed'), ` · ${int(Math.round(perSecond))} samples/s · ${((perSecond * r.flops) / 1e9).toFixed(1)} GFLOP/s`);
  } else if (state.phase !== 'paused') {
    setText($('speed'), '');
  }

  if (state.rendered.history !== state.historyVersion) {
    state.rendered.history = state.historyVersion;
    charts.setHistory(history);
    renderLog(m, history);
  }
}

function renderLog(m, history) {
  const log = $('log');
  const rd = state.rendered;
  const atBottom = log.scrollHeight - log.scrollTop - log.clientHeight < 24;
  if (rd.log !== m || rd.logCount > history.length) {
    rd.log = m;
    rd.logCount = 0;
    const head = [];
    if (m) {
      const source = { restored: 'restored from this browser', imported: `loaded from ${m.name}`, trained: '' }[m.source];
      head.push(`# ${presetOf(m.config)}: ${describeRecipe(m.config)}, seed ${m.config.seed}${source ? ` (${source})` : ''}`);
      head.push(m.summary);
    }
    log.textContent = head.length ? `${head.join('\n')}\n` : '';
  }
  if (history.length > rd.logCount) {
    log.append(`${history.slice(rd.logCount).map(epochLine).join('\n')}\n`);
    rd.logCount = history.length;
  }
  if (atBottom || rd.logCount === history.length) log.scrollTop = log.scrollHeight;
}

function confusionTable(title, stats, names) {
  const correct = stats.confusion.reduce((s, row, i) => s + row[i], 0);
  const head = el('tr', {}, el('td', { class: 'corner' }, 'true ↓ predicted →'),
    ...names.map((n) => el('th', { scope: 'col' }, n)));
  const rows = stats.confusion.map((row, i) => el('tr', {}, el('th', { scope: 'row' }, names[i]),
    ...row.map((v, j) => el('td', { class: i === j ? 'hit' : 'miss' }, int(v)))));
  return el('table', { class: 'matrix' },
    el('caption', {}, `${title}: accuracy `, el('strong', {}, acc(stats.accuracy)), ` (${int(correct)} of ${int(stats.count)}), loss ${stats.loss.toFixed(4)}`),
    el('thead', {}, head), el('tbody', {}, ...rows));
}

function renderEvaluation() {
  const ev = state.evaluation;
  $('evaluate').disabled = !state.model || ev.busy || state.crashed;
  setText($('evaluate'), ev.busy ? 'Evaluating…' : 'Evaluate now');
  const res = ev.result;
  setText($('eval-note'), res ? `The model ${res.model}.` : state.model ? '' : 'No model yet.');
  if (state.rendered.evaluation === ev.version) return;
  state.rendered.evaluation = ev.version;
  $('confusion').replaceChildren(...(res ? [confusionTable('Test', res.test, res.classes), confusionTable('Train', res.train, res.classes)] : []));
}

function renderGallery() {
  const g = state.gallery;
  $('redraw').disabled = !state.model || state.crashed;
  $('mistakes-only').disabled = !state.model || state.crashed;
  if (state.rendered.gallery === g.version) return;
  state.rendered.gallery = g.version;
  const res = g.result;
  if (!res) { $('gallery-grid').replaceChildren(); setText($('gallery-note'), state.model ? '' : 'Train a model to see its guesses.'); return; }
  const tiles = [];
  let wrong = 0;
  for (const [n, item] of res.items.entries()) {
    const pred = argmax(item.probabilities);
    const ok = pred === item.label;
    if (!ok) wrong++;
    if (res.mistakesOnly && (ok || tiles.length >= GALLERY_MAX_MISTAKES)) continue;
    const truth = res.classes[item.label];
    const guess = res.classes[pred];
    const p = item.probabilities[pred];
    const canvas = imageCanvas(res.images, n * 4096);
    canvas.setAttribute('aria-hidden', 'true');
    const label = `Test image ${item.index}, a ${truth}: ${ok ? 'right' : 'wrong'}, predicted ${guess} (${pct(p)})`;
    tiles.push(el('figure', { class: `tile ${ok ? 'right' : 'wrong'}`, title: label, role: 'img', 'aria-label': label },
      canvas, el('figcaption', {}, el('span', {}, `${ok ? '✓' : '✗'} ${guess}`), el('span', { class: 'p' }, pct(p)))));
  }
  $('gallery-grid').replaceChildren(...tiles);
  const share = res.items.length ? wrong / res.items.length : 0;
  setText($('gallery-note'), res.mistakesOnly
    ? `${wrong} mistakes among ${res.items.length} random test images (${(share * 100).toFixed(1)}%)${wrong > GALLERY_MAX_MISTAKES ? `, first ${GALLERY_MAX_MISTAKES} shown` : ''}; the model ${res.model}.`
    : `${res.items.length - wrong} of ${res.items.length} right; the model ${res.model}.`);
}

function renderPicture() {
  const pic = state.picture;
  setText($('picture-error'), pic.error);
  $('drop-zone').classList.toggle('busy', pic.busy);
  if (state.rendered.picture === pic.version) return;
  state.rendered.picture = pic.version;
  const res = pic.result;
  $('prediction').hidden = !res;
  if (!res) return;
  const canvas = $('picture-canvas');
  canvas.getContext('2d').putImageData(new ImageData(new Uint8ClampedArray(res.image), 32, 32), 0, 0);
  const best = argmax(res.probabilities);
  setText(document.querySelector('[data-metric="prediction"]'), res.classes[best]);
  $('probability-bars').replaceChildren(...res.classes.map((name, i) => {
    const p = res.probabilities[i];
    const fill = el('span', { class: 'fill' });
    fill.style.width = `${(p * 100).toFixed(1)}%`;
    return el('li', { class: i === best ? 'best' : '' },
      el('span', { class: 'name' }, name),
      el('span', { class: 'bar', 'aria-hidden': 'true' }, fill),
      el('span', { class: 'value' }, `${(p * 100).toFixed(1)}%`));
  }));
  setText($('prediction-note'), `${res.name}; the model ${res.model}.`);
}

function renderWeights() {
  const w = state.weights;
  $('download').disabled = !state.model || w.busy || state.crashed;
  $('upload').disabled = !idle() || w.busy;
  $('forget').disabled = !state.mode || state.crashed;
  const box = $('weights-message');
  const key = `${w.message}|${w.link?.href ?? ''}`;
  if (box.dataset.key === key) return;
  box.dataset.key = key;
  if (w.message || !w.link) box.replaceChildren(w.message);
  else {
    box.replaceChildren('Saved ', el('a', { href: w.link.href, download: w.link.name }, w.link.name), ` (${mb(w.link.size)}).`);
  }
}

// ---------------------------------------------------------------------------------------------
// Events

function wire() {
  const form = $('config');
  form.addEventListener('submit', (e) => { e.preventDefault(); startTraining(false); });
  $('f-preset').addEventListener('change', (e) => onFieldChange('preset', e.target.value));
  for (const key of FORM_KEYS) {
    const input = $(`f-${key}`);
    input.addEventListener(input.tagName === 'SELECT' ? 'change' : 'input', () => onFieldChange(key, input.value));
  }
  $('pause').addEventListener('click', () => client.send({ type: 'pause' }));
  $('resume').addEventListener('click', () => client.send({ type: 'resume' }));
  $('stop').addEventListener('click', () => {
    if (!state.run) return;
    state.run.stopping = true;
    state.status = 'Stopping…';
    client.send({ type: 'stop' });
    scheduleRender();
  });
  $('continue').addEventListener('click', () => startTraining(true));
  $('evaluate').addEventListener('click', requestEvaluation);
  $('redraw').addEventListener('click', () => { state.gallery.draw++; refreshGallery(); });
  $('mistakes-only').addEventListener('change', (e) => { state.gallery.mistakesOnly = e.target.checked; refreshGallery(); });
  $('restart').addEventListener('click', restart);
  $('dismiss-errors').addEventListener('click', () => { state.errors = []; scheduleRender(); });

  // Bird or airplane: file picker, drop, paste.
  const picker = $('picture-input');
  const zone = $('drop-zone');
  zone.addEventListener('click', () => picker.click());
  picker.addEventListener('change', () => {
    const [file] = picker.files;
    picker.value = '';
    if (file) classifyBlob(file);
  });
  const hasFiles = (e) => [...(e.dataTransfer?.types ?? [])].includes('Files');
  zone.addEventListener('dragenter', (e) => { if (hasFiles(e)) { e.preventDefault(); zone.classList.add('over'); } });
  zone.addEventListener('dragover', (e) => { if (hasFiles(e)) { e.preventDefault(); e.dataTransfer.dropEffect = 'copy'; } });
  zone.addEventListener('dragleave', () => zone.classList.remove('over'));
  zone.addEventListener('drop', (e) => {
    e.preventDefault();
    zone.classList.remove('over');
    const file = e.dataTransfer.files[0];
    if (file) classifyBlob(file);
    else { state.picture.error = 'Drop an image file (from your computer, not a link).'; scheduleRender(); }
  });
  // A file dropped next to the box must not replace the page.
  window.addEventListener('dragover', (e) => { if (hasFiles(e)) e.preventDefault(); });
  window.addEventListener('drop', (e) => { if (hasFiles(e)) e.preventDefault(); });
  document.addEventListener('paste', (e) => {
    const files = [...(e.clipboardData?.files ?? [])];
    const image = files.find((f) => f.type.startsWith('image/'));
    if (image) {
      e.preventDefault();
      classifyBlob(image);
      $('h-classify').scrollIntoView({ block: 'nearest', behavior: 'smooth' });
    } else if (files.length && !e.target.closest?.('input, textarea, [contenteditable]')) {
      state.picture.error = `${files[0].name || 'The pasted file'} is not an image.`;
      scheduleRender();
    }
  });

  // Weights.
  const weightsInput = $('weights-input');
  $('download').addEventListener('click', downloadWeights);
  $('upload').addEventListener('click', () => weightsInput.click());
  weightsInput.addEventListener('change', () => {
    const [file] = weightsInput.files;
    weightsInput.value = '';
    if (file) uploadWeights(file);
  });
  $('forget').addEventListener('click', forgetSaved);
  document.addEventListener('visibilitychange', scheduleRender);
  // Test hook (see the header): crash the worker as a real crash would.
  document.addEventListener('skywatch:debug-crash', () => client.send({ type: 'debug-crash' }));
}

wire();
writeFormInputs();
render();
boot();
