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
//! `db` (the sum of the pooled gradient: pooling sends each value to one place) and, except for
//! the first block in training (whose input is the data), its input gradient: for the later blocks
//! a convolution of `dy` with the flipped weight ([`Conv2d::transposed`]), for the images
//! (saliency) `dcol = W^T dy` and col2im.
//!
//! Each pass of a block is one set of tasks on the rayon pool, [`TASK_IMAGES`] images each
//! (`layers::par::par_tasks`): a task runs its images' products on its own thread and pools
//! (or un-pools) them while they are in cache. Each task's weight and bias gradients are summed in
//! task order, so the results are the same for any number of threads.
//!
//! The convolutions never store their im2col matrices: the GEMM packs its panels straight from
//! the block's input ([`crate::layers::conv::Im2col`]), the batch's images for the first block
//! (kept for the backward pass) and the previous block's pooled output for the others. Each block
//! keeps its activated output and its pooling's choices for the backward pass, in buffers sized for the largest batch trained; forward-only passes
//! ([`Features::forward`]) go through the batch in chunks of at most [`CHUNK_ROWS`] images, so that
//! evaluating 500 images at once does not grow them.

use crate::config::{Activation, CONV_KERNEL, CONV_PADDING, IMAGE_CHANNELS, IMAGE_SIDE, POOL};
use crate::layers::activation::{backward_serial, forward_flat, forward_serial};
use crate::layers::conv::{Conv2d, Planes};
use crate::layers::par::{Disjoint, lane_sum, par_tasks};
use crate::layers::pool::MaxPool2d;
use ndarray::{ArrayView2, ArrayViewMut2, ShapeBuilder};
use rand::Rng;

