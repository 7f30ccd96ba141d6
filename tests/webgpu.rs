//! The WebGPU backend in headless Chromium, in a dedicated Worker as the page trains: each kernel
//! against the CPU reference on odd sizes (not multiples of any GEMM tile; every tile of the
//! kernel table on every GEMM case), then whole runs
//! against the CPU `Trainer` (same seed, data and batch order), divergence, save and resume across
//! backends, and device loss.
//!
//! Needs a WebGPU adapter: Chromium with `--enable-unsafe-webgpu --enable-unsafe-swiftshader
//! --use-webgpu-adapter=swiftshader --enable-features=Vulkan` (SwiftShader, a software adapter;
//! `webdriver.json` at the crate root passes these flags to chromedriver). Built only with the
//! `webgpu-tests` feature, which `scripts/test` turns on for its Chromium run:
//! `wasm-pack test --headless --chrome -- --no-default-features --features webgpu-tests --test webgpu`.
//! Without an adapter every test fails, saying which flags are missing. The convolution kernels
//! and the convolutional model have their own module, `webgpu/conv.rs`; data augmentation in the
//! gather and augmented runs theirs, `webgpu/augment.rs`.
#![cfg(target_arch = "wasm32")]

#[path = "webgpu/augment.rs"]
mod augment;
#[path = "webgpu/conv.rs"]
mod conv;

use ndarray::{Array2, ArrayView2};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use skywatch::config::{Activation, LossKind, OptimizerConfig, OptimizerKind, TrainConfig};
use skywatch::data::{Dataset, Manifest, Normalizer, PIXELS, RECORD_BYTES, SourceInfo, Split};
use skywatch::gpu::kernels::{BatchEntry, Epilogue, GemmSpec, RowsDim, TILES};
use skywatch::gpu::ops::Ops;
use skywatch::gpu::{Gpu, GpuTrainer};
use skywatch::layers::{activation, log_softmax_backward, log_softmax_forward, tanh};
use skywatch::loss::{argmax, loss_rows_and_grad};
use skywatch::matmul::gemm_reference;
use skywatch::optim::Optimizer;
use skywatch::train::Trainer;
use skywatch::update::SgdStep;
use skywatch::wasm::{Data, GpuSession, Session};
use skywatch::{Error, ModelConfig};
use std::sync::Arc;
use wasm_bindgen::convert::TryFromJsValue;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_dedicated_worker);

const FLAGS: &str =
    "--enable-unsafe-webgpu --enable-unsafe-swiftshader --use-webgpu-adapter=swiftshader --enable-features=Vulkan";

/// A device, or a loud failure: these tests never skip.
async fn gpu() -> Gpu {
    match Gpu::request().await {
        Ok(gpu) => gpu,
        Err(e) => panic!(
            "these tests need WebGPU and the browser offers no adapter ({e}). Run them in Chromium with {FLAGS} \
             (webdriver.json at the crate root passes them to chromedriver; scripts/test does this)"
        ),
    }
}

async fn ops() -> Ops {
    Ops::new(&gpu().await).await.expect("the kernels compile")
}

fn random(n: usize, rng: &mut ChaCha8Rng) -> Vec<f32> {
    (0..n).map(|_| rng.random_range(-1.0f32..1.0)).collect()
}

fn view(v: &[f32], r: usize, c: usize) -> ArrayView2<'_, f32> {
    ArrayView2::from_shape((r, c), v).unwrap()
}

/// `|got - want| <= tol (1 + |want|)` element-wise, with the first offender in the message.
fn assert_close(got: &[f32], want: &[f32], tol: f32, what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: lengths");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!((g - w).abs() <= tol * (1.0 + w.abs()), "{what}: element {i}: GPU {g}, CPU {w}");
    }
}

#[wasm_bindgen_test]
async fn probe_names_the_adapter() {
    let gpu = gpu().await;
    let r = skywatch::gpu::probe().await;
    assert!(r.available, "{r:?}");
    assert!(!r.description.is_empty());
    assert_eq!(&r, gpu.report());
    // SwiftShader says it is a fallback adapter, and the report says why auto would not take it.
    if r.fallback {
        assert_eq!(r.reason.as_deref(), Some("the WebGPU adapter is software (fallback)"));
        assert!(r.description.ends_with("(software)"), "{}", r.description);
    } else {
        assert_eq!(r.reason, None);
    }
}

#[wasm_bindgen_test]
async fn a_shader_error_names_file_line_and_column() {
    let gpu = gpu().await;
    let good = "fn one() -> f32 {\n    return 1.0;\n}\n";
    let bad = "fn two() -> f32 {\n    return 2.0 +;\n}\n";
    let err = match gpu.module(&[("good.wgsl", good), ("bad.wgsl", bad)]).await {
        Err(Error::Gpu(m)) => m,
        other => panic!("expected a compile error, got {:?}", other.map(|_| ())),
    };
    assert!(err.starts_with("a WebGPU shader failed to compile: bad.wgsl:2:"), "{err}");
}

