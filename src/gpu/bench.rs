//! WebGPU benchmarks (figures, never pass/fail), for `scripts/bench` through the wasm exports:
//!
//! * `gemm`: GFLOP/s (`2 m n k / seconds`) of the lecture model's three first-layer products on
//!   a batch of 64, in training's layouts (the shapes of `bench::GEMM_SHAPES`): forward
//!   `x W^T` (64x3072 by 3072x512), weight gradient `dy^T x` (512x64 by 64x3072), input gradient
//!   `dy W` (64x512 by 512x3072). Many products go into one compute pass, timed from submit to
//!   completion, so the figure includes the pass's overhead but no per-product synchronisation.
//! * `epoch`: seconds per training epoch of a preset on the GPU (synthetic images, validation
//!   excluded), after a warm-up epoch.
//!
//! On a software adapter (SwiftShader) these are correctness runs on the CPU, not GPU speed.

use super::device::Gpu;
use super::ops::Ops;
use super::table::bench_spec;
use super::trainer::GpuTrainer;
use crate::config::TrainConfig;
use crate::error::Result;
use crate::train::Trainer;
use serde::Serialize;
use std::sync::Arc;

/// One GEMM figure.
#[derive(Clone, Debug, Serialize)]
pub struct GemmRow {
    pub shape: &'static str,
    pub m: usize,
    pub k: usize,
    pub n: usize,
    pub gflops: f64,
    /// K chunks of the split-K (1: none).
    pub splits: u32,
    /// The GEMM tile (index into the kernel table `gpu::table::TILES`).
    pub tile: usize,
}

/// GFLOP/s of the lecture shapes on `gpu`: each timed over enough products for about
/// `seconds` (one pass), after a warm-up.
pub async fn gemm(gpu: &Gpu, seconds: f64) -> Result<Vec<GemmRow>> {
    let ops = Ops::new(gpu).await?;
    let mut rows = Vec::new();
    for &(shape, m, k, n) in &crate::bench::GEMM_SHAPES {
        let spec = bench_spec(shape, m, k, n);
        let one = ops.time_gemm(&spec, 1).await?;
        let reps = ((seconds / one.max(1e-6)) as usize).clamp(2, 2000);
        let per = ops.time_gemm(&spec, reps).await?;
        let (tile, splits) = ops.tile_and_splits(&spec);
        rows.push(GemmRow { shape, m, k, n, gflops: spec.flops() / per / 1e9, splits, tile });
    }
    Ok(rows)
}

/// Seconds of each of `epochs` epochs of `config` on the GPU (after a warm-up epoch), on
/// synthetic CIFAR-2-sized data of `images` training images.
pub async fn epoch_seconds(gpu: &Gpu, config: &TrainConfig, images: usize, epochs: usize) -> Result<Vec<f64>> {
    let data = Arc::new(crate::bench::timing_data_of((images, crate::bench::TIMING_IMAGES.1)));
    let mut t = GpuTrainer::with_gpu(gpu, Trainer::new(config.clone(), data)?).await?;
    t.train_epoch(&mut |_| {}).await?;
    let mut out = Vec::new();
    for _ in 0..epochs.max(1) {
        out.push(t.train_epoch(&mut |_| {}).await?.seconds);
    }
    Ok(out)
}
