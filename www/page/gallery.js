// The test-image panel: seeded sampling of test indices, the worker's guesses for them
// (`gallery`), and the tiles (32x32 RGBA shown as images).

import { $, client, modelLabel, oneAtATime, pushError, state } from './state.js';
import { el, setProp, setText } from '../shared/dom.js';
import { pct } from '../shared/format.js';
import { argmax } from '../shared/prediction.js';
import { sampleIndices } from '../shared/sample.js';
import { rgbaImage } from '../shared/tiles.js';

// ---------------------------------------------------------------------------------------------
// The panel: a seeded draw of test images with the model's guesses ("mistakes only": the wrong
// ones among a larger draw).

const GALLERY_SIZE = 48;
const GALLERY_MISTAKE_POOL = 400;
const GALLERY_MAX_MISTAKES = 96;

/** The seed of the draw: the form's, or the model's while the form asks for a random one. */
const drawSeed = () => (typeof state.form?.seed === 'number' ? state.form.seed : state.model?.config.seed ?? 0);

/** Asks the worker for a new draw with the current model (one at a time; one more if asked
 *  meanwhile). */
export function refreshGallery() {
  const g = state.gallery;
  if (!state.model || !state.data.ready || state.crashed) return;
  oneAtATime(g, refreshGallery, () => {
    g.lastAt = performance.now();
    const mistakesOnly = g.mistakesOnly;
    const asked = mistakesOnly ? GALLERY_MISTAKE_POOL : GALLERY_SIZE;
    const indices = sampleIndices(state.data.ready.test, asked, drawSeed(), g.draw);
    const model = modelLabel();
    return client.request({ type: 'gallery', indices }, 'gallery')
      .then((r) => { g.result = { items: r.items, images: r.images, classes: r.classes, mistakesOnly, asked, model }; g.version++; },
        (e) => { if (!state.crashed) pushError('gallery', `The test images could not be shown: ${e.message}`); });
  });
}

let drawn = -1;

export function renderGallery() {
  const g = state.gallery;
  setProp($('redraw'), 'disabled', !state.model || state.crashed);
  setProp($('mistakes-only'), 'disabled', !state.model || state.crashed);
  if (drawn === g.version) return;
  drawn = g.version;
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
    const image = rgbaImage(res.images, n * 4096, `test:${item.index}`);
    image.setAttribute('aria-hidden', 'true');
    const label = `Test image ${item.index}, a ${truth}: ${ok ? 'right' : 'wrong'}, predicted ${guess} (${pct(p)})`;
    // data-index, tabindex: a click or Enter explains the image (page/why.js).
    tiles.push(el('figure', { class: `tile ${ok ? 'right' : 'wrong'}`, title: `${label}. Click: why this answer?`, role: 'img', 'aria-label': label, 'data-index': String(item.index), tabindex: '0' },
      image, el('figcaption', {}, el('span', {}, `${ok ? '✓' : '✗'} ${guess}`), el('span', { class: 'p' }, pct(p)))));
  }
  $('gallery-grid').replaceChildren(...tiles);
  const share = res.items.length ? wrong / res.items.length : 0;
  setText($('gallery-note'), res.mistakesOnly
    ? `${wrong} mistakes among ${res.items.length} random test images (${(share * 100).toFixed(1)}%)${wrong > GALLERY_MAX_MISTAKES ? `, first ${GALLERY_MAX_MISTAKES} shown` : ''}; the model ${res.model}.`
    : `${res.items.length - wrong} of ${res.items.length} right; the model ${res.model}.`);
}

export function wireGallery() {
  $('redraw').addEventListener('click', () => { state.gallery.draw++; refreshGallery(); });
  $('mistakes-only').addEventListener('change', (e) => { state.gallery.mistakesOnly = e.target.checked; refreshGallery(); });
}
