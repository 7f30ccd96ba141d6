//! The convolutional front of a model on the GPU ([`GpuConv`]): each block's buffers and the
//! kernels bound to them, for the CPU's [`Features`] (the book's `Net`: `Conv2d -> tanh ->
//! MaxPool2d(2)` twice, then the flatten), computing the CPU's maths in the CPU's order.
//!
//! Per block, for `images` images at once (the training batch; evaluation reuses the buffers),
//! with the shapes of [`ConvBlockSpec`] (`K = C_in k k`, `N = images H' W'`):
//!
//! * forward: im2col `col: [K, N]` from the gathered batch (NCHW) or the previous block's pooled
//!   output (CNHW); `y = W col` (GEMM, no bias); `pooled = act(maxpool(y) + b)` and the argmax,
//!   the last block writing straight into `flat: [images, C H'' W'']`, the first linear layer's
//!   input (so the flatten costs nothing);
//! * backward, from `dflat = dz W_fc1` (the first linear layer's input-gradient GEMM, stored
//!   without the activation's derivative) and block by block from the last: `dy = dpooled
//!   act'(pooled)` at the argmax (into `y`'s buffer, which the backward pass no longer needs, as
//!   the CPU reuses it), then `dcol = W^T dy` and col2im into the previous block's `dpooled`
//!   (not for the first block), then `dW = dy col^T` and `db = dy 1` (a column of ones), stored
//!   or applied as plain SGD: after the input gradient, which must read the weights before the
//!   step.

use super::kernels::{ConvBlockSpec, ConvCall, ConvGemms, GemmCall, GemmSpec, Kernels, PlaneLayout};
use crate::config::OptimizerConfig;
use crate::error::Result;
use crate::layers::conv::Planes;
use crate::model::features::Features;
use web_sys::{GpuBuffer, GpuComputePassEncoder};

/// The specs and GEMMs of each block of `features` on `images` images.
pub(super) fn block_specs(
    features: &Features,
    images: u32,
    optimizer: &OptimizerConfig,
) -> Vec<(ConvBlockSpec, ConvGemms)> {
    features
        .blocks
        .iter()
        .enumerate()
        .map(|(i, b)| {
            let spec = ConvBlockSpec { conv: b.conv.clone(), pool: b.pool, images };
            let gemms = spec.gemms(i == 0, optimizer);
            (spec, gemms)
        })
        .collect()
}

/// Every GEMM of the blocks (for sizing the split-K scratch).
pub(super) fn gemm_specs(blocks: &[(ConvBlockSpec, ConvGemms)]) -> Vec<GemmSpec> {
    blocks
        .iter()
        .flat_map(|(_, g)| [Some(g.forward), g.input_grad, Some(g.weight_grad), Some(g.bias_grad)])
        .flatten()
        .collect()
}

struct BlockCalls {
    im2col: ConvCall,
    forward: GemmCall,
    pool: ConvCall,
    pool_backward: ConvCall,
    /// `dcol = W^T dy`, then col2im into the previous block's pooled gradient.
    input_grad: Option<(GemmCall, ConvCall)>,
    weight_grad: GemmCall,
    bias_grad: GemmCall,
}

/// The blocks' buffers and calls, and the flattened features with their gradient.
pub(super) struct GpuConv {
    blocks: Vec<BlockCalls>,
    /// `[images, flat]`: the first linear layer's input.
    pub(super) flat: GpuBuffer,
    /// Its gradient, `dz W` of the first linear layer (the activation's derivative not applied).
    pub(super) dflat: GpuBuffer,
}

/// What [`GpuConv::build`] binds besides the blocks' own buffers.
pub(super) struct ConvInputs<'a> {
    /// The gathered batch `[images, 3072]`.
    pub x: &'a GpuBuffer,
    pub params: &'a GpuBuffer,
    /// Where weight gradients go: the gradient buffer, or the parameters for plain SGD.
    pub grads: &'a GpuBuffer,
    pub scratch: &'a GpuBuffer,
}

