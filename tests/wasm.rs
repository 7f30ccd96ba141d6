//! Tests that run inside headless Chromium (`wasm-pack test --headless --chrome`, see
//! `scripts/test`): the wasm SIMD kernels against the naive reference, the JavaScript API round
//! trip, and, in the threaded build, the rayon pool started through wasm-bindgen-rayon.
//! They run in a dedicated Worker, as the page's training does: rayon must not block the page's
//! main thread.
#![cfg(target_arch = "wasm32")]

use ndarray::{Array2, s};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use skywatch::checkpoint;
use skywatch::data::{Manifest, RECORD_BYTES, SourceInfo, sha256_hex};
use skywatch::matmul::{Kernel, gemm_reference, gemm_with};
use skywatch::wasm::{Data, Session, band_position, build_info, pytorch_band};
use wasm_bindgen::JsValue;
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_dedicated_worker);

fn random(r: usize, c: usize, rng: &mut ChaCha8Rng) -> Array2<f32> {
    Array2::from_shape_fn((r, c), |_| rng.random_range(-1.0f32..1.0))
}

/// In the threaded build, starts the pool of 2 threads before anything touches rayon (the first
/// use of rayon's global pool would otherwise create a single-threaded one). Tests run one at a
/// time, so a flag suffices.
async fn setup() {
    #[cfg(feature = "wasm-threads")]
    {
        use std::sync::atomic::{AtomicBool, Ordering};
        static STARTED: AtomicBool = AtomicBool::new(false);
        if !STARTED.swap(true, Ordering::SeqCst) {
            wasm_bindgen_futures::JsFuture::from(skywatch::wasm::init_thread_pool(2)).await.unwrap();
        }
    }
}

#[wasm_bindgen_test]
async fn simd_kernels_match_the_reference() {
    setup().await;
    let kernels = Kernel::available();
    assert!(kernels.iter().any(|k| k.name().contains("simd")), "no SIMD kernel in this build: {kernels:?}");
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    for kernel in kernels {
        for (m, k, n, ta, tb) in [
            (1, 1, 1, false, false),
            (5, 9, 11, false, true),
            (33, 70, 19, true, false),
            (64, 300, 40, false, true),
            (17, 515, 26, false, true),
        ] {
            let a = if ta { random(k, m, &mut rng) } else { random(m, k, &mut rng) };
            let b = if tb { random(n, k, &mut rng) } else { random(k, n, &mut rng) };
            let (av, bv) = (if ta { a.t() } else { a.view() }, if tb { b.t() } else { b.view() });
            // C is a window in a NaN-filled buffer: nothing outside it may be written.
            let mut got = Array2::from_elem((m + 2, n + 3), f32::NAN);
            let mut want = got.clone();
            gemm_with(kernel, 1.0, &av, &bv, 0.0, &mut got.slice_mut(s![1..1 + m, 2..2 + n]));
            gemm_reference(1.0, &av, &bv, 0.0, &mut want.slice_mut(s![1..1 + m, 2..2 + n]));
            for ((idx, g), w) in got.indexed_iter().zip(want.iter()) {
                if w.is_nan() {
                    assert!(g.is_nan(), "{kernel:?} wrote outside C at {idx:?}");
                } else {
                    assert!((g - w).abs() <= 1e-4 * (1.0 + w.abs()), "{kernel:?} {m}x{k}x{n} at {idx:?}: {g} vs {w}");
                }
            }
        }
    }
}

/// A small bundle in memory: `n` training and `n / 2` test images of two classes, the class
/// written into the image so that it can be learnt.
fn bundle(n: usize) -> (String, Vec<u8>, Vec<u8>) {
    let mut rng = ChaCha8Rng::seed_from_u64(2);
    let mut split = |count: usize| {
        let mut rec = vec![0u8; count * RECORD_BYTES];
        for (i, r) in rec.chunks_exact_mut(RECORD_BYTES).enumerate() {
            let label = (i % 2) as u8;
            r[0] = label;
            for p in r[1..].iter_mut() {
                *p = rng.random_range(0..128u8) + 100 * label;
            }
        }
        rec
    };
    let (train, test) = (split(n), split(n / 2));
    let source = SourceInfo { kind: "synthetic".into(), location: "test".into(), fingerprint: String::new() };
    let manifest = Manifest::for_records(vec!["airplane".into(), "bird".into()], &train, &test, source);
    (manifest.to_json(), train, test)
}

/// The small MLP (3072-32-2, tanh, NLL, SGD lr 0.01, batch 64, seed 5) of the API tests, for
/// `epochs` epochs.
fn small_mlp(epochs: usize) -> String {
    format!(
        r#"{{"model":{{"layers":[3072,32,2],"activation":"tanh","loss":"nll"}},
        "optimizer":{{"kind":"sgd","lr":0.01}},"batch_size":64,"epochs":{epochs},"seed":5,"train_size":null}}"#
    )
}

