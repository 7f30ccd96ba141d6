//! Benchmarks: figures, never pass/fail. The measurements run natively (`skywatch bench`, in
//! `src/cli/bench.rs`, which prints them as JSON lines) and in wasm (the bench page calls them
//! through the exports of `src/wasm/bench.rs`). Behind the feature `bench`: the native CLI has it,
//! and so do the bench page's own wasm packages (`scripts/build --bench`), never the production
//! ones. A backend's own measurements (the WebGPU backend's) go in a file of their own here,
//! behind the same feature, and their wasm exports beside these in `src/wasm/bench.rs`.
//!
//! * `gemm`: GFLOP/s (`2 m n k / seconds`) of the three products of the lecture model's first
//!   layer on a batch of 64, in the layouts training uses: the forward `x W^T`
//!   (64x3072 by 3072x512), the weight gradient `dy^T x` (512x64 by 64x3072) and the input
//!   gradient `dy W` (64x512 by 512x3072, which training skips for the first layer).
//! * `conv`: the same for the products of the convolutional model `conv` ([`conv`]).
//! * `peak`: a register-only FMA loop, the ceiling a kernel can reach on one core.
//! * `epoch`: seconds per training epoch of a preset (10000 images, validation excluded), on
//!   [`timing_data`] unless `--data` names a bundle (speed does not depend on pixel values).

pub mod conv;

use crate::clock::Stopwatch;
use crate::data::{Dataset, RECORD_BYTES, Split};
use crate::matmul::{Kernel, gemm_with_threads};
use ndarray::Array2;
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// The products of one training step of the lecture model, in training's layouts.
pub const GEMM_SHAPES: [(&str, usize, usize, usize); 3] =
    [("forward x W^T", 64, 3072, 512), ("weight grad dy^T x", 512, 64, 3072), ("input grad dy W", 64, 512, 3072)];

/// GFLOP/s of one product on at most `threads` threads of the current pool, repeated for at
/// least half a second after a warm-up.
pub fn gemm_gflops(kernel: Kernel, threads: usize, shape: &str, m: usize, k: usize, n: usize) -> f64 {
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let mut rand = |r, c| Array2::from_shape_fn((r, c), |_| rng.random_range(-1.0f32..1.0));
    // Stored operands as training stores them; the view passed to the GEMM is the product's.
    let (a_store, b_store) = match shape {
        "forward x W^T" => (rand(m, k), rand(n, k)), // x [64,3072], W [512,3072]
        "weight grad dy^T x" => (rand(k, m), rand(k, n)), // dy [64,512], x [64,3072]
        _ => (rand(m, k), rand(k, n)),               // dy [64,512], W [512,3072]
    };
    let a = if shape.starts_with("weight") { a_store.t() } else { a_store.view() };
    let b = if shape.starts_with("forward") { b_store.t() } else { b_store.view() };
    let mut c = Array2::<f32>::zeros((m, n));
    let flops = 2.0 * (m * n * k) as f64;
    for _ in 0..3 {
        gemm_with_threads(kernel, threads, 1.0, &a, &b, 0.0, &mut c.view_mut());
    }
    let clock = Stopwatch::start();
    let mut reps = 0;
    while reps < 10 || clock.seconds() < 0.5 {
        gemm_with_threads(kernel, threads, 1.0, &a, &b, 0.0, &mut c.view_mut());
        reps += 1;
    }
    flops * reps as f64 / clock.seconds() / 1e9
}

/// Single-core FMA throughput with everything in registers: the ceiling for "% of peak"
/// (0 where no loop for this instruction set exists).
pub fn peak_gflops() -> f64 {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f") {
            // SAFETY: the feature was just detected.
            return unsafe { peak_avx512() };
        }
    }
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    {
        return peak_wasm();
    }
    #[allow(unreachable_code)]
    0.0
}

