// The training panel: the configuration form (mirrored in the address), the controls (start,
// pause, resume, stop, continue, train more), the run's status, metrics and progress, and the
// lecture-style epoch log. The worker's training messages (started, progress, epoch, paused, resumed, done,
// stopped, and a `train` error) arrive here from app.js's table.

import {
  $, REFRESH_MS, client, currentConfig, dropErrors, formValid, idle, metricEl, oneAtATime, pushError,
  scheduleProgressRender, scheduleRender, state,
} from './state.js';
import {
  FIELDS, RECIPE, applyPreset, describeRecipe, format, formFromConfig, matchPreset, paramsFromForm,
} from './config.js';
import { setProp, setText } from '../shared/dom.js';
import { acc, int, plural } from '../shared/format.js';
import { clearEvaluation, requestEvaluation } from './confusion.js';
import { refreshGallery } from './gallery.js';
import { refreshPicture } from './picture.js';

const FORM_KEYS = ['conv', 'hidden', 'activation', 'loss', 'optimizer', 'lr', 'momentum', 'batchSize', 'epochs', 'trainSize', 'augment', 'seed'];
const SPEED_WINDOW_S = 2;       // moving window for samples/s

const presetOf = (config) => formFromConfig(config, state.presets).preset;

/** Floating-point operations of one training sample (forward, weight and bias gradients, input
 *  gradients of every layer but the first), for the GFLOP/s display. A convolution of `c_in` to
 *  `c_out` channels on an `s x s` plane counts `9 c_in c_out s^2` multiply-adds. */
export function trainFlopsPerSample(model) {
  const conv = model.conv ?? [];
  let flops = 0;
  let [channels, side] = [3, 32];
  conv.forEach((c, i) => {
    flops += 2 * 9 * channels * c * side * side * (i === 0 ? 2 : 3);
    [channels, side] = [c, side / 2];
  });
  const layers = model.layers;
  for (let l = 0; l + 1 < layers.length; l++) {
    const mac = layers[l] * layers[l + 1];
    flops += 2 * mac * (l === 0 && !conv.length ? 2 : 3);
  }
  return flops;
}

// ---------------------------------------------------------------------------------------------
// The form

/** Shows `state.form` in the inputs (and clears their errors). */
export function writeFormInputs() {
  if (!state.form) return;
  $('f-backend').value = state.backend;
  $('f-preset').value = state.form.preset;
  for (const key of FORM_KEYS) {
    $(`f-${key}`).value = format(key, state.form[key]);
    delete state.fieldErrors[key];
  }
  scheduleRender();
}

/** Shows the configuration of a restored model in the form (when the address asked for none). */
export function showConfig(config) {
  state.form = formFromConfig(config, state.presets);
  writeFormInputs();
  requestDescribe();
}

function onFieldChange(key, text) {
  if (!state.form) return;
  if (key === 'preset') {
    state.form = text === 'custom' ? { ...state.form, preset: 'custom' } : applyPreset(state.form, text, state.presets);
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
    if (RECIPE.includes(key) && !state.fieldErrors[key]) state.form.preset = matchPreset(state.form, state.presets);
    $('f-preset').value = state.form.preset;
  }
  if (formValid()) writeAddress();
  if (key === 'seed' && state.model && !state.fieldErrors.seed) refreshGallery();
  requestDescribe();
  scheduleRender();
}

/** The address mirrors the form (and the backend, and `threads` when it was given). */
function writeAddress() {
  const url = `${location.pathname}?${paramsFromForm(state.form, state.threadsParam, state.backend)}${location.hash}`;
  history.replaceState(history.state, '', url);
}

/** The backend field changed: the worker resolves it (the mode line says what runs, and why). */
function onBackendChange(value) {
  state.backend = value;
  if (formValid()) writeAddress();
  else {
    const params = new URLSearchParams(location.search);
    if (value === 'auto') params.delete('backend'); else params.set('backend', value);
    history.replaceState(history.state, '', `${location.pathname}?${params}${location.hash}`);
  }
  if (!state.mode || state.crashed) return;
  client.request({ type: 'backend', backend: value }, 'mode').then((r) => {
    state.mode = r.mode;
    // WebGPU asked for but not there: said plainly, as at the start.
    dropErrors('backend');
    if (r.mode.notice) pushError('backend', r.mode.notice);
    scheduleRender();
  }, (e) => pushError('backend', e.message));
}

