//! The benchmark exports for the bench page (`www/bench.html`, driven by `scripts/bench`):
//! figures measured in the page's Worker by the functions of `crate::bench`. Only in the packages
//! built with the feature `bench`; benchmarks of another backend (WebGPU) are exported here too.

use super::{on_pool, to_js};
use crate::config::TrainConfig;
use crate::matmul::Kernel;
use serde::Serialize;
use std::sync::Arc;
use wasm_bindgen::prelude::*;

/// Benchmark: single-thread register-only FMA throughput, GFLOP/s.
#[wasm_bindgen(js_name = benchPeak)]
pub fn bench_peak() -> f64 {
    crate::bench::peak_gflops()
}

/// Benchmark: GFLOP/s of the lecture model's three first-layer products on at most `threads`
/// threads, as `[{shape, m, k, n, gflops}]`.
#[wasm_bindgen(js_name = benchGemm)]
pub fn bench_gemm(threads: usize) -> Result<JsValue, JsError> {
    #[derive(Serialize)]
    struct Row {
        shape: &'static str,
        m: usize,
        k: usize,
        n: usize,
        gflops: f64,
    }
    let rows: Vec<Row> = crate::bench::GEMM_SHAPES
        .iter()
        .map(|&(shape, m, k, n)| Row {
            shape,
            m,
            k,
            n,
            gflops: on_pool(|| crate::bench::gemm_gflops(Kernel::best(), threads, shape, m, k, n)),
        })
        .collect();
    to_js(&rows)
}

/// Benchmark: seconds of each of `epochs` training epochs of a preset on the timing data
/// (10000 images of random pixels), after a warm-up epoch.
#[wasm_bindgen(js_name = benchEpochs)]
pub fn bench_epochs(preset: &str, epochs: usize) -> Result<Vec<f64>, JsError> {
    let config = TrainConfig::preset(preset)?;
    let data = Arc::new(crate::bench::timing_data());
    Ok(on_pool(|| crate::bench::epoch_seconds(&config, data, epochs))?)
}
