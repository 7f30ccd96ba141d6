//! [`GpuTrainer`]: the training loop of [`Trainer`] on the GPU, the same run as on the CPU.
//!
//! The CPU [`Trainer`] it wraps keeps the configuration, the data, the seeded loader, the epoch
//! count and the checkpoint logic; the GPU holds the parameters and optimizer state (the flat
//! layout of `Mlp::params`), both splits' bytes (uploaded once) and the activations. Per epoch the
//! loader's permutation is uploaded once, with a table of per-batch entries (rows, statistics
//! slot, optimizer factors) and, for a run with augmentation, the CPU's draws for every position
//! of the epoch (flip, `dx`, `dy`: `data::augment::draws`), which the gather applies; then each
//! [`GpuTrainer::train_batches`] call encodes its batches into one compute pass (per batch:
//! gather, forward GEMMs with fused bias and activation, fused loss and gradient, backward GEMMs
//! with fused activation derivative and, for plain SGD, the update, bias gradients, optimizer)
//! and reads back only the per-batch summed losses and correct counts.
//! At the end of an epoch the parameters and optimizer state are read back into the CPU trainer
//! (so saving, export, predictions and resume are the CPU's code, and a run saved by one backend
//! resumes on the other) and the validation split is evaluated on the GPU.

use super::device::Gpu;
use super::kernels::{BatchEntry, Kernels, STAT_BYTES};
pub use super::model::EVAL_ROWS;
use super::model::{GpuData, GpuModel, bytes_f32, copy, parse_rows, parse_stats};
use super::table::pack_draw;
use crate::clock::Stopwatch;
use crate::data::augment::draws;
use crate::error::{Error, Result};
use crate::train::{EpochStats, EvalStats, Progress, Trainer};
use ndarray::Array2;

/// Sums of the epoch in progress on the GPU.
#[derive(Clone, Copy, Debug, Default)]
struct EpochRun {
    /// Optimizer steps taken before the epoch.
    start_step: u64,
    /// Batches trained.
    done: usize,
    loss_sum: f64,
    correct: usize,
    seen: usize,
    seconds: f64,
}

/// The training run of a [`Trainer`], computed on a WebGPU device.
pub struct GpuTrainer {
    trainer: Trainer,
    kernels: Kernels,
    data: GpuData,
    model: GpuModel,
    epoch: Option<EpochRun>,
    /// The epoch's order (training-set indices), for the hard-example log: the GPU's row
    /// `position` is training image `order[position]`.
    order: Vec<u32>,
    /// The CPU trainer's parameters and optimizer state lag behind the GPU's.
    cpu_stale: bool,
}

impl GpuTrainer {
    /// Takes over `trainer` (between epochs) on a new device: compiles the kernels, uploads both
    /// splits, the parameters and the optimizer state.
    pub async fn new(trainer: Trainer) -> Result<GpuTrainer> {
        let gpu = Gpu::request().await?;
        GpuTrainer::with_gpu(&gpu, trainer).await
    }

    /// [`GpuTrainer::new`] on a device already acquired.
    pub async fn with_gpu(gpu: &Gpu, trainer: Trainer) -> Result<GpuTrainer> {
        if trainer.in_epoch() {
            return Err(Error::Config("a run can move to the GPU only between epochs".into()));
        }
        let kernels = Kernels::new(gpu).await?;
        let (data, model) = gpu
            .scoped("uploading the data and the model", || {
                let data = GpuData::upload(gpu, &trainer)?;
                let model = GpuModel::build(&kernels, &data, &trainer)?;
                Ok((data, model))
            })
            .await?;
        Ok(GpuTrainer { trainer, kernels, data, model, epoch: None, order: Vec::new(), cpu_stale: false })
    }

    pub fn gpu(&self) -> &Gpu {
        self.kernels.gpu()
    }

    /// The CPU trainer: configuration, data, epoch count. Its parameters are the GPU's as of the
    /// last finished epoch or [`GpuTrainer::sync`].
    pub fn trainer(&self) -> &Trainer {
        &self.trainer
    }

    /// "Train more": the run's epoch budget grows by `n` ([`Trainer::extend_epochs`]; the budget
    /// lives on the CPU side only).
    pub fn extend_epochs(&mut self, n: usize) -> Result<usize> {
        self.trainer.extend_epochs(n)
    }

    /// The CPU trainer with the GPU's current parameters and optimizer state.
    pub async fn trainer_synced(&mut self) -> Result<&mut Trainer> {
        self.sync().await?;
        Ok(&mut self.trainer)
    }

