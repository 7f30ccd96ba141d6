//! Hard examples: what became of each training image, epoch after epoch.
//!
//! Training's forward pass already computes every image's loss `l = -log p[t]` (`t` its true
//! class, so the probability the model gave it is `p[t] = exp(-l)`) and whether the argmax was
//! `t` ([`crate::loss::RowLoss`]); the trainer hands those of each batch, with the batch's indices
//! in the training split, to [`ExampleLog::record`]. Nothing is computed twice.
//!
//! Per image the log keeps the last loss and correctness, how many times it was presented, the
//! epoch it was first classified correctly, its forgetting events, and one bit per epoch
//! (presented, correct), which is the whole history the lists need: 22 bytes per image plus
//! 2 bits per image and epoch (10,000 images, 100 epochs: 470 KB).
//!
//! *Timing.* Batches are shuffled, and the weights change after every batch: the loss recorded for
//! an image in epoch `e` is the one its own batch's forward pass computed with the weights of that
//! moment of epoch `e` (before that batch's update), not a re-evaluation at the end of the epoch.
//! An epoch's records become visible when it ends ([`ExampleLog::commit_epoch`]); an epoch that
//! diverges or is abandoned is dropped ([`ExampleLog::discard_epoch`]).
//!
//! *Forgetting* (Toneva et al., "An Empirical Study of Example Forgetting during Deep Neural
//! Network Learning", ICLR 2019): a forgetting event is a presentation at which an image is
//! misclassified after being classified correctly at its previous presentation. The three lists of
//! [`ExampleLog::report`]:
//! * most wrong: the highest last loss;
//! * learned then forgotten: at least one forgetting event, most events first (then the ones
//!   wrong now, then by last loss);
//! * ambiguous: the true-class probability `p[t]` nearest 0.5 (for two classes: nearest the
//!   decision boundary).
//!
//! Ties go to the smaller index. The log covers one model's run: it starts empty for a new or
//! imported model, and after `Trainer::resume` (a run state does not carry it).

use crate::data::Split;
use crate::loss::RowLoss;
use serde::Serialize;

const NONE: u32 = u32::MAX;

/// Per-image bookkeeping over the training split (indices are the split's).
#[derive(Clone, PartialEq)]
pub struct ExampleLog {
    /// The epoch in progress: loss (NaN until the image is presented) and correctness.
    pending_loss: Vec<f32>,
    pending_correct: Vec<bool>,
    /// Last committed presentation: loss (NaN: never presented) and correctness.
    last_loss: Vec<f32>,
    last_correct: Vec<bool>,
    presentations: Vec<u32>,
    forgetting: Vec<u32>,
    /// Epoch of the first correct classification, `NONE` if never.
    first_learned: Vec<u32>,
    /// Per committed epoch: bits of the images presented, and of those classified correctly.
    seen_bits: Vec<Vec<u64>>,
    correct_bits: Vec<Vec<u64>>,
    /// Epoch numbers committed, in order.
    epochs: Vec<usize>,
}

/// Size only: the log holds tens of thousands of numbers.
impl std::fmt::Debug for ExampleLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExampleLog").field("images", &self.len()).field("epochs", &self.epochs).finish_non_exhaustive()
    }
}

/// One image in a list of [`HardExamples`].
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ExampleItem {
    /// Index in the training split.
    pub index: u32,
    pub label: u8,
    /// Last recorded loss `-log p[t]`.
    pub loss: f32,
    /// Last recorded probability of the true class, `exp(-loss)`.
    pub probability: f32,
    pub correct: bool,
    pub forgetting_events: u32,
    /// Epoch of its first correct classification.
    pub first_learned: Option<usize>,
    /// One character per committed epoch: `1` correct, `0` wrong, `.` not presented.
    pub history: String,
}

/// The three lists, each at most `n` long.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct HardExamples {
    /// Epoch numbers the log holds (committed).
    pub epochs: Vec<usize>,
    /// Images presented at least once.
    pub images: usize,
    /// Images with at least one forgetting event.
    pub forgettable: usize,
    pub most_wrong: Vec<ExampleItem>,
    pub forgotten: Vec<ExampleItem>,
    pub ambiguous: Vec<ExampleItem>,
}

impl ExampleLog {
    /// An empty log for a training split of `n` images.
    pub fn new(n: usize) -> ExampleLog {
        ExampleLog {
            pending_loss: vec![f32::NAN; n],
            pending_correct: vec![false; n],
            last_loss: vec![f32::NAN; n],
            last_correct: vec![false; n],
            presentations: vec![0; n],
            forgetting: vec![0; n],
            first_learned: vec![NONE; n],
            seen_bits: Vec::new(),
            correct_bits: Vec::new(),
            epochs: Vec::new(),
        }
    }

    /// Images of the split.
    pub fn len(&self) -> usize {
        self.last_loss.len()
    }

    pub fn is_empty(&self) -> bool {
        self.last_loss.is_empty()
    }

    /// Epoch numbers committed so far.
    pub fn epochs(&self) -> &[usize] {
        &self.epochs
    }