/// The CPU result of one GEMM spec: the f64 reference product, then the epilogue as the CPU's
/// layers and optimizer apply it, on rows `..rows` of M (or K) when the batch sets them.
fn gemm_cpu(spec: &GemmSpec, a: &[f32], b: &[f32], c: &[f32], aux: &[f32], rows: usize) -> Vec<f32> {
    let (m, n, k) = (spec.m as usize, spec.n as usize, spec.k as usize);
    let (m_eff, k_eff) = match spec.rows {
        RowsDim::M => (rows, k),
        RowsDim::K => (m, rows),
        RowsDim::None => (m, k),
    };
    let a_store = &a[spec.a_off as usize..];
    let b_store = &b[spec.b_off as usize..];
    let (lda, ldb) = (spec.lda as usize, spec.ldb as usize);
    let av =
        Array2::from_shape_fn(
            (m_eff, k_eff),
            |(i, p)| {
                if spec.a_trans { a_store[p * lda + i] } else { a_store[i * lda + p] }
            },
        );
    let bv = Array2::from_shape_fn(
        (k_eff, n),
        |(p, j)| {
            if spec.b_trans { b_store[j * ldb + p] } else { b_store[p * ldb + j] }
        },
    );
    let mut prod = Array2::zeros((m_eff, n));
    gemm_reference(1.0, &av.view(), &bv.view(), 0.0, &mut prod.view_mut());
    let mut out = c.to_vec();
    let ldc = spec.ldc as usize;
    let c_off = spec.c_off as usize;
    let aux_off = spec.aux_off as usize;
    let mut tile = prod.clone();
    match spec.epilogue {
        Epilogue::BiasAct(act) => {
            for mut row in tile.rows_mut() {
                for (j, v) in row.iter_mut().enumerate() {
                    *v += aux[aux_off + j];
                }
            }
            match act {
                Some(Activation::Tanh) => activation::tanh_forward(tile.view_mut()),
                Some(Activation::Relu) => activation::relu_forward(tile.view_mut()),
                None => {}
            }
        }
        Epilogue::ActGrad(act) => {
            let y = Array2::from_shape_fn((m_eff, n), |(i, j)| aux[aux_off + i * ldc + j]);
            match act {
                Some(Activation::Tanh) => activation::tanh_backward(y.view(), tile.view_mut()),
                Some(Activation::Relu) => activation::relu_backward(y.view(), tile.view_mut()),
                None => {}
            }
        }
        Epilogue::Store => {}
        Epilogue::Sgd { lr, weight_decay } => {
            for ((i, j), v) in tile.indexed_iter_mut() {
                let mut p = out[c_off + i * ldc + j];
                SgdStep { lr, weight_decay }.apply(&mut p, *v);
                *v = p;
            }
        }
    }
    for ((i, j), v) in tile.indexed_iter() {
        out[c_off + i * ldc + j] = *v;
    }
    if let Some(off) = spec.bias_off {
        // The fused bias gradient: each row of A summed over K in order (as the CPU's
        // Linear::backward sums dy's rows), through the same epilogue.
        for (i, row) in av.rows().into_iter().enumerate() {
            let s = row.iter().fold(0.0f32, |s, &v| s + v);
            let p = &mut out[off as usize + i];
            match spec.epilogue {
                Epilogue::Sgd { lr, weight_decay } => SgdStep { lr, weight_decay }.apply(p, s),
                _ => *p = s,
            }
        }
    }
    out
}

