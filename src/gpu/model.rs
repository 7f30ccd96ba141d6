//! The run's buffers on the GPU and the encoding of its batches: [`GpuData`] (both splits,
//! uploaded once) and [`GpuModel`] (parameters, optimizer state, activations, batch tables and
//! the kernels bound to them, built from the kernel table's [`LayerGemms`]). A training batch is
//! the dispatches gather (flip and shift too, for a run with augmentation), forward GEMMs (bias
//! and activation fused), loss (gradient fused), then per layer from the last: input-gradient GEMM
//! (activation derivative fused) and weight-gradient GEMM (bias gradient and, for plain SGD, the
//! update fused), and the optimizer step for momentum and Adam;
//! [`GpuModel::dispatches_per_batch`] counts them. A model with convolutions ([`GpuConv`]) runs
//! its blocks between the gather and the first linear layer, forward, and after the first linear
//! layer's input gradient, backward.

use super::conv::{ConvInputs, GpuConv, block_specs, gemm_specs};
use super::device::Gpu;
use super::kernels::{
    BatchEntry, BatchTable, GatherCall, GemmCall, GemmSpec, Kernels, LayerGemms, LossCall, LossOut, OptimCall,
    STAT_BYTES,
};
use crate::config::LossKind;
use crate::data::PIXELS;
use crate::error::{Error, Result};
use crate::loss::RowLoss;
use crate::train::Trainer;
use web_sys::{GpuBuffer, GpuCommandEncoder, gpu_buffer_usage as usage};

/// Rows per evaluation batch (at least the training batch) of an MLP: results do not depend on it
/// (each output row is computed the same way whatever the batch), only the number of dispatches
/// does. A model with convolutions evaluates in training batches: its im2col buffers grow with
/// the rows (27 floats per pixel for the book's first block).
pub const EVAL_ROWS: usize = 512;

/// Both splits on the GPU, uploaded once: records as `u32` words, the normalisation table, and
/// the indices `0..n` that evaluation batches point into.
pub(super) struct GpuData {
    pub(super) records: [GpuBuffer; 2],
    pub(super) lut: GpuBuffer,
    pub(super) iota: GpuBuffer,
}

