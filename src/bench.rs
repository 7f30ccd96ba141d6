//! Native benchmarks, printed as JSON lines (figures, never pass/fail).
//!
//! * `gemm`: GFLOP/s (`2 m n k / seconds`) of the three products of the lecture model's first
//!   layer on a batch of 64, in the layouts training uses: the forward `x W^T`
//!   (64x3072 by 3072x512), the weight gradient `dy^T x` (512x64 by 64x3072) and the input
//!   gradient `dy W` (64x512 by 512x3072, which training skips for the first layer).
//! * `peak`: a register-only FMA loop, the ceiling a kernel can reach on one core.
//! * `epoch`: seconds per training epoch of a preset (10000 images, validation excluded), with
//!   synthetic images unless `--data` names a bundle (speed does not depend on pixel values).

use crate::config::TrainConfig;
use crate::data::{Dataset, PIXELS, RECORD_BYTES, Split};
use crate::error::{Error, Result};
use crate::matmul::{Kernel, gemm_with};
use crate::train::{Stopwatch, Trainer};
use ndarray::Array2;
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::json;
use std::path::PathBuf;

#[derive(clap::Args, Clone, Debug)]
pub struct BenchArgs {
    /// Thread counts to measure.
    #[arg(long, value_delimiter = ',', default_value = "1,2")]
    pub threads: Vec<usize>,
    /// Presets whose epochs are timed.
    #[arg(long, value_delimiter = ',', default_value = "lecture")]
    pub presets: Vec<String>,
    /// Epochs timed per preset and thread count (the median is reported, with the range).
    #[arg(long, default_value_t = 3)]
    pub epochs: usize,
    /// Time epochs on this bundle instead of synthetic images.
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Only the GEMM figures.
    #[arg(long)]
    pub gemm_only: bool,
}

/// Runs the benchmarks and prints one JSON object per line.
pub fn run(args: &BenchArgs) -> Result<()> {
    let kernel = Kernel::best();
    println!("{}", json!({"bench": "peak", "kernel": kernel.name(), "threads": 1, "gflops": round(peak_gflops())}));
    for &threads in &args.threads {
        in_pool(threads, || {
            for (name, m, k, n) in GEMM_SHAPES {
                let g = gemm_gflops(kernel, name, m, k, n);
                println!(
                    "{}",
                    json!({"bench": "gemm", "shape": name, "m": m, "k": k, "n": n,
                           "kernel": kernel.name(), "threads": threads, "gflops": round(g)})
                );
            }
        })?;
    }
    if args.gemm_only {
        return Ok(());
    }
    let data = std::sync::Arc::new(match &args.data {
        Some(dir) => Dataset::load(dir)?,
        None => synthetic_cifar2(10_000, 2_000, 0),
    });
    for preset in &args.presets {
        let config = TrainConfig::preset(preset)?;
        for &threads in &args.threads {
            in_pool(threads, || -> Result<()> {
                let mut t = Trainer::new(config.clone(), std::sync::Arc::clone(&data))?;
                // One warm-up epoch: page faults, packing buffers and caches settle.
                t.train_epoch(&mut |_| {})?;
                let mut secs: Vec<f64> = (0..args.epochs.max(1))
                    .map(|_| t.train_epoch(&mut |_| {}).map(|s| s.seconds))
                    .collect::<Result<_>>()?;
                secs.sort_by(f64::total_cmp);
                let median = secs[secs.len() / 2];
                println!(
                    "{}",
                    json!({"bench": "epoch", "preset": preset, "threads": threads, "kernel": kernel.name(),
                           "seconds": round(median), "min": round(secs[0]), "max": round(secs[secs.len() - 1]),
                           "samples_per_second": round(t.train_len() as f64 / median),
                           "data": if args.data.is_some() { "bundle" } else { "synthetic" }})
                );
                Ok(())
            })??;
        }
    }
    Ok(())
}

/// The products of one training step of the lecture model, in training's layouts.
pub const GEMM_SHAPES: [(&str, usize, usize, usize); 3] =
    [("forward x W^T", 64, 3072, 512), ("weight grad dy^T x", 512, 64, 3072), ("input grad dy W", 64, 512, 3072)];

fn in_pool<T: Send>(threads: usize, f: impl FnOnce() -> T + Send) -> Result<T> {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .map_err(|e| Error::Config(format!("cannot start {threads} threads: {e}")))?;
    Ok(pool.install(f))
}

/// GFLOP/s of one product, repeated for at least half a second after a warm-up.
pub fn gemm_gflops(kernel: Kernel, shape: &str, m: usize, k: usize, n: usize) -> f64 {
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
        gemm_with(kernel, 1.0, &a, &b, 0.0, &mut c.view_mut());
    }
    let clock = Stopwatch::start();
    let mut reps = 0;
    while reps < 10 || clock.seconds() < 0.5 {
        gemm_with(kernel, 1.0, &a, &b, 0.0, &mut c.view_mut());
        reps += 1;
    }
    flops * reps as f64 / clock.seconds() / 1e9
}

/// Single-core FMA throughput with everything in registers: the ceiling for "% of peak".
pub fn peak_gflops() -> f64 {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f") {
            // SAFETY: the feature was just detected.
            return unsafe { peak_avx512() };
        }
    }
    0.0
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn peak_avx512() -> f64 {
    use std::arch::x86_64::*;
    // 12 independent chains hide the FMA latency; 16 lanes x 2 flops each.
    let iters = 20_000_000u64;
    let mut acc = [_mm512_set1_ps(0.0); 12];
    let a = _mm512_set1_ps(0.999_999);
    let b = _mm512_set1_ps(1e-7);
    let clock = Stopwatch::start();
    for _ in 0..iters {
        for v in acc.iter_mut() {
            *v = _mm512_fmadd_ps(*v, a, b);
        }
    }
    let secs = clock.seconds();
    let sink: f32 = acc.iter().map(|v| _mm512_reduce_add_ps(*v)).sum();
    std::hint::black_box(sink);
    (iters * 12 * 16 * 2) as f64 / secs / 1e9
}

/// A CIFAR-2-sized dataset of random pixels and balanced labels (for timing only).
pub fn synthetic_cifar2(train: usize, test: usize, seed: u64) -> Dataset {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut split = |n: usize| {
        let mut rec = vec![0u8; n * RECORD_BYTES];
        for (i, r) in rec.chunks_exact_mut(RECORD_BYTES).enumerate() {
            r[0] = (i % 2) as u8;
            rng.fill(&mut r[1..=PIXELS]);
        }
        Split::from_records("synthetic", 2, rec).expect("valid synthetic records")
    };
    Dataset { classes: vec!["airplane".into(), "bird".into()], train: split(train), test: split(test) }
}

fn round(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}