fn get(v: &JsValue, key: &str) -> JsValue {
    js_sys::Reflect::get(v, &key.into()).unwrap()
}

#[wasm_bindgen_test]
async fn api_round_trip() {
    setup().await;
    let info = build_info().unwrap();
    assert!(get(&info, "kernel").as_string().unwrap().contains("simd"));
    let (manifest, train, test) = bundle(200);
    let data = Data::new(&manifest, train.clone(), test.clone(), None, None).unwrap();
    assert_eq!((data.train_len(), data.test_len()), (200, 100));

    // A corrupted byte is caught by the manifest's sha256.
    let mut bad = train.clone();
    bad[5] ^= 1;
    assert!(Data::new(&manifest, bad, test.clone(), None, None).is_err());
    // A digest computed outside (crypto.subtle) is compared with the manifest's, not trusted.
    assert!(Data::new(&manifest, train.clone(), test.clone(), Some("00".repeat(32)), None).is_err());
    assert!(Data::new(&manifest, train.clone(), test.clone(), Some(sha256_hex(&train).to_uppercase()), None).is_ok());

    let config = &small_mlp(2);
    let mut s = Session::new(config, &data).unwrap();
    assert_eq!(s.parameter_summary(), "(98402, [98304, 32, 64, 2])");
    assert_eq!(s.batches_per_epoch(), 4);
    let step = s.train_batches(3).unwrap();
    assert!(get(&step, "epoch").is_null());
    let step = s.train_batches(3).unwrap();
    let epoch = get(&step, "epoch");
    assert_eq!(get(&epoch, "epoch").as_f64(), Some(0.0));
    assert!(get(&epoch, "val_accuracy").as_f64().unwrap() > 0.9, "separable data must be learnt");

    // Predict a 50x40 RGBA picture: probabilities sum to one, the 32x32 view comes back.
    let rgba: Vec<u8> = (0..50 * 40 * 4).map(|i| (i % 251) as u8).collect();
    let p = s.predict_rgba(&rgba, 50, 40).unwrap();
    let probs: Vec<f64> = js_sys::Array::from(&get(&p, "probabilities")).iter().map(|v| v.as_f64().unwrap()).collect();
    assert!((probs.iter().sum::<f64>() - 1.0).abs() < 1e-5);
    assert_eq!(js_sys::Uint8Array::new(&get(&p, "image")).length(), 32 * 32 * 4);
    assert!(s.predict_rgba(&rgba, 51, 40).is_err());

    // Export, then import into a fresh session: identical predictions.
    let bytes = s.export_weights();
    let model = checkpoint::load(&bytes, None).unwrap();
    assert_eq!(model.config.layers, vec![3072, 32, 2]);
    let mut t = Session::new(config, &data).unwrap();
    t.import_weights(&bytes).unwrap();
    assert_eq!(s.predict_test(&[0, 1, 2]).unwrap(), t.predict_test(&[0, 1, 2]).unwrap());
    assert!(t.import_weights(b"not a checkpoint").is_err());
    assert!(Session::new(&config.replace("0.01", "-1"), &data).is_err());
}

