//! The translation test and data augmentation (`skywatch::data::augment`,
//! `skywatch::inspect::translation`).
//!
//! The shift and the flip are checked against PyTorch (`tests/reference/shift_pytorch.py`, written
//! to `tests/reference/shift_reference.json`: the image has value `i + 1` at flat index `i`, so every
//! output names its source, 0 where zeros are shifted in). The rest against definitions: accuracy at
//! a shift of 0 is the ordinary validation accuracy, exactly; a convolution is translation
//! equivariant, so `conv1`'s maps shifted back equal the original's on the interior; and the same
//! seed and configuration give the same weights on any number of threads.
#![cfg(not(target_arch = "wasm32"))] // native; tests/wasm.rs holds the tests that run in the browser

mod common;

use common::fixtures::synthetic_cifar2;
use serde_json::Value;
use skywatch::config::{Augment, TrainConfig};
use skywatch::data::augment::{AUGMENT_STREAM, directions, draws, flip_image, shift_image};
use skywatch::data::{Dataset, Normalizer, PIXELS};
use skywatch::inspect::translation::{PAGE_SHIFTS, TranslationRun, cosine, shift_view, translation_test};
use skywatch::train::{Trainer, evaluate};
use std::sync::Arc;

fn reference() -> Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/reference/shift_reference.json");
    serde_json::from_str(&std::fs::read_to_string(path).expect("committed reference")).expect("JSON")
}

fn ints(v: &Value) -> Vec<f32> {
    v.as_array().expect("array").iter().map(|x| x.as_i64().expect("integer") as f32).collect()
}

#[test]
fn the_shift_and_the_flip_match_pytorch() {
    let r = reference();
    let image: Vec<f32> = (0..PIXELS).map(|i| i as f32 + 1.0).collect();
    let cases = r["shifts"].as_array().expect("cases");
    assert!(cases.len() >= 6, "the reference has its cases");
    for case in cases {
        let (dx, dy) = (case["dx"].as_i64().unwrap() as i32, case["dy"].as_i64().unwrap() as i32);
        let mut out = vec![-1.0; PIXELS];
        shift_image(&image, dx, dy, &mut out);
        assert_eq!(out, ints(&case["out"]), "shift by ({dx}, {dy})");
    }
    let mut flipped = image.clone();
    flip_image(&mut flipped);
    assert_eq!(flipped, ints(&r["flip"]), "flip");
}