#[wasm_bindgen_test]
async fn gemm_matches_the_reference_on_odd_sizes() {
    let ops = ops().await;
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    let tanh = Some(Activation::Tanh);
    let relu = Some(Activation::Relu);
    // (m, n, k, a_trans, b_trans, epilogue, rows dimension, rows)
    let cases = [
        (1, 1, 1, false, false, Epilogue::Store, RowsDim::None, 0),
        (5, 9, 11, false, true, Epilogue::BiasAct(tanh), RowsDim::None, 0),
        (37, 70, 19, true, false, Epilogue::Store, RowsDim::None, 0),
        (65, 130, 300, false, true, Epilogue::BiasAct(relu), RowsDim::M, 61),
        // Few output tiles and a deep K: split into chunks, reduced in a second pass.
        (64, 67, 1100, false, true, Epilogue::BiasAct(tanh), RowsDim::M, 64),
        (33, 77, 777, false, true, Epilogue::BiasAct(None), RowsDim::None, 0),
        (63, 129, 35, false, false, Epilogue::ActGrad(tanh), RowsDim::M, 50),
        (17, 100, 600, false, false, Epilogue::ActGrad(relu), RowsDim::M, 17),
        (70, 95, 64, true, false, Epilogue::Sgd { lr: 0.01, weight_decay: 0.0 }, RowsDim::K, 45),
        (70, 95, 33, true, false, Epilogue::Sgd { lr: 0.05, weight_decay: 0.01 }, RowsDim::K, 33),
        (66, 130, 64, true, false, Epilogue::Store, RowsDim::K, 64),
        // The weight gradient with its bias gradient fused (row sums of A into c[bias_off..]).
        (70, 95, 64, true, false, Epilogue::Sgd { lr: 0.01, weight_decay: 0.001 }, RowsDim::K, 45),
        (131, 67, 37, true, false, Epilogue::Store, RowsDim::K, 37),
    ];
    // Every tile of the kernel table on every case (the last two cases with the fused bias).
    let fused_from = cases.len() - 2;
    for (case, (m, n, k, ta, tb, epilogue, rows_dim, rows)) in cases.into_iter().enumerate() {
        for tile in 0..TILES.len() {
            let mut spec = GemmSpec::dense(m, n, k, ta, tb, epilogue);
            spec.rows = rows_dim;
            spec.tile = Some(tile);
            // Operands as windows of larger buffers, as the parameters are in the flat buffer.
            spec.a_off = 3;
            spec.b_off = 5;
            spec.c_off = 7;
            spec.aux_off = if matches!(epilogue, Epilogue::BiasAct(_)) { 2 } else { 7 };
            let (m_, n_, k_) = (m as usize, n as usize, k as usize);
            let a = random(3 + m_ * k_, &mut rng);
            let b = random(5 + k_ * n_, &mut rng);
            let c = random(7 + m_ * n_ + m_ + 4, &mut rng);
            if case >= fused_from {
                spec.bias_off = Some(7 + (m_ * n_) as u32);
            }
            let aux = if matches!(epilogue, Epilogue::ActGrad(_)) {
                // A previous layer's output: tanh values, or ReLU outputs with exact zeros.
                let mut y = random(7 + m_ * n_, &mut rng);
                if epilogue == Epilogue::ActGrad(relu) {
                    y.iter_mut().for_each(|v| *v = v.max(0.0));
                }
                y
            } else {
                random(2 + n_, &mut rng)
            };
            let want = gemm_cpu(&spec, &a, &b, &c, &aux, rows as usize);
            let got = ops.gemm(&spec, &a, &b, &c, Some(&aux), rows).await.unwrap();
            let what = format!(
                "{m}x{n}x{k} a_trans={ta} b_trans={tb} {epilogue:?} rows {rows_dim:?}={rows} tile {tile} bias {:?} splits {:?}",
                spec.bias_off,
                spec.split(tile)
            );
            assert_close(&got, &want, 1e-4, &what);
            if spec.rows == RowsDim::M && (rows as usize) < m_ {
                // Rows past the batch keep their old values.
                assert_eq!(&got[7 + rows as usize * n_..], &c[7 + rows as usize * n_..], "{what}: rows past the batch");
            }
        }
    }
}

#[wasm_bindgen_test]
async fn activation_kernels_match_the_layers() {
    let ops = ops().await;
    let mut rng = ChaCha8Rng::seed_from_u64(12);
    let mut x: Vec<f32> = random(1003, &mut rng).iter().map(|v| v * 12.0).collect();
    x.extend([0.0, -0.0, 1e-30, -1e-7, 8.9, 9.5, -40.0, 1e30]);
    for act in [Activation::Tanh, Activation::Relu] {
        let got = ops.activation(act, false, &x, None).await.unwrap();
        let mut want = Array2::from_shape_vec((1, x.len()), x.clone()).unwrap();
        match act {
            Activation::Tanh => activation::tanh_forward(want.view_mut()),
            Activation::Relu => activation::relu_forward(want.view_mut()),
        }
        // The same formula as the CPU's tanh: within 2 ulp (the GPU may fuse multiply-adds).
        assert_close(&got, want.as_slice().unwrap(), 3e-7, &format!("{act:?} forward"));
        assert_eq!(got[x.len() - 7], 0.0);
        assert!((got[x.len() - 8] - tanh(x[x.len() - 8])).abs() <= 2e-7);

        let y = got;
        let d = random(x.len(), &mut rng);
        let back = ops.activation(act, true, &d, Some(&y)).await.unwrap();
        let mut want = Array2::from_shape_vec((1, d.len()), d.clone()).unwrap();
        let yv = view(&y, 1, y.len());
        match act {
            Activation::Tanh => activation::tanh_backward(yv, want.view_mut()),
            Activation::Relu => activation::relu_backward(yv, want.view_mut()),
        }
        assert_close(&back, want.as_slice().unwrap(), 1e-6, &format!("{act:?} backward"));
    }
}

