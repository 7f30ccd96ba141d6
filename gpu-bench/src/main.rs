//! Skywatch's WebGPU kernels timed natively through wgpu: GFLOP/s of the lecture's three GEMM
//! shapes and of the convolutional model's five (the book's `Net` on a batch of 64, as
//! `gpu::table::conv` states them) (`2 m n k / seconds`, many products in one compute pass, after a warm-up; each result
//! checked against an f64 CPU product) and the seconds of lecture training epochs (the browser
//! trainer's dispatches per batch, from the same kernel table, on synthetic images).
//!
//! ```text
//! cargo run --release -p skywatch-gpu-bench -- [--adapter TEXT] [--sweep] [--images N]
//!     [--epochs N] [--seconds S] [--gemm-source FILE] [--shape TEXT] [--list]
//! ```
//!
//! * `--adapter TEXT`: the first adapter whose "name | backend | type" contains TEXT (default:
//!   the first listed; `--list` lists them). Mesa's software Vulkan driver is "llvmpipe".
//!   Chromium's SwiftShader can be loaded natively with
//!   `VK_ICD_FILENAMES=/usr/lib/chromium/vk_swiftshader_icd.json`.
//! * `--sweep`: every tile of the kernel table for every shape, not only the chosen one.
//! * `--shape TEXT`: only the GEMM shapes whose name contains TEXT (e.g. `weight`).
//! * `--gemm-source FILE`: a replacement for gemm.wgsl compiled without the tile header (for a
//!   before/after of another GEMM kernel, e.g. `git show REV:src/gpu/kernels/gemm.wgsl`); the
//!   epoch then runs the stand-alone bias-gradient kernel, as that kernel had no fused bias.
//!
//! Figures, never pass/fail. On a software adapter they are CPU figures.

mod gpu;
mod train;

use gpu::Gpu;
use skywatch::bench::GEMM_SHAPES;
use skywatch::gpu::table::{BatchEntry, GemmSpec, TILES, bench_spec};

struct Args {
    adapter: Option<String>,
    sweep: bool,
    images: usize,
    epochs: usize,
    seconds: f64,
    gemm_source: Option<String>,
    shape: Option<String>,
    list: bool,
}

fn args() -> Args {
    let mut a = Args {
        adapter: None,
        sweep: false,
        images: 10_000,
        epochs: 2,
        seconds: 1.0,
        gemm_source: None,
        shape: None,
        list: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().unwrap_or_else(|| panic!("{flag} needs a value"));
        match flag.as_str() {
            "--adapter" => a.adapter = Some(value()),
            "--sweep" => a.sweep = true,
            "--images" => a.images = value().parse().expect("--images N"),
            "--epochs" => a.epochs = value().parse().expect("--epochs N"),
            "--seconds" => a.seconds = value().parse().expect("--seconds S"),
            "--gemm-source" => {
                let path = value();
                a.gemm_source = Some(std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}")));
            }
            "--shape" => a.shape = Some(value()),
            "--list" => a.list = true,
            other => panic!("unknown argument {other} (see the header of gpu-bench/src/main.rs)"),
        }
    }
    a
}

/// Deterministic operand values in [-1, 1).
fn operand(n: usize, salt: usize) -> Vec<f32> {
    (0..n).map(|i| ((i * 7919 + salt) % 2003) as f32 / 1001.5 - 1.0).collect()
}

/// `A B` in f64 for the spec's layout (row-major `[m, n]`).
fn reference(s: &GemmSpec, a: &[f32], b: &[f32]) -> Vec<f64> {
    let (m, n, k) = (s.m as usize, s.n as usize, s.k as usize);
    let at = |i: usize, p: usize| if s.a_trans { a[p * m + i] } else { a[i * k + p] } as f64;
    let bt = |p: usize, j: usize| if s.b_trans { b[j * k + p] } else { b[p * n + j] } as f64;
    let mut out = vec![0.0; m * n];
    for i in 0..m {
        for p in 0..k {
            let x = at(i, p);
            for j in 0..n {
                out[i * n + j] += x * bt(p, j);
            }
        }
    }
    out
}