impl GpuData {
    pub(super) fn upload(gpu: &Gpu, trainer: &Trainer) -> Result<GpuData> {
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

/// The backward of one layer: input gradient (not for the first layer), and the weight
/// gradient with the bias gradient fused.
pub(super) struct LayerBackward {
    dx: Option<GemmCall>,
    dw: GemmCall,
}

/// Everything that depends on the model's configuration: parameters, optimizer state,
/// activations, batch tables and the calls bound to them.
pub(super) struct GpuModel {
    pub(super) params: GpuBuffer,
    /// Optimizer state buffers (momentum, or Adam's two moments).
    pub(super) states: Vec<GpuBuffer>,
    /// Copies of `params` and `states` at the start of the epoch, restored if it diverges.
    pub(super) snapshots: Vec<GpuBuffer>,
    pub(super) order: GpuBuffer,
    /// The epoch's augmentation draws (`table::pack_draw`, by position in `order`), for a run
    /// with augmentation.
    pub(super) draws: Option<GpuBuffer>,
    pub(super) train_table: BatchTable,
    /// Evaluation batch tables: test split, training split.
    pub(super) eval_tables: [BatchTable; 2],
    pub(super) stats: GpuBuffer,
    /// Each training row's loss and correctness at its position in the epoch's order.
    pub(super) row_stats: GpuBuffer,
    pub(super) eval_stats: GpuBuffer,
    pub(super) confusion: GpuBuffer,
    /// The batches' statistics, then their rows' (`row_stats`), read back together.
    pub(super) read_stats: GpuBuffer,
    pub(super) read_eval: GpuBuffer,
    pub(super) read_params: GpuBuffer,
    pub(super) gather_train: GatherCall,
    pub(super) gather_eval: [GatherCall; 2],
    /// The forward GEMMs of a training batch, and of an evaluation batch (more rows, so other
    /// grids and K splits).
    pub(super) forward: Vec<GemmCall>,
    pub(super) forward_eval: Vec<GemmCall>,
    pub(super) loss_train: LossCall,
    pub(super) loss_eval: LossCall,
    pub(super) backward: Vec<LayerBackward>,
    pub(super) optimizer: Option<OptimCall>,
    /// The convolution blocks, for a model that has them.
    pub(super) conv: Option<GpuConv>,
    /// Every buffer, destroyed with the model (GPU memory is freed at once, not at collection).
    pub(super) owned: Vec<GpuBuffer>,
    pub(super) batch: usize,
    /// Rows per evaluation batch.
    pub(super) eval_rows: usize,
    /// Training images (rows of an epoch).
    pub(super) train_rows: usize,
    pub(super) classes: usize,
    pub(super) num_params: usize,
    pub(super) batches_per_epoch: usize,
    pub(super) dispatches_per_batch: usize,
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
    pub(super) fn build(k: &Kernels, data: &GpuData, t: &Trainer) -> Result<GpuModel> {
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
        let features = m.features.as_ref();
        let rows_cap = if features.is_some() { batch } else { batch.max(EVAL_ROWS) };
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
        let fused_sgd = super::table::fused_sgd(&c.optimizer);
        let grads = if fused_sgd { None } else { Some(buf("the gradients", p_bytes, storage)?) };

        let n_train = t.train_len();
        let batches_per_epoch = t.batches_per_epoch();
        let eval_batches = [t.data.test.len(), t.data.train.len()].map(|n| n.div_ceil(rows_cap));
        let order = buf("the epoch's order", n_train as u64 * 4, storage)?;
        // With augmentation, the epoch's draws: one word per position of the order.
        let draws = if c.augment.is_none() {
            None
        } else {
            Some(buf("the epoch's augmentation", n_train as u64 * 4, storage)?)
        };
        let x0 = buf("the input batch", (rows_cap * PIXELS) as u64 * 4, storage)?;
        let labels = buf("the batch's labels", rows_cap as u64 * 4, storage)?;
        let widths = &m.config.layers;
        let mut outs = Vec::new();
        let mut deltas = Vec::new();
        for &w in &widths[1..] {
            outs.push(buf("activations", (rows_cap * w) as u64 * 4, storage)?);
            deltas.push(buf("activation gradients", (rows_cap * w) as u64 * 4, storage)?);
        }

        // The GEMMs of each layer, from the kernel table.
        let last = m.linears.len() - 1;
        let gemms: Vec<LayerGemms> = m
            .linears
            .iter()
            .enumerate()
            .map(|(l, lin)| {
                let shape = (lin.in_features as u32, lin.out_features as u32, lin.offset as u32);
                let mut g = LayerGemms::new(shape, l == 0, l == last, m.config.activation, batch as u32, &c.optimizer);
                if l == 0 && features.is_some() {
                    // After convolutions the first layer's input gradient is needed: stored,
                    // the activation's derivative applied by the pooling's backward kernel.
                    g.input_grad = Some(super::table::conv::flat_grad(shape.0, shape.1, shape.2, batch as u32));
                }
                g
            })
            .collect();
        let conv_blocks = features.map(|f| block_specs(f, batch as u32, &c.optimizer)).unwrap_or_default();
        let fwd_eval_specs: Vec<GemmSpec> =
            gemms.iter().map(|g| GemmSpec { m: rows_cap as u32, ..g.forward }).collect();
        let scratch_floats = gemms
            .iter()
            .flat_map(|g| [Some(g.forward), g.input_grad, Some(g.weight_grad)])
            .flatten()
            .chain(fwd_eval_specs.iter().copied())
            .chain(gemm_specs(&conv_blocks))
            .map(|s| k.scratch_floats(&s))
            .max()
            .unwrap_or(0);
        let scratch = buf("split-K partial sums", scratch_floats * 4, storage)?;
        let target = grads.as_ref().unwrap_or(&params);
        let conv = match features {
            Some(f) => {
                let io = ConvInputs { x: &x0, params: &params, grads: target, scratch: &scratch };
                Some(GpuConv::build(k, f, &conv_blocks, io, &mut |label, bytes| buf(label, bytes, storage))?)
            }
            None => None,
        };
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

        let gather_train = k.gather([&data.records[0], &data.lut, &order, &x0, &labels], draws.as_ref(), batch as u32);
        let gather_eval = [
            k.gather([&data.records[1], &data.lut, &data.iota, &x0, &labels], None, rows_cap as u32),
            k.gather([&data.records[0], &data.lut, &data.iota, &x0, &labels], None, rows_cap as u32),
        ];
        let mut forward = Vec::new();
        let mut forward_eval = Vec::new();
        let mut backward = Vec::new();
        for (l, g) in gemms.iter().enumerate() {
            let input = match (l, &conv) {
                (0, Some(conv)) => &conv.flat,
                (0, None) => &x0,
                _ => &outs[l - 1],
            };
            forward.push(k.gemm(&g.forward, [input, &params, &outs[l]], Some(&params), &scratch)?);
            forward_eval.push(k.gemm(&fwd_eval_specs[l], [input, &params, &outs[l]], Some(&params), &scratch)?);
            let dx = match (&g.input_grad, &conv) {
                (Some(spec), Some(conv)) if l == 0 => {
                    Some(k.gemm(spec, [&deltas[0], &params, &conv.dflat], None, &scratch)?)
                }
                (Some(spec), _) => {
                    Some(k.gemm(spec, [&deltas[l], &params, &deltas[l - 1]], Some(&outs[l - 1]), &scratch)?)
                }
                (None, _) => None,
            };
            let dw = k.gemm(&g.weight_grad, [&deltas[l], input, target], None, &scratch)?;
            backward.push(LayerBackward { dx, dw });
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
            + backward.iter().map(|b| b.dx.as_ref().map_or(0, GemmCall::dispatches) + b.dw.dispatches()).sum::<usize>()
            + optimizer.is_some() as usize
            + conv.as_ref().map_or(0, GpuConv::dispatches_per_batch);
        Ok(GpuModel {
            params,
            states,
            snapshots,
            order,
            draws,
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
            conv,
            owned,
            batch,
            eval_rows: rows_cap,
            train_rows: n_train,
            classes,
            num_params: n_params,
            batches_per_epoch,
            dispatches_per_batch,
        })
    }

    /// The rows of batches `b0..b1`: positions `r0..r1` in the epoch's order (and in
    /// `row_stats`).
    pub(super) fn row_range(&self, b0: usize, b1: usize) -> (usize, usize) {
        (b0 * self.batch, (b1 * self.batch).min(self.train_rows))
    }

    /// The live buffers in the order of `snapshots`.
    pub(super) fn live(&self) -> Vec<&GpuBuffer> {
        std::iter::once(&self.params).chain(&self.states).collect()
    }

    pub(super) fn encode_train_batch(&self, pass: &web_sys::GpuComputePassEncoder, b: usize) {
        self.train_table.select(pass, b);
        self.gather_train.encode(pass);
        if let Some(conv) = &self.conv {
            conv.encode_forward(pass);
        }
        for f in &self.forward {
            f.encode(pass);
        }
        self.loss_train.encode(pass);
        for layer in self.backward.iter().rev() {
            if let Some(dx) = &layer.dx {
                dx.encode(pass);
            }
            layer.dw.encode(pass);
        }
        if let Some(conv) = &self.conv {
            conv.encode_backward(pass);
        }
        if let Some(o) = &self.optimizer {
            o.encode(pass);
        }
    }

    /// Encodes the evaluation of split `s` (0 test, 1 train) of `n` images and the copy of its
    /// statistics into `read_eval`; returns the number of batches.
    pub(super) fn encode_eval(&self, encoder: &GpuCommandEncoder, s: usize, n: usize) -> Result<usize> {
        let batches = n.div_ceil(self.eval_rows);
        encoder.clear_buffer(&self.confusion);
        let pass = encoder.begin_compute_pass();
        for b in 0..batches {
            self.eval_tables[s].select(&pass, b);
            self.gather_eval[s].encode(&pass);
            if let Some(conv) = &self.conv {
                conv.encode_forward(&pass);
            }
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
    pub(super) fn encode_params_readback(&self, encoder: &GpuCommandEncoder) -> Result<u64> {
        let p_bytes = self.num_params as u64 * 4;
        for (i, b) in self.live().into_iter().enumerate() {
            copy(encoder, b, 0, &self.read_params, i as u64 * p_bytes, p_bytes)?;
        }
        Ok(p_bytes * (1 + self.states.len() as u64))
    }
}

pub(super) fn copy(
    encoder: &GpuCommandEncoder,
    src: &GpuBuffer,
    so: u64,
    dst: &GpuBuffer,
    dof: u64,
    bytes: u64,
) -> Result<()> {
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
pub(super) fn parse_stats(b: &[u8]) -> Vec<(f32, u32)> {
    b.chunks_exact(8)
        .map(|c| {
            (
                f32::from_le_bytes(c[..4].try_into().expect("4 bytes")),
                u32::from_le_bytes(c[4..].try_into().expect("4 bytes")),
            )
        })
        .collect()
}
