//! The convolutional layers and the book's `Net` against PyTorch and against finite differences.
//!
//! The expected numbers come from PyTorch (`tests/reference/conv_pytorch.py`, written to
//! `tests/reference/conv_reference.json`). Every input there is `scale * sin(a i + b)` over the
//! flat index `i`, computed in f64 and rounded to f32; [`wave`] builds the same tensors here.
#![cfg(not(target_arch = "wasm32"))] // native; tests/wasm.rs holds the tests that run in the browser

use ndarray::Array2;
use serde_json::Value;
use skywatch::checkpoint;
use skywatch::config::{Activation, LossKind, ModelConfig, TrainConfig};
use skywatch::layers::conv::{Conv2d, Im2col, Planes};
use skywatch::layers::pool::MaxPool2d;
use skywatch::matmul::PackedB;
use skywatch::model::Mlp;

fn reference() -> Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/reference/conv_reference.json");
    serde_json::from_str(&std::fs::read_to_string(path).expect("committed reference")).expect("JSON")
}

/// `scale * sin(a i + b)` for `i` in `0..n`, as the reference script computes it.
fn wave(n: usize, a: f64, b: f64, scale: f64) -> Vec<f32> {
    (0..n).map(|i| (scale * (a * i as f64 + b).sin()) as f32).collect()
}

fn floats(v: &Value) -> Vec<f32> {
    v.as_array().expect("array").iter().map(|x| x.as_f64().expect("number") as f32).collect()
}

fn usize_of(v: &Value, key: &str) -> usize {
    v[key].as_u64().unwrap_or_else(|| panic!("{key}")) as usize
}

/// Elementwise `|a - b| <= atol + rtol |b|`.
fn assert_close(ours: &[f32], expected: &[f32], atol: f32, what: &str) {
    assert_eq!(ours.len(), expected.len(), "{what}: length");
    for (i, (&a, &b)) in ours.iter().zip(expected).enumerate() {
        assert!((a - b).abs() <= atol + 1e-4 * b.abs(), "{what}[{i}]: ours {a}, PyTorch {b}");
    }
}

/// `[C, N, H, W]` (the layers' layout) to `[N, C, H, W]` (PyTorch's).
fn cnhw_to_nchw(v: &[f32], c: usize, n: usize, plane: usize) -> Vec<f32> {
    let mut out = vec![0.0; v.len()];
    for ch in 0..c {
        for b in 0..n {
            out[(b * c + ch) * plane..][..plane].copy_from_slice(&v[(ch * n + b) * plane..][..plane]);
        }
    }
    out
}

/// `[N, C, H, W]` to `[C, N, H, W]`: the same swap of the two outer axes.
fn nchw_to_cnhw(v: &[f32], c: usize, n: usize, plane: usize) -> Vec<f32> {
    cnhw_to_nchw(v, n, c, plane)
}

