//! [`GpuTrainer`]: the training loop of [`Trainer`] on the GPU, the same run as on the CPU.
//!
//! The CPU [`Trainer`] it wraps keeps the configuration, the data, the seeded loader, the epoch
//! count and the checkpoint logic; the GPU holds the parameters and optimizer state (the flat
//! layout of `Mlp::params`), both splits' bytes (uploaded once) and the activations. Per epoch the
//! loader's permutation is uploaded once, with a table of per-batch entries (rows, statistics
//! slot, optimizer factors); then each [`GpuTrainer::train_batches`] call encodes its batches into
//! one compute pass (per batch: gather, forward GEMMs with fused bias and activation, fused loss
//! and gradient, backward GEMMs with fused activation derivative and, for plain SGD, the update,
//! bias gradients, optimizer) and reads back only the per-batch summed losses and correct counts.
//! At the end of an epoch the parameters and optimizer state are read back into the CPU trainer
//! (so saving, export, predictions and resume are the CPU's code, and a run saved by one backend
//! resumes on the other) and the validation split is evaluated on the GPU.

use super::device::Gpu;
use super::kernels::{
    BatchEntry, BatchTable, BiasCall, Epilogue, GatherCall, GemmCall, GemmSpec, Kernels, LossCall, LossOut, OptimCall,
    RowsDim, STAT_BYTES,
};
use crate::clock::Stopwatch;
use crate::config::{LossKind, OptimizerKind};
use crate::data::PIXELS;
use crate::error::{Error, Result};
use crate::loss::RowLoss;
use crate::train::{EpochStats, EvalStats, Progress, Trainer};
use ndarray::Array2;
use web_sys::{GpuBuffer, GpuCommandEncoder, gpu_buffer_usage as usage};

/// Rows per evaluation batch (at least the training batch): results do not depend on it (each
/// output row is computed the same way whatever the batch), only the number of dispatches does.
pub const EVAL_ROWS: usize = 512;

/// Both splits on the GPU, uploaded once: records as `u32` words, the normalisation table, and
/// the indices `0..n` that evaluation batches point into.
struct GpuData {
    records: [GpuBuffer; 2],
    lut: GpuBuffer,
    iota: GpuBuffer,
}

impl GpuData {
    fn upload(gpu: &Gpu, trainer: &Trainer) -> Result<GpuData> {
        let d = &trainer.data;
        let limit = gpu.limits().max_storage_binding;
        for (name, split) in [("training", &d.train), ("test", &d.test)] {
            let bytes = split.records().len() as u64;
            if bytes.next_multiple_of(4) > limit {
                return Err(Error::Gpu(format!(
                    "the {name} split ({:.1} MB) is larger than this GPU's largest storage buffer ({:.1} MB)",
                    bytes as f64 / 1e6,
                    limit as f64 / 1e6
                )));
            }
        }
        let lut: Vec<u8> = trainer.normalizer().table().iter().flatten().flat_map(|v| v.to_le_bytes()).collect();
        let n = d.train.len().max(d.test.len()) as u32;
        let iota: Vec<u8> = (0..n).flat_map(|i| i.to_le_bytes()).collect();
        Ok(GpuData {
            records: [
                gpu.storage_with("the training images", d.train.records())?,
                gpu.storage_with("the test images", d.test.records())?,
            ],
            lut: gpu.storage_with("the normalisation table", &lut)?,
            iota: gpu.storage_with("the evaluation indices", &iota)?,
        })
    }
}

/// The backward of one layer: input gradient (not for the first layer), weight gradient, bias.
struct LayerBackward {
    dx: Option<GemmCall>,
    dw: GemmCall,
    db: BiasCall,
}

