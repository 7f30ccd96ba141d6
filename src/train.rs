//! The training loop: epochs of shuffled minibatches, SGD or Adam steps, and evaluation.
//!
//! For each epoch `e`: draw a permutation, and for each batch `x: [B, 3072]` (normalised on the
//! fly from `u8`) with labels `t`: forward, loss, backward, optimizer step. The epoch reports the
//! mean loss over all its samples (the lecture printed only the last batch's loss), the running
//! training accuracy of its batches, and the validation accuracy after the epoch.
//!
//! Work can be done an epoch at a time ([`Trainer::train_epoch`], the CLI) or a few batches at a
//! time ([`Trainer::train_batches`], the browser worker, so that it can report progress and pause).
//! Every random choice (initial weights, training subset, shuffling) comes from ChaCha8 streams of
//! the configured seed, so one seed and configuration give bit-identical weights.
//!
//! With `augment` (see [`crate::data::augment`]), each batch is flipped and/or shifted after it is
//! normalised, from draws of the seed's own stream.
//!
//! Each trained batch's per-image losses go to [`Trainer::examples`] (the hard-example log of
//! [`crate::examples`]), straight from the forward pass.

use crate::checkpoint;
use crate::clock::Stopwatch;
use crate::config::TrainConfig;
use crate::data::augment::augment_batch;
use crate::data::{Dataset, Loader, Normalizer, PIXELS, Split};
use crate::error::{Error, Result};
use crate::examples::ExampleLog;
use crate::loss::{BatchLoss, argmax, loss_and_grad};
use crate::model::Mlp;
use crate::optim::Optimizer;
use ndarray::{Array2, s};
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use serde::Serialize;
use std::sync::Arc;

/// Seed stream for the initial weights.
pub const INIT_STREAM: u64 = 0;
/// Seed stream for drawing a training subset (`train_size`).
pub const SUBSET_STREAM: u64 = 2;
/// Rows per evaluation batch: large enough to keep the GEMM efficient.
pub const EVAL_BATCH: usize = 500;

/// What one epoch reports (the CLI's `--json` line has exactly these keys).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct EpochStats {
    /// Epoch number, from 0 as in the lecture's log.
    pub epoch: usize,
    /// Mean training loss over the epoch's samples.
    pub loss: f64,
    /// Accuracy over the epoch's training batches, as they were trained.
    pub train_accuracy: f64,
    /// Accuracy on the whole validation (test) split after the epoch.
    pub val_accuracy: f64,
    /// Seconds spent training the epoch (validation excluded).
    pub seconds: f64,
}

/// Accuracy, mean loss and confusion matrix on a split.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct EvalStats {
    pub count: usize,
    pub accuracy: f64,
    pub loss: f64,
    /// `confusion[true][predicted]`.
    pub confusion: Vec<Vec<usize>>,
}

/// Where an epoch in progress stands.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct Progress {
    pub epoch: usize,
    pub batch: usize,
    pub batches: usize,
    pub samples: usize,
    pub loss: f64,
}

/// Sums of the epoch in progress.
#[derive(Clone, Copy, Debug, Default)]
struct Running {
    loss_sum: f64,
    correct: usize,
    seen: usize,
    seconds: f64,
}

/// The model, optimizer and data of a run, and where the run stands.
#[derive(Clone, Debug)]
pub struct Trainer {
    pub config: TrainConfig,
    pub model: Mlp,
    pub optimizer: Optimizer,
    pub data: Arc<Dataset>,
    /// Per-image losses and correctness of the training split, epoch after epoch.
    pub examples: ExampleLog,
    loader: Loader,
    norm: Normalizer,
    /// Completed epochs.
    epoch: usize,
    running: Option<Running>,
    /// Parameters and optimizer at the start of the epoch in progress: restored if it diverges.
    last_good: Option<(Vec<f32>, Optimizer)>,
    /// Validation after the last finished epoch.
    last_val: Option<EvalStats>,
    /// The parameters as the seed's random initialisation drew them (`W0`), or `None` when the
    /// run started from a file's weights ([`Trainer::load_weights`]), whose start is not known.
    initial: Option<Arc<Vec<f32>>>,
    x: Array2<f32>,
    y: Vec<u8>,
}

