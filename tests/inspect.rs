//! What the model learned: unit tiles against the exported safetensors weights, top activations
//! and nearest neighbours against naive `f64` computations, saliency against finite differences.
#![cfg(not(target_arch = "wasm32"))] // native; tests/wasm.rs holds the tests that run in the browser

use ndarray::Array2;
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use skywatch::checkpoint;
use skywatch::config::{Activation, LossKind, ModelConfig, TrainConfig};
use skywatch::data::{MEAN, Normalizer, PIXELS, RECORD_BYTES, STD, Split};
use skywatch::inspect::saliency::saliency;
use skywatch::inspect::scan::{FirstLayerScan, TopK, hidden};
use skywatch::inspect::units::{TileHistory, UnitTiles, tile_value};
use skywatch::model::Mlp;
use skywatch::train::training_indices;

fn model(layers: &[usize], loss: LossKind, seed: u64) -> Mlp {
    let config = ModelConfig::mlp(layers.to_vec(), Activation::Tanh, loss);
    Mlp::new(&config, &mut ChaCha8Rng::seed_from_u64(seed)).unwrap()
}

/// `n` images of random pixels and labels; images `dups` are near-copies of image 0 (a few
/// pixels one level off), so that their hidden rows nearly coincide.
fn split(n: usize, seed: u64, near_copies: std::ops::Range<usize>) -> Split {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut rec = vec![0u8; n * RECORD_BYTES];
    for r in rec.chunks_exact_mut(RECORD_BYTES) {
        r[0] = rng.random_range(0..2u8);
        rng.fill(&mut r[1..]);
    }
    let first: Vec<u8> = rec[1..RECORD_BYTES].to_vec();
    for i in near_copies {
        let r = &mut rec[i * RECORD_BYTES + 1..(i + 1) * RECORD_BYTES];
        r.copy_from_slice(&first);
        for _ in 0..(i % 5 + 1) {
            let p = rng.random_range(0..PIXELS);
            r[p] = r[p].saturating_add(1);
        }
    }
    Split::from_records("synthetic", 2, rec).unwrap()
}

/// `x` of image `i` as the model sees it (the f32 normalisation), widened to f64.
fn input64(split: &Split, i: usize) -> Vec<f64> {
    let mut x = vec![0.0f32; PIXELS];
    Normalizer::default().apply(split.image(i), &mut x);
    x.into_iter().map(f64::from).collect()
}

/// Naive `z = W1 x + b1` in f64 from the model's f32 weights: `[units]`.
fn preact64(m: &Mlp, x: &[f64]) -> Vec<f64> {
    let first = &m.linears[0];
    let (w, b) = (first.weight(&m.params), first.bias(&m.params));
    (0..first.out_features)
        .map(|j| b[j] as f64 + w.row(j).iter().zip(x).map(|(&w, &x)| w as f64 * x).sum::<f64>())
        .collect()
}