/// `n` records of two classes, the class shifting the pixels so that it can be learnt.
fn records(n: usize, seed: u64) -> Vec<u8> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut rec = vec![0u8; n * RECORD_BYTES];
    for (i, r) in rec.chunks_exact_mut(RECORD_BYTES).enumerate() {
        let label = ((i * 7 + i / 3) % 2) as u8;
        r[0] = label;
        for (p, v) in r[1..].iter_mut().enumerate() {
            let shift = if (p / 1024 == 2) == (label == 1) { 40 } else { 0 };
            *v = rng.random_range(0..200u8) + shift;
        }
    }
    rec
}

fn dataset(train: usize, test: usize) -> Arc<Dataset> {
    Arc::new(Dataset {
        classes: vec!["airplane".into(), "bird".into()],
        train: Split::from_records("train", 2, records(train, 1)).unwrap(),
        test: Split::from_records("test", 2, records(test, 2)).unwrap(),
    })
}

#[wasm_bindgen_test]
async fn gather_normalises_straight_from_the_bundle() {
    let ops = ops().await;
    // 37 records: 37 x 3073 bytes is not a whole number of words, and the records straddle words.
    let recs = records(37, 3);
    let split = Split::from_records("gather", 2, recs.clone()).unwrap();
    let norm = Normalizer::default();
    let lut: Vec<f32> = norm.table().iter().flatten().copied().collect();
    let mut index: Vec<u32> = (0..37).collect();
    index.reverse();
    index.swap(3, 30);
    let entry = BatchEntry { start: 5, rows: 13, ..BatchEntry::default() };
    let (x, labels) = ops.gather(&recs, &lut, &index, None, entry).await.unwrap();
    let mut want = Array2::zeros((13, PIXELS));
    let mut want_labels = Vec::new();
    split.gather(&index[5..18], &norm, want.view_mut(), &mut want_labels);
    // The same table: bit for bit.
    assert_eq!(x, want.into_raw_vec_and_offset().0);
    assert_eq!(labels, want_labels.iter().map(|&l| l as u32).collect::<Vec<_>>());
}

#[wasm_bindgen_test]
async fn fused_losses_match_the_cpu() {
    let ops = ops().await;
    let mut rng = ChaCha8Rng::seed_from_u64(13);
    for (rows, classes) in [(37usize, 2usize), (64, 2), (300, 5), (1, 3)] {
        let z: Vec<f32> = random(rows * classes, &mut rng).iter().map(|v| v * 4.0).collect();
        let t: Vec<u8> = (0..rows).map(|_| rng.random_range(0..classes as u8)).collect();
        let labels: Vec<u32> = t.iter().map(|&v| v as u32).collect();
        for kind in [LossKind::Nll, LossKind::CrossEntropy] {
            // The CPU: the model's output (log-probabilities for NLL), the loss, the gradient.
            let mut out = Array2::from_shape_vec((rows, classes), z.clone()).unwrap();
            if kind == LossKind::Nll {
                log_softmax_forward(out.view_mut());
            }
            let mut grad = Array2::zeros((rows, classes));
            let mut cpu_rows = Vec::new();
            let res = loss_rows_and_grad(kind, out.view(), &t, Some(grad.view_mut()), Some(&mut cpu_rows));
            if kind == LossKind::Nll {
                log_softmax_backward(out.view(), grad.view_mut());
            }
            let what = format!("{kind:?} {rows}x{classes}");
            let got = ops.loss(kind, classes as u32, &z, &labels, true).await.unwrap();
            assert_close(&got.grad, grad.as_slice().unwrap(), 1e-5, &what);
            assert!(
                ((got.loss_sum as f64 - res.loss_sum) / res.loss_sum).abs() < 1e-5,
                "{what}: {} vs {}",
                got.loss_sum,
                res.loss_sum
            );
            assert_eq!(got.correct as usize, res.correct, "{what}: correct");
            // Each row's own loss and correctness (the hard-example log's input).
            assert_eq!(got.rows.len(), rows, "{what}: one loss per row");
            for (i, (g, c)) in got.rows.iter().zip(&cpu_rows).enumerate() {
                assert!((g.loss - c.loss).abs() <= 1e-5 * c.loss.abs() + 1e-6, "{what} row {i}: {g:?} vs {c:?}");
                assert_eq!(g.correct, c.correct, "{what} row {i}");
            }

            let eval = ops.loss(kind, classes as u32, &z, &labels, false).await.unwrap();
            assert_eq!((eval.loss_sum, eval.correct), (got.loss_sum, got.correct), "{what}: evaluation");
            let mut confusion = vec![0u32; classes * classes];
            for (row, &ti) in out.rows().into_iter().zip(&t) {
                confusion[ti as usize * classes + argmax(row)] += 1;
            }
            assert_eq!(eval.confusion, confusion, "{what}: confusion");
        }
    }
}

