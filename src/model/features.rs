//! The convolutional front of a model: blocks of `Conv2d -> activation -> MaxPool2d(2)`, then the
//! flatten that PyTorch's `out.view(-1, C * H * W)` does.
//!
//! Shapes, for a batch of `B` images `x: [B, 3 * 32 * 32]` (each row `[C, H, W]`) and channel
//! widths `[c1, ..., cn]`: block `i` maps `[c(i-1), B, s, s]` to `[c(i), B, s/2, s/2]` (`c0 = 3`,
//! `s` halving from 32), laid out channel-major over the batch ("CNHW", see
//! [`crate::layers::conv`]); the flatten gives `[B, cn * (32 / 2^n)^2]`, each row `[C, H, W]` as
//! PyTorch's `view`, the input of the first linear layer.
//!
//! Each block computes `act(maxpool(conv(x)) + b)`, which equals PyTorch's
//! `maxpool(act(conv(x) + b))` (see [`Features::forward_batch`]) on a quarter of the values.
//! Backward, block by block from the flatten's gradient: the activation multiplies by its
//! derivative, the pooling sends each gradient to its window's maximum, the convolution writes `dW`,
//! `db` and (except for the first block in training, whose input is the data) its input gradient
//! through col2im.
//!
//! The convolutions never store their im2col matrices: the GEMM packs its panels straight from
//! the block's input ([`crate::layers::conv::Im2col`]), the batch's images for the first block
//! (kept for the backward pass) and the previous block's pooled output for the others. Each block
//! keeps its activated output and its pooling's choices for the backward pass, in buffers sized for the largest batch trained; forward-only passes
//! ([`Features::forward`]) go through the batch in chunks of at most [`CHUNK_ROWS`] images, so that
//! evaluating 500 images at once does not grow them.

use crate::config::{Activation, CONV_KERNEL, CONV_PADDING, IMAGE_CHANNELS, IMAGE_SIDE, POOL};
use crate::layers::activation::{backward_flat, forward_flat};
use crate::layers::conv::{Conv2d, Planes};
use crate::layers::par::par_chunks_mut;
use crate::layers::pool::MaxPool2d;
use ndarray::{ArrayView2, ArrayViewMut2};
use rand::Rng;

/// Images per forward-only chunk (at least the training batch is kept for backward anyway).
pub const CHUNK_ROWS: usize = 64;

/// One block: convolution, activation, pooling.
#[derive(Clone, Debug, PartialEq)]
pub struct Block {
    pub conv: Conv2d,
    pub pool: MaxPool2d,
}

/// What a block keeps between its forward and backward passes, for `cap` images.
#[derive(Clone, Default)]
struct Work {
    /// The first block's input, the batch's images `[B, 3, 32, 32]` (the others read the previous
    /// block's `pooled`).
    input: Vec<f32>,
    /// The convolution's output before its bias `[C, B, H, W]`; in the backward pass, its gradient.
    out: Vec<f32>,
    /// Pooled, biased and activated output `[C, B, H/2, W/2]`.
    pooled: Vec<f32>,
    arg: Vec<u8>,
    /// Gradients of the pooled output and of the im2col matrix `[K, B H W]` (the first block's
    /// only once an input gradient is asked for: training never needs it).
    dpooled: Vec<f32>,
    dcol: Vec<f32>,
}

/// The blocks and their workspaces.
#[derive(Clone)]
pub struct Features {
    pub blocks: Vec<Block>,
    pub activation: Activation,
    work: Vec<Work>,
    /// Images the workspaces hold.
    cap: usize,
}

impl Features {
    /// Blocks for channel widths `channels`, their parameters from `offset` on in the flat buffer.
    pub fn new(channels: &[usize], activation: Activation, offset: usize) -> Features {
        let mut blocks = Vec::new();
        let (mut inp, mut side, mut offset) = (IMAGE_CHANNELS, IMAGE_SIDE, offset);
        for &c in channels {
            let conv = Conv2d::new(inp, c, CONV_KERNEL, 1, CONV_PADDING, (side, side), offset);
            offset += conv.num_params();
            let pool = MaxPool2d::new(POOL, conv.output());
            side = pool.output().0;
            inp = c;
            blocks.push(Block { conv, pool });
        }
        let work = vec![Work::default(); blocks.len()];
        Features { blocks, activation, work, cap: 0 }
    }

    pub fn num_params(&self) -> usize {
        self.blocks.iter().map(|b| b.conv.num_params()).sum()
    }

    /// The parameters' range in the flat buffer.
    pub fn param_range(&self) -> std::ops::Range<usize> {
        let start = self.blocks.first().map_or(0, |b| b.conv.offset);
        start..start + self.num_params()
    }

    /// Values per image after the flatten.
    pub fn flat(&self) -> usize {
        let last = self.blocks.last().expect("at least one block");
        let (h, w) = last.pool.output();
        last.conv.out_channels * h * w
    }

