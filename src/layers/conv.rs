//! `Conv2d`, PyTorch's `nn.Conv2d` (groups 1, dilation 1, zero padding), as im2col and one GEMM.
//!
//! Shapes, for a batch of `B` images of `C_in` planes `H x W` and `C_out` filters `k x k`:
//!
//! * weight `W: [C_out, C_in, k, k]` (PyTorch's layout), read as the matrix `[C_out, K]` with
//!   `K = C_in k k`; bias `b: [C_out]`;
//! * output size `H' = (H + 2 p - k) / s + 1` (floor), likewise `W'`; `N = B H' W'` positions;
//! * `col: [K, N]`, row `(c, i, j)` holding, for every output position `(n, y, x)`, the input
//!   `x[n, c, y s + i - p, x s + j - p]` (zero outside the image): im2col;
//! * forward `Y = W col + b`, `Y: [C_out, N]`, so the output is laid out channel-major over the
//!   whole batch (`[C_out, B, H', W']`, "CNHW"): each `(channel, image)` plane is contiguous, which
//!   is what pooling and the next im2col read;
//! * backward `db = sum_n dY[:, n]`, `dW = dY col^T` (`[C_out, N] x [N, K]`), and
//!   `dcol = W^T dY` (`[K, C_out] x [C_out, N]`), which col2im sums back onto the input:
//!   `dx[n, c, y, x] = sum over (i, j, y', x') with y' s + i - p = y, x' s + j - p = x`.
//!
//! The three products are the crate's GEMM ([`crate::matmul::gemm`]), so they use the SIMD
//! micro-kernels and the rayon pool; im2col and col2im split by rows and channels on the pool too.
//! Every sum runs in a fixed order (the GEMM's, or `i, j` ascending in col2im), so the result does
//! not depend on the number of threads.
//!
//! Initialisation as PyTorch's `nn.Conv2d`: `kaiming_uniform_(a=sqrt(5))` for the weight, which is
//! uniform in `+-1/sqrt(K)`, and the same bound for the bias (`K` is the fan-in `C_in k k`).

use super::par::{par_chunks_mut, par_zip_chunks};
use crate::matmul::gemm;
use ndarray::{ArrayView2, ArrayViewMut2};
use rand::{Rng, RngExt};

/// Where the `(channel, image)` planes of a batch of `H x W` planes sit in a flat buffer: plane
/// `(c, n)` starts at `c * channel + n * image`. The data's rows are `[B, C, H, W]` ("NCHW"); the
/// convolutions' outputs are `[C, B, H, W]` ("CNHW").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Planes {
    pub channel: usize,
    pub image: usize,
}

impl Planes {
    /// `[B, C, H, W]`: images one after the other (the data's rows).
    pub fn nchw(channels: usize, plane: usize) -> Planes {
        Planes { channel: plane, image: channels * plane }
    }

    /// `[C, B, H, W]`: channels one after the other, each over the whole batch.
    pub fn cnhw(batch: usize, plane: usize) -> Planes {
        Planes { channel: batch * plane, image: plane }
    }
}

/// One convolution: its geometry and a window into the model's flat parameter buffer (weight
/// `[C_out, C_in, k, k]` then bias `[C_out]`, PyTorch's `parameters()` order).
#[derive(Clone, Debug, PartialEq)]
pub struct Conv2d {
    pub in_channels: usize,
    pub out_channels: usize,
    pub kernel: usize,
    pub stride: usize,
    pub padding: usize,
    /// Input plane size `(H, W)`.
    pub input: (usize, usize),
    /// Offset of the weight in the parameter buffer; the bias follows it.
    pub offset: usize,
}

impl Conv2d {
    pub fn new(
        in_channels: usize,
        out_channels: usize,
        kernel: usize,
        stride: usize,
        padding: usize,
        input: (usize, usize),
        offset: usize,
    ) -> Conv2d {
        assert!(kernel > 0 && stride > 0, "conv kernel and stride must be positive");
        assert!(input.0 + 2 * padding >= kernel && input.1 + 2 * padding >= kernel, "kernel larger than its input");
        Conv2d { in_channels, out_channels, kernel, stride, padding, input, offset }
    }

    /// Output plane size `(H', W')`.
    pub fn output(&self) -> (usize, usize) {
        let o = |n: usize| (n + 2 * self.padding - self.kernel) / self.stride + 1;
        (o(self.input.0), o(self.input.1))
    }

