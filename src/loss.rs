//! Classification losses over a batch of `B` rows and `C` classes, averaged over the batch as
//! PyTorch's `reduction='mean'` does.
//!
//! * `NLLLoss` on log-probabilities `y`: `L = -1/B sum_i y[i, t_i]`, `dL/dy = -onehot(t) / B`.
//! * `CrossEntropyLoss` on logits `z`: `L = 1/B sum_i (logsumexp(z_i) - z[i, t_i])`, and the fused
//!   gradient `dL/dz = (softmax(z) - onehot(t)) / B`, which never forms the log-softmax.
//!
//! Both return the summed (not averaged) loss and the number of correct argmax predictions, so a
//! training loop can report exact epoch means over batches of unequal size; on request also each
//! row's term `l_i = -log p[i, t_i]` ([`RowLoss`]), whose sum is that summed loss.

use crate::config::LossKind;
use ndarray::{ArrayView1, ArrayView2, ArrayViewMut2, Axis};

/// Summed loss and correct predictions of one batch.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct BatchLoss {
    pub loss_sum: f64,
    pub correct: usize,
}

/// One row's loss `l = -log p[t]` (its term of the batch's summed loss) and whether its argmax
/// was the target.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct RowLoss {
    pub loss: f32,
    pub correct: bool,
}

impl RowLoss {
    /// The probability the model gave the true class: `p[t] = exp(-l)`.
    pub fn probability(&self) -> f32 {
        (-self.loss).exp()
    }
}

/// Index of the largest value (the first on ties, as `torch.max` returns).
pub fn argmax(row: ArrayView1<f32>) -> usize {
    let mut best = 0;
    for (j, &v) in row.iter().enumerate() {
        if v > row[best] {
            best = j;
        }
    }
    best
}

/// Loss and, when `grad` is given, the gradient with respect to the network output `out`
/// (log-probabilities for `Nll`, logits for `CrossEntropy`): `grad` receives `dL/dout` of the mean
/// over the batch.
pub fn loss_and_grad(
    kind: LossKind,
    out: ArrayView2<f32>,
    targets: &[u8],
    grad: Option<ArrayViewMut2<f32>>,
) -> BatchLoss {
    loss_rows_and_grad(kind, out, targets, grad, None)
}

/// [`loss_and_grad`], and when `rows` is given, each row's term in it (`rows` is cleared first).
pub fn loss_rows_and_grad(
    kind: LossKind,
    out: ArrayView2<f32>,
    targets: &[u8],
    mut grad: Option<ArrayViewMut2<f32>>,
    mut rows: Option<&mut Vec<RowLoss>>,
) -> BatchLoss {
    if let Some(r) = rows.as_mut() {
        r.clear();
    }
    let inv_b = 1.0 / out.nrows() as f32;
    let mut res = BatchLoss::default();
    for (i, (row, &t)) in out.axis_iter(Axis(0)).zip(targets).enumerate() {
        let t = t as usize;
        let correct = argmax(row) == t;
        if correct {
            res.correct += 1;
        }
        let mut g = grad.as_mut().map(|g| g.row_mut(i));
        let loss = match kind {
            LossKind::Nll => {
                if let Some(g) = &mut g {
                    g.fill(0.0);
                    g[t] = -inv_b;
                }
                -row[t]
            }
            LossKind::CrossEntropy => {
                let max = row.fold(f32::NEG_INFINITY, |m, &v| m.max(v));
                let sum: f32 = row.iter().map(|&v| (v - max).exp()).sum();
                if let Some(g) = &mut g {
                    for (j, (gj, &v)) in g.iter_mut().zip(row.iter()).enumerate() {
                        let p = (v - max).exp() / sum;
                        *gj = (p - if j == t { 1.0 } else { 0.0 }) * inv_b;
                    }
                }
                max + sum.ln() - row[t]
            }
        };
        res.loss_sum += loss as f64;
        if let Some(r) = rows.as_mut() {
            r.push(RowLoss { loss, correct });
        }
    }
    res
}