    /// Records one batch of the epoch in progress: `rows[r]` belongs to image `indices[r]`.
    pub fn record(&mut self, indices: &[u32], rows: &[RowLoss]) {
        assert_eq!(indices.len(), rows.len(), "one row loss per batch index");
        for (&i, r) in indices.iter().zip(rows) {
            self.pending_loss[i as usize] = r.loss;
            self.pending_correct[i as usize] = r.correct;
        }
    }

    /// Ends epoch `epoch`: its records become the images' last ones, forgetting events counted.
    pub fn commit_epoch(&mut self, epoch: usize) {
        let words = self.len().div_ceil(64);
        let (mut seen, mut correct) = (vec![0u64; words], vec![0u64; words]);
        for i in 0..self.len() {
            let loss = self.pending_loss[i];
            if loss.is_nan() {
                continue;
            }
            let ok = self.pending_correct[i];
            if self.presentations[i] > 0 && self.last_correct[i] && !ok {
                self.forgetting[i] += 1;
            }
            if ok && self.first_learned[i] == NONE {
                self.first_learned[i] = epoch.min(NONE as usize - 1) as u32;
            }
            self.presentations[i] += 1;
            self.last_loss[i] = loss;
            self.last_correct[i] = ok;
            seen[i / 64] |= 1 << (i % 64);
            if ok {
                correct[i / 64] |= 1 << (i % 64);
            }
            self.pending_loss[i] = f32::NAN;
        }
        self.seen_bits.push(seen);
        self.correct_bits.push(correct);
        self.epochs.push(epoch);
    }

    /// Drops the records of the epoch in progress (it diverged, or the model was replaced).
    pub fn discard_epoch(&mut self) {
        self.pending_loss.fill(f32::NAN);
    }

    /// Last recorded loss of image `i` (None if it was never presented in a committed epoch).
    pub fn last_loss(&self, i: usize) -> Option<f32> {
        Some(self.last_loss[i]).filter(|l| !l.is_nan())
    }

    /// Forgetting events of image `i` so far.
    pub fn forgetting_events(&self, i: usize) -> u32 {
        self.forgetting[i]
    }

    /// One character per committed epoch for image `i`: `1` correct, `0` wrong, `.` not presented.
    pub fn history(&self, i: usize) -> String {
        let bit = |bits: &Vec<u64>| bits[i / 64] >> (i % 64) & 1 == 1;
        self.seen_bits
            .iter()
            .zip(&self.correct_bits)
            .map(|(s, c)| match (bit(s), bit(c)) {
                (false, _) => '.',
                (true, true) => '1',
                (true, false) => '0',
            })
            .collect()
    }

    fn item(&self, i: usize, split: &Split) -> ExampleItem {
        let loss = self.last_loss[i];
        ExampleItem {
            index: i as u32,
            label: split.label(i),
            loss,
            probability: (-loss).exp(),
            correct: self.last_correct[i],
            forgetting_events: self.forgetting[i],
            first_learned: Some(self.first_learned[i]).filter(|&e| e != NONE).map(|e| e as usize),
            history: self.history(i),
        }
    }

    /// The top `n` of each list (see the module documentation); `split` is the training split the
    /// log was kept for, which supplies the labels.
    pub fn report(&self, n: usize, split: &Split) -> HardExamples {
        assert_eq!(split.len(), self.len(), "the log belongs to a split of another size");
        let seen: Vec<u32> = (0..self.len() as u32).filter(|&i| !self.last_loss[i as usize].is_nan()).collect();
        let top = |mut v: Vec<u32>, key: &dyn Fn(usize, usize) -> std::cmp::Ordering| {
            sort_indices(&mut v, &|a, b| key(a as usize, b as usize));
            v.truncate(n);
            v.into_iter().map(|i| self.item(i as usize, split)).collect::<Vec<_>>()
        };
        let loss = |i: usize| self.last_loss[i];
        let most_wrong = top(seen.clone(), &|a, b| loss(b).total_cmp(&loss(a)));
        let forgettable: Vec<u32> = seen.iter().copied().filter(|&i| self.forgetting[i as usize] > 0).collect();
        let count = forgettable.len();
        let forgotten = top(forgettable, &|a, b| {
            (self.forgetting[b].cmp(&self.forgetting[a]))
                .then(self.last_correct[a].cmp(&self.last_correct[b]))
                .then(loss(b).total_cmp(&loss(a)))
        });
        let margin = |i: usize| ((-loss(i)).exp() - 0.5).abs();
        let ambiguous = top(seen.clone(), &|a, b| margin(a).total_cmp(&margin(b)));
        HardExamples {
            epochs: self.epochs.clone(),
            images: seen.len(),
            forgettable: count,
            most_wrong,
            forgotten,
            ambiguous,
        }
    }
}

/// Sorts `v` (indices) by `key`, ties by the smaller index. Every ranking (these lists, and the
/// unit and neighbour rankings of [`crate::inspect`]) goes through this one function, so that the
/// wasm holds one sort routine rather than one per key.
pub(crate) fn sort_indices(v: &mut [u32], key: &dyn Fn(u32, u32) -> std::cmp::Ordering) {
    v.sort_unstable_by(|&a, &b| key(a, b).then(a.cmp(&b)));
}
