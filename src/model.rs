//! The multilayer perceptron: PyTorch's `nn.Sequential` of `Linear`, activation, `Linear`, ...,
//! `Linear` and, with `NLLLoss`, a final `LogSoftmax`.
//!
//! For widths `[n0, n1, ..., nL]`, linear layer `l` maps `[B, n(l)]` to `[B, n(l+1)]` and sits at
//! index `2 l` of the sequence (so its tensors are named `2l.weight` and `2l.bias`, as in a
//! PyTorch `state_dict`). All parameters live in one flat buffer `params` (layer by layer, weight
//! then bias, PyTorch's `parameters()` order) with a twin `grads`; activations live in a workspace
//! sized once for the largest batch seen, so training allocates nothing per batch.

use crate::config::{Activation, LossKind, ModelConfig};
use crate::error::Result;
use crate::layers::{GradSink, Linear, activation, log_softmax_backward, log_softmax_forward};
use crate::loss::{BatchLoss, loss_and_grad};
use crate::optim::Optimizer;
use ndarray::{Array2, ArrayView2, s};
use rand::Rng;

#[derive(Clone)]
pub struct Mlp {
    pub config: ModelConfig,
    pub linears: Vec<Linear>,
    pub params: Vec<f32>,
    pub grads: Vec<f32>,
    /// Output of each linear layer after its activation (or log-softmax), `[capacity, width]`.
    outs: Vec<Array2<f32>>,
    /// Gradient of the loss with respect to each linear layer's output, same shapes.
    deltas: Vec<Array2<f32>>,
}

/// Shape only: the parameters are millions of numbers.
impl std::fmt::Debug for Mlp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mlp").field("config", &self.config).field("params", &self.params.len()).finish_non_exhaustive()
    }
}

impl Mlp {
    /// A model with PyTorch's default initialisation drawn from `rng`.
    pub fn new(config: &ModelConfig, rng: &mut impl Rng) -> Result<Mlp> {
        let mut m = Mlp::zeros(config)?;
        for l in &m.linears {
            l.init(&mut m.params, rng);
        }
        Ok(m)
    }

    /// A model with all parameters zero (to be filled from a checkpoint).
    pub fn zeros(config: &ModelConfig) -> Result<Mlp> {
        config.validate()?;
        let mut linears = Vec::new();
        let mut offset = 0;
        for w in config.layers.windows(2) {
            let l = Linear::new(w[0], w[1], offset);
            offset += l.num_params();
            linears.push(l);
        }
        Ok(Mlp {
            config: config.clone(),
            linears,
            params: vec![0.0; offset],
            grads: vec![0.0; offset],
            outs: Vec::new(),
            deltas: Vec::new(),
        })
    }

    pub fn num_params(&self) -> usize {
        self.params.len()
    }

    /// Grows the activation workspace to hold `rows` samples (never shrinks it).
    fn reserve(&mut self, rows: usize) {
        if self.outs.first().is_some_and(|o| o.nrows() >= rows) {
            return;
        }
        self.outs = self.linears.iter().map(|l| Array2::zeros((rows, l.out_features))).collect();
        self.deltas = self.outs.clone();
    }

    /// Runs the network on a batch `x: [B, inputs]` and returns the output `[B, classes]`:
    /// log-probabilities with `NLLLoss`, logits with `CrossEntropyLoss`.
    pub fn forward(&mut self, x: ArrayView2<f32>) -> ArrayView2<'_, f32> {
        let b = x.nrows();
        assert_eq!(x.ncols(), self.config.inputs(), "input width");
        self.reserve(b);
        let last = self.linears.len() - 1;
        for (l, lin) in self.linears.iter().enumerate() {
            let (before, after) = self.outs.split_at_mut(l);
            let input = if l == 0 { x } else { before[l - 1].slice(s![..b, ..]) };
            let mut y = after[0].slice_mut(s![..b, ..]);
            lin.forward(&self.params, input, y.view_mut());
            if l < last {
                match self.config.activation {
                    Activation::Tanh => activation::tanh_forward(y),
                    Activation::Relu => activation::relu_forward(y),
                }
            } else if self.config.loss == LossKind::Nll {
                log_softmax_forward(y);
            }
        }
        self.outs[last].slice(s![..b, ..])
    }

    /// Forward and backward on one batch: fills `grads` with the gradient of the mean loss and
    /// returns the summed loss and correct count.
    pub fn loss_and_backward(&mut self, x: ArrayView2<f32>, targets: &[u8]) -> BatchLoss {
        self.backward_into(x, targets, GradSink::Store)
    }

    fn backward_into(&mut self, x: ArrayView2<f32>, targets: &[u8], sink: GradSink) -> BatchLoss {
        let b = x.nrows();
        assert_eq!(targets.len(), b, "one target per row");
        self.forward(x);
        let last = self.linears.len() - 1;
        let out = self.outs[last].slice(s![..b, ..]);
        let mut d = self.deltas[last].slice_mut(s![..b, ..]);
        let res = loss_and_grad(self.config.loss, out, targets, Some(d.view_mut()));
        if self.config.loss == LossKind::Nll {
            log_softmax_backward(out, d);
        }
        for l in (0..=last).rev() {
            let input = if l == 0 { x } else { self.outs[l - 1].slice(s![..b, ..]) };
            let (before, after) = self.deltas.split_at_mut(l);
            let dy = after[0].slice(s![..b, ..]);
            // The first layer's input is the data: its gradient is never needed.
            let dx = before.last_mut().map(|d| d.slice_mut(s![..b, ..]));
            self.linears[l].backward(&mut self.params, &mut self.grads, sink, input, dy, dx);
            if l > 0 {
                let y = self.outs[l - 1].slice(s![..b, ..]);
                let dx = self.deltas[l - 1].slice_mut(s![..b, ..]);
                match self.config.activation {
                    Activation::Tanh => activation::tanh_backward(y, dx),
                    Activation::Relu => activation::relu_backward(y, dx),
                }
            }
        }
        res
    }

    /// One optimisation step on a batch.
    pub fn train_batch(&mut self, x: ArrayView2<f32>, targets: &[u8], opt: &mut Optimizer) -> BatchLoss {
        if let Some(step) = opt.fused_step() {
            // Plain SGD (the lecture's optimizer) is applied inside the backward pass; the weight
            // gradients are then not stored in `grads`.
            return self.backward_into(x, targets, GradSink::Sgd(step));
        }
        let res = self.loss_and_backward(x, targets);
        opt.step(&mut self.params, &self.grads);
        res
    }

    /// Class probabilities `[B, classes]` for a batch (softmax of the output).
    pub fn predict_proba(&mut self, x: ArrayView2<f32>) -> Array2<f32> {
        let nll = self.config.loss == LossKind::Nll;
        let mut out = self.forward(x).to_owned();
        for mut row in out.rows_mut() {
            if nll {
                row.mapv_inplace(f32::exp);
            } else {
                let p = crate::layers::softmax(row.as_slice().expect("row-major output"));
                row.assign(&ndarray::ArrayView1::from(&p));
            }
        }
        out
    }
}
