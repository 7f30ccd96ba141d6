// Hidden units as pictures, drawn for the page and the widget: many 32x32 RGBA tiles in one canvas
// (an atlas), each with a bar under it for the class its unit votes for. One canvas, written once
// per update with one putImageData, rather than a canvas (and a compositing layer) per unit.
//
// Tiles come from the worker's `units` message: `tiles` is `units * 4096` bytes, tile `j` at
// `j * 4096`, each scaled on its own (channel = round(128 + 127 w / max|w|), mid-grey = 0; see
// src/inspect/units.rs); `votes` is `[classes x units]`, row `c` the unit's outgoing weights to
// class `c` (W2, or W_L…W_2 for deeper models).

/** Layout of the atlas: a tile, a gap, the vote bar, a gap. Tile `p` (in display order) has its
 *  top-left pixel at `((p % columns) * PITCH_X, floor(p / columns) * PITCH_Y)`. */
export const TILE = 32;
export const PITCH_X = TILE + 1;
export const BAR = 2;
export const PITCH_Y = TILE + 1 + BAR + 1;

/** Bar colours per class (RGB): airplane blue, bird orange, then others for more classes. */
export const CLASS_RGB = [[31, 95, 209], [217, 72, 15], [23, 128, 58], [134, 62, 181], [190, 140, 0], [0, 140, 150]];
export const classColor = (c) => `rgb(${CLASS_RGB[c % CLASS_RGB.length].join(' ')})`;

/** For each unit, the class it votes for most and the spread of its votes (max - min over the
 *  classes: for two classes |W2[1,j] - W2[0,j]|, its weight on the log-odds). */
export function voteLeans(votes, units, classes) {
  const cls = new Uint8Array(units);
  const strength = new Float32Array(units);
  for (let j = 0; j < units; j++) {
    let best = 0;
    let lo = Infinity;
    let hi = -Infinity;
    for (let c = 0; c < classes; c++) {
      const v = votes[c * units + j];
      if (v > votes[best * units + j]) best = c;
      lo = Math.min(lo, v);
      hi = Math.max(hi, v);
    }
    cls[j] = best;
    strength[j] = hi - lo;
  }
  return { cls, strength };
}

/** Whether the change since the start (`change`, W - W0) is the clearer picture of a `units`
 *  message: while `||W - W0|| < ||W0||`, `W` is mostly its random start (lecture after 3 epochs:
 *  4%), and its tiles look like noise. */
export const changeFirst = (r) => r.change != null && r.changeRelative != null && r.changeRelative < 1;

/** The ImageData of each atlas canvas, kept between updates. */
const buffers = new WeakMap();

/** Draws the tiles of `units` (unit numbers, in display order) into `canvas` in `columns`
 *  columns, each with its vote bar (length relative to the strongest unit of the whole layer). */
export function drawAtlas(canvas, t, units, columns) {
  const rows = Math.max(1, Math.ceil(units.length / columns));
  const width = Math.min(units.length, columns) * PITCH_X - 1;
  const height = rows * PITCH_Y - 1;
  if (canvas.width !== width) canvas.width = width;
  if (canvas.height !== height) canvas.height = height;
  // One buffer per canvas, reused by every update (2.4 MB for 512 units): the gaps stay clear,
  // every tile and bar is written again.
  let img = buffers.get(canvas);
  if (img?.width !== width || img?.height !== height) {
    img = new ImageData(width, height);
    buffers.set(canvas, img);
  }
  const px = img.data;
  const { cls, strength } = voteLeans(t.votes, t.units, t.classes);
  let strongest = 0;
  for (let j = 0; j < t.units; j++) strongest = Math.max(strongest, strength[j]);
  for (const [p, u] of units.entries()) {
    const x0 = (p % columns) * PITCH_X;
    const y0 = Math.floor(p / columns) * PITCH_Y;
    for (let y = 0; y < TILE; y++) {
      const from = u * 4096 + y * TILE * 4;
      px.set(t.tiles.subarray(from, from + TILE * 4), ((y0 + y) * width + x0) * 4);
    }
    const len = strongest > 0 ? Math.max(1, Math.round((TILE * strength[u]) / strongest)) : 0;
    const [r, g, b] = CLASS_RGB[cls[u] % CLASS_RGB.length];
    for (let y = y0 + TILE + 1; y < y0 + TILE + 1 + BAR; y++) {
      px.fill(0, (y * width + x0) * 4, (y * width + x0 + TILE) * 4);
      for (let x = x0; x < x0 + len; x++) {
        const o = (y * width + x) * 4;
        px[o] = r; px[o + 1] = g; px[o + 2] = b; px[o + 3] = 255;
      }
    }
  }
  canvas.getContext('2d').putImageData(img, 0, 0);
  return { width, height, rows };
}

let scratch = null;
/** PNG data URLs of images that do not change (a training image), by the caller's key. */
const urls = new Map();
const MAX_URLS = 2048;

/** The 32x32 RGBA image at `offset` of `rgba` as an <img> (a PNG data URL drawn through one
 *  scratch canvas). Not a <canvas> per image: each canvas is a compositing layer of its own that
 *  every frame of the page commits again, which made the gallery's 48 tiles cost the main thread
 *  about five times more per frame while training, and the thumbnails of hard examples,
 *  neighbours and a unit's images would do the same. `key` names an image that never changes
 *  (such as "train:123"): its PNG is encoded once and reused (the hard examples are listed
 *  again after every epoch, mostly the same images). */
export function rgbaImage(rgba, offset = 0, key = null) {
  let src = key === null ? undefined : urls.get(key);
  if (src === undefined) {
    if (!scratch) {
      scratch = document.createElement('canvas');
      scratch.width = TILE;
      scratch.height = TILE;
    }
    putRgba(scratch, rgba, offset);
    src = scratch.toDataURL('image/png');
    if (key !== null) {
      if (urls.size >= MAX_URLS) urls.clear();
      urls.set(key, src);
    }
  }
  const img = document.createElement('img');
  Object.assign(img, { src, width: TILE, height: TILE, alt: '' });
  return img;
}

/** Draws the 32x32 RGBA image at `offset` of `rgba` on `canvas`. */
export function putRgba(canvas, rgba, offset = 0) {
  const img = new ImageData(new Uint8ClampedArray(rgba.buffer, rgba.byteOffset + offset, 4096).slice(), TILE, TILE);
  canvas.getContext('2d').putImageData(img, 0, 0);
}
