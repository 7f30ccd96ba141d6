// The "bird or airplane?" panel: a picture from the file picker, drag and drop or paste,
// classified by the current model (shared/prediction.js), and classified again with each newer
// model while training goes on.

import { $, client, modelLabel, scheduleRender, state } from './state.js';
import { setProp, setText } from '../shared/dom.js';
import { predictFile, predictPixels, renderPrediction, wireDropZone } from '../shared/prediction.js';

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

let drawn = -1;

export function renderPicture() {
  const pic = state.picture;
  setText($('picture-error'), pic.error);
  $('drop-zone').classList.toggle('busy', pic.busy);
  if (drawn === pic.version) return;
  drawn = pic.version;
  const res = pic.result;
  setProp($('prediction'), 'hidden', !res);
  if (!res) return;
  renderPrediction({ canvas: $('picture-canvas'), bars: $('probability-bars'), verdict: document.querySelector('#prediction [data-metric="prediction"]') }, res);
  setText($('prediction-note'), `${res.name}; the model ${res.model}.`);
}

export function wirePicture() {
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
