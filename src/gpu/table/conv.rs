//! The convolution blocks' part of the kernel table: the parameters of im2col.wgsl,
//! col2im.wgsl, pool_forward.wgsl and pool_backward.wgsl, and the three GEMMs of a block, for a
//! block of the CPU's [`Features`](crate::model::features::Features) run on `images` images at
//! once (the training batch; evaluation uses the same buffers).
//!
//! Shapes of block `Conv2d(C_in -> C_out, k, padding p, stride s)` then `MaxPool2d(2)` on
//! `H x W` planes: `K = C_in k k`, output `H' x W'`, `N = images H' W'` columns, pooled
//! `H'' x W''`; the weight `W: [C_out, K]` at `w_off` of the flat parameter buffer, the bias
//! `[C_out]` right after it (`Mlp::params`' layout).
//!
//! | step | kernel | computes |
//! |---|---|---|
//! | im2col | `im2col.wgsl` | `col: [K, N]` from the gathered batch (NCHW) or the previous block's pooled output (CNHW) |
//! | forward | `gemm.wgsl` Store | `y = W col`, `[C_out, K] x [K, N]`: the convolution without its bias, CNHW |
//! | pool | `pool_forward.wgsl` | `act(maxpool(y) + b)` and the argmax, into CNHW or (last block) the flattened `[B, C H'' W'']` |
//! | pool backward | `pool_backward.wgsl` | `dy`: `dpooled act'(pooled)` at each window's argmax, 0 elsewhere |
//! | input grad | `gemm.wgsl` Store, A transposed | `dcol = W^T dy`, `[K, C_out] x [C_out, N]` (not for the first block) |
//! | col2im | `col2im.wgsl` | the previous block's `dpooled` from `dcol` |
//! | weight grad | `gemm.wgsl` Store or Sgd, B transposed | `dW = dy col^T`, `[C_out, N] x [N, K]` |
//! | bias grad | `gemm.wgsl` Store or Sgd | `db = dy 1`, `[C_out, N] x [N, 1]` (a column of ones) |
//!
//! The GEMMs' sizes are fixed (all `images`; a short batch's missing images are zero columns,
//! see im2col.wgsl and pool_backward.wgsl), so none reads the batch's row count. The gradients'
//! K is `N` (65 536 for the book's first block on a batch of 64), split into chunks (split-K):
//! the MLP's fused bias (row sums in the weight gradient's epilogue) would need all of K in one
//! workgroup, one loop of 4096 steps per invocation, which is slow where a workgroup runs on one
//! core and cut short on lavapipe (Mesa's llvmpipe stops a shader's loops after 65 535
//! iterations in all, `LP_MAX_TGSI_LOOP_ITERATIONS`; measured: 70% of the sum).

use super::{Epilogue, GemmSpec, RowsDim, WG, fused_sgd, grid, words};
use crate::config::OptimizerConfig;
use crate::layers::conv::{Conv2d, Planes};
use crate::layers::pool::MaxPool2d;

/// Where the `(channel, image)` planes of a buffer start: `offset + c channel + b image`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PlaneLayout {
    pub offset: u32,
    pub channel: u32,
    pub image: u32,
}

impl From<Planes> for PlaneLayout {
    fn from(p: Planes) -> PlaneLayout {
        PlaneLayout { offset: 0, channel: p.channel as u32, image: p.image as u32 }
    }
}

/// One convolution block (a convolution and its pooling, as the CPU model has them) on
/// `images` images.
#[derive(Clone, Debug, PartialEq)]
pub struct ConvBlockSpec {
    pub conv: Conv2d,
    pub pool: MaxPool2d,
    pub images: u32,
}

/// The GEMMs of a block's training step.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ConvGemms {
    /// `y = W col` (no bias: it is added after the pooling).
    pub forward: GemmSpec,
    /// `dcol = W^T dy`: not for the first block (its input is the data).
    pub input_grad: Option<GemmSpec>,
    /// `dW = dy col^T`, stored at the weights' offset in the gradient buffer or applied as
    /// plain SGD.
    pub weight_grad: GemmSpec,
    /// `db = dy 1` (B a column of `N` ones), likewise at the bias's offset.
    pub bias_grad: GemmSpec,
}

fn u(v: usize) -> u32 {
    u32::try_from(v).expect("a convolution size within u32")
}

impl ConvBlockSpec {
    /// `K = C_in k k`.
    pub fn patch(&self) -> u32 {
        u(self.conv.patch())
    }

