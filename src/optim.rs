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

    /// One update of `params` from `grads`.
    pub fn step(&mut self, params: &mut [f32], grads: &[f32]) {
        assert_eq!(params.len(), grads.len(), "parameter and gradient buffers differ in length");
        self.step += 1;
        let c = &self.config;
        let (lr, wd) = (c.lr, c.weight_decay);
        match c.kind {
            OptimizerKind::Sgd if c.momentum == 0.0 => {
                for (p, &g) in params.iter_mut().zip(grads) {
                    *p -= lr * (g + wd * *p);
                }
            }
            OptimizerKind::Sgd => {
                let (m, first, nesterov) = (c.momentum, self.step == 1, c.nesterov);
                for ((p, &g), buf) in params.iter_mut().zip(grads).zip(&mut self.state1) {
                    let g = g + wd * *p;
                    *buf = if first { g } else { m * *buf + g };
                    *p -= lr * if nesterov { g + m * *buf } else { *buf };
                }
            }
            OptimizerKind::Adam => {
                let (b1, b2, eps) = (c.beta1, c.beta2, c.eps);
                let t = self.step as i32;
                let step_size = lr / (1.0 - b1.powi(t));
                let bc2_sqrt = (1.0 - b2.powi(t)).sqrt();
                let moments = self.state1.iter_mut().zip(&mut self.state2);
                for ((p, &g), (m1, m2)) in params.iter_mut().zip(grads).zip(moments) {
                    let g = g + wd * *p;
                    // PyTorch: exp_avg.lerp_(grad, 1 - beta1)
                    *m1 += (1.0 - b1) * (g - *m1);
                    *m2 = b2 * *m2 + (1.0 - b2) * g * g;
                    *p -= step_size * *m1 / (m2.sqrt() / bc2_sqrt + eps);
                }
            }
        }
    }
}