#[test]
fn conv2d_forward_and_backward_match_pytorch() {
    let r = reference();
    for case in r["conv"].as_array().unwrap() {
        let [n, cin, h, w, cout, k, stride, pad] =
            ["n", "cin", "h", "w", "cout", "k", "stride", "pad"].map(|key| usize_of(case, key));
        let conv = Conv2d::new(cin, cout, k, stride, pad, (h, w), 0);
        let (oh, ow) = conv.output();
        assert_eq!(vec![oh, ow], floats(&case["out"]).iter().map(|&v| v as usize).collect::<Vec<_>>());
        let what = format!("conv {cin}->{cout} k{k} s{stride} p{pad} on {n}x{h}x{w}");
        let x = wave(n * cin * h * w, 0.7, 0.3, 1.0);
        let mut params = wave(conv.num_weights(), 1.3, 0.1, 0.2);
        params.extend(wave(cout, 2.1, 0.0, 0.1));
        let big_n = n * oh * ow;
        let mut col = vec![0.0; conv.patch() * big_n];
        conv.im2col(&x, Planes::nchw(cin, h * w), n, &mut col);
        let mut y = vec![0.0; cout * big_n];
        conv.forward(&params, &col, &mut y);
        assert_close(&cnhw_to_nchw(&y, cout, n, oh * ow), &floats(&case["y"]), 1e-5, &format!("{what}: y"));

        let dy = nchw_to_cnhw(&wave(y.len(), 0.9, 0.5, 1.0), cout, n, oh * ow);
        let mut grads = vec![0.0; params.len()];
        let mut dcol = vec![0.0; col.len()];
        conv.backward(&params, &mut grads, &col, &dy, Some(&mut dcol));
        let mut dx = vec![f32::NAN; x.len()];
        conv.col2im(&dcol, Planes::nchw(cin, h * w), n, &mut dx);
        assert_close(&grads[..conv.num_weights()], &floats(&case["dw"]), 1e-4, &format!("{what}: dW"));
        assert_close(&grads[conv.num_weights()..], &floats(&case["db"]), 1e-4, &format!("{what}: db"));
        assert_close(&dx, &floats(&case["dx"]), 1e-5, &format!("{what}: dx"));

        // Training never stores `col`: the GEMM's panels are made from the images. The same
        // values in the same order, so the same results bit for bit, in either layout (the
        // data's NCHW, the blocks' CNHW).
        for (planes, input) in
            [(Planes::nchw(cin, h * w), x.clone()), (Planes::cnhw(n, h * w), nchw_to_cnhw(&x, cin, n, h * w))]
        {
            let mut col = vec![0.0; col.len()];
            conv.im2col(&input, planes, n, &mut col);
            let mut want = vec![0.0; y.len()];
            conv.forward_unbiased(&params, &col, &mut want);
            let mut got = vec![f32::NAN; y.len()];
            conv.forward_from(&params, &input, planes, n, &mut got);
            assert_eq!(got, want, "{what}: y from the images' panels ({planes:?})");
            let (mut gw, mut dw) = (vec![0.0; params.len()], vec![0.0; params.len()]);
            let (mut gcol, mut dcol) = (vec![f32::NAN; col.len()], vec![0.0; col.len()]);
            conv.backward(&params, &mut dw, &col, &dy, Some(&mut dcol));
            conv.backward_from(&params, &mut gw, &input, planes, n, &dy, Some(&mut gcol));
            assert_eq!(gw, dw, "{what}: dW and db from the images' panels ({planes:?})");
            assert_eq!(gcol, dcol, "{what}: dcol ({planes:?})");
        }
    }
}

#[test]
fn max_pool_forward_and_backward_match_pytorch() {
    let r = reference();
    for case in r["pool"].as_array().unwrap() {
        let [n, c, h, w, k] = ["n", "c", "h", "w", "k"].map(|key| usize_of(case, key));
        let pool = MaxPool2d::new(k, (h, w));
        let (oh, ow) = pool.output();
        let x = wave(n * c * h * w, 0.7, 0.3, 1.0);
        let mut y = vec![0.0; n * c * oh * ow];
        let mut arg = vec![0u8; y.len()];
        pool.forward(&x, &mut y, &mut arg);
        assert_eq!(y, floats(&case["y"]), "pool {k} on {n}x{c}x{h}x{w}: a max is one of the inputs, exactly");
        let dy = wave(y.len(), 0.9, 0.5, 1.0);
        let mut dx = vec![f32::NAN; x.len()];
        pool.backward(&dy, &arg, &mut dx);
        assert_eq!(dx, floats(&case["dx"]), "pool {k} backward on {n}x{c}x{h}x{w}");
    }
}

