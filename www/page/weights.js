// The weights panel: download the model as safetensors (`export`), upload a safetensors file in
// its place (`import`, refused by its size before it is read when no model could be that large),
// and forget the model saved in this browser (`forget`).

import { $, classes, client, currentConfig, formValid, idle, render, scheduleRender, state } from './state.js';
import { configFromForm, defaultForm, describeRecipe, formFromConfig, MAX_WEIGHTS_BYTES } from './config.js';
import { el, setProp } from '../shared/dom.js';
import { megabytes as mb } from '../shared/format.js';
import { requestEvaluation } from './confusion.js';
import { refreshGallery } from './gallery.js';
import { refreshPicture } from './picture.js';

async function downloadWeights() {
  const w = state.weights;
  if (!state.model || w.busy) return;
  w.busy = true;
  w.message = '';
  scheduleRender();
  try {
    const r = await client.request({ type: 'export' }, 'weights');
    const preset = formFromConfig(r.config, state.presets).preset;
    const name = `skywatch-${preset}-epoch${state.model?.history.length ?? 0}.safetensors`;
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
      : state.model?.config ?? configFromForm(defaultForm(state.presets), classes().length);
    const r = await client.request({ type: 'import', bytes, config }, 'imported', [bytes]);
    state.model = { config: r.config, summary: r.summary, source: 'imported', history: [], seedDrawn: false, name: file.name };
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

export function renderWeights() {
  const w = state.weights;
  setProp($('download'), 'disabled', !state.model || w.busy || state.crashed);
  setProp($('upload'), 'disabled', !idle() || w.busy);
  setProp($('forget'), 'disabled', !state.mode || state.crashed);
  const box = $('weights-message');
  const key = `${w.message}|${w.link?.href ?? ''}`;
  if (box.dataset.key === key) return;
  box.dataset.key = key;
  if (w.message || !w.link) box.replaceChildren(w.message);
  else {
    box.replaceChildren('Saved ', el('a', { href: w.link.href, download: w.link.name }, w.link.name), ` (${mb(w.link.size)}).`);
  }
}

export function wireWeights() {
  const input = $('weights-input');
  $('download').addEventListener('click', downloadWeights);
  $('upload').addEventListener('click', () => input.click());
  input.addEventListener('change', () => {
    const [file] = input.files;
    input.value = '';
    if (file) uploadWeights(file);
  });
  $('forget').addEventListener('click', forgetSaved);
}