/// Images per task of a block's pass on the pool: fixed, so that the results do not depend on the
/// number of threads; small, so that a task's convolution output (16 channels of 8 images of
/// 32 x 32 in `conv`, 512 KB) is still in cache when it is pooled.
pub const TASK_IMAGES: usize = 8;

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
    /// Each backward task's weight and bias gradients, `[tasks][C_out K + C_out]`.
    partial: Vec<f32>,
    /// The flipped weight of the input gradient's convolution (`Conv2d::flipped_weight`).
    wflip: Vec<f32>,
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
            // Only col2im's input gradient needs `dcol`: made when first asked for.
            w.dcol = Vec::new();
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
    ///
    /// Each block is one pass over tasks of [`TASK_IMAGES`] images on the pool: a task convolves its
    /// images (its own product, on its own thread), pools each of their planes while the
    /// convolution's output is still in cache, and adds the bias and the activation. A block's
    /// numbers do not depend on the split: each output sums over the same terms in the same order.
    pub fn forward_batch(&mut self, params: &[f32], x: ArrayView2<f32>, mut out: ArrayViewMut2<f32>) {
        let b = x.nrows();
        self.reserve(b);
        let x = x.as_standard_layout();
        let x = x.as_slice().expect("standard layout");
        let act = self.activation;
        for i in 0..self.blocks.len() {
            let Block { conv, pool } = &self.blocks[i];
            let (done, rest) = self.work.split_at_mut(i);
            let Work { input, out, pooled, arg, .. } = &mut rest[0];
            let (oh, ow) = conv.output();
            let (hw, n) = (oh * ow, b * oh * ow);
            let pp = pool.output().0 * pool.output().1;
            let in_plane = conv.input.0 * conv.input.1;
            let (src, planes) = match done.last() {
                None => {
                    let input = &mut input[..b * conv.in_channels * in_plane];
                    input.copy_from_slice(x);
                    (&input[..], Planes::nchw(conv.in_channels, in_plane))
                }
                Some(prev) => (&prev.pooled[..conv.in_channels * b * in_plane], Planes::cnhw(b, in_plane)),
            };
            let y = Disjoint::new(&mut out[..conv.out_channels * n]);
            let pooled = Disjoint::new(&mut pooled[..conv.out_channels * b * pp]);
            let arg = Disjoint::new(&mut arg[..conv.out_channels * b * pp]);
            let bias = conv.bias(params);
            par_tasks(b.div_ceil(TASK_IMAGES), |t| {
                let (b0, nb) = (t * TASK_IMAGES, TASK_IMAGES.min(b - t * TASK_IMAGES));
                // SAFETY: task `t` reaches only images `b0..b0 + nb` of each channel's planes, in
                // `y`, `pooled` and `arg`: disjoint from every other task's.
                unsafe {
                    let shape = (conv.out_channels, nb * hw).strides((n, 1));
                    let mut yt = ArrayViewMut2::from_shape_ptr(shape, y.ptr().add(b0 * hw));
                    conv.forward_into(params, &src[b0 * planes.image..], planes, nb, &mut yt);
                    for (c, &bias) in bias.iter().enumerate() {
                        let yc = y.range(c * n + b0 * hw, nb * hw);
                        let pc = pooled.range((c * b + b0) * pp, nb * pp);
                        let ac = arg.range((c * b + b0) * pp, nb * pp);
                        for q in 0..nb {
                            pool.forward_plane(&yc[q * hw..][..hw], &mut pc[q * pp..][..pp], &mut ac[q * pp..][..pp]);
                        }
                        // The bias and the activation after the pooling: a max commutes with
                        // adding a per-channel constant and with a non-decreasing activation
                        // (tanh, ReLU), so `pool(act(conv + b)) = act(pool(conv) + b)` on a
                        // quarter of the values. Only the choice among equal maxima can differ
                        // from PyTorch's order, and such a tie moves a gradient between equal
                        // values (exactly: saturated tanh or ReLU at 0, where it is 0).
                        pc.iter_mut().for_each(|v| *v += bias);
                        forward_serial(act, pc);
                    }
                }
            });
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
        let act = self.activation;
        let tasks = b.div_ceil(TASK_IMAGES);
        let mut input_grad = input_grad;
        for i in (0..self.blocks.len()).rev() {
            let Block { conv, pool } = &self.blocks[i];
            let (before, rest) = self.work.split_at_mut(i);
            let w = &mut rest[0];
            let (oh, ow) = conv.output();
            let (hw, n) = (oh * ow, b * oh * ow);
            let pp = pool.output().0 * pool.output().1;
            let (k, c_out, c_in) = (conv.patch(), conv.out_channels, conv.in_channels);
            let in_plane = conv.input.0 * conv.input.1;
            let want_input = i > 0 || input_grad.is_some();
            // A later block's input gradient is a convolution of `dy` (`Conv2d::transposed`); the
            // images' gradient (saliency) goes through `dcol` and col2im.
            let tconv = if i > 0 { conv.transposed() } else { None };
            if let Some(t) = &tconv {
                w.wflip.resize(t.num_weights(), 0.0);
                conv.flipped_weight(params, &mut w.wflip);
            } else if want_input && w.dcol.len() < k * n {
                w.dcol = vec![0.0; k * self.cap * hw];
            }
            // Each task's weight and bias gradients, summed in task order after the pass.
            let share = c_out * k + c_out;
            w.partial.resize(tasks * share, 0.0);
            // What the convolution read, and where its input gradient goes: the previous block's
            // `dpooled` (`[C, B, h, w]`), or the images' gradient (`[B, 3, 32, 32]`) when asked for.
            let (src, planes, dx) = match before.last_mut() {
                None => {
                    let dx = if want_input { input_grad.take() } else { None };
                    if let Some(dx) = &dx {
                        assert_eq!(dx.len(), b * c_in * in_plane, "input gradient shape");
                    }
                    (&w.input[..b * c_in * in_plane], Planes::nchw(c_in, in_plane), dx.map(Disjoint::new))
                }
                Some(prev) => (
                    &prev.pooled[..c_in * b * in_plane],
                    Planes::cnhw(b, in_plane),
                    Some(Disjoint::new(&mut prev.dpooled[..c_in * b * in_plane])),
                ),
            };
            let Work { out, pooled, arg, dpooled, dcol, partial, wflip, .. } = w;
            let (pooled, arg, wflip) = (&pooled[..], &arg[..], &wflip[..]);
            let dy = Disjoint::new(&mut out[..c_out * n]);
            let dpooled = Disjoint::new(&mut dpooled[..c_out * b * pp]);
            let dcol = Disjoint::new(&mut dcol[..]);
            let partial = Disjoint::new(&mut partial[..]);
            par_tasks(tasks, |t| {
                let (b0, nb) = (t * TASK_IMAGES, TASK_IMAGES.min(b - t * TASK_IMAGES));
                // SAFETY: task `t` reaches only images `b0..b0 + nb` of each channel's planes (in
                // `dy`, `dpooled`, `dx`; in `dcol`, its own block of columns) and its own share
                // of `partial`: disjoint from every other task's.
                unsafe {
                    let part = partial.range(t * share, share);
                    let (dw, db) = part.split_at_mut(c_out * k);
                    // This task's `dy`, `[C_out, nb h w]`: the convolution's output buffer, task
                    // after task (no longer `[C, B, H, W]` once the backward pass has run).
                    let cols = nb * hw;
                    let dyt = dy.range(c_out * b0 * hw, c_out * cols);
                    for (c, db) in db.iter_mut().enumerate() {
                        let at = (c * b + b0) * pp;
                        let dp = dpooled.range(at, nb * pp);
                        backward_serial(act, &pooled[at..][..nb * pp], dp);
                        // The bias gradient sums the convolution's output gradient, whose only
                        // non-zero values are these (pooling sends each to one place).
                        *db = lane_sum(dp);
                        let dyc = &mut dyt[c * cols..][..cols];
                        for q in 0..nb {
                            pool.backward_plane(
                                &dp[q * pp..][..pp],
                                &arg[at + q * pp..][..pp],
                                &mut dyc[q * hw..][..hw],
                            );
                        }
                    }
                    let dyt = ArrayView2::from_shape((c_out, cols), &dyt[..]).expect("dy share");
                    let x = &src[b0 * planes.image..];
                    let mut dw = ArrayViewMut2::from_shape((c_out, k), dw).expect("weight gradient share");
                    conv.weight_grad_into(x, planes, nb, &dyt, &mut dw);
                    let Some(dx) = &dx else { return };
                    if let Some(tc) = &tconv {
                        // Into the previous block's `[C, B, h, w]` gradient: rows `B h w` apart.
                        let shape = (c_in, nb * in_plane).strides((b * in_plane, 1));
                        let mut dxt = ArrayViewMut2::from_shape_ptr(shape, dx.ptr().add(b0 * in_plane));
                        let dy = dyt.as_slice().expect("contiguous dy share");
                        tc.forward_into(wflip, dy, Planes::cnhw(nb, hw), nb, &mut dxt);
                        return;
                    }
                    let dct = dcol.range(k * b0 * hw, k * cols);
                    conv.col_grad_into(
                        params,
                        &dyt,
                        &mut ArrayViewMut2::from_shape((k, cols), &mut dct[..]).expect("dcol share"),
                    );
                    let kk = conv.kernel * conv.kernel;
                    if planes.image == in_plane {
                        // `[C, B, h, w]`: each channel's planes of these images are one range.
                        for c in 0..c_in {
                            let to = dx.range((c * b + b0) * in_plane, nb * in_plane);
                            conv.col2im_channel(&dct[c * kk * cols..][..kk * cols], Planes::cnhw(nb, in_plane), nb, to);
                        }
                    } else {
                        // `[B, C, H, W]`: these images are one range, channels inside.
                        let to = dx.range(b0 * planes.image, nb * planes.image);
                        for c in 0..c_in {
                            conv.col2im_channel(
                                &dct[c * kk * cols..][..kk * cols],
                                planes,
                                nb,
                                &mut to[c * in_plane..],
                            );
                        }
                    }
                }
            });
            // The tasks' gradients, in task order: the same sums for any number of threads.
            let (wg, bg) = grads[conv.offset..conv.offset + conv.num_params()].split_at_mut(c_out * k);
            wg.fill(0.0);
            bg.fill(0.0);
            for part in w.partial.chunks_exact(share) {
                wg.iter_mut().zip(&part[..c_out * k]).for_each(|(g, &p)| *g += p);
                bg.iter_mut().zip(&part[c_out * k..]).for_each(|(g, &p)| *g += p);
            }
        }
    }
}