    /// `N = images H' W'`, the columns of `col` and of the convolution's output.
    pub fn positions(&self) -> u32 {
        let (oh, ow) = self.conv.output();
        self.images * u(oh * ow)
    }

    /// Floats of `col` (and `dcol`): `K N`.
    pub fn col_floats(&self) -> u64 {
        self.patch() as u64 * self.positions() as u64
    }

    /// Floats of the convolution's output (and its gradient): `C_out N`.
    pub fn out_floats(&self) -> u64 {
        self.conv.out_channels as u64 * self.positions() as u64
    }

    /// Floats of the pooled output (and its gradient): `C_out images H'' W''`.
    pub fn pooled_floats(&self) -> u64 {
        let (ph, pw) = self.pool.output();
        (self.conv.out_channels * ph * pw) as u64 * self.images as u64
    }

    /// The CNHW layout of this block's input planes (`C_in` planes `H x W` per image).
    pub fn input_cnhw(&self) -> PlaneLayout {
        Planes::cnhw(self.images as usize, self.conv.input.0 * self.conv.input.1).into()
    }

    /// The CNHW layout of this block's pooled output (the next block's input).
    pub fn pooled_cnhw(&self) -> PlaneLayout {
        let (ph, pw) = self.pool.output();
        Planes::cnhw(self.images as usize, ph * pw).into()
    }

    /// The pooled output flattened per image, `[B, C_out H'' W'']` (PyTorch's `view`).
    pub fn pooled_flat(&self) -> PlaneLayout {
        let (ph, pw) = self.pool.output();
        Planes::nchw(self.conv.out_channels, ph * pw).into()
    }

    fn geometry(&self, at: PlaneLayout) -> [u32; 12] {
        let c = &self.conv;
        let (oh, ow) = c.output();
        [
            u(c.in_channels),
            u(c.input.0),
            u(c.input.1),
            u(c.kernel),
            u(c.padding),
            u(c.stride),
            u(oh),
            u(ow),
            at.channel,
            at.image,
            self.images,
            at.offset,
        ]
    }

    /// im2col.wgsl's uniform, reading the input planes laid out as `input`.
    pub fn im2col_params(&self, input: PlaneLayout) -> Vec<u8> {
        words(&self.geometry(input))
    }

    /// col2im.wgsl's uniform, writing the input gradient's planes laid out as `out`.
    pub fn col2im_params(&self, out: PlaneLayout) -> Vec<u8> {
        words(&self.geometry(out))
    }

    /// The uniform of pool_forward.wgsl and pool_backward.wgsl, the pooled planes laid out as
    /// `pooled` (its offset unused: each buffer is the block's own).
    pub fn pool_params(&self, pooled: PlaneLayout) -> Vec<u8> {
        let (h, w) = self.pool.input;
        let (ph, pw) = self.pool.output();
        words(&[
            u(self.conv.out_channels),
            self.images,
            u(h),
            u(w),
            u(self.pool.kernel),
            u(ph),
            u(pw),
            pooled.channel,
            pooled.image,
            u(self.conv.offset + self.conv.num_weights()),
        ])
    }

    /// Workgroup grids (one thread per output value) of im2col, col2im, pool forward, pool
    /// backward.
    pub fn grids(&self) -> [(u32, u32); 4] {
        let (h, w) = self.conv.input;
        let col2im = self.images as u64 * (self.conv.in_channels * h * w) as u64;
        [self.col_floats(), col2im, self.pooled_floats(), self.out_floats()]
            .map(|n| grid(u32::try_from(n.div_ceil(WG as u64)).expect("a grid within u32")))
    }

    /// The block's GEMMs; `first`: the model's first block (no input gradient).
    pub fn gemms(&self, first: bool, optimizer: &OptimizerConfig) -> ConvGemms {
        let (c_out, k, n) = (u(self.conv.out_channels), self.patch(), self.positions());
        let w_off = u(self.conv.offset);
        let forward = GemmSpec { a_off: w_off, ..GemmSpec::dense(c_out, n, k, false, false, Epilogue::Store) };
        let input_grad =
            (!first).then(|| GemmSpec { a_off: w_off, ..GemmSpec::dense(k, n, c_out, true, false, Epilogue::Store) });
        let epilogue = if fused_sgd(optimizer) {
            Epilogue::Sgd { lr: optimizer.lr, weight_decay: optimizer.weight_decay }
        } else {
            Epilogue::Store
        };
        let weight_grad = GemmSpec { c_off: w_off, ..GemmSpec::dense(c_out, k, n, false, true, epilogue) };
        let bias_grad = GemmSpec { c_off: w_off + c_out * k, ..GemmSpec::dense(c_out, 1, n, false, false, epilogue) };
        ConvGemms { forward, input_grad, weight_grad, bias_grad }
    }
}

