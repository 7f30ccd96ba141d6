// The hidden-units panel: every first-layer unit's 3072 input weights as a 32x32 colour tile, in one
// canvas (shared/tiles.js), updated once per epoch while the panel is open; a scrubber back through
// the epochs the core keeps (`units {epoch}`); a toggle between the weights `W` and their change
// since the start of the run `W - W0` (offered first while the change is smaller than the start,
// when `W` is mostly its random start; not available for a run from a file's weights, whose start
// is unknown); and for a clicked unit its outgoing weights (the
// class it votes for) and its 8 most and 8 most negatively activating training images (`unit`,
// which needs the scan of the training set: asked for only when training is paused or over).
//
// Automation hook: `[data-view="hidden-units"]` has `data-units` (the count), `data-epoch` (the
// epochs the shown weights had: 0 is before training), `data-order` (`unit` or `votes`),
// `data-mode` (`change` or `weights`: what the tiles show), `data-change` (`available` or
// `unavailable`), `data-change-relative` (`||W - W0|| / ||W0||`, when available), and the
// atlas layout (`data-columns`, `data-pitch-x`, `data-pitch-y`: tile `p` in display order starts
// at pixel `((p % columns) * pitchX, floor(p / columns) * pitchY)` of its canvas).

import { changeFirst } from '../shared/tiles.js';
import { $, classes, client, isConv, oneAtATime, pushError, scheduleRender, state } from './state.js';
import { el, setProp, setStyle, setText } from '../shared/dom.js';
import { int } from '../shared/format.js';
import { PITCH_X, PITCH_Y, TILE, classColor, drawAtlas, putRgba, rgbaImage, voteLeans } from '../shared/tiles.js';

const COLUMNS = 32;

const view = {
  busy: false,
  again: false,
  asked: -1,           // historyVersion of the last automatic request
  result: null,        // the `units` reply shown
  version: 0,
  follow: true,        // show the latest snapshot (else `epoch`, chosen with the scrubber)
  epoch: null,
  order: 'unit',       // display order: 'unit' (number) or 'votes' (strongest voters first)
  mode: null,          // 'change' or 'weights' once the user chose; null: the one offered first
  selected: null,      // the clicked unit
  detail: null,        // the `unit` reply for it
  detailKey: '',       // `${unit}|${historyVersion}` it was asked for
  detailBusy: false,
  detailError: '',
};

const training = () => state.phase === 'training';

/** Asks the worker for the tiles: the latest snapshot, or the scrubber's epoch. */
function requestUnits() {
  if (!state.model || state.crashed) return;
  oneAtATime(view, requestUnits, () => client.request({ type: 'units', epoch: view.follow ? null : view.epoch }, 'units')
    .then((r) => { view.result = r; view.version++; },
      (e) => { if (!state.crashed) pushError('units', `The hidden units could not be shown: ${e.message}`); }));
}

function requestDetail() {
  const unit = view.selected;
  const key = `${unit}|${state.historyVersion}`;
  view.detailKey = key;
  view.detailBusy = true;
  view.detailError = '';
  scheduleRender();
  client.request({ type: 'unit', unit }, 'unit')
    .then((r) => {
      if (r.deferred) view.detailKey = ''; // training went on meanwhile: asked again when it stops
      else view.detail = r;
    }, (e) => { view.detailError = state.crashed ? '' : e.message; })
    .finally(() => { view.detailBusy = false; scheduleRender(); });
}

/** The units in display order (kept per result and order: renders come many times a second). */
let ordered = { r: null, order: '', units: [] };
function displayOrder(r) {
  if (ordered.r !== r || ordered.order !== view.order) {
    ordered = { r, order: view.order, units: view.order === 'votes' ? Array.from(r.order) : Array.from({ length: r.units }, (_, j) => j) };
  }
  return ordered.units;
}

/** What the tiles show: the user's choice, else the clearer picture; the weights when the change
 *  is not known. */
const modeOf = (r) => (!r.change ? 'weights' : view.mode ?? (changeFirst(r) ? 'change' : 'weights'));

let drawn = { version: -1, order: '', mode: '' };

