//! The convolutional model's products, timed as training runs them: GFLOP/s (`2 m n k / seconds`)
//! of each product of `conv` (the book's `Net`) on a batch of 64 images, split into the tasks of
//! [`crate::model::features::TASK_IMAGES`] images that training hands the pool, each task's
//! product on its own thread, with B made from the images panel by panel as in training
//! ([`crate::layers::conv::Im2col`]).
//!
//! | product | `m x k` by `k x n` (whole batch) |
//! |---|---|
//! | `conv1` forward `W col` | 16x27 by 27x65536 |
//! | `conv1` weight grad `dy col^T` | 16x65536 by 65536x27 |
//! | `conv2` forward | 8x144 by 144x16384 |
//! | `conv2` weight grad | 8x16384 by 16384x144 |
//! | `conv2` input grad, `conv(dy, W')` | 16x72 by 72x16384 |
//!
//! (`conv1`'s input gradient is not computed in training: its input is the data.)

use crate::clock::Stopwatch;
use crate::config::{Activation, IMAGE_CHANNELS, IMAGE_SIDE};
use crate::layers::conv::Planes;
use crate::layers::par::{Disjoint, par_tasks};
use crate::model::features::{Features, TASK_IMAGES};
use ndarray::{ArrayView2, ArrayViewMut2, ShapeBuilder};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

/// Images per timed batch: training's.
pub const CONV_BATCH: usize = 64;

/// One product's figure.
#[derive(Clone, Debug, Serialize)]
pub struct ConvGemm {
    pub shape: &'static str,
    pub m: usize,
    pub k: usize,
    pub n: usize,
    pub gflops: f64,
}

/// The products of `conv`'s two blocks on the current pool, each repeated for at least `seconds`
/// after a warm-up.
pub fn conv_gemm_gflops(seconds: f64) -> Vec<ConvGemm> {
    let f = Features::new(&[16, 8], Activation::Tanh, 0);
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let mut params = vec![0.0f32; f.num_params()];
    params.iter_mut().for_each(|p| *p = rng.random_range(-0.3f32..0.3));
    let b = CONV_BATCH;
    let mut rows = Vec::new();
    let mut input = IMAGE_CHANNELS;
    let mut side = IMAGE_SIDE;
    for (i, block) in f.blocks.iter().enumerate() {
        let conv = &block.conv;
        let (co, k) = (conv.out_channels, conv.patch());
        let plane = side * side;
        let (hw, n) = (plane, b * plane);
        let planes = if i == 0 { Planes::nchw(input, plane) } else { Planes::cnhw(b, plane) };
        let x: Vec<f32> = (0..input * n).map(|_| rng.random_range(-1.0f32..1.0)).collect();
        let dy: Vec<f32> = (0..co * n).map(|_| rng.random_range(-1.0f32..1.0)).collect();
        let mut y = vec![0.0f32; co * n];
        let mut dw = vec![0.0f32; n.div_ceil(TASK_IMAGES * hw) * co * k];
        let tasks = b.div_ceil(TASK_IMAGES);
        let names = [
            ["conv1 forward W col", "conv1 weight grad dy col^T"],
            ["conv2 forward W col", "conv2 weight grad dy col^T"],
        ];
        let name = |j: usize| names[i.min(1)][j];
        // Forward: each task's images into its columns of y.
        let yd = Disjoint::new(&mut y);
        let fwd = || {
            par_tasks(tasks, |t| {
                let b0 = t * TASK_IMAGES;
                // SAFETY: each task writes its own images' columns of `y`.
                let mut yt = unsafe {
                    ArrayViewMut2::from_shape_ptr((co, TASK_IMAGES * hw).strides((n, 1)), yd.ptr().add(b0 * hw))
                };
                conv.forward_into(&params, &x[b0 * planes.image..], planes, TASK_IMAGES, &mut yt);
            })
        };
        rows.push(ConvGemm { shape: name(0), m: co, k, n, gflops: gflops(co, k, n, seconds, fwd) });
        // Weight gradient: each task's own [C_out, K] share.
        let dwd = Disjoint::new(&mut dw);
        let wgrad = || {
            par_tasks(tasks, |t| {
                let b0 = t * TASK_IMAGES;
                // SAFETY: each task reads its own images' columns of `dy` and writes its own share.
                let dyt = unsafe {
                    ArrayView2::from_shape_ptr((co, TASK_IMAGES * hw).strides((n, 1)), dy.as_ptr().add(b0 * hw))
                };
                let mut share =
                    ArrayViewMut2::from_shape((co, k), unsafe { dwd.range(t * co * k, co * k) }).expect("share");
                conv.weight_grad_into(&x[b0 * planes.image..], planes, TASK_IMAGES, &dyt, &mut share);
            })
        };
        rows.push(ConvGemm { shape: name(1), m: co, k: n, n: k, gflops: gflops(co, n, k, seconds, wgrad) });
        if let Some(tc) = conv.transposed().filter(|_| i > 0) {
            // The input gradient as training computes it: `conv(dy, W')` per task, `dy` task-major.
            let mut wf = vec![0.0f32; tc.num_weights()];
            conv.flipped_weight(&params, &mut wf);
            let mut dx = vec![0.0f32; input * n];
            let dxd = Disjoint::new(&mut dx);
            let igrad = || {
                par_tasks(tasks, |t| {
                    let b0 = t * TASK_IMAGES;
                    let dyt = &dy[co * b0 * hw..][..co * TASK_IMAGES * hw];
                    // SAFETY: each task writes its own images' columns of `dx`.
                    let mut dxt = unsafe {
                        ArrayViewMut2::from_shape_ptr(
                            (input, TASK_IMAGES * plane).strides((n, 1)),
                            dxd.ptr().add(b0 * plane),
                        )
                    };
                    tc.forward_into(&wf, dyt, Planes::cnhw(TASK_IMAGES, hw), TASK_IMAGES, &mut dxt);
                })
            };
            rows.push(ConvGemm {
                shape: "conv2 input grad conv(dy, W')",
                m: input,
                k: tc.patch(),
                n,
                gflops: gflops(input, tc.patch(), n, seconds, igrad),
            });
        }
        input = co;
        side /= 2;
    }
    rows
}

/// GFLOP/s of `run`, an `m x k` by `k x n` product, repeated for at least `seconds`.
fn gflops(m: usize, k: usize, n: usize, seconds: f64, run: impl Fn()) -> f64 {
    for _ in 0..3 {
        run();
    }
    let clock = Stopwatch::start();
    let mut reps = 0;
    while reps < 5 || clock.seconds() < seconds {
        run();
        reps += 1;
    }
    2.0 * (m * k * n) as f64 * reps as f64 / clock.seconds() / 1e9
}