impl Trainer {
    /// Checks the configuration against the data and builds a freshly initialised model.
    /// The data is shared (`Arc`), so several runs on one dataset do not copy it.
    pub fn new(config: TrainConfig, data: impl Into<Arc<Dataset>>) -> Result<Trainer> {
        let data = data.into();
        config.validate()?;
        let m = &config.model;
        if m.inputs() != PIXELS {
            return Err(Error::Config(format!(
                "the first layer must take {PIXELS} inputs (3x32x32), got {}",
                m.inputs()
            )));
        }
        if m.classes() != data.classes.len() {
            return Err(Error::Config(format!(
                "the last layer has {} outputs but the data has {} classes ({})",
                m.classes(),
                data.classes.len(),
                data.classes.join(", ")
            )));
        }
        if data.train.is_empty() {
            return Err(Error::Config("the training split is empty".into()));
        }
        let mut rng = ChaCha8Rng::seed_from_u64(config.seed);
        rng.set_stream(INIT_STREAM);
        let model = Mlp::new(m, &mut rng)?;
        let initial = Some(Arc::new(model.params.clone()));
        let optimizer = Optimizer::new(config.optimizer.clone(), model.num_params());
        let indices = training_indices(data.train.len(), config.train_size, config.seed);
        let loader = Loader::new(indices, config.batch_size, config.seed);
        Ok(Trainer {
            x: Array2::zeros((config.batch_size, PIXELS)),
            y: Vec::with_capacity(config.batch_size),
            config,
            model,
            optimizer,
            examples: ExampleLog::new(data.train.len()),
            data,
            loader,
            norm: Normalizer::default(),
            epoch: 0,
            running: None,
            last_good: None,
            last_val: None,
            initial,
        })
    }

    /// The parameters at the start of the run (`W0`, the seed's random initialisation), or `None`
    /// when it started from a file's weights (`train --init`, an upload), whose start is unknown.
    /// Kept across [`Trainer::save_state`] / [`Trainer::resume`] as a flag: the seed and the
    /// configuration in the state draw the same `W0` again.
    pub fn initial_params(&self) -> Option<&[f32]> {
        self.initial.as_deref().map(Vec::as_slice)
    }

    /// Completed epochs.
    pub fn epochs_done(&self) -> usize {
        self.epoch
    }

    /// Validation statistics (accuracy, loss, confusion) after the last finished epoch.
    pub fn last_validation(&self) -> Option<&EvalStats> {
        self.last_val.as_ref()
    }

    /// The training images of the run (its `train_size` subset, or all), in the split's order.
    pub fn train_indices(&self) -> &[u32] {
        self.loader.indices()
    }

    /// Training images per epoch.
    pub fn train_len(&self) -> usize {
        self.loader.len()
    }

    pub fn batches_per_epoch(&self) -> usize {
        self.loader.batches_per_epoch()
    }

    /// Whether an epoch is in progress on this trainer (started by [`Trainer::train_batches`] and
    /// not finished).
    pub fn in_epoch(&self) -> bool {
        self.running.is_some()
    }

    /// The normalisation table of the inputs.
    pub fn normalizer(&self) -> &Normalizer {
        &self.norm
    }

    /// For a backend that trains outside this struct (the WebGPU one): draws the next epoch's
    /// permutation from the same seeded loader, so its batches are the ones
    /// [`Trainer::train_batches`] would train, in the same order. The backend trains them, writes
    /// the parameters and optimizer state back here, then calls
    /// [`Trainer::finish_external_epoch`]. Refused while an epoch of this trainer is in progress.
    /// With augmentation the backend applies [`crate::data::augment::draws`] of this epoch
    /// ([`Trainer::epochs_done`]) at the order's positions, as [`Trainer::train_batches`] does.
    pub fn draw_external_epoch(&mut self) -> Result<&[u32]> {
        if self.running.is_some() {
            return Err(Error::Config("an epoch is in progress on the CPU; finish it first".into()));
        }
        Ok(self.loader.draw_epoch())
    }

    /// Counts an epoch trained by another backend (see [`Trainer::draw_external_epoch`]) as done,
    /// with its validation `val`: as an epoch of [`Trainer::train_batches`] ends.
    pub fn finish_external_epoch(&mut self, val: EvalStats) {
        self.finish_epoch(val);
    }

    /// The end of an epoch, whichever backend trained it: its hard-example records become
    /// visible, its validation is kept, the epoch is counted.
    fn finish_epoch(&mut self, val: EvalStats) {
        self.examples.commit_epoch(self.epoch);
        self.last_val = Some(val);
        self.epoch += 1;
    }

    /// "Train more": raises the run's epoch budget (`config.epochs`) by `n` and returns it. The
    /// run goes on from the current model, optimizer and loader position; `save_state` records
    /// the new budget, so a resumed run still ends there.
    pub fn extend_epochs(&mut self, n: usize) -> Result<usize> {
        if n == 0 {
            return Err(Error::Config("train more: the number of epochs must be at least 1".into()));
        }
        let c = &mut self.config;
        c.epochs =
            c.epochs.checked_add(n).ok_or_else(|| Error::Config(format!("{} + {n} epochs is too many", c.epochs)))?;
        Ok(c.epochs)
    }