#[test]
fn unit_tiles_equal_the_exported_weights_normalised_per_tile() {
    let mut m = model(&[3072, 512, 2], LossKind::Nll, 4);
    // Give the units different scales, as training does.
    let first = m.linears[0].clone();
    for (j, mut row) in first.weight_mut(&mut m.params).rows_mut().into_iter().enumerate() {
        row.mapv_inplace(|w| w * (1.0 + (j % 7) as f32));
    }
    let tiles = UnitTiles::of(&m);
    let bytes = checkpoint::save(&m);
    // Read back independently, with the safetensors crate.
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let read = |name: &str| -> Vec<f32> {
        st.tensor(name).unwrap().data().chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().unwrap())).collect()
    };
    let (w1, w2) = (read("0.weight"), read("2.weight"));
    assert_eq!((tiles.units, tiles.classes, tiles.rgb.len()), (512, 2, 512 * 3072));
    let rgba = tiles.rgba();
    for j in [0usize, 1, 6, 255, 511] {
        let w = &w1[j * 3072..(j + 1) * 3072];
        let s = w.iter().fold(0.0f64, |m, &v| m.max((v as f64).abs()));
        assert_eq!(tiles.scale[j] as f64, s, "unit {j}: scale");
        for c in 0..3 {
            for y in 0..32 {
                for x in 0..32 {
                    // The stated scale, in f64: 128 + 127 w / s, rounded.
                    let exact = 128.0 + 127.0 * w[c * 1024 + y * 32 + x] as f64 / s;
                    let got = tiles.rgb[j * 3072 + (y * 32 + x) * 3 + c];
                    assert_eq!(got, rgba[j * 4096 + (y * 32 + x) * 4 + c]);
                    if (exact - exact.floor() - 0.5).abs() > 1e-4 {
                        assert_eq!(got as f64, exact.round(), "unit {j} channel {c} pixel ({x}, {y})");
                    } else {
                        assert!((got as f64 - exact).abs() <= 0.5 + 1e-4);
                    }
                }
            }
        }
        assert_eq!(rgba[j * 4096 + 3], 255);
        // The largest weight of the tile is 255 or 1, a zero weight mid-grey.
        assert!(tiles.rgb[j * 3072..(j + 1) * 3072].iter().any(|&v| v == 255 || v == 1));
    }
    assert_eq!(
        (tile_value(0.0, 1.0), tile_value(1.0, 1.0), tile_value(-1.0, 1.0), tile_value(0.3, 0.0)),
        (128, 255, 1, 128)
    );
    // Votes are the outgoing weights; the order is by |W2[1, j] - W2[0, j]|, largest first.
    assert!(tiles.votes_exact);
    assert_eq!(tiles.votes, w2);
    let strength = |j: u32| (w2[512 + j as usize] - w2[j as usize]).abs();
    assert!(tiles.order.windows(2).all(|p| strength(p[0]) >= strength(p[1])));
    let mut sorted = tiles.order.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, (0..512).collect::<Vec<u32>>());
}

#[test]
fn deep_votes_are_the_product_of_the_later_weights() {
    let m = model(&[3072, 16, 8, 4, 2], LossKind::CrossEntropy, 5);
    let t = UnitTiles::of(&m);
    assert!(!t.votes_exact);
    let w = |l: usize| m.linears[l].weight(&m.params).mapv(f64::from);
    let want = w(3).dot(&w(2)).dot(&w(1)); // [2, 16]
    for c in 0..2 {
        for j in 0..16 {
            assert!((t.votes[c * 16 + j] as f64 - want[[c, j]]).abs() < 1e-6, "vote [{c}, {j}]");
        }
    }
}

#[test]
fn tile_history_keeps_the_first_and_latest_within_its_budget() {
    let m = model(&[3072, 4, 2], LossKind::Nll, 1);
    let one = UnitTiles::of(&m).bytes();
    let mut h = TileHistory::new(5 * one);
    for e in 0..=20 {
        h.push(e, UnitTiles::of(&m));
        assert!(h.bytes() <= 5 * one, "over budget after epoch {e}");
    }
    let epochs = h.epochs();
    assert_eq!(epochs.len(), 5);
    assert_eq!((epochs[0], epochs[4]), (0, 20));
    // Log-spaced: gaps grow (weakly) with the epoch.
    let gaps: Vec<usize> = epochs.windows(2).map(|w| w[1] - w[0]).collect();
    assert!(gaps.windows(2).all(|g| g[0] <= g[1]), "{epochs:?}");
    // A push of an earlier epoch (a restarted run) drops the later ones.
    h.push(3, UnitTiles::of(&m));
    assert_eq!(h.last_epoch(), Some(3));
    assert!(h.epochs().iter().all(|&e| e <= 3));
    h.set_budget(2 * one);
    assert_eq!(h.epochs().len(), 2);
}

#[test]
fn top_k_breaks_ties_by_the_smaller_index() {
    let mut top = TopK::new(3, true);
    let mut bottom = TopK::new(3, false);
    for (v, i) in [(1.0, 9), (2.0, 7), (2.0, 3), (0.5, 1), (2.0, 5), (-1.0, 8), (-1.0, 2), (3.0, 4)] {
        top.offer(v, i);
        bottom.offer(v, i);
    }
    assert_eq!(top.items(), &[(3.0, 4), (2.0, 3), (2.0, 5)]);
    assert_eq!(bottom.items(), &[(-1.0, 2), (-1.0, 8), (0.5, 1)]);
}

