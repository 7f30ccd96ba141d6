// "Why this answer?": for the user's picture (the "bird or airplane?" panel) or any test image of the
// gallery or training image of the hard-examples view, the saliency map over the 32x32 input (the
// gradient of the chosen class's log-probability with respect to the pixels, `why`), the
// probability bars, and the 8 nearest training images in the first hidden layer's space (for the
// convolutional model its first fully connected layer, fc1; `neighbours`, which needs the scan of
// the training set: asked for only when training is paused or over). Its shift control
// (shift.js) moves the picture: the picture as the model then sees it, the bars, the answer and
// the map (of the class chosen) follow.
//
// Automation hooks: `[data-view="saliency"]` (shown once a picture has been explained) with
// `data-class` (the class explained), `data-magnitude-max` (the map's largest value, exact),
// `data-subject` (`picture`, or `test:INDEX` / `train:INDEX`) and `data-shift` ("dx,dy" of the
// picture shown, "0,0" unmoved); `#why-bars`, its probability bars (shared/prediction.js); its
// `#why-map` canvas holds the map as alpha = round(255 * magnitude / magnitude_max);
// `[data-view="neighbours"]` holds the neighbours (`li[data-index][data-label][data-distance]`).

import { $, classes, client, isConv, pushError, refreshDue, scheduleRender, state } from './state.js';
import { el, setProp, setText } from '../shared/dom.js';
import { pct1 } from '../shared/format.js';
import { putRgba, rgbaImage } from '../shared/tiles.js';
import { renderBars } from '../shared/prediction.js';
import { shiftControl, shiftWords } from './shift.js';

/** The map's colour (the alpha channel carries its value). */
const MAP_RGB = [255, 214, 0];

const view = {
  subject: null,       // {kind: 'picture', name, image (32x32 RGBA)} | {kind: 'image', split, index}
  cls: null,           // the class explained (null: the predicted one)
  result: null,        // the `why` reply
  version: 0,
  busy: false,
  key: '',             // subject/class/historyVersion the result was asked for
  askedAt: 0,
  neighbours: null,    // the `neighbours` reply
  neighboursKey: '',
  neighboursBusy: false,
  error: '',
  pictureSeen: -1,     // state.picture.version taken over
  timer: 0,            // a render due when the next refresh is allowed
};

const subjectKey = (s) => (s.kind === 'picture' ? `picture:${s.name}` : `${s.split}:${s.index}`);
const training = () => state.phase === 'training';

function ask() {
  const s = view.subject;
  return s.kind === 'picture'
    ? { rgba: Uint8Array.from(s.image).buffer, width: 32, height: 32 }
    : { split: s.split, index: s.index };
}

function requestWhy() {
  const s = view.subject;
  const key = `${subjectKey(s)}|${view.cls}|${state.historyVersion}`;
  view.key = key;
  view.busy = true;
  view.askedAt = performance.now();
  const msg = { type: 'why', ...ask(), class: view.cls };
  client.request(msg, 'why', msg.rgba ? [msg.rgba] : [])
    .then((r) => { if (view.subject === s) { view.result = { ...r, subject: s }; view.version++; view.error = ''; } },
      (e) => { view.error = state.crashed ? '' : `Could not explain it: ${e.message}`; })
    .finally(() => { view.busy = false; scheduleRender(); });
}

function requestNeighbours() {
  const s = view.subject;
  view.neighboursKey = `${subjectKey(s)}|${state.historyVersion}`;
  view.neighboursBusy = true;
  const msg = { type: 'neighbours', ...ask() };
  client.request(msg, 'neighbours', msg.rgba ? [msg.rgba] : [])
    .then((r) => {
      if (r.deferred) view.neighboursKey = '';
      else if (view.subject === s) view.neighbours = { ...r, subject: s };
    }, (e) => { if (!state.crashed) pushError('neighbours', `The nearest training images could not be found: ${e.message}`); })
    .finally(() => { view.neighboursBusy = false; scheduleRender(); });
}

