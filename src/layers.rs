//! Layers as explicit `forward` / `backward` pairs on batches (rows are samples).
//!
//! * `Linear`: `y = x W^T + b`, `x: [B, in]`, `W: [out, in]`, `b: [out]`, `y: [B, out]`.
//!   Backward: `dW = dy^T x`, `db = sum_rows(dy)`, `dx = dy W` (skipped for the first layer, whose
//!   input is the data). Initialisation as PyTorch's `nn.Linear`: `W` and `b` uniform in
//!   `+-1/sqrt(in)`.
//! * `Tanh`: `y = tanh(x)`, `dx = dy (1 - y^2)`.
//! * `ReLU`: `y = max(x, 0)`, `dx = dy [y > 0]`.
//! * `Conv2d` ([`conv`]) and `MaxPool2d` ([`pool`]), the convolutional network's layers, on
//!   flat buffers of planes; [`par`] splits their element-wise work over the rayon pool.
//! * `LogSoftmax` (over each row): `y = x - log(sum(exp(x)))`, `dx = dy - softmax(x) sum(dy)`.
//!
//! Parameters and gradients live in two flat buffers owned by the model (`model.rs`); a `Linear`
//! only knows its offset there, so the optimizer is a single loop over both buffers (plain SGD
//! skips the gradient buffer for weights: `GradSink::Sgd` applies it in the backward pass, with
//! the step of [`crate::update`], which the optimizer uses too).

pub mod conv;
pub mod par;
pub mod pool;

use crate::matmul::gemm;
use crate::update::SgdStep;
use ndarray::{ArrayView1, ArrayView2, ArrayViewMut1, ArrayViewMut2, Axis};
use rand::{Rng, RngExt};

/// One fully connected layer: a window into the model's flat parameter buffer, weight
/// (`out x in`, row-major as PyTorch stores it) then bias.
#[derive(Clone, Debug, PartialEq)]
pub struct Linear {
    pub in_features: usize,
    pub out_features: usize,
    /// Offset of the weight in the parameter buffer; the bias follows it.
    pub offset: usize,
}

impl Linear {
    pub fn new(in_features: usize, out_features: usize, offset: usize) -> Self {
        Linear { in_features, out_features, offset }
    }

    pub fn num_params(&self) -> usize {
        self.out_features * self.in_features + self.out_features
    }

    fn bias_offset(&self) -> usize {
        self.offset + self.out_features * self.in_features
    }