    pub fn init(&self, params: &mut [f32], rng: &mut impl Rng) {
        for b in &self.blocks {
            b.conv.init(params, rng);
        }
    }

    fn reserve(&mut self, rows: usize) {
        if self.cap >= rows {
            return;
        }
        for (i, (b, w)) in self.blocks.iter().zip(&mut self.work).enumerate() {
            let (oh, ow) = b.conv.output();
            let (ph, pw) = b.pool.output();
            w.input = if i == 0 {
                vec![0.0; b.conv.in_channels * rows * b.conv.input.0 * b.conv.input.1]
            } else {
                Vec::new()
            };
            w.out = vec![0.0; b.conv.out_channels * rows * oh * ow];
            w.pooled = vec![0.0; b.conv.out_channels * rows * ph * pw];
            w.arg = vec![0; w.pooled.len()];
            w.dpooled = vec![0.0; w.pooled.len()];
            w.dcol = if i == 0 { Vec::new() } else { vec![0.0; b.conv.patch() * rows * oh * ow] };
        }
        self.cap = rows;
    }

    /// The flattened features `out: [B, flat]` of the images `x: [B, 3072]`, in chunks of at most
    /// [`CHUNK_ROWS`] images (nothing is kept for a backward pass beyond the last chunk).
    pub fn forward(&mut self, params: &[f32], x: ArrayView2<f32>, mut out: ArrayViewMut2<f32>) {
        let b = x.nrows();
        let chunk = CHUNK_ROWS.max(self.cap);
        let mut start = 0;
        while start < b {
            let end = (start + chunk).min(b);
            let rows = ndarray::s![start..end, ..];
            self.forward_batch(params, x.slice(rows), out.slice_mut(rows));
            start = end;
        }
    }

    /// [`Features::forward`] on the whole batch at once, keeping every block's buffers for
    /// [`Features::backward`].
    pub fn forward_batch(&mut self, params: &[f32], x: ArrayView2<f32>, mut out: ArrayViewMut2<f32>) {
        let b = x.nrows();
        self.reserve(b);
        let x = x.as_standard_layout();
        let x = x.as_slice().expect("standard layout");
        for i in 0..self.blocks.len() {
            let Block { conv, pool } = &self.blocks[i];
            let (done, rest) = self.work.split_at_mut(i);
            let w = &mut rest[0];
            let (oh, ow) = conv.output();
            let n = b * oh * ow;
            let in_plane = conv.input.0 * conv.input.1;
            let out = &mut w.out[..conv.out_channels * n];
            match done.last() {
                None => {
                    let input = &mut w.input[..b * conv.in_channels * in_plane];
                    input.copy_from_slice(x);
                    conv.forward_from(params, input, Planes::nchw(conv.in_channels, in_plane), b, out);
                }
                Some(prev) => {
                    let src = &prev.pooled[..conv.in_channels * b * in_plane];
                    conv.forward_from(params, src, Planes::cnhw(b, in_plane), b, out);
                }
            }
            let (ph, pw) = pool.output();
            let m = conv.out_channels * b * ph * pw;
            let pooled = &mut w.pooled[..m];
            pool.forward(out, pooled, &mut w.arg[..m]);
            // The bias and the activation after the pooling: a max commutes with adding a
            // per-channel constant and with a non-decreasing activation (tanh, ReLU), so
            // `pool(act(conv + b)) = act(pool(conv) + b)` on a quarter of the values. Only the
            // choice among equal maxima can differ from PyTorch's order, and such a tie moves a
            // gradient between equal values (exactly: saturated tanh or ReLU at 0, where it is 0).
            let bias = conv.bias(params);
            par_chunks_mut(pooled, b * ph * pw, |c, plane| plane.iter_mut().for_each(|v| *v += bias[c]));
            forward_flat(self.activation, pooled);
        }
        // Flatten: [C, B, h, w] -> [B, C h w].
        let last = self.blocks.last().expect("at least one block");
        let (c, (ph, pw)) = (last.conv.out_channels, last.pool.output());
        let plane = ph * pw;
        let pooled = &self.work.last().expect("a block").pooled;
        for (img, mut row) in out.rows_mut().into_iter().enumerate() {
            for ch in 0..c {
                let src = &pooled[(ch * b + img) * plane..][..plane];
                for (k, &v) in src.iter().enumerate() {
                    row[ch * plane + k] = v;
                }
            }
        }
    }