/** "New seed": the next run draws its seed at random (the field and the address say `random`
 *  until the run starts and the drawn number replaces it). */
function newSeed() {
  $('f-seed').value = 'random';
  onFieldChange('seed', 'random');
}

/** The worker drew the run's seed: the form and the address get the number, so that the link
 *  reproduces the run. */
function recordDrawnSeed(seed) {
  if (state.form?.seed === 'random') {
    state.form = { ...state.form, seed };
    $('f-seed').value = String(seed);
  }
  const params = new URLSearchParams(location.search);
  params.set('seed', String(seed));
  history.replaceState(history.state, '', `${location.pathname}?${params}${location.hash}`);
}

/** The parameter count of the form's model (or why it cannot be trained), from the core. */
export function requestDescribe() {
  const d = state.describe;
  if (!state.mode || state.crashed || !state.form) return;
  if (!formValid()) { d.summary = ''; d.error = ''; scheduleRender(); return; }
  oneAtATime(d, requestDescribe, () => client.request({ type: 'describe', config: currentConfig() }, 'described')
    .then((r) => { d.summary = r.summary; d.error = ''; }, (e) => { d.summary = ''; d.error = state.crashed ? '' : e.message; }));
}

// ---------------------------------------------------------------------------------------------
// Controls

/** Starts a new run, continues the current one to its budget (`continueRun`), or trains `more`
 *  epochs past it ("Train more": the current model, trained or uploaded, goes on). */
export function startTraining(continueRun, more = 0) {
  if (more ? !canTrainMore() : continueRun ? !canContinue() : !canStart()) return;
  const config = continueRun ? state.model.config : currentConfig();
  const drawSeed = !continueRun && state.form.seed === 'random';
  state.run = { continueRun, stopping: false, progress: null, window: [], batchesPerEpoch: 0, trainSize: 0, flops: trainFlopsPerSample(config.model) };
  state.phase = 'training';
  // A GPU run first compiles its kernels and uploads the data: seconds on a software adapter.
  const where = state.mode?.backend === 'webgpu' ? ' on the GPU (compiling its kernels, uploading the data)' : '';
  state.status = more ? `Training ${more} more epoch${more === 1 ? '' : 's'}${where}…` : `${continueRun ? 'Continuing' : 'Starting'} the training${where}…`;
  scheduleRender();
  client.send({ type: 'train', config, continueRun, drawSeed, more });
}

/** The number of epochs in the "Train more" field, or null when it is not one. */
function moreEpochs() {
  const text = $('more-epochs').value.trim();
  const n = Number(text);
  return /^\d+$/.test(text) && n >= 1 && n <= 1000 ? n : null;
}

function canStart() {
  return idle() && formValid() && !state.describe.error;
}

function canContinue() {
  const m = state.model;
  return idle() && Boolean(m) && m.history.length < m.config.epochs;
}

/** "Train more" goes on past the budget of a finished run, or from uploaded weights. */
function canTrainMore() {
  const m = state.model;
  return idle() && Boolean(m) && m.history.length >= m.config.epochs;
}

function stop() {
  if (!state.run) return;
  state.run.stopping = true;
  state.status = 'Stopping…';
  client.send({ type: 'stop' });
  scheduleRender();
}

// ---------------------------------------------------------------------------------------------
// The worker's training messages

export function onStarted(d) {
  const prev = state.model;
  const keep = Boolean(state.run?.continueRun && prev);
  const history = keep ? prev.history.slice(0, d.epochsDone) : [];
  // A continued run keeps where it came from (restored, uploaded weights and their file's name).
  state.model = keep
    ? { ...prev, config: d.config, summary: d.summary, history }
    : { config: d.config, summary: d.summary, source: 'trained', history, seedDrawn: Boolean(d.seedDrawn) };
  state.historyVersion++;
  state.run = { ...(state.run ?? { continueRun: false, stopping: false }), progress: null, window: [], batchesPerEpoch: d.batchesPerEpoch, trainSize: d.trainSize, flops: trainFlopsPerSample(d.config.model) };
  state.phase = 'training';
  clearEvaluation();
  if (d.seedDrawn && !keep) recordDrawnSeed(d.config.seed);
  const c = d.config;
  state.status = `${keep ? 'Continuing' : 'Training'} ${presetOf(c)} (${describeRecipe(c)}) on ${int(d.trainSize)} images for ${c.epochs} epochs.`;
  scheduleRender();
}