#[wasm_bindgen_test]
async fn bias_gradient_matches_the_cpu() {
    let ops = ops().await;
    let mut rng = ChaCha8Rng::seed_from_u64(14);
    let (rows, n) = (37usize, 301usize);
    let dy = random(rows * n, &mut rng);
    let out = random(n + 9, &mut rng);
    let sums: Vec<f32> = (0..n).map(|j| (0..rows).fold(0.0f32, |s, r| s + dy[r * n + j])).collect();
    let stored = ops.bias_grad(&dy, n as u32, 9, None, &out).await.unwrap();
    assert_eq!(&stored[..9], &out[..9]);
    assert_close(&stored[9..], &sums, 1e-6, "stored bias gradient");
    let stepped = ops.bias_grad(&dy, n as u32, 9, Some((0.1, 0.01)), &out).await.unwrap();
    let want: Vec<f32> = out[9..]
        .iter()
        .zip(&sums)
        .map(|(&p, &g)| {
            let mut p = p;
            SgdStep { lr: 0.1, weight_decay: 0.01 }.apply(&mut p, g);
            p
        })
        .collect();
    assert_close(&stepped[9..], &want, 1e-6, "bias SGD step");
}

#[wasm_bindgen_test]
async fn optimizer_steps_match_the_cpu() {
    let ops = ops().await;
    let mut rng = ChaCha8Rng::seed_from_u64(15);
    let n = 70_001;
    let configs = [
        OptimizerConfig { momentum: 0.9, ..OptimizerConfig::default() },
        OptimizerConfig { momentum: 0.8, nesterov: true, weight_decay: 0.01, lr: 0.05, ..OptimizerConfig::default() },
        OptimizerConfig { kind: OptimizerKind::Adam, lr: 1e-3, ..OptimizerConfig::default() },
        OptimizerConfig {
            kind: OptimizerKind::Adam,
            lr: 3e-3,
            weight_decay: 1e-2,
            beta1: 0.8,
            ..OptimizerConfig::default()
        },
    ];
    for config in configs {
        let mut cpu = Optimizer::new(config.clone(), n);
        let mut params = random(n, &mut rng);
        let (mut gp, mut g1, mut g2) = (params.clone(), vec![0.0; n], vec![0.0; n]);
        for t in 1..=3u64 {
            let grads = random(n, &mut rng);
            cpu.step(&mut params, &grads);
            (gp, g1, g2) = ops.optimizer_step(&config, t, &gp, &grads, &g1, &g2).await.unwrap();
            let what = format!("{config:?} step {t}");
            assert_close(&gp, &params, 2e-6, &format!("{what}: parameters"));
            assert_close(&g1, &cpu.state1, 2e-6, &format!("{what}: state 1"));
            if config.kind == OptimizerKind::Adam {
                assert_close(&g2, &cpu.state2, 2e-6, &format!("{what}: state 2"));
            }
        }
    }
}

fn config(
    layers: &[usize],
    activation: Activation,
    loss: LossKind,
    optimizer: OptimizerConfig,
    batch: usize,
) -> TrainConfig {
    TrainConfig {
        model: ModelConfig::mlp(layers.to_vec(), activation, loss),
        optimizer,
        batch_size: batch,
        epochs: 100,
        seed: 7,
        train_size: None,
        augment: Default::default(),
    }
}

