//! The benchmark exports for the bench page (`www/bench.html`, driven by `scripts/bench`):
//! figures measured in the page's Worker by the functions of `crate::bench`. Only in the packages
//! built with the feature `bench`; benchmarks of another backend (WebGPU) are exported here too.

use super::gpu::{promise, to_js_value};
use super::{on_pool, to_js};
use crate::config::TrainConfig;
use crate::gpu::Gpu;
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

/// Benchmark: GFLOP/s of the convolutional model's products on this package's pool, as
/// training splits them (`crate::bench::conv`), as `[{shape, m, k, n, gflops}]`.
#[wasm_bindgen(js_name = benchConvGemm)]
pub fn bench_conv_gemm() -> Result<JsValue, JsError> {
    to_js(&on_pool(|| crate::bench::conv::conv_gemm_gflops(0.5)))
}

/// Benchmark: seconds of each of `epochs` training epochs of a preset on the timing data
/// (10000 images of random pixels), after a warm-up epoch.
#[wasm_bindgen(js_name = benchEpochs)]
pub fn bench_epochs(preset: &str, epochs: usize) -> Result<Vec<f64>, JsError> {
    let config = TrainConfig::preset(preset)?;
    let data = Arc::new(crate::bench::timing_data());
    Ok(on_pool(|| crate::bench::epoch_seconds(&config, data, epochs))?)
}

#[wasm_bindgen(typescript_custom_section)]
const TS_GPU_BENCH_TYPES: &str = r#"
export interface GpuGemmRow { shape: string; m: number; k: number; n: number; gflops: number; splits: number; tile: number; }
export interface GpuGemmBench { adapter: AdapterReport; rows: GpuGemmRow[]; }
export interface GpuEpochBench { adapter: AdapterReport; seconds: number[]; }
"#;

/// Benchmark: GFLOP/s of the lecture model's three first-layer products on the GPU, each timed
/// for about `seconds` (default 0.5), with the adapter's description.
#[wasm_bindgen(js_name = gpuBenchGemm, unchecked_return_type = "Promise<GpuGemmBench>")]
pub fn gpu_bench_gemm(seconds: Option<f64>) -> js_sys::Promise {
    promise(async move {
        #[derive(Serialize)]
        struct Out {
            adapter: crate::gpu::AdapterReport,
            rows: Vec<crate::gpu::bench::GemmRow>,
        }
        let gpu = Gpu::request().await?;
        let rows = crate::gpu::bench::gemm(&gpu, seconds.unwrap_or(0.5)).await?;
        to_js_value(&Out { adapter: gpu.report().clone(), rows })
    })
}

/// Benchmark: seconds of each of `epochs` GPU epochs of a preset on synthetic data of `images`
/// training images (default 10000), after a warm-up epoch.
#[wasm_bindgen(js_name = gpuBenchEpochs, unchecked_return_type = "Promise<GpuEpochBench>")]
pub fn gpu_bench_epochs(preset: &str, epochs: usize, images: Option<usize>) -> js_sys::Promise {
    let config = TrainConfig::preset(preset);
    promise(async move {
        #[derive(Serialize)]
        struct Out {
            adapter: crate::gpu::AdapterReport,
            seconds: Vec<f64>,
        }
        let gpu = Gpu::request().await?;
        let seconds = crate::gpu::bench::epoch_seconds(&gpu, &config?, images.unwrap_or(10_000), epochs).await?;
        to_js_value(&Out { adapter: gpu.report().clone(), seconds })
    })
}