    /// The feature maps of blocks `0..=last` for the images `x: [B, 3072]`, before the pooling:
    /// `act(conv(x) + b)`, one `[B, c * side * side]` array per block (each row `[C, H, W]`, as
    /// PyTorch's `tanh(conv1(x))`), in chunks as [`Features::forward`]. With `features`, the
    /// flattened features `[B, flat]` of the same pass go there too ([`Features::forward`]'s
    /// output), so that a caller who wants both runs the convolutions once.
    pub fn maps(
        &mut self,
        params: &[f32],
        x: ArrayView2<f32>,
        last: usize,
        mut features: Option<ArrayViewMut2<f32>>,
    ) -> Vec<ndarray::Array2<f32>> {
        let b = x.nrows();
        let mut maps: Vec<ndarray::Array2<f32>> = self.blocks[..=last]
            .iter()
            .map(|bl| ndarray::Array2::zeros((b, bl.conv.out_channels * bl.conv.output().0 * bl.conv.output().1)))
            .collect();
        let mut flat = ndarray::Array2::zeros((CHUNK_ROWS.max(self.cap).min(b.max(1)), self.flat()));
        let chunk = flat.nrows();
        let mut start = 0;
        while start < b {
            let end = (start + chunk).min(b);
            let n = end - start;
            self.forward_batch(params, x.slice(ndarray::s![start..end, ..]), flat.slice_mut(ndarray::s![..n, ..]));
            if let Some(out) = features.as_mut() {
                out.slice_mut(ndarray::s![start..end, ..]).assign(&flat.slice(ndarray::s![..n, ..]));
            }
            for (i, map) in maps.iter_mut().enumerate() {
                let conv = &self.blocks[i].conv;
                let (oh, ow) = conv.output();
                let plane = oh * ow;
                let bias = conv.bias(params);
                let out = &self.work[i].out;
                for (img, mut row) in map.slice_mut(ndarray::s![start..end, ..]).rows_mut().into_iter().enumerate() {
                    let row = row.as_slice_mut().expect("standard layout maps");
                    for c in 0..conv.out_channels {
                        let src = &out[(c * n + img) * plane..][..plane];
                        for (d, &v) in row[c * plane..][..plane].iter_mut().zip(src) {
                            *d = v + bias[c];
                        }
                    }
                    forward_flat(self.activation, row);
                }
            }
            start = end;
        }
        maps
    }

    /// Back-propagates `dout: [B, flat]` (the gradient at the flatten) through the blocks of the
    /// last [`Features::forward_batch`] on `B` images: the parameters' gradients go to `grads`, and
    /// the input's, `[B, 3072]`, to `input_grad` when asked for (saliency).
    pub fn backward(
        &mut self,
        params: &[f32],
        grads: &mut [f32],
        dout: ArrayView2<f32>,
        input_grad: Option<&mut [f32]>,
    ) {
        let b = dout.nrows();
        assert!(b <= self.cap, "backward after a forward pass of the same batch");
        let last = self.blocks.last().expect("at least one block");
        let (c, (ph, pw)) = (last.conv.out_channels, last.pool.output());
        let plane = ph * pw;
        // Unflatten into the gradient of the last pooled output, [C, B, h, w].
        let dpooled = &mut self.work.last_mut().expect("a block").dpooled;
        for (img, row) in dout.rows().into_iter().enumerate() {
            for ch in 0..c {
                let dst = &mut dpooled[(ch * b + img) * plane..][..plane];
                for (k, d) in dst.iter_mut().enumerate() {
                    *d = row[ch * plane + k];
                }
            }
        }
        let mut input_grad = input_grad;
        for i in (0..self.blocks.len()).rev() {
            let Block { conv, pool } = &self.blocks[i];
            let (before, rest) = self.work.split_at_mut(i);
            let w = &mut rest[0];
            let (oh, ow) = conv.output();
            let (ph, pw) = pool.output();
            let n = b * oh * ow;
            let m = conv.out_channels * b * ph * pw;
            backward_flat(self.activation, &w.pooled[..m], &mut w.dpooled[..m]);
            let dact = &mut w.out[..conv.out_channels * n];
            pool.backward(&w.dpooled[..m], &w.arg[..m], dact);
            let in_plane = conv.input.0 * conv.input.1;
            let want_input = i > 0 || input_grad.is_some();
            let k = conv.patch() * n;
            if want_input && w.dcol.len() < k {
                w.dcol = vec![0.0; conv.patch() * self.cap * oh * ow];
            }
            let dcol = if want_input { Some(&mut w.dcol[..k]) } else { None };
            match before.last() {
                None => {
                    let input = &w.input[..b * conv.in_channels * in_plane];
                    conv.backward_from(params, grads, input, Planes::nchw(conv.in_channels, in_plane), b, dact, dcol)
                }
                Some(prev) => {
                    let input = &prev.pooled[..conv.in_channels * b * in_plane];
                    conv.backward_from(params, grads, input, Planes::cnhw(b, in_plane), b, dact, dcol)
                }
            }
            if let Some(prev) = before.last_mut() {
                conv.col2im(
                    &w.dcol[..k],
                    Planes::cnhw(b, in_plane),
                    b,
                    &mut prev.dpooled[..conv.in_channels * b * in_plane],
                );
            } else if let Some(dx) = input_grad.take() {
                assert_eq!(dx.len(), b * conv.in_channels * in_plane, "input gradient shape");
                conv.col2im(&w.dcol[..k], Planes::nchw(conv.in_channels, in_plane), b, dx);
            }
        }
    }
}