/// Trains `steps` batches on the CPU and on the GPU from the same configuration, in calls of
/// `chunk` batches, and checks every finished epoch and the final state against each other.
async fn compare_runs(config: TrainConfig, data: Arc<Dataset>, steps: usize, chunk: usize, param_tol: f32) {
    let mut cpu = Trainer::new(config.clone(), Arc::clone(&data)).unwrap();
    let mut gpu = GpuTrainer::new(Trainer::new(config.clone(), Arc::clone(&data)).unwrap()).await.unwrap();
    let (mut done, mut epochs) = (0, 0);
    let (mut cpu_last, mut gpu_last) = (Default::default(), Default::default());
    while done < steps {
        let n = chunk.min(steps - done);
        let c = cpu.train_batches(n, &mut |p| cpu_last = p).unwrap();
        let g = gpu.train_batches(n, &mut |p| gpu_last = p).await.unwrap();
        assert_eq!(c.is_some(), g.is_some(), "both backends finish epochs together");
        if let (Some(c), Some(g)) = (c, g) {
            let what = format!("{:?} epoch {}", config.optimizer.kind, c.epoch);
            assert_eq!(g.epoch, c.epoch);
            assert!(((g.loss - c.loss) / c.loss).abs() < 1e-3, "{what}: loss GPU {} CPU {}", g.loss, c.loss);
            assert!((g.train_accuracy - c.train_accuracy).abs() <= 0.01, "{what}: train accuracy {g:?} {c:?}");
            assert!((g.val_accuracy - c.val_accuracy).abs() <= 0.01, "{what}: val accuracy {g:?} {c:?}");
            epochs += 1;
        }
        done += n;
    }
    assert_eq!((gpu_last.epoch, gpu_last.batch, gpu_last.samples), (cpu_last.epoch, cpu_last.batch, cpu_last.samples));
    let rel = ((gpu_last.loss - cpu_last.loss) / cpu_last.loss).abs();
    assert!(
        rel < 1e-3,
        "after {steps} steps: running loss GPU {} CPU {} (relative {rel:e})",
        gpu_last.loss,
        cpu_last.loss
    );
    let synced = gpu.trainer_synced().await.unwrap();
    assert_eq!(synced.optimizer.step, cpu.optimizer.step);
    let max = cpu.model.params.iter().fold(0.0f32, |m, v| m.max(v.abs()));
    let diff = synced.model.params.iter().zip(&cpu.model.params).fold(0.0f32, |m, (a, b)| m.max((a - b).abs()));
    assert!(diff <= param_tol * max, "after {steps} steps: parameters differ by {diff} (largest {max})");
    for (g, c) in [(&synced.optimizer.state1, &cpu.optimizer.state1), (&synced.optimizer.state2, &cpu.optimizer.state2)]
    {
        assert_eq!(g.len(), c.len());
        let max = c.iter().fold(1e-12f32, |m, v| m.max(v.abs()));
        let diff = g.iter().zip(c).fold(0.0f32, |m, (a, b)| m.max((a - b).abs()));
        assert!(diff <= 10.0 * param_tol * max, "optimizer state differs by {diff} (largest {max})");
    }
    // The evaluation on the GPU is the CPU's on the same weights.
    let ge = gpu.evaluate_split(false).await.unwrap();
    let mut model = gpu.trainer_synced().await.unwrap().model.clone();
    let ce = skywatch::train::evaluate(&mut model, &data.test, &Normalizer::default());
    assert_eq!(ge.count, ce.count);
    assert!((ge.accuracy - ce.accuracy).abs() <= 0.01, "{ge:?} {ce:?}");
    assert!(((ge.loss - ce.loss) / ce.loss).abs() < 1e-4, "{ge:?} {ce:?}");
    assert!(epochs > 0 || steps < cpu.batches_per_epoch());
    // The hard-example log: the GPU's loss kernel stores each row's loss, so every image's last
    // loss is the CPU's (same tolerance as the losses above) after the same committed epochs,
    // and its record of right and wrong is the CPU's but for rows whose two logits are within
    // float32 rounding of each other (at most 1% of the images, as the accuracies).
    let (g, c) = (&gpu.trainer().examples, &cpu.examples);
    assert_eq!(g.epochs(), c.epochs(), "committed epochs");
    let mut differ = 0;
    for i in 0..data.train.len() {
        match (g.last_loss(i), c.last_loss(i)) {
            (Some(gl), Some(cl)) => {
                assert!((gl - cl).abs() <= 1e-3 * cl.abs() + 1e-5, "image {i}: last loss GPU {gl} CPU {cl}");
            }
            (None, None) => {}
            other => panic!("image {i}: recorded on one backend only: {other:?}"),
        }
        differ += (g.history(i) != c.history(i)) as usize;
    }
    assert!(differ * 100 <= data.train.len(), "{differ} images with another record of right and wrong");
}

#[wasm_bindgen_test]
async fn two_hundred_sgd_steps_match_the_cpu() {
    // 1000 images: 16 batches per epoch, the last of 40 rows; 200 steps cross 12 epoch ends
    // (each with validation on the GPU and a readback) and stop inside the 13th.
    let c = config(&[3072, 48, 2], Activation::Tanh, LossKind::Nll, OptimizerConfig::default(), 64);
    compare_runs(c, dataset(1000, 300), 200, 7, 1e-3).await;
}

#[wasm_bindgen_test]
async fn momentum_and_adam_match_the_cpu() {
    let data = dataset(330, 101);
    let sgd = OptimizerConfig { momentum: 0.9, nesterov: true, weight_decay: 1e-3, ..OptimizerConfig::default() };
    let c = config(&[3072, 24, 17, 2], Activation::Relu, LossKind::CrossEntropy, sgd, 32);
    compare_runs(c, Arc::clone(&data), 25, 4, 1e-3).await;
    let adam =
        OptimizerConfig { kind: OptimizerKind::Adam, lr: 1e-3, weight_decay: 1e-4, ..OptimizerConfig::default() };
    let c = config(&[3072, 19, 9, 3], Activation::Tanh, LossKind::Nll, adam, 50);
    let data3 = Arc::new(Dataset {
        classes: vec!["a".into(), "b".into(), "c".into()],
        train: Split::from_records("train", 3, records(330, 4)).unwrap(),
        test: Split::from_records("test", 3, records(101, 5)).unwrap(),
    });
    compare_runs(c, data3, 15, 5, 1e-3).await;
}