impl GpuConv {
    /// Allocates each block's buffers through `buf` (label, bytes) and binds the kernels.
    pub(super) fn build(
        k: &Kernels,
        features: &Features,
        blocks: &[(ConvBlockSpec, ConvGemms)],
        io: ConvInputs,
        buf: &mut dyn FnMut(&str, u64) -> Result<GpuBuffer>,
    ) -> Result<GpuConv> {
        let act = features.activation;
        let last = blocks.len() - 1;
        // Per block: pooled output and its gradient (the last block's are flat and dflat).
        let mut pooled = Vec::new();
        let mut dpooled = Vec::new();
        for (i, (b, _)) in blocks.iter().enumerate() {
            let (what, dwhat) = if i == last {
                ("the flattened features", "the flattened features' gradient")
            } else {
                ("a pooled convolution output", "a pooled output's gradient")
            };
            pooled.push(buf(what, b.pooled_floats() * 4)?);
            dpooled.push(buf(dwhat, b.pooled_floats() * 4)?);
        }
        // The column of ones the bias gradients multiply by.
        let most = blocks.iter().map(|(b, _)| b.positions() as usize).max().unwrap_or(0);
        let ones = buf("a column of ones", most as u64 * 4)?;
        k.gpu().write(&ones, 0, &super::model::f32_bytes(&vec![1.0; most]))?;
        let mut calls = Vec::new();
        for (i, (b, g)) in blocks.iter().enumerate() {
            let col = buf("an im2col matrix", b.col_floats() * 4)?;
            let y = buf("a convolution output", b.out_floats() * 4)?;
            let arg = buf("a pooling's choices", b.pooled_floats() * 4)?;
            let (src, input): (&GpuBuffer, PlaneLayout) = if i == 0 {
                let (c, (h, w)) = (b.conv.in_channels, b.conv.input);
                (io.x, Planes::nchw(c, h * w).into())
            } else {
                (&pooled[i - 1], b.input_cnhw())
            };
            let layout = if i == last { b.pooled_flat() } else { b.pooled_cnhw() };
            let input_grad = match &g.input_grad {
                Some(spec) => {
                    let dcol = buf("an im2col gradient", b.col_floats() * 4)?;
                    let gemm = k.gemm(spec, [io.params, &y, &dcol], None, io.scratch)?;
                    Some((gemm, k.col2im(b, b.input_cnhw(), [&dcol, &dpooled[i - 1]])?))
                }
                None => None,
            };
            calls.push(BlockCalls {
                im2col: k.im2col(b, input, [src, &col])?,
                forward: k.gemm(&g.forward, [io.params, &col, &y], None, io.scratch)?,
                pool: k.pool_forward(b, act, layout, [&y, io.params, &pooled[i], &arg])?,
                pool_backward: k.pool_backward(b, act, layout, [&dpooled[i], &pooled[i], &arg, &y])?,
                input_grad,
                weight_grad: k.gemm(&g.weight_grad, [&y, &col, io.grads], None, io.scratch)?,
                bias_grad: k.gemm(&g.bias_grad, [&y, &ones, io.grads], None, io.scratch)?,
            });
        }
        Ok(GpuConv { blocks: calls, flat: pooled[last].clone(), dflat: dpooled[last].clone() })
    }

    /// Dispatches per training batch: forward and backward of every block.
    pub(super) fn dispatches_per_batch(&self) -> usize {
        self.blocks
            .iter()
            .map(|b| {
                3 + b.forward.dispatches()
                    + b.input_grad.as_ref().map_or(0, |(g, _)| g.dispatches() + 1)
                    + b.weight_grad.dispatches()
                    + b.bias_grad.dispatches()
            })
            .sum()
    }

    /// The blocks' forward pass, from the gathered batch to `flat`.
    pub(super) fn encode_forward(&self, pass: &GpuComputePassEncoder) {
        for b in &self.blocks {
            b.im2col.encode(pass);
            b.forward.encode(pass);
            b.pool.encode(pass);
        }
    }

    /// The blocks' backward pass, from `dflat` (after the first linear layer's input gradient).
    pub(super) fn encode_backward(&self, pass: &GpuComputePassEncoder) {
        for b in self.blocks.iter().rev() {
            b.pool_backward.encode(pass);
            if let Some((gemm, col2im)) = &b.input_grad {
                gemm.encode(pass);
                col2im.encode(pass);
            }
            b.weight_grad.encode(pass);
            b.bias_grad.encode(pass);
        }
    }
}