#[wasm_bindgen_test]
async fn inspection_api_round_trip() {
    use js_sys::{Float32Array, Uint8Array, Uint32Array};
    use wasm_bindgen::JsCast;
    setup().await;
    let (manifest, train, test) = bundle(200);
    let data = Data::new(&manifest, train, test, None, None).unwrap();
    let config = &small_mlp(1);
    let mut s = Session::new(config, &data).unwrap();
    // Unit tiles: typed arrays of the stated sizes, before training (epoch 0).
    let t0 = s.unit_tiles().unwrap();
    let tiles = get(&t0, "tiles").dyn_into::<Uint8Array>().unwrap();
    assert_eq!(tiles.length(), 32 * 4096);
    assert_eq!(get(&t0, "scale").dyn_into::<Float32Array>().unwrap().length(), 32);
    assert_eq!(get(&t0, "votes").dyn_into::<Float32Array>().unwrap().length(), 2 * 32);
    assert_eq!(get(&t0, "order").dyn_into::<Uint32Array>().unwrap().length(), 32);
    assert_eq!(get(&t0, "epoch").as_f64(), Some(0.0));
    // The change since the start: nothing before training (every tile mid-grey).
    let change = get(&t0, "change").dyn_into::<Uint8Array>().unwrap().to_vec();
    assert_eq!(change.len(), 32 * 4096);
    assert!(change.chunks_exact(4).all(|p| p == [128, 128, 128, 255]));
    assert_eq!(get(&t0, "change_relative").as_f64(), Some(0.0));
    assert!(s.train_batches(10).unwrap().is_object());
    assert!(get(&s.unit_tiles().unwrap(), "change_relative").as_f64().unwrap() > 0.0);
    let mut from_file = Session::new(config, &data).unwrap();
    from_file.import_weights(&s.export_weights()).unwrap();
    assert!(get(&from_file.unit_tiles().unwrap(), "change").is_null(), "a file's weights have no known start");
    let epochs = get(&s.unit_tile_epochs().unwrap(), "epochs");
    assert_eq!(js_sys::Array::from(&epochs).iter().map(|e| e.as_f64().unwrap()).collect::<Vec<_>>(), [0.0, 1.0]);
    let before = get(&s.unit_tiles_at(0).unwrap(), "tiles").dyn_into::<Uint8Array>().unwrap();
    assert_eq!(before.to_vec(), tiles.to_vec(), "the snapshot before training");
    assert!(s.unit_tiles_at(7).is_err());

    // Top activations, neighbours and saliency.
    assert!(!s.inspection_ready());
    let top = s.top_activations(3).unwrap();
    assert!(s.inspection_ready());
    assert_eq!(get(&top, "top").dyn_into::<Uint32Array>().unwrap().length(), 8);
    assert_eq!(get(&top, "bottom_labels").dyn_into::<Uint8Array>().unwrap().length(), 8);
    let v = get(&top, "top_values").dyn_into::<Float32Array>().unwrap().to_vec();
    assert!(v.windows(2).all(|w| w[0] >= w[1]));
    assert!(s.top_activations(32).is_err());
    assert_eq!(get(&s.top_activations_all().unwrap(), "top").dyn_into::<Uint32Array>().unwrap().length(), 32 * 8);
    let n = s.neighbours_image("test", 0, Some(5)).unwrap();
    let d = get(&n, "distances").dyn_into::<Float32Array>().unwrap().to_vec();
    assert!(d.len() == 5 && d.windows(2).all(|w| w[0] <= w[1]));
    let own = get(&s.neighbours_image("train", 4, None).unwrap(), "indices").dyn_into::<Uint32Array>().unwrap();
    assert!(own.length() == 8 && !own.to_vec().contains(&4), "a training image is not its own neighbour");
    let sal = s.saliency_image("test", 0, None).unwrap();
    assert_eq!(get(&sal, "gradient").dyn_into::<Float32Array>().unwrap().length(), 3072);
    assert_eq!(get(&sal, "magnitude").dyn_into::<Float32Array>().unwrap().length(), 1024);
    assert_eq!(get(&sal, "image").dyn_into::<Uint8Array>().unwrap().length(), 4096);
    let rgba: Vec<u8> = (0..50 * 40 * 4).map(|i| (i % 253) as u8).collect();
    assert_eq!(get(&s.saliency_rgba(&rgba, 50, 40, Some(1)).unwrap(), "class").as_f64(), Some(1.0));
    assert!(s.saliency_rgba(&rgba, 50, 40, Some(2)).is_err());
    assert!(s.neighbours_rgba(&rgba, 50, 40, Some(3)).is_ok());
    assert!(s.saliency_image("test", 100, None).is_err());

    // Hard examples, validation, the band, train more.
    let hard = s.hard_examples(5).unwrap();
    assert_eq!(js_sys::Array::from(&get(&hard, "most_wrong")).length(), 5);
    assert_eq!(get(&hard, "images").as_f64(), Some(200.0));
    assert!(get(&s.last_validation().unwrap(), "accuracy").as_f64().unwrap() > 0.9);
    assert!(s.band_preset().is_none(), "a custom model has no band");
    assert!(s.band_position("val_accuracy", 0, 0.9).unwrap().is_null());
    let band = pytorch_band().unwrap();
    assert_eq!(get(&get(&band, "provenance"), "script").as_string().unwrap(), "tests/reference/pytorch_band.py");
    assert!(get(&band_position("lecture", "val_accuracy", 0, 0.5).unwrap(), "inside").as_bool().is_some());
    assert_eq!(s.extend_epochs(3).unwrap(), 4);
    assert!(s.config().contains("\"epochs\":4"));
    let resumed = Session::resume(&s.save_state().unwrap(), &data).unwrap();
    assert!(resumed.config().contains("\"epochs\":4"), "a resumed run keeps the new budget");
    assert!(s.extend_epochs(0).is_err());
    assert_eq!(data.images_rgba("train", &[0, 1]).unwrap().len(), 2 * 4096);
    assert_eq!(data.labels_of("train", &[0, 1]).unwrap(), [0, 1]);
    assert!(data.images_rgba("train", &[200]).is_err());

    // Imported weights start a new history.
    s.import_weights(&s.export_weights()).unwrap();
    assert_eq!(js_sys::Array::from(&get(&s.unit_tile_epochs().unwrap(), "epochs")).length(), 1);
    assert_eq!(s.epochs_done(), 0);
}