    /// Whether an epoch is in progress.
    pub fn in_epoch(&self) -> bool {
        self.epoch.is_some()
    }

    /// Compute dispatches encoded per training batch (fewer is better on real GPUs).
    pub fn dispatches_per_batch(&self) -> usize {
        self.model.dispatches_per_batch
    }

    /// Trains up to `max_batches` batches of the current epoch (starting one if needed), all in
    /// one compute pass with one readback, and returns the epoch's statistics when this call
    /// finished it, as [`Trainer::train_batches`] does; `progress` is called once per batch. On a
    /// non-finite loss the parameters and optimizer state return to the start of the epoch and
    /// `Error::Diverged` names the first bad batch.
    pub async fn train_batches(
        &mut self,
        max_batches: usize,
        progress: &mut dyn FnMut(Progress),
    ) -> Result<Option<EpochStats>> {
        let gpu = self.kernels.gpu().clone();
        gpu.check()?;
        let clock = Stopwatch::start();
        let mut start = None;
        if self.epoch.is_none() {
            self.sync().await?;
            let start_step = self.trainer.optimizer.step;
            self.order = self.trainer.draw_external_epoch()?.to_vec();
            let order: Vec<u8> = self.order.iter().flat_map(|i| i.to_le_bytes()).collect();
            start = Some((order, self.epoch_draws(), start_step));
            self.epoch = Some(EpochRun { start_step, ..EpochRun::default() });
        }
        let run = self.epoch.expect("epoch started");
        let batches = self.model.batches_per_epoch;
        let (b0, b1) = (run.done, (run.done + max_batches).min(batches));
        let model = &self.model;
        let entries = start.as_ref().map(|(_, _, start_step)| self.train_entries(*start_step));
        gpu.scoped("training", || {
            let encoder = gpu.device().create_command_encoder();
            if let (Some((order, draws, _)), Some(entries)) = (&start, &entries) {
                gpu.write(&model.order, 0, order)?;
                if let (Some(buffer), Some(draws)) = (&model.draws, draws) {
                    gpu.write(buffer, 0, draws)?;
                }
                model.train_table.write(&gpu, entries)?;
                let bytes = model.num_params as u64 * 4;
                for (live, snap) in model.live().into_iter().zip(&model.snapshots) {
                    copy(&encoder, live, 0, snap, 0, bytes)?;
                }
            }
            if b1 > b0 {
                let pass = encoder.begin_compute_pass();
                for b in b0..b1 {
                    model.encode_train_batch(&pass, b);
                }
                pass.end();
                let stat_bytes = (b1 - b0) as u64 * STAT_BYTES;
                copy(&encoder, &model.stats, b0 as u64 * STAT_BYTES, &model.read_stats, 0, stat_bytes)?;
                let (r0, r1) = model.row_range(b0, b1);
                let row_bytes = (r1 - r0) as u64 * STAT_BYTES;
                copy(&encoder, &model.row_stats, r0 as u64 * STAT_BYTES, &model.read_stats, stat_bytes, row_bytes)?;
            }
            gpu.queue().submit(&[encoder.finish()]);
            Ok(())
        })
        .await?;
        self.cpu_stale = true;
        let (r0, r1) = self.model.row_range(b0, b1);
        let stat_bytes = (b1 - b0) * STAT_BYTES as usize;
        let read = gpu.read(&self.model.read_stats, (stat_bytes + (r1 - r0) * STAT_BYTES as usize) as u64).await?;
        let stats = parse_stats(&read[..stat_bytes]);
        let row_losses = parse_rows(&read[stat_bytes..]);
        let epoch = self.trainer.epochs_done();
        let n_train = self.trainer.train_len();
        let run = self.epoch.as_mut().expect("epoch started");
        for (i, (loss, correct)) in stats.into_iter().enumerate() {
            let b = b0 + i;
            if !loss.is_finite() {
                self.epoch = None;
                self.trainer.examples.discard_epoch();
                self.restore_epoch_start().await?;
                return Err(Error::Diverged { epoch, batch: b, loss });
            }
            let rows = (n_train - b * self.model.batch).min(self.model.batch);
            run.loss_sum += loss as f64;
            run.correct += correct as usize;
            run.seen += rows;
            run.done = b + 1;
            progress(Progress {
                epoch,
                batch: run.done,
                batches,
                samples: run.seen,
                loss: run.loss_sum / run.seen as f64,
            });
        }
        run.seconds += clock.seconds();
        self.trainer.examples.record(&self.order[r0..r1], &row_losses);
        if run.done < batches {
            return Ok(None);
        }
        let run = self.epoch.take().expect("epoch started");
        self.trainer.optimizer.step = run.start_step + batches as u64;
        let val = self.evaluate_and_sync(false).await?;
        let val_accuracy = val.accuracy;
        self.trainer.finish_external_epoch(val);
        Ok(Some(EpochStats {
            epoch,
            loss: run.loss_sum / run.seen as f64,
            train_accuracy: run.correct as f64 / run.seen as f64,
            val_accuracy,
            seconds: run.seconds,
        }))
    }