/// The `conv` preset with the reference's parameters: tensor `i` of PyTorch's
/// `named_parameters()` is `0.1 sin((0.37 + 0.01 i) j + 0.5 i)`.
fn book_net() -> Mlp {
    let mut model = Mlp::zeros(&TrainConfig::preset("conv").unwrap().model).unwrap();
    for (i, e) in checkpoint::entries(&model).into_iter().enumerate() {
        let v = wave(e.range.len(), 0.37 + 0.01 * i as f64, 0.5 * i as f64, 0.1);
        model.params[e.range].copy_from_slice(&v);
    }
    model
}

#[test]
fn the_book_net_matches_pytorch_names_outputs_and_gradients() {
    let r = reference();
    let net = &r["net"];
    let mut model = book_net();
    let names: Vec<String> = checkpoint::entries(&model).into_iter().map(|e| e.name).collect();
    let expected: Vec<String> = net["names"].as_array().unwrap().iter().map(|n| n.as_str().unwrap().into()).collect();
    assert_eq!(names, expected, "state_dict names in PyTorch's parameters() order");
    assert_eq!(model.num_params(), usize_of(net, "params"), "the book's parameter count");

    let x = Array2::from_shape_vec((3, 3072), wave(3 * 3072, 0.011, 0.2, 2.0)).unwrap();
    let targets: Vec<u8> = floats(&net["targets"]).iter().map(|&t| t as u8).collect();
    let logits = model.forward(x.view()).to_owned();
    assert_close(logits.as_slice().unwrap(), &floats(&net["logits"]), 1e-5, "logits");

    let res = model.loss_and_backward(x.view(), &targets);
    let loss = res.loss_sum / 3.0;
    let want = net["loss"].as_f64().unwrap();
    assert!((loss - want).abs() <= 1e-5, "mean cross-entropy: ours {loss}, PyTorch {want}");
    for e in checkpoint::entries(&model) {
        let g = &model.grads[e.range.clone()];
        assert_close(&g[..8.min(g.len())], &floats(&net["grad_head"][&e.name]), 1e-6, &e.name);
        let sum: f64 = g.iter().map(|&v| v as f64).sum();
        let abs: f64 = g.iter().map(|&v| (v as f64).abs()).sum();
        let (ws, wa) = (net["grad_sum"][&e.name].as_f64().unwrap(), net["grad_abs_sum"][&e.name].as_f64().unwrap());
        assert!((sum - ws).abs() <= 1e-6 + 1e-4 * wa, "{}: sum of the gradient {sum}, PyTorch {ws}", e.name);
        assert!((abs - wa).abs() <= 1e-4 * wa, "{}: sum of |gradient| {abs}, PyTorch {wa}", e.name);
    }

    let classes: Vec<usize> = targets.iter().map(|&t| t as usize).collect();
    let mut dx = Array2::zeros((3, 3072));
    model.input_gradient(x.view(), &classes, dx.view_mut());
    assert_close(&dx.as_slice().unwrap()[..16], &floats(&net["input_grad_head"]), 1e-6, "input gradient");
    let abs: f64 = dx.iter().map(|&v| (v as f64).abs()).sum();
    let want = net["input_grad_abs_sum"].as_f64().unwrap();
    assert!((abs - want).abs() <= 1e-4 * want, "sum of |input gradient| {abs}, PyTorch {want}");
}