    /// Trains up to `max_batches` batches of the current epoch (starting one if needed). Returns
    /// the epoch's statistics when this call finished it, `None` otherwise. On a non-finite loss
    /// the weights and optimizer return to the start of the epoch and `Error::Diverged` says so.
    pub fn train_batches(
        &mut self,
        max_batches: usize,
        progress: &mut dyn FnMut(Progress),
    ) -> Result<Option<EpochStats>> {
        if self.running.is_none() {
            self.loader.start_epoch();
            self.last_good = Some((self.model.params.clone(), self.optimizer.clone()));
            self.running = Some(Running::default());
        }
        let clock = Stopwatch::start();
        let batches = self.loader.batches_per_epoch();
        for _ in 0..max_batches {
            // The batch's position in the epoch's order, for its augmentation draws.
            let (start, n) = (self.loader.batches_done() * self.config.batch_size, self.loader.len());
            let Some(batch) = self.loader.next_batch() else {
                break;
            };
            let b = batch.len();
            let mut x = self.x.slice_mut(s![..b, ..]);
            self.data.train.gather(batch, &self.norm, x.view_mut(), &mut self.y);
            let c = &self.config;
            augment_batch(c.augment, c.seed, self.epoch, n, start, x.view_mut());
            let res = self.model.train_batch(x.view(), &self.y, &mut self.optimizer);
            let r = self.running.as_mut().expect("epoch started");
            if !res.loss_sum.is_finite() {
                let (params, opt) = self.last_good.take().expect("snapshot taken at epoch start");
                self.model.params = params;
                self.optimizer = opt;
                self.running = None;
                self.examples.discard_epoch();
                return Err(Error::Diverged {
                    epoch: self.epoch,
                    batch: self.loader.batches_done() - 1,
                    loss: res.loss_sum as f32,
                });
            }
            self.examples.record(batch, self.model.row_losses());
            r.loss_sum += res.loss_sum;
            r.correct += res.correct;
            r.seen += b;
            progress(Progress {
                epoch: self.epoch,
                batch: self.loader.batches_done(),
                batches,
                samples: r.seen,
                loss: r.loss_sum / r.seen as f64,
            });
        }
        let r = self.running.as_mut().expect("epoch started");
        r.seconds += clock.seconds();
        if self.loader.batches_done() < batches {
            return Ok(None);
        }
        let r = self.running.take().expect("epoch started");
        self.last_good = None;
        let val = self.evaluate_split(false);
        let stats = EpochStats {
            epoch: self.epoch,
            loss: r.loss_sum / r.seen as f64,
            train_accuracy: r.correct as f64 / r.seen as f64,
            val_accuracy: val.accuracy,
            seconds: r.seconds,
        };
        self.finish_epoch(val);
        Ok(Some(stats))
    }

    /// Trains one whole epoch (or the rest of the one in progress).
    pub fn train_epoch(&mut self, progress: &mut dyn FnMut(Progress)) -> Result<EpochStats> {
        loop {
            if let Some(stats) = self.train_batches(usize::MAX, progress)? {
                return Ok(stats);
            }
        }
    }

    /// The run as it stands between two epochs (configuration, weights, optimizer state, loader
    /// position, epoch count), for [`Trainer::resume`]. Mid-epoch there is nothing exact to save.
    pub fn save_state(&self) -> Result<Vec<u8>> {
        if self.running.is_some() {
            return Err(Error::Config("a run can be saved only between epochs".into()));
        }
        let state = checkpoint::RunState {
            config: self.config.clone(),
            epochs_done: self.epoch,
            optimizer_step: self.optimizer.step,
            loader_position: self.loader.rng_position().to_string(),
            from_init: self.initial.is_some(),
        };
        let o = &self.optimizer;
        Ok(checkpoint::save_run(&state, &self.model.params, &o.state1, &o.state2))
    }