export function onProgress(d) {
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
  scheduleProgressRender();
}

export function onEpoch({ stats }) {
  if (!state.model) return;
  state.model.history.push(stats);
  state.historyVersion++;
  const n = state.model.history.length;
  state.status = `Epoch ${n} of ${state.model.config.epochs}: loss ${stats.loss.toFixed(4)}, `
    + `train accuracy ${acc(stats.train_accuracy)}, val accuracy ${acc(stats.val_accuracy)}.`;
  throttledRefresh();
  scheduleRender();
}

export function onPaused() {
  if (state.phase !== 'training') return;
  state.phase = 'paused';
  const p = state.run?.progress;
  state.status = `Paused${p ? ` in epoch ${p.epoch + 1}, batch ${p.batch} of ${p.batches}` : ''}.`;
  scheduleRender();
}

export function onResumed() {
  if (state.phase !== 'paused') return;
  state.phase = 'training';
  state.status = 'Training resumed.';
  scheduleRender();
}

export function onDone(d) {
  state.run = state.run && { ...state.run, stopping: false };
  const last = state.model?.history.at(-1);
  state.status = `Done: ${plural(d.epochs, 'epoch')}${last ? `, val accuracy ${acc(last.val_accuracy)}` : ''}.`;
  afterRun('done');
}

export function onStopped(d) {
  state.run = state.run && { ...state.run, stopping: false };
  state.status = `Stopped after ${plural(d.epochs, 'epoch')}.`;
  afterRun('ready');
}

/** `train` failed (the loss diverged): the finished epochs' model stays and is evaluated. */
export function onTrainError(message) {
  state.phase = 'error';
  state.run = null;
  state.status = 'Training stopped with an error.';
  pushError('train', `Training failed: ${message}`);
  if (state.model?.history.length) afterRun();
}

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

// ---------------------------------------------------------------------------------------------
// Rendering

export function renderForm() {
  const busy = state.phase === 'training' || state.phase === 'paused';
  // Until the presets are in from the core, there is no form to edit.
  setProp($('config-fields'), 'disabled', busy || state.crashed || !state.form);
  setProp($('new-seed'), 'disabled', busy || state.crashed || !state.form);
  for (const key of FORM_KEYS) {
    const msg = state.fieldErrors[key] ?? '';
    const input = $(`f-${key}`);
    const err = $(`e-${key}`);
    if (err) { setText(err, msg); setProp(err, 'hidden', !msg); }
    if (msg) input.setAttribute('aria-invalid', 'true'); else input.removeAttribute('aria-invalid');
  }
  setProp($('f-momentum'), 'disabled', state.form?.optimizer !== 'sgd');
  const d = state.describe;
  setText($('param-summary'), formValid() ? d.summary : '');
  setText($('config-error'), d.error ? `This configuration cannot be trained: ${d.error}` : '');
  setProp($('config-error'), 'hidden', !d.error);

  const r = state.run;
  setProp($('start'), 'disabled', !canStart());
  setProp($('pause'), 'disabled', state.phase !== 'training' || !r || r.stopping);
  setProp($('resume'), 'disabled', state.phase !== 'paused' || !r || r.stopping);
  setProp($('stop'), 'disabled', !['training', 'paused'].includes(state.phase) || !r || r.stopping);
  const cont = $('continue');
  const m = state.model;
  setProp(cont, 'hidden', !canContinue());
  if (m) setText(cont, `Continue training to ${m.config.epochs} epochs`);
  const more = moreEpochs();
  setProp($('more'), 'hidden', !canTrainMore());
  setProp($('train-more'), 'disabled', !canTrainMore() || more === null);
  setProp($('more-epochs'), 'disabled', busy);
  if ($('more-epochs').getAttribute('aria-invalid') !== String(more === null)) $('more-epochs').setAttribute('aria-invalid', String(more === null));
  setText($('train-more'), more === null ? 'Train more' : `Train ${more} more epoch${more === 1 ? '' : 's'}`);
}

