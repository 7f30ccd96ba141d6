//! The plain SGD step on one parameter, `p -= lr (g + wd p)` (PyTorch's `torch.optim.SGD` without
//! momentum), where `g` is the parameter's gradient, `lr` the learning rate and `wd` the weight
//! decay.
//!
//! It sits below both of its users: the optimizer ([`crate::optim`]) applies it over the gradient
//! buffer, and a linear layer's backward pass ([`crate::layers::Linear::backward`]) applies it
//! where the gradient is computed (fused SGD, the lecture's optimizer), so that neither of the
//! two needs the other.

/// One plain SGD step: its learning rate and weight decay.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SgdStep {
    pub lr: f32,
    pub weight_decay: f32,
}

impl SgdStep {
    /// `p -= lr (g + wd p)`.
    #[inline(always)]
    pub fn apply(self, p: &mut f32, g: f32) {
        *p -= self.lr * (g + self.weight_decay * *p);
    }
}