/// Everything that depends on the model's configuration: parameters, optimizer state,
/// activations, batch tables and the calls bound to them.
struct GpuModel {
    params: GpuBuffer,
    /// Optimizer state buffers (momentum, or Adam's two moments).
    states: Vec<GpuBuffer>,
    /// Copies of `params` and `states` at the start of the epoch, restored if it diverges.
    snapshots: Vec<GpuBuffer>,
    order: GpuBuffer,
    train_table: BatchTable,
    /// Evaluation batch tables: test split, training split.
    eval_tables: [BatchTable; 2],
    stats: GpuBuffer,
    /// Each training row's loss and correctness at its position in the epoch's order.
    row_stats: GpuBuffer,
    eval_stats: GpuBuffer,
    confusion: GpuBuffer,
    /// The batches' statistics, then their rows' (`row_stats`), read back together.
    read_stats: GpuBuffer,
    read_eval: GpuBuffer,
    read_params: GpuBuffer,
    gather_train: GatherCall,
    gather_eval: [GatherCall; 2],
    /// The forward GEMMs of a training batch, and of an evaluation batch (more rows, so other
    /// grids and K splits).
    forward: Vec<GemmCall>,
    forward_eval: Vec<GemmCall>,
    loss_train: LossCall,
    loss_eval: LossCall,
    backward: Vec<LayerBackward>,
    optimizer: Option<OptimCall>,
    /// Every buffer, destroyed with the model (GPU memory is freed at once, not at collection).
    owned: Vec<GpuBuffer>,
    batch: usize,
    /// Training images (rows of an epoch).
    train_rows: usize,
    classes: usize,
    num_params: usize,
    batches_per_epoch: usize,
    dispatches_per_batch: usize,
}

impl Drop for GpuModel {
    fn drop(&mut self) {
        for b in &self.owned {
            b.destroy();
        }
    }
}

fn stats_slots(eval_batches: usize) -> u64 {
    eval_batches.max(1) as u64 * STAT_BYTES
}