/// GFLOP/s of `spec` on tile `t`, and the largest error against the f64 product.
fn time_gemm(gpu: &Gpu, spec: &GemmSpec, t: usize, seconds: f64, want: &[f64]) -> (f64, f64) {
    let (m, n, k) = (spec.m as usize, spec.n as usize, spec.k as usize);
    let a = gpu.storage(&train::f32_bytes(&operand(m * k, 1)));
    let b = gpu.storage(&train::f32_bytes(&operand(k * n, 2)));
    // A fused bias writes its M row sums after C.
    let c = gpu.zeros(((m * n + m) * 4) as u64);
    let scratch = gpu.zeros(spec.scratch_floats(t) * 4);
    let dummy = gpu.zeros(16);
    let (_table, batch) = gpu.batch_table(&[BatchEntry { rows: spec.m, ..Default::default() }]);
    let calls = train::gemm_dispatches(gpu, spec, t, [&a, &b, &c], &dummy, &scratch);
    let run = |reps: usize| {
        gpu.time(|pass| {
            gpu::select(pass, &batch, 0);
            for _ in 0..reps {
                for d in &calls {
                    d.encode(pass);
                }
            }
        })
    };
    let one = run(1);
    let got = gpu.read(&c, m * n);
    let err = got.iter().zip(want).map(|(g, w)| (*g as f64 - w).abs()).fold(0.0, f64::max);
    let reps = ((seconds / one.max(1e-6)) as usize).clamp(2, 2000);
    let per = run(reps) / reps as f64;
    (spec.flops() / per / 1e9, err)
}

fn main() {
    let args = args();
    let list = gpu::adapters();
    if args.list || list.is_empty() {
        println!("adapters:");
        for (name, _) in &list {
            println!("  {name}");
        }
        return;
    }
    let (name, adapter) = match &args.adapter {
        Some(text) => list
            .into_iter()
            .find(|(n, _)| n.to_lowercase().contains(&text.to_lowercase()))
            .unwrap_or_else(|| panic!("no adapter contains {text:?} (--list lists them)")),
        None => list.into_iter().next().expect("an adapter"),
    };
    let legacy = args.gemm_source.is_some();
    let gpu = Gpu::new(name, adapter, args.gemm_source);
    println!("adapter: {}", gpu.name);
    println!("limits: {:?}", gpu.limits);
    if legacy {
        println!("gemm.wgsl replaced by --gemm-source (no tile header)");
    }
    println!("\n| shape | M x K by K x N | tile (TM x TN x TK, RM x RN) | K splits | GFLOP/s | max abs error |");
    println!("|---|---|---|---|---|---|");
    let lecture = GEMM_SHAPES.iter().map(|&(shape, m, k, n)| (shape.to_string(), bench_spec(shape, m, k, n)));
    let shapes = lecture.chain(skywatch::gpu::table::conv::bench_shapes());
    for (shape, spec) in shapes.filter(|(s, _)| args.shape.as_ref().is_none_or(|t| s.contains(t.as_str()))) {
        let (m, k, n) = (spec.m as usize, spec.k as usize, spec.n as usize);
        // A replaced kernel has its own constants: the grid and split of tile 0, the 64x64x16
        // tile the kernel before the table used.
        let chosen = if legacy { 0 } else { spec.tile(&gpu.limits) };
        let tiles: Vec<usize> = if args.sweep && !legacy {
            (0..TILES.len()).filter(|&t| TILES[t].fits(&gpu.limits)).collect()
        } else {
            vec![chosen]
        };
        let (a, b) = (operand(m * k, 1), operand(k * n, 2));
        let want = reference(&spec, &a, &b);
        for t in tiles {
            let (gflops, err) = time_gemm(&gpu, &spec, t, args.seconds, &want);
            let tile = TILES[t];
            let label = if legacy {
                "replaced kernel".to_string()
            } else {
                let mark = if t == chosen { " (chosen)" } else { "" };
                format!("{t}: {}x{}x{}, {}x{}{mark}", tile.tm, tile.tn, tile.tk, tile.rm, tile.rn)
            };
            println!("| {shape} | {m}x{k} by {k}x{n} | {label} | {} | {gflops:.2} | {err:.1e} |", spec.split(t).0);
        }
    }
    train::lecture_epochs(&gpu, args.images, args.epochs, legacy);
}
