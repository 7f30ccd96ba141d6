// "Move the picture": the lecture's last slide, shown. The picture of "Bird or airplane?" or of "Why
// this answer?" moved by that panel's shift control (shift.js), as the model sees it, and what the
// first layer sees, for the panel moved last: the MLP's hidden units (after tanh) for the original
// and the moved picture, or the convolutions' feature maps (conv1, 16 at 32x32, and conv2, 8 at
// 16x16), with their cosine similarity (`shift`, worker/translation.js). Below, the translation
// test of the model (posted by the worker when a run ends, `translation-progress` while it runs):
// accuracy against shift, beside the PyTorch reference curves (www/reference/translation.json).
//
// Automation hooks: `[data-view="shift-response"]` with `data-similarity`, `data-panel` (the
// panel it follows) and `data-shift` ("dx,dy"); `[data-view="translation"]` with `data-shifts`
// and `data-accuracies` (JSON arrays, accuracies as fractions) for the current model, and
// `data-progress` (the fraction of the test done while it runs, else absent). The shift controls'
// hooks are shift.js's.

import { $, client, pushError, scheduleRender, state } from './state.js';
import { setProp, setText } from '../shared/dom.js';
import { pct1 } from '../shared/format.js';
import { putRgba } from '../shared/tiles.js';
import { MAX_SHIFT as MAX, SHIFT_DEFINITION, followedShift, shiftWords } from './shift.js';

const PANELS = { picture: '"Bird or airplane?"', why: '"Why this answer?"' };
const view = { drawn: '', test: null, progress: null, reference: null };

/** A diverging colour for a value in [-1, 1]: blue below 0, orange above, white at 0. */
function colour(v) {
  const t = Math.max(-1, Math.min(1, v));
  return t >= 0 ? [255, Math.round(255 - 120 * t), Math.round(255 - 255 * t)] : [Math.round(255 + 224 * t), Math.round(255 + 160 * t), 255];
}

/** Draws `values` as `count` maps of `side x side` (or, side 0, as a grid of units) on `canvas`. */
function drawResponse(canvas, values, side, count, scale) {
  const cols = side ? Math.min(count, 8) : 32;
  const cell = side || 1;
  const rows = side ? Math.ceil(count / cols) : Math.ceil(values.length / cols);
  const w = cols * (cell + (side ? 1 : 0));
  const h = rows * (cell + (side ? 1 : 0));
  canvas.width = w;
  canvas.height = h;
  canvas.style.width = `${w * (side ? 3 : 8)}px`;
  const img = new ImageData(w, h);
  img.data.fill(255);
  for (let i = 0; i < values.length; i++) {
    const [m, p] = side ? [Math.floor(i / (side * side)), i % (side * side)] : [0, i];
    const x = side ? (m % cols) * (side + 1) + (p % side) : p % cols;
    const y = side ? Math.floor(m / cols) * (side + 1) + Math.floor(p / side) : Math.floor(p / cols);
    img.data.set([...colour(values[i] / scale), 255], 4 * (y * w + x));
  }
  canvas.getContext('2d').putImageData(img, 0, 0);
}

const maxAbs = (...arrays) => Math.max(1e-6, ...arrays.map((a) => a.reduce((m, v) => Math.max(m, Math.abs(v)), 0)));

function renderResponse(r) {
  const box = $('shift-response');
  setProp(box, 'hidden', !r);
  if (!r) return;
  box.dataset.similarity = String(r.similarity);
  const conv = r.kind === 'conv';
  const scale = conv ? maxAbs(r.original, r.shifted) : 1;
  drawResponse($('shift-orig'), r.original, r.side, conv ? r.original.length / (r.side * r.side) : 0, scale);
  drawResponse($('shift-moved'), r.shifted, r.side, conv ? r.shifted.length / (r.side * r.side) : 0, scale);
  setProp($('shift-second'), 'hidden', !r.secondSide);
  if (r.secondSide) {
    const s2 = maxAbs(r.second, r.secondShifted);
    const n2 = r.second.length / (r.secondSide * r.secondSide);
    drawResponse($('shift-orig2'), r.second, r.secondSide, n2, s2);
    drawResponse($('shift-moved2'), r.secondShifted, r.secondSide, n2, s2);
  }
  setText($('shift-response-what'), conv
    ? `conv1's ${r.original.length / 1024} feature maps (32x32, after tanh) and, below, conv2's (16x16), for the original and the moved picture.`
    : `The ${r.original.length} hidden units after tanh (one square each, orange positive, blue negative), for the original and the moved picture.`);
  setText($('shift-similarity'), conv
    ? `Cosine similarity of conv1's maps, the moved picture's shifted back, away from the borders: ${r.similarity.toFixed(4)}.`
    : `Cosine similarity of the hidden units, moved vs original: ${r.similarity.toFixed(4)}.`);
  setText($('shift-lesson'), conv
    ? 'The convolution reuses one filter everywhere: its maps move with the picture and stay the same. The fully connected layers after it still see the maps at new places.'
    : 'The fully connected layer has one weight per pixel and unit: moved, the picture meets other weights, so the units respond to something else. It would have to learn each position anew.');
}

