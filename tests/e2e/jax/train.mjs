// The lecture MLP (3072-512-2, tanh, log-softmax + NLL, plain SGD lr 0.01, batch 64) trained by
// jax-js (@jax-js/jax, served from ./jax/) on its WebGPU backend: one jit-compiled step
// (value_and_grad and the SGD update fused by jax-js), training only, on N seeded random images
// uploaded to the device once. Writes {epochs: [seconds...], losses: [mean loss...], images} to
// window.__result (or {error}); the timing of an epoch ends when its parameters and loss sum are
// ready on the device.
import { blockUntilReady, defaultDevice, init, jit, nn, numpy as np, tree, valueAndGrad } from './jax/index.js';

const params = new URLSearchParams(location.search);
const N = Number(params.get('images') ?? 2000);
const EPOCHS = Number(params.get('epochs') ?? 2);
const B = 64;
const LR = 0.01;

/** mulberry32: a seeded uniform [0, 1) generator. */
function rng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** PyTorch's Linear initialisation: uniform in +-1/sqrt(fan_in). */
function uniform(next, n, bound) {
  const v = new Float32Array(n);
  for (let i = 0; i < n; i++) v[i] = (next() * 2 - 1) * bound;
  return v;
}

function loss(p, x, y) {
  const rows = x.shape[0];
  const h = np.tanh(np.matmul(x, p.w1).add(p.b1));
  const z = np.matmul(h, p.w2).add(p.b2);
  return nn.logSoftmax(z, -1).mul(y).sum().mul(-1 / rows);
}

const step = jit((p, x, y) => {
  const [l, g] = valueAndGrad(loss)(tree.ref(p), x, y);
  const next = tree.map((w, d) => w.sub(d.mul(LR)), p, g);
  return [next, l];
});

async function main() {
  const devices = await init();
  if (!devices.includes('webgpu')) throw new Error(`jax-js found no WebGPU device (devices: ${devices.join(', ')})`);
  defaultDevice('webgpu');
  const next = rng(0);
  let p = {
    w1: np.array(uniform(next, 3072 * 512, 1 / Math.sqrt(3072))).reshape([3072, 512]),
    b1: np.array(uniform(next, 512, 1 / Math.sqrt(3072))),
    w2: np.array(uniform(next, 512 * 2, 1 / Math.sqrt(512))).reshape([512, 2]),
    b2: np.array(uniform(next, 2, 1 / Math.sqrt(512))),
  };
  const xs = [];
  const ys = [];
  for (let start = 0; start < N; start += B) {
    const rows = Math.min(B, N - start);
    xs.push(np.array(uniform(next, rows * 3072, 1)).reshape([rows, 3072]));
    const onehot = new Float32Array(rows * 2);
    for (let r = 0; r < rows; r++) onehot[r * 2 + ((start + r) % 2)] = 1;
    ys.push(np.array(onehot).reshape([rows, 2]));
  }
  await blockUntilReady([p, xs, ys]);
  const epochs = [];
  const losses = [];
  for (let e = 0; e < EPOCHS; e++) {
    const t0 = performance.now();
    let sum = np.zeros([]);
    for (let b = 0; b < xs.length; b++) {
      const [q, l] = step(p, xs[b].ref, ys[b].ref);
      p = q;
      sum = sum.add(l.mul(xs[b].shape[0]));
    }
    await blockUntilReady([p, sum]);
    epochs.push((performance.now() - t0) / 1000);
    losses.push((await sum.data())[0] / N);
  }
  return { epochs, losses, images: N, batch: B };
}

main().then((r) => { window.__result = r; }, (e) => { window.__result = { error: String(e?.stack ?? e) }; })
  .finally(() => { document.getElementById('out').textContent = JSON.stringify(window.__result); });
