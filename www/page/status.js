// The page's frame around the panels: the mode in the header, the error box (with Restart or Try
// again), the data's download progress, the restored model, and the notice about values of the
// address that were not understood.

import { $, metricEl, state } from './state.js';
import { el, setProp, setText } from '../shared/dom.js';
import { int, megabytes as mb, plural } from '../shared/format.js';

export function renderHeader() {
  setText(metricEl('mode'), state.mode?.line ?? '');
  setText(metricEl('backend'), state.mode?.backend ?? '');
  document.querySelector('.mode').classList.toggle('threaded', (state.mode?.threads ?? 1) > 1);
  document.querySelector('.mode').classList.toggle('gpu', state.mode?.backend === 'webgpu');
  document.querySelector('.mode').classList.toggle('failed', !state.mode && state.phase === 'error');
}

let errorsKey = '';

export function renderErrors() {
  const key = `${state.errors.length}:${state.errors.map((e) => e.message).join('|')}:${state.crashed}:${state.startFailed}`;
  if (errorsKey === key) return;
  errorsKey = key;
  $('error-list').replaceChildren(...state.errors.map((e) => el('li', {}, e.message)));
  setProp($('error-actions'), 'hidden', state.errors.length === 0);
  const restartable = state.crashed || state.startFailed || state.errors.some((e) => e.where === 'watchdog');
  setProp($('restart'), 'hidden', !restartable);
  $('restart').textContent = state.crashed ? 'Restart the worker' : 'Try again';
  setProp($('dismiss-errors'), 'hidden', restartable);
}

let problemsShown = false;

export function renderData() {
  const files = Object.values(state.data.files);
  const loaded = files.reduce((s, f) => s + f.loaded, 0);
  const total = files.reduce((s, f) => s + f.total, 0);
  const fromCache = files.length > 0 && files.every((f) => f.fromCache);
  const bar = $('data-progress');
  const ready = state.data.ready;
  let text;
  if (ready) {
    setProp(bar, 'max', 1);
    setProp(bar, 'value', 1);
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
  setText(metricEl('restored'), r?.found ? 'yes' : 'no');
  let rt = '';
  if (r?.found) rt = ` (${plural(r.epochs, 'epoch')}, from your last visit)`;
  else if (r?.discarded) rt = ` (a saved model was unreadable and discarded: ${r.discarded})`;
  setText($('restored-text'), rt);

  // Once the form is known (the presets are in), the address's problems are too.
  setProp($('url-problems-wait'), 'hidden', !state.autostartHeld);
  if (!problemsShown && state.form) {
    problemsShown = true;
    const box = $('url-problems');
    setProp(box, 'hidden', state.urlProblems.length === 0);
    // Shown as text (never markup), a long value cut short.
    const clip = (v) => (v.length > 60 ? `${v.slice(0, 60)}…` : v);
    $('url-problem-list').replaceChildren(...state.urlProblems.map((p) => el('li', {},
      el('code', {}, `${p.param}=${clip(p.value)}`), `: ${p.message}; using ${p.fallback === '' ? 'the default' : p.fallback}.`)));
  }
}