/// The reference ranking: indices by f64 value (descending when `largest`), ties by index.
fn ranked(values: &[(f64, u32)], largest: bool) -> Vec<(f64, u32)> {
    let mut v = values.to_vec();
    v.sort_by(|a, b| if largest { b.0.total_cmp(&a.0) } else { a.0.total_cmp(&b.0) }.then(a.1.cmp(&b.1)));
    v
}

/// `got` (f32 results) equals the naive ranking `want`, except that two images whose f64 values
/// differ by less than `tol` may swap (the GEMM sums in f32).
fn assert_same_ranking(what: &str, got: &[(f32, u32)], want: &[(f64, u32)], value_of: &dyn Fn(u32) -> f64, tol: f64) {
    for (p, (&(gv, gi), &(wv, wi))) in got.iter().zip(want).enumerate() {
        let exact = value_of(gi);
        assert!((gv as f64 - exact).abs() <= tol, "{what} #{p}: value {gv} of image {gi}, naive {exact}");
        assert!(gi == wi || (exact - wv).abs() <= tol, "{what} #{p}: image {gi} ({exact}), naive {wi} ({wv})");
    }
}

#[test]
fn top_activations_equal_a_naive_computation() {
    let data = split(700, 6, 0..0);
    let m = model(&[3072, 24, 2], LossKind::Nll, 7);
    // The run's images: a seeded subset of 600 of the 700.
    let images = training_indices(700, Some(600), 3);
    // 600 images in batches of 500: the last batch is partial.
    let scan = FirstLayerScan::run(&m, &data, &images, &Normalizer::default(), 8);
    assert_eq!((scan.units, scan.k, scan.top.len()), (24, 8, 24 * 8));
    let z: Vec<Vec<f64>> = (0..700).map(|i| preact64(&m, &input64(&data, i))).collect();
    // Per unit: z of every image.
    let per_unit: Vec<Vec<f64>> = (0..24).map(|j| z.iter().map(|zi| zi[j]).collect()).collect();
    for (j, zj) in per_unit.iter().enumerate() {
        let values: Vec<(f64, u32)> = images.iter().map(|&i| (zj[i as usize], i)).collect();
        let u = scan.unit(j).unwrap();
        let got_top: Vec<(f32, u32)> = u.top_values.iter().copied().zip(u.top.iter().copied()).collect();
        let got_bottom: Vec<(f32, u32)> = u.bottom_values.iter().copied().zip(u.bottom.iter().copied()).collect();
        let value_of = |i: u32| zj[i as usize];
        assert_same_ranking(&format!("unit {j} top"), &got_top, &ranked(&values, true)[..8], &value_of, 1e-4);
        assert_same_ranking(&format!("unit {j} bottom"), &got_bottom, &ranked(&values, false)[..8], &value_of, 1e-4);
        assert!(u.top.iter().chain(&u.bottom).all(|i| images.contains(i)), "only the run's images");
    }
    assert!(scan.unit(24).is_none());
    // Fewer images than k: all of them.
    let small = FirstLayerScan::run(&m, &data, &[3, 5, 8], &Normalizer::default(), 8);
    assert_eq!(small.k, 3);
}