/// Central differences of the mean loss, in f64 on f32 parameters, for a few entries of every
/// tensor of a small convolutional model (odd widths, ReLU and tanh) and of its input.
#[test]
fn convolutional_model_gradients_match_finite_differences() {
    for activation in [Activation::Tanh, Activation::Relu] {
        let config =
            ModelConfig { layers: vec![5 * 64, 7, 3], activation, loss: LossKind::CrossEntropy, conv: vec![3, 5] };
        let mut model = book_like(&config);
        let x = Array2::from_shape_vec((2, 3072), wave(2 * 3072, 0.013, 0.4, 1.5)).unwrap();
        let targets = [2u8, 0];
        model.loss_and_backward(x.view(), &targets);
        let grads = model.grads.clone();
        let loss = |m: &mut Mlp, x: &Array2<f32>| m.loss_and_backward(x.view(), &targets).loss_sum / 2.0;
        // Small enough that ReLU's kinks and the pooling's choices rarely fall inside [p - h, p + h].
        let h = 1e-3f32;
        for e in checkpoint::entries(&model) {
            for j in [0, e.range.len() / 2, e.range.len() - 1] {
                let i = e.range.start + j;
                let p0 = model.params[i];
                model.params[i] = p0 + h;
                let up = loss(&mut model, &x);
                model.params[i] = p0 - h;
                let down = loss(&mut model, &x);
                model.params[i] = p0;
                let numeric = (up - down) / (2.0 * h as f64);
                let err = (grads[i] as f64 - numeric).abs();
                assert!(
                    err <= 2e-3 + 2e-2 * numeric.abs(),
                    "{activation:?} {}[{j}]: {} vs {numeric}",
                    e.name,
                    grads[i]
                );
            }
        }
        let mut dx = Array2::zeros((2, 3072));
        model.input_gradient(x.view(), &[2, 0], dx.view_mut());
        // input_gradient is d sum_i log p[i, c_i] / dx = -2 d(mean loss)/dx.
        for idx in [(0, 0), (0, 1500), (1, 3071), (1, 33)] {
            let (mut xp, mut xm) = (x.clone(), x.clone());
            xp[idx] += h;
            xm[idx] -= h;
            let numeric = -2.0 * (loss(&mut model, &xp) - loss(&mut model, &xm)) / (2.0 * h as f64);
            let err = (dx[idx] as f64 - numeric).abs();
            assert!(err <= 2e-3 + 2e-2 * numeric.abs(), "{activation:?} input {idx:?}: {} vs {numeric}", dx[idx]);
        }
    }
}

fn book_like(config: &ModelConfig) -> Mlp {
    use rand::SeedableRng;
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
    Mlp::new(config, &mut rng).unwrap()
}

#[test]
fn the_conv_preset_prints_the_books_parameter_count() {
    // The book prints 18090 for Net, and per tensor [432, 16, 1152, 8, 16384, 32, 64, 2].
    let config = TrainConfig::preset("conv").unwrap().model;
    assert_eq!(config.parameter_summary(), "(18090, [432, 16, 1152, 8, 16384, 32, 64, 2])");
}

#[test]
fn convolutional_checkpoints_round_trip_and_refuse_other_shapes_by_name() {
    let model = book_net();
    let bytes = checkpoint::save(&model);
    let back = checkpoint::load(&bytes, None).unwrap();
    assert_eq!(back.config, model.config);
    assert_eq!(back.params, model.params);

    // A model with other channel widths is refused, naming the first tensor that differs.
    let mut wider = TrainConfig::preset("conv").unwrap().model;
    wider.conv = vec![32, 16];
    wider.layers[0] = 16 * 8 * 8;
    let err = checkpoint::load_exact(&bytes, &wider).unwrap_err().to_string();
    assert!(err.contains("conv1.weight") && err.contains("[32, 3, 3, 3]"), "{err}");
}

#[test]
fn invalid_convolutional_configurations_are_refused_with_the_reason() {
    let mut c = TrainConfig::preset("conv").unwrap().model;
    c.layers[0] = 500;
    let err = c.validate().unwrap_err().to_string();
    assert!(err.contains("flattened output of 512"), "{err}");
    c.layers[0] = 512;
    c.conv = vec![16, 8, 4, 4, 4, 4];
    assert!(c.validate().unwrap_err().to_string().contains("at most 5 convolution blocks"));
    c.conv = vec![0, 8];
    assert!(c.validate().unwrap_err().to_string().contains("channels 0"));
}