    pub fn weight<'a>(&self, params: &'a [f32]) -> ArrayView2<'a, f32> {
        let w = &params[self.offset..self.bias_offset()];
        ArrayView2::from_shape((self.out_features, self.in_features), w).expect("weight window")
    }

    pub fn weight_mut<'a>(&self, params: &'a mut [f32]) -> ArrayViewMut2<'a, f32> {
        let w = &mut params[self.offset..self.offset + self.out_features * self.in_features];
        ArrayViewMut2::from_shape((self.out_features, self.in_features), w).expect("weight window")
    }

    pub fn bias<'a>(&self, params: &'a [f32]) -> ArrayView1<'a, f32> {
        ArrayView1::from(&params[self.bias_offset()..self.offset + self.num_params()])
    }

    pub fn bias_mut<'a>(&self, params: &'a mut [f32]) -> ArrayViewMut1<'a, f32> {
        let (start, end) = (self.bias_offset(), self.offset + self.num_params());
        ArrayViewMut1::from(&mut params[start..end])
    }

    /// PyTorch's default: `kaiming_uniform_(a=sqrt(5))` for the weight, which is uniform in
    /// `+-1/sqrt(in)`, and the same bound for the bias.
    pub fn init(&self, params: &mut [f32], rng: &mut impl Rng) {
        let bound = 1.0 / (self.in_features as f32).sqrt();
        for p in &mut params[self.offset..self.offset + self.num_params()] {
            *p = rng.random_range(-bound..bound);
        }
    }

    /// `y = x W^T + b`.
    pub fn forward(&self, params: &[f32], x: ArrayView2<f32>, mut y: ArrayViewMut2<f32>) {
        let dim = y.dim();
        y.assign(&self.bias(params).broadcast(dim).expect("bias broadcast"));
        gemm(1.0, &x, &self.weight(params).t(), 1.0, &mut y);
    }

    /// Computes `dx = dy W` when asked for, then `dW = dy^T x` and `db = sum_rows(dy)`, which go
    /// where `sink` says: into the gradient buffer, or straight into the parameters as a plain
    /// SGD step (after `dx`, which needs the old `W`).
    pub fn backward(
        &self,
        params: &mut [f32],
        grads: &mut [f32],
        sink: GradSink,
        x: ArrayView2<f32>,
        dy: ArrayView2<f32>,
        dx: Option<ArrayViewMut2<f32>>,
    ) {
        if let Some(mut dx) = dx {
            gemm(1.0, &dy, &self.weight(params), 0.0, &mut dx);
        }
        let mut db = self.bias_mut(grads);
        db.fill(0.0);
        for row in dy.rows() {
            db += &row;
        }
        match sink {
            GradSink::Store => gemm(1.0, &dy.t(), &x, 0.0, &mut self.weight_mut(grads)),
            GradSink::Sgd(step) => {
                // W = (1 - lr wd) W - lr dy^T x, in the GEMM's write-back: the gradient is never
                // stored, which saves a write and two reads of W-sized memory per step. With
                // wd = 0 and a batch within one K block of the GEMM (at most 256 rows), this
                // rounds exactly as `W -= lr * dW` does; larger batches update once per block.
                let SgdStep { lr, weight_decay } = step;
                gemm(-lr, &dy.t(), &x, 1.0 - lr * weight_decay, &mut self.weight_mut(params));
                let (start, end) = (self.bias_offset(), self.offset + self.num_params());
                for (b, &g) in params[start..end].iter_mut().zip(&grads[start..end]) {
                    step.apply(b, g);
                }
            }
        }
    }
}

/// Where [`Linear::backward`] puts the weight and bias gradients.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum GradSink {
    /// Into the gradient buffer, for the optimizer to apply.
    Store,
    /// Applied at once as PyTorch's SGD without momentum: `p -= lr (g + wd p)`.
    Sgd(SgdStep),
}

/// Element-wise activations, applied in place on the layer's output buffer.
pub mod activation {
    use ndarray::{ArrayView2, ArrayViewMut2, Zip};

    /// `y = tanh(y)` in place.
    pub fn tanh_forward(mut y: ArrayViewMut2<f32>) {
        match y.as_slice_mut() {
            Some(s) => s.iter_mut().for_each(|v| *v = super::tanh(*v)),
            None => y.mapv_inplace(super::tanh),
        }
    }

    /// `d = d * (1 - y^2)` in place, where `y` is the forward output.
    pub fn tanh_backward(y: ArrayView2<f32>, d: ArrayViewMut2<f32>) {
        Zip::from(d).and(&y).for_each(|d, &y| *d *= 1.0 - y * y);
    }

    /// The activation in place on a flat buffer, in chunks on the rayon pool (the convolutions'
    /// outputs: a million values per batch).
    pub fn forward_flat(act: crate::config::Activation, y: &mut [f32]) {
        super::par::par_chunks_mut(y, super::par::CHUNK, |_, c| forward_serial(act, c));
    }

    /// The activation's backward pass on flat buffers: `d` times the derivative at the output `y`.
    pub fn backward_flat(act: crate::config::Activation, y: &[f32], d: &mut [f32]) {
        super::par::par_zip_chunks(d, super::par::CHUNK, y, super::par::CHUNK, |_, d, y| backward_serial(act, y, d));
    }

    /// [`forward_flat`] on the calling thread.
    pub fn forward_serial(act: crate::config::Activation, y: &mut [f32]) {
        let y = ArrayViewMut2::from_shape((1, y.len()), y).expect("one row");
        match act {
            crate::config::Activation::Tanh => tanh_forward(y),
            crate::config::Activation::Relu => relu_forward(y),
        }
    }

    /// [`backward_flat`] on the calling thread.
    pub fn backward_serial(act: crate::config::Activation, y: &[f32], d: &mut [f32]) {
        let y = ArrayView2::from_shape((1, y.len()), y).expect("one row");
        let d = ArrayViewMut2::from_shape((1, d.len()), d).expect("one row");
        match act {
            crate::config::Activation::Tanh => tanh_backward(y, d),
            crate::config::Activation::Relu => relu_backward(y, d),
        }
    }