#[test]
fn nearest_neighbours_equal_a_naive_computation() {
    // Images 1..40 are near-copies of image 0: their quantised hidden rows cannot tell them
    // apart, the exact re-ranking must.
    let data = split(900, 8, 1..40);
    let test = split(5, 9, 0..0);
    let m = model(&[3072, 32, 2], LossKind::Nll, 10);
    let images: Vec<u32> = (0..900).collect();
    let norm = Normalizer::default();
    let scan = FirstLayerScan::run(&m, &data, &images, &norm, 8);
    let h64 = |x: &[f64]| -> Vec<f64> { preact64(&m, x).into_iter().map(f64::tanh).collect() };
    let train_h: Vec<Vec<f64>> = (0..900).map(|i| h64(&input64(&data, i))).collect();
    let queries: Vec<(Vec<f64>, &Split, usize, Option<u32>)> = vec![
        (input64(&data, 0), &data, 0, Some(0)),
        (input64(&data, 17), &data, 17, Some(17)),
        (input64(&test, 2), &test, 2, None),
    ];
    for (x, s, i, exclude) in queries {
        let q = h64(&x);
        let mut x32 = Array2::zeros((1, PIXELS));
        norm.apply(s.image(i), x32.as_slice_mut().unwrap());
        let query = hidden(&m, x32.view());
        let got = scan.neighbours(&m, &data, &norm, query.as_slice().unwrap(), 8, exclude);
        let dist = |j: u32| train_h[j as usize].iter().zip(&q).map(|(a, b)| (a - b).powi(2)).sum::<f64>().sqrt();
        let all: Vec<(f64, u32)> = images.iter().filter(|&&j| Some(j) != exclude).map(|&j| (dist(j), j)).collect();
        let want = ranked(&all, false);
        let got_pairs: Vec<(f32, u32)> = got.iter().map(|n| (n.distance, n.index)).collect();
        assert_eq!(got.len(), 8);
        assert_same_ranking(&format!("neighbours of image {i}"), &got_pairs, &want[..8], &dist, 1e-5);
        for n in &got {
            assert_eq!(n.label, data.label(n.index as usize));
        }
        if exclude == Some(0) {
            // The nearest neighbours of image 0 are its near-copies.
            assert!(got.iter().all(|n| (1..40).contains(&n.index)), "{got:?}");
        }
    }
    // k larger than the set: everything but the excluded image.
    let few = FirstLayerScan::run(&m, &data, &[4, 9, 30], &norm, 8);
    let mut x32 = Array2::zeros((1, PIXELS));
    norm.apply(data.image(9), x32.as_slice_mut().unwrap());
    let q = hidden(&m, x32.view());
    let got = few.neighbours(&m, &data, &norm, q.as_slice().unwrap(), 8, Some(9));
    assert_eq!(got.iter().map(|n| n.index).collect::<Vec<_>>().len(), 2);
}

/// `log p[class]` of `image` with pixel `(channel c, position p)` set to the real value `v`,
/// by the model's own forward pass.
fn log_prob_at(m: &mut Mlp, image: &[u8], c: usize, p: usize, v: f32, class: usize) -> f32 {
    let mut x = Array2::zeros((1, PIXELS));
    Normalizer::default().apply(image, x.as_slice_mut().unwrap());
    x[[0, c * 1024 + p]] = (v / 255.0 - MEAN[c]) / STD[c];
    let probs = m.predict_proba(x.view());
    probs[[0, class]].ln()
}

