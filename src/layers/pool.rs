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
        let k = self.kernel;
        let planes = x.len() / (h * w);
        assert!(y.len() == planes * oh * ow && arg.len() == y.len(), "pool buffers");
        par_chunks2_mut(y, oh * ow, arg, oh * ow, |q, yq, aq| {
            let xq = &x[q * h * w..][..h * w];
            for a in 0..oh {
                let rows: [&[f32]; 16] = std::array::from_fn(|i| if i < k { &xq[(a * k + i) * w..][..w] } else { &[] });
                for b in 0..ow {
                    let (mut best, mut at) = (f32::NEG_INFINITY, 0);
                    for (i, row) in rows[..k].iter().enumerate() {
                        for (j, &v) in row[b * k..][..k].iter().enumerate() {
                            // PyTorch's CPU kernel: `if (val > maxval || isnan(val))`.
                            if v > best || v.is_nan() {
                                (best, at) = (v, i * k + j);
                            }
                        }
                    }
                    yq[a * ow + b] = best;
                    aq[a * ow + b] = at as u8;
                }
            }
        });
    }

    /// `dx` (`P` planes `H x W`, overwritten) from `dy` (`P` planes `H' x W'`) and the forward
    /// pass's `arg`.
    pub fn backward(&self, dy: &[f32], arg: &[u8], dx: &mut [f32]) {
        let (h, w) = self.input;
        let (oh, ow) = self.output();
        let k = self.kernel;
        let out_plane = oh * ow;
        assert!(dy.len() * h * w == dx.len() * out_plane && arg.len() == dy.len(), "pool gradient buffers");
        par_zip_chunks(dx, h * w, dy, out_plane, |q, dxq, dyq| {
            dxq.fill(0.0);
            let aq = &arg[q * out_plane..][..out_plane];
            for a in 0..oh {
                for b in 0..ow {
                    let ij = aq[a * ow + b] as usize;
                    // `k` is 2 in every model here: shifts rather than a division per value.
                    let (i, j) = if k == 2 { (ij >> 1, ij & 1) } else { (ij / k, ij % k) };
                    dxq[(a * k + i) * w + b * k + j] = dyq[a * ow + b];
                }
            }
        });
    }
}