impl GpuModel {
    fn build(k: &Kernels, data: &GpuData, t: &Trainer) -> Result<GpuModel> {
        let gpu = k.gpu();
        let c = &t.config;
        let m = &t.model;
        let storage = usage::STORAGE | usage::COPY_SRC | usage::COPY_DST;
        let mut owned = Vec::new();
        let mut buf = |label: &str, bytes: u64, u: u32| -> Result<GpuBuffer> {
            let b = gpu.buffer(label, bytes, u)?;
            owned.push(b.clone());
            Ok(b)
        };
        let batch = c.batch_size;
        let rows_cap = batch.max(EVAL_ROWS);
        let classes = m.config.classes();
        let n_params = m.num_params();
        let p_bytes = n_params as u64 * 4;
        let params = buf("the parameters", p_bytes, storage)?;
        gpu.write(&params, 0, &f32_bytes(&m.params))?;
        let opt = &t.optimizer;
        let mut states = Vec::new();
        for (i, s) in [&opt.state1, &opt.state2].into_iter().enumerate() {
            if !s.is_empty() {
                let b = buf(&format!("optimizer state {}", i + 1), p_bytes, storage)?;
                gpu.write(&b, 0, &f32_bytes(s))?;
                states.push(b);
            }
        }
        let mut snapshots = vec![buf("the epoch-start parameters", p_bytes, storage)?];
        for _ in &states {
            snapshots.push(buf("the epoch-start optimizer state", p_bytes, storage)?);
        }
        let fused_sgd = c.optimizer.kind == OptimizerKind::Sgd && c.optimizer.momentum == 0.0;
        let grads = if fused_sgd { None } else { Some(buf("the gradients", p_bytes, storage)?) };

        let n_train = t.train_len();
        let batches_per_epoch = t.batches_per_epoch();
        let eval_batches = [t.data.test.len(), t.data.train.len()].map(|n| n.div_ceil(rows_cap));
        let order = buf("the epoch's order", n_train as u64 * 4, storage)?;
        let x0 = buf("the input batch", (rows_cap * PIXELS) as u64 * 4, storage)?;
        let labels = buf("the batch's labels", rows_cap as u64 * 4, storage)?;
        let widths = &m.config.layers;
        let mut outs = Vec::new();
        let mut deltas = Vec::new();
        for &w in &widths[1..] {
            outs.push(buf("activations", (rows_cap * w) as u64 * 4, storage)?);
            deltas.push(buf("activation gradients", (rows_cap * w) as u64 * 4, storage)?);
        }

        // The GEMMs of each layer, in the layouts of gemm.wgsl.
        let act = Some(m.config.activation);
        let last = m.linears.len() - 1;
        let mut fwd_specs = Vec::new();
        let mut fwd_eval_specs = Vec::new();
        let mut dx_specs = Vec::new();
        let mut dw_specs = Vec::new();
        for (l, lin) in m.linears.iter().enumerate() {
            let (i, o) = (lin.in_features as u32, lin.out_features as u32);
            let w_off = lin.offset as u32;
            let b_off = w_off + i * o;
            let fwd = GemmSpec {
                m: batch as u32,
                n: o,
                k: i,
                a_trans: false,
                b_trans: true,
                lda: i,
                ldb: i,
                ldc: o,
                a_off: 0,
                b_off: w_off,
                c_off: 0,
                aux_off: b_off,
                rows: RowsDim::M,
                epilogue: Epilogue::BiasAct(if l < last { act } else { None }),
            };
            fwd_specs.push(fwd);
            fwd_eval_specs.push(GemmSpec { m: rows_cap as u32, ..fwd });
            dx_specs.push((l > 0).then_some(GemmSpec {
                m: batch as u32,
                n: i,
                k: o,
                a_trans: false,
                b_trans: false,
                lda: o,
                ldb: i,
                ldc: i,
                a_off: 0,
                b_off: w_off,
                c_off: 0,
                aux_off: 0,
                rows: RowsDim::M,
                epilogue: Epilogue::ActGrad(act),
            }));
            dw_specs.push(GemmSpec {
                m: o,
                n: i,
                k: batch as u32,
                a_trans: true,
                b_trans: false,
                lda: o,
                ldb: i,
                ldc: i,
                a_off: 0,
                b_off: 0,
                c_off: w_off,
                aux_off: 0,
                rows: RowsDim::K,
                epilogue: if fused_sgd {
                    Epilogue::Sgd { lr: c.optimizer.lr, weight_decay: c.optimizer.weight_decay }
                } else {
                    Epilogue::Store
                },
            });
        }
        let scratch_floats = fwd_specs
            .iter()
            .chain(&fwd_eval_specs)
            .chain(dx_specs.iter().flatten())
            .chain(&dw_specs)
            .map(GemmSpec::scratch_floats)
            .max()
            .unwrap_or(0);
        let scratch = buf("split-K partial sums", scratch_floats * 4, storage)?;
        let stats = buf("the batches' statistics", batches_per_epoch as u64 * STAT_BYTES, storage)?;
        let row_stats = buf("the training rows' losses", n_train as u64 * STAT_BYTES, storage)?;
        let eval_stats = buf("the evaluation statistics", stats_slots(eval_batches[0].max(eval_batches[1])), storage)?;
        let confusion = buf("the confusion matrix", (classes * classes) as u64 * 4, storage)?;
        let read = usage::MAP_READ | usage::COPY_DST;
        let read_stats =
            buf("the statistics readback", (batches_per_epoch as u64 + n_train as u64) * STAT_BYTES, read)?;
        let read_eval = buf(
            "the evaluation readback",
            stats_slots(eval_batches[0].max(eval_batches[1])) + (classes * classes) as u64 * 4,
            read,
        )?;
        let read_params = buf("the parameter readback", p_bytes * (1 + states.len() as u64), read)?;

        let train_table = k.batch_table(batches_per_epoch)?;
        let eval_tables = [k.batch_table(eval_batches[0])?, k.batch_table(eval_batches[1])?];
        for (table, (n, batches)) in
            eval_tables.iter().zip([(t.data.test.len(), eval_batches[0]), (t.data.train.len(), eval_batches[1])])
        {
            let entries: Vec<_> = (0..batches)
                .map(|b| BatchEntry {
                    start: (b * rows_cap) as u32,
                    rows: (n - b * rows_cap).min(rows_cap) as u32,
                    slot: b as u32,
                    ..BatchEntry::default()
                })
                .collect();
            table.write(gpu, &entries)?;
        }
        owned.extend([train_table.buffer.clone(), eval_tables[0].buffer.clone(), eval_tables[1].buffer.clone()]);

        let gather_train = k.gather([&data.records[0], &data.lut, &order, &x0, &labels], batch as u32);
        let gather_eval = [
            k.gather([&data.records[1], &data.lut, &data.iota, &x0, &labels], rows_cap as u32),
            k.gather([&data.records[0], &data.lut, &data.iota, &x0, &labels], rows_cap as u32),
        ];
        let mut forward = Vec::new();
        let mut forward_eval = Vec::new();
        let mut backward = Vec::new();
        for (l, lin) in m.linears.iter().enumerate() {
            let input = if l == 0 { &x0 } else { &outs[l - 1] };
            forward.push(k.gemm(&fwd_specs[l], [input, &params, &outs[l]], Some(&params), &scratch)?);
            forward_eval.push(k.gemm(&fwd_eval_specs[l], [input, &params, &outs[l]], Some(&params), &scratch)?);
            let dx = match &dx_specs[l] {
                Some(spec) => {
                    Some(k.gemm(spec, [&deltas[l], &params, &deltas[l - 1]], Some(&outs[l - 1]), &scratch)?)
                }
                None => None,
            };
            let target = grads.as_ref().unwrap_or(&params);
            let dw = k.gemm(&dw_specs[l], [&deltas[l], input, target], None, &scratch)?;
            let b_off = (lin.offset + lin.in_features * lin.out_features) as u32;
            let sgd = fused_sgd.then_some((c.optimizer.lr, c.optimizer.weight_decay));
            let db = k.bias_grad(lin.out_features as u32, b_off, sgd, [&deltas[l], target])?;
            backward.push(LayerBackward { dx, dw, db });
        }
        let loss_kind: LossKind = m.config.loss;
        let train_out = LossOut::Train { dz: &deltas[last], rows: &row_stats };
        let loss_train = k.loss(loss_kind, classes as u32, [&outs[last], &labels, &stats], train_out);
        let eval_out = LossOut::Eval { confusion: &confusion };
        let loss_eval = k.loss(loss_kind, classes as u32, [&outs[last], &labels, &eval_stats], eval_out);
        let optimizer = match &grads {
            Some(g) => Some(k.optimizer(&c.optimizer, n_params as u32, [&params, g, &states[0]], states.get(1))?),
            None => None,
        };
        let dispatches_per_batch = 1
            + forward.iter().map(GemmCall::dispatches).sum::<usize>()
            + 1
            + backward
                .iter()
                .map(|b| b.dx.as_ref().map_or(0, GemmCall::dispatches) + b.dw.dispatches() + 1)
                .sum::<usize>()
            + optimizer.is_some() as usize;
        Ok(GpuModel {
            params,
            states,
            snapshots,
            order,
            train_table,
            eval_tables,
            stats,
            row_stats,
            eval_stats,
            confusion,
            read_stats,
            read_eval,
            read_params,
            gather_train,
            gather_eval,
            forward,
            forward_eval,
            loss_train,
            loss_eval,
            backward,
            optimizer,
            owned,
            batch,
            train_rows: n_train,
            classes,
            num_params: n_params,
            batches_per_epoch,
            dispatches_per_batch,
        })
    }