#[test]
fn saliency_matches_finite_differences() {
    let mut rng = ChaCha8Rng::seed_from_u64(12);
    for (layers, loss) in [(vec![3072, 64, 2], LossKind::Nll), (vec![3072, 48, 24, 2], LossKind::CrossEntropy)] {
        let mut m = model(&layers, loss, 13);
        let image: Vec<u8> = (0..PIXELS).map(|_| rng.random_range(0..=255u8)).collect();
        let before = m.params.clone();
        for class in [0usize, 1] {
            let s = saliency(&mut m, &image, &Normalizer::default(), Some(class)).unwrap();
            assert_eq!(m.params, before, "saliency must not change the weights");
            assert_eq!((s.gradient.len(), s.magnitude.len(), s.class), (PIXELS, 1024, class));
            assert!((s.probabilities.iter().sum::<f32>() - 1.0).abs() < 1e-5);
            assert!((s.log_probability - s.probabilities[class].ln()).abs() < 1e-5);
            for p in 0..1024 {
                let want = (0..3).map(|c| s.gradient[c * 1024 + p].abs()).fold(0.0, f32::max);
                assert_eq!(s.magnitude[p], want);
            }
            // The 4 largest gradients and 4 pixels at random.
            let mut by_size: Vec<usize> = (0..PIXELS).collect();
            by_size.sort_by(|&a, &b| s.gradient[b].abs().total_cmp(&s.gradient[a].abs()));
            let picks: Vec<usize> =
                by_size[..4].iter().copied().chain((0..4).map(|_| rng.random_range(0..PIXELS))).collect();
            // Step: 8 pixel levels. The score is smooth (tanh) and its third derivative along one
            // pixel is tiny (first-layer weights ~0.02, and 1/(255 std) ~ 0.016 per level), so the
            // central difference's truncation error is negligible. Its rounding error is that of
            // two f32 log-probabilities near -0.7 (ulp 6e-8; a few ulps each, <= 2.5e-7) over
            // 2h = 16 levels: <= 3e-8 per level, against gradients of 1e-6 to 3e-4 per level here.
            // Measured: at most 1.1e-8. Tolerance: that rounding bound plus 0.1% of the gradient.
            let h = 8.0f32;
            for i in picks {
                let (c, p) = (i / 1024, i % 1024);
                let v = image[i] as f32;
                let fd = (log_prob_at(&mut m, &image, c, p, v + h, class)
                    - log_prob_at(&mut m, &image, c, p, v - h, class))
                    / (2.0 * h);
                let g = s.gradient[i];
                assert!(
                    (g - fd).abs() <= 1e-3 * g.abs() + 3e-8,
                    "{layers:?} class {class}, channel {c} pixel {p}: backward {g}, finite difference {fd}"
                );
            }
        }
        // Default class: the predicted one.
        let s = saliency(&mut m, &image, &Normalizer::default(), None).unwrap();
        let predicted = if s.probabilities[1] > s.probabilities[0] { 1 } else { 0 };
        assert_eq!(s.class, predicted);
        assert!(saliency(&mut m, &image, &Normalizer::default(), Some(2)).unwrap_err().to_string().contains("class 2"));
        assert!(saliency(&mut m, &image[..100], &Normalizer::default(), None).is_err());
    }
    // The lecture preset's model: the same path at full size.
    let mut m = Mlp::new(&TrainConfig::preset("lecture").unwrap().model, &mut ChaCha8Rng::seed_from_u64(1)).unwrap();
    let image = vec![90u8; PIXELS];
    let s = saliency(&mut m, &image, &Normalizer::default(), Some(0)).unwrap();
    assert!(s.magnitude_max > 0.0 && s.gradient.iter().all(|g| g.is_finite()));
}

/// Checks `tiles` (one tile's RGB, 3072 bytes) against `128 + 127 v(c, x, y) / s` in f64, where
/// `s = max |v|` over the tile (a value within 1e-4 of a half may round either way).
fn assert_tile(what: &str, tiles: &[u8], value: &dyn Fn(usize, usize, usize) -> f64) {
    let s = (0..3 * 1024).map(|i| value(i / 1024, i % 32, i % 1024 / 32).abs()).fold(0.0, f64::max);
    for c in 0..3 {
        for y in 0..32 {
            for x in 0..32 {
                let exact = if s > 0.0 { 128.0 + 127.0 * value(c, x, y) / s } else { 128.0 };
                let got = tiles[(y * 32 + x) * 3 + c] as f64;
                if (exact - exact.floor() - 0.5).abs() > 1e-4 {
                    assert_eq!(got, exact.round(), "{what}: channel {c} pixel ({x}, {y})");
                } else {
                    assert!((got - exact).abs() <= 0.5 + 1e-4, "{what}: channel {c} pixel ({x}, {y})");
                }
            }
        }
    }
}

