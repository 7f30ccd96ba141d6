//! Finite-difference checks of every backward pass: each analytic gradient must match the
//! central difference `(f(p + h) - f(p - h)) / 2h` of the scalar `f = sum(r * output)` (random `r`)
//! or of the loss itself.
#![cfg(not(target_arch = "wasm32"))] // native; tests/wasm.rs holds the tests that run in the browser

use ndarray::{Array2, s};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use skywatch::config::{Activation, LossKind, ModelConfig};
use skywatch::layers::{GradSink, Linear, activation, log_softmax_backward, log_softmax_forward};
use skywatch::loss::loss_and_grad;
use skywatch::model::Mlp;

fn rng() -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(42)
}

fn random(r: usize, c: usize, rng: &mut ChaCha8Rng, scale: f32) -> Array2<f32> {
    Array2::from_shape_fn((r, c), |_| rng.random_range(-scale..scale))
}

fn close(analytic: f32, numeric: f64, what: &str) {
    let err = (analytic as f64 - numeric).abs();
    assert!(err <= 2e-3 + 2e-2 * numeric.abs(), "{what}: analytic {analytic}, finite difference {numeric}");
}

fn dot(a: &Array2<f32>, b: &Array2<f32>) -> f64 {
    a.iter().zip(b).map(|(&x, &y)| x as f64 * y as f64).sum()
}

#[test]
fn linear_weight_bias_and_input_gradients() {
    let mut rng = rng();
    let lin = Linear::new(5, 4, 0);
    let mut params = vec![0.0f32; lin.num_params()];
    lin.init(&mut params, &mut rng);
    let x = random(3, 5, &mut rng, 1.0);
    let r = random(3, 4, &mut rng, 1.0);
    let f = |params: &[f32], x: &Array2<f32>| {
        let mut y = Array2::zeros((3, 4));
        lin.forward(params, x.view(), y.view_mut());
        dot(&y, &r)
    };
    let mut grads = vec![0.0f32; params.len()];
    let mut dx = Array2::zeros((3, 5));
    lin.backward(&mut params.clone(), &mut grads, GradSink::Store, x.view(), r.view(), Some(dx.view_mut()));
    let h = 1e-2f32;
    for i in 0..params.len() {
        let (mut p, mut m) = (params.clone(), params.clone());
        p[i] += h;
        m[i] -= h;
        close(grads[i], (f(&p, &x) - f(&m, &x)) / (2.0 * h as f64), &format!("param {i}"));
    }
    for idx in [(0, 0), (1, 3), (2, 4)] {
        let (mut xp, mut xm) = (x.clone(), x.clone());
        xp[idx] += h;
        xm[idx] -= h;
        close(dx[idx], (f(&params, &xp) - f(&params, &xm)) / (2.0 * h as f64), &format!("x{idx:?}"));
    }
}

/// Checks an in-place element-wise or row-wise layer given its forward and backward.
fn check_layer(
    name: &str,
    x: Array2<f32>,
    forward: impl Fn(&mut Array2<f32>),
    backward: impl Fn(&Array2<f32>, &mut Array2<f32>),
) {
    let mut rng = rng();
    let r = random(x.nrows(), x.ncols(), &mut rng, 1.0);
    let f = |x: &Array2<f32>| {
        let mut y = x.clone();
        forward(&mut y);
        dot(&y, &r)
    };
    let mut y = x.clone();
    forward(&mut y);
    let mut d = r.clone();
    backward(&y, &mut d);
    let h = 1e-2f32;
    for (idx, _) in x.indexed_iter() {
        let (mut xp, mut xm) = (x.clone(), x.clone());
        xp[idx] += h;
        xm[idx] -= h;
        close(d[idx], (f(&xp) - f(&xm)) / (2.0 * h as f64), &format!("{name} {idx:?}"));
    }
}

#[test]
fn tanh_relu_and_log_softmax_gradients() {
    let mut rng = rng();
    let x = random(3, 6, &mut rng, 2.0);
    check_layer(
        "tanh",
        x.clone(),
        |y| activation::tanh_forward(y.view_mut()),
        |y, d| activation::tanh_backward(y.view(), d.view_mut()),
    );
    // Keep ReLU inputs away from the kink at 0, where the derivative is undefined.
    let xr = x.mapv(|v| if v.abs() < 0.1 { v + 0.3 } else { v });
    check_layer(
        "relu",
        xr,
        |y| activation::relu_forward(y.view_mut()),
        |y, d| activation::relu_backward(y.view(), d.view_mut()),
    );
    check_layer(
        "log_softmax",
        x,
        |y| log_softmax_forward(y.view_mut()),
        |y, d| log_softmax_backward(y.view(), d.view_mut()),
    );
}

