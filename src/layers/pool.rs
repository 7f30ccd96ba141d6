//! `MaxPool2d(k)`, PyTorch's `nn.MaxPool2d(k)` (stride `k`, no padding, floor mode), on planes.
//!
//! Shapes: `P` planes of `H x W` (any number of channels and images; each plane contiguous) give
//! `P` planes of `H' x W'` with `H' = H / k`, `W' = W / k` (floor):
//!
//! * forward `y[q, a, b] = max over 0 <= i, j < k of x[q, a k + i, b k + j]`, and the position of
//!   that maximum, `arg = i k + j`, kept for the backward pass. Ties and NaN go as in PyTorch's CPU
//!   kernel: the first maximum in row-major order wins, and a NaN wins over any number (the last NaN);
//! * backward: `dx[q, a k + i, b k + j] = dy[q, a, b]` at the kept position, 0 elsewhere (rows
//!   and columns that floor mode drops get 0).

use super::par::{par_chunks2_mut, par_zip_chunks};

/// A max pooling of `k x k` windows with stride `k` over planes of `input = (H, W)`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MaxPool2d {
    pub kernel: usize,
    pub input: (usize, usize),
}

impl MaxPool2d {
    pub fn new(kernel: usize, input: (usize, usize)) -> MaxPool2d {
        assert!((1..=16).contains(&kernel) && input.0 >= kernel && input.1 >= kernel, "pool window");
        MaxPool2d { kernel, input }
    }

    /// Output plane size `(H', W')`.
    pub fn output(&self) -> (usize, usize) {
        (self.input.0 / self.kernel, self.input.1 / self.kernel)
    }

    /// `y` (`P` planes `H' x W'`) and `arg` (one per output: `i k + j`) from `x` (`P` planes `H x W`).
    pub fn forward(&self, x: &[f32], y: &mut [f32], arg: &mut [u8]) {
        let (h, w) = self.input;
        let (oh, ow) = self.output();
        let planes = x.len() / (h * w);
        assert!(y.len() == planes * oh * ow && arg.len() == y.len(), "pool buffers");
        par_chunks2_mut(y, oh * ow, arg, oh * ow, |q, yq, aq| self.forward_plane(&x[q * h * w..][..h * w], yq, aq));
    }

    /// [`MaxPool2d::forward`] of one plane: `yq`, `aq` (`H' x W'`) from `xq` (`H x W`).
    pub fn forward_plane(&self, xq: &[f32], yq: &mut [f32], aq: &mut [u8]) {
        let w = self.input.1;
        let (oh, ow) = self.output();
        let k = self.kernel;
        if k == 2 {
            return pool2(xq, w, oh, ow, yq, aq);
        }
        for a in 0..oh {
            let rows: [&[f32]; 16] = std::array::from_fn(|i| if i < k { &xq[(a * k + i) * w..][..w] } else { &[] });
            for b in 0..ow {
                let (mut best, mut at) = (f32::NEG_INFINITY, 0u8);
                for (i, row) in rows[..k].iter().enumerate() {
                    for (j, &v) in row[b * k..][..k].iter().enumerate() {
                        // PyTorch's CPU kernel: `if (val > maxval || isnan(val))`, as selects
                        // (no branch: the comparisons are data-dependent coin flips).
                        let take = v > best || v.is_nan();
                        best = if take { v } else { best };
                        at = if take { (i * k + j) as u8 } else { at };
                    }
                }
                yq[a * ow + b] = best;
                aq[a * ow + b] = at;
            }
        }
    }

    /// `dx` (`P` planes `H x W`, overwritten) from `dy` (`P` planes `H' x W'`) and the forward
    /// pass's `arg`.
    pub fn backward(&self, dy: &[f32], arg: &[u8], dx: &mut [f32]) {
        let (h, w) = self.input;
        let (oh, ow) = self.output();
        let out_plane = oh * ow;
        assert!(dy.len() * h * w == dx.len() * out_plane && arg.len() == dy.len(), "pool gradient buffers");
        par_zip_chunks(dx, h * w, dy, out_plane, |q, dxq, dyq| {
            self.backward_plane(dyq, &arg[q * out_plane..][..out_plane], dxq)
        });
    }

    /// [`MaxPool2d::backward`] of one plane: `dxq` (`H x W`, overwritten) from `dyq` and `aq`
    /// (`H' x W'`).
    pub fn backward_plane(&self, dyq: &[f32], aq: &[u8], dxq: &mut [f32]) {
        let w = self.input.1;
        let (oh, ow) = self.output();
        let k = self.kernel;
        dxq.fill(0.0);
        for a in 0..oh {
            for b in 0..ow {
                let ij = aq[a * ow + b] as usize;
                // `k` is 2 in every model here: shifts rather than a division per value.
                let (i, j) = if k == 2 { (ij >> 1, ij & 1) } else { (ij / k, ij % k) };
                dxq[(a * k + i) * w + b * k + j] = dyq[a * ow + b];
            }
        }
    }
}

/// The 2x2 window (every model here) unrolled, as selects in PyTorch's order: the loop has no
/// branch and vectorises.
fn pool2(xq: &[f32], w: usize, oh: usize, ow: usize, yq: &mut [f32], aq: &mut [u8]) {
    for a in 0..oh {
        let r0 = &xq[2 * a * w..][..2 * ow];
        let r1 = &xq[(2 * a + 1) * w..][..2 * ow];
        let (yrow, arow) = (&mut yq[a * ow..][..ow], &mut aq[a * ow..][..ow]);
        for b in 0..ow {
            // Starting from the first value equals starting from -inf: it is taken unless it is
            // -inf, which then stays the maximum at position 0 all the same.
            let (mut best, mut at) = (r0[2 * b], 0u8);
            for (v, i) in [(r0[2 * b + 1], 1u8), (r1[2 * b], 2), (r1[2 * b + 1], 3)] {
                let take = v > best || v.is_nan();
                best = if take { v } else { best };
                at = if take { i } else { at };
            }
            yrow[b] = best;
            arow[b] = at;
        }
    }
}