#[test]
fn change_tiles_are_w_minus_w0_normalised_per_tile() {
    // Reference: the formula of src/inspect/units.rs, `round(128 + 127 d / max|d|)` per tile with
    // `d = w - w0`, computed here in f64 from the two parameter buffers.
    let start = model(&[3072, 16, 2], LossKind::Nll, 21);
    let mut m = start.clone();
    let mut rng = ChaCha8Rng::seed_from_u64(22);
    // A change of its own size per unit (as training gives), small against the start.
    for (i, p) in m.params.iter_mut().enumerate() {
        *p += 1e-3 * (1 + i / 3072 % 5) as f32 * (rng.random::<f32>() - 0.5);
    }
    assert!(UnitTiles::of(&m).change.is_none());
    let t = UnitTiles::with_start(&m, Some(&start.params));
    let change = t.change.as_ref().expect("the start is given");
    let (w, w0) = (m.linears[0].weight(&m.params), start.linears[0].weight(&start.params));
    for j in [0usize, 3, 15] {
        let d =
            |c: usize, x: usize, y: usize| w[[j, c * 1024 + y * 32 + x]] as f64 - w0[[j, c * 1024 + y * 32 + x]] as f64;
        assert_tile(&format!("unit {j}: change"), &change.rgb[j * 3072..][..3072], &d);
        let s = (0..3072).map(|i| (w[[j, i]] as f64 - w0[[j, i]] as f64).abs()).fold(0.0, f64::max);
        assert!((change.scale[j] as f64 - s).abs() <= 1e-6 * s, "unit {j}: change scale");
        // The weights' tiles are unchanged by the start.
        assert_tile(&format!("unit {j}: weights"), &t.rgb[j * 3072..][..3072], &|c, x, y| {
            w[[j, c * 1024 + y * 32 + x]] as f64
        });
    }
    let norm = |v: &mut dyn Iterator<Item = f64>| v.map(|x| x * x).sum::<f64>().sqrt();
    let rel = norm(&mut w.iter().zip(w0.iter()).map(|(&a, &b)| a as f64 - b as f64))
        / norm(&mut w0.iter().map(|&b| b as f64));
    assert!((change.relative as f64 - rel).abs() < 1e-4 * rel, "relative change {} against {rel}", change.relative);
    assert!(rel < 0.1, "a small change: {rel}");
    assert_eq!(t.change_rgba().unwrap()[..4], [change.rgb[0], change.rgb[1], change.rgb[2], 255]);
    // No change at all: every change tile is mid-grey.
    let none = UnitTiles::with_start(&start, Some(&start.params)).change.unwrap();
    assert!(none.rgb.iter().all(|&v| v == 128) && none.relative == 0.0);

    // A convolutional model: its first convolution's filters, each enlarged (pixel (x, y) shows
    // weight (y k / 32, x k / 32)).
    let conv = TrainConfig::preset("conv").unwrap().model;
    let start = Mlp::new(&conv, &mut ChaCha8Rng::seed_from_u64(23)).unwrap();
    let mut m = start.clone();
    for (i, p) in m.params.iter_mut().enumerate() {
        *p += 0.01 * ((i * 7919 % 101) as f32 / 101.0 - 0.5);
    }
    let t = UnitTiles::with_start(&m, Some(&start.params));
    assert_eq!(t.units, 16);
    let change = t.change.unwrap();
    let f = &m.features.as_ref().unwrap().blocks[0].conv;
    let (w, w0) = (f.weight(&m.params), f.weight(&start.params));
    for j in [0usize, 9, 15] {
        let at = |c: usize, x: usize, y: usize| (c * 3 + y * 3 / 32) * 3 + x * 3 / 32;
        assert_tile(&format!("filter {j}: change"), &change.rgb[j * 3072..][..3072], &|c, x, y| {
            w[[j, at(c, x, y)]] as f64 - w0[[j, at(c, x, y)]] as f64
        });
        assert_tile(&format!("filter {j}: weights"), &t.rgb[j * 3072..][..3072], &|c, x, y| w[[j, at(c, x, y)]] as f64);
    }
}