#[test]
fn nll_and_cross_entropy_gradients() {
    let mut rng = rng();
    let targets = [0u8, 2, 1, 2];
    for kind in [LossKind::Nll, LossKind::CrossEntropy] {
        let x = random(4, 3, &mut rng, 2.0);
        let mean = |x: &Array2<f32>| loss_and_grad(kind, x.view(), &targets, None).loss_sum / 4.0;
        let mut g = Array2::zeros((4, 3));
        loss_and_grad(kind, x.view(), &targets, Some(g.view_mut()));
        let h = 1e-2f32;
        for (idx, _) in x.indexed_iter() {
            let (mut xp, mut xm) = (x.clone(), x.clone());
            xp[idx] += h;
            xm[idx] -= h;
            close(g[idx], (mean(&xp) - mean(&xm)) / (2.0 * h as f64), &format!("{kind:?} {idx:?}"));
        }
    }
}

#[test]
fn whole_model_gradients_for_every_activation_and_loss() {
    let mut rng = rng();
    for activation in [Activation::Tanh, Activation::Relu] {
        for loss in [LossKind::Nll, LossKind::CrossEntropy] {
            let config = ModelConfig::mlp(vec![7, 6, 5, 3], activation, loss);
            let mut model = Mlp::new(&config, &mut rng).unwrap();
            let x = random(4, 7, &mut rng, 1.0);
            let t = [0u8, 1, 2, 1];
            model.loss_and_backward(x.view(), &t);
            let grads = model.grads.clone();
            let mean_loss = |params: &[f32]| {
                let mut m = model.clone();
                m.params.copy_from_slice(params);
                let out = m.forward(x.view()).to_owned();
                loss_and_grad(loss, out.view(), &t, None).loss_sum / 4.0
            };
            let params = model.params.clone();
            let h = 1e-2f32;
            for i in (0..params.len()).step_by(7) {
                let (mut p, mut m) = (params.clone(), params.clone());
                p[i] += h;
                m[i] -= h;
                let numeric = (mean_loss(&p) - mean_loss(&m)) / (2.0 * h as f64);
                close(grads[i], numeric, &format!("{activation:?}/{loss:?} param {i}"));
            }
        }
    }
}

#[test]
fn first_layer_gradients_do_not_depend_on_batch_rows_outside_the_batch() {
    // The workspace is sized for the largest batch seen; a smaller batch must only use its rows.
    let mut rng = rng();
    let config = ModelConfig::mlp(vec![6, 4, 2], Activation::Tanh, LossKind::Nll);
    let mut model = Mlp::new(&config, &mut rng).unwrap();
    let big = random(10, 6, &mut rng, 1.0);
    model.loss_and_backward(big.view(), &[0, 1, 0, 1, 0, 1, 0, 1, 0, 1]);
    model.loss_and_backward(big.slice(s![..3, ..]), &[0, 1, 1]);
    let after_big = model.grads.clone();
    let mut fresh = Mlp::new(&config, &mut ChaCha8Rng::seed_from_u64(0)).unwrap();
    fresh.params.copy_from_slice(&model.params);
    fresh.loss_and_backward(big.slice(s![..3, ..]), &[0, 1, 1]);
    assert_eq!(after_big, fresh.grads);
}

#[test]
fn fast_tanh_is_within_two_ulp_of_the_exact_value() {
    // Reference: f64 tanh rounded to f32. Dense sweep of [-12, 12] plus tiny values.
    let mut x = -12.0f32;
    let check = |x: f32| {
        let got = skywatch::layers::tanh(x);
        let want = (x as f64).tanh() as f32;
        let ulps = (got.to_bits() as i64 - want.to_bits() as i64).unsigned_abs() as u32;
        assert!(ulps <= 2, "tanh({x}) = {got}, exact {want} ({ulps} ulp)");
    };
    while x <= 12.0 {
        check(x);
        x += 1.0 / 4096.0;
    }
    for e in -40..0 {
        check(2f32.powi(e));
        check(-(2f32.powi(e)) * 1.7);
    }
    check(0.0);
    assert!(skywatch::layers::tanh(f32::INFINITY) == 1.0 && skywatch::layers::tanh(-1e30) == -1.0);
    assert!(skywatch::layers::tanh(f32::NAN).is_nan(), "NaN must stay NaN, so that divergence shows");
}
