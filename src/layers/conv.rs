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
//! In training, `col` is never stored: [`Im2col`] hands the GEMM its packed panels straight from
//! the images ([`crate::matmul::PackedB`]), for the forward product and, transposed, for `dW`.
//! The stored matrix is 9 times the images (3x3 kernels): writing it and reading it back twice
//! was most of a convolutional epoch's memory traffic. The panels hold the same values, so the
//! products are the same, bit for bit.
//! Every sum runs in a fixed order (the GEMM's, or `i, j` ascending in col2im), so the result does
//! not depend on the number of threads.
//!
//! Initialisation as PyTorch's `nn.Conv2d`: `kaiming_uniform_(a=sqrt(5))` for the weight, which is
//! uniform in `+-1/sqrt(K)`, and the same bound for the bias (`K` is the fan-in `C_in k k`).

use super::par::{par_chunks_mut, par_zip_chunks};
use crate::matmul::{PackedB, gemm, gemm_packed_b};
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
        let dy2 = self.input_and_bias_grads(params, grads, dy, n, dcol);
        gemm(1.0, &dy2, &col.t(), 0.0, &mut self.weight_mut(grads));
    }

    /// What both backward passes share: `dcol = W^T dy` when asked for, and `db = sum_n dy`;
    /// returns `dy` as the matrix `[C_out, N]` for the weight gradient.
    fn input_and_bias_grads<'a>(
        &self,
        params: &[f32],
        grads: &mut [f32],
        dy: &'a [f32],
        n: usize,
        dcol: Option<&mut [f32]>,
    ) -> ArrayView2<'a, f32> {
        let dy2 = ArrayView2::from_shape((self.out_channels, n), dy).expect("dy shape");
        if let Some(dcol) = dcol {
            let mut dcol = ArrayViewMut2::from_shape((self.patch(), n), dcol).expect("dcol shape");
            self.col_grad_into(params, &dy2, &mut dcol);
        }
        for (g, row) in self.bias_mut(grads).iter_mut().zip(dy.chunks_exact(n)) {
            *g = row.iter().sum();
        }
        dy2
    }

    /// `y = W col`, the bias left out, with `col` made panel by panel from the `batch` images of
    /// `x` (laid out as `planes`) instead of stored: [`Conv2d::forward_unbiased`] on
    /// [`Conv2d::im2col`], bit for bit.
    pub fn forward_from(&self, params: &[f32], x: &[f32], planes: Planes, batch: usize, y: &mut [f32]) {
        let n = Im2col::new(self, x, planes, batch).positions();
        assert_eq!(y.len(), self.out_channels * n, "conv output buffer");
        let mut y = ArrayViewMut2::from_shape((self.out_channels, n), y).expect("output shape");
        self.forward_into(params, x, planes, batch, &mut y);
    }

    /// [`Conv2d::forward_from`] into any view `y: [C_out, N]` (rows may lie apart: a share of a
    /// batch's images inside the whole batch's output).
    pub fn forward_into(&self, params: &[f32], x: &[f32], planes: Planes, batch: usize, y: &mut ArrayViewMut2<f32>) {
        gemm_packed_b(1.0, &self.weight(params), &Im2col::new(self, x, planes, batch), 0.0, y);
    }

    /// `dW = dy col^T` into `dw: [C_out, K]`, `col` made from the images `x` as in
    /// [`Conv2d::forward_from`]; `dy: [C_out, N]` any view.
    pub fn weight_grad_into(
        &self,
        x: &[f32],
        planes: Planes,
        batch: usize,
        dy: &ArrayView2<f32>,
        dw: &mut ArrayViewMut2<f32>,
    ) {
        gemm_packed_b(1.0, dy, &Transposed(Im2col::new(self, x, planes, batch)), 0.0, dw);
    }

    /// `dcol = W^T dy` (`[K, N]`, for [`Conv2d::col2im_channel`]); `dy: [C_out, N]` any view.
    pub fn col_grad_into(&self, params: &[f32], dy: &ArrayView2<f32>, dcol: &mut ArrayViewMut2<f32>) {
        gemm(1.0, &self.weight(params).t(), dy, 0.0, dcol);
    }

    /// [`Conv2d::backward`] with `col` made from the images `x` (as [`Conv2d::forward_from`]):
    /// `dW = dy col^T`, `db = sum_n dy`, and when asked for `dcol = W^T dy`.
    #[allow(clippy::too_many_arguments)]
    pub fn backward_from(
        &self,
        params: &[f32],
        grads: &mut [f32],
        x: &[f32],
        planes: Planes,
        batch: usize,
        dy: &[f32],
        dcol: Option<&mut [f32]>,
    ) {
        let n = Im2col::new(self, x, planes, batch).positions();
        assert_eq!(dy.len(), self.out_channels * n, "conv output gradient");
        let dy2 = self.input_and_bias_grads(params, grads, dy, n, dcol);
        self.weight_grad_into(x, planes, batch, &dy2, &mut self.weight_mut(grads));
    }

    /// The input gradient as a convolution, where the stride is 1: `dx = conv(dy, W')` with
    /// `W'[c, o, i, j] = W[o, c, k-1-i, k-1-j]` ([`Conv2d::flipped_weight`]) and padding
    /// `k - 1 - p`, which gives `dx` its `H x W`:
    /// `dx[c, y, x] = sum over o, i, j of W[o, c, i, j] dy[o, y + p - i, x + p - j]`, as col2im
    /// sums it. One product with `K' = C_out k k` (72 in `conv`'s second block) instead of
    /// `dcol = W^T dy` (`K = C_out`, 8) and col2im: no `[C_in k k, N]` matrix written and read
    /// back. The same sum in another order: equal up to rounding.
    pub fn transposed(&self) -> Option<Conv2d> {
        (self.stride == 1 && self.padding < self.kernel).then(|| {
            let t = Conv2d::new(
                self.out_channels,
                self.in_channels,
                self.kernel,
                1,
                self.kernel - 1 - self.padding,
                self.output(),
                0,
            );
            debug_assert_eq!(t.output(), self.input);
            t
        })
    }

    /// `W'` of [`Conv2d::transposed`], `[C_in, C_out, k, k]`, written to `out`.
    pub fn flipped_weight(&self, params: &[f32], out: &mut [f32]) {
        let (k, ci, co) = (self.kernel, self.in_channels, self.out_channels);
        let w = &params[self.offset..self.offset + self.num_weights()];
        for c in 0..ci {
            for o in 0..co {
                for i in 0..k {
                    for j in 0..k {
                        out[((c * co + o) * k + i) * k + j] = w[((o * ci + c) * k + (k - 1 - i)) * k + (k - 1 - j)];
                    }
                }
            }
        }
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

    /// col2im for one input channel: `dcol` holds its `k k` rows (of `batch` images' positions),
    /// `dx` starts at its first plane, the others `planes.image` apart.
    pub fn col2im_channel(&self, dcol: &[f32], planes: Planes, batch: usize, dx: &mut [f32]) {
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
                        if s == 1 {
                            // The output columns whose input column `x + j - p` is inside the
                            // image, as one slice: no test per element.
                            let lo = p.saturating_sub(j).min(ow);
                            let hi = (w + p).saturating_sub(j).clamp(lo, ow);
                            let to = &mut dst[lo + j - p..hi + j - p];
                            to.iter_mut().zip(&src[lo..hi]).for_each(|(d, &v)| *d += v);
                            continue;
                        }
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

/// The im2col matrix `col: [K, N]` of a batch, never stored: a [`PackedB`] source whose panels
/// are copied from the images (a few hundred kilobytes, in cache) as the GEMM asks for them.
pub struct Im2col<'a> {
    conv: &'a Conv2d,
    x: &'a [f32],
    planes: Planes,
    batch: usize,
}

/// Row `(c, i, j)` of `col`: where its values come from.
#[derive(Clone, Copy)]
struct PatchRow {
    /// Offset of input channel `c`'s first plane.
    channel: usize,
    /// `i - p` and `j - p`: the input pixel of output `(y, x)` is `(y s + di, x s + dj)`.
    di: isize,
    dj: isize,
}

/// A run of positions in one output row: image `b`, row `y`, columns `x0..x0 + len`, the `t`-th
/// of the block's positions first.
#[derive(Clone, Copy)]
struct Run {
    b: usize,
    y: usize,
    x0: usize,
    len: usize,
    t: usize,
}

impl<'a> Im2col<'a> {
    pub fn new(conv: &'a Conv2d, x: &'a [f32], planes: Planes, batch: usize) -> Im2col<'a> {
        let (h, w) = conv.input;
        let last = (conv.in_channels - 1) * planes.channel + (batch - 1) * planes.image + h * w;
        assert!(batch > 0 && x.len() >= last, "im2col input: {} values for {batch} images", x.len());
        Im2col { conv, x, planes, batch }
    }

    /// `N = B H' W'`.
    pub fn positions(&self) -> usize {
        let (oh, ow) = self.conv.output();
        self.batch * oh * ow
    }

    fn row(&self, r: usize) -> PatchRow {
        let k = self.conv.kernel;
        let p = self.conv.padding as isize;
        let (c, i, j) = (r / (k * k), r / k % k, r % k);
        PatchRow { channel: c * self.planes.channel, di: i as isize - p, dj: j as isize - p }
    }

    /// The positions `n0..n0 + count`, cut where an output row ends.
    fn runs(&self, n0: usize, count: usize) -> impl Iterator<Item = Run> {
        let (oh, ow) = self.conv.output();
        let (mut n, end, mut t) = (n0, n0 + count, 0);
        std::iter::from_fn(move || {
            (n < end).then(|| {
                let x0 = n % ow;
                let len = (ow - x0).min(end - n);
                let run = Run { b: n / (oh * ow), y: n / ow % oh, x0, len, t };
                n += len;
                t += len;
                run
            })
        })
    }

    /// Writes `col[row, run]` to `dst[0], dst[step], ..., dst[(len - 1) step]` (zeros outside the image).
    #[inline(always)]
    fn copy(&self, row: PatchRow, run: Run, dst: &mut [f32], step: usize) {
        let (h, w) = self.conv.input;
        let s = self.conv.stride;
        let dst = &mut dst[..(run.len - 1) * step + 1];
        let iy = (run.y * s) as isize + row.di;
        if iy < 0 || iy >= h as isize {
            dst.iter_mut().step_by(step).for_each(|d| *d = 0.0);
            return;
        }
        let src = &self.x[row.channel + run.b * self.planes.image + iy as usize * w..][..w];
        if s == 1 {
            // Output columns whose input column `x + dj` is inside the image: a copy, zeros either
            // side (at most `p` of them). No test per element: this is the innermost loop of a
            // convolutional epoch.
            let end = run.x0 + run.len;
            let lo = ((-row.dj).max(0) as usize).clamp(run.x0, end);
            let hi = ((w as isize - row.dj).max(0) as usize).clamp(lo, end);
            let from = (lo as isize + row.dj) as usize;
            let values = &src[from..from + hi - lo];
            let (before, inside) = (lo - run.x0, hi - lo);
            if step == 1 {
                // Runs are one output row (32 values or fewer): calls to memcpy and memset cost
                // more than the copy. Fixed-size chunks compile to vector moves, and the zeros
                // are only at the image's edges.
                if before > 0 {
                    dst[..before].fill(0.0);
                }
                let to = &mut dst[before..before + inside];
                let mut chunks = to.chunks_exact_mut(8);
                let mut from = values.chunks_exact(8);
                for (d, v) in chunks.by_ref().zip(from.by_ref()) {
                    d.copy_from_slice(v);
                }
                for (d, &v) in chunks.into_remainder().iter_mut().zip(from.remainder()) {
                    *d = v;
                }
                if before + inside < run.len {
                    dst[before + inside..].fill(0.0);
                }
            } else {
                let mut d = dst.iter_mut().step_by(step);
                d.by_ref().take(before).for_each(|d| *d = 0.0);
                d.by_ref().zip(values).for_each(|(d, &v)| *d = v);
                d.for_each(|d| *d = 0.0);
            }
            return;
        }
        for (u, d) in dst.iter_mut().step_by(step).enumerate() {
            let ix = ((run.x0 + u) * s) as isize + row.dj;
            *d = if ix >= 0 && ix < w as isize { src[ix as usize] } else { 0.0 };
        }
    }
}