function renderShift() {
  const r = state.model && !state.crashed ? followedShift() : null;
  setText($('shift-empty'), r ? SHIFT_DEFINITION : 'Classify a picture, or click a test image or a hard example, then move it in its panel.');
  setProp($('shift-view'), 'hidden', !r);
  renderResponse(r);
  if (!r) return;
  Object.assign($('shift-response').dataset, { panel: r.panel, shift: `${r.dx},${r.dy}` });
  if (view.drawn === r.key + r.panel) return;
  view.drawn = r.key + r.panel;
  putRgba($('shift-image'), r.image);
  const map = new Uint8ClampedArray(4096);
  for (let i = 0; i < 1024; i++) {
    map.set([255, 214, 0], 4 * i);
    map[4 * i + 3] = r.magnitudeMax > 0 ? Math.round((160 * r.magnitude[i]) / r.magnitudeMax) : 0;
  }
  $('shift-map').getContext('2d').putImageData(new ImageData(map, 32, 32), 0, 0);
  const probs = r.probabilities.map((p, c) => `${r.classes[c]} ${pct1(p)}`).join(', ');
  const words = shiftWords(r.dx, r.dy);
  setText($('shift-answer'), `The picture of ${PANELS[r.panel]}, ${words}: ${r.classes[r.class]} (${probs}). Yellow: "why this answer?" for it.`);
}

function renderTest() {
  const box = $('translation');
  const t = view.test;
  const current = t && state.model && t.epoch === (state.model.history?.length ?? -1);
  box.dataset.shifts = JSON.stringify(current ? t.shifts : []);
  box.dataset.accuracies = JSON.stringify(current ? t.accuracies : []);
  // An <svg> has no `hidden` property (HTMLElement's only): the attribute itself.
  $('translation-chart').toggleAttribute('hidden', !current);
  setProp($('translation-empty'), 'hidden', Boolean(current));
  const p = view.progress;
  const running = p && state.model && p.epoch === (state.model.history?.length ?? -1) && !current;
  if (running) box.dataset.progress = String(p.progress);
  else delete box.dataset.progress;
  setText($('translation-empty'), running
    ? `Measuring: ${Math.round(100 * p.progress)}% of the 2,000 test pictures x 25 placements (the page answers meanwhile).`
    : 'Measured by itself when a run ends: validation accuracy on the 2,000 test pictures moved by 0 to 8 pixels (the mean over right, left, down and up).');
  if (!current) { setText($('translation-text'), ''); return; }
  drawChart(t);
  const at = (k) => t.accuracies[t.shifts.indexOf(k)];
  setText($('translation-text'), `This model: ${pct1(at(0))} at 0 px, ${pct1(at(4))} at 4 px, ${pct1(at(8))} at 8 px; first layer's similarity at 4 px ${t.similarities[t.shifts.indexOf(4)].toFixed(3)} (measured in ${t.seconds.toFixed(1)} s, in ${t.slices} slices of at most ${Math.round(t.longestSliceMs)} ms between which the page is answered). Dashed: PyTorch, the lecture's MLP and the book's Net (${view.reference?.provenance?.epochs ?? '?'} epochs, seed ${view.reference?.provenance?.seeds?.join(', ') ?? '?'}).`);
}

function drawChart(t) {
  const svg = $('translation-chart');
  const [x0, x1, y0, y1] = [30, 310, 160, 10];
  const lo = 0.5;
  const px = (k) => x0 + ((x1 - x0) * k) / MAX;
  const py = (a) => y0 - ((y0 - y1) * (a - lo)) / (1 - lo);
  const line = (ks, as) => ks.map((k, i) => `${i ? 'L' : 'M'}${px(k).toFixed(1)},${py(as[i]).toFixed(1)}`).join('');
  const parts = [`<path class="axis" d="M${x0},${y1}V${y0}H${x1}"/>`];
  for (const a of [0.5, 0.6, 0.7, 0.8, 0.9, 1]) parts.push(`<text x="2" y="${py(a) + 3}">${a.toFixed(1)}</text>`);
  for (const k of [0, 2, 4, 6, 8]) parts.push(`<text x="${px(k) - 3}" y="174">${k}</text>`);
  const ref = view.reference;
  const colours = { lecture: '#d9480f', conv: '#17803a' };
  for (const [name, p] of Object.entries(ref?.presets ?? {})) {
    parts.push(`<path class="ref" stroke="${colours[name] ?? '#888'}" d="${line(ref.shift_px, p.accuracy.median)}"><title>PyTorch ${name}</title></path>`);
  }
  parts.push(`<path class="ours" d="${line(t.shifts, t.accuracies)}"><title>this model</title></path>`);
  parts.push(`<text x="${x1 - 120}" y="20">solid: this model (px →)</text>`);
  svg.innerHTML = parts.join('');
}

export function renderTranslation() {
  renderShift();
  renderTest();
}

/** The translation test of a model restored after a reload (a finished run's: the worker measures
 *  it again, in slices, as when the run ended). */
export function requestTranslation() {
  // A crashed or restarted worker says so itself; a new run ends the test without a reply.
  client.request({ type: 'translation' }, 'translation').catch((e) => {
    if (!client.dead) pushError('translation', `The translation test failed: ${e.message ?? e}`);
  });
}

export function wireTranslation() {
  client.on('translation-progress', (p) => { view.progress = p; scheduleRender(); });
  // A new run or more training: the test of the model before (done or in progress) is not this one's.
  client.on('started', () => { view.test = null; view.progress = null; });
  client.on('translation', (t) => { view.test = t; view.progress = null; scheduleRender(); });
  fetch(new URL('../reference/translation.json', import.meta.url))
    .then((r) => (r.ok ? r.json() : null)).then((j) => { view.reference = j; scheduleRender(); }, () => {});
}
