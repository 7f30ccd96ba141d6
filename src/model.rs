//! The model: PyTorch's `nn.Sequential` of `Linear`, activation, `Linear`, ..., `Linear` and,
//! with `NLLLoss`, a final `LogSoftmax` (the lecture's MLP); optionally after a convolutional
//! front ([`features`]: `Conv2d -> activation -> MaxPool2d(2)` blocks and the flatten, the book's
//! `Net` of chapter 8), whose parameters come first in the flat buffers, as in PyTorch's
//! `parameters()`.
//!
//! For widths `[n0, n1, ..., nL]`, linear layer `l` maps `[B, n(l)]` to `[B, n(l+1)]` and sits at
//! index `2 l` of the sequence (so its tensors are named `2l.weight` and `2l.bias`, as in a
//! PyTorch `state_dict`). All parameters live in one flat buffer `params` (layer by layer, weight
//! then bias, PyTorch's `parameters()` order) with a twin `grads`; activations live in a workspace
//! sized once for the largest batch seen, so training allocates nothing per batch.
//!
//! [`Mlp::input_gradient`] runs the same backward pass with the first layer's input gradient
//! switched on (`dx = dy W`, which training skips since its input is the data): the gradient of
//! `log p[class]` with respect to the input, for saliency maps.

pub mod features;

use crate::config::{Activation, LossKind, ModelConfig};
use crate::error::Result;
use crate::layers::{GradSink, Linear, activation, log_softmax_backward, log_softmax_forward};
use crate::loss::{BatchLoss, RowLoss, loss_rows_and_grad};
use crate::optim::Optimizer;
use features::Features;
use ndarray::{Array2, ArrayView2, ArrayViewMut2, s};
use rand::Rng;

