// The reference the end-to-end tests check the pages against: the single-threaded simd128 package
// (www/pkg/, the one a page runs when it has no wasm threads) run here, in Node, on the same
// bundle, through its own API (Data, Session, trainBatches, evaluate, predictRgba, predictTest).
//
// WebAssembly arithmetic without relaxed SIMD is deterministic, so a page that runs this package
// (no cross-origin isolation, or WebKitGTK) computes bit for bit what this computes, in any engine:
// the tests compare its numbers exactly. The threaded packages split work differently and may fuse
// multiply-adds (relaxed SIMD), so their runs agree with this one only approximately; a model taken
// from such a page (its exported weights) is still evaluated here exactly as the page evaluates it
// up to the last bits of the probabilities.

import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { inflateSync } from 'node:zlib';
import { join } from 'node:path';
import { ROOT } from './harness.mjs';

const { Data, Session, initSync, presetConfig } = await import('../../www/pkg/skywatch.js').catch((e) => {
  throw new Error(`cannot load www/pkg/skywatch.js: run scripts/build first (${e.message})`);
});

let initialized = false;
const datasets = new Map();

function init() {
  if (initialized) return;
  initSync({ module: readFileSync(join(ROOT, 'www/pkg/skywatch_bg.wasm')) });
  initialized = true;
}

/** The bundle in `dir` (kept: one copy per folder). */
function data(dir) {
  init();
  if (!datasets.has(dir)) {
    const manifestText = readFileSync(join(dir, 'manifest.json'), 'utf8');
    const m = JSON.parse(manifestText);
    // A version-2 split (pixel predictor, then deflate) is inflated here as the worker does with
    // DecompressionStream('deflate') (zlib format), and its sha256 is that of the file as stored.
    const split = (info) => {
      const stored = readFileSync(join(dir, info.file));
      if (info.encoding == null) return [stored, undefined];
      return [inflateSync(stored), createHash('sha256').update(stored).digest('hex')];
    };
    const [[train, trainSha], [test, testSha]] = [split(m.train), split(m.test)];
    datasets.set(dir, new Data(manifestText, train, test, trainSha, testSha));
  }
  return datasets.get(dir);
}

/** The run configuration a page builds from `?preset=…&epochs=…&seed=…&train_size=…`. */
export function runConfig({ preset = 'lecture', epochs, seed = 0, trainSize = null, augment = null } = {}) {
  init();
  const config = JSON.parse(presetConfig(preset));
  if (epochs !== undefined) config.epochs = epochs;
  config.seed = seed;
  config.train_size = trainSize;
  if (augment) config.augment = augment;
  return config;
}

/** A model on the bundle in `dir`: {config, history, evaluate(split), predictRgba(rgba, w, h),
 *  predictTest(indices), exportWeights(), free()}, and what the page's views of what it learned
 *  show, from the same core: unitTiles(), topActivations(unit), saliencyRgba(rgba, w, h, class?),
 *  saliencyImage(split, i, class?), neighboursRgba(rgba, w, h), neighboursImage(split, i),
 *  hardExamples(n), session (the package's Session itself). */
function model(session, history) {
  const k = 2;
  return {
    config: JSON.parse(session.config()),
    history,
    evaluate: (split) => session.evaluate(split),
    predictRgba: (rgba, width, height) => {
      const p = session.predictRgba(Uint8Array.from(rgba), width, height);
      return { probabilities: Array.from(p.probabilities), image: Buffer.from(p.image) };
    },
    predictTest: (indices) => {
      const flat = session.predictTest(Uint32Array.from(indices));
      return indices.map((_, n) => Array.from(flat.subarray(n * k, (n + 1) * k)));
    },
    exportWeights: () => Buffer.from(session.exportWeights()),
    unitTiles: () => session.unitTiles(),
    topActivations: (unit) => session.topActivations(unit),
    saliencyRgba: (rgba, width, height, cls) => session.saliencyRgba(Uint8Array.from(rgba), width, height, cls),
    saliencyImage: (split, i, cls) => session.saliencyImage(split, i, cls),
    neighboursRgba: (rgba, width, height) => session.neighboursRgba(Uint8Array.from(rgba), width, height),
    neighboursImage: (split, i) => session.neighboursImage(split, i),
    hardExamples: (n) => session.hardExamples(n),
    session,
    free: () => session.free(),
  };
}

/** Trains `config` on the bundle in `dir` as the page's worker does; the model with the epoch
 *  statistics of every epoch ({epoch, loss, train_accuracy, val_accuracy, seconds}). */
export function train(dir, config) {
  const session = new Session(JSON.stringify(config), data(dir));
  const history = [];
  while (history.length < config.epochs) {
    const step = session.trainBatches(1000);
    if (step.epoch) history.push(step.epoch);
  }
  return model(session, history);
}

/** The model of `config` with the weights `bytes` (a safetensors file, as a page exports it). */
export function withWeights(dir, config, bytes) {
  const session = new Session(JSON.stringify(config), data(dir));
  session.importWeights(Uint8Array.from(bytes));
  return model(session, []);
}

/** "Train more" from uploaded weights, as the page's worker does it: a run of `config` with the
 *  weights `bytes` and a budget of 0 epochs, raised to `epochs` (extendEpochs) and trained. */
export function trainFrom(dir, config, bytes, epochs) {
  const session = new Session(JSON.stringify({ ...config, epochs: 0 }), data(dir));
  session.importWeights(Uint8Array.from(bytes));
  session.extendEpochs(epochs);
  const history = [];
  while (history.length < epochs) {
    const step = session.trainBatches(1000);
    if (step.epoch) history.push(step.epoch);
  }
  return model(session, history);
}

/** The bundle in `dir` read directly from its files (not through the package): `{manifest,
 *  train: {count, labels, pixels(i)}, test}`, pixels as planar bytes (3 x 32 x 32). */
export function bundle(dir) {
  const manifest = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8'));
  const split = (name) => {
    const bytes = readFileSync(join(dir, manifest[name].file));
    const n = manifest[name].count;
    const r = manifest.record_bytes;
    return {
      count: n,
      labels: Uint8Array.from({ length: n }, (_, i) => bytes[i * r]),
      pixels: (i) => bytes.subarray(i * r + 1, (i + 1) * r),
    };
  };
  return { manifest, train: split('train'), test: split('test') };
}

/** A fresh Session of `config` on the bundle in `dir` (the package's own object), and the Data. */
export function newSession(dir, config) {
  const d = data(dir);
  return { session: new Session(JSON.stringify(config), d), data: d };
}

/** The labels of the test split of the bundle in `dir`, read from its record file (byte 0 of
 *  each 3073-byte record), not through the package. */
export function testLabels(dir) {
  const m = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8'));
  const bytes = readFileSync(join(dir, m.test.file));
  return Array.from({ length: m.test.count }, (_, i) => bytes[i * m.record_bytes]);
}

/** The page's way of showing an accuracy (www/app.js, www/widget.js): four decimals. */
export const shown = (x) => x.toFixed(4);
