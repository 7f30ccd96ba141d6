// The wasm packages the worker chooses from, each as a literal `import()`: the form bundlers
// (Vite, webpack, Rollup) follow, so that a bundled widget carries all three and its wasm (the
// glue loads it as `new URL('skywatch_bg.wasm', import.meta.url)`, also literal).
//   pkg/               single-threaded, simd128 (any page)
//   pkg-threads/       rayon threads, relaxed SIMD (cross-origin isolated pages)
//   pkg-threads-simd/  rayon threads, simd128 only (Safari)

export const PACKAGES = {
  'pkg': () => import('../pkg/skywatch.js'),
  'pkg-threads': () => import('../pkg-threads/skywatch.js'),
  'pkg-threads-simd': () => import('../pkg-threads-simd/skywatch.js'),
};

/** The benchmark build of package `name` (`pkg*-bench/`, `scripts/build --bench`), which only the
 *  bench page loads and which neither `skywatch build` nor `skywatch pack` ships: the one computed
 *  import, left alone by bundlers (a literal one would fail their build where it is missing). */
export function benchPackage(name) {
  const url = new URL(`../${name}-bench/skywatch.js`, import.meta.url).href;
  return import(/* @vite-ignore */ /* webpackIgnore: true */ url);
}
