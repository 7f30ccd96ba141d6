//! `skywatch bench`: the benchmarks of `skywatch::bench`, natively, as JSON lines (figures, never
//! pass/fail).

use super::with_threads;
use clap::Args;
use serde_json::json;
use skywatch::Result;
use skywatch::bench::conv::conv_gemm_gflops;
use skywatch::bench::{GEMM_SHAPES, epoch_seconds, gemm_gflops, peak_gflops, timing_data};
use skywatch::config::TrainConfig;
use skywatch::data::Dataset;
use skywatch::matmul::Kernel;
use std::path::PathBuf;

/// Prints one JSON line; a closed pipe (`| head`) ends the benchmark quietly.
macro_rules! emit {
    ($($arg:tt)*) => {{
        use std::io::Write;
        if writeln!(std::io::stdout(), $($arg)*).is_err() {
            std::process::exit(0);
        }
    }};
}

#[derive(Args, Clone, Debug)]
pub struct BenchArgs {
    /// Thread counts to measure.
    #[arg(long, value_delimiter = ',', default_value = "1,2")]
    threads: Vec<usize>,
    /// Presets whose epochs are timed.
    #[arg(long, value_delimiter = ',', default_value = "lecture")]
    presets: Vec<String>,
    /// Epochs timed per preset and thread count (the median is reported, with the range).
    #[arg(long, default_value_t = 3)]
    epochs: usize,
    /// Time epochs on this bundle instead of the timing data (random pixels).
    #[arg(long)]
    data: Option<PathBuf>,
    /// Only the GEMM figures.
    #[arg(long)]
    gemm_only: bool,
}

/// Runs the benchmarks and prints one JSON object per line.
pub fn bench(args: &BenchArgs) -> Result<()> {
    let kernel = Kernel::best();
    emit!("{}", json!({"bench": "peak", "kernel": kernel.name(), "threads": 1, "gflops": round(peak_gflops())}));
    for &threads in &args.threads {
        with_threads(Some(threads), || {
            for (name, m, k, n) in GEMM_SHAPES {
                let g = gemm_gflops(kernel, threads, name, m, k, n);
                emit!(
                    "{}",
                    json!({"bench": "gemm", "shape": name, "m": m, "k": k, "n": n,
                           "kernel": kernel.name(), "threads": threads, "gflops": round(g)})
                );
            }
            for r in conv_gemm_gflops(0.5) {
                emit!(
                    "{}",
                    json!({"bench": "conv-gemm", "shape": r.shape, "m": r.m, "k": r.k, "n": r.n,
                           "kernel": kernel.name(), "threads": threads, "gflops": round(r.gflops)})
                );
            }
            Ok(())
        })?;
    }
    if args.gemm_only {
        return Ok(());
    }
    let data = std::sync::Arc::new(match &args.data {
        Some(dir) => Dataset::load(dir)?,
        None => timing_data(),
    });
    for preset in &args.presets {
        let config = TrainConfig::preset(preset)?;
        for &threads in &args.threads {
            with_threads(Some(threads), || {
                let mut secs = epoch_seconds(&config, std::sync::Arc::clone(&data), args.epochs)?;
                secs.sort_by(f64::total_cmp);
                let median = secs[secs.len() / 2];
                emit!(
                    "{}",
                    json!({"bench": "epoch", "preset": preset, "threads": threads, "kernel": kernel.name(),
                           "seconds": round(median), "min": round(secs[0]), "max": round(secs[secs.len() - 1]),
                           "samples_per_second": round(data.train.len() as f64 / median),
                           "data": if args.data.is_some() { "bundle" } else { "synthetic" }})
                );
                Ok(())
            })?;
        }
        // The process's high-water mark so far (Linux): data, model, optimizer and workspaces.
        if let Some(mb) = peak_rss_mb() {
            emit!("{}", json!({"bench": "memory", "after_preset": preset, "process_peak_mb": round(mb)}));
        }
    }
    Ok(())
}

/// Peak resident memory of this process in MB, from `VmHWM` in /proc/self/status.
fn peak_rss_mb() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

fn round(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}