/// The panels `Im2col` packs, for any panel width (the wasm kernels' 8, AVX2's 16, AVX-512's 32,
/// and 4 and 12) and blocks that start and end inside output rows: exactly the stored matrix's
/// values (the definition of a packed panel in `matmul::PackedB`), zeros past the block.
#[test]
fn im2col_panels_are_the_stored_matrix_for_every_panel_width() {
    for (cin, side, stride) in [(3, 32, 1), (16, 16, 1), (5, 13, 2)] {
        let (n, conv) = (3, Conv2d::new(cin, 4, 3, stride, 1, (side, side), 0));
        let plane = side * side;
        let x = wave(n * cin * plane, 0.37, 0.2, 1.0);
        let (oh, ow) = conv.output();
        let positions = n * oh * ow;
        for planes in [Planes::nchw(cin, plane), Planes::cnhw(n, plane)] {
            let mut col = vec![0.0; conv.patch() * positions];
            conv.im2col(&x, planes, n, &mut col);
            let src = Im2col::new(&conv, &x, planes, n);
            for nr in [4, 8, 12, 16, 32] {
                for (pc, kc, jc, nc) in [
                    (0, conv.patch(), 0, positions),
                    (5, 7, 3, 45),
                    (1, 9, ow - 1, 2 * ow + 5),
                    (0, 2, positions - 9, 9),
                ] {
                    let mut got = vec![f32::NAN; nc.div_ceil(nr) * nr * kc];
                    src.pack(pc, kc, jc, nc, nr, &mut got);
                    for (i, &g) in got.iter().enumerate() {
                        let (q, kk, j) = (i / (nr * kc), i / nr % kc, i % nr);
                        let c = q * nr + j;
                        let want = if c < nc { col[(pc + kk) * positions + jc + c] } else { 0.0 };
                        assert_eq!(
                            g, want,
                            "{cin}x{side}, stride {stride}, {planes:?}, nr {nr}, block ({pc}, {kc}, {jc}, {nc}): value {i}"
                        );
                    }
                }
            }
        }
    }
}

/// The panels made from the images against the stored `col`, bit for bit, at the `conv` preset's
/// training sizes (a batch of 64: many `NC`-wide and `KC`-deep blocks, edge panels, strides 1 and
/// 2), on one thread and split between 2.
#[test]
fn implicit_im2col_equals_the_stored_matrix_at_training_sizes() {
    for (cin, side, cout, stride) in [(3, 32, 16, 1), (16, 16, 8, 1), (5, 13, 7, 2)] {
        let (n, conv) = (64, Conv2d::new(cin, cout, 3, stride, 1, (side, side), 0));
        let plane = side * side;
        let x = wave(n * cin * plane, 0.37, 0.2, 1.0);
        let params = wave(conv.num_params(), 1.1, 0.4, 0.3);
        let (oh, ow) = conv.output();
        let dy = wave(cout * n * oh * ow, 0.61, 0.8, 1.0);
        for planes in [Planes::nchw(cin, plane), Planes::cnhw(n, plane)] {
            let mut col = vec![0.0; conv.patch() * n * oh * ow];
            conv.im2col(&x, planes, n, &mut col);
            let mut want = vec![0.0; dy.len()];
            conv.forward_unbiased(&params, &col, &mut want);
            let mut want_grads = vec![0.0; params.len()];
            conv.backward(&params, &mut want_grads, &col, &dy, None);
            for threads in [1, 2] {
                let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
                let (got, got_grads) = pool.install(|| {
                    let mut got = vec![f32::NAN; dy.len()];
                    conv.forward_from(&params, &x, planes, n, &mut got);
                    let mut grads = vec![f32::NAN; params.len()];
                    conv.backward_from(&params, &mut grads, &x, planes, n, &dy, None);
                    (got, grads)
                });
                let what = format!("{cin}->{cout} on {side}x{side}, stride {stride}, {planes:?}, {threads} thread(s)");
                assert_eq!(got, want, "{what}: y");
                assert_eq!(got_grads, want_grads, "{what}: dW, db");
            }
        }
    }
}