/// The input gradient of the first linear layer after the convolutions, `dflat = dz W` (`W:
/// [out, inp]` at `w_off`), stored: pool_backward.wgsl applies the activation's derivative.
pub fn flat_grad(inp: u32, out: u32, w_off: u32, batch: u32) -> GemmSpec {
    GemmSpec { b_off: w_off, rows: RowsDim::M, ..GemmSpec::dense(batch, inp, out, false, false, Epilogue::Store) }
}

/// The GEMMs of the book's `Net` (preset `conv`: blocks of 16 and 8 channels) on a training
/// batch of 64, for the benchmark (`gpu-bench/`): the training shapes, epilogues and splits, with
/// dense operands at offset 0.
pub fn bench_shapes() -> Vec<(String, GemmSpec)> {
    let features = crate::model::features::Features::new(&[16, 8], crate::config::Activation::Tanh, 0);
    let mut out = Vec::new();
    for (i, b) in features.blocks.iter().enumerate() {
        let spec = ConvBlockSpec { conv: b.conv.clone(), pool: b.pool, images: 64 };
        let g = spec.gemms(i == 0, &OptimizerConfig::default());
        let zero = |s: GemmSpec| GemmSpec { a_off: 0, b_off: 0, c_off: 0, epilogue: Epilogue::Store, ..s };
        out.push((format!("conv{} forward W col", i + 1), zero(g.forward)));
        if let Some(d) = g.input_grad {
            out.push((format!("conv{} input grad W^T dy", i + 1), zero(d)));
        }
        out.push((format!("conv{} weight grad dy col^T", i + 1), zero(g.weight_grad)));
        out.push((format!("conv{} bias grad dy 1", i + 1), zero(g.bias_grad)));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Activation, LossKind, ModelConfig, TrainConfig};
    use crate::model::features::Features;

    #[test]
    fn the_books_net_has_these_products() {
        // conv 3->16 and 16->8 (3x3, padding 1) on 32x32 images, batch 64 (docs/conv.md).
        let cfg = ModelConfig {
            conv: vec![16, 8],
            ..ModelConfig::mlp(vec![512, 32, 2], Activation::Tanh, LossKind::CrossEntropy)
        };
        let f = Features::new(&cfg.conv, Activation::Tanh, 0);
        let opt = TrainConfig::preset("conv").unwrap().optimizer;
        let blocks: Vec<_> =
            f.blocks.iter().map(|b| ConvBlockSpec { conv: b.conv.clone(), pool: b.pool, images: 64 }).collect();
        let g0 = blocks[0].gemms(true, &opt);
        assert_eq!((g0.forward.m, g0.forward.n, g0.forward.k), (16, 64 * 32 * 32, 27));
        assert!(g0.input_grad.is_none());
        let w = g0.weight_grad;
        assert_eq!((w.m, w.n, w.k, w.a_trans, w.b_trans), (16, 27, 65_536, false, true));
        assert_eq!(g0.bias_grad.c_off, 16 * 27);
        assert_eq!((g0.bias_grad.m, g0.bias_grad.n, g0.bias_grad.k), (16, 1, 65_536));
        let g1 = blocks[1].gemms(false, &opt);
        let d = g1.input_grad.unwrap();
        assert_eq!((d.m, d.n, d.k, d.a_trans, d.lda), (144, 64 * 16 * 16, 8, true, 144));
        assert_eq!(g1.forward.a_off, 16 * 27 + 16);
        // One output tile: K is cut into 64 chunks of 1024 (16 x 1024 x 27 partial sums).
        let limits = super::super::Limits::default();
        assert_eq!(w.split(w.tile(&limits)), (64, 1024));
        assert_eq!(g0.bias_grad.split(g0.bias_grad.tile(&limits)), (64, 1024));
        assert_eq!(blocks[1].pooled_floats(), 64 * 8 * 8 * 8);
        assert_eq!(blocks[1].pooled_flat(), PlaneLayout { offset: 0, channel: 64, image: 512 });
        assert_eq!(blocks[0].pooled_cnhw(), PlaneLayout { offset: 0, channel: 64 * 256, image: 256 });
    }
}
