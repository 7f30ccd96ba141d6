// The worker's side of the browser benchmark (bench.html, scripts/bench): the package's peak,
// GEMM and synthetic epoch timings on this worker's threads, or with `gpu: true` the WebGPU
// backend's. Each figure is posted as one `bench-result` row, then `bench-done`. Only the
// benchmark builds (`pkg*-bench/`, scripts/build --bench) have the exports it calls.
// `ctx` is worker.js's: {state, post}.

/** What every WebGPU benchmark row says about its adapter; a software adapter's figures are
 *  correctness runs, not GPU speed. */
function adapterFields(adapter) {
  return {
    adapter: adapter.description,
    software: adapter.fallback,
    ...(adapter.fallback ? { note: 'software adapter (no GPU): a correctness run, not GPU speed' } : {}),
  };
}

/** Browser benchmark: peak, GEMM and epoch timings with this worker's thread count; with
 *  `gpu: true` the WebGPU backend's instead (GEMM GFLOP/s per shape, seconds per epoch of
 *  `images` synthetic training images), on whatever adapter the browser offers. */
export async function bench({ state, post }, { presets = ['lecture'], epochs = 3, kernels = true, gpu = false, images = 10000 }) {
  const w = state.wasm;
  const mode = state.mode;
  if (gpu) {
    if (kernels) {
      const g = await w.gpuBenchGemm();
      for (const r of g.rows) post({ type: 'bench-result', row: { bench: 'gpu-gemm', ...adapterFields(g.adapter), ...r } });
    }
    for (const preset of presets) {
      const g = await w.gpuBenchEpochs(preset, epochs, images);
      const secs = [...g.seconds].sort((a, b) => a - b);
      post({ type: 'bench-result', row: { bench: 'gpu-epoch', preset, ...adapterFields(g.adapter), images, seconds: secs[secs.length >> 1], min: secs[0], max: secs[secs.length - 1], data: 'synthetic' } });
    }
    post({ type: 'bench-done' });
    return;
  }
  if (kernels) {
    post({ type: 'bench-result', row: { bench: 'peak', kernel: mode.kernel, threads: 1, gflops: w.benchPeak() } });
    // In the threaded package, 1 thread too: the scaling within one build.
    for (const t of mode.threads > 1 ? [1, mode.threads] : [1]) {
      for (const r of w.benchGemm(t)) post({ type: 'bench-result', row: { bench: 'gemm', kernel: mode.kernel, threads: t, ...r } });
    }
    // The convolutional model's products, split between the pool's threads as training does.
    for (const r of w.benchConvGemm()) post({ type: 'bench-result', row: { bench: 'conv-gemm', kernel: mode.kernel, threads: mode.threads, ...r } });
  }
  for (const preset of presets) {
    const secs = Array.from(w.benchEpochs(preset, epochs)).sort((a, b) => a - b);
    post({ type: 'bench-result', row: { bench: 'epoch', preset, kernel: mode.kernel, threads: mode.threads, seconds: secs[secs.length >> 1], min: secs[0], max: secs[secs.length - 1], data: 'synthetic' } });
  }
  post({ type: 'bench-done' });
}