    /// Trains one whole epoch (or the rest of the one in progress).
    pub async fn train_epoch(&mut self, progress: &mut dyn FnMut(Progress)) -> Result<EpochStats> {
        loop {
            if let Some(stats) = self.train_batches(usize::MAX, progress).await? {
                return Ok(stats);
            }
        }
    }

    /// The augmentation draws of the epoch about to start, for all its positions, packed for the
    /// gather (`table::pack_draw`): the CPU's draws ([`draws`]), so both backends flip and shift
    /// the same images alike. `None` without augmentation (nothing drawn, nothing uploaded).
    fn epoch_draws(&self) -> Option<Vec<u8>> {
        let c = &self.trainer.config;
        if c.augment.is_none() {
            return None;
        }
        let n = self.trainer.train_len();
        let d = draws(c.augment, c.seed, self.trainer.epochs_done(), n, 0, n);
        Some(d.iter().flat_map(|d| pack_draw(d).to_le_bytes()).collect())
    }

    /// The batch entries of an epoch whose optimizer starts after `start_step` steps: the
    /// batches are the loader's consecutive slices of the permutation, and Adam's bias
    /// corrections are computed as `Optimizer::step` computes them.
    fn train_entries(&self, start_step: u64) -> Vec<BatchEntry> {
        let (n, b) = (self.trainer.train_len(), self.model.batch);
        let o = &self.trainer.config.optimizer;
        (0..self.model.batches_per_epoch)
            .map(|i| {
                let t = start_step + i as u64 + 1;
                let ti = t.min(i32::MAX as u64) as i32;
                BatchEntry {
                    start: (i * b) as u32,
                    rows: (n - i * b).min(b) as u32,
                    slot: i as u32,
                    first: t == 1,
                    step_size: o.lr / (1.0 - o.beta1.powi(ti)),
                    bc2_sqrt: (1.0 - o.beta2.powi(ti)).sqrt(),
                }
            })
            .collect()
    }

    /// Puts back the parameters and optimizer state saved at the start of the epoch.
    async fn restore_epoch_start(&mut self) -> Result<()> {
        let gpu = self.kernels.gpu().clone();
        let model = &self.model;
        gpu.scoped("restoring the weights of the epoch's start", || {
            let encoder = gpu.device().create_command_encoder();
            let bytes = model.num_params as u64 * 4;
            for (snap, live) in model.snapshots.iter().zip(model.live()) {
                copy(&encoder, snap, 0, live, 0, bytes)?;
            }
            gpu.queue().submit(&[encoder.finish()]);
            Ok(())
        })
        .await?;
        self.cpu_stale = true;
        self.sync().await
    }

    /// Reads the GPU's parameters and optimizer state into the CPU trainer, if they changed.
    pub async fn sync(&mut self) -> Result<()> {
        if !self.cpu_stale {
            return Ok(());
        }
        let gpu = self.kernels.gpu().clone();
        let model = &self.model;
        let bytes = gpu
            .scoped("reading the parameters back", || {
                let encoder = gpu.device().create_command_encoder();
                let bytes = model.encode_params_readback(&encoder)?;
                gpu.queue().submit(&[encoder.finish()]);
                Ok(bytes)
            })
            .await?;
        let data = gpu.read(&self.model.read_params, bytes).await?;
        self.unpack_params(&data);
        if let Some(run) = &self.epoch {
            self.trainer.optimizer.step = run.start_step + run.done as u64;
        }
        self.cpu_stale = false;
        Ok(())
    }

    fn unpack_params(&mut self, data: &[u8]) {
        let p = self.model.num_params * 4;
        self.trainer.model.params = bytes_f32(&data[..p]);
        let o = &mut self.trainer.optimizer;
        for (i, state) in [&mut o.state1, &mut o.state2].into_iter().filter(|s| !s.is_empty()).enumerate() {
            *state = bytes_f32(&data[(i + 1) * p..(i + 2) * p]);
        }
    }

