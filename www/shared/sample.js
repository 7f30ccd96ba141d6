// The gallery's seeded choice of test images, kept free of the page's state so that the tests
// (tests/e2e/page.test.mjs) can run the same draw in Node.

/** mulberry32: a small seeded generator of floats in [0, 1). */
export function rng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** `k` distinct indices from `0..n`, in random order, determined by `seed` and `draw`. */
export function sampleIndices(n, k, seed, draw) {
  // Mix the (possibly large) page seed and the draw number into 32 bits.
  const hi = Math.floor(seed / 4294967296) >>> 0;
  const next = rng(Math.imul((seed >>> 0) ^ Math.imul(hi, 0x85ebca6b), 0x9e3779b1) ^ Math.imul(draw + 1, 0xc2b2ae35));
  const idx = Array.from({ length: n }, (_, i) => i);
  const m = Math.min(k, n);
  for (let i = 0; i < m; i++) {
    const j = i + Math.floor(next() * (n - i));
    [idx[i], idx[j]] = [idx[j], idx[i]];
  }
  return idx.slice(0, m);
}