/** Explains image `index` of `split` (a gallery tile, a hard example) and scrolls to the view. */
export function explainImage(split, index) {
  view.subject = { kind: 'image', split, index };
  view.cls = null;
  view.result = null;
  view.neighbours = null;
  view.version++;
  $('why-details').open = true;
  scheduleRender();
  $('h-why').scrollIntoView({ block: 'start', behavior: 'smooth' });
}

let drawn = { key: '' };
let shift = null;

export function renderWhy() {
  const pic = state.picture;
  // A newly classified picture of the user's becomes the subject.
  if (pic.version !== view.pictureSeen) {
    view.pictureSeen = pic.version;
    const r = pic.result;
    const current = view.subject;
    const same = current?.kind === 'picture' && current.name === r?.name && r.image.every((b, i) => b === current.image[i]);
    if (r && !same) {
      view.subject = { kind: 'picture', name: r.name, image: Uint8Array.from(r.image) };
      view.cls = null;
      view.neighbours = null;
    }
  }
  // No model (a restart, a forgotten run): its map and neighbours go; the subject stays, explained
  // again by the next model.
  if (!state.model && (view.result || view.neighbours)) {
    Object.assign(view, { result: null, neighbours: null, key: '', neighboursKey: '' });
    view.version++;
  }
  const open = $('why-details').open;
  const s = view.subject;
  if (s && open && state.model && !state.crashed && !view.busy) {
    const key = `${subjectKey(s)}|${view.cls}|${state.historyVersion}`;
    const subjectChanged = !view.key.startsWith(`${subjectKey(s)}|${view.cls}|`);
    // A new subject or class at once; a newer model at most every REFRESH_MS while training.
    if (view.key !== key && (subjectChanged || refreshDue(view))) requestWhy();
  }
  if (s && open && state.model && !state.crashed && !training() && !view.neighboursBusy
    && view.neighboursKey !== `${subjectKey(s)}|${state.historyVersion}`) requestNeighbours();
  const moved = shift.render(s && view.result ? { key: subjectKey(s), value: s } : null, view.cls);
  renderSaliency(moved);
  renderNeighbours();
}

/** The saliency view of `view.result`, or of `moved` (the shift control's reply) when the picture
 *  is moved: the moved picture, its map, bars and answer. */
function renderSaliency(moved) {
  const box = $('why-view');
  const base = view.result;
  const r = moved ? { ...moved, subject: base.subject, label: base.label } : base;
  setText($('why-error'), view.error);
  setText($('why-empty'), r ? '' : 'Classify a picture above, or click a test image or a hard example, to see what the answer depends on.');
  setProp(box, 'hidden', !r);
  const key = `${view.version}|${view.cls}|${moved ? moved.key : ''}`;
  if (!r || drawn.key === key) return;
  drawn.key = key;
  const names = r.classes;
  const s = r.subject;
  putRgba($('why-image'), r.image);
  // The map: one colour, alpha = magnitude / max (the overlay's opacity is the slider's).
  const map = new Uint8ClampedArray(4096);
  for (let i = 0; i < 1024; i++) {
    map.set(MAP_RGB, 4 * i);
    map[4 * i + 3] = r.magnitudeMax > 0 ? Math.round((255 * r.magnitude[i]) / r.magnitudeMax) : 0;
  }
  $('why-map').getContext('2d').putImageData(new ImageData(map, 32, 32), 0, 0);
  Object.assign(box.dataset, {
    class: String(r.class), magnitudeMax: String(r.magnitudeMax),
    subject: s.kind === 'picture' ? 'picture' : `${s.split}:${s.index}`,
    shift: moved ? `${moved.dx},${moved.dy}` : '0,0',
  });
  const best = r.probabilities.indexOf(Math.max(...r.probabilities));
  const what = s.kind === 'picture' ? s.name
    : `${s.split === 'test' ? 'Test' : 'Training'} image ${s.index}, a ${names[r.label]}`;
  setText($('why-subject'), moved ? `${what}, ${shiftWords(moved.dx, moved.dy)}` : what);
  setText($('why-answer'), `The model says ${names[best]} (${pct1(r.probabilities[best])}); `
    + `${r.epoch ? `weights after epoch ${r.epoch}` : 'weights before any training here'}.`);
  renderBars($('why-bars'), r.probabilities, names);
  // The radio buttons are rebuilt only for other classes (focus stays on them across refreshes).
  const radios = $('why-class');
  if (radios.dataset.names !== names.join(',')) {
    radios.dataset.names = names.join(',');
    radios.replaceChildren(...names.map((name, c) => el('label', { class: 'check' },
      el('input', { type: 'radio', name: 'why-class', value: String(c) }), ` ${name}`)));
  }
  // The class asked for, once the user picked one (the map follows when its answer arrives).
  const chosen = view.cls ?? r.class;
  radios.querySelectorAll('input').forEach((input, c) => setProp(input, 'checked', c === chosen));
  setText($('why-legend'), `Yellow marks the pixels whose change would move log p(${names[r.class]}) the most: `
    + 'the gradient\'s largest absolute value over the three colour channels, relative to this picture\'s largest.');
}