#[wasm_bindgen_test]
async fn divergence_restores_the_epoch_start() {
    let data = dataset(400, 50);
    let sgd = OptimizerConfig { lr: 1e4, ..OptimizerConfig::default() };
    let c = config(&[3072, 16, 2], Activation::Relu, LossKind::CrossEntropy, sgd, 64);
    let mut gpu = GpuTrainer::new(Trainer::new(c.clone(), Arc::clone(&data)).unwrap()).await.unwrap();
    let start = gpu.trainer().model.params.clone();
    let err = gpu.train_epoch(&mut |_| {}).await.expect_err("a learning rate of 1e4 diverges");
    let Error::Diverged { epoch, batch, loss } = err else { panic!("expected divergence, got {err}") };
    assert_eq!(epoch, 0);
    assert!(!loss.is_finite());
    // The CPU diverges on the same data too; the GPU kept the weights of the epoch's start.
    let cpu_err = Trainer::new(c, data).unwrap().train_epoch(&mut |_| {}).expect_err("the CPU diverges too");
    assert!(matches!(cpu_err, Error::Diverged { epoch: 0, .. }), "{cpu_err}");
    assert!(batch < 7);
    assert!(!gpu.in_epoch());
    assert_eq!(gpu.trainer_synced().await.unwrap().model.params, start);
    assert_eq!(gpu.trainer().epochs_done(), 0);
}

// The JavaScript API, as the worker uses it.

fn get(v: &JsValue, key: &str) -> JsValue {
    js_sys::Reflect::get(v, &key.into()).unwrap()
}

async fn call(p: js_sys::Promise) -> Result<JsValue, String> {
    wasm_bindgen_futures::JsFuture::from(p).await.map_err(|e| {
        e.dyn_ref::<js_sys::Error>().map(|e| String::from(e.message())).unwrap_or_else(|| format!("{e:?}"))
    })
}

/// `Error.name` of the error a promise rejects with.
async fn error_name(p: js_sys::Promise) -> String {
    let e = wasm_bindgen_futures::JsFuture::from(p).await.expect_err("the call fails");
    String::from(e.dyn_ref::<js_sys::Error>().expect("an Error").name())
}

/// The `GpuSession` a `GpuSession.create` or `.resume` promise resolves to.
async fn session(p: js_sys::Promise) -> GpuSession {
    let v = call(p).await.unwrap();
    GpuSession::try_from_js_value(v).expect("a GpuSession")
}

fn js_data(data: &Dataset) -> Data {
    let source = SourceInfo { kind: "synthetic".into(), location: "test".into(), fingerprint: String::new() };
    let (train, test) = (data.train.records().to_vec(), data.test.records().to_vec());
    let manifest = Manifest::for_records(data.classes.clone(), &train, &test, source);
    Data::new(&manifest.to_json(), train, test, None, None).unwrap()
}

const SMALL: &str = r#"{"model":{"layers":[3072,20,2],"activation":"tanh","loss":"nll"},
    "optimizer":{"kind":"sgd","lr":0.01,"momentum":0.5},"batch_size":32,"epochs":4,"seed":3,"train_size":150}"#;

