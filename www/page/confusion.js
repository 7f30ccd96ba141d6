// The confusion panel: both splits evaluated with the current model (`evaluate`), as one
// confusion matrix each (rows: true class, columns: predicted class).

import { $, classes, client, modelLabel, oneAtATime, pushError, scheduleRender, state } from './state.js';
import { el, setProp, setText } from '../shared/dom.js';
import { acc, int } from '../shared/format.js';

/** Evaluates the current model (one request at a time; one more if asked meanwhile). */
export function requestEvaluation() {
  const ev = state.evaluation;
  if (!state.model || state.crashed) return;
  oneAtATime(ev, requestEvaluation, () => {
    const model = modelLabel();
    scheduleRender(); // the button says "Evaluating…"
    return client.request({ type: 'evaluate' }, 'evaluation')
      .then((r) => { ev.result = { train: r.train, test: r.test, model, classes: classes() }; ev.version++; },
        (e) => { if (!state.crashed) pushError('evaluate', `Evaluation failed: ${e.message}`); });
  });
}

/** Forgets the shown evaluation (a new model is coming). */
export function clearEvaluation() {
  state.evaluation.result = null;
  state.evaluation.version++;
}

/** One split's matrix: `stats` is the worker's EvalStats, `names` the class names. */
export function confusionTable(title, stats, names) {
  const correct = stats.confusion.reduce((s, row, i) => s + row[i], 0);
  const head = el('tr', {}, el('td', { class: 'corner' }, 'true ↓ predicted →'),
    ...names.map((n) => el('th', { scope: 'col' }, n)));
  const rows = stats.confusion.map((row, i) => el('tr', {}, el('th', { scope: 'row' }, names[i]),
    ...row.map((v, j) => el('td', { class: i === j ? 'hit' : 'miss' }, int(v)))));
  return el('table', { class: 'matrix' },
    el('caption', {}, `${title}: accuracy `, el('strong', {}, acc(stats.accuracy)), ` (${int(correct)} of ${int(stats.count)}), loss ${stats.loss.toFixed(4)}`),
    el('thead', {}, head), el('tbody', {}, ...rows));
}

let drawn = -1;

export function renderEvaluation() {
  const ev = state.evaluation;
  setProp($('evaluate'), 'disabled', !state.model || ev.busy || state.crashed);
  setText($('evaluate'), ev.busy ? 'Evaluating…' : 'Evaluate now');
  const res = ev.result;
  setText($('eval-note'), res ? `The model ${res.model}.` : state.model ? '' : 'No model yet.');
  if (drawn === ev.version) return;
  drawn = ev.version;
  $('confusion').replaceChildren(...(res ? [confusionTable('Test', res.test, res.classes), confusionTable('Train', res.train, res.classes)] : []));
}

export function wireEvaluation() {
  $('evaluate').addEventListener('click', requestEvaluation);
}
