// The hard-examples panel: from the losses training's own forward pass recorded for every training
// image (no second pass), the images the model gets most wrong, those it learned and then forgot,
// and the ambiguous ones (true-class probability nearest 0.5). Asked for (`hard`) once per epoch
// while the panel is open; a click explains an image ("why this answer?").
//
// Automation hook: `[data-view="hard-examples"]` (`data-epochs`: epochs recorded) holds the items,
// `li[data-list][data-index][data-label][data-loss][data-probability][data-forgetting]`, with
// `data-list` one of `most-wrong`, `forgotten`, `ambiguous`.

import { $, client, oneAtATime, pushError, refreshDue, scheduleRender, state } from './state.js';
import { el, setText } from '../shared/dom.js';
import { int, pct1 } from '../shared/format.js';
import { rgbaImage } from '../shared/tiles.js';
import { explainImage } from './why.js';

/** Images per list. */
const PER_LIST = 12;
/** Epochs of an image's record shown as marks (the latest ones). */
const MARKS = 24;

const view = { busy: false, again: false, asked: -1, askedAt: -Infinity, timer: 0, result: null, version: 0 };

function requestHard() {
  if (!state.model || state.crashed) return;
  oneAtATime(view, requestHard, () => client.request({ type: 'hard', n: PER_LIST }, 'hard')
    .then((r) => { view.result = r; view.version++; },
      (e) => { if (!state.crashed) pushError('hard', `The hard examples could not be shown: ${e.message}`); }));
}

/** "✓✓✗✓" for the last MARKS epochs of a record ("1" right, "0" wrong, "." not presented). */
const marks = (history) => {
  const h = history.slice(-MARKS);
  return `${history.length > MARKS ? '…' : ''}${[...h].map((c) => ({ 1: '✓', 0: '✗' }[c] ?? '·')).join('')}`;
};

let drawn = -1;

export function renderHard() {
  const open = $('hard-details').open;
  // After every epoch; while training at most every REFRESH_MS.
  if (open && state.model && !state.crashed && view.asked !== state.historyVersion && refreshDue(view)) {
    view.asked = state.historyVersion;
    requestHard();
  }
  if (!state.model && view.result) { view.result = null; view.version++; }
  if (drawn === view.version) return;
  drawn = view.version;
  const r = view.result;
  const box = $('hard-view');
  box.dataset.epochs = String(r?.epochs.length ?? 0);
  if (!r || r.epochs.length === 0) {
    setText($('hard-note'), state.model
      ? 'Nothing recorded yet: the record fills as this session trains (it starts empty after a reload or an upload).'
      : 'Train a model to see the images it finds hardest.');
    for (const id of ['hard-most-wrong', 'hard-forgotten', 'hard-ambiguous']) $(id).replaceChildren();
    return;
  }
  const first = r.epochs[0];
  const last = r.epochs[r.epochs.length - 1];
  setText($('hard-note'), `From the losses of epochs ${first === last ? first : `${first}-${last}`} of this session, `
    + `as training's forward pass computed them (each image with the weights of the moment its batch was trained): `
    + `${int(r.images)} images, ${int(r.forgettable)} of them forgotten at least once. Click one to see why the model answers as it does.`);
  const names = r.classes;
  const items = (list, name, value) => list.map((x) => {
    const label = `Training image ${x.index}, a ${names[x.label]}: loss ${x.loss.toFixed(3)}, p(${names[x.label]}) ${pct1(x.probability)}, `
      + `${x.correct ? 'right' : 'wrong'} at its last presentation, forgotten ${x.forgetting_events} times`;
    return el('li', {
      class: `hard-item ${x.correct ? 'right' : 'wrong'}`, tabindex: '0', title: label, 'aria-label': label,
      'data-list': name, 'data-index': String(x.index), 'data-label': String(x.label), 'data-loss': String(x.loss),
      'data-probability': String(x.probability), 'data-forgetting': String(x.forgetting_events),
    }, rgbaImage(r.thumbs, x.thumb * 4096, `train:${x.index}`),
    el('span', { class: 'caption' }, el('strong', {}, names[x.label]), ` ${value(x)}`,
      el('span', { class: 'marks', 'aria-hidden': 'true' }, marks(x.history))));
  });
  $('hard-most-wrong').replaceChildren(...items(r.mostWrong, 'most-wrong', (x) => `loss ${x.loss.toFixed(2)}`));
  $('hard-forgotten').replaceChildren(...items(r.forgotten, 'forgotten', (x) => `forgotten ${x.forgetting_events}×`));
  // Two decimals: near 50% one would show them all alike.
  $('hard-ambiguous').replaceChildren(...items(r.ambiguous, 'ambiguous', (x) => `p ${(100 * x.probability).toFixed(2)}%`));
}

export function wireHard() {
  $('hard-details').addEventListener('toggle', scheduleRender);
  const pick = (e) => {
    const item = e.target.closest?.('li[data-index]');
    if (item) explainImage('train', Number(item.dataset.index));
  };
  $('hard-view').addEventListener('click', pick);
  $('hard-view').addEventListener('keydown', (e) => { if (e.key === 'Enter' || e.key === ' ') { e.preventDefault(); pick(e); } });
}
