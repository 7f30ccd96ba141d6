// What the views of what a model learned must show, computed here in plain JavaScript from a
// safetensors file (as the page downloads it) and the bundle's records, without the wasm package:
// the reference the end-to-end tests check the page's hidden-unit tiles and top activations
// against (src/inspect/units.rs and src/inspect/scan.rs document the formulas).

/** The tensors of a safetensors file: name -> {shape, data: Float64Array} (F32 only). */
export function readSafetensors(bytes) {
  const headerLength = Number(bytes.readBigUInt64LE(0));
  const header = JSON.parse(bytes.subarray(8, 8 + headerLength).toString('utf8'));
  const out = {};
  for (const [name, t] of Object.entries(header)) {
    if (name === '__metadata__') continue;
    if (t.dtype !== 'F32') throw new Error(`${name}: dtype ${t.dtype}, not F32`);
    const [start, end] = t.data_offsets;
    const raw = bytes.subarray(8 + headerLength + start, 8 + headerLength + end);
    const f32 = new Float32Array(raw.length / 4);
    for (let i = 0; i < f32.length; i++) f32[i] = raw.readFloatLE(4 * i);
    out[name] = { shape: t.shape, data: Float64Array.from(f32) };
  }
  return out;
}

/** Row `j` of a `[rows, cols]` tensor. */
export const row = (t, j) => t.data.subarray(j * t.shape[1], (j + 1) * t.shape[1]);

/** Unit `j`'s tile as docs/learned.md states it: with `s = max |w|` over the unit's 3072 input
 *  weights (planar R, G, B planes of 32x32), each channel is `round(128 + 127 w / s)` (128 when
 *  `s` is 0), RGBA with alpha 255. Also returns, per byte, how close the exact value is to a half
 *  (`halfway`), where float32 rounding may legitimately pick either neighbour. */
export function expectedTile(w0, j) {
  const w = row(w0, j);
  let s = 0;
  for (const v of w) s = Math.max(s, Math.abs(v));
  const rgba = new Uint8Array(4096);
  const halfway = new Array(4096).fill(false);
  for (let p = 0; p < 1024; p++) {
    for (let c = 0; c < 3; c++) {
      const exact = s > 0 ? 128 + (127 * w[c * 1024 + p]) / s : 128;
      rgba[4 * p + c] = Math.round(exact);
      halfway[4 * p + c] = Math.abs(exact - Math.floor(exact) - 0.5) < 1e-3;
    }
    rgba[4 * p + 3] = 255;
  }
  return { rgba, halfway, scale: s };
}

/** The lecture's normalisation (src/data/mod.rs: MEAN, STD), per channel. */
const MEAN = [0.4915, 0.4823, 0.4468];
const STD = [0.2470, 0.2435, 0.2616];
const LUT = MEAN.map((m, c) => Float64Array.from({ length: 256 }, (_, v) => (Math.fround(v / 255) - m) / STD[c]));

/** Unit `j`'s pre-activation `z = w . x + b` for every image of `split` (the bundle's records,
 *  see reference.mjs `bundle`), in float64. */
export function preActivations(tensors, j, split) {
  const w = row(tensors['0.weight'], j);
  const b = tensors['0.bias'].data[j];
  const z = new Float64Array(split.count);
  for (let i = 0; i < split.count; i++) {
    const px = split.pixels(i);
    let sum = b;
    for (let c = 0; c < 3; c++) {
      const lut = LUT[c];
      for (let p = c * 1024; p < (c + 1) * 1024; p++) sum += w[p] * lut[px[p]];
    }
    z[i] = sum;
  }
  return z;
}