    /// `y = max(y, 0)` in place.
    pub fn relu_forward(mut y: ArrayViewMut2<f32>) {
        y.mapv_inplace(|v| v.max(0.0));
    }

    /// `d = d * [y > 0]` in place, where `y` is the forward output.
    pub fn relu_backward(y: ArrayView2<f32>, d: ArrayViewMut2<f32>) {
        Zip::from(d).and(&y).for_each(|d, &y| {
            if y <= 0.0 {
                *d = 0.0
            }
        });
    }
}

/// `tanh(x)` to within 2 ulp, branch-free so that the compiler vectorises the loops that call it
/// (the library `tanhf` is a call per element, and in wasm a software routine: it cost more than
/// a tenth of an epoch there).
///
/// `tanh(x) = -m / (2 + m)` with `m = expm1(-2|x|)`, and the sign of `x`. `expm1(y)` splits
/// `y = k ln2 + r` with `|r| <= ln2/2`, so `expm1(y) = 2^k (expm1(r) + 1) - 1`, and `expm1(r)` is
/// its Taylor series to `r^7` (truncation below 2^-24 relative on that interval). Computing
/// `expm1` rather than `exp` keeps small `x` exact to rounding: `tanh(x) ~ x` there.
#[inline(always)]
pub fn tanh(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    // ln 2 in two parts (Cody and Waite), so that k ln2 is exact in the first.
    const LN2_HI: f32 = 0.693_145_75;
    const LN2_LO: f32 = 1.428_606_8e-6;
    // Adding and subtracting 1.5 * 2^23 rounds to the nearest integer without a library call.
    const ROUND: f32 = 12_582_912.0;
    // Beyond 9, tanh is 1 in f32 (1 - tanh(9) < 2^-25).
    let a = x.abs().min(9.0);
    let y = -2.0 * a;
    let k = (y * LOG2E + ROUND) - ROUND;
    let r = (y - k * LN2_HI) - k * LN2_LO;
    let p = r
        * (1.0
            + r * (1.0 / 2.0
                + r * (1.0 / 6.0 + r * (1.0 / 24.0 + r * (1.0 / 120.0 + r * (1.0 / 720.0 + r * (1.0 / 5040.0)))))));
    // 2^k for k in [-26, 0], built from its exponent bits.
    let two_k = f32::from_bits(((k as i32 + 127) as u32) << 23);
    let m = two_k * p + (two_k - 1.0);
    let t = (-m / (2.0 + m)).copysign(x);
    // `min` above turned NaN into 9: give it back (a select, which still vectorises).
    if x.is_nan() { x } else { t }
}

/// `y = x - log(sum(exp(x)))` per row, in place, computed stably (shifted by the row maximum).
pub fn log_softmax_forward(mut y: ArrayViewMut2<f32>) {
    for mut row in y.axis_iter_mut(Axis(0)) {
        let max = row.fold(f32::NEG_INFINITY, |m, &v| m.max(v));
        let lse = max + row.fold(0.0f32, |s, &v| s + (v - max).exp()).ln();
        row.mapv_inplace(|v| v - lse);
    }
}

/// `d = d - softmax(x) sum(d)` per row, in place, where `y` is the forward output
/// (`softmax(x) = exp(y)`).
pub fn log_softmax_backward(y: ArrayView2<f32>, mut d: ArrayViewMut2<f32>) {
    for (yr, mut dr) in y.axis_iter(Axis(0)).zip(d.axis_iter_mut(Axis(0))) {
        let sum = dr.sum();
        ndarray::Zip::from(&mut dr).and(&yr).for_each(|d, &y| *d -= y.exp() * sum);
    }
}

/// Softmax of one vector: `exp(x_i - max) / sum_j exp(x_j - max)`.
pub fn softmax(x: &[f32]) -> Vec<f32> {
    let max = x.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v));
    let e: Vec<f32> = x.iter().map(|&v| (v - max).exp()).collect();
    let s: f32 = e.iter().sum();
    e.iter().map(|v| v / s).collect()
}