export function renderUnits() {
  const open = $('units-details').open;
  const box = $('units-view');
  if (!state.model || state.crashed) {
    setText($('units-note'), state.crashed ? '' : 'Train a model (or upload weights) to see its hidden units.');
    if (view.result && !state.model) { view.result = null; view.version++; }
  }
  // One request per change of the model's history (an epoch, a new run, an upload), while open.
  if (open && state.model && !state.crashed && view.asked !== state.historyVersion) {
    view.asked = state.historyVersion;
    requestUnits();
  }
  const r = view.result;
  setProp(box, 'hidden', !r);
  // A convolutional model's first layer is its filters: the tiles show them, and say so.
  setProp($('units-help'), 'hidden', isConv());
  setProp($('units-conv-help'), 'hidden', !isConv());
  const mode = r ? modeOf(r) : '';
  if (!r) setText($('units-mode-note'), '');
  if (r && (drawn.version !== view.version || drawn.order !== view.order || drawn.mode !== mode)) {
    drawn = { version: view.version, order: view.order, mode };
    const order = displayOrder(r);
    drawAtlas($('units-atlas'), mode === 'change' ? { ...r, tiles: r.change } : r, order, COLUMNS);
    Object.assign(box.dataset, {
      units: String(r.units), epoch: String(r.epoch), order: view.order, columns: String(COLUMNS),
      pitchX: String(PITCH_X), pitchY: String(PITCH_Y), votesExact: String(r.votesExact),
      mode, change: r.change ? 'available' : 'unavailable', changeRelative: r.change ? String(r.changeRelative) : '',
    });
    $('units-mode').value = mode;
    setText($('units-mode-note'), modeNote(r, mode));
    const slider = $('units-epoch');
    slider.max = String(r.epochs.length - 1);
    slider.value = String(Math.max(0, r.epochs.indexOf(r.epoch)));
    const label = r.epoch === 0 ? 'before training' : `after epoch ${r.epoch}`;
    slider.setAttribute('aria-valuetext', label);
    setText($('units-epoch-label'), `${label}${view.follow ? ' (latest)' : ''}`);
    setText($('units-note'), `${int(r.units)} units; ${r.epochs.length} snapshots kept (epochs ${r.epochs.join(', ')}), `
      + 'spaced evenly in log(1 + epoch) within 48 MiB. Click a unit for its votes and the training images that excite it most.');
    $('units-atlas').setAttribute('aria-label', `${int(r.units)} hidden units as 32 by 32 pictures, ${label}; `
      + 'use the arrow keys to choose one');
  }
  setProp($('units-epoch'), 'disabled', !r || r.epochs.length < 2 || state.crashed);
  setProp($('units-mode'), 'disabled', !r?.change || state.crashed);
  renderCursor(r);
  renderDetail(open, r);
}

/** What the shown tiles are, in words (the change's size, or why it is not available). */
function modeNote(r, mode) {
  if (!r.change) {
    return 'The change since the start is not available for this run: it started from weights loaded from a file, '
      + 'whose starting point is not known. The tiles show the weights.';
  }
  const size = `the weights have moved ${(100 * r.changeRelative).toPrecision(2)}% of their starting size (||W − W0|| / ||W0||)`;
  if (r.epoch === 0 && mode === 'change') return 'Before training nothing has changed yet: every tile is mid-grey. Show the weights to see the random start.';
  return mode === 'change'
    ? `Each tile shows what training changed (W − W0), scaled on its own; ${size}.`
    : `Each tile shows the weights W, scaled on its own; ${size}${changeFirst(r) ? ', so they are still mostly their random start' : ''}.`;
}

function renderCursor(r) {
  const cursor = $('units-cursor');
  const canvas = $('units-atlas');
  const p = r && view.selected != null ? displayOrder(r).indexOf(view.selected) : -1;
  setProp(cursor, 'hidden', p < 0);
  if (p < 0) return;
  // Percentages of the canvas, which fills its wrapper: no layout read needed.
  const x = (p % COLUMNS) * PITCH_X;
  const y = Math.floor(p / COLUMNS) * PITCH_Y;
  setStyle(cursor, 'left', `${(100 * x) / canvas.width}%`);
  setStyle(cursor, 'top', `${(100 * y) / canvas.height}%`);
  setStyle(cursor, 'width', `${(100 * TILE) / canvas.width}%`);
  setStyle(cursor, 'height', `${(100 * TILE) / canvas.height}%`);
}

let detailDrawn = { tile: '', lists: null };

