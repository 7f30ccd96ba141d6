//! The optimizers follow PyTorch's update rules. Expected values: torch 2.15,
//! `tests/reference/optim_reference.py` (three steps, gradients `g_t = [0.1 t, -0.2, 0.3 - 0.05 t]`).
#![cfg(not(target_arch = "wasm32"))]
// native; tests/wasm.rs holds the tests that run in the browser

// The expected values are PyTorch's float32 results printed with 9 significant digits.
#![allow(clippy::excessive_precision)]

use skywatch::config::{OptimizerConfig, OptimizerKind};
use skywatch::optim::Optimizer;

fn run(config: OptimizerConfig) -> Vec<f32> {
    let mut p = vec![0.5f32, -1.5, 2.0];
    let mut opt = Optimizer::new(config, 3);
    for t in 1..=3 {
        let t = t as f32;
        opt.step(&mut p, &[0.1 * t, -0.2, 0.3 - 0.05 * t]);
    }
    p
}

fn assert_close(got: &[f32], want: [f32; 3], name: &str) {
    for (g, w) in got.iter().zip(want) {
        assert!((g - w).abs() <= 2e-6 * (1.0 + w.abs()), "{name}: got {got:?}, PyTorch {want:?}");
    }
}

fn sgd(lr: f32) -> OptimizerConfig {
    OptimizerConfig { kind: OptimizerKind::Sgd, lr, ..Default::default() }
}

fn adam(lr: f32) -> OptimizerConfig {
    OptimizerConfig { kind: OptimizerKind::Adam, lr, ..Default::default() }
}

#[test]
fn sgd_matches_pytorch() {
    assert_close(&run(sgd(0.1)), [0.439999998, -1.44000006, 1.94000006], "sgd");
    assert_close(
        &run(OptimizerConfig { momentum: 0.9, ..sgd(0.1) }),
        [0.404899985, -1.38779998, 1.87925005],
        "momentum",
    );
    let nesterov = OptimizerConfig { momentum: 0.9, nesterov: true, weight_decay: 0.01, ..sgd(0.1) };
    assert_close(&run(nesterov), [0.350567549, -1.32724535, 1.81558418], "nesterov + weight decay");
}

#[test]
fn adam_matches_pytorch() {
    assert_close(&run(adam(0.01)), [0.470768183, -1.47000003, 1.97049093], "adam");
    let wd = OptimizerConfig { beta1: 0.8, beta2: 0.9, eps: 1e-6, weight_decay: 0.1, ..adam(0.01) };
    assert_close(&run(wd), [0.470323592, -1.47000313, 1.97020733], "adam + weight decay");
}

/// The lecture's SGD is applied inside the backward pass (no gradient buffer); it must give the
/// weights the optimizer loop gives: bit for bit without weight decay, to rounding with it.
#[test]
fn fused_sgd_equals_the_optimizer_loop() {
    use ndarray::Array2;
    use rand::{RngExt, SeedableRng};
    use rand_chacha::ChaCha8Rng;
    use skywatch::config::{Activation, LossKind, ModelConfig};
    use skywatch::model::Mlp;

    let mut rng = ChaCha8Rng::seed_from_u64(4);
    let config = ModelConfig::mlp(vec![300, 40, 20, 3], Activation::Tanh, LossKind::CrossEntropy);
    let start = Mlp::new(&config, &mut rng).unwrap();
    let batches: Vec<(Array2<f32>, Vec<u8>)> = (0..5)
        .map(|_| {
            let x = Array2::from_shape_fn((64, 300), |_| rng.random_range(-1.0f32..1.0));
            (x, (0..64).map(|i| (i % 3) as u8).collect())
        })
        .collect();
    for weight_decay in [0.0, 0.01] {
        let sgd = OptimizerConfig { weight_decay, ..sgd(0.05) };
        let mut fused = start.clone();
        let mut opt = Optimizer::new(sgd.clone(), fused.num_params());
        let mut separate = start.clone();
        let mut opt2 = Optimizer::new(sgd, separate.num_params());
        for (x, t) in &batches {
            fused.train_batch(x.view(), t, &mut opt);
            separate.loss_and_backward(x.view(), t);
            opt2.step(&mut separate.params, &separate.grads);
        }
        assert_eq!(opt.step, 5);
        if weight_decay == 0.0 {
            assert!(fused.params == separate.params, "fused SGD differs from the optimizer loop");
        } else {
            let worst = fused.params.iter().zip(&separate.params).map(|(a, b)| (a - b).abs()).fold(0.0, f32::max);
            assert!(worst < 1e-6, "fused SGD with weight decay differs by {worst}");
        }
    }
}
