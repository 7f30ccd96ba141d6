// "Bird or airplane?" for the page and the widget: a picture file from a drop zone or a file
// picker, decoded here and classified by the worker (`predict`), then shown as the 32x32 picture
// the model saw, one probability bar per class and the verdict.
//
// Markup it fills: a 32x32 <canvas>, a list for the bars (one `li.bar-row` per class, `.best` on
// the most likely, `data-probability` the exact value: `span.name`, `div.bar > div.fill`, `span.value`) and an element for the
// verdict (`[data-metric="prediction"]`, the best class's name).

import { decodeImage } from './image.js';
import { el, setText } from './dom.js';
import { pct1 } from './format.js';

/** Index of the largest value. */
export const argmax = (xs) => xs.reduce((best, x, i) => (x > xs[best] ? i : best), 0);

/** Decodes `blob` and asks the worker for its class probabilities. Resolves with the worker's
 *  `prediction` ({probabilities, image, classes}) and `name`: the file's name, with a note when
 *  only part of it is used ("x.gif (an animated GIF: its first frame is classified)"). The
 *  messages name the file: decodeImage's say what is wrong with it; the worker's are prefixed
 *  "Could not classify NAME: ". */
export async function predictFile(client, blob) {
  const { rgba, width, height, note } = await decodeImage(blob);
  const name = blob.name || 'pasted picture';
  const r = await predictPixels(client, rgba, width, height)
    .catch((e) => { throw new Error(`Could not classify ${name}: ${e.message}`); });
  return { ...r, name: note ? `${name} (${note})` : name };
}

/** The worker's `prediction` for RGBA pixels (the buffer is moved to the worker). */
export function predictPixels(client, rgba, width, height) {
  return client.request({ type: 'predict', rgba, width, height }, 'prediction', [rgba]);
}

/** Shows a prediction in `ui` ({canvas, bars, verdict}). */
export function renderPrediction(ui, { probabilities, image, classes }) {
  ui.canvas.getContext('2d').putImageData(new ImageData(new Uint8ClampedArray(image), 32, 32), 0, 0);
  setText(ui.verdict, classes[argmax(probabilities)]);
  renderBars(ui.bars, probabilities, classes);
}

/** One probability bar per class in the list `bars` (markup in the header). */
export function renderBars(bars, probabilities, classes) {
  const best = argmax(probabilities);
  bars.replaceChildren(...classes.map((name, i) => {
    const p = probabilities[i];
    // The width is set through the CSSOM: the content security policy forbids style attributes.
    const fill = el('div', { class: 'fill' });
    fill.style.width = pct1(p);
    // data-probability: the exact value (the text is rounded), for tests and other scripts.
    return el('li', { class: i === best ? 'bar-row best' : 'bar-row', 'data-probability': String(p) },
      el('span', { class: 'name' }, name),
      el('div', { class: 'bar', 'aria-hidden': 'true' }, fill),
      el('span', { class: 'value' }, pct1(p)));
  }));
}

const hasFiles = (e) => [...(e.dataTransfer?.types ?? [])].includes('Files');

/** A drop zone (a button) and its hidden file input: a click opens the picker; a chosen or
 *  dropped file goes to `onFile(file)`; a drop without a file (a link, some text) to
 *  `onNotAFile()`. */
export function wireDropZone(zone, picker, onFile, onNotAFile) {
  zone.addEventListener('click', () => picker.click());
  picker.addEventListener('change', () => {
    const [file] = picker.files;
    picker.value = ''; // the same file chosen again is a change too
    if (file) onFile(file);
  });
  zone.addEventListener('dragenter', (e) => { if (hasFiles(e)) { e.preventDefault(); zone.classList.add('over'); } });
  zone.addEventListener('dragover', (e) => { if (hasFiles(e)) { e.preventDefault(); e.dataTransfer.dropEffect = 'copy'; } });
  zone.addEventListener('dragleave', () => zone.classList.remove('over'));
  zone.addEventListener('drop', (e) => {
    e.preventDefault();
    zone.classList.remove('over');
    const file = e.dataTransfer?.files?.[0];
    if (file) onFile(file);
    else onNotAFile();
  });
}