#[test]
fn the_inspector_draws_the_change_from_the_runs_start() {
    let data = std::sync::Arc::new(skywatch::Dataset {
        classes: vec!["airplane".into(), "bird".into()],
        train: split(200, 30, 0..0),
        test: split(20, 31, 0..0),
    });
    let mut c = TrainConfig::preset("lecture").unwrap();
    (c.model.layers, c.train_size) = (vec![3072, 8, 2], Some(128));
    let mut t = skywatch::Trainer::new(c, data).unwrap();
    let w0 = t.model.params.clone();
    assert_eq!(t.initial_params(), Some(w0.as_slice()), "a fresh run starts from its seed's weights");
    let mut inspector = skywatch::inspect::Inspector::default();
    inspector.observe(&t);
    t.train_epoch(&mut |_| {}).unwrap();
    inspector.observe(&t);
    let before = inspector.tiles.get(0).unwrap().change.as_ref().unwrap();
    assert!(before.rgb.iter().all(|&v| v == 128), "before training nothing has changed");
    let after = inspector.tiles.get(1).unwrap();
    assert_eq!(after, &UnitTiles::with_start(&t.model, Some(&w0)));
    assert!(after.change.as_ref().unwrap().relative > 0.0);
}

#[test]
fn convolutional_neighbours_are_ranked_in_fc1() {
    // Reference: fc1's activations are what the model's own last layer reads: fc2 applied to
    // `hidden` gives the model's logits (its forward pass is checked against PyTorch in
    // tests/conv.rs); the ranking is then the naive f64 one over every scanned image.
    let data = split(260, 24, 1..6);
    let config = TrainConfig::preset("conv").unwrap().model;
    let mut m = Mlp::new(&config, &mut ChaCha8Rng::seed_from_u64(25)).unwrap();
    let norm = Normalizer::default();
    let mut x = Array2::zeros((260, PIXELS));
    for i in 0..260 {
        norm.apply(data.image(i), x.row_mut(i).as_slice_mut().unwrap());
    }
    let h = hidden(&m, x.view());
    assert_eq!(h.dim(), (260, 32));
    let logits = m.forward(x.view()).to_owned();
    let fc2 = &m.linears[1];
    let mut again = Array2::zeros((260, 2));
    fc2.forward(&m.params, h.view(), again.view_mut());
    assert!(logits.iter().zip(&again).all(|(a, b)| (a - b).abs() < 1e-5), "fc2(hidden) is the model's output");
    let images: Vec<u32> = (0..260).collect();
    let scan = FirstLayerScan::run(&m, &data, &images, &norm, 8);
    assert_eq!(scan.units, 32);
    for (i, exclude) in [(0usize, Some(0u32)), (77, None)] {
        let q = h.row(i);
        let dist =
            |j: u32| h.row(j as usize).iter().zip(q).map(|(&a, &b)| (a as f64 - b as f64).powi(2)).sum::<f64>().sqrt();
        let all: Vec<(f64, u32)> = images.iter().filter(|&&j| Some(j) != exclude).map(|&j| (dist(j), j)).collect();
        let got = scan.neighbours(&m, &data, &norm, q.as_slice().unwrap(), 8, exclude);
        let got_pairs: Vec<(f32, u32)> = got.iter().map(|n| (n.distance, n.index)).collect();
        assert_same_ranking(
            &format!("conv neighbours of image {i}"),
            &got_pairs,
            &ranked(&all, false)[..8],
            &dist,
            1e-5,
        );
        if exclude.is_none() {
            assert_eq!((got[0].index, got[0].distance), (77, 0.0), "an image is its own nearest");
        }
    }
    // Through a run: the inspector answers for a convolutional model; top activations still
    // refuse (its unit tiles are filters, which have no single response per image).
    let ds = std::sync::Arc::new(skywatch::Dataset {
        classes: vec!["airplane".into(), "bird".into()],
        train: data,
        test: split(10, 26, 0..0),
    });
    let mut c = TrainConfig::preset("conv").unwrap();
    c.train_size = Some(100);
    let t = skywatch::Trainer::new(c, ds.clone()).unwrap();
    let mut inspector = skywatch::inspect::Inspector::default();
    let near = inspector.neighbours(&t, ds.test.image(3), 8, None).unwrap();
    assert_eq!(near.len(), 8);
    assert!(near.iter().all(|n| t.train_indices().contains(&n.index)));
    assert!(skywatch::inspect::Inspector::require_pixel_layer(&t).is_err());
}