    /// Accuracy, mean loss and confusion matrix on a split (`train = false`: the validation
    /// split), computed on the GPU.
    pub async fn evaluate_split(&mut self, train: bool) -> Result<EvalStats> {
        let gpu = self.kernels.gpu().clone();
        let s = train as usize;
        let n = if train { self.trainer.data.train.len() } else { self.trainer.data.test.len() };
        let model = &self.model;
        let batches = gpu
            .scoped("evaluating", || {
                let encoder = gpu.device().create_command_encoder();
                let batches = model.encode_eval(&encoder, s, n)?;
                gpu.queue().submit(&[encoder.finish()]);
                Ok(batches)
            })
            .await?;
        let bytes = gpu.read(&self.model.read_eval, self.eval_bytes(batches)).await?;
        Ok(self.eval_stats(&bytes, batches, n))
    }

    fn eval_bytes(&self, batches: usize) -> u64 {
        batches as u64 * STAT_BYTES + (self.model.classes * self.model.classes) as u64 * 4
    }

    fn eval_stats(&self, bytes: &[u8], batches: usize, n: usize) -> EvalStats {
        let k = self.model.classes;
        let split = batches * STAT_BYTES as usize;
        let stats = parse_stats(&bytes[..split]);
        let counts: Vec<usize> = bytes[split..]
            .chunks_exact(4)
            .map(|c| u32::from_le_bytes(c.try_into().expect("4 bytes")) as usize)
            .collect();
        let loss_sum: f64 = stats.iter().map(|s| s.0 as f64).sum();
        let correct: usize = stats.iter().map(|s| s.1 as usize).sum();
        EvalStats {
            count: n,
            accuracy: if n == 0 { 0.0 } else { correct as f64 / n as f64 },
            loss: if n == 0 { 0.0 } else { loss_sum / n as f64 },
            confusion: counts.chunks(k).map(<[usize]>::to_vec).collect(),
        }
    }

    /// The epoch's end: evaluation of a split and the parameter readback in one submit.
    async fn evaluate_and_sync(&mut self, train: bool) -> Result<EvalStats> {
        let gpu = self.kernels.gpu().clone();
        let s = train as usize;
        let n = if train { self.trainer.data.train.len() } else { self.trainer.data.test.len() };
        let model = &self.model;
        let (batches, param_bytes) = gpu
            .scoped("evaluating", || {
                let encoder = gpu.device().create_command_encoder();
                let batches = model.encode_eval(&encoder, s, n)?;
                let param_bytes = model.encode_params_readback(&encoder)?;
                gpu.queue().submit(&[encoder.finish()]);
                Ok((batches, param_bytes))
            })
            .await?;
        let eval = gpu.read(&self.model.read_eval, self.eval_bytes(batches)).await?;
        let params = gpu.read(&self.model.read_params, param_bytes).await?;
        self.unpack_params(&params);
        self.cpu_stale = false;
        Ok(self.eval_stats(&eval, batches, n))
    }

    /// Class probabilities for images given as planar `u8` (`n * 3072` bytes), on the CPU with
    /// the GPU's current weights.
    pub async fn predict(&mut self, images: &[u8]) -> Result<Array2<f32>> {
        self.sync().await?;
        Ok(self.trainer.predict(images))
    }

    /// The run between epochs, as [`Trainer::save_state`] (resumable by either backend).
    pub async fn save_state(&mut self) -> Result<Vec<u8>> {
        self.kernels.gpu().check()?;
        if self.epoch.is_some() {
            return Err(Error::Config("a run can be saved only between epochs".into()));
        }
        self.sync().await?;
        self.trainer.save_state()
    }

    /// Replaces the model with a checkpoint's (see [`Trainer::load_weights`]) and uploads it; the
    /// epoch in progress, if any, is abandoned as on the CPU.
    pub async fn load_weights(&mut self, bytes: &[u8]) -> Result<()> {
        self.kernels.gpu().check()?;
        self.sync().await?;
        let mut candidate = self.trainer.clone();
        candidate.load_weights(bytes)?;
        let gpu = self.kernels.gpu().clone();
        let (kernels, data) = (&self.kernels, &self.data);
        let model = gpu.scoped("uploading the model", || GpuModel::build(kernels, data, &candidate)).await?;
        self.trainer = candidate;
        self.model = model;
        self.epoch = None;
        self.cpu_stale = false;
        Ok(())
    }
}
