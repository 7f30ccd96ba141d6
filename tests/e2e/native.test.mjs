// The wasm package against the native build, on the same seed and configuration: the lecture's
// MLP and the book's convolutional Net (preset conv), each trained for 2 epochs on 640 training
// images by `skywatch train --threads 1 --json` (native) and by the single-threaded simd128
// package in Node (reference.mjs, the package a page without threads runs).
//
// Both draw the same initial weights, subset and batches (the same seeded generators, in the same
// core), so every difference is rounding. They cannot be equal bit for bit: the native GEMM's
// micro-kernel (AVX-512 or AVX2, 16 or 8 lanes, fused multiply-adds) sums the products of a dot
// product in another order, and rounds once per multiply-add, where simd128 (4 lanes, separate
// multiply and add) rounds twice. Measured: the epochs' mean losses differ by 1e-8 relative (float32
// rounding of the same sums, 20 SGD steps on), and the validation accuracies are equal. The test
// allows 1e-6 relative, and 2 images of the 2,000 on either side of the decision boundary.
//
// Run from the repository root after scripts/build: `node --test tests/e2e/native.test.mjs`.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';
import { BIN, DATA_DIR, ROOT, prepare } from './harness.mjs';
import { bundle, runConfig, train } from './reference.mjs';

/** Relative difference of the two runs' losses allowed per epoch (see above). */
const LOSS_RTOL = 1e-6;
/** Validation images allowed to change sides between the two runs (see above). */
const FLIPS = 2;

function native(preset, { epochs, seed, trainSize }) {
  const args = ['train', '--data', DATA_DIR, '--preset', preset, '--epochs', String(epochs), '--seed', String(seed),
    '--train-size', String(trainSize), '--threads', '1', '--json'];
  const r = spawnSync(BIN, args, { cwd: ROOT, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`skywatch train failed (${r.status ?? r.signal}):\n${r.stdout}${r.stderr}`);
  return r.stdout.trim().split('\n').map((line) => JSON.parse(line));
}

for (const preset of ['lecture', 'conv']) {
  test(`${preset}: the wasm package trains as the native build does, up to rounding`, { timeout: 300_000 }, (t) => {
    prepare();
    const run = { epochs: 2, seed: 0, trainSize: 640 };
    const want = native(preset, run);
    const model = train(DATA_DIR, runConfig({ preset, ...run }));
    try {
      const got = model.history;
      assert.equal(want.length, run.epochs, 'native: one JSON line per epoch');
      assert.equal(got.length, run.epochs);
      const tests = bundle(DATA_DIR).test.count;
      for (let e = 0; e < run.epochs; e += 1) {
        const [n, w] = [want[e], got[e]];
        t.diagnostic(`epoch ${e}: loss native ${n.loss} wasm ${w.loss}; val native ${n.val_accuracy} wasm ${w.val_accuracy}`);
        assert.equal(w.epoch, n.epoch);
        assert.ok(Math.abs(w.loss - n.loss) <= LOSS_RTOL * n.loss, `epoch ${e}: loss ${w.loss} (wasm) against ${n.loss} (native)`);
        assert.ok(Math.abs(w.val_accuracy - n.val_accuracy) * tests <= FLIPS + 1e-6,
          `epoch ${e}: val accuracy ${w.val_accuracy} (wasm) against ${n.val_accuracy} (native)`);
        // The two must not be equal by accident of a run that learned nothing.
        assert.ok(n.val_accuracy > 0.6, `native val accuracy ${n.val_accuracy}`);
      }
    } finally {
      model.free();
    }
  });
}