/// 12 independent `f32x4` multiply-add chains (fused with relaxed-simd): the instruction mix of
/// the wasm micro-kernel without its loads. Run in rounds, keeping the best: V8 first runs a
/// function in its baseline compiler and only later calls see the optimised code (wasm has no
/// on-stack replacement).
#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
fn peak_wasm() -> f64 {
    (0..8).map(|_| peak_wasm_round(std::hint::black_box(500_000))).fold(0.0, f64::max)
}

#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
#[inline(never)]
fn peak_wasm_round(iters: u64) -> f64 {
    use core::arch::wasm32::*;
    #[inline(always)]
    fn madd(a: v128, b: v128, c: v128) -> v128 {
        #[cfg(target_feature = "relaxed-simd")]
        {
            f32x4_relaxed_madd(a, b, c)
        }
        #[cfg(not(target_feature = "relaxed-simd"))]
        {
            f32x4_add(f32x4_mul(a, b), c)
        }
    }
    let a = f32x4_splat(std::hint::black_box(0.999_999));
    let b = f32x4_splat(std::hint::black_box(1e-7));
    let mut acc = [f32x4_splat(0.0); 12];
    let clock = Stopwatch::start();
    for _ in 0..iters {
        for v in acc.iter_mut() {
            *v = madd(*v, a, b);
        }
    }
    // Consume the result before reading the clock, or the loop may be moved past it.
    std::hint::black_box(acc.iter().map(|v| f32x4_extract_lane::<0>(*v)).sum::<f32>());
    let secs = clock.seconds();
    (iters * 12 * 4 * 2) as f64 / secs / 1e9
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn peak_avx512() -> f64 {
    use std::arch::x86_64::*;
    // 12 independent chains hide the FMA latency; 16 lanes x 2 flops each.
    let iters = std::hint::black_box(20_000_000u64);
    let mut acc = [_mm512_set1_ps(0.0); 12];
    let a = _mm512_set1_ps(0.999_999);
    let b = _mm512_set1_ps(1e-7);
    let clock = Stopwatch::start();
    for _ in 0..iters {
        for v in acc.iter_mut() {
            *v = _mm512_fmadd_ps(*v, a, b);
        }
    }
    // Consume the result before reading the clock, or the loop may be moved past it.
    std::hint::black_box(acc.iter().map(|v| _mm512_reduce_add_ps(*v)).sum::<f32>());
    let secs = clock.seconds();
    (iters * 12 * 16 * 2) as f64 / secs / 1e9
}

/// Seconds per training epoch of `config` (after one warm-up epoch), `epochs` times, on `data`.
pub fn epoch_seconds(
    config: &crate::config::TrainConfig,
    data: std::sync::Arc<Dataset>,
    epochs: usize,
) -> crate::error::Result<Vec<f64>> {
    let mut t = crate::train::Trainer::new(config.clone(), data)?;
    // The warm-up epoch lets page faults, packing buffers and caches settle.
    t.train_epoch(&mut |_| {})?;
    (0..epochs.max(1)).map(|_| t.train_epoch(&mut |_| {}).map(|s| s.seconds)).collect()
}

/// Training and validation images of [`timing_data`]: the sizes of CIFAR-2.
pub const TIMING_IMAGES: (usize, usize) = (10_000, 2_000);

/// What an epoch is timed on without a bundle: [`TIMING_IMAGES`] images of random pixels, the
/// labels alternating between the two classes.
pub fn timing_data() -> Dataset {
    timing_data_of(TIMING_IMAGES)
}

/// [`timing_data`] with `(train, test)` images (the WebGPU benchmark times fewer on a software
/// adapter).
pub fn timing_data_of((train, test): (usize, usize)) -> Dataset {
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let mut split = |n: usize| {
        let mut records = vec![0u8; n * RECORD_BYTES];
        rng.fill(&mut records[..]);
        for (i, label) in records.iter_mut().step_by(RECORD_BYTES).enumerate() {
            *label = (i % 2) as u8;
        }
        Split::from_records("timing data", 2, records).expect("labels 0 and 1 of 2 classes")
    };
    Dataset { classes: vec!["airplane".into(), "bird".into()], train: split(train), test: split(test) }
}