    /// The rows of batches `b0..b1`: positions `r0..r1` in the epoch's order (and in
    /// `row_stats`).
    fn row_range(&self, b0: usize, b1: usize) -> (usize, usize) {
        (b0 * self.batch, (b1 * self.batch).min(self.train_rows))
    }

    /// The live buffers in the order of `snapshots`.
    fn live(&self) -> Vec<&GpuBuffer> {
        std::iter::once(&self.params).chain(&self.states).collect()
    }

    fn encode_train_batch(&self, pass: &web_sys::GpuComputePassEncoder, b: usize) {
        self.train_table.select(pass, b);
        self.gather_train.encode(pass);
        for f in &self.forward {
            f.encode(pass);
        }
        self.loss_train.encode(pass);
        for layer in self.backward.iter().rev() {
            if let Some(dx) = &layer.dx {
                dx.encode(pass);
            }
            layer.dw.encode(pass);
            layer.db.encode(pass);
        }
        if let Some(o) = &self.optimizer {
            o.encode(pass);
        }
    }

    /// Encodes the evaluation of split `s` (0 test, 1 train) of `n` images and the copy of its
    /// statistics into `read_eval`; returns the number of batches.
    fn encode_eval(&self, encoder: &GpuCommandEncoder, s: usize, n: usize) -> Result<usize> {
        let rows = self.batch.max(EVAL_ROWS);
        let batches = n.div_ceil(rows);
        encoder.clear_buffer(&self.confusion);
        let pass = encoder.begin_compute_pass();
        for b in 0..batches {
            self.eval_tables[s].select(&pass, b);
            self.gather_eval[s].encode(&pass);
            for f in &self.forward_eval {
                f.encode(&pass);
            }
            self.loss_eval.encode(&pass);
        }
        pass.end();
        let stat_bytes = batches as u64 * STAT_BYTES;
        copy(encoder, &self.eval_stats, 0, &self.read_eval, 0, stat_bytes)?;
        copy(encoder, &self.confusion, 0, &self.read_eval, stat_bytes, (self.classes * self.classes) as u64 * 4)?;
        Ok(batches)
    }