function renderNeighbours() {
  const n = view.neighbours;
  const s = view.subject;
  let note = '';
  if (!s) note = '';
  else if (view.neighboursBusy) note = 'Finding the nearest training images (one pass over the training set, a few seconds the first time after the weights change)…';
  else if (!n && training()) note = 'The nearest training images are found when training is paused or over.';
  else if (n) note = `Nearest in ${isConv() ? 'the space of fc1, the first fully connected layer after the convolutions (its 32 activations' : 'the first hidden layer\'s space (its activations'}, Euclidean distance d), with the weights after epoch ${n.epoch}.`;
  setText($('neighbours-note'), note);
  const key = n ? `${n.epoch}|${subjectKey(n.subject)}` : '';
  const list = $('why-neighbours');
  if (list.dataset.key === key) return;
  list.dataset.key = key;
  const names = classes();
  list.replaceChildren(...(n ? Array.from(n.indices, (index, k) => el('li', {
    class: 'thumb', 'data-index': String(index), 'data-label': String(n.labels[k]), 'data-distance': String(n.distances[k]),
    title: `Training image ${index}, a ${names[n.labels[k]]}: distance ${n.distances[k].toFixed(3)}`,
  }, rgbaImage(n.images, k * 4096, `train:${index}`), el('span', { class: 'caption' }, names[n.labels[k]], el('span', { class: 'p' }, `d ${n.distances[k].toFixed(2)}`)))) : []));
}

export function wireWhy() {
  shift = shiftControl({ panel: 'why', box: $('why-shift'), target: $('why-picture') });
  $('why-class').addEventListener('change', (e) => {
    view.cls = Number(e.target.value);
    scheduleRender();
  });
  const map = $('why-map');
  const opacity = () => { map.style.opacity = $('why-show').checked ? String(Number($('why-opacity').value) / 100) : '0'; };
  $('why-show').addEventListener('change', opacity);
  $('why-opacity').addEventListener('input', opacity);
  opacity();
  $('why-details').addEventListener('toggle', scheduleRender);
  // A test image of the gallery: click (or Enter) to explain it.
  const grid = $('gallery-grid');
  const pick = (e) => {
    const tile = e.target.closest?.('[data-index]');
    if (tile && grid.contains(tile)) explainImage('test', Number(tile.dataset.index));
  };
  grid.addEventListener('click', pick);
  grid.addEventListener('keydown', (e) => { if (e.key === 'Enter' || e.key === ' ') { e.preventDefault(); pick(e); } });
}