    /// Continues a run saved by [`Trainer::save_state`]: it then ends exactly as it would have
    /// without the interruption.
    pub fn resume(bytes: &[u8], data: impl Into<Arc<Dataset>>) -> Result<Trainer> {
        let (state, [params, state1, state2]) = checkpoint::load_run(bytes)?;
        let mut t = Trainer::new(state.config, data)?;
        let sizes = [(&t.model.params, &params), (&t.optimizer.state1, &state1), (&t.optimizer.state2, &state2)];
        if let Some((want, got)) = sizes.iter().find(|(want, got)| want.len() != got.len()) {
            return Err(Error::Shape {
                what: "run state buffer".into(),
                expected: vec![want.len()],
                actual: vec![got.len()],
            });
        }
        let position = state.loader_position.parse::<u128>().map_err(|_| {
            Error::Checkpoint(format!("run state: loader position '{}' is not a number", state.loader_position))
        })?;
        t.model.params = params;
        t.optimizer.state1 = state1;
        t.optimizer.state2 = state2;
        t.optimizer.step = state.optimizer_step;
        t.loader.set_rng_position(position);
        t.epoch = state.epochs_done;
        if !state.from_init {
            t.initial = None;
        }
        Ok(t)
    }

    /// Replaces the model with a checkpoint's (from the CLI, the page or PyTorch). The file may
    /// hold another architecture, if it fits the data. The run then starts anew from these
    /// weights: optimizer fresh, epochs counted from 0, an empty hard-example log (the loader's
    /// generator goes on where it was, so the next epoch's shuffle is a fresh one).
    pub fn load_weights(&mut self, bytes: &[u8]) -> Result<()> {
        let model = checkpoint::load(bytes, Some(&self.config.model))?;
        let m = &model.config;
        if m.inputs() != PIXELS || m.classes() != self.data.classes.len() {
            return Err(Error::Checkpoint(format!(
                "the file's model {:?} does not fit {PIXELS} inputs and {} classes",
                m.layers,
                self.data.classes.len()
            )));
        }
        self.config.model = model.config.clone();
        self.optimizer = Optimizer::new(self.config.optimizer.clone(), model.num_params());
        self.model = model;
        self.running = None;
        self.last_good = None;
        self.last_val = None;
        self.epoch = 0;
        self.examples = ExampleLog::new(self.data.train.len());
        self.initial = None;
        Ok(())
    }

    /// Class probabilities for images given as planar `u8` (`n * 3072` bytes), `[n, classes]`.
    pub fn predict(&mut self, images: &[u8]) -> Array2<f32> {
        let rows: Vec<&[u8]> = images.chunks_exact(PIXELS).collect();
        let mut x = Array2::zeros((rows.len(), PIXELS));
        for (mut row, img) in x.rows_mut().into_iter().zip(rows) {
            self.norm.apply(img, row.as_slice_mut().expect("contiguous rows"));
        }
        self.model.predict_proba(x.view())
    }

    /// Accuracy and confusion on the training split (`train = true`) or the validation split.
    pub fn evaluate_split(&mut self, train: bool) -> EvalStats {
        let split = if train { &self.data.train } else { &self.data.test };
        evaluate(&mut self.model, split, &self.norm)
    }
}

/// The training images a run uses: all of them, or `train_size` drawn without replacement from
/// the seed's subset stream.
pub fn training_indices(len: usize, train_size: Option<usize>, seed: u64) -> Vec<u32> {
    let mut all: Vec<u32> = (0..len as u32).collect();
    match train_size {
        Some(n) if n < len => {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            rng.set_stream(SUBSET_STREAM);
            all.shuffle(&mut rng);
            all.truncate(n);
            all.sort_unstable();
            all
        }
        _ => all,
    }
}

/// Evaluates `model` on a whole split in batches of [`EVAL_BATCH`].
pub fn evaluate(model: &mut Mlp, split: &Split, norm: &Normalizer) -> EvalStats {
    let (k, loss) = (model.config.classes(), model.config.loss);
    let n = split.len();
    let mut confusion = vec![vec![0usize; k]; k];
    let mut total = BatchLoss::default();
    let mut x = Array2::zeros((EVAL_BATCH.min(n.max(1)), PIXELS));
    let mut y = Vec::with_capacity(EVAL_BATCH);
    let all: Vec<u32> = (0..n as u32).collect();
    for idx in all.chunks(EVAL_BATCH) {
        let mut xb = x.slice_mut(s![..idx.len(), ..]);
        split.gather(idx, norm, xb.view_mut(), &mut y);
        let out = model.forward(xb.view());
        let res = loss_and_grad(loss, out, &y, None);
        total.loss_sum += res.loss_sum;
        total.correct += res.correct;
        for (row, &t) in out.rows().into_iter().zip(&y) {
            confusion[t as usize][argmax(row)] += 1;
        }
    }
    EvalStats {
        count: n,
        accuracy: if n == 0 { 0.0 } else { total.correct as f64 / n as f64 },
        loss: if n == 0 { 0.0 } else { total.loss_sum / n as f64 },
        confusion,
    }
}