    /// Encodes the copy of the parameters and optimizer state into `read_params`.
    fn encode_params_readback(&self, encoder: &GpuCommandEncoder) -> Result<u64> {
        let p_bytes = self.num_params as u64 * 4;
        for (i, b) in self.live().into_iter().enumerate() {
            copy(encoder, b, 0, &self.read_params, i as u64 * p_bytes, p_bytes)?;
        }
        Ok(p_bytes * (1 + self.states.len() as u64))
    }
}

fn copy(encoder: &GpuCommandEncoder, src: &GpuBuffer, so: u64, dst: &GpuBuffer, dof: u64, bytes: u64) -> Result<()> {
    if bytes == 0 {
        return Ok(());
    }
    encoder
        .copy_buffer_to_buffer_with_f64_and_f64_and_f64(src, so as f64, dst, dof as f64, bytes as f64)
        .map_err(|e| Error::Gpu(format!("copying on the GPU failed ({})", super::device::js_message(&e))))
}

pub(crate) fn f32_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

pub(crate) fn bytes_f32(b: &[u8]) -> Vec<f32> {
    b.chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().expect("4 bytes"))).collect()
}

/// Each row's loss and correctness (the loss kernel's `rows_out`: f32 loss, u32 correct).
pub(crate) fn parse_rows(b: &[u8]) -> Vec<RowLoss> {
    parse_stats(b).into_iter().map(|(loss, correct)| RowLoss { loss, correct: correct != 0 }).collect()
}

/// Summed loss and correct count of each slot.
fn parse_stats(b: &[u8]) -> Vec<(f32, u32)> {
    b.chunks_exact(8)
        .map(|c| {
            (
                f32::from_le_bytes(c[..4].try_into().expect("4 bytes")),
                u32::from_le_bytes(c[4..].try_into().expect("4 bytes")),
            )
        })
        .collect()
}

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
            start = Some((order, start_step));
            self.epoch = Some(EpochRun { start_step, ..EpochRun::default() });
        }
        let run = self.epoch.expect("epoch started");
        let batches = self.model.batches_per_epoch;
        let (b0, b1) = (run.done, (run.done + max_batches).min(batches));
        let model = &self.model;
        let entries = start.as_ref().map(|(_, start_step)| self.train_entries(*start_step));
        gpu.scoped("training", || {
            let encoder = gpu.device().create_command_encoder();
            if let (Some((order, _)), Some(entries)) = (&start, &entries) {
                gpu.write(&model.order, 0, order)?;
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
