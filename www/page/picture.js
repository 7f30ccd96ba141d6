// The "bird or airplane?" panel: a picture from the file picker, drag and drop or paste,
// classified by the current model (shared/prediction.js), and classified again with each newer
// model while training goes on. Its shift control (shift.js) moves the picture: the picture as the
// model then sees it, the probability bars and the verdict follow.

import { $, client, modelLabel, scheduleRender, state } from './state.js';
import { setProp, setText } from '../shared/dom.js';
import { predictFile, predictPixels, renderPrediction, wireDropZone } from '../shared/prediction.js';
import { shiftControl, shiftWords } from './shift.js';

let shift = null;

export async function classifyBlob(blob) {
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
    const model = modelLabel();
    show(await predictFile(client, blob), model);
  } catch (e) {
    pic.error = e.message;
  } finally {
    pic.busy = false;
    scheduleRender();
  }
}

function show(r, model) {
  state.picture.result = { probabilities: r.probabilities, image: r.image, classes: r.classes, name: r.name, model };
  state.picture.version++;
  scheduleRender();
}

/** Classifies the last picture again with the current model (from its 32x32 version). */
export function refreshPicture() {
  const pic = state.picture;
  if (!pic.result || pic.busy || !state.model || state.crashed) return;
  pic.busy = true;
  const { name } = pic.result;
  const model = modelLabel();
  predictPixels(client, Uint8Array.from(pic.result.image).buffer, 32, 32)
    .then((r) => show({ ...r, name }, model), (e) => { pic.error = `Could not classify ${name}: ${e.message}`; })
    .finally(() => { pic.busy = false; scheduleRender(); });
}

let drawn = '';

/** The picture the shift control moves: the one classified last, keyed by its name and pixels
 *  (the same picture classified again by a newer model keeps its shift). Hashed once per result,
 *  not on every render. */
let subjectOf = { res: null, subject: null };
function subject(res) {
  if (!res) return null;
  if (subjectOf.res !== res) {
    const sum = res.image.reduce((a, b, i) => (a * 31 + b * (i + 1)) % 1_000_000_007, 0);
    subjectOf = { res, subject: { key: `picture:${res.name}:${sum}`, value: { kind: 'picture', name: res.name, image: res.image } } };
  }
  return subjectOf.subject;
}

export function renderPicture() {
  const pic = state.picture;
  setText($('picture-error'), pic.error);
  $('drop-zone').classList.toggle('busy', pic.busy);
  const res = pic.result;
  const moved = shift.render(subject(res));
  const key = `${pic.version}|${moved ? moved.key : ''}`;
  if (drawn === key) return;
  drawn = key;
  setProp($('prediction'), 'hidden', !res);
  if (!res) return;
  const ui = { canvas: $('picture-canvas'), bars: $('probability-bars'), verdict: document.querySelector('#prediction [data-metric="prediction"]') };
  // Moved: the moved picture as the model sees it (zeros, the mean colour, shifted in), and its answer.
  renderPrediction(ui, moved ? { probabilities: moved.probabilities, image: moved.image, classes: moved.classes } : res);
  $('prediction').dataset.shift = moved ? `${moved.dx},${moved.dy}` : '0,0';
  setText($('prediction-note'), `${res.name}${moved ? `, ${shiftWords(moved.dx, moved.dy)}` : ''}; the model ${res.model}.`);
}

export function wirePicture() {
  shift = shiftControl({ panel: 'picture', box: $('picture-shift'), target: $('picture-canvas') });
  wireDropZone($('drop-zone'), $('picture-input'), classifyBlob, () => {
    state.picture.error = 'Drop an image file (from your computer, not a link).';
    scheduleRender();
  });
  // A file dropped next to the box must not replace the page.
  const hasFiles = (e) => [...(e.dataTransfer?.types ?? [])].includes('Files');
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
}
