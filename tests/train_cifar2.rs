//! Training on the real CIFAR-2 (airplane vs bird), built from `SKYWATCH_DATA_SOURCE`.
//!
//! Reference: PyTorch 2.15 running the lecture's code on the same bundle
//! (`tests/reference/lecture_pytorch.py`) gives a mean epoch-0 loss of 0.508 and a validation
//! accuracy of 0.7975 after epoch 1, 0.8015 after epoch 3, and 0.79-0.82 later with occasional
//! dips (0.72-0.76 at single epochs), the same picture as here.
#![cfg(all(feature = "cli", not(target_arch = "wasm32")))]

mod common;

use skywatch::config::TrainConfig;
use skywatch::data::Dataset;
use skywatch::data::build::{BuildOptions, SourceSpec, build};
use skywatch::train::Trainer;
use std::process::Command;
use std::sync::{Arc, OnceLock};

/// Epochs the accuracy test may take to reach 0.78: short enough for CI (about 2 s).
const EPOCHS_TO_078: usize = 5;

/// The bundle, built once per test binary into a temporary folder.
fn cifar2(test: &str) -> (Arc<Dataset>, std::path::PathBuf) {
    static BUNDLE: OnceLock<(tempfile::TempDir, Arc<Dataset>)> = OnceLock::new();
    let src = common::data_source(test);
    let (dir, data) = BUNDLE.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let opts = BuildOptions {
            source: SourceSpec::Path(src),
            classes: vec!["airplane".into(), "bird".into()],
            out: dir.path().join("cifar2"),
            md5: None,
            progress: false,
        };
        build(&opts).unwrap();
        let data = Dataset::load(&dir.path().join("cifar2")).unwrap();
        (dir, Arc::new(data))
    });
    (Arc::clone(data), dir.path().join("cifar2"))
}

#[test]
#[ignore = "needs CIFAR-10: set SKYWATCH_DATA_SOURCE and run with --include-ignored"]
fn lecture_model_reaches_078_validation_accuracy_within_five_epochs() {
    let (data, _) = cifar2("lecture_model_reaches_078");
    assert_eq!((data.train.len(), data.test.len()), (10_000, 2_000));
    let mut t = Trainer::new(TrainConfig::preset("lecture").unwrap(), data).unwrap();
    let stats: Vec<_> = (0..EPOCHS_TO_078).map(|_| t.train_epoch(&mut |_| {}).unwrap()).collect();
    for s in &stats {
        eprintln!("epoch {}: loss {:.4}, train {:.4}, val {:.4}", s.epoch, s.loss, s.train_accuracy, s.val_accuracy);
    }
    assert!((0.48..0.53).contains(&stats[0].loss), "epoch-0 loss {} far from PyTorch's 0.508", stats[0].loss);
    assert!(stats[EPOCHS_TO_078 - 1].loss < stats[0].loss - 0.05, "the loss must fall");
    let best = stats.iter().map(|s| s.val_accuracy).fold(0.0, f64::max);
    assert!(best >= 0.78, "best validation accuracy {best} < 0.78 within {EPOCHS_TO_078} epochs");
}

#[test]
#[ignore = "needs CIFAR-10: set SKYWATCH_DATA_SOURCE and run with --include-ignored"]
fn same_seed_gives_bit_identical_weights_for_any_thread_count() {
    let (data, _) = cifar2("same_seed_bit_identical");
    let run = |seed: u64, threads: usize| {
        let mut c = TrainConfig::preset("lecture").unwrap();
        (c.seed, c.train_size) = (seed, Some(3000));
        let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
        pool.install(|| {
            let mut t = Trainer::new(c, Arc::clone(&data)).unwrap();
            t.train_epoch(&mut |_| {}).unwrap();
            t.train_epoch(&mut |_| {}).unwrap();
            t.model.params
        })
    };
    let a = run(7, 2);
    assert!(a == run(7, 2), "two runs with one seed differ");
    assert!(a == run(7, 1), "one and two threads differ");
    assert!(a != run(8, 2), "another seed gave the same weights");
}