#[test]
fn augment_options_parse_print_and_stay_out_of_a_plain_configuration() {
    for s in ["none", "flip", "shift:4", "flip,shift:8", "shift:1"] {
        let a: Augment = s.parse().unwrap();
        assert_eq!(a.to_string(), s);
    }
    for bad in ["", "shift", "shift:0", "shift:9", "shift:4,flip", "flip,flip", "flip,shift:2,shift:3", "Flip"] {
        let e = bad.parse::<Augment>().unwrap_err().to_string();
        assert!(e.contains("augment"), "{bad}: {e}");
    }
    // augment=none is not written: today's configurations and checkpoints are unchanged.
    let plain = TrainConfig::preset("lecture").unwrap();
    let json = serde_json::to_string(&plain).unwrap();
    assert!(!json.contains("augment"), "{json}");
    let mut c = plain.clone();
    c.augment = "flip,shift:4".parse().unwrap();
    let json = serde_json::to_string(&c).unwrap();
    assert!(json.contains(r#""augment":"flip,shift:4""#), "{json}");
    assert_eq!(serde_json::from_str::<TrainConfig>(&json).unwrap(), c);
}

#[test]
fn augmentation_draws_cover_their_range_and_depend_only_on_the_position() {
    let a: Augment = "flip,shift:4".parse().unwrap();
    let d = draws(a, 5, 2, 1000, 0, 1000);
    // Formula of the draws (module docs): flips with probability 1/2, dx, dy uniform on -4..=4.
    let flips = d.iter().filter(|d| d.flip).count();
    assert!((400..600).contains(&flips), "{flips} flips of 1000");
    for v in -4..=4 {
        let n = d.iter().filter(|d| d.dx == v).count();
        assert!((60..170).contains(&n), "dx = {v}: {n} of 1000");
    }
    assert!(d.iter().all(|d| (-4..=4).contains(&d.dy)));
    // Positions 300..310 of the same epoch, drawn on their own, are the same draws.
    assert_eq!(draws(a, 5, 2, 1000, 300, 10), d[300..310]);
    // Another epoch, another seed: other draws.
    assert_ne!(draws(a, 5, 3, 1000, 0, 50), d[..50]);
    assert_ne!(draws(a, 6, 2, 1000, 0, 50), d[..50]);
    assert_eq!(AUGMENT_STREAM, 3, "streams 0, 1, 2 are the weights, the shuffle and the subset");
}

fn trained(preset: &str, data: &Arc<Dataset>, augment: &str, threads: usize) -> Trainer {
    let mut c = TrainConfig::preset(preset).unwrap();
    (c.seed, c.epochs) = (3, 2);
    c.augment = augment.parse().unwrap();
    let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
    pool.install(|| {
        let mut t = Trainer::new(c, Arc::clone(data)).unwrap();
        t.train_epoch(&mut |_| {}).unwrap();
        t.train_epoch(&mut |_| {}).unwrap();
        t
    })
}

#[test]
fn augmented_runs_are_identical_across_thread_counts_and_batch_calls() {
    let data = Arc::new(synthetic_cifar2(300, 40, 11));
    for preset in ["lecture", "conv"] {
        let one = trained(preset, &data, "flip,shift:4", 1);
        let two = trained(preset, &data, "flip,shift:4", 2);
        assert!(one.model.params == two.model.params, "{preset}: 1 vs 2 threads");
        let plain = trained(preset, &data, "none", 2);
        assert!(plain.model.params != two.model.params, "{preset}: the augmentation changes the run");
        // The same run, trained a few batches per call (as the browser worker does).
        let mut c = one.config.clone();
        c.epochs = 2;
        let mut t = Trainer::new(c, Arc::clone(&data)).unwrap();
        while t.epochs_done() < 2 {
            t.train_batches(3, &mut |_| {}).unwrap();
        }
        assert!(t.model.params == one.model.params, "{preset}: three batches per call");
    }
}

#[test]
fn augmented_runs_resume_exactly() {
    let data = Arc::new(synthetic_cifar2(200, 20, 4));
    let whole = trained("lecture", &data, "shift:2", 2);
    let mut c = whole.config.clone();
    c.epochs = 2;
    let mut t = Trainer::new(c, Arc::clone(&data)).unwrap();
    t.train_epoch(&mut |_| {}).unwrap();
    let mut t = Trainer::resume(&t.save_state().unwrap(), Arc::clone(&data)).unwrap();
    t.train_epoch(&mut |_| {}).unwrap();
    assert!(t.model.params == whole.model.params);
}

#[test]
fn accuracy_at_zero_shift_is_the_validation_accuracy_exactly() {
    // 1100 test images: more than two evaluation batches of 500, the last one partial.
    let data = Arc::new(synthetic_cifar2(400, 1100, 21));
    for preset in ["lecture", "conv"] {
        let mut t = trained(preset, &data, "none", 2);
        let val = evaluate(&mut t.model, &data.test, &Normalizer::default());
        let r = translation_test(&mut t.model, &data.test, &Normalizer::default(), &[0, 2]);
        assert_eq!(r.shift_px, [0, 2]);
        assert_eq!(r.shift_accuracy[0], val.accuracy, "{preset}");
        assert_eq!(r.shift_similarity[0], 1.0, "{preset}");
        assert!((0.0..=1.0).contains(&r.shift_accuracy[1]));
    }
}

#[test]
fn the_test_in_slices_gives_the_numbers_of_the_test_in_one_go_bit_for_bit() {
    // 1100 test images: three batches of 500, the last partial. The page's worker runs the test a
    // few passes at a time and answers other requests (a picture moved: `shift_view`) in between.
    let data = Arc::new(synthetic_cifar2(300, 1100, 5));
    let norm = Normalizer::default();
    for preset in ["lecture", "conv"] {
        let mut t = trained(preset, &data, "none", 2);
        let whole = translation_test(&mut t.model, &data.test, &norm, &PAGE_SHIFTS);
        for per_call in [1, 3] {
            let mut run = TranslationRun::new(&t.model, data.test.len(), &PAGE_SHIFTS);
            // 3 batches x (1 + 4 x 6 shifts) passes, k = 0 costing none of its own.
            assert_eq!(run.passes_total(), 3 * 25);
            let mut calls = 0;
            loop {
                let before = run.passes_done();
                let done = run.advance(&mut t.model, &data.test, &norm, per_call);
                calls += 1;
                assert!(run.passes_done() - before <= per_call, "{preset}: at most {per_call} passes per call");
                shift_view(&mut t.model, data.test.image(calls % 1100), &norm, (3, -2), None).unwrap();
                if done {
                    break;
                }
            }
            assert_eq!(run.passes_done(), 75);
            assert_eq!(calls, 75usize.div_ceil(per_call), "{preset}: {per_call} per call");
            assert_eq!(run.result(), whole, "{preset}: {per_call} passes per call");
        }
    }
}

#[test]
fn conv1_maps_shifted_back_are_the_same_and_the_mlps_hidden_units_are_not() {
    let data = Arc::new(synthetic_cifar2(100, 60, 8));
    let norm = Normalizer::default();
    let mut conv = trained("conv", &data, "none", 2);
    let r = translation_test(&mut conv.model, &data.test, &norm, &PAGE_SHIFTS);
    for (k, s) in r.shift_px.iter().zip(&r.shift_similarity) {
        // Equivariance: the same products of the same values, up to the GEMM's rounding.
        assert!((s - 1.0).abs() < 1e-6, "conv1 similarity at {k} px: {s}");
    }
    let mut mlp = trained("lecture", &data, "none", 2);
    let r = translation_test(&mut mlp.model, &data.test, &norm, &PAGE_SHIFTS);
    assert_eq!(r.shift_similarity[0], 1.0);
    // Random pixels: any shift shows the units other pixels (the fall with the shift is measured on
    // CIFAR, in the figures of docs/translation.md).
    assert!(r.shift_similarity[1..].iter().all(|&s| s < 0.99), "{:?}", r.shift_similarity);
}

#[test]
fn cosine_and_directions_follow_their_definitions() {
    assert_eq!(cosine(&[1.0, 0.0], &[0.0, 2.0]), 0.0);
    assert!((cosine(&[1.0, 2.0], &[2.0, 4.0]) - 1.0).abs() < 1e-12);
    assert_eq!(cosine(&[0.0; 3], &[0.0; 3]), 1.0);
    assert_eq!(cosine(&[0.0; 3], &[1.0; 3]), 0.0);
    assert_eq!(directions(3), [(3, 0), (-3, 0), (0, 3), (0, -3)]);
}