impl PackedB for Im2col<'_> {
    fn dims(&self) -> (usize, usize) {
        (self.conv.patch(), self.positions())
    }

    fn pack(&self, pc: usize, kc: usize, jc: usize, nc: usize, nr: usize, out: &mut [f32]) {
        let rows: Vec<PatchRow> = (pc..pc + kc).map(|r| self.row(r)).collect();
        for (q, panel) in out.chunks_exact_mut(nr * kc).enumerate() {
            let cols = nr.min(nc - q * nr);
            for run in self.runs(jc + q * nr, cols) {
                for (kk, &row) in rows.iter().enumerate() {
                    self.copy(row, run, &mut panel[kk * nr + run.t..], 1);
                }
            }
            if cols < nr {
                panel.chunks_exact_mut(nr).for_each(|r| r[cols..].fill(0.0));
            }
        }
    }
}

/// `col^T: [N, K]`, for the weight gradient `dW = dy col^T`.
pub struct Transposed<'a>(pub Im2col<'a>);

impl PackedB for Transposed<'_> {
    fn dims(&self) -> (usize, usize) {
        (self.0.positions(), self.0.conv.patch())
    }

    fn pack(&self, pc: usize, kc: usize, jc: usize, nc: usize, nr: usize, out: &mut [f32]) {
        // Each row of `col` goes down a panel's column, `nr` apart. (Made contiguous first and
        // transposed after, in blocks or not, it took longer.)
        let runs: Vec<Run> = self.0.runs(pc, kc).collect();
        for (q, panel) in out.chunks_exact_mut(nr * kc).enumerate() {
            let cols = nr.min(nc - q * nr);
            for jj in 0..cols {
                let row = self.0.row(jc + q * nr + jj);
                for &run in &runs {
                    self.0.copy(row, run, &mut panel[run.t * nr + jj..], nr);
                }
            }
            if cols < nr {
                panel.chunks_exact_mut(nr).for_each(|r| r[cols..].fill(0.0));
            }
        }
    }
}