function renderDetail(open, r) {
  const box = $('unit-detail');
  const u = view.selected;
  setProp(box, 'hidden', !r || u == null || u >= r.units);
  if (box.hidden) return;
  // The top images need the scan: asked for when training is paused or over, once per model.
  if (open && !isConv() && !training() && !view.detailBusy && view.detailKey !== `${u}|${state.historyVersion}` && !state.crashed) requestDetail();
  const d = view.detail?.unit === u ? view.detail : null;
  const names = classes();
  if (detailDrawn.tile !== `${view.version}|${u}|${drawn.mode}`) {
    detailDrawn.tile = `${view.version}|${u}|${drawn.mode}`;
    box.dataset.unit = String(u);
    const change = drawn.mode === 'change';
    putRgba($('unit-big'), change ? r.change : r.tiles, u * 4096);
    const { cls, strength } = voteLeans(r.votes, r.units, r.classes);
    const rank = Array.from(r.order).indexOf(u);
    setText($('unit-title'), `Unit ${u}`);
    setText($('unit-scale'), `${r.epoch === 0 ? 'Before training' : `After epoch ${r.epoch}`}; its tile's brightest colour is `
      + `${change ? `a change of ${r.changeScale[u].toPrecision(3)} (max |w − w0|)` : `a weight of ${r.scale[u].toPrecision(3)} (max |w|)`}. Rank ${rank + 1} of ${r.units} by vote strength (${strength[u].toPrecision(3)}).`);
    const votes = names.map((name, c) => r.votes[c * r.units + u]);
    const most = Math.max(1e-12, ...votes.map(Math.abs));
    $('unit-votes').replaceChildren(...votes.map((v, c) => {
      const fill = el('div', { class: 'fill' });
      fill.style.width = `${(50 * Math.abs(v)) / most}%`;
      fill.style.marginLeft = v < 0 ? `${50 - (50 * Math.abs(v)) / most}%` : '50%';
      fill.style.background = classColor(c);
      return el('li', { class: c === cls[u] ? 'bar-row best' : 'bar-row', 'data-vote': String(v) },
        el('span', { class: 'name' }, names[c]),
        el('div', { class: 'bar signed', 'aria-hidden': 'true' }, fill),
        el('span', { class: 'value' }, `${v >= 0 ? '+' : '−'}${Math.abs(v).toFixed(3)}`));
    }));
    setText($('unit-lean'), isConv()
      ? 'A filter has no vote of its own: pooling and the later layers stand between it and the classes.'
      : `It pushes towards ${names[cls[u]]}${r.votesExact ? '' : ' (through the later layers as if they were linear: the product of their weights)'}.`);
  }

  const now = state.model?.history.length ?? 0;
  let note = '';
  if (isConv()) note = `Filter ${u} of the first convolution: its 3x3 weights on the red, green and blue planes, enlarged. The same filter slides over every position of the picture, so it has no single most exciting training image; the ranking of training images is shown for fully connected models.`;
  else if (view.detailError) note = `The top images could not be found: ${view.detailError}`;
  else if (view.detailBusy) note = 'Finding the training images that excite this unit most (one pass over the training set, a few seconds the first time after the weights change)…';
  else if (!d && training()) note = 'Its most activating training images are found when training is paused or over.';
  else if (d && training() && d.epoch !== now) note = `Training images for the weights after epoch ${d.epoch}; updated when training is paused or over.`;
  else if (d) note = `Ranked by the unit's input z = w·x + b over the run's training images, with the weights after epoch ${d.epoch}.`;
  setText($('unit-note'), note);
  if (detailDrawn.lists === d) return;
  detailDrawn.lists = d;
  const list = (idx, values, labels, offset) => Array.from(idx, (index, k) => el('li', { class: 'thumb', 'data-index': String(index), 'data-value': String(values[k]) },
    rgbaImage(d.images, (offset + k) * 4096, `train:${index}`),
    el('span', { class: 'caption' }, `${names[labels[k]]}`, el('span', { class: 'p' }, `z ${values[k] >= 0 ? '+' : '−'}${Math.abs(values[k]).toFixed(2)}`))));
  $('unit-top').replaceChildren(...(d && !isConv() ? list(d.top, d.topValues, d.topLabels, 0) : []));
  $('unit-bottom').replaceChildren(...(d && !isConv() ? list(d.bottom, d.bottomValues, d.bottomLabels, d.top.length) : []));
}

/** Selects the unit at display position `p`. */
function select(p) {
  const r = view.result;
  if (!r) return;
  const order = displayOrder(r);
  view.selected = order[Math.max(0, Math.min(order.length - 1, p))];
  scheduleRender();
}

export function wireUnits() {
  const canvas = $('units-atlas');
  canvas.addEventListener('click', (e) => {
    const rect = canvas.getBoundingClientRect();
    const x = ((e.clientX - rect.left) * canvas.width) / rect.width;
    const y = ((e.clientY - rect.top) * canvas.height) / rect.height;
    const col = Math.floor(x / PITCH_X);
    const row = Math.floor(y / PITCH_Y);
    if (col >= COLUMNS || x < 0 || y < 0) return;
    select(row * COLUMNS + col);
    canvas.focus();
  });
  canvas.addEventListener('keydown', (e) => {
    const r = view.result;
    if (!r) return;
    const p = view.selected == null ? -1 : displayOrder(r).indexOf(view.selected);
    const step = { ArrowLeft: -1, ArrowRight: 1, ArrowUp: -COLUMNS, ArrowDown: COLUMNS, Home: -Infinity, End: Infinity }[e.key];
    if (step === undefined) return;
    e.preventDefault();
    select(p < 0 ? 0 : Math.max(0, Math.min(r.units - 1, p + step)));
  });
  $('units-epoch').addEventListener('input', (e) => {
    const r = view.result;
    if (!r) return;
    const i = Number(e.target.value);
    view.follow = i >= r.epochs.length - 1;
    view.epoch = r.epochs[i];
    requestUnits();
  });
  $('units-order').addEventListener('change', (e) => { view.order = e.target.value; scheduleRender(); });
  $('units-mode').addEventListener('change', (e) => { view.mode = e.target.value; scheduleRender(); });
  $('units-details').addEventListener('toggle', scheduleRender);
}
