//! Optimizers over the model's flat parameter and gradient buffers, with PyTorch's update rules
//! (`torch.optim.SGD` and `torch.optim.Adam`, `maximize=False`, `dampening=0`).
//!
//! SGD, per parameter `p` with gradient `g`, step `t = 1, 2, ...`:
//! `g += wd p`; with momentum `m`: `buf = g` at `t = 1`, else `buf = m buf + g`;
//! `g = g + m buf` (Nesterov) or `g = buf`; then `p -= lr g`.
//!
//! Adam: `g += wd p`; `m1 = m1 + (1 - b1) (g - m1)`; `m2 = b2 m2 + (1 - b2) g^2`;
//! `p -= (lr / (1 - b1^t)) m1 / (sqrt(m2) / sqrt(1 - b2^t) + eps)`.

use crate::config::{OptimizerConfig, OptimizerKind};
use crate::update::SgdStep;

/// An optimizer and its state: one or two buffers the size of the parameters, and the step count.
#[derive(Clone, Debug, PartialEq)]
pub struct Optimizer {
    pub config: OptimizerConfig,
    /// Completed steps.
    pub step: u64,
    /// SGD momentum buffer or Adam first moment; empty when unused.
    pub state1: Vec<f32>,
    /// Adam second moment; empty when unused.
    pub state2: Vec<f32>,
}

impl Optimizer {
    pub fn new(config: OptimizerConfig, num_params: usize) -> Self {
        let (n1, n2) = match config.kind {
            OptimizerKind::Sgd if config.momentum > 0.0 => (num_params, 0),
            OptimizerKind::Sgd => (0, 0),
            OptimizerKind::Adam => (num_params, num_params),
        };
        Optimizer { config, step: 0, state1: vec![0.0; n1], state2: vec![0.0; n2] }
    }

    /// For SGD without momentum, this step, for the backward pass to apply itself (counted here
    /// as taken); `None` for optimizers that need the gradients stored.
    pub fn fused_step(&mut self) -> Option<SgdStep> {
        let c = &self.config;
        if c.kind != OptimizerKind::Sgd || c.momentum != 0.0 {
            return None;
        }
        self.step += 1;
        Some(SgdStep { lr: c.lr, weight_decay: c.weight_decay })
    }

    /// One update of `params` from `grads`, element-wise in chunks (on the rayon pool with the
    /// `parallel` feature; the result does not depend on the thread count).
    pub fn step(&mut self, params: &mut [f32], grads: &[f32]) {
        assert_eq!(params.len(), grads.len(), "parameter and gradient buffers differ in length");
        self.step += 1;
        let c = &self.config;
        let (lr, wd) = (c.lr, c.weight_decay);
        match c.kind {
            OptimizerKind::Sgd if c.momentum == 0.0 => {
                let step = SgdStep { lr, weight_decay: wd };
                chunks!(mut params).zip(chunks!(grads)).for_each(|(p, g)| {
                    for (p, &g) in p.iter_mut().zip(g) {
                        step.apply(p, g);
                    }
                });
            }
            OptimizerKind::Sgd => {
                let (m, first, nesterov) = (c.momentum, self.step == 1, c.nesterov);
                chunks!(mut params).zip(chunks!(grads)).zip(chunks!(mut self.state1)).for_each(|((p, g), buf)| {
                    for ((p, &g), buf) in p.iter_mut().zip(g).zip(buf) {
                        let g = g + wd * *p;
                        *buf = if first { g } else { m * *buf + g };
                        *p -= lr * if nesterov { g + m * *buf } else { *buf };
                    }
                });
            }
            OptimizerKind::Adam => {
                let (b1, b2, eps) = (c.beta1, c.beta2, c.eps);
                let t = self.step as i32;
                let step_size = lr / (1.0 - b1.powi(t));
                let bc2_sqrt = (1.0 - b2.powi(t)).sqrt();
                let moments = chunks!(mut self.state1).zip(chunks!(mut self.state2));
                chunks!(mut params).zip(chunks!(grads)).zip(moments).for_each(|((p, g), (m1, m2))| {
                    for ((p, &g), (m1, m2)) in p.iter_mut().zip(g).zip(m1.iter_mut().zip(m2)) {
                        let g = g + wd * *p;
                        // PyTorch: exp_avg.lerp_(grad, 1 - beta1)
                        *m1 += (1.0 - b1) * (g - *m1);
                        *m2 = b2 * *m2 + (1.0 - b2) * g * g;
                        *p -= step_size * *m1 / (m2.sqrt() / bc2_sqrt + eps);
                    }
                });
            }
        }
    }
}

/// Elements per chunk of the update: large enough to amortise a task, small enough to balance.
const CHUNK: usize = 1 << 15;

#[cfg(feature = "parallel")]
use rayon::prelude::*;

/// Chunks of a buffer, `chunks!(v)` or `chunks!(mut v)`: a parallel iterator with the `parallel`
/// feature, a plain one without.
#[cfg(feature = "parallel")]
macro_rules! chunks {
    (mut $v:expr) => {
        $v.par_chunks_mut(CHUNK)
    };
    ($v:expr) => {
        $v.par_chunks(CHUNK)
    };
}
#[cfg(not(feature = "parallel"))]
macro_rules! chunks {
    (mut $v:expr) => {
        $v.chunks_mut(CHUNK)
    };
    ($v:expr) => {
        $v.chunks(CHUNK)
    };
}
use chunks;