#[wasm_bindgen_test]
async fn a_run_saved_on_the_gpu_resumes_on_the_cpu_and_back() {
    let data = js_data(&dataset(200, 64));
    // Reference: three epochs on the CPU.
    let mut cpu = Session::new(SMALL, &data).unwrap();
    let mut cpu_losses = Vec::new();
    for _ in 0..3 {
        let step = cpu.train_batches(100).unwrap();
        cpu_losses.push(get(&get(&step, "epoch"), "loss").as_f64().unwrap());
    }
    // Epoch 0 on the GPU, epoch 1 on the CPU, epoch 2 on the GPU again.
    let g = session(GpuSession::create(SMALL, &data)).await;
    assert!(g.adapter_description().len() > 3);
    assert_eq!(g.parameter_summary().unwrap(), "(61502, [61440, 20, 40, 2])");
    let step = call(g.train_batches(100)).await.unwrap();
    let l0 = get(&get(&step, "epoch"), "loss").as_f64().unwrap();
    let state = js_sys::Uint8Array::new(&call(g.save_state()).await.unwrap()).to_vec();
    let mut c = Session::resume(&state, &data).unwrap();
    assert_eq!(c.epochs_done(), 1);
    let step = c.train_batches(100).unwrap();
    let l1 = get(&get(&step, "epoch"), "loss").as_f64().unwrap();
    let state = c.save_state().unwrap();
    let g2 = session(GpuSession::resume(&state, &data)).await;
    assert_eq!(g2.epochs_done().unwrap(), 2);
    let step = call(g2.train_batches(100)).await.unwrap();
    let l2 = get(&get(&step, "epoch"), "loss").as_f64().unwrap();
    for (got, want) in [l0, l1, l2].iter().zip(&cpu_losses) {
        assert!(((got - want) / want).abs() < 1e-3, "losses by epoch: mixed {:?}, CPU {cpu_losses:?}", [l0, l1, l2]);
    }
    // Mid-epoch a run cannot be saved, as on the CPU; the rest works at any time.
    call(g2.train_batches(2)).await.unwrap();
    let err = call(g2.save_state()).await.unwrap_err();
    assert!(err.contains("between epochs"), "{err}");
    let eval = call(g2.evaluate("test")).await.unwrap();
    assert_eq!(get(&eval, "count").as_f64(), Some(64.0));
    assert!(call(g2.evaluate("validation")).await.unwrap_err().contains("unknown split"));
    let p = js_sys::Float32Array::new(&call(g2.predict_test(&[0, 5, 63])).await.unwrap()).to_vec();
    assert_eq!(p.len(), 6);
    assert!((p[0] + p[1] - 1.0).abs() < 1e-5);
    assert!(call(g2.predict_test(&[64])).await.unwrap_err().contains("does not exist"));
    let rgba: Vec<u8> = (0..40 * 30 * 4).map(|i| (i % 253) as u8).collect();
    let pred = call(g2.predict_rgba(&rgba, 40, 30)).await.unwrap();
    assert_eq!(js_sys::Uint8Array::new(&get(&pred, "image")).length(), 32 * 32 * 4);
    // Export, import into a CPU session: the same predictions.
    let weights = js_sys::Uint8Array::new(&call(g2.export_weights()).await.unwrap()).to_vec();
    let mut c2 = Session::new(SMALL, &data).unwrap();
    c2.import_weights(&weights).unwrap();
    let q = c2.predict_test(&[0, 5, 63]).unwrap();
    assert_close(&p, &q, 1e-6, "predictions of exported weights");
    // And back into a GPU session, which then trains on from them.
    call(g.import_weights(&weights)).await.unwrap();
    let p2 = js_sys::Float32Array::new(&call(g.predict_test(&[0, 5, 63])).await.unwrap()).to_vec();
    assert_close(&p2, &q, 1e-6, "predictions after importWeights");
    assert!(call(g.import_weights(b"not a checkpoint")).await.is_err());
    call(g.train_batches(3)).await.unwrap();
}

#[wasm_bindgen_test]
async fn after_a_device_loss_every_call_fails_with_the_reason() {
    let data = js_data(&dataset(100, 20));
    let g = session(GpuSession::create(SMALL, &data)).await;
    call(g.train_batches(2)).await.unwrap();
    g.debug_lose_device();
    let calls = [g.train_batches(1), g.evaluate("test"), g.save_state(), g.export_weights(), g.predict_test(&[0])];
    for p in calls {
        let err = call(p).await.unwrap_err();
        assert!(err.starts_with("the GPU device was lost ("), "{err}");
    }
    // A fault of the GPU is an Error named GpuError (the worker moves the run to wasm on it); a
    // fault of the input is a plain Error.
    assert_eq!(error_name(g.train_batches(1)).await, "GpuError");
    let g = session(GpuSession::create(SMALL, &data)).await;
    assert_eq!(error_name(g.evaluate("validation")).await, "Error");
    // Two calls at once: the second is refused, not queued.
    let g = session(GpuSession::create(SMALL, &data)).await;
    let (a, b) = (g.train_batches(1), g.train_batches(1));
    assert!(call(a).await.is_ok());
    assert!(call(b).await.unwrap_err().contains("busy"));
}

#[wasm_bindgen_test]
async fn benchmark_hooks_report_figures() {
    // The hooks scripts/bench calls: the lecture shapes' GFLOP/s and seconds per epoch. On
    // SwiftShader these are correctness runs (printed with --nocapture), never speed claims.
    let gpu = gpu().await;
    let rows = skywatch::gpu::bench::gemm(&gpu, 0.01).await.unwrap();
    let shapes: Vec<_> = rows.iter().map(|r| (r.shape, r.m, r.k, r.n)).collect();
    assert_eq!(shapes, skywatch::bench::GEMM_SHAPES.to_vec());
    for r in &rows {
        assert!(r.gflops.is_finite() && r.gflops > 0.0, "{r:?}");
    }
    // The forward product has 8 output tiles: it is split along K; the weight gradient is not.
    assert!(rows[0].splits > 1 && rows[1].splits == 1, "{rows:?}");
    let c = config(&[3072, 32, 2], Activation::Tanh, LossKind::Nll, OptimizerConfig::default(), 64);
    let seconds = skywatch::gpu::bench::epoch_seconds(&gpu, &c, 300, 2).await.unwrap();
    assert_eq!(seconds.len(), 2);
    assert!(seconds.iter().all(|s| s.is_finite() && *s > 0.0), "{seconds:?}");
    web_sys::console::log_1(
        &format!("{}: GEMM {rows:?}; epoch of 300 images, 3072-32-2: {seconds:?} s", gpu.report().description).into(),
    );
}