#[derive(Clone)]
pub struct Mlp {
    pub config: ModelConfig,
    /// The convolution blocks before the linear layers (`None` for an MLP).
    pub features: Option<Features>,
    pub linears: Vec<Linear>,
    pub params: Vec<f32>,
    pub grads: Vec<f32>,
    /// Output of each linear layer after its activation (or log-softmax), `[capacity, width]`.
    outs: Vec<Array2<f32>>,
    /// Gradient of the loss with respect to each linear layer's output, same shapes.
    deltas: Vec<Array2<f32>>,
    /// Per-row losses of the last trained batch.
    rows: Vec<RowLoss>,
    /// With convolutions: the flattened features `[capacity, flat]` (the first linear layer's
    /// input) and their gradient.
    flat: Array2<f32>,
    dflat: Array2<f32>,
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
        if let Some(f) = &m.features {
            f.init(&mut m.params, rng);
        }
        for l in &m.linears {
            l.init(&mut m.params, rng);
        }
        Ok(m)
    }

    /// A model with all parameters zero (to be filled from a checkpoint).
    pub fn zeros(config: &ModelConfig) -> Result<Mlp> {
        config.validate()?;
        let features = config.is_conv().then(|| Features::new(&config.conv, config.activation, 0));
        let mut linears = Vec::new();
        let mut offset = features.as_ref().map_or(0, Features::num_params);
        for w in config.layers.windows(2) {
            let l = Linear::new(w[0], w[1], offset);
            offset += l.num_params();
            linears.push(l);
        }
        Ok(Mlp {
            config: config.clone(),
            features,
            linears,
            params: vec![0.0; offset],
            grads: vec![0.0; offset],
            outs: Vec::new(),
            deltas: Vec::new(),
            rows: Vec::new(),
            flat: Array2::zeros((0, 0)),
            dflat: Array2::zeros((0, 0)),
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
        if self.features.is_some() {
            self.flat = Array2::zeros((rows, self.linears[0].in_features));
            self.dflat = self.flat.clone();
        }
    }

    /// Runs the network on a batch `x: [B, inputs]` and returns the output `[B, classes]`:
    /// log-probabilities with `NLLLoss`, logits with `CrossEntropyLoss`.
    pub fn forward(&mut self, x: ArrayView2<f32>) -> ArrayView2<'_, f32> {
        self.forward_keeping(x, false)
    }

    /// [`Mlp::forward`]; with `keep`, the convolutions keep what their backward pass needs for
    /// the whole batch (else they go through it in small chunks).
    fn forward_keeping(&mut self, x: ArrayView2<f32>, keep: bool) -> ArrayView2<'_, f32> {
        let b = x.nrows();
        assert_eq!(x.ncols(), self.config.inputs(), "input width");
        self.reserve(b);
        if let Some(f) = &mut self.features {
            let out = self.flat.slice_mut(s![..b, ..]);
            if keep { f.forward_batch(&self.params, x, out) } else { f.forward(&self.params, x, out) }
        }
        self.linears_forward(x, b)
    }

    /// The fully connected part of [`Mlp::forward`], on `x` (an MLP) or on the flattened
    /// features already in `flat` (a convolutional model).
    fn linears_forward(&mut self, x: ArrayView2<'_, f32>, b: usize) -> ArrayView2<'_, f32> {
        let x = if self.features.is_some() { self.flat.slice(s![..b, ..]) } else { x };
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
        self.forward_keeping(x, true);
        let last = self.linears.len() - 1;
        let out = self.outs[last].slice(s![..b, ..]);
        let mut d = self.deltas[last].slice_mut(s![..b, ..]);
        let res = loss_rows_and_grad(self.config.loss, out, targets, Some(d.view_mut()), Some(&mut self.rows));
        if self.config.loss == LossKind::Nll {
            log_softmax_backward(out, d);
        }
        self.backward_layers(x, sink, None);
        res
    }

    /// Each row's loss and correctness in the last batch trained (forward pass of
    /// [`Mlp::train_batch`] or [`Mlp::loss_and_backward`]), in the batch's order.
    pub fn row_losses(&self) -> &[RowLoss] {
        &self.rows
    }

    /// Back-propagates `deltas[last]` (the gradient at the network's output, already set) through
    /// every layer. The first layer's input gradient goes to `input_grad` when given (saliency);
    /// training never asks for it, since that input is the data.
    fn backward_layers(&mut self, x: ArrayView2<f32>, sink: GradSink, mut input_grad: Option<ArrayViewMut2<f32>>) {
        let b = x.nrows();
        let last = self.linears.len() - 1;
        let conv = self.features.is_some();
        for l in (0..=last).rev() {
            let input = match l {
                0 if conv => self.flat.slice(s![..b, ..]),
                0 => x,
                _ => self.outs[l - 1].slice(s![..b, ..]),
            };
            let (before, after) = self.deltas.split_at_mut(l);
            let dy = after[0].slice(s![..b, ..]);
            let dx = match before.last_mut() {
                Some(d) => Some(d.slice_mut(s![..b, ..])),
                None if conv => Some(self.dflat.slice_mut(s![..b, ..])),
                None => input_grad.take(),
            };
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
        if let Some(f) = &mut self.features {
            // The convolutions' gradients always go to the buffer (18 k values for the book's
            // `Net`): a plain SGD step is then applied to their range here.
            let dx = input_grad.as_mut().map(|d| d.as_slice_mut().expect("standard layout input gradient"));
            f.backward(&self.params, &mut self.grads, self.dflat.slice(s![..b, ..]), dx);
            if let GradSink::Sgd(step) = sink {
                let range = f.param_range();
                for (p, &g) in self.params[range.clone()].iter_mut().zip(&self.grads[range]) {
                    step.apply(p, g);
                }
            }
        }
    }

    /// The gradient of `sum_i log p[i, classes[i]]` with respect to the input rows `x: [B, inputs]`,
    /// written to `dx: [B, inputs]`; returns the log-probabilities `[B, classes]`. At the output
    /// `d log p[c] / dz = onehot(c) - softmax(z)` for the logits `z` (with `NLLLoss` this is what
    /// the `LogSoftmax` backward gives from `onehot(c)`), then the ordinary backward pass, the
    /// first layer included. The parameters do not change; `grads` is used as scratch (it is
    /// rewritten by every training step).
    pub fn input_gradient(&mut self, x: ArrayView2<f32>, classes: &[usize], dx: ArrayViewMut2<f32>) -> Array2<f32> {
        let b = x.nrows();
        assert_eq!(classes.len(), b, "one class per row");
        assert_eq!(dx.dim(), x.dim(), "input gradient shape");
        let nll = self.config.loss == LossKind::Nll;
        let mut logp = self.forward(x).to_owned();
        if !nll {
            log_softmax_forward(logp.view_mut());
        }
        let last = self.linears.len() - 1;
        let mut d = self.deltas[last].slice_mut(s![..b, ..]);
        for ((mut d, lp), &c) in d.rows_mut().into_iter().zip(logp.rows()).zip(classes) {
            for (j, (d, &lp)) in d.iter_mut().zip(lp.iter()).enumerate() {
                *d = if j == c { 1.0 } else { 0.0 } - lp.exp();
            }
        }
        self.backward_layers(x, GradSink::Store, Some(dx));
        logp
    }

    /// The first layer's response to the images `x: [B, inputs]`, one row per image: for an MLP
    /// its first hidden layer after the activation (`[B, n1]`); with convolutions the first
    /// block's feature maps `act(conv1(x) + b)` before the pooling (`[B, c1 * 32 * 32]`, `[C, H, W]`).
    /// Returns the output (as [`Mlp::forward`]) too, from the same pass for an MLP.
    pub fn forward_and_response(&mut self, x: ArrayView2<f32>) -> (Array2<f32>, Array2<f32>) {
        let b = x.nrows();
        if self.features.is_none() {
            let out = self.forward(x).to_owned();
            return (out, self.outs[0].slice(s![..b, ..]).to_owned());
        }
        // One pass of the convolutions gives both conv1's maps and the features the linear
        // layers read.
        assert_eq!(x.ncols(), self.config.inputs(), "input width");
        self.reserve(b);
        let f = self.features.as_mut().expect("a convolutional model");
        let mut maps = f.maps(&self.params, x, 0, Some(self.flat.slice_mut(s![..b, ..])));
        let out = self.linears_forward(x, b).to_owned();
        (out, maps.swap_remove(0))
    }

    /// The feature maps of every convolution block before its pooling, `[B, c * side * side]`
    /// each ([`features::Features::maps`]); empty for an MLP.
    pub fn feature_maps(&mut self, x: ArrayView2<f32>) -> Vec<Array2<f32>> {
        match &mut self.features {
            Some(f) => {
                let last = f.blocks.len() - 1;
                f.maps(&self.params, x, last, None)
            }
            None => Vec::new(),
        }
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