#[test]
#[ignore = "needs CIFAR-10: set SKYWATCH_DATA_SOURCE and run with --include-ignored"]
fn cli_trains_saves_and_evaluates_with_json_output() {
    let (_, bundle) = cifar2("cli_trains_saves_and_evaluates");
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("m.safetensors");
    let exe = env!("CARGO_BIN_EXE_skywatch");
    let out = Command::new(exe)
        .args(["train", "--preset", "lecture", "--epochs", "2", "--train-size", "2000", "--json", "--seed", "3"])
        .arg("--data")
        .arg(&bundle)
        .arg("--save")
        .arg(&model)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let lines: Vec<serde_json::Value> =
        String::from_utf8(out.stdout).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 2);
    for (i, l) in lines.iter().enumerate() {
        let mut keys: Vec<&str> = l.as_object().unwrap().keys().map(String::as_str).collect();
        keys.sort_unstable();
        assert_eq!(keys, ["epoch", "loss", "seconds", "train_accuracy", "val_accuracy"]);
        assert_eq!(l["epoch"], i);
    }
    let out = Command::new(exe)
        .args(["eval", "--json"])
        .arg("--data")
        .arg(&bundle)
        .arg("--model")
        .arg(&model)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let test: serde_json::Value =
        serde_json::from_str(String::from_utf8(out.stdout).unwrap().lines().nth(1).unwrap()).unwrap();
    assert_eq!(test["split"], "test");
    let confusion: Vec<Vec<u64>> = serde_json::from_value(test["confusion"].clone()).unwrap();
    assert_eq!(confusion.iter().flatten().sum::<u64>(), 2000);
    let acc = test["accuracy"].as_f64().unwrap();
    assert!((acc - (confusion[0][0] + confusion[1][1]) as f64 / 2000.0).abs() < 1e-12);
    // The final epoch's validation accuracy in the training log is the saved model's.
    assert!((acc - lines[1]["val_accuracy"].as_f64().unwrap()).abs() < 1e-12);

    let bad = Command::new(exe).args(["train", "--lr", "-1"]).arg("--data").arg(&bundle).output().unwrap();
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("learning rate must be a finite number > 0"));
}

/// Pearson correlation of each first-layer weight with its right and lower neighbour in the same
/// 32x32 channel plane, over all units (`w`: `[units, 3072]`, rows planar `C, H, W`).
fn neighbour_correlation(w: &[f64]) -> f64 {
    let (mut a, mut b) = (Vec::new(), Vec::new());
    for row in w.chunks_exact(3072) {
        for plane in row.chunks_exact(1024) {
            for y in 0..32 {
                for x in 0..32 {
                    let v = plane[y * 32 + x];
                    if x < 31 {
                        a.push(v);
                        b.push(plane[y * 32 + x + 1]);
                    }
                    if y < 31 {
                        a.push(v);
                        b.push(plane[(y + 1) * 32 + x]);
                    }
                }
            }
        }
    }
    let n = a.len() as f64;
    let (ma, mb) = (a.iter().sum::<f64>() / n, b.iter().sum::<f64>() / n);
    let cov: f64 = a.iter().zip(&b).map(|(x, y)| (x - ma) * (y - mb)).sum();
    let va: f64 = a.iter().map(|x| (x - ma).powi(2)).sum();
    let vb: f64 = b.iter().map(|y| (y - mb).powi(2)).sum();
    cov / (va * vb).sqrt()
}

#[test]
#[ignore = "needs CIFAR-10: set SKYWATCH_DATA_SOURCE and run with --include-ignored"]
fn after_three_lecture_epochs_the_change_is_smooth_and_the_weights_are_not() {
    // Reference: PyTorch with the lecture's recipe (3072-512-2, SGD 1e-2, batch 64, seed 0, all
    // 10,000 images) measured after 3 epochs: ||W - W0|| / ||W0|| = 4%, and the correlation of
    // neighbouring pixels 0.003 in W against 0.91 in W - W0. So the tiles of W are still mostly
    // the random start, and those of the change show the learned pattern (what the page offers
    // first for an MLP).
    let (data, _) = cifar2("change_since_the_start");
    let mut t = Trainer::new(TrainConfig::preset("lecture").unwrap(), data).unwrap();
    for _ in 0..3 {
        t.train_epoch(&mut |_| {}).unwrap();
    }
    let first = &t.model.linears[0];
    let w: Vec<f64> = first.weight(&t.model.params).iter().map(|&v| v as f64).collect();
    let w0: Vec<f64> = first.weight(t.initial_params().unwrap()).iter().map(|&v| v as f64).collect();
    let d: Vec<f64> = w.iter().zip(&w0).map(|(a, b)| a - b).collect();
    let norm = |v: &[f64]| v.iter().map(|x| x * x).sum::<f64>().sqrt();
    let (relative, corr_w, corr_d) = (norm(&d) / norm(&w0), neighbour_correlation(&w), neighbour_correlation(&d));
    eprintln!(
        "after 3 epochs: |W - W0| / |W0| = {relative:.4}, neighbour correlation W {corr_w:.4}, W - W0 {corr_d:.4}"
    );
    let tiles = skywatch::inspect::units::UnitTiles::with_start(&t.model, t.initial_params());
    assert!((tiles.change.unwrap().relative as f64 - relative).abs() < 1e-4);
    assert!((0.02..0.08).contains(&relative), "relative change {relative}, PyTorch 0.04");
    assert!(corr_w.abs() < 0.05, "W's neighbouring pixels correlate {corr_w}, PyTorch 0.003");
    assert!(corr_d > 0.8, "W - W0's neighbouring pixels correlate {corr_d}, PyTorch 0.91");
}