    /// `K = C_in k k`: the length of one patch, the fan-in.
    pub fn patch(&self) -> usize {
        self.in_channels * self.kernel * self.kernel
    }

    pub fn num_weights(&self) -> usize {
        self.out_channels * self.patch()
    }

    pub fn num_params(&self) -> usize {
        self.num_weights() + self.out_channels
    }

    /// PyTorch's shape of the weight, `[C_out, C_in, k, k]`.
    pub fn weight_shape(&self) -> Vec<usize> {
        vec![self.out_channels, self.in_channels, self.kernel, self.kernel]
    }

    pub fn weight<'a>(&self, params: &'a [f32]) -> ArrayView2<'a, f32> {
        let w = &params[self.offset..self.offset + self.num_weights()];
        ArrayView2::from_shape((self.out_channels, self.patch()), w).expect("weight window")
    }

    pub fn weight_mut<'a>(&self, params: &'a mut [f32]) -> ArrayViewMut2<'a, f32> {
        let w = &mut params[self.offset..self.offset + self.num_weights()];
        ArrayViewMut2::from_shape((self.out_channels, self.patch()), w).expect("weight window")
    }

    pub fn bias<'a>(&self, params: &'a [f32]) -> &'a [f32] {
        &params[self.offset + self.num_weights()..self.offset + self.num_params()]
    }

    pub fn bias_mut<'a>(&self, params: &'a mut [f32]) -> &'a mut [f32] {
        &mut params[self.offset + self.num_weights()..self.offset + self.num_params()]
    }

    /// PyTorch's default initialisation: weight and bias uniform in `+-1/sqrt(K)`.
    pub fn init(&self, params: &mut [f32], rng: &mut impl Rng) {
        let bound = 1.0 / (self.patch() as f32).sqrt();
        for p in &mut params[self.offset..self.offset + self.num_params()] {
            *p = rng.random_range(-bound..bound);
        }
    }

    /// im2col: fills `col: [K, B H' W']` from the `batch` images of `x`, laid out as `planes` says.
    pub fn im2col(&self, x: &[f32], planes: Planes, batch: usize, col: &mut [f32]) {
        let (oh, ow) = self.output();
        let n = batch * oh * ow;
        assert_eq!(col.len(), self.patch() * n, "im2col buffer");
        let (h, w) = self.input;
        let (k, s, p) = (self.kernel, self.stride, self.padding);
        par_chunks_mut(col, n, |row, out| {
            let (c, i, j) = (row / (k * k), row / k % k, row % k);
            for b in 0..batch {
                let plane = &x[c * planes.channel + b * planes.image..][..h * w];
                for y in 0..oh {
                    let dst = &mut out[(b * oh + y) * ow..][..ow];
                    let iy = (y * s + i) as isize - p as isize;
                    if iy < 0 || iy >= h as isize {
                        dst.fill(0.0);
                        continue;
                    }
                    let src = &plane[iy as usize * w..][..w];
                    if s == 1 {
                        // Output columns whose input column `x + j - p` is inside the image: one
                        // copy, zeros either side.
                        let lo = p.saturating_sub(j).min(ow);
                        let hi = (w + p).saturating_sub(j).clamp(lo, ow);
                        dst[..lo].fill(0.0);
                        dst[lo..hi].copy_from_slice(&src[lo + j - p..hi + j - p]);
                        dst[hi..].fill(0.0);
                        continue;
                    }
                    for (x, d) in dst.iter_mut().enumerate() {
                        let ix = (x * s + j) as isize - p as isize;
                        *d = if ix >= 0 && ix < w as isize { src[ix as usize] } else { 0.0 };
                    }
                }
            }
        });
    }

    /// `y = W col + b`: `col: [K, N]`, `y: [C_out, N]`.
    pub fn forward(&self, params: &[f32], col: &[f32], y: &mut [f32]) {
        let n = col.len() / self.patch();
        let bias = self.bias(params);
        self.forward_unbiased(params, col, y);
        par_chunks_mut(y, n, |o, row| row.iter_mut().for_each(|v| *v += bias[o]));
    }

    /// `y = W col`, the bias left out, for a caller that adds it later: a max pooling commutes
    /// with adding a per-channel constant, so the convolutional blocks add it to the pooled
    /// output, a quarter of the values.
    pub fn forward_unbiased(&self, params: &[f32], col: &[f32], y: &mut [f32]) {
        let n = col.len() / self.patch();
        assert_eq!(y.len(), self.out_channels * n, "conv output buffer");
        let col = ArrayView2::from_shape((self.patch(), n), col).expect("col shape");
        let mut y = ArrayViewMut2::from_shape((self.out_channels, n), y).expect("output shape");
        gemm(1.0, &self.weight(params), &col, 0.0, &mut y);
    }

    /// From `dy: [C_out, N]` and the forward pass's `col: [K, N]`: writes `dW = dy col^T` and
    /// `db = sum_n dy` into `grads`, and, when asked for, `dcol = W^T dy` (`[K, N]`, for
    /// [`Conv2d::col2im`]).
    pub fn backward(&self, params: &[f32], grads: &mut [f32], col: &[f32], dy: &[f32], dcol: Option<&mut [f32]>) {
        let n = col.len() / self.patch();
        assert_eq!(dy.len(), self.out_channels * n, "conv output gradient");
        let col = ArrayView2::from_shape((self.patch(), n), col).expect("col shape");
        let dy2 = ArrayView2::from_shape((self.out_channels, n), dy).expect("dy shape");
        if let Some(dcol) = dcol {
            let mut dcol = ArrayViewMut2::from_shape((self.patch(), n), dcol).expect("dcol shape");
            gemm(1.0, &self.weight(params).t(), &dy2, 0.0, &mut dcol);
        }
        for (g, row) in self.bias_mut(grads).iter_mut().zip(dy.chunks_exact(n)) {
            *g = row.iter().sum();
        }
        gemm(1.0, &dy2, &col.t(), 0.0, &mut self.weight_mut(grads));
    }

    /// col2im: `dx` (the input's gradient, `batch` images laid out as `planes`) gets, at each
    /// input pixel, the sum of the `dcol` entries that im2col copied from it. `dx` is overwritten.
    pub fn col2im(&self, dcol: &[f32], planes: Planes, batch: usize, dx: &mut [f32]) {
        let (oh, ow) = self.output();
        let n = batch * oh * ow;
        let plane = self.input.0 * self.input.1;
        assert_eq!(dcol.len(), self.patch() * n, "col2im buffer");
        if planes == Planes::cnhw(batch, plane) {
            // Each channel's planes are one contiguous block: one task per channel.
            let kk = self.kernel * self.kernel;
            par_zip_chunks(dx, batch * plane, dcol, kk * n, |_, dx, dcol| {
                self.col2im_channel(dcol, Planes::cnhw(batch, plane), batch, dx)
            });
        } else {
            for c in 0..self.in_channels {
                let kk = self.kernel * self.kernel;
                let offset = c * planes.channel;
                let rows = &dcol[c * kk * n..(c + 1) * kk * n];
                self.col2im_channel(rows, planes, batch, &mut dx[offset..]);
            }
        }
    }

    /// col2im for one input channel: `dcol` holds its `k k` rows, `dx` starts at its first plane.
    fn col2im_channel(&self, dcol: &[f32], planes: Planes, batch: usize, dx: &mut [f32]) {
        let (h, w) = self.input;
        let (oh, ow) = self.output();
        let (k, s, p) = (self.kernel, self.stride, self.padding);
        let n = batch * oh * ow;
        for b in 0..batch {
            dx[b * planes.image..][..h * w].fill(0.0);
        }
        for i in 0..k {
            for j in 0..k {
                let row = &dcol[(i * k + j) * n..][..n];
                for b in 0..batch {
                    let plane = &mut dx[b * planes.image..][..h * w];
                    for y in 0..oh {
                        let iy = (y * s + i) as isize - p as isize;
                        if iy < 0 || iy >= h as isize {
                            continue;
                        }
                        let dst = &mut plane[iy as usize * w..][..w];
                        let src = &row[(b * oh + y) * ow..][..ow];
                        for (x, &v) in src.iter().enumerate() {
                            let ix = (x * s + j) as isize - p as isize;
                            if ix >= 0 && ix < w as isize {
                                dst[ix as usize] += v;
                            }
                        }
                    }
                }
            }
        }
    }
}