let logged = { model: null, count: 0, version: -1 };

export function renderTraining() {
  setText($('status'), state.status);
  const m = state.model;
  const history = m?.history ?? [];
  const last = history.at(-1);
  setText(metricEl('epoch'), String(history.length));
  setText($('epochs-total'), m?.config.epochs ? ` / ${m.config.epochs}` : '');
  setText(metricEl('train-accuracy'), last ? acc(last.train_accuracy) : '');
  setText(metricEl('val-accuracy'), last ? acc(last.val_accuracy) : '');
  setText($('metric-loss'), last ? last.loss.toFixed(4) : '');

  // Within the epoch.
  const r = state.run;
  const p = r?.progress;
  const bar = $('batch-progress');
  if (p) {
    const finished = p.batch >= p.batches;
    setProp(bar, 'max', p.batches);
    setProp(bar, 'value', p.batch);
    setText($('batch-label'), finished && state.phase !== 'training'
      ? `Epoch ${p.epoch + 1}: all ${p.batches} batches`
      : `Epoch ${p.epoch + 1}, batch ${p.batch} of ${p.batches}`);
    setText($('running-loss'), `running loss ${p.loss.toFixed(4)}`);
  } else {
    setProp(bar, 'max', 1);
    setProp(bar, 'value', 0);
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
  if (logged.version !== state.historyVersion) {
    logged.version = state.historyVersion;
    renderLog(m, history);
  }
}

function epochLine(s) {
  return `Epoch: ${s.epoch}, Loss: ${s.loss.toFixed(6)}, train accuracy: ${acc(s.train_accuracy)}, `
    + `val accuracy: ${acc(s.val_accuracy)} (${s.seconds.toFixed(2)} s)`;
}

/** The log's head line: "# lecture: 3072-512-2 tanh, nll, SGD lr 0.01, batch 64, seed 123
 *  (drawn at random) (restored from this browser)". */
function logHead(m) {
  const source = { restored: 'restored from this browser', imported: `loaded from ${m.name}`, trained: '' }[m.source];
  const seed = `seed ${m.config.seed}${m.seedDrawn ? ' (drawn at random)' : ''}`;
  return `# ${presetOf(m.config)}: ${describeRecipe(m.config)}, ${seed}${source ? ` (${source})` : ''}`;
}

function renderLog(m, history) {
  const log = $('log');
  const atBottom = log.scrollHeight - log.scrollTop - log.clientHeight < 24;
  if (logged.model !== m || logged.count > history.length) {
    logged = { ...logged, model: m, count: 0 };
    log.textContent = m ? `${logHead(m)}\n${m.summary}\n` : '';
  }
  if (history.length > logged.count) {
    log.append(`${history.slice(logged.count).map(epochLine).join('\n')}\n`);
    logged.count = history.length;
  }
  if (atBottom || logged.count === history.length) log.scrollTop = log.scrollHeight;
}

export function wireTraining() {
  $('config').addEventListener('submit', (e) => { e.preventDefault(); startTraining(false); });
  $('f-preset').addEventListener('change', (e) => onFieldChange('preset', e.target.value));
  for (const key of FORM_KEYS) {
    const input = $(`f-${key}`);
    input.addEventListener(input.tagName === 'SELECT' ? 'change' : 'input', () => onFieldChange(key, input.value));
  }
  $('f-backend').addEventListener('change', (e) => onBackendChange(e.target.value));
  $('new-seed').addEventListener('click', newSeed);
  $('pause').addEventListener('click', () => client.send({ type: 'pause' }));
  $('resume').addEventListener('click', () => client.send({ type: 'resume' }));
  $('stop').addEventListener('click', stop);
  $('continue').addEventListener('click', () => startTraining(true));
  $('train-more').addEventListener('click', () => { const n = moreEpochs(); if (n) startTraining(true, n); });
  $('more-epochs').addEventListener('input', scheduleRender);
  $('more-epochs').addEventListener('keydown', (e) => {
    if (e.key === 'Enter') { e.preventDefault(); const n = moreEpochs(); if (n) startTraining(true, n); }
  });
}