#[cfg(feature = "wasm-threads")]
#[wasm_bindgen_test]
async fn thread_pool_starts_and_gives_the_same_result_as_one_thread() {
    use skywatch::matmul::gemm_with_threads;
    setup().await;
    assert_eq!(rayon::current_num_threads(), 2);
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let a = random(64, 3072, &mut rng);
    let w = random(512, 3072, &mut rng);
    let run = |threads| {
        let mut c = Array2::<f32>::zeros((64, 512));
        gemm_with_threads(Kernel::best(), threads, 1.0, &a.view(), &w.t(), 0.0, &mut c.view_mut());
        c
    };
    assert_eq!(run(1), run(2), "results must not depend on the thread count");
}

/// An augmented run (`flip,shift:4`) on the pool of 2 threads gives the same weights trained a
/// whole epoch at a time and in slices of 3 batches (as the page's worker trains), for the MLP and
/// the convolutional model, and other weights than `augment = none`: the draws depend only on the
/// seed and the picture's place in the epoch (`skywatch::data::augment`). (Against one thread:
/// natively, tests/translation.rs; a second pool on the test's worker cannot be built here.)
#[cfg(feature = "wasm-threads")]
#[wasm_bindgen_test]
async fn augmented_runs_are_the_same_whole_and_in_slices_on_two_threads() {
    use skywatch::config::TrainConfig;
    use skywatch::data::Dataset;
    use skywatch::train::Trainer;
    setup().await;
    assert_eq!(rayon::current_num_threads(), 2);
    let (manifest, train, test) = bundle(200);
    let data =
        std::sync::Arc::new(Dataset::from_bundle(&Manifest::parse(manifest.as_bytes()).unwrap(), train, test).unwrap());
    for preset in ["lecture", "conv"] {
        let mut c = TrainConfig::preset(preset).unwrap();
        c.epochs = 2;
        c.augment = "flip,shift:4".parse().unwrap();
        let run = |c: &TrainConfig, slice: usize| {
            let mut t = Trainer::new(c.clone(), std::sync::Arc::clone(&data)).unwrap();
            while t.epochs_done() < 2 {
                t.train_batches(slice, &mut |_| {}).unwrap();
            }
            t.model.params
        };
        let whole = run(&c, usize::MAX);
        assert!(run(&c, 3) == whole, "{preset}: whole epochs vs slices of 3 batches");
        let mut plain = c.clone();
        plain.augment = Default::default();
        assert!(run(&plain, usize::MAX) != whole, "{preset}: the augmentation changes the run");
    }
}

/// The page's translation test in slices (`TranslationRun`, a few forward passes per call, as the
/// worker runs it between other requests) gives the numbers of the test in one go
/// (`translationTest`), whose accuracy at 0 px is the validation accuracy; a model trained since
/// the test began is refused. (Natively, for `conv` too and with pictures moved in between:
/// tests/translation.rs.)
#[wasm_bindgen_test]
async fn the_translation_test_in_slices_is_the_test_in_one_go() {
    use skywatch::wasm::TranslationRun;
    setup().await;
    // 600 test images: a batch of 500 and one of 100.
    let (manifest, train, test) = bundle(1200);
    let data = Data::new(&manifest, train, test, None, None).unwrap();
    let config = &small_mlp(2);
    let mut s = Session::new(config, &data).unwrap();
    while get(&s.train_batches(100).unwrap(), "epoch").is_null() {}
    let whole = s.translation_test().unwrap();
    let mut run = TranslationRun::new(&s);
    let mut calls = 1;
    while !run.step(&mut s, 3).unwrap() {
        calls += 1;
        assert!(run.progress() < 1.0);
    }
    // 2 batches x (1 + 4 directions x 6 shifts) passes, at most 3 a call.
    assert_eq!((run.passes(), calls, run.progress()), (50, 17, 1.0));
    let sliced = run.result().unwrap();
    let json = |v: &JsValue, k: &str| js_sys::JSON::stringify(&get(v, k)).unwrap().as_string().unwrap();
    for key in ["shift_px", "shift_accuracy", "shift_similarity"] {
        assert_eq!(json(&sliced, key), json(&whole, key), "{key}");
    }
    let accuracy0 = js_sys::Array::from(&get(&sliced, "shift_accuracy")).get(0).as_f64().unwrap();
    assert_eq!(accuracy0, get(&s.evaluate("test").unwrap(), "accuracy").as_f64().unwrap());
    let mut stale = TranslationRun::new(&s);
    s.train_batches(1).unwrap();
    assert!(stale.step(&mut s, 1).is_err(), "a model trained since the test began");
    assert!(stale.result().is_err(), "no result before the end");
}
